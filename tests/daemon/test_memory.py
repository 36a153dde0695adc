"""What a burst of credentials leaves in the daemon (issue 16): once the queue drains it hands the
memory back, once per burst rather than once per file, and nothing it kept per file outlives the
file's protection. Structural, never timed: the RSS itself is ``benchmarks/daemon_memory.py``'s.

Against real components: the daemon process, or in-process its real host (``runtime.Daemon``),
watcher (real inotify), queue, worker and vault on the test's private Secret Service; the
control server and the reconciler are not started there (they take no part in a burst)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, running_daemon, wait_for
from helpers.home import Home, sha, vault_shas
from helpers.secret_service import SecretService

from credguard import config
from credguard.daemon import runtime, worker
from credguard.daemon.workqueue import WorkQueue

pytestmark = pytest.mark.timeout(180)
RELEASED = re.compile(r"queue drained after (\d+) item\(s\); memory handed back")


def events(home: Home, name: str) -> list[dict[str, Any]]:
    return [e for e in audit_events(home.root / ".local" / "state") if e["event"] == name]


def burst(home: Home, stage: Path, tag: str, count: int) -> list[bytes]:
    """``count`` fresh publish profiles written outside the roots, then renamed into
    ~/Downloads one right after the other; their contents."""
    stage.mkdir(parents=True, exist_ok=True)
    datas = [payloads.publish_profile(f"{tag}-{i}").data for i in range(count)]
    for i, data in enumerate(datas):
        (stage / f"{tag}-{i}.PublishSettings").write_bytes(data)
    for i in range(count):
        os.rename(stage / f"{tag}-{i}.PublishSettings",
                  home.downloads / f"{tag}-{i}.PublishSettings")  # fmt: skip
    return datas


@pytest.fixture
def daemon(secret_service: SecretService, home: Home, tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


def test_the_daemon_hands_memory_back_once_a_burst_is_done(
    daemon: DaemonProcess, home: Home, tmp_path: Path
) -> None:
    """25 credentials at once: all protected, then the log says the memory went back, once for
    the whole burst (every item examined counted in it) and not again while the daemon idles."""
    datas = burst(home, tmp_path / "stage", "burst", 25)
    wait_for(lambda: len(events(home, "protected")) == 25, timeout=60)
    assert sorted(sha(d) for d in datas) == vault_shas(daemon.env)
    (examined,) = wait_for(lambda: RELEASED.findall(daemon.stderr()), timeout=15)
    assert int(examined) >= 25
    time.sleep(3 * worker.QUIET)  # idle: nothing more to hand back
    assert len(RELEASED.findall(daemon.stderr())) == 1
    status = daemon.status()
    assert status is not None and status["queue"] == 0


class Host(runtime.Daemon):
    """The real daemon, counting the worker's "burst over" calls (each still runs for real)."""

    def __init__(self, cfg: config.Config) -> None:
        super().__init__(cfg)
        self.settles: list[int] = []

    def settled(self, examined: int) -> None:
        super().settled(examined)
        self.settles.append(examined)


@pytest.fixture
def host(secret_service: SecretService, home: Home,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Host]:  # fmt: skip
    """The daemon's host, watcher and worker in this process, bursts told over quickly."""
    monkeypatch.setattr(worker, "QUIET", 1.0)
    monkeypatch.setattr(worker, "SETTLE_GAP", 0.5)
    monkeypatch.setenv("CREDGUARD_NOTIFICATIONS_ENABLED", "false")  # no notification thread
    daemon = Host(config.load())
    thread = threading.Thread(target=daemon.worker.run, name="test-worker")
    daemon.watcher.start()
    thread.start()
    try:
        yield daemon
    finally:
        daemon.watcher.stop()
        daemon.queue.close()
        thread.join(30)


def left_behind(daemon: Host) -> dict[str, int]:
    """How much per-file state the watcher, the queue and the worker still hold."""
    w, q = daemon.worker, daemon.queue
    return {"told": len(w._told), "named": len(w.named), "waiting": len(w.waiting),
            "forced": len(w.forced), "queued": len(q._items), "heap": len(q._heap),
            "settling": len(daemon.watcher._pending)}  # fmt: skip


def test_bursts_leave_nothing_per_file_behind(host: Host, home: Home, tmp_path: Path) -> None:
    """Two bursts of 20 through real inotify: after each, every file is protected, the host is
    told the burst is over (with every item the burst brought counted in that one call, not a
    call per file), and nothing about the 20 files is left in the watcher, the queue or the
    worker (it would otherwise grow with every burst, for as long as the daemon runs)."""
    nothing = dict.fromkeys(left_behind(host), 0)
    for round_ in (1, 2):
        told = len(host.settles)
        datas = burst(home, tmp_path / f"stage{round_}", f"round{round_}", 20)
        wait_for(lambda n=20 * round_: len(events(home, "protected")) == n, timeout=60)
        wait_for(lambda t=told: len(host.settles) > t, timeout=15)
        wait_for(lambda: left_behind(host) == nothing, timeout=15)
        assert max(host.settles[told:]) >= 20
        assert set(map(sha, datas)) <= set(vault_shas(dict(os.environ)))
    assert len(events(home, "detected")) == 40 and not events(home, "failed")


def test_a_protected_file_that_comes_back_is_news(host: Host, home: Home) -> None:
    """The worker forgets what it told about a file once the file is protected: the same
    credential saved again under the same name is detected (and protected) again, into the
    vault item it already has."""
    data = payloads.publish_profile().data
    for times in (1, 2):
        partial = home.downloads / "again.PublishSettings.crdownload"
        partial.write_bytes(data)
        partial.rename(home.downloads / "again.PublishSettings")
        wait_for(lambda n=times: len(events(home, "protected")) == n, timeout=30)
    assert [e["path"] for e in events(home, "detected")] == [
        str(home.downloads / "again.PublishSettings")] * 2
    assert vault_shas(dict(os.environ)) == [sha(data)]


def test_a_drained_queue_starts_afresh() -> None:
    """A dict keeps the table of its largest size after its entries go: once the last item is
    taken, the queue's containers are emptied, tables and all (an idle daemon does not keep a
    burst's), and are the same objects (new ones made at the end of a burst would be long-lived
    objects among its freed temporaries)."""
    queue = WorkQueue()
    items, heap = queue._items, queue._heap
    for i in range(2000):
        queue.put(f"/downloads/{i}.PublishSettings", "created")
    queue.put("/downloads/0.PublishSettings", "moved", delay=0.01)  # a superseded heap entry
    while len(queue):
        assert queue.get(timeout=1) is not None
    assert queue._items == {} and queue._heap == []
    assert sys.getsizeof(queue._items) == sys.getsizeof({})
    assert queue._items is items and queue._heap is heap


def test_the_worker_loads_what_the_first_credential_needs_before_it_comes() -> None:
    """The XML families, the XML parser and AES-GCM are loaded as the worker starts, so that
    what they keep is not left behind by a burst (and the first download waits for no
    import). Structural: the memory itself is benchmarks/daemon_memory.py's."""
    code = ("import sys\nfrom credguard.daemon import worker\nworker.prepare()\n"
            "print(' '.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    for module in ("credguard.detect.publishsettings", "credguard.detect.appservice",
                   "credguard.detect.vsprofile", "credguard.detect.xmlsafe", "pyexpat",
                   "cryptography.hazmat.primitives.ciphers.aead"):
        assert module in loaded
    assert worker.BATCH * 2 == worker.transaction.BATCH


def test_a_burst_is_taken_due_first_and_each_path_once() -> None:
    """``take_due`` (the worker's batches): what is due now, earliest first, at most ``limit``,
    without waiting; what is not due yet stays queued; the containers start afresh when
    drained."""
    queue = WorkQueue()
    for i in range(5):
        queue.put(f"/d/f{i}", "created")
    queue.put("/d/f0", "again")  # de-duplicated: due at the later time, after f4
    queue.put("/d/later", "created", delay=60)
    assert [i.path for i in queue.take_due(3)] == ["/d/f1", "/d/f2", "/d/f3"]
    assert [(i.path, i.reason) for i in queue.take_due(10)] == [("/d/f4", "created"),
                                                                ("/d/f0", "again")]
    assert queue.take_due(10) == [] and len(queue) == 1
    assert queue.get(0.01) is None


def test_a_batch_interns_few_new_names(secret_service: SecretService, home: Home) -> None:
    """Every Path made of a new name interns it, and the interpreter's table of interned
    strings only grows: a burst that churned through ~7 new names per file doubled it
    (+0.5 MB, for good). The journal's, the vault's and the atomic writes' own names are
    strings now; what is left is the file's own path (about one new name per file) and the
    names a batch meets once (its directories)."""
    from credguard.protect.transaction import Protector
    from credguard.vault.access import open_vault

    cfg = config.load()
    protector = Protector(cfg, open_vault(cfg))
    files = []
    for i in range(33):
        files.append(home.write(f"Downloads/n{i}.PublishSettings",
                                payloads.publish_profile(f"n{i}").data))
    with protector.protect_batch([(files[0], None)]):
        pass  # the first transaction's one-time names (directories, modules) are not counted
    real, new = sys.intern, []

    def counting(name: str) -> str:
        if name not in seen:
            seen.add(name)
            new.append(name)
        return real(name)

    seen: set[str] = set()
    sys.intern = counting
    try:
        with protector.protect_batch([(f, None) for f in files[1:]]) as done:
            assert all(o.protected for o in done)
    finally:
        sys.intern = real
    assert len(new) <= 80, sorted(new)[:20]  # 58 here; 249 when every name was a Path
