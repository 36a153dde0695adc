"""Stopping the real daemon while an import target runs (issue 12, item 4): the daemon still
exits within its 5 s promise, the target's whole process group dies with it, no plaintext RAM
copy is left, and the source is kept because the target never finished."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, running_daemon, wait_for
from helpers.home import Home, Run, sha, vault_shas
from helpers.processes import gone, group_members
from helpers.secret_service import SecretService

from credguard import paths
from credguard.protect import targets

pytestmark = pytest.mark.timeout(120)
Cli = Callable[..., Run]

# A hostile target: it ignores SIGTERM (and so do the sleeps it starts, which inherit that),
# keeps a background child in its group, and tells the test its pid and its RAM file.
STUBBORN = (
    'trap "" TERM; echo "$1" > {seen}.file; sleep 60 & echo $$ > {seen}.new; '
    "mv {seen}.new {seen}; sleep 60; wait"
)


def write_target(home: Home, name: str, script: str) -> None:
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    command = json.dumps(["sh", "-c", script, "sh", "{file}"])  # JSON strings are TOML strings
    home.config_file.write_text(f'[[targets]]\nname = "{name}"\ncommand = {command}\n')


@pytest.fixture
def target_daemon(
    secret_service: SecretService, home: Home, tmp_path: Path
) -> Iterator[tuple[DaemonProcess, Path]]:
    seen = tmp_path / "target-pid"
    write_target(home, "stubborn", STUBBORN.format(seen=seen))
    try:
        yield from ((d, seen) for d in running_daemon(dict(os.environ), tmp_path))
    finally:
        kill_group(seen)


def kill_group(seen: Path) -> None:
    """Test cleanup: the target's group, if a failed check left its leader running (checked
    by its command line, so a reused pid is never signalled)."""
    with contextlib.suppress(OSError, ValueError):
        leader = int(seen.read_text())
        if str(seen) in Path(f"/proc/{leader}/cmdline").read_text():
            os.killpg(leader, signal.SIGKILL)


def test_sigterm_during_a_target_kills_its_group_and_keeps_the_source(
    target_daemon: tuple[DaemonProcess, Path], home: Home
) -> None:
    daemon, seen = target_daemon
    data = payloads.publish_profile().data
    source = home.write("Downloads/contoso.PublishSettings", data)
    wait_for(seen.exists, timeout=20)
    leader = int(seen.read_text())
    ram_file = Path(Path(f"{seen}.file").read_text().strip())
    assert ram_file.read_bytes() == data  # the target really holds the RAM copy
    assert len(group_members(leader)) >= 2  # sh and its sleeps, in a group of their own
    assert os.getpgid(leader) == leader and os.getsid(leader) == leader

    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5, daemon.stderr()

    assert group_members(leader) == []  # nothing of the target outlives the daemon
    assert not ram_file.exists() and not ram_file.parent.exists()
    assert source.read_bytes() == data  # the target never finished: the source is kept
    journal = paths.user_state_dir() / "journal"
    assert not list(journal.glob("*.json"))  # rolled back, not left at "verified"
    failed = [e for e in audit_events(home.root / ".local" / "state") if e["event"] == "failed"]
    assert failed and failed[-1]["reason"] == "target-failed"
    assert "stubborn" in failed[-1]["detail"]
    # the vault copy stays (verified before the target ran); listing it runs recovery, which
    # must find nothing to finish (a "verified" entry would run the target again)
    assert vault_shas(daemon.env) == [sha(data)]
    assert source.read_bytes() == data


def test_a_targets_background_process_does_not_outlive_it(
    secret_service: SecretService, cli: Cli, home: Home, tmp_path: Path
) -> None:
    seen = tmp_path / "bg-pid"
    write_target(home, "leaves-a-child", f"sleep 60 & echo $! > {seen}; exit 0")
    path = home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)
    run = cli("protect", "--json", str(path))
    assert run.code == 0, run.err
    assert json.loads(run.out)["results"][0]["targets"][0]["ok"] is True
    background = int(seen.read_text())
    wait_for(lambda: gone(background), timeout=5)
    assert not path.exists()


def test_a_target_that_times_out_is_ended_with_its_group(
    secret_service: SecretService, cli: Cli, home: Home, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(targets, "TIMEOUT", 1.0)
    seen = tmp_path / "pid"
    write_target(home, "hangs", f'trap "" TERM; echo $$ > {seen}; sleep 60 & sleep 60')
    data = payloads.publish_profile().data
    path = home.write("Downloads/a.PublishSettings", data)
    started = time.monotonic()
    try:
        run = cli("protect", "--json", str(path))
    finally:
        kill_group(seen)  # (nothing is left to kill unless the code under test failed)
    assert time.monotonic() - started < 1.0 + targets.GRACE + 5
    result = json.loads(run.out)["results"][0]
    assert run.code == 4 and result["reason"] == "target-failed"
    assert result["targets"] == [{"name": "hangs", "ok": False, "detail": "timed out after 1 s"}]
    assert group_members(int(seen.read_text())) == []
    assert path.read_bytes() == data
    assert not list((paths.user_state_dir() / "journal").glob("*.json"))


def test_sigterm_to_protect_during_a_target_ends_its_group_and_keeps_the_source(
    secret_service: SecretService, home: Home, tmp_path: Path
) -> None:
    """`credguard protect` itself is stopped (SIGTERM) while a target runs: it unwinds like
    Ctrl-C — the target's group is ended, its RAM copy removed, the journal entry rolled back —
    and exits 143; the source is kept and the next command has nothing to finish."""
    import subprocess
    import sys

    seen = tmp_path / "target-pid"
    write_target(home, "stubborn", STUBBORN.format(seen=seen))
    data = payloads.publish_profile().data
    source = home.write("Downloads/contoso.PublishSettings", data)
    proc = subprocess.Popen([sys.executable, "-m", "credguard", "protect", str(source)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(seen.exists, timeout=20)
        leader = int(seen.read_text())
        ram_file = Path(Path(f"{seen}.file").read_text().strip())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        kill_group(seen)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "terminated" in err
    assert group_members(leader) == []
    assert not ram_file.exists() and not ram_file.parent.exists()
    assert source.read_bytes() == data
    assert not list((paths.user_state_dir() / "journal").glob("*.json"))
