"""The worker's less travelled paths, against the real daemon process: a file another process
still holds open for writing (the busy retry), the ``import`` policy action, and a file that
changes between detection and deletion (the "changed" retry)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, running_daemon, wait_for
from helpers.home import Home, sha, vault_shas
from helpers.secret_service import SecretService

from credguard.daemon.runtime import SETTLE
from credguard.daemon.worker import BUSY_RETRY
from credguard.protect.faults import STOP_ENV

pytestmark = pytest.mark.timeout(180)


def events(home: Home, name: str) -> list[dict[str, Any]]:
    return [e for e in audit_events(home.root / ".local" / "state") if e["event"] == name]


def download(home: Home, name: str, data: bytes) -> Path:
    """Chrome-style: write NAME.crdownload, then rename it to NAME."""
    partial = home.downloads / f"{name}.crdownload"
    partial.write_bytes(data)
    final = home.downloads / name
    partial.rename(final)
    return final


def queued(daemon: DaemonProcess) -> int:
    status = daemon.status()
    assert status is not None, daemon.stderr()
    count: int = status["queue"]
    return count


@pytest.fixture
def daemon(secret_service: SecretService, home: Home, tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


def test_a_file_open_for_writing_waits_until_it_is_closed(
    daemon: DaemonProcess, home: Home
) -> None:
    """The whole credential is on disk but its writer has not closed it: the settle reports
    it, the worker finds it still open for writing (facts.being_written) and queues it again
    every BUSY_RETRY s instead of protecting it; once closed, it is protected."""
    data = payloads.publish_profile().data
    path = home.downloads / "open.PublishSettings"
    with path.open("wb") as writer:
        writer.write(data)
        writer.flush()
        # settled and examined: queued again, or (the bug) protected at once
        wait_for(lambda: not path.exists() or queued(daemon) >= 1, timeout=10 * SETTLE)
        samples = []
        for _ in range(8):  # about 3 retries: each status call is a process of its own
            samples.append(queued(daemon))
            assert path.exists(), "protected while still open for writing"
            assert sha(path.read_bytes()) == sha(data)  # digests only: no secret printed
            time.sleep(BUSY_RETRY / 3)
        # the retry keeps it queued: at most one sample may fall between a take and a put
        assert sum(n >= 1 for n in samples) >= len(samples) - 1, samples
        assert vault_shas(daemon.env) == []
        assert events(home, "detected") == []
    wait_for(lambda: not path.exists(), timeout=10)
    assert vault_shas(daemon.env) == [sha(data)]
    assert [e["path"] for e in events(home, "protected")] == [str(path)]


def test_import_policy_vaults_a_copy_and_keeps_the_file(
    secret_service: SecretService, home: Home, tmp_path: Path
) -> None:
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text('[policy]\nazure-publish-profile = { downloads = "import" }\n')
    daemon = DaemonProcess(dict(os.environ), tmp_path / "daemon.log").start()
    try:
        first, second = payloads.publish_profile().data, payloads.publish_profile().data
        path = download(home, "contoso.PublishSettings", first)
        wait_for(lambda: events(home, "imported") or not path.exists(), timeout=15)
        assert path.exists(), "import deleted the file"
        # the same content again (a close after writing: examined at once), then another
        # credential, queued after it: once that is imported, the rewrite has been examined
        path.write_bytes(first)
        other = download(home, "fabrikam.PublishSettings", second)
        wait_for(lambda: len(events(home, "imported")) == 2, timeout=15)
        assert [sha(p.read_bytes()) for p in (path, other)] == [sha(first), sha(second)]  # kept
        assert vault_shas(daemon.env) == sorted([sha(first), sha(second)])  # once each
        imported = events(home, "imported")
        assert [e["path"] for e in imported] == [str(path), str(other)]
        assert all(e["item_id"] for e in imported)
        assert [e["action"] for e in events(home, "detected")] == ["import", "import"]
        assert events(home, "protected") == [] and events(home, "failed") == []
    finally:
        assert daemon.stop() == 0


def stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP): state T in /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] == "T"


def test_a_file_changed_before_its_deletion_is_protected_in_its_final_form(
    secret_service: SecretService, home: Home, tmp_path: Path
) -> None:
    """The daemon stops itself (CREDGUARD_TEST_STOP_AT) once the vault copy is verified and
    before the leftover is deleted; meanwhile the file grows. The deletion refuses a file that
    is not what was vaulted ("changed"), and only the worker's own retry brings it back: the
    change is made through a hard link in a folder nobody watches (removed again before the
    daemon goes on), so no watcher event queues the file a second time."""
    env = {**os.environ, STOP_ENV: "after-verify"}
    daemon = DaemonProcess(env, tmp_path / "daemon.log").start()
    assert daemon.proc is not None
    pid = daemon.proc.pid
    try:
        original = payloads.publish_profile().data
        final = original + b"<!-- saved again -->\n"
        path = download(home, "changing.PublishSettings", original)
        wait_for(lambda: stopped(pid), timeout=15)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        os.link(path, elsewhere / "link")
        with (elsewhere / "link").open("ab") as fh:
            fh.write(final[len(original):])
        os.unlink(elsewhere / "link")
        os.kill(pid, signal.SIGCONT)
        stops = 1

        def protected_or_stopped() -> bool:
            nonlocal stops
            if stopped(pid):  # the retry reached the same step again
                stops += 1
                os.kill(pid, signal.SIGCONT)
            return not path.exists()

        wait_for(protected_or_stopped, timeout=20)
        assert stops == 2
        # the first copy stays
        assert vault_shas(dict(os.environ)) == sorted([sha(original), sha(final)])
        (done,) = events(home, "protected")
        assert done["path"] == str(path)
        assert events(home, "failed") == []
    finally:
        os.kill(pid, signal.SIGCONT)  # a stopped daemon would never see the SIGTERM
        daemon.stop()
