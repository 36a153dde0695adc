"""``credguard open ID [--for DURATION]`` and ``credguard close ID`` (issue 18, item 1): the item
as a file under its original name in a private RAM directory (a real tmpfs), removed when its
time is up — by the command waiting in the foreground, by the running daemon once told (the
command may exit, as when its terminal closes), or by the next command after a SIGKILL — or at
once by Ctrl-C or ``close``; each step audited; bad input refused with nothing written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, running_daemon, wait_for
from helpers.home import Home, Run, run_subprocess
from helpers.secret_service import SecretService

from credguard.errors import ExitCode
from credguard.fs.facts import fs_type
from credguard.handoff.ramdir import RAM_FS

# each test its own tmpfs RAM directory: open copies in the shared /dev/shm/credguard-<uid>
# would be swept by any other credguard of the same uid (another test run, a benchmark)
pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("tmpfs_runtime")]
Cli = Callable[..., Run]


def vaulted(cli: Cli, home: Home) -> tuple[str, bytes]:
    """A publish profile protected from outside the daemon's folders: its id and bytes."""
    payload = payloads.publish_profile("opened")
    path = home.write("work/contoso.PublishSettings", payload.data)
    run = cli("protect", "--json", str(path))
    assert run.code == 0, run.err
    return str(json.loads(run.out)["results"][0]["id"]), payload.data


def start_open(env: dict[str, str], item: str, duration: str) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen([sys.executable, "-m", "credguard", "open", item, "--for", duration],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        pytest.fail(f"open printed no path: {ended(proc)}")
    return proc, Path(line)


def ended(proc: subprocess.Popen[str], timeout: float = 20) -> tuple[int, str]:
    """Its exit code and stderr, once it has ended (its pipes closed)."""
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def events(home: Home, *names: str) -> list[dict[str, object]]:
    return [e for e in audit_events(home.root / ".local" / "state") if e["event"] in names]


def test_a_copy_lives_its_time_in_ram_under_its_own_name(
        secret_service: SecretService, cli: Cli, home: Home) -> None:
    item, data = vaulted(cli, home)
    proc, file = start_open(dict(os.environ), item, "2s")
    assert file.name == "contoso.PublishSettings" and file.read_bytes() == data
    assert file.stat().st_mode & 0o777 == 0o600
    assert file.parent.stat().st_mode & 0o777 == 0o700
    assert fs_type(file) in RAM_FS
    assert ended(proc)[0] == 0
    assert not file.parent.exists()
    assert [(e["event"], e["item_id"]) for e in events(home, "opened", "expired")] == [
        ("opened", item), ("expired", item)]
    assert data.decode(errors="replace") not in str(events(home, "opened", "expired"))


def test_ctrl_c_removes_it_at_once(secret_service: SecretService, cli: Cli, home: Home) -> None:
    item, _ = vaulted(cli, home)
    proc, file = start_open(dict(os.environ), item, "5m")
    proc.send_signal(signal.SIGINT)
    assert ended(proc)[0] == 0
    assert not file.parent.exists()
    assert [e.get("reason") for e in events(home, "closed")] == ["interrupted"]


def test_close_removes_it_and_the_waiting_command_ends(
        secret_service: SecretService, cli: Cli, home: Home) -> None:
    item, _ = vaulted(cli, home)
    proc, file = start_open(dict(os.environ), item, "5m")
    run = run_subprocess("close", item[:8])
    assert run.code == 0, run.err
    assert not file.parent.exists()
    assert ended(proc)[0] == 0
    assert [e.get("reason") for e in events(home, "closed")] == ["close"]
    again = run_subprocess("close", item)
    assert again.code == ExitCode.NOT_FOUND and "no open copy" in again.err


def test_a_sigkilled_open_leaves_the_copy_only_until_the_next_command(
        secret_service: SecretService, cli: Cli, home: Home) -> None:
    item, _ = vaulted(cli, home)
    proc, file = start_open(dict(os.environ), item, "2s")
    proc.kill()
    ended(proc)
    assert file.exists()  # nobody was left to remove it
    assert run_subprocess("vault", "list").code == 0  # not due yet: kept
    assert file.exists()
    time.sleep(2.5)
    assert run_subprocess("vault", "list").code == 0
    assert not file.parent.exists()
    assert [e.get("reason") for e in events(home, "expired")] == ["swept"]


@pytest.mark.parametrize("duration", ["0", "-1", "2h", "61m", "soon", ""])
def test_a_bad_duration_is_refused_before_anything_is_written(
        secret_service: SecretService, cli: Cli, home: Home, duration: str) -> None:
    item, _ = vaulted(cli, home)
    run = cli("open", item, "--for", duration)
    assert run.code == ExitCode.USAGE, run.err
    assert "nothing was opened" in run.err and run.out == ""
    assert events(home, "opened") == []


def test_unknown_ids_and_no_ram_are_refused(
        secret_service: SecretService, cli: Cli, home: Home,
        monkeypatch: pytest.MonkeyPatch) -> None:
    item, _ = vaulted(cli, home)
    assert cli("open", "0123456789abcdef").code == ExitCode.NOT_FOUND
    assert cli("close", "0123456789abcdef").code == ExitCode.NOT_FOUND
    from credguard import paths

    monkeypatch.setattr(paths, "ram_dir_candidates", lambda: [home.root])  # ext4, not RAM
    run = cli("open", item)
    assert run.code == ExitCode.STATE and "refuses to write the credential to disk" in run.err
    assert events(home, "opened") == []


@pytest.fixture
def daemon(secret_service: SecretService, home: Home, tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


def test_the_daemon_owns_the_timer_once_told(
        daemon: DaemonProcess, cli: Cli, home: Home) -> None:
    item, data = vaulted(cli, home)
    proc, file = start_open(daemon.env, item, "2s")
    code, err = ended(proc)
    assert code == 0 and "the daemon removes it at" in err  # returned at once
    assert file.read_bytes() == data
    wait_for(lambda: not file.parent.exists(), timeout=30)
    wait_for(lambda: [e.get("reason") for e in events(home, "expired")] == ["daemon"],
             timeout=10)


def test_the_daemon_owns_only_a_copy_it_sees_in_its_context(
        daemon: DaemonProcess, home: Home) -> None:
    """Asked from a process of the daemon's own environment (this test's process has another
    managed policy path, so another context)."""
    code = """if True:
        import json, sys
        from credguard import control
        from credguard.control.protect import context
        ctx = context()
        name = "open-1796392200-" + "a" * 32 + "-9c1e0f3a"
        other = {"key": ctx["key"], "digest": "0" * 64}
        print(json.dumps([control.request("opened", name=name, context=c) for c in (ctx, other)]))
    """
    out = subprocess.run([sys.executable, "-c", code], env=daemon.env, capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out) == [
        {"refused": "no such open copy in the daemon's RAM directory"},
        {"refused": "another configuration or environment than the daemon's"}]
