"""A REAL Secret Service for tests: gnome-keyring-daemon on a private D-Bus session bus.

Load with ``pytest_plugins = ["secret_service"]``. Nothing here is a mock: each bus is a real
``dbus-daemon`` and each keyring a real ``gnome-keyring-daemon --components=secrets`` with its
own HOME, XDG_RUNTIME_DIR and XDG_DATA_HOME under the pytest temp dir, DISPLAY removed (a locked
keyring then cannot pop up a GUI prompt). The bus uses its own configuration whose only service
directory is empty, so D-Bus auto-activation can never start the developer's gnome-keyring (or a
prompter) on it. Every process is started in its own session and killed by process group.

Fixtures (all fail, never skip, when ``dbus-daemon`` or ``gnome-keyring-daemon`` is missing):

``shared_secret_service`` (session)
    One unlocked bus + daemon for the whole run (≈ 0.4 s to start).
``secret_service`` (function) -> :class:`SecretService`
    The shared one, set up for this test: ``DBUS_SESSION_BUS_ADDRESS`` points at it and
    ``PYTHON_KEYRING_BACKEND`` is unset (monkeypatch). After the test it is unlocked again if the
    test called ``lock()``, restarted if the daemon died, and every item with service
    ``credguard`` is deleted.
``locked_secret_service`` (function) -> :class:`SecretService`
    Its own bus + daemon whose login keyring exists (made with one password) but is locked: the
    daemon was restarted without ``--unlock``. ``unlock()`` works.
``killable_secret_service`` (function) -> :class:`SecretService`
    Its own unlocked bus + daemon, for tests that call ``kill()`` (SIGKILL to the daemon; the bus
    stays up with nothing to auto-activate), ``freeze()``/``thaw()`` (SIGSTOP/SIGCONT: calls
    hang), ``stop_daemon()``/``start_daemon()`` or ``stop()`` (the whole bus goes).
``no_secret_service`` (function) -> :class:`SessionBus`
    A private bus with no Secret Service on it and nothing activatable: ``keyring`` picks
    ``keyring.backends.fail.Keyring``.

Subprocesses: pass ``env=fixture.env`` (the test's whole environment, bus included).

keyring's SecretService backend leaves its D-Bus connection open, in a reference cycle, when the
collection is locked or cannot be opened (``get_preferred_collection`` raises before closing
it). The garbage collector closes it later with a ResourceWarning, which ``filterwarnings =
error`` would blame on whichever test runs then. So every function fixture here collects garbage
at teardown, and every test using one of these fixtures ignores that one warning (for sockets to
these private buses only; see ``pytest_collection_modifyitems``).
"""

from __future__ import annotations

import gc
import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path

import pytest
import secretstorage
from jeepney import DBusAddress, new_method_call  # type: ignore[import-untyped]
from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
from jeepney.io.blocking import DBusConnection, open_dbus_connection  # type: ignore[import-untyped]
from jeepney.low_level import Message  # type: ignore[import-untyped]
from jeepney.wrappers import unwrap_msg  # type: ignore[import-untyped]

LOGIN_PASSWORD = "credguard-test-login-password"  # of the throwaway test keyrings only
SECRETS_NAME = "org.freedesktop.secrets"
SECRETS_PATH = "/org/freedesktop/secrets"
DEFAULT_ALIAS = "/org/freedesktop/secrets/aliases/default"
START_TIMEOUT = 10.0
FIXTURES = frozenset(
    {
        "shared_secret_service",
        "secret_service",
        "locked_secret_service",
        "killable_secret_service",
        "no_secret_service",
    }
)
LEAKED_SOCKET = r"unclosed <socket\.socket .*secret-service\d*/sockets/dbus-"
_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={sockets}</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{services}</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def _require(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(
            f"{program} is missing: the keyring tests need a real Secret Service "
            f"(apt-get install {package}; ./tests/run installs it when run as root)",
            pytrace=False,
        )
    return path


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    """Kill ``proc``'s process group (it was started in its own session) and reap it."""
    if proc is None:
        return
    for attempt in (sig, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, attempt)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; anything it left in its group goes too
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return
    raise AssertionError(f"process {proc.pid} survived SIGKILL")


class SessionBus:
    """A private ``dbus-daemon`` session bus with nothing activatable on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.runtime_dir = root / "run"
        self.data_home = root / "data"
        self.log = root / "daemon.log"
        self.address = ""
        self._bus: subprocess.Popen[bytes] | None = None
        self._dbus_daemon = _require("dbus-daemon", "dbus")
        for directory in (
            self.home,
            self.runtime_dir,
            self.data_home,
            root / "services",
            root / "sockets",
        ):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o700)
        self._config = root / "bus.conf"
        self._config.write_text(
            _BUS_CONFIG.format(sockets=root / "sockets", services=root / "services")
        )

    @property
    def daemon_env(self) -> dict[str, str]:
        """The environment for the daemons: private dirs, no DISPLAY, nothing inherited."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self.home),
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "XDG_DATA_HOME": str(self.data_home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
        }
        if self.address:
            env["DBUS_SESSION_BUS_ADDRESS"] = self.address
        return env

    @property
    def env(self) -> dict[str, str]:
        """The current (test) environment pointed at this bus, for subprocesses."""
        env = dict(os.environ)
        for name in ("DISPLAY", "WAYLAND_DISPLAY", "PYTHON_KEYRING_BACKEND"):
            env.pop(name, None)
        env["DBUS_SESSION_BUS_ADDRESS"] = self.address
        return env

    def start(self) -> None:
        self._bus = subprocess.Popen(
            [self._dbus_daemon, f"--config-file={self._config}", "--nofork", "--print-address=1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=self.daemon_env,
            start_new_session=True,
        )
        assert self._bus.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._bus.stdout, selectors.EVENT_READ)
            ready = selector.select(START_TIMEOUT)
        line = self._bus.stdout.readline().decode().strip() if ready else ""
        self._bus.stdout.close()
        if not line.startswith("unix:"):
            self.stop()
            pytest.fail(f"dbus-daemon did not start (printed {line!r})", pytrace=False)
        self.address = line

    def connect(self) -> DBusConnection:
        return open_dbus_connection(bus=self.address)

    def call(self, message: Message) -> tuple[object, ...]:
        """Send one method call on a fresh connection and return the reply's body."""
        with closing(self.connect()) as conn:
            body: tuple[object, ...] = unwrap_msg(conn.send_and_get_reply(message, timeout=5))
            return body

    def has_secret_service(self) -> bool:
        return bool(self.call(message_bus.NameHasOwner(SECRETS_NAME))[0])

    def stop(self) -> None:
        _stop(self._bus)
        self._bus = None


class SecretService(SessionBus):
    """A real gnome-keyring Secret Service on its own bus, with a login keyring."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self._gnome_keyring = _require("gnome-keyring-daemon", "gnome-keyring")
        self._daemon: subprocess.Popen[bytes] | None = None

    def start(self, *, unlock: bool = True) -> None:
        """Start the bus and the daemon; ``unlock=False`` leaves an existing login locked."""
        super().start()
        try:
            self.start_daemon(unlock=unlock)
        except BaseException:
            self.stop()
            raise

    def start_daemon(self, *, unlock: bool = True) -> None:
        """Start gnome-keyring; with ``unlock`` its login keyring is created or unlocked."""
        assert self._daemon is None or self._daemon.poll() is not None, "already running"
        args = [self._gnome_keyring, "--foreground", "--components=secrets"]
        with self.log.open("ab") as log:
            self._daemon = subprocess.Popen(
                [*args, "--unlock"] if unlock else args,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                env=self.daemon_env,
                start_new_session=True,
            )
        assert self._daemon.stdin is not None
        with closing(self._daemon.stdin) as stdin:
            if unlock:
                stdin.write(LOGIN_PASSWORD.encode())
        deadline = time.monotonic() + START_TIMEOUT
        while not (self.has_secret_service() and (not unlock or self.is_locked() is False)):
            if self._daemon.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"gnome-keyring-daemon did not start; its log:\n"
                    f"{self.log.read_text(errors='replace')}",
                    pytrace=False,
                )
            time.sleep(0.01)

    @property
    def alive(self) -> bool:
        return self._daemon is not None and self._daemon.poll() is None

    def kill(self) -> None:
        """SIGKILL the keyring daemon (a crash); the bus stays up. ``start_daemon`` restarts."""
        _stop(self._daemon, signal.SIGKILL)
        deadline = time.monotonic() + START_TIMEOUT
        while self.has_secret_service():
            assert time.monotonic() < deadline, "the bus still lists the killed daemon"
            time.sleep(0.01)

    def freeze(self) -> None:
        """SIGSTOP the daemon: it keeps its bus name, and calls to it wait for a reply (a real
        hang, like a keyring waiting on a prompt). ``thaw()`` resumes it."""
        assert self._daemon is not None
        os.killpg(self._daemon.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self._daemon is not None:
            with suppress(ProcessLookupError):
                os.killpg(self._daemon.pid, signal.SIGCONT)

    def stop_daemon(self) -> None:
        """Stop the keyring daemon cleanly (SIGTERM, as at logout); the bus stays up."""
        self.thaw()
        _stop(self._daemon)
        self._daemon = None

    def stop(self) -> None:
        self.stop_daemon()
        super().stop()

    # ---- the login collection ----

    def is_locked(self) -> bool | None:
        """Whether the default (login) collection is locked; None if there is none yet."""
        with closing(self.connect()) as conn:
            try:
                return bool(secretstorage.Collection(conn, DEFAULT_ALIAS).is_locked())
            except secretstorage.exceptions.SecretStorageException:
                return None

    def lock(self) -> None:
        """Lock the login collection through the Secret Service API (no prompt needed)."""
        with closing(self.connect()) as conn:
            secretstorage.Collection(conn, DEFAULT_ALIAS).lock()
        assert self.is_locked() is True

    def unlock(self, password: str = LOGIN_PASSWORD) -> None:
        """Unlock the login collection with its password, without a prompt.

        Uses gnome-keyring's own ``UnlockWithMasterPassword`` over a "plain" transfer session
        (the bus is private to this test). A wrong password raises DBusErrorResponse.
        """
        service = DBusAddress(SECRETS_PATH, SECRETS_NAME, "org.freedesktop.Secret.Service")
        internal = DBusAddress(
            SECRETS_PATH, SECRETS_NAME, "org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface"
        )
        with closing(self.connect()) as conn:
            (collection,) = unwrap_msg(
                conn.send_and_get_reply(
                    new_method_call(service, "ReadAlias", "s", ("default",)), timeout=5
                )
            )
            _, session = unwrap_msg(
                conn.send_and_get_reply(
                    new_method_call(service, "OpenSession", "sv", ("plain", ("s", ""))), timeout=5
                )
            )
            secret = (session, b"", password.encode(), "text/plain")
            unwrap_msg(
                conn.send_and_get_reply(
                    new_method_call(
                        internal, "UnlockWithMasterPassword", "o(oayays)", (collection, secret)
                    ),
                    timeout=5,
                )
            )
        assert self.is_locked() is False

    def items(self, service: str = "credguard") -> dict[str, str]:
        """``{username: secret}`` of the items with attribute ``service`` (must be unlocked)."""
        found: dict[str, str] = {}
        with closing(self.connect()) as conn:
            collection = secretstorage.Collection(conn, DEFAULT_ALIAS)
            for item in collection.search_items({"service": service}):
                found[item.get_attributes()["username"]] = item.get_secret().decode()
        return found

    def delete_items(self, service: str = "credguard") -> None:
        with closing(self.connect()) as conn:
            collection = secretstorage.Collection(conn, DEFAULT_ALIAS)
            for item in collection.search_items({"service": service}):
                item.delete()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests using these fixtures ignore keyring's leaked-socket warning (see the docstring)."""
    ignore = pytest.mark.filterwarnings(f"ignore:{LEAKED_SOCKET}:ResourceWarning")
    for item in items:
        if FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(ignore)


def _collect_leaked_sockets() -> None:
    gc.collect()


def _use(bus: SessionBus, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point this test's own process at ``bus``, as a desktop session would."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus.address)
    for name in ("PYTHON_KEYRING_BACKEND", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)


@contextmanager
def _stopped_after(bus: SessionBus) -> Iterator[None]:
    """Stop ``bus`` (and whatever runs on it) when the block ends, however it ends."""
    try:
        yield
    finally:
        _collect_leaked_sockets()
        bus.stop()


@pytest.fixture(scope="session")
def shared_secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretService]:
    service = SecretService(tmp_path_factory.mktemp("secret-service"))
    service.start()
    with _stopped_after(service):
        yield service


@pytest.fixture
def secret_service(
    shared_secret_service: SecretService, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SecretService]:
    service = shared_secret_service
    _reset(service)
    _use(service, monkeypatch)
    yield service
    _collect_leaked_sockets()
    _reset(service)


def _reset(service: SecretService) -> None:
    """Running, unlocked and without credguard items, whatever the last test did to it (a
    daemon that still runs but has left the bus — seen once after a test's SIGKILLs — is
    restarted, as one that exited is). One that leaves the bus while being reset (seen in a
    fresh-clone run: "org.freedesktop.secrets was not provided") is restarted once more."""
    for attempt in (1, 2):
        service.thaw()
        if service.alive and not service.has_secret_service():
            service.stop_daemon()
        if not service.alive:
            service.start_daemon()
        try:
            if service.is_locked():
                service.unlock()
            service.delete_items()
            return
        except secretstorage.exceptions.SecretServiceNotAvailableException:
            if attempt == 2:
                raise
            service.stop_daemon()


@pytest.fixture
def locked_secret_service(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SecretService]:
    service = SecretService(tmp_path_factory.mktemp("locked-secret-service"))
    service.start()  # creates the login keyring with LOGIN_PASSWORD
    with _stopped_after(service):
        service.stop_daemon()  # as at logout
        service.start_daemon(unlock=False)  # as after login without the keyring's password
        assert service.is_locked() is True
        _use(service, monkeypatch)
        yield service


@pytest.fixture
def killable_secret_service(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SecretService]:
    service = SecretService(tmp_path_factory.mktemp("killable-secret-service"))
    service.start()
    with _stopped_after(service):
        _use(service, monkeypatch)
        yield service


@pytest.fixture
def no_secret_service(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SessionBus]:
    bus = SessionBus(tmp_path_factory.mktemp("no-secret-service"))
    bus.start()
    with _stopped_after(bus):
        assert not bus.has_secret_service()
        _use(bus, monkeypatch)
        yield bus
