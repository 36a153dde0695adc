"""credguard without a console, as the Windows task runs it: ``credguardw.exe`` starts pythonw,
whose ``sys.stdout`` and ``sys.stderr`` are None.

pythonw does not exist here, so each test runs a real Python process that sets both streams to
None before it calls ``credguard.cli.main``: the state pythonw starts credguard in.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers.home import Home

from credguard.service import background

pytestmark = pytest.mark.timeout(60)


def run_windowless(*argv: str) -> subprocess.CompletedProcess[str]:
    """``credguard ARGV`` in a process whose stdout and stderr are None, as under pythonw."""
    code = ("import sys\n"
            "sys.stdout = sys.stderr = None\n"
            "from credguard.cli import main\n"
            f"sys.exit(main({list(argv)!r}))\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=False, stdin=subprocess.DEVNULL)


def daemon_log() -> Path:
    return background.log_file()


def test_version_without_streams_exits_0(home: Home) -> None:
    proc = run_windowless("--version")
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr


def test_a_usage_error_without_streams_lands_in_the_daemon_log(home: Home) -> None:
    proc = run_windowless("no-such-verb")
    assert proc.returncode == 2 and proc.stderr == "", proc.stderr
    log = daemon_log()
    assert "invalid choice: 'no-such-verb'" in log.read_text()
    assert log.stat().st_mode & 0o777 == 0o600


def test_a_refused_configuration_at_daemon_start_is_in_the_daemon_log(home: Home) -> None:
    """What an installer shows when the task's daemon exits at once: why, in daemon.log."""
    home.write(".config/credguard/config.toml", "this is = = not toml\n")
    proc = run_windowless("daemon")
    assert proc.returncode == 3 and proc.stderr == "", proc.stderr
    assert "credguard: error:" in daemon_log().read_text()


def test_an_unwritable_log_falls_back_to_devnull(home: Home) -> None:
    state = daemon_log().parent
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("a file where the state directory should be")  # the log cannot be opened
    proc = run_windowless("no-such-verb")
    assert proc.returncode == 2 and proc.stderr == "", proc.stderr
