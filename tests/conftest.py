"""Test isolation: every test gets its own HOME and XDG directories, and nothing from the
developer's or CI's real environment (config, Azure dirs, keyring) can leak in."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from credguard.cli import main

pytest_plugins = ["secret_service", "notification_server"]  # real D-Bus service fixtures

REPO = Path(__file__).resolve().parent.parent
_SCRUB_PREFIXES = ("CREDGUARD_", "AZURE_", "AZD_", "XDG_", "PYTHON_KEYRING")
# read before the autouse ``home`` fixture scrubs CREDGUARD_* from each test's environment
_TEST_AZ = os.environ.get("CREDGUARD_TEST_AZ", "")
# keep the real az offline: no telemetry (it would spawn a detached uploader that outlives the
# command and writes telemetry/, logs/ and telemetry.txt into the config dir), no survey prompt
AZ_OFFLINE_ENV = {"AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_SURVEY_MESSAGE": "false"}


@dataclass
class Home:
    """A private home directory laid out like a Linux desktop user's."""

    root: Path

    @property
    def downloads(self) -> Path:
        return self.root / "Downloads"

    @property
    def desktop(self) -> Path:
        return self.root / "Desktop"

    @property
    def documents(self) -> Path:
        return self.root / "Documents"

    @property
    def azure(self) -> Path:
        return self.root / ".azure"

    @property
    def config_file(self) -> Path:
        return self.root / ".config" / "credguard" / "config.toml"

    @property
    def policy_file(self) -> Path:
        return self.root / "etc-xdg" / "credguard" / "policy.toml"

    def write(self, rel: str, data: bytes | str, mode: int = 0o600) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        path.chmod(mode)
        return path


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    root = tmp_path / "home"
    for sub in ("Downloads", "Desktop", "Documents"):
        (root / sub).mkdir(parents=True)
    for name in list(os.environ):
        if name.startswith(_SCRUB_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("HOME", str(root))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(root / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(root / ".local" / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(root / "etc-xdg"))
    # a short private runtime dir: the daemon's control socket path must stay < 108 bytes
    runtime = Path(tempfile.mkdtemp(prefix="cg-rt-"))
    runtime.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    yield Home(root)
    shutil.rmtree(runtime, ignore_errors=True)


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> object:
    """Run the CLI in-process: ``cli("scan", "--json", path) -> Run``."""

    def run(*args: str) -> Run:
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def run_subprocess(*args: str, timeout: float = 60, **kwargs: object) -> Run:
    """Run ``python -m credguard`` as a real process with the test's environment."""
    proc = subprocess.run(
        [sys.executable, "-m", "credguard", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def vault_shas(env: dict[str, str]) -> list[str]:
    """The sha256 of every vault item. Listing the vault is a credguard command, so it runs
    crash recovery first."""
    run = run_subprocess("vault", "list", "--json", env=env)
    assert run.code == 0, run.err
    return sorted(i["sha256"] for i in json.loads(run.out))


def systemd_verify(unit: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze --user verify`` with a throwaway runtime dir (no user manager needed)."""
    with tempfile.TemporaryDirectory(prefix="cg-verify-") as runtime:
        return subprocess.run(
            ["systemd-analyze", "--user", "verify", str(unit)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "XDG_RUNTIME_DIR": runtime},
        )


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
