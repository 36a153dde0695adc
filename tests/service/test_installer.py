"""``installers/install.sh`` for real: a venv under a temporary HOME, pip-installed from this
checkout (PyPI for the dependencies, through the developer's pip cache), ``credguard doctor``,
and the systemd user unit written with ``--no-start``; then ``--uninstall``, which must keep
the vault unless asked twice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from helpers.home import REPO, Home, systemd_verify

from credguard import __version__

SCRIPT = REPO / "installers" / "install.sh"
# the real pip cache, looked up before the test HOME replaces it: keeps the install ~10-20 s
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or str(
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pip"
)


def install_sh(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "PIP_CACHE_DIR": PIP_CACHE,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    return subprocess.run(
        ["sh", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def processes_under(root: Path) -> list[str]:
    """Command lines of live processes that run something from ``root`` (a left-over daemon)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(root) in cmdline:
            found.append(cmdline)
    return found


@pytest.fixture
def reaper(home: Home) -> Iterator[None]:
    """Terminate whatever still runs from the test HOME when the test ends (a failed test must
    not leave a daemon behind)."""
    yield
    procs = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(home.root) in " ".join(p.info["cmdline"] or [])
    ]
    for proc in procs:
        proc.terminate()
    psutil.wait_procs(procs, timeout=10)


@pytest.mark.parametrize("shell", ["sh", "bash", "dash"])
def test_install_sh_syntax(shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    proc = subprocess.run(
        [shell, "-n", str(SCRIPT)], capture_output=True, text=True, timeout=30, check=False
    )
    assert (proc.returncode, proc.stderr) == (0, "")


def test_install_sh_rejects_unknown_options() -> None:
    proc = install_sh("--bogus")
    assert proc.returncode == 2 and "unknown option" in proc.stderr
    proc = install_sh("--purge-vault")
    assert proc.returncode == 2 and "--uninstall" in proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_install_no_start_then_uninstall(home: Home, reaper: None) -> None:
    data = home.root / ".local" / "share" / "credguard"
    link = home.root / ".local" / "bin" / "credguard"
    unit = home.root / ".config" / "systemd" / "user" / "credguard.service"

    proc = install_sh("--no-start", "--venv")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (data / "venv" / "bin" / "python").exists()
    version = subprocess.run(
        [str(link), "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert version.stdout.strip() == f"credguard {__version__}"
    assert f"ExecStart={data / 'venv' / 'bin' / 'credguard'} daemon" in unit.read_text()
    assert "== credguard doctor" in proc.stderr and "keystore" in proc.stdout  # doctor ran
    status = subprocess.run(
        [str(link), "status"], capture_output=True, text=True, timeout=60, check=False
    )
    assert status.returncode != 0 and "not running" in status.stdout
    assert processes_under(home.root) == []
    verify = systemd_verify(unit)
    assert (verify.returncode, verify.stderr) == (0, "")

    # again, starting: no user manager here, so the daemon runs in the background instead
    rerun = install_sh("--venv")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "started in the background" in rerun.stderr
    assert "credguard daemon: running" in rerun.stdout
    assert processes_under(home.root) != []

    (data / "vault").mkdir(mode=0o700, exist_ok=True)
    (data / "vault" / "item").write_bytes(b"sealed")
    once = install_sh("--uninstall", "--purge-vault")  # asked once, no terminal: kept
    assert once.returncode == 0, once.stderr
    assert "must be given twice" in once.stderr
    assert not (data / "venv").exists() and not link.is_symlink() and not unit.exists()
    assert (data / "vault" / "item").read_bytes() == b"sealed"
    assert processes_under(home.root) == []  # the background daemon was stopped

    again = install_sh("--uninstall")
    assert again.returncode == 0, again.stderr
    twice = install_sh("--uninstall", "--purge-vault", "--purge-vault")
    assert twice.returncode != 0 and "not installed" in twice.stderr  # cannot destroy safely
    assert (data / "vault" / "item").read_bytes() == b"sealed"
