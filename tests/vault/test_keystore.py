"""The OS-keyring keystore against a REAL Secret Service (gnome-keyring on a private D-Bus bus).

No in-memory keyring here. The only fakes are the two things this headless machine cannot
produce, each saying so in its docstring: a GUI unlock prompt that nobody answers, and a backend
whose viability check never answers; plus a stand-in for ``keyrings.alt``'s plaintext backend,
which is not installed.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keyring.backends.SecretService
import pytest
import secretstorage
from helpers.home import REPO
from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordDeleteError

from credguard.errors import ExitCode, KeystoreError
from credguard.vault.keystore import (
    NO_KEYRING_ADVICE,
    BackendStatus,
    KeyringKeystore,
    keyring_status,
    open_keystore,
)
from credguard.vault.secretservice import SecretServiceKeyring

if TYPE_CHECKING:
    from helpers.secret_service import SecretService, SessionBus


ENV = "PYTHON_KEYRING_BACKEND"
SECRET_SERVICE = "SecretService (credguard.vault.secretservice.SecretServiceKeyring)"
KEYRING_SECRET_SERVICE = "SecretService (keyring.backends.SecretService.Keyring)"
PLAINTEXT = "keyrings.alt.file.PlaintextKeyring"
FAST = 5.0  # seconds: an error case must answer well within this


def new_id() -> str:
    return secrets.token_hex(8)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def secret_service_backend() -> KeyringBackend:
    """keyring's own Secret Service backend, used directly (not through its global cache)."""
    backend: KeyringBackend = keyring.backends.SecretService.Keyring()  # type: ignore[no-untyped-call]
    return backend


# ---- test-only backends ----------------------------------------------------------------------


def _forced(name: str) -> bool:
    return os.environ.get(ENV) == name


class PlaintextKeyring(KeyringBackend):
    """Stand-in for ``keyrings.alt.file.PlaintextKeyring`` (keyrings.alt is not installed here).

    Like the real one it keeps passwords in a plaintext file in the user's data directory and
    has priority 0.5. It lives in a fake ``keyrings.alt.file`` module (see the
    ``plaintext_backend`` fixture) and is viable only when a test forces or enables it.
    """

    __module__ = "keyrings.alt.file"
    enabled = False

    @properties.classproperty
    def priority(cls) -> float:
        if cls.enabled or _forced(PLAINTEXT):
            return 0.5
        raise RuntimeError("test-only stand-in, not enabled")

    @property
    def file(self) -> Path:
        return Path(os.environ["HOME"]) / ".local" / "share" / "python_keyring" / "keyring_pass.cfg"

    def _load(self) -> dict[str, str]:
        return json.loads(self.file.read_text()) if self.file.exists() else {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}/{username}"] = password
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.file.write_text(json.dumps(data))

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if data.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError("not found")
        self.file.write_text(json.dumps(data))


class UnresponsiveKeyring(KeyringBackend):
    """Fake: a backend whose viability check never answers (as a D-Bus service that accepted
    the connection, then hangs). Viable only while a test enables it; it then blocks keyring's
    backend detection until the test's ``release`` event is set."""

    enabled = False
    release = threading.Event()

    @properties.classproperty
    def priority(cls) -> float:
        if not cls.enabled:
            raise RuntimeError("test-only backend, not enabled")
        cls.release.wait(60)
        return 5

    def get_password(self, service: str, username: str) -> str | None:
        raise AssertionError("never reached")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise AssertionError("never reached")


@pytest.fixture(autouse=True)
def fresh_keyring_discovery() -> Iterator[None]:
    """keyring caches the backends it discovers for the whole process (``get_all_keyring`` is a
    jaraco ``once``): a fake backend a test enables must not stay in that cache for later tests.
    Autouse fixtures set up first and tear down last, so abandoned workers are joined by then."""
    import contextlib

    import keyring.backend

    reset = keyring.backend.get_all_keyring.reset  # type: ignore[attr-defined]
    with contextlib.suppress(KeyError):  # KeyError: nothing cached yet
        reset()
    yield
    with contextlib.suppress(KeyError):
        reset()


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event that unblocks the fakes at teardown; then joins credguard's abandoned workers."""
    event = threading.Event()
    yield event
    event.set()
    for thread in threading.enumerate():
        if thread.name.startswith("credguard-keyring"):
            thread.join(10)
            assert not thread.is_alive(), f"{thread.name} still blocked"


@pytest.fixture
def plaintext_backend(monkeypatch: pytest.MonkeyPatch) -> type[PlaintextKeyring]:
    """Make ``keyrings.alt.file.PlaintextKeyring`` importable as the stand-in above."""
    for name in ("keyrings", "keyrings.alt", "keyrings.alt.file"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setattr(
        sys.modules["keyrings.alt.file"], "PlaintextKeyring", PlaintextKeyring, raising=False
    )
    return PlaintextKeyring


@pytest.fixture
def unanswered_prompt(monkeypatch: pytest.MonkeyPatch, release: threading.Event) -> None:
    """Fake: the GUI unlock prompt gnome-keyring shows on a desktop, left unanswered.

    This machine has no display, so the real prompt fails at once (dismissed). Everything else
    is real: a locked collection makes secretstorage call Unlock and wait for the prompt's
    Completed signal; here that wait blocks until the test ends, as with a user who walked away.
    """

    def exec_prompt(connection: Any, prompt_path: str, *, timeout: float | None = None) -> Any:
        release.wait(60)
        return True, ("ao", [])

    monkeypatch.setattr(secretstorage.util, "exec_prompt", exec_prompt)


# ---- against a working Secret Service --------------------------------------------------------


def test_round_trip(secret_service: SecretService) -> None:
    store = KeyringKeystore()
    assert store.name == f"OS keyring: {SECRET_SERVICE}"
    key, key_id = os.urandom(32), new_id()
    store.put_key(key_id, key)
    assert store.get_key(key_id) == key
    assert KeyringKeystore().get_key(key_id) == key  # a fresh instance (a later run) reads it


def test_key_is_stored_base64_under_service_credguard(secret_service: SecretService) -> None:
    key, key_id = os.urandom(32), new_id()
    KeyringKeystore().put_key(key_id, key)
    assert secret_service.items() == {f"vault-key-{key_id}": b64(key)}  # via secretstorage
    assert secret_service_backend().get_password("credguard", f"vault-key-{key_id}") == b64(
        key
    )  # via keyring


def without_schema(attributes: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in attributes.items() if k != "xdg:schema"}


def test_direct_items_are_the_ones_keyring_writes(secret_service: SecretService) -> None:
    """The direct Secret Service path and keyring's backend store the same item: a vault key
    written by either is found by the other (vaults made through keyring keep working)."""
    import contextlib

    key, key_id = os.urandom(32), new_id()
    KeyringKeystore().put_key(key_id, key)
    old_key, old_id = os.urandom(32), new_id()
    secret_service_backend().set_password("credguard", f"vault-key-{old_id}", b64(old_key))
    assert KeyringKeystore().get_key(old_id) == old_key
    with contextlib.closing(secretstorage.dbus_init()) as connection:
        collection = secretstorage.get_default_collection(connection)
        (ours,) = collection.search_items({"username": f"vault-key-{key_id}"})
        (theirs,) = collection.search_items({"username": f"vault-key-{old_id}"})
        # gnome-keyring adds "xdg:schema" to an item it has stored and read back from its file
        # (seen once in a full run, on either side): its own attribute, not written by either
        # client and not one credguard searches by
        assert without_schema(ours.get_attributes()) == without_schema(
            theirs.get_attributes()) | {"username": f"vault-key-{key_id}"}
        assert ours.get_attributes()["application"] == "Python keyring library"
        assert ours.get_label() == f"Password for 'vault-key-{key_id}' on 'credguard'"
    KeyringKeystore().delete_key(old_id)
    assert secret_service_backend().get_password("credguard", f"vault-key-{old_id}") is None


def test_direct_path_does_not_import_keyring(secret_service: SecretService) -> None:
    """The daemon's memory budget: with a Secret Service running and no explicit choice, the
    keyring library (and the ~8 MB it imports) is never loaded — also not to map an error."""
    code = (
        "import os, sys\n"
        "from credguard.errors import KeystoreError\n"
        "from credguard.vault.keystore import KeyringKeystore, keyring_status\n"
        "ks = KeyringKeystore(timeout=10)\n"
        "key_id = os.urandom(8).hex()\n"
        "ks.put_key(key_id, os.urandom(32))\n"
        "ks.get_key(key_id); ks.delete_key(key_id); ks.delete_key(key_id)\n"
        "try:\n"
        "    ks.get_key(key_id)\n"
        "except KeystoreError as e:\n"
        "    print('missing:', 'not in the OS keyring' in str(e))\n"
        "print(keyring_status(10))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keyring', 'jaraco')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=secret_service.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "missing: True",
        f"{SECRET_SERVICE}: usable, unlocked",
        "[]",
    ]


@pytest.mark.parametrize("how", ["env", "keyringrc.cfg"])
def test_an_explicit_choice_goes_through_keyring(
    secret_service: SecretService, monkeypatch: pytest.MonkeyPatch, home: Any, how: str
) -> None:
    """Only keyring itself honours its own configuration exactly: an explicit choice of the
    Secret Service is served by keyring's backend, and reaches the same items."""
    if how == "env":
        monkeypatch.setenv(ENV, "keyring.backends.SecretService.Keyring")
    else:
        config = home.root / ".config" / "python_keyring" / "keyringrc.cfg"
        config.parent.mkdir(parents=True)
        config.write_text("[backend]\ndefault-keyring=keyring.backends.SecretService.Keyring\n")
        monkeypatch.setenv("XDG_CONFIG_HOME", str(home.root / ".config"))
    store, key, key_id = KeyringKeystore(timeout=FAST), os.urandom(32), new_id()
    assert store.name == f"OS keyring: {KEYRING_SECRET_SERVICE}"
    store.put_key(key_id, key)
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home.root / "elsewhere"))
    direct = KeyringKeystore(timeout=FAST)
    assert direct.name == f"OS keyring: {SECRET_SERVICE}"
    assert direct.get_key(key_id) == key


def test_put_is_write_once(secret_service: SecretService) -> None:
    store = KeyringKeystore()
    key, other, key_id = os.urandom(32), os.urandom(32), new_id()
    store.put_key(key_id, key)
    with pytest.raises(KeystoreError, match="already exists") as caught:
        store.put_key(key_id, other)
    assert caught.value.exit_code == ExitCode.KEYSTORE
    assert b64(key) not in str(caught.value) and b64(other) not in str(caught.value)
    assert store.get_key(key_id) == key
    assert secret_service.items() == {f"vault-key-{key_id}": b64(key)}


def test_delete(secret_service: SecretService) -> None:
    store = KeyringKeystore()
    keep, gone = new_id(), new_id()
    store.put_key(keep, os.urandom(32))
    store.put_key(gone, os.urandom(32))
    store.delete_key(gone)
    with pytest.raises(KeystoreError, match=f"vault key {gone} is not in the OS keyring"):
        store.get_key(gone)
    store.delete_key(gone)  # missing is not an error
    assert list(secret_service.items()) == [f"vault-key-{keep}"]


def test_get_missing(secret_service: SecretService) -> None:
    key_id = new_id()
    with pytest.raises(KeystoreError, match=f"vault key {key_id} is not in the OS keyring"):
        KeyringKeystore().get_key(key_id)


@pytest.mark.parametrize(
    "stored",
    [
        "not base64!",
        b64(bytes(31)),
        b64(bytes(33)),
        "",
        "ü" * 44,
        b64(b"x" * 32)[:-1],
        b64(bytes(32)) + "\n",
    ],
    ids=["not-base64", "31-bytes", "33-bytes", "empty", "non-ascii", "bad-padding", "newline"],
)
def test_damaged_value(secret_service: SecretService, stored: str) -> None:
    key_id = new_id()
    secret_service_backend().set_password("credguard", f"vault-key-{key_id}", stored)
    with pytest.raises(KeystoreError) as caught:
        KeyringKeystore().get_key(key_id)
    assert str(caught.value) == "the vault key in the keyring is damaged"


@pytest.mark.parametrize(
    "key_id",
    [
        "",
        "0123456789abcde",
        "0123456789abcdef0",
        "0123456789ABCDEF",
        "0123456789abcdeg",
        "../../etc/passwd",
        "0123456789abcde\n",
    ],
)
def test_key_id_is_validated(secret_service: SecretService, key_id: str) -> None:
    store = KeyringKeystore()
    for call in (store.get_key, store.delete_key, lambda k: store.put_key(k, bytes(32))):
        with pytest.raises(ValueError, match="16 lowercase hex"):
            call(key_id)
    assert secret_service.items() == {}


@pytest.mark.parametrize("key", [b"", bytes(31), bytes(33), "x" * 32])
def test_key_must_be_32_bytes(secret_service: SecretService, key: Any) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        KeyringKeystore().put_key(new_id(), key)
    assert secret_service.items() == {}


def test_status_usable(secret_service: SecretService) -> None:
    status = keyring_status(timeout=FAST)
    assert status == BackendStatus(SECRET_SERVICE, True, "usable, unlocked")
    assert str(status) == f"{SECRET_SERVICE}: usable, unlocked"
    assert secret_service.items() == {}  # the probe stored nothing


def test_works_across_processes(secret_service: SecretService) -> None:
    """The env recipe: a separate process reaches the same keyring."""
    key, key_id = os.urandom(32), new_id()
    code = (
        "import sys, hashlib\n"
        "from credguard.vault.keystore import KeyringKeystore\n"
        "ks = KeyringKeystore(timeout=10)\n"
        "if sys.argv[1] == 'put':\n"
        "    ks.put_key(sys.argv[2], bytes.fromhex(sys.stdin.read()))\n"
        "else:\n"
        "    print(hashlib.sha256(ks.get_key(sys.argv[2])).hexdigest())\n"
    )

    def child(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=secret_service.env,
            cwd=REPO,
            timeout=60,
            check=False,
        )

    put = child("put", key_id, stdin=key.hex())
    assert put.returncode == 0, put.stderr
    assert KeyringKeystore().get_key(key_id) == key
    other = new_id()
    KeyringKeystore().put_key(other, key[::-1])
    got = child("get", other)
    assert got.returncode == 0, got.stderr
    import hashlib

    assert got.stdout.strip() == hashlib.sha256(key[::-1]).hexdigest()


def test_keyring_import_is_lazy() -> None:
    code = (
        "import sys, credguard.vault.keystore; print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('keyring', 'secretstorage', 'jeepney')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "[]"


# ---- locked ----------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_locked_keyring(locked_secret_service: SecretService) -> None:
    store = KeyringKeystore(timeout=FAST)  # resolving needs no unlock
    key_id = new_id()
    for call in (
        lambda: store.get_key(key_id),
        lambda: store.put_key(key_id, bytes(32)),
        lambda: store.delete_key(key_id),
    ):
        started = time.monotonic()
        with pytest.raises(KeystoreError, match=r"is locked: unlock it") as caught:
            call()
        assert time.monotonic() - started < FAST
        assert caught.value.exit_code == ExitCode.KEYSTORE
    status = keyring_status(timeout=FAST)
    assert (status.name, status.usable) == (SECRET_SERVICE, False)
    assert status.reason.startswith("not usable: locked")
    locked_secret_service.unlock()  # the same daemon, unlocked: now it works
    key = os.urandom(32)
    store.put_key(key_id, key)
    assert store.get_key(key_id) == key
    assert keyring_status(timeout=FAST).usable


@pytest.mark.timeout(30)
def test_locking_the_shared_keyring(secret_service: SecretService) -> None:
    store, key, key_id = KeyringKeystore(timeout=FAST), os.urandom(32), new_id()
    store.put_key(key_id, key)
    secret_service.lock()
    with pytest.raises(KeystoreError, match="is locked"):
        store.get_key(key_id)
    secret_service.unlock()
    assert store.get_key(key_id) == key


@pytest.mark.timeout(30)
def test_whether_the_keyring_is_unlocked_is_asked_without_a_prompt(
        secret_service: SecretService, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the daemon asks before it hands a credential to ``credguard exec``: True only
    while the collection is unlocked; a locked one, no bus, or a backend that cannot tell
    without a prompt all answer False (and nothing is unlocked by asking)."""
    store = KeyringKeystore(timeout=FAST)
    assert isinstance(store.backend, SecretServiceKeyring)
    try:
        assert store.unlocked_now() is True
        secret_service.lock()
        started = time.monotonic()
        assert store.unlocked_now() is False
        assert time.monotonic() - started < FAST
        assert secret_service.is_locked() is True  # asking did not unlock it
        secret_service.unlock()
        assert store.unlocked_now() is True  # the kept connection sees the change
    finally:
        store.backend.close()  # the connection it kept
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    assert KeyringKeystore._for(SecretServiceKeyring(), "x", FAST).unlocked_now() is False
    assert KeyringKeystore._for(secret_service_backend(), "x", FAST).unlocked_now() is False


@pytest.mark.timeout(30)
def test_unanswered_unlock_prompt_times_out(
    secret_service: SecretService, unanswered_prompt: None
) -> None:
    store, key_id = KeyringKeystore(timeout=0.5), new_id()
    store.put_key(key_id, os.urandom(32))
    secret_service.lock()
    started = time.monotonic()
    with pytest.raises(KeystoreError) as caught:
        store.get_key(key_id)
    assert time.monotonic() - started < 0.5 + 1.0
    assert str(caught.value) == (
        "the OS keyring did not answer within 0.5 s "
        "(is it locked and waiting for a password prompt?)"
    )
    status = keyring_status(timeout=0.5)
    assert not status.usable
    assert "did not answer within 0.5 s" in status.reason


@pytest.mark.timeout(30)
def test_frozen_daemon_times_out(
    killable_secret_service: SecretService, release: threading.Event
) -> None:
    """A real hang: the daemon is stopped (SIGSTOP) and D-Bus calls to it wait for a reply."""
    store, key, key_id = KeyringKeystore(timeout=0.5), os.urandom(32), new_id()
    store.put_key(key_id, key)
    killable_secret_service.freeze()
    for call in (lambda: store.get_key(key_id), lambda: store.put_key(new_id(), key)):
        started = time.monotonic()
        with pytest.raises(KeystoreError, match=r"^the OS keyring did not answer within 0\.5 s"):
            call()
        assert time.monotonic() - started < 0.5 + 1.0
    status = keyring_status(timeout=0.5)
    assert (status.name, status.usable) == (SECRET_SERVICE, False)
    assert "did not answer within 0.5 s" in status.reason
    killable_secret_service.thaw()  # the abandoned calls finish now
    assert store.get_key(key_id) == key


@pytest.mark.timeout(30)
def test_unresponsive_backend_times_out_while_resolving(
    monkeypatch: pytest.MonkeyPatch, release: threading.Event
) -> None:
    monkeypatch.setattr(UnresponsiveKeyring, "release", release)
    monkeypatch.setattr(UnresponsiveKeyring, "enabled", True)
    started = time.monotonic()
    with pytest.raises(KeystoreError, match=r"did not answer within 0\.5 s"):
        KeyringKeystore(timeout=0.5)
    assert time.monotonic() - started < 1.5
    status = keyring_status(timeout=0.5)
    assert not status.usable and "did not answer" in status.reason


# ---- no Secret Service, or a dead one --------------------------------------------------------


def test_no_secret_service_is_refused_with_advice(no_secret_service: SessionBus) -> None:
    with pytest.raises(KeystoreError) as caught:
        KeyringKeystore(timeout=FAST)
    assert str(caught.value) == f"no usable OS keyring: {NO_KEYRING_ADVICE}"
    assert "apt-get install gnome-keyring" in str(caught.value)
    assert 'vault.keystore = "passphrase"' in str(caught.value)
    assert caught.value.exit_code == ExitCode.KEYSTORE
    status = keyring_status(timeout=FAST)
    assert status.name == "Keyring (keyring.backends.fail.Keyring)"
    assert not status.usable and status.reason.startswith("no usable OS keyring")


def test_no_session_bus_at_all_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)  # the home fixture did too
    with pytest.raises(KeystoreError, match="no usable OS keyring"):
        KeyringKeystore(timeout=FAST)


def test_forced_secret_service_without_a_service(
    no_secret_service: SessionBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """keyring.get_keyring() raises a bare RuntimeError here; credguard says what is wrong."""
    monkeypatch.setenv(ENV, "keyring.backends.SecretService.Keyring")
    with pytest.raises(KeystoreError) as caught:
        KeyringKeystore(timeout=FAST)
    message = str(caught.value)
    assert "keyring.backends.SecretService.Keyring (named by PYTHON_KEYRING_BACKEND)" in message
    assert "neither running nor activatable" in message
    assert not keyring_status(timeout=FAST).usable


@pytest.mark.parametrize(
    "name",
    ["no.such.module.Keyring", "keyring.backends.fail.NoSuchClass", "", "thirdparty.Keyring"],
)
def test_forced_unknown_backend_is_refused_by_name(
    secret_service: SecretService, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(ENV, name)
    with pytest.raises(KeystoreError, match=r"\(chosen by PYTHON_KEYRING_BACKEND\) is not an OS "):
        KeyringKeystore(timeout=FAST)


def test_forced_os_backend_that_cannot_run(
    no_secret_service: SessionBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "keyring.backends.kwallet.DBusKeyring")  # no KWallet on this bus
    with pytest.raises(KeystoreError) as caught:
        KeyringKeystore(timeout=FAST)
    assert str(caught.value).startswith(
        "not usable: keyring.backends.kwallet.DBusKeyring (named by PYTHON_KEYRING_BACKEND) "
        "cannot be used: "
    )


def test_forced_keyrings_alt_is_refused_without_importing_it(
    secret_service: SecretService,
) -> None:
    code = (
        "import sys\n"
        "from credguard.errors import KeystoreError\n"
        "from credguard.vault.keystore import KeyringKeystore\n"
        "try:\n"
        "    KeyringKeystore(timeout=10)\n"
        "except KeystoreError as e:\n"
        "    print(e)\n"
        "print(sorted(m for m in sys.modules if m.startswith('keyrings')))\n"
    )
    env = {**secret_service.env, ENV: "keyrings.alt.file.EncryptedKeyring"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    refusal, modules = out.stdout.strip().splitlines()
    assert refusal.startswith(
        "refused: keyrings.alt.file.EncryptedKeyring (chosen by PYTHON_KEYRING_BACKEND) stores "
        "secrets in a file, not in an OS keyring"
    )
    assert modules == "[]"


@pytest.mark.timeout(30)
def test_daemon_killed_between_put_and_get(killable_secret_service: SecretService) -> None:
    store, key_id = KeyringKeystore(timeout=FAST), new_id()
    store.put_key(key_id, os.urandom(32))
    killable_secret_service.kill()
    started = time.monotonic()
    with pytest.raises(KeystoreError, match=r"could not be opened: .*org\.freedesktop\.secrets"):
        store.get_key(key_id)
    assert time.monotonic() - started < FAST
    assert keyring_status(timeout=FAST).reason.startswith("no usable OS keyring")


@pytest.mark.timeout(30)
def test_bus_gone_between_put_and_get(killable_secret_service: SecretService) -> None:
    store, key_id = KeyringKeystore(timeout=FAST), new_id()
    store.put_key(key_id, os.urandom(32))
    killable_secret_service.stop()  # the whole desktop session went away
    with pytest.raises(KeystoreError, match=r"^the OS keyring \(SecretService .*\) failed: "):
        store.get_key(key_id)


# ---- refused backends ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forced", "reason"),
    [
        (
            "keyring.backends.null.Keyring",
            "refused: keyring.backends.null.Keyring (chosen by PYTHON_KEYRING_BACKEND) stores "
            "nothing",
        ),
        (
            "keyring.backends.fail.Keyring",
            "no usable OS keyring (chosen by PYTHON_KEYRING_BACKEND): ",
        ),
        (
            PLAINTEXT,
            f"refused: {PLAINTEXT} (chosen by PYTHON_KEYRING_BACKEND) stores secrets in a "
            "plaintext file; ",
        ),
    ],
    ids=["null", "fail", "keyrings.alt-plaintext"],
)
def test_forced_non_os_backends_are_refused(
    secret_service: SecretService,
    plaintext_backend: type[PlaintextKeyring],
    monkeypatch: pytest.MonkeyPatch,
    home: Any,
    forced: str,
    reason: str,
) -> None:
    """Even with a working Secret Service beside it: an explicit bad choice is refused, never
    silently replaced."""
    monkeypatch.setenv(ENV, forced)
    with pytest.raises(KeystoreError) as caught:
        KeyringKeystore(timeout=FAST)
    assert str(caught.value).startswith(reason)
    assert str(caught.value).endswith(NO_KEYRING_ADVICE)
    status = keyring_status(timeout=FAST)
    assert not status.usable and status.reason.startswith(reason)
    with pytest.raises(KeystoreError):
        open_keystore("keyring", home.root / "vault", timeout=FAST)
    assert not list(home.root.rglob("keyring_pass.cfg"))


def test_plaintext_fallback_without_secret_service_is_refused(
    no_secret_service: SessionBus,
    plaintext_backend: type[PlaintextKeyring],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """keyring's own trap: with keyrings.alt installed and no Secret Service, get_keyring()
    silently picks the plaintext file. credguard refuses it."""
    monkeypatch.setattr(plaintext_backend, "enabled", True)
    with pytest.raises(KeystoreError) as caught:
        KeyringKeystore(timeout=FAST)
    assert str(caught.value) == (
        f"refused: {PLAINTEXT} stores secrets in a plaintext file; {NO_KEYRING_ADVICE}"
    )
    status = keyring_status(timeout=FAST)
    assert status.name == f"PlaintextKeyring ({PLAINTEXT})" and not status.usable


def test_chain_with_plaintext_uses_only_the_secret_service(
    secret_service: SecretService,
    plaintext_backend: type[PlaintextKeyring],
    monkeypatch: pytest.MonkeyPatch,
    home: Any,
) -> None:
    """With two viable backends keyring would use its ChainerBackend; credguard uses the OS
    keyring in the chain, and nothing reaches the plaintext file."""
    monkeypatch.setattr(plaintext_backend, "enabled", True)
    for forced in (None, "keyring.backends.chainer.ChainerBackend"):
        if forced:
            monkeypatch.setenv(ENV, forced)
        store, key_id = KeyringKeystore(timeout=FAST), new_id()
        # auto-detected: the Secret Service directly; chosen through keyring: keyring's backend
        expected = KEYRING_SECRET_SERVICE if forced else SECRET_SERVICE
        assert store.name == f"OS keyring: {expected}"
        store.put_key(key_id, os.urandom(32))
        assert f"vault-key-{key_id}" in secret_service.items()
        assert keyring_status(timeout=FAST).usable
    assert not list(home.root.rglob("keyring_pass.cfg"))


def test_forced_chainer_with_nothing_to_chain(
    no_secret_service: SessionBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused either way: keyring's chainer lists backends from a process-wide cache, so it
    fails to load (a cached SecretService is no longer viable) or chains nothing we accept."""
    monkeypatch.setenv(ENV, "keyring.backends.chainer.ChainerBackend")
    with pytest.raises(KeystoreError, match=r"keyring\.backends\.chainer\.ChainerBackend"):
        KeyringKeystore(timeout=FAST)


def test_keyringrc_choice_is_judged_too(secret_service: SecretService, home: Any) -> None:
    """keyring's config file is an explicit choice, judged like the environment variable."""
    home.write(
        ".config/python_keyring/keyringrc.cfg",
        "[backend]\ndefault-keyring=keyring.backends.null.Keyring\n",
    )
    with pytest.raises(
        KeystoreError,
        match=r"^refused: keyring\.backends\.null\.Keyring "
        r"\(chosen by keyringrc\.cfg .*keyringrc\.cfg\)",
    ):
        KeyringKeystore(timeout=FAST)


# ---- the dispatcher --------------------------------------------------------------------------


def test_open_keystore_keyring(secret_service: SecretService, tmp_path: Path) -> None:
    store = open_keystore("keyring", tmp_path, timeout=FAST)
    assert isinstance(store, KeyringKeystore) and store.timeout == FAST


def test_open_keystore_keyring_refused(no_secret_service: SessionBus, tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="no usable OS keyring"):
        open_keystore("keyring", tmp_path)


def test_open_keystore_passphrase(tmp_path: Path) -> None:
    from credguard.vault.passphrase import PassphraseKeystore

    asked: list[int] = []

    def passphrase() -> bytes:
        asked.append(1)
        return b"correct horse"

    store = open_keystore("passphrase", tmp_path, passphrase=passphrase)
    assert isinstance(store, PassphraseKeystore)
    assert store.path == tmp_path / "passphrase-keystore.json"
    assert asked == []  # not asked before a key is needed
    with pytest.raises(ValueError, match="passphrase"):
        open_keystore("passphrase", tmp_path)


@pytest.mark.parametrize("kind", ["auto", "", "Keyring", "file"])
def test_open_keystore_unknown_kind(tmp_path: Path, kind: str) -> None:
    with pytest.raises(ValueError, match="unknown keystore kind"):
        open_keystore(kind, tmp_path)


def test_timeout_must_be_positive() -> None:
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="timeout"):
            KeyringKeystore(timeout=bad)
