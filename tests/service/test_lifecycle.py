"""``credguard start|stop|restart`` against the real daemon.

No systemd user manager runs here (nor in CI), so the background path is the real one: a
detached ``credguard daemon`` found again through its control socket. The service path runs
through a stand-in ``systemctl`` (and ``launchctl``/``schtasks``), the one fake here, because
no real service manager can run on this machine; it starts the real daemon the way a
``Type=notify`` unit would, and records every command line it was given.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from helpers.daemon import wait_for
from helpers.home import Home, run_subprocess
from helpers.schemas import validate

from credguard.errors import StateError
from credguard.service import background
from credguard.service.launchd import LaunchdBackend
from credguard.service.windows import WindowsBackend

pytestmark = pytest.mark.timeout(90)
_PID = re.compile(r"pid (\d+)")


def pid_in(text: str) -> int:
    found = _PID.search(text)
    assert found, text
    return int(found.group(1))


def daemons_of(home: Home) -> list[psutil.Process]:
    """Live ``credguard daemon`` processes whose environment is this test's home."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if cmd[-1:] == ["daemon"] and any("credguard" in w for w in cmd):
            try:
                if proc.environ().get("HOME") == str(home.root):
                    found.append(proc)
            except psutil.Error:
                continue
    return found


@pytest.fixture
def reaper(home: Home) -> Iterator[None]:
    """A failed test must not leave a daemon behind."""
    yield
    procs = daemons_of(home)
    for proc in procs:
        proc.terminate()
    psutil.wait_procs(procs, timeout=10)


def status_pid() -> int | None:
    run = run_subprocess("status", "--json")
    doc = json.loads(run.out)
    return doc.get("pid") if doc.get("running") else None


def test_start_stop_restart_in_the_background(home: Home, reaper: None) -> None:
    started = run_subprocess("start")
    assert started.code == 0, started.err
    pid = pid_in(started.out)
    assert "started the daemon" in started.out and "as a background process" in started.out
    assert str(background.log_file()) in started.out
    assert "credguard service install" in started.out  # why not the service, calmly
    assert "error" not in started.out + started.err
    assert status_pid() == pid and psutil.Process(pid).uids().real == os.getuid()
    assert background.pid_file().read_text().strip() == str(pid)

    again = run_subprocess("start")
    assert again.code == 0 and f"already running (pid {pid}" in again.out

    restarted = run_subprocess("restart", "--json")
    assert restarted.code == 0, restarted.err
    doc = json.loads(restarted.out)
    assert doc["action"] == "restarted" and doc["previous_pid"] == pid
    assert doc["pid"] != pid and not psutil.pid_exists(pid)
    assert status_pid() == doc["pid"]

    stopped = run_subprocess("stop")
    assert stopped.code == 0, stopped.err
    assert stopped.out.startswith(f"credguard: stopped the daemon (pid {doc['pid']}")
    assert not psutil.pid_exists(doc["pid"]) and daemons_of(home) == []
    assert not background.pid_file().exists()
    nothing = run_subprocess("stop")
    assert (nothing.code, nothing.out.strip()) == (0, "credguard: the daemon is not running; "
                                                      "nothing to stop")
    status = run_subprocess("status", "--json")
    assert json.loads(status.out)["start"] == "credguard start"


def test_json_documents_of_start_stop_restart(home: Home, reaper: None) -> None:
    started = run_subprocess("start", "--json")
    assert started.code == 0, started.err
    doc = validate(started.out, "start")
    assert (doc["action"], doc["via"], doc["previous_pid"]) == ("started", "a background process",
                                                                None)
    assert doc["log"] == str(background.log_file()) and "service install" in doc["note"]
    pid = doc["pid"]
    again = validate(run_subprocess("start", "--json").out, "start")
    assert (again["action"], again["pid"], again["log"]) == ("running", pid, None)
    restarted = validate(run_subprocess("restart", "--json").out, "restart")
    assert (restarted["action"], restarted["previous_pid"]) == ("restarted", pid)
    stopped = run_subprocess("stop", "--json")
    assert stopped.code == 0, stopped.err
    assert validate(stopped.out, "stop") == {
        "version": 1, "action": "stopped", "via": "a background process",
        "pid": restarted["pid"], "previous_pid": None, "log": None, "note": None}
    absent = validate(run_subprocess("stop", "--json").out, "stop")
    assert (absent["action"], absent["pid"]) == ("absent", None)
    assert daemons_of(home) == []


def test_start_reports_a_daemon_that_exits_at_once(home: Home, reaper: None) -> None:
    home.write(".config/credguard/config.toml", "[scan\n")
    run = run_subprocess("start")
    assert run.code == 8 and "exited at once" in run.err  # it failed to start (TargetError)
    assert run.out == ""
    assert "config.toml" in run.err  # the end of daemon.log says why
    assert not background.pid_file().exists() and daemons_of(home) == []


@pytest.mark.security
def test_stop_never_signals_another_users_process(tmp_path: Path) -> None:
    """A daemon that gives the pid of another user's process is refused (needs root to run
    a process as another uid)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run a process as another uid")
    other = subprocess.Popen(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "30"]
    )
    try:
        wait_for(lambda: psutil.Process(other.pid).uids().real == 65534, timeout=10)
        with pytest.raises(StateError, match="another user"):
            background.stop(background.Running(other.pid, "protecting"))
        assert other.poll() is None
    finally:
        other.kill()
        other.wait(10)


FAKE_SYSTEMCTL = """\
#!/bin/sh
# stand-in for systemctl --user: records its arguments, runs the unit's ExecStart like a
# Type=notify unit (returns once the daemon answers)
echo "$*" >> "{log}"
pidf="{state}/fake-unit.pid"
alive() {{ [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; }}
stop() {{ if alive; then p=$(cat "$pidf"); kill "$p"
  while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; fi; rm -f "$pidf"; }}
begin() {{ alive && return 0; exe=$(sed -n 's/^ExecStart=\\(.*\\) daemon$/\\1/p' "{unit}")
  "$exe" daemon >>"{state}/fake-unit.log" 2>&1 & echo $! > "$pidf"
  i=0; until "$exe" status >/dev/null 2>&1 || [ $i -ge 150 ]; do sleep 0.1; i=$((i+1)); done; }}
case "$2" in
  show-environment) echo HOME=$HOME ;;
  is-active) if alive; then echo active; else echo inactive; exit 3; fi ;;
  start) begin ;;
  stop) stop ;;
  restart) stop; begin ;;
esac
exit 0
"""


def fake_tool(bin_dir: Path, name: str, text: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text(text)
    tool.chmod(0o755)


def test_the_installed_systemd_unit_is_used(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reaper: None
) -> None:
    """systemd cannot run here: a recording stand-in ``systemctl`` (see the module docstring)
    runs the real daemon from the real unit's ExecStart line."""
    log, state = tmp_path / "systemctl.log", tmp_path
    unit = home.root / ".config" / "systemd" / "user" / "credguard.service"
    fake_tool(tmp_path / "bin", "systemctl",
              FAKE_SYSTEMCTL.format(log=log, state=state, unit=unit))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    installed = run_subprocess("service", "install", "--no-start")
    assert installed.code == 0 and "credguard start" in installed.out
    assert "systemctl --user start" not in installed.out

    started = run_subprocess("start")
    assert started.code == 0, started.err
    pid = pid_in(started.out)
    assert "as systemd user unit credguard.service" in started.out
    assert status_pid() == pid and not background.pid_file().exists()
    service = run_subprocess("service", "status", "--json")
    assert service.code == 0, service.err  # the service manager runs it
    doc = validate(service.out, "service-status")
    assert (doc["backend"], doc["running"], doc["responding"]) == ("systemd", True, True)
    restarted = run_subprocess("restart")
    assert restarted.code == 0 and f"was {pid})" in restarted.out
    new_pid = pid_in(restarted.out)
    stopped = run_subprocess("stop")
    assert stopped.code == 0, stopped.err
    assert f"stopped the daemon (pid {new_pid}, systemd user unit credguard.service)" in stopped.out
    assert daemons_of(home) == []
    calls = [line for line in log.read_text().splitlines() if "show-environment" not in line]
    assert [c for c in calls if c.split()[1] in ("start", "stop", "restart")] == [
        "--user start credguard.service",
        "--user restart credguard.service",
        "--user stop credguard.service",
    ]


RECORDER = textwrap.dedent("""\
    #!/bin/sh
    echo "$0 $*" >> "{log}"
    case "$1 $2" in "print gui/"*/*) exit {loaded} ;; esac
    exit 0
""")


@pytest.mark.parametrize("loaded", [0, 1])
def test_launchd_and_task_scheduler_command_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loaded: int
) -> None:
    """launchctl and schtasks do not exist here: recording stand-ins check the command lines
    (an agent that is loaded is kickstarted, else bootstrapped)."""
    log = tmp_path / "calls.log"
    for name in ("launchctl", "schtasks"):
        fake_tool(tmp_path / "bin", name, RECORDER.format(log=log, loaded=loaded))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    launchd, task = LaunchdBackend(), WindowsBackend()
    for svc in (launchd, task):
        svc.start()
        svc.restart()
        svc.stop()
    calls = [line.split(" ", 1)[1] for line in log.read_text().splitlines()
             if not line.split(" ", 1)[1].startswith("print ")]
    target, plist = launchd.target, launchd.definition_path()
    launchd_calls = (
        [f"kickstart {target}", f"kickstart -k {target}", f"bootout {target}"] if loaded == 0
        else [f"bootstrap {launchd.domain} {plist}"] * 2
    )
    # the task's trigger repeats every minute: stop disables it first, start enables it again
    enable, disable = "/Change /TN credguard /ENABLE", "/Change /TN credguard /DISABLE"
    assert calls == [*launchd_calls, enable, "/Run /TN credguard",
                     disable, "/End /TN credguard", enable, "/Run /TN credguard",
                     disable, "/End /TN credguard"]


def test_lifecycle_help_lists_the_verbs() -> None:
    run = subprocess.run([sys.executable, "-m", "credguard", "--help"], capture_output=True,
                         text=True, timeout=30, check=True)
    for verb in ("start", "stop", "restart"):
        assert re.search(rf"^\s+{verb}\s", run.stdout, re.M), run.stdout
