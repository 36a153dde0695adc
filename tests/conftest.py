"""Test isolation: every test gets its own HOME and XDG directories, and nothing from the
developer's or CI's real environment (config, Azure dirs, keyring) can leak in."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from helpers.home import AZ_OFFLINE_ENV, Home, Run

from credguard import control, paths
from credguard.cli import main

# real D-Bus service fixtures
pytest_plugins = ["helpers.secret_service", "helpers.notification_server", "helpers.notifier"]

_SCRUB_PREFIXES = ("CREDGUARD_", "AZURE_", "AZD_", "XDG_", "PYTHON_KEYRING")
# read before the autouse ``home`` fixture scrubs CREDGUARD_* from each test's environment
_TEST_AZ = os.environ.get("CREDGUARD_TEST_AZ", "")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """With ``CI=true``, a skipped test fails, with the skip reason in its message.

    This holds for ANY skipped test, marked ``security`` or not, whichever phase skipped (a
    ``skipif`` mark, ``pytest.skip`` in a fixture or in the test; a module skipped while it is
    collected fails too, see below): in CI a test that cannot run proves nothing, and a skip
    must not turn the run green. The ``security`` marker names the tests known to need
    something of the environment (root, a second uid, a mount, chattr, a writable
    ``/proc/sys``). An expected failure (``xfail``) is not a skip and is left alone. ``CI`` is
    read as each report is made.
    """
    report = yield
    marked = item.get_closest_marker("security") is not None
    _fail_skip_in_ci(report, " (marked security)" if marked else "")
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """With ``CI=true``, a module skipped at collection (``pytest.skip(allow_module_level=True)``,
    ``pytest.importorskip``) is a collection error, as a skipped test is a failure."""
    report = yield
    _fail_skip_in_ci(report, "")
    return report


def _fail_skip_in_ci(report: pytest.TestReport | pytest.CollectReport, marked: str) -> None:
    if os.environ.get("CI") != "true" or not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped with CI=true{marked}, which must fail the run: {reason}"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    root = tmp_path / "home"
    for sub in ("Downloads", "Desktop", "Documents"):
        (root / sub).mkdir(parents=True)
    for name in list(os.environ):
        if name.startswith(_SCRUB_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("HOME", str(root))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(root / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(root / ".local" / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(root / "etc-xdg"))
    # the managed policy's place is fixed (no variable moves it): repointed in this process only
    monkeypatch.setitem(paths.MANAGED_POLICY_FILES, paths.native_platform(),
                        Home(root).policy_file)
    # a short private runtime dir: the daemon's control socket path must stay < 108 bytes
    runtime = Path(tempfile.mkdtemp(prefix="cg-rt-"))
    runtime.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    yield Home(root)
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> object:
    """Run the CLI in-process: ``cli("scan", "--json", path) -> Run``."""

    def run(*args: str) -> Run:
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread running (as watchdog's own suite does)."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"test leaked threads: {leaked}"


@pytest.fixture(scope="session")
def real_az() -> Path:
    """The real Azure CLI's ``az`` (the pinned venv ./tests/run installs); fails, never skips."""
    az = Path(_TEST_AZ)
    if not _TEST_AZ:
        why = "CREDGUARD_TEST_AZ is unset"
    elif not (az.is_file() and os.access(az, os.X_OK)):
        why = f"CREDGUARD_TEST_AZ={az} is not an executable file"
    else:
        return az
    pytest.fail(f"{why}: run ./tests/run, which installs the real Azure CLI", pytrace=False)


@pytest.fixture
def az_path_env(
    home: Home, real_az: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """This test's environment with ``az`` on PATH resolving to the real one and az kept
    offline (:data:`AZ_OFFLINE_ENV`); set in ``os.environ`` too, and returned as a dict.

    PATH gets a directory holding only an ``az`` symlink: the venv's bin directory would also
    bring its ``python`` and ``pip`` ahead of everyone else's."""
    bin_dir = tmp_path / "az-bin"
    bin_dir.mkdir()
    (bin_dir / "az").symlink_to(real_az)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    for name, value in AZ_OFFLINE_ENV.items():
        monkeypatch.setenv(name, value)
    return dict(os.environ)


@pytest.fixture
def stand_in(home: Home) -> Iterator[list[bytes]]:
    """A stand-in for the daemon's control socket, for the clients' tests (a real daemon
    answers only well; this gives the answers of an older daemon, or broken ones): a thread on
    a real Unix socket where the daemon's would be. Answers each connection with the next line
    of the list it yields, after reading the request line (a connection past the list's end
    gets no answer)."""
    answers: list[bytes] = []
    where = control.daemon_socket_path()
    where.parent.mkdir(mode=0o700, exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(where))
    server.listen(4)
    server.settimeout(0.05)  # accept wakes to see stop
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                if answers:
                    conn.sendall(answers.pop(0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield answers
    stop.set()
    thread.join(5)
    server.close()


@pytest.fixture
def tmpfs_runtime(home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real tmpfs as the user runtime dir (needs root, as CI runs)."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    umount = shutil.which("umount") or "umount"  # found now: a test may narrow PATH
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "cg-rt", str(runtime)],
                   check=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    try:
        yield runtime
    finally:
        subprocess.run([umount, "-l", str(runtime)], check=False)
