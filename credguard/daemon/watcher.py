"""Watch the roots with watchdog: moves and closes-after-write are reported at once, creations
and modifications once quiet for ``settle`` seconds. A root over the kernel's watch limits is
polled; a missing root is watched from its nearest existing ancestor until it appears. What events
cannot tell (a queue overflow, what a new root already holds) becomes a rescan request."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from watchdog import events as ev
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from credguard.detect.registry import is_partial_download
from credguard.paths import Root
from credguard.scan import access

log = logging.getLogger(__name__)

# watchdog/observers/inotify_c.py: InotifyFD.handle_event logs this warning on IN_Q_OVERFLOW;
# InotifyFD._raise_error raises OSError(ENOSPC|EMFILE, "inotify watch|instance limit reached").
OVERFLOW_LOGGER = "watchdog.observers.inotify_c"
OVERFLOW_PREFIX = "Inotify queue overflowed"
LIMIT_ERRNOS = frozenset({errno.ENOSPC, errno.EMFILE})
OVERFLOW_GAP = 1.0  # at most one overflow rescan per second
RECHECK = 5.0  # every root is re-examined this often, in case an event about it was lost
_MISSING, _NEVER = "missing", float("inf")
_Ident = tuple[int, int] | None  # (st_dev, st_ino) of the folder watched


class _Slot(ev.FileSystemEventHandler):
    """One scheduled watch (path, recursive) and the roots relying on it."""

    def __init__(self, owner: Watcher, path: str, recursive: bool) -> None:
        self.owner, self.path, self.recursive = owner, path, recursive
        self.roots: set[str] = set()  # roots watched through this slot: their files count
        self.waiters: set[str] = set()  # missing roots waiting for something to appear here
        self.scheduled: tuple[BaseObserver, ObservedWatch] | None = None
        self.fallback = ""  # why this slot is polled, if it is
        self.dead = False  # its folder was deleted, and watchdog stopped its emitter

    def dispatch(self, event: ev.FileSystemEvent) -> None:
        if isinstance(event, ev.DirCreatedEvent | ev.DirDeletedEvent | ev.DirMovedEvent):
            self.owner._on_dir_event(self, event)
        elif not event.is_directory and self.roots:  # a waited-on slot reports no files
            self.owner._on_file_event(self, event)


@dataclass
class _RootState:
    root: Root
    path: str
    state: str = "waiting"
    detail: str = "not started"
    slot: _Slot | None = None  # touched only by start() and then the watcher's thread
    ident: _Ident = None


class Watcher:
    """Names files worth examining under ``roots``. Callbacks come on its threads: just queue."""

    def __init__(
        self,
        roots: Sequence[Root],
        on_candidate: Callable[[str, str], None],
        on_rescan: Callable[[str | None, str], None],
        *,
        settle: float = 0.5,
        observer_factory: Callable[[], BaseObserver] | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self._roots: dict[str, _RootState] = {}
        for root in roots:
            path = os.path.abspath(os.fspath(root.path))
            self._roots.setdefault(path, _RootState(root, path))
        self._on_candidate, self._on_rescan = on_candidate, on_rescan
        self._factory = observer_factory or (lambda: Observer())
        self._settle, self._poll_interval = settle, poll_interval
        self._lock = threading.Condition()  # guards what observer threads share; wakes _run
        # path -> (due, first reason), in due order: settle is constant and a touch moves to the end
        self._pending: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._todo: set[str] = set()  # roots to re-examine
        self._overflow_due: float | None = None
        self._overflow_last, self._next_check = -OVERFLOW_GAP, 0.0
        self._slots: dict[tuple[str, bool], _Slot] = {}
        self._native: BaseObserver | None = None
        self._polling: BaseObserver | None = None
        self._native_error, self._running = "", False
        self._thread: threading.Thread | None = None
        self._saved_level: int | None = None

    def start(self) -> None:
        """Watch (or wait for) every root; on return each root has its first state."""
        if self._thread is not None or self._running:
            raise RuntimeError("a Watcher starts once")
        self._running = True
        logger = logging.getLogger(OVERFLOW_LOGGER)
        self._saved_level = logger.level
        logger.setLevel(logger.level if logger.isEnabledFor(logging.WARNING) else logging.WARNING)
        logger.addFilter(self._log_filter)
        try:
            self._native = self._factory()
            self._native.start()
        except OSError as exc:  # EMFILE: this user has no inotify instance left
            self._native, self._native_error = None, _problem(exc)
        for rs in self._roots.values():  # the watcher's thread does all later (un)scheduling
            self._evaluate(rs, initial=True)
        self._next_check = time.monotonic() + RECHECK
        self._thread = threading.Thread(target=self._run, name="credguard-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop and join every observer and thread; pending settles are dropped. Idempotent."""
        with self._lock:
            self._running = False
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join()
        for observer in (self._native, self._polling):
            if observer is not None:  # both were started
                observer.stop()
                observer.join()
        self._native = self._polling = None  # _thread stays: a stopped Watcher is not restarted
        with self._lock:
            for rs in self._roots.values():
                rs.slot, rs.ident, rs.state, rs.detail = None, None, "waiting", "stopped"
        logger = logging.getLogger(OVERFLOW_LOGGER)
        logger.removeFilter(self._log_filter)
        if self._saved_level is not None:
            logger.setLevel(self._saved_level)

    def status(self) -> list[dict[str, str]]:
        """Per root, in the order given: path, label, state and a human-readable detail, and
        ``access``: "" when this process may read it, else what to grant (a watch alone does
        not tell: on macOS a folder the privacy settings keep from the daemon can be watched,
        not read)."""
        with self._lock:
            rows = [
                {"path": rs.path, "label": rs.root.label, "state": rs.state, "detail": rs.detail}
                for rs in self._roots.values()
            ]
        for row in rows:  # outside the lock: opening a root may take a while
            row["access"] = access.advice(row["path"]) if access.denied(row["path"]) else ""
        return rows

    def _on_file_event(self, slot: _Slot, event: ev.FileSystemEvent) -> None:
        src = os.fsdecode(event.src_path)
        if isinstance(event, ev.FileMovedEvent | ev.FileDeletedEvent):
            dest = os.fsdecode(event.dest_path)  # "" for a deletion
            with self._lock:  # the move supersedes whatever was pending for either name
                self._pending.pop(src, None)
                self._pending.pop(dest, None)
            if dest and not _partial(slot.path, dest):
                self._call(self._on_candidate, dest, "moved")
        elif _partial(slot.path, src):
            return
        elif isinstance(event, ev.FileClosedEvent):  # FileClosedNoWriteEvent is another class
            self._call(self._on_candidate, src, "closed")
        elif isinstance(event, ev.FileCreatedEvent | ev.FileModifiedEvent):
            with self._lock:
                first = self._pending.pop(src, None)
                reason = first[1] if first else event.event_type
                self._pending[src] = (time.monotonic() + self._settle, reason)
                if len(self._pending) == 1:  # the timer may be asleep with nothing due
                    self._lock.notify()

    def _on_dir_event(self, slot: _Slot, event: ev.FileSystemEvent) -> None:
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if isinstance(event, ev.DirMovedEvent) else ""
        if isinstance(event, ev.DirDeletedEvent) and src == slot.path:
            slot.dead = True
        if touched := {p for p in self._roots if _above(src, p) or (dest and _above(dest, p))}:
            with self._lock:
                self._todo |= touched
                self._lock.notify()
        moved_in = dest and slot.recursive and slot.roots and not event.is_synthetic
        if moved_in and not _partial(slot.path, dest):  # a folder moved in, or renamed
            self._call(self._on_rescan, dest, "dir-moved")

    def _log_filter(self, record: logging.LogRecord) -> bool:
        """On watchdog's logger, kept at WARNING or lower: the overflow warning is the only sign."""
        if str(record.msg).startswith(OVERFLOW_PREFIX):
            with self._lock:
                if self._overflow_due is None:
                    self._overflow_due = max(time.monotonic(), self._overflow_last + OVERFLOW_GAP)
                    self._lock.notify()
        return True

    @staticmethod
    def _call(fn: Callable[[Any, str], None], path: str | None, reason: str) -> None:
        try:
            fn(path, reason)
        except Exception:  # a failing consumer must not kill the thread that feeds it
            log.exception("watcher callback failed for %s (%s)", path, reason)

    def _run(self) -> None:
        """The watcher's thread: settles, root changes, overflows; it alone (un)schedules."""
        while (batch := self._next_batch()) is not None:
            ready, todo, overflow = batch
            for path, reason in ready:
                self._call(self._on_candidate, path, reason)
            for rs in self._roots.values():
                if overflow or rs.path in todo:
                    self._evaluate(rs)
            if overflow:
                self._call(self._on_rescan, None, "overflow")

    def _next_batch(self) -> tuple[list[tuple[str, str]], set[str], bool] | None:
        """Wait for work: (settled candidates, roots to examine, overflow?); None once stopped."""
        with self._lock:
            while self._running:
                now = time.monotonic()
                if now >= self._next_check:
                    self._todo.update(self._roots)
                    self._next_check = now + RECHECK
                overflow = self._overflow_due is not None and self._overflow_due <= now
                if overflow:
                    self._overflow_due, self._overflow_last = None, now
                ready = []
                while self._pending and next(iter(self._pending.values()))[0] <= now:
                    path, (_, reason) = self._pending.popitem(last=False)
                    ready.append((path, reason))
                if ready and not self._pending:  # afresh: a burst's table would stay its size
                    self._pending = OrderedDict()
                if ready or overflow or self._todo:
                    todo, self._todo = self._todo, set()
                    return ready, todo, overflow
                first = next(iter(self._pending.values()), (_NEVER, ""))[0]
                self._lock.wait(min(self._next_check, self._overflow_due or _NEVER, first) - now)
        return None

    def _evaluate(self, rs: _RootState, *, initial: bool = False) -> None:
        for _ in range(8):  # each pass follows one change; a flapping path waits for RECHECK
            try:
                st: os.stat_result | None = os.lstat(rs.path)
                problem = "" if st and stat.S_ISDIR(st.st_mode) else "not a folder (or a symlink)"
            except (FileNotFoundError, NotADirectoryError):
                st, problem = None, ""
            except OSError as exc:
                st, problem = None, f"cannot examine it: {_problem(exc)}"
            if problem:
                self._release(rs)
                self._set(rs, "error", problem)
            if problem or not self._running or not self._attach(rs, st, initial):
                return

    def _attach(self, rs: _RootState, st: os.stat_result | None, initial: bool) -> bool:
        """Watch the root, or if it is missing its nearest existing ancestor; True: look again."""
        path = rs.path if st else _existing_ancestor(rs.path)
        recursive = rs.root.recursive and st is not None
        ident, old = (st.st_dev, st.st_ino) if st else None, rs.slot
        if old and rs.ident not in (None, ident):  # gone or replaced (renamed away, re-made)
            old.dead = True
        if old and not old.dead and (old.path, old.recursive, rs.ident) == (path, recursive, ident):
            return False  # nothing changed
        slot, problem = self._acquire(path, recursive)
        self._release(rs)
        if slot is None:
            if problem != _MISSING:
                self._set(rs, "error", f"cannot watch {path}: {problem}")
            return problem == _MISSING
        (slot.roots if st else slot.waiters).add(rs.path)  # observer threads only read these
        rs.slot = slot
        polled = f", polled: {slot.fallback}" if slot.fallback else ""
        if st is None:
            self._set(rs, "waiting", f"does not exist yet; watching {path}{polled}")
            return True  # it may have appeared before that watch began
        scope = "recursive" if recursive else "top level only"
        self._set(rs, "polling" if polled else "watching", scope + polled, ident)
        if not initial:  # what arrived before the watch did only a scan can find
            self._call(self._on_rescan, rs.path, "root-appeared")
        return False

    def _set(self, rs: _RootState, state: str, detail: str, ident: _Ident = None) -> None:
        if (rs.state, rs.detail) != (state, detail):
            level = logging.WARNING if state in ("error", "polling") else logging.INFO
            log.log(level, "root %s: %s (%s)", rs.path, state, detail)
        with self._lock:
            rs.state, rs.detail, rs.ident = state, detail, ident

    def _acquire(self, path: str, recursive: bool) -> tuple[_Slot | None, str]:
        """The live slot for (path, recursive), scheduled if need be; else (None, problem)."""
        if (slot := self._slots.get((path, recursive))) and not slot.dead:
            return slot, ""
        if slot:
            self._unschedule(slot)
        slot = _Slot(self, path, recursive)
        problem = self._schedule(slot)
        if not problem:
            self._slots[(path, recursive)] = slot
        return (None if problem else slot), problem

    def _release(self, rs: _RootState) -> None:
        slot, rs.slot = rs.slot, None
        if slot is not None:
            slot.roots.discard(rs.path)
            slot.waiters.discard(rs.path)
            if not (slot.roots or slot.waiters):
                self._unschedule(slot)

    def _schedule(self, slot: _Slot) -> str:
        """Schedule natively, else (over a watch limit) by polling: '' or the problem."""
        slot.fallback = self._native_error
        for observer in (self._native, None):
            try:  # a running observer starts the emitter now: inotify's errors surface here
                chosen = self._poller() if observer is None else observer
                slot.scheduled = chosen, chosen.schedule(slot, slot.path, recursive=slot.recursive)
                return ""
            except OSError as exc:
                if observer is None or exc.errno not in LIMIT_ERRNOS:
                    return _problem(exc)
                slot.fallback = _problem(exc)
        return ""  # unreachable: the polling pass returns

    def _unschedule(self, slot: _Slot) -> None:
        if self._slots.get((slot.path, slot.recursive)) is slot:
            del self._slots[(slot.path, slot.recursive)]
        scheduled, slot.scheduled = slot.scheduled, None  # once: ObservedWatch equality is by path
        if scheduled is not None:
            with contextlib.suppress(KeyError):  # already gone
                scheduled[0].unschedule(scheduled[1])

    def _poller(self) -> BaseObserver:
        if self._polling is None:
            self._polling = PollingObserver(timeout=self._poll_interval)
            self._polling.start()
        return self._polling


def _problem(exc: OSError) -> str:
    return _MISSING if isinstance(exc, FileNotFoundError) else exc.strerror or str(exc)


def _above(path: str, root: str) -> bool:  # path is root, or an ancestor of it
    return root == path or root.startswith(path.rstrip(os.sep) + os.sep)


def _partial(base: str, path: str) -> bool:
    """A download in progress, or anything inside a Safari-style ``*.download/`` folder."""
    rel = path[len(base) :] if path.startswith(base + os.sep) else os.path.basename(path)
    return any(is_partial_download(part) for part in rel.split(os.sep) if part)


def _existing_ancestor(path: str) -> str:
    while (parent := os.path.dirname(path)) != path and not os.path.isdir(parent):
        path = parent
    return parent
