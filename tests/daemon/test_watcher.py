"""The watcher against real inotify on real temp dirs (fakes only where a kernel limit cannot be
produced here; those tests say so)."""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.home import Home
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from credguard.daemon.watcher import Watcher
from credguard.paths import Root

SETTLE = 0.2
QUEUE_LIMIT = Path("/proc/sys/fs/inotify/max_queued_events")


class Recorder:
    """Collects the watcher's callbacks; tests wait on it instead of sleeping."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.candidates: list[tuple[str, str, float]] = []
        self.rescans: list[tuple[str | None, str]] = []
        self.overflow_times: list[float] = []

    def candidate(self, path: str, reason: str) -> None:
        with self.cond:
            self.candidates.append((path, reason, time.monotonic()))
            self.cond.notify_all()

    def rescan(self, path: str | None, reason: str) -> None:
        with self.cond:
            self.rescans.append((path, reason))
            if path is None:
                self.overflow_times.append(time.monotonic())
            self.cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def reasons(self, path: Path) -> list[str]:
        with self.cond:
            return [r for p, r, _ in self.candidates if p == str(path)]

    def got(self, path: Path, reason: str, timeout: float = 3.0) -> bool:
        return self.wait(lambda: reason in self.reasons(path), timeout)

    def under(self, text: str) -> list[tuple[str, str]]:
        with self.cond:
            return [(p, r) for p, r, _ in self.candidates if text in p]


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def watch(rec: Recorder) -> Iterator[Callable[..., Watcher]]:
    """Start a Watcher on the given roots; every one is stopped at teardown."""
    started: list[Watcher] = []

    def make(*roots: Root, **kwargs: Any) -> Watcher:
        kwargs.setdefault("settle", SETTLE)
        watcher = Watcher(list(roots), rec.candidate, rec.rescan, **kwargs)
        started.append(watcher)
        watcher.start()
        return watcher

    yield make
    for watcher in started:
        watcher.stop()


def write(path: Path, data: bytes = b"<PublishData/>") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def quiesce(rec: Recorder, folder: Path) -> None:
    """Wait until every settle pending before now has fired: a file created now settles last."""
    marker = write(folder / f"zz-marker-{time.monotonic_ns()}.txt")
    assert rec.got(marker, "created"), "the marker file was not reported"


def state_of(watcher: Watcher, path: Path) -> dict[str, str]:
    return next(s for s in watcher.status() if s["path"] == str(path))


def wait_state(watcher: Watcher, path: Path, state: str, timeout: float = 3.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while (current := state_of(watcher, path))["state"] != state:
        assert time.monotonic() < deadline, f"{path} stayed {current}, expected {state}"
        time.sleep(0.01)
    return current


def test_chrome_download_reports_only_the_final_name(home: Home, rec: Recorder, watch: Any) -> None:
    watch(Root(home.downloads, "downloads"))
    partial = write(home.downloads / "x.publishsettings.crdownload", b"<Publish")
    with partial.open("ab") as f:
        f.write(b"Data/>")
    final = home.downloads / "x.publishsettings"
    partial.rename(final)
    assert rec.got(final, "moved")
    quiesce(rec, home.downloads)
    assert rec.reasons(final) == ["moved"]
    assert rec.under(".crdownload") == []


def test_firefox_placeholder_then_part_moved_over(home: Home, rec: Recorder, watch: Any) -> None:
    watch(Root(home.downloads, "downloads"))
    final = write(home.downloads / "x.publishsettings", b"")  # the empty placeholder
    write(home.downloads / "x.publishsettings.part").rename(final)
    assert rec.got(final, "moved")
    quiesce(rec, home.downloads)
    assert rec.reasons(final)[-1] == "moved"  # the placeholder's own close may come first
    assert rec.under(".part") == []


def test_safari_download_folder_renamed(home: Home, rec: Recorder, watch: Any) -> None:
    watch(Root(home.downloads, "downloads"))
    bundle = home.downloads / "x.publishsettings.download"
    write(bundle / "x.publishsettings")
    write(bundle / "Info.plist", b"<plist/>")
    done = home.downloads / "x.publishsettings"
    bundle.rename(done)
    assert rec.wait(lambda: (str(done), "dir-moved") in rec.rescans)
    assert rec.got(done / "x.publishsettings", "moved")
    quiesce(rec, home.downloads)
    assert rec.under(".download") == []


def test_moved_in_from_an_unwatched_folder(
    home: Home, tmp_path: Path, rec: Recorder, watch: Any
) -> None:
    watch(Root(home.desktop, "desktop"))
    outside = write(tmp_path / "elsewhere" / "azureProfile.json", b"{}")
    folder = write(tmp_path / "elsewhere" / "sub" / "accessTokens.json", b"[]").parent
    outside.rename(home.desktop / outside.name)
    folder.rename(home.desktop / "sub")
    assert rec.got(home.desktop / outside.name, "created")
    assert rec.got(home.desktop / "sub" / "accessTokens.json", "created")


def test_closed_after_write_is_reported_at_once(home: Home, rec: Recorder, watch: Any) -> None:
    watch(Root(home.desktop, "desktop"), settle=30.0)
    path = write(home.desktop / "msal_token_cache.json", b"{}")
    assert rec.got(path, "closed", timeout=2.0)  # long before the 30 s settle
    assert rec.reasons(path) == ["closed"]


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_slow_writer_settles_only_after_writing_stops(
    home: Home, rec: Recorder, watch: Any
) -> None:
    """A credential written over 5 s, a chunk every 0.5 s through one open handle.

    The settle time is what separates "still writing" from "done", so it must exceed the
    writer's pauses: 1 s here against 0.5 s pauses.
    """
    watch(Root(home.downloads, "downloads"), settle=1.0)
    path = home.downloads / "slow.publishsettings"
    with path.open("wb") as f:
        for _ in range(10):
            f.write(b"<PublishData>" * 10)
            f.flush()
            last_write = time.monotonic()
            time.sleep(0.5)
    closed_at = time.monotonic()
    assert rec.got(path, "closed")
    assert rec.wait(lambda: any(r in ("created", "modified") for r in rec.reasons(path)), 5.0)
    with rec.cond:
        settled = [t for p, r, t in rec.candidates if p == str(path) and r != "closed"]
    assert len(settled) == 1
    assert settled[0] >= last_write + 0.9, "reported while the file was still being written"
    assert settled[0] >= closed_at


def test_missing_roots_are_picked_up_when_they_appear(
    home: Home, rec: Recorder, watch: Any
) -> None:
    azure = home.root / ".azure"
    deep = home.root / "a" / "b" / "c"
    roots = Root(home.root, "home", recursive=False), Root(azure, "azure-cli"), Root(deep, "deep")
    watcher = watch(*roots)
    assert state_of(watcher, azure)["state"] == "waiting"
    assert str(home.root) in state_of(watcher, deep)["detail"]
    azure.mkdir()
    assert rec.wait(lambda: (str(azure), "root-appeared") in rec.rescans)
    assert state_of(watcher, azure)["state"] == "watching"
    token = write(azure / "msal_token_cache.json", b"{}")
    assert rec.got(token, "closed")
    # home's own watch, shared with the roots waiting on it, still reports its files
    assert rec.got(write(home.root / "azureProfile.json", b"{}"), "closed")
    deep.mkdir(parents=True)  # the whole chain at once
    assert rec.wait(lambda: (str(deep), "root-appeared") in rec.rescans)
    assert rec.got(write(deep / "accessTokens.json", b"[]"), "closed")


def test_root_deleted_and_recreated_while_watching(home: Home, rec: Recorder, watch: Any) -> None:
    watcher = watch(Root(home.downloads, "downloads"))
    assert state_of(watcher, home.downloads)["state"] == "watching"
    write(home.downloads / "old.txt")
    shutil.rmtree(home.downloads)
    waiting = wait_state(watcher, home.downloads, "waiting")
    assert str(home.root) in waiting["detail"]
    home.downloads.mkdir()
    assert rec.wait(lambda: (str(home.downloads), "root-appeared") in rec.rescans)
    wait_state(watcher, home.downloads, "watching")
    fresh = write(home.downloads / "x.publishsettings.crdownload")
    fresh.rename(home.downloads / "x.publishsettings")
    assert rec.got(home.downloads / "x.publishsettings", "moved")
    # again, quickly: deleted and re-created (often with the same inode number) before the
    # watcher looks; the new watch must not be torn down with the old one
    appeared = (str(home.downloads), "root-appeared")
    for n in range(2, 7):
        shutil.rmtree(home.downloads)
        home.downloads.mkdir()
        assert rec.wait(lambda n=n: rec.rescans.count(appeared) == n)
        assert rec.got(write(home.downloads / f"again{n}.json", b"{}"), "closed")


def test_root_renamed_away_and_remade(home: Home, rec: Recorder, watch: Any) -> None:
    """No delete event for the root: its old watch would follow the renamed folder."""
    watcher = watch(Root(home.root, "home", recursive=False), Root(home.downloads, "downloads"))
    home.downloads.rename(home.root / "Downloads.old")
    wait_state(watcher, home.downloads, "waiting")
    home.downloads.mkdir()
    assert rec.wait(lambda: (str(home.downloads), "root-appeared") in rec.rescans)
    assert rec.got(write(home.downloads / "azureProfile.json", b"{}"), "closed")
    assert rec.under("Downloads.old") == []
    write(home.root / "Downloads.old" / "accessTokens.json", b"[]")
    quiesce(rec, home.downloads)
    assert rec.under("Downloads.old") == []


def test_home_is_watched_top_level_only(home: Home, rec: Recorder, watch: Any) -> None:
    watcher = watch(Root(home.root, "home", recursive=False))
    assert state_of(watcher, home.root)["state"] == "watching"
    write(home.root / "projects" / "azureProfile.json", b"{}")
    top = write(home.root / "azureProfile.json", b"{}")
    assert rec.got(top, "created")
    assert rec.under("projects") == []


@pytest.mark.security
def test_queue_overflow_asks_for_a_full_rescan(home: Home, rec: Recorder, watch: Any) -> None:
    """A real kernel overflow. The queue limit is lowered (needs root) just while the watcher's
    inotify instance is created; a child process floods the folder while this thread holds the
    GIL in C (``sum`` never yields it), so watchdog's reader cannot drain the queue."""
    try:
        saved = QUEUE_LIMIT.read_text()
        QUEUE_LIMIT.write_text("64\n")
    except OSError as exc:
        pytest.skip(f"cannot lower {QUEUE_LIMIT} (needs root): {exc}")
    try:
        watch(Root(home.downloads, "downloads"))  # a new inotify instance takes the limit now
    finally:
        QUEUE_LIMIT.write_text(saved)
    flood = ("import os,sys\nfor i in range(2000): "
             "open(os.path.join(sys.argv[1], f'{sys.argv[2]}{i}'), 'w')")

    def overflow(tag: str) -> None:
        child = subprocess.Popen([sys.executable, "-c", flood, str(home.downloads), tag])
        while child.poll() is None:
            sum(range(3_000_000))  # tens of ms with the GIL held
        assert child.returncode == 0

    overflow("a")
    assert rec.wait(lambda: (None, "overflow") in rec.rescans)
    overflow("b")  # at once: a second overflow, whatever the machine's load
    # rescans stay one a second. The gaps are measured where the callback runs, which this
    # test's own GIL-holding loop can delay by tens of ms (a fresh-clone run saw 0.938 s); a
    # burst would give gaps near 0. Without a second rescan there is no gap to measure, and
    # all() of nothing is true.
    assert rec.wait(lambda: len(rec.overflow_times) >= 2, timeout=5), rec.overflow_times
    with rec.cond:
        gaps = [b - a for a, b in itertools.pairwise(rec.overflow_times)]
    assert gaps and all(gap >= 0.8 for gap in gaps), gaps


def _failing_schedule(failing: Path, err: int) -> Callable[[], BaseObserver]:
    """A native observer whose ``schedule`` fails for one path with ``err``."""

    def factory() -> BaseObserver:
        observer = Observer()
        real = observer.schedule

        def schedule(handler: Any, path: Any, **kwargs: Any) -> Any:
            if os.fspath(path) == str(failing):
                raise OSError(err, "inotify watch limit reached")
            return real(handler, path, **kwargs)

        observer.schedule = schedule  # type: ignore[method-assign,assignment]
        return observer

    return factory


def test_watch_limit_falls_back_to_polling(home: Home, rec: Recorder, watch: Any) -> None:
    """Fake: the watch limit (ENOSPC) cannot be reached here without exhausting the whole
    user's inotify watches, so the native observer's ``schedule`` is patched to fail for one
    root the way watchdog's InotifyFD._raise_error does. Polling itself is real."""
    factory = _failing_schedule(home.downloads, errno.ENOSPC)
    watcher = watch(
        Root(home.downloads, "downloads"),
        Root(home.desktop, "desktop"),
        observer_factory=factory,
        poll_interval=0.2,
    )
    polled = state_of(watcher, home.downloads)
    assert polled["state"] == "polling"
    assert "inotify watch limit reached" in polled["detail"]
    assert state_of(watcher, home.desktop)["state"] == "watching"
    path = write(home.downloads / "azureProfile.json", b"{}")
    assert rec.wait(lambda: bool(rec.reasons(path)))
    native = write(home.desktop / "azureProfile.json", b"{}")
    assert rec.got(native, "closed")  # polling sees no closes: this came from inotify


def test_no_inotify_instance_polls_everything(home: Home, rec: Recorder, watch: Any) -> None:
    """Fake: EMFILE (no inotify instance left for this user) cannot be produced here without
    exhausting the user's instances, so the factory raises it as InotifyFD() would."""

    def factory() -> BaseObserver:
        raise OSError(errno.EMFILE, "inotify instance limit reached")

    missing = home.root / ".azd"
    watcher = watch(
        Root(home.desktop, "desktop"),
        Root(missing, "azd"),
        observer_factory=factory,
        poll_interval=0.2,
    )
    assert state_of(watcher, home.desktop)["state"] == "polling"
    assert "polled" in state_of(watcher, missing)["detail"]
    assert rec.wait(lambda: bool(rec.reasons(write(home.desktop / "a.json", b"{}"))))
    missing.mkdir()
    assert rec.wait(lambda: (str(missing), "root-appeared") in rec.rescans)
    assert state_of(watcher, missing)["state"] == "polling"


def test_a_burst_costs_no_threads(home: Home, rec: Recorder, watch: Any) -> None:
    watch(Root(home.downloads, "downloads"))
    before = threading.active_count()
    for i in range(1000):
        write(home.downloads / f"f{i}.json", b"{}")
    assert threading.active_count() == before
    assert rec.wait(
        lambda: (
            len({p for p, r in rec.under("/f") if r == "created"}) == 1000
            or (None, "overflow") in rec.rescans
        )
    )


def test_stop_joins_every_thread_and_is_idempotent(home: Home, rec: Recorder) -> None:
    before = set(threading.enumerate())
    factory = _failing_schedule(home.downloads, errno.ENOSPC)  # a polling observer too
    watcher = Watcher(
        [Root(home.downloads, "downloads"), Root(home.desktop, "desktop")],
        rec.candidate,
        rec.rescan,
        observer_factory=factory,
    )
    watcher.start()
    assert len(set(threading.enumerate()) - before) >= 4
    watcher.stop()
    watcher.stop()
    assert [t for t in threading.enumerate() if t not in before] == []
    assert {(s["state"], s["detail"]) for s in watcher.status()} == {("waiting", "stopped")}
    with pytest.raises(RuntimeError):
        watcher.start()


def test_a_failing_callback_does_not_stop_the_watcher(home: Home, watch: Any) -> None:
    seen = threading.Event()

    def explode(path: str, reason: str) -> None:
        if path.endswith("boom.json"):
            raise RuntimeError("consumer bug")
        seen.set()

    watcher = Watcher([Root(home.desktop, "desktop")], explode, lambda p, r: None)
    watcher.start()
    try:
        write(home.desktop / "boom.json", b"{}")
        write(home.desktop / "fine.json", b"{}")
        assert seen.wait(3.0)
    finally:
        watcher.stop()
