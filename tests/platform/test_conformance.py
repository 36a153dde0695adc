"""The platform conformance suite (issue 19): credguard run on Linux with Windows' (``nt``) and
macOS' (``darwin``) Python simulated, :mod:`helpers.platform_sim` (a simulation: it says what it
cannot show). Each target: every module imports, the daemon starts, stays up and protects a
download, ``scan`` finds a credential in Downloads, and a vault round-trip (protect, then
restore) gives back the same bytes. Plus the checks that the simulation itself bites, and the
Win32 structures' layouts against the Windows SDK's x64 sizes.

The service definitions are validated against Microsoft's and Apple's schemas in
tests/service/test_platform_schemas.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import REPO, TESTS

SIM = TESTS / "helpers" / "platform_sim.py"
TARGETS = ("nt", "darwin")
PASSPHRASE = "simulated platform passphrase 7Qx"
STARTUP = 30.0  # seconds for the simulated daemon to answer


def sim_env(home: Path) -> dict[str, str]:
    """A private world: the variables Windows and macOS set, the passphrase keystore (neither
    the Credential Manager nor the Keychain exists here)."""
    for sub in ("Downloads", "Desktop", "AppData/Roaming", "AppData/Local", "Temp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
        "USERPROFILE": str(home), "APPDATA": str(home / "AppData/Roaming"),
        "LOCALAPPDATA": str(home / "AppData/Local"), "TEMP": str(home / "Temp"),
        "TMP": str(home / "Temp"), "TMPDIR": str(home / "Temp"), "USERNAME": "tester",
        "CREDGUARD_VAULT_KEYSTORE": "passphrase", "CREDGUARD_PASSPHRASE": PASSPHRASE,
        "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), str(TESTS),
                                                     os.environ.get("PYTHONPATH")))),
        "PYTHONDONTWRITEBYTECODE": "1",
        # tests/mutation's: the simulated children report what they ran, and run the mutant
        **{name: os.environ[name] for name in ("MUTANT_UNDER_TEST", "MUTMUT_CHILD_HITS")
           if name in os.environ},
    }


def run(target: str, home: Path, *args: str, timeout: float = 60.0
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SIM), target, *args], env=sim_env(home),
                          capture_output=True, text=True, timeout=timeout, check=False)


def leaked(payload: payloads.Payload, text: str) -> list[str]:
    return [secret for secret in payload.secrets if secret in text]


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "script.py"
    path.write_text(body)
    return str(path)


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_module_imports(target: str, tmp_path: Path) -> None:
    body = ("import importlib, pkgutil, credguard\n"
            "bad = []\n"
            "for m in pkgutil.walk_packages(credguard.__path__, 'credguard.'):\n"
            "    if m.name == 'credguard.__main__':\n"
            "        continue\n"
            "    try:\n"
            "        importlib.import_module(m.name)\n"
            "    except BaseException as exc:\n"
            "        bad.append(f'{m.name}: {exc!r}')\n"
            "import sys; print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n")
    proc = run(target, tmp_path / "home", "--script", script(tmp_path, body))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_platform_is_the_target(target: str, tmp_path: Path) -> None:
    body = ("from credguard import paths\n"
            "print(paths.native_platform(), paths.vault_dir(), paths.downloads_dir(),\n"
            "      sep='\\n')\n")
    proc = run(target, tmp_path / "home", "--script", script(tmp_path, body))
    assert proc.returncode == 0, proc.stderr
    name, vault, downloads = proc.stdout.splitlines()
    home = tmp_path / "home"
    assert name == {"nt": "windows", "darwin": "macos"}[target]
    assert downloads == str(home / "Downloads")
    if target == "nt":
        assert vault.startswith(str(home / "AppData"))
    else:
        assert vault.startswith(str(home / "Library" / "Application Support"))


def test_scan_finds_a_credential_in_downloads(target: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    sim_env(home)
    profile = payloads.publish_profile()
    (home / "Downloads" / "contoso.PublishSettings").write_bytes(profile.data)
    proc = run(target, home, "scan", "--json")
    assert proc.returncode == 1, proc.stderr  # findings
    found = json.loads(proc.stdout)
    assert [f["kind"] for f in found["findings"]] == ["azure-publish-profile"]
    assert found["findings"][0]["path"] == str(home / "Downloads" / "contoso.PublishSettings")
    assert not [s for s in found["skipped"] if s["reason"] == "unreadable"], found["skipped"]
    assert not leaked(profile, proc.stdout + proc.stderr)


def protect_a_download(target: str, home: Path
                       ) -> tuple[payloads.Payload, Path, str, subprocess.CompletedProcess[str]]:
    """A publish profile in Downloads, protected by ``credguard protect``: the payload, its
    path (deleted), its vault item and the command's run."""
    sim_env(home)
    profile = payloads.publish_profile()
    path = home / "Downloads" / "site.PublishSettings"
    path.write_bytes(profile.data)
    protected = run(target, home, "protect", str(path), "--json")
    assert protected.returncode == 0, protected.stdout + protected.stderr
    assert not path.exists()
    return profile, path, json.loads(protected.stdout)["results"][0]["item_id"], protected


def test_vault_round_trip(target: str, tmp_path: Path) -> None:
    """protect: vaulted and deleted; restore: the same bytes back."""
    home = tmp_path / "home"
    profile, path, item, protected = protect_a_download(target, home)
    listed = run(target, home, "vault", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert item in listed.stdout
    restored = run(target, home, "restore", item)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert path.read_bytes() == profile.data
    for proc in (protected, listed, restored):
        assert not leaked(profile, proc.stdout + proc.stderr)


def test_exec_hands_over_variables_and_refuses_files(target: str, tmp_path: Path) -> None:
    """Neither system has a RAM-only file system: ``exec --no-file`` hands the variables to
    the child; a handover with files is refused, saying so, and nothing is written."""
    home = tmp_path / "home"
    profile, _path, item, _protected = protect_a_download(target, home)
    body = ("import hashlib, os, sys\n"  # the secret is compared by digest: never in argv
            "value = os.environ.get('CREDGUARD_PUBLISH_PASSWORD', '').encode()\n"
            "sys.exit(0 if hashlib.sha256(value).hexdigest() in sys.argv[1:] else 9)\n")
    digests = [hashlib.sha256(secret.encode()).hexdigest() for secret in profile.secrets]
    child = [sys.executable, script(tmp_path, body), *digests]
    handed = run(target, home, "exec", "--no-file", item, "--", *child)
    assert handed.returncode == 0, handed.stderr
    refused = run(target, home, "exec", item, "--", sys.executable, "-c", "pass")
    system = {"nt": "Windows", "darwin": "macOS"}[target]
    assert refused.returncode != 0
    assert f"{system} has no RAM-only file system" in refused.stderr
    assert "--no-file" in refused.stderr
    for proc in (handed, refused):
        assert not leaked(profile, proc.stdout + proc.stderr)


def test_doctor_says_where_it_runs(target: str, tmp_path: Path) -> None:
    """``doctor`` there: its first line names the system's limits, and nothing Linux-only is
    judged (inotify's limits are Linux's)."""
    proc = run(target, tmp_path / "home", "doctor", "--json")
    checks = {c["check"]: c for c in json.loads(proc.stdout)["checks"]}
    system = {"nt": "Windows: never run on Windows", "darwin": "macOS: never run on a Mac"}
    assert checks["platform"]["detail"].startswith(system[target])
    assert not checks["platform"]["essential"]
    assert checks["inotify"]["detail"].startswith("no inotify here")
    assert "ram-dir" in checks and not checks["ram-dir"]["ok"]


def test_macos_flushes_the_drive_before_it_deletes(tmp_path: Path) -> None:
    """macOS' fsync leaves data in the drive's cache: the vault copy, the journal and the
    overwrite are flushed with F_FULLFSYNC there (``fs.at.sync``) before the plaintext goes."""
    home = tmp_path / "home"
    sim_env(home)
    path = home / "Downloads" / "site.PublishSettings"
    path.write_bytes(payloads.publish_profile().data)
    body = ("import sys\n"
            "from credguard.cli import main\n"
            "code = main(['protect', sys.argv[1]])\n"
            "flushed = sys.modules['platform_sim'].FULL_FSYNCS\n"
            "print(len(flushed))\n"
            "sys.exit(code)\n")
    proc = run("darwin", home, "--script", script(tmp_path, body), str(path))
    assert proc.returncode == 0, proc.stderr
    assert not path.exists()
    assert int(proc.stdout.split()[-1]) >= 3  # vault item, journal, overwrite at least


def _status(target: str, home: Path) -> dict[str, object] | None:
    proc = run(target, home, "status", "--json", timeout=30)
    if proc.returncode != 0:
        return None
    answer: dict[str, object] = json.loads(proc.stdout)
    return answer


@pytest.fixture
def short_home() -> Iterator[Path]:
    """A home with a short path: macOS' control socket is in ~/Library/Caches/TemporaryItems,
    and a Unix socket's path must fit in 104 bytes there (pytest's tmp_path does not)."""
    home = Path(tempfile.mkdtemp(prefix="cg-", dir="/tmp"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_daemon_starts_stays_up_and_protects(target: str, short_home: Path) -> None:
    home = short_home
    env = sim_env(home)
    daemon = subprocess.Popen([sys.executable, str(SIM), target, "daemon"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + STARTUP
        status = None
        while status is None or status.get("running") is not True:
            assert daemon.poll() is None, f"the daemon exited: {daemon.communicate()[1]}"
            assert time.monotonic() < deadline, "the daemon never answered status"
            time.sleep(0.5)
            status = _status(target, home)
        profile = payloads.publish_profile()
        dropped = home / "Downloads" / "dropped.PublishSettings"
        dropped.write_bytes(profile.data)
        deadline = time.monotonic() + 30  # polling: watchdog's native observers cannot load
        while dropped.exists():
            assert daemon.poll() is None, f"the daemon exited: {daemon.communicate()[1]}"
            assert time.monotonic() < deadline, "the daemon did not protect the download"
            time.sleep(0.3)
        time.sleep(2)
        assert daemon.poll() is None, "the daemon did not stay up"
        assert _status(target, home) is not None
    finally:
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=20)
    assert not leaked(profile, err)
    assert "Traceback" not in err, err


PROBE = '''\
"""Runs as a credguard module (the simulation applies Windows' C runtime to those)."""
import ctypes, errno, os, signal, socket, sys

def expect(name, call, error):
    try:
        call()
    except error:
        print("ok", name)
    else:
        print("MISSED", name)

expect("text mode", lambda: os.open(sys.argv[1], os.O_RDONLY), AssertionError)
expect("directory open", lambda: os.open(sys.argv[2], os.O_RDONLY | os.O_BINARY),
       PermissionError)
expect("dir_fd", lambda: os.stat("x", dir_fd=0), NotImplementedError)
expect("rename over", lambda: os.rename(sys.argv[1], sys.argv[3]), FileExistsError)
expect("fcntl", lambda: __import__("fcntl"), ImportError)
expect("pwd", lambda: __import__("pwd"), ImportError)
expect("AF_UNIX", lambda: socket.AF_UNIX, AttributeError)
expect("SIGHUP", lambda: signal.SIGHUP, AttributeError)
expect("SIGKILL", lambda: signal.SIGKILL, AttributeError)
expect("getuid", lambda: os.getuid(), AttributeError)
expect("fchmod", lambda: os.fchmod(0, 0o600), AttributeError)
expect("O_NOFOLLOW", lambda: os.O_NOFOLLOW, AttributeError)
expect("CDLL(None)", lambda: ctypes.CDLL(None), TypeError)
st = os.stat(sys.argv[2])
print("ok" if (st.st_uid, st.st_mode & 0o777) == (0, 0o777) else "MISSED", "stat")
'''


def test_the_nt_simulation_bites(tmp_path: Path) -> None:
    """What the simulation promises, from a module named like credguard's: each of Windows'
    differences that broke credguard before (issue 19) is there."""
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    runner = tmp_path / "runner.py"
    runner.write_text(
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('credguard.probe', {str(probe)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n")
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "other").write_bytes(b"y")
    (tmp_path / "dir").mkdir(mode=0o700)
    proc = run("nt", tmp_path / "home", "--script", str(runner), str(tmp_path / "file"),
               str(tmp_path / "dir"), str(tmp_path / "other"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 14 and all(line.startswith("ok ") for line in lines), proc.stdout


def test_win32_structures_have_the_sdk_layout() -> None:
    """The sizes and offsets the Windows SDK's headers give on x64 (Windows' ``ctypes`` lays
    fixed-width fields out as Linux' does on x86-64)."""
    from credguard.fs import win32

    t = win32.structures()
    sizes = {"UNICODE_STRING": 16, "OBJECT_ATTRIBUTES": 48, "IO_STATUS_BLOCK": 16,
             "FILE_DISPOSITION_INFO": 1, "FILE_DISPOSITION_INFO_EX": 4, "FILE_RENAME_INFO": 24}
    import ctypes

    assert {name: ctypes.sizeof(getattr(t, name)) for name in sizes} == sizes
    assert t.FILE_RENAME_INFO.RootDirectory.offset == 8
    assert t.FILE_RENAME_INFO.FileNameLength.offset == 16
    assert t.FILE_RENAME_INFO.FileName.offset == 20
    assert t.OBJECT_ATTRIBUTES.ObjectName.offset == 16
    assert t.OBJECT_ATTRIBUTES.Attributes.offset == 24
    assert win32.utf16("Ab\u00e9") == b"A\x00b\x00\xe9\x00"


@pytest.mark.parametrize(("win32", "nt"), [
    ("C:\\Users\\a\\Downloads\\x", "\\??\\C:\\Users\\a\\Downloads\\x"),
    ("\\\\server\\share\\x", "\\??\\UNC\\server\\share\\x"),
    ("\\\\?\\C:\\x", "\\??\\C:\\x"),
    ("\\\\?\\UNC\\server\\share\\x", "\\??\\UNC\\server\\share\\x"),
])
def test_full_paths_become_nt_object_names(win32: str, nt: str) -> None:
    """A path with no directory handle is opened by its NT name (drive, UNC and \\\\?\\ forms)."""
    from credguard.fs.win32 import nt_path

    assert nt_path(win32) == nt
