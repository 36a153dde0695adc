"""The daemon's work queue: de-duplicated by path, bounded, with a not-before time per item.

The watcher and the reconciliation scan put paths in; one worker takes them out when they are
due. A path already waiting is not queued twice (its due time moves to the later one). When the
queue is full, new paths are dropped and ``overflowed`` is set: the daemon answers that with a
reconciliation scan, the same way it answers the kernel dropping inotify events. Once drained,
its containers start afresh: a dict or heap keeps the size of its largest burst otherwise.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Item:
    path: str
    reason: str
    attempt: int = 0


class WorkQueue:
    def __init__(self, bound: int = 100_000) -> None:
        self.bound = bound
        self._heap: list[tuple[float, int, str]] = []
        self._items: dict[str, tuple[float, Item]] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self.overflowed = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, path: str, reason: str, delay: float = 0.0, attempt: int = 0,
            sooner: bool = False) -> bool:
        """Queue ``path`` (due after ``delay`` s; a path already waiting keeps the later due
        time, unless ``sooner``: the user asked for it now); False if dropped because the
        queue is full."""
        due = time.monotonic() + delay
        with self._cond:
            if self._closed:
                return False
            current = self._items.get(path)
            if current is not None:
                if due == current[0] or (due < current[0]) != sooner:
                    return True
            elif len(self._items) >= self.bound:
                self.overflowed = True
                return False
            self._items[path] = (due, Item(path, reason, attempt))
            heapq.heappush(self._heap, (due, next(self._seq), path))
            self._cond.notify()
            return True

    def get(self, timeout: float | None = None) -> Item | None:
        """The next due item, waiting up to ``timeout`` s; None on timeout or when closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                while self._heap:
                    due, _, path = self._heap[0]
                    entry = self._items.get(path)
                    if entry is None or entry[0] != due:  # superseded by a later put
                        heapq.heappop(self._heap)
                        continue
                    if due <= now:
                        heapq.heappop(self._heap)
                        del self._items[path]
                        if not self._items:  # what is left in the heap is superseded
                            self._start_afresh()
                        return entry[1]
                    break
                wait = self._heap[0][0] - now if self._heap else None
                if deadline is not None:
                    left = deadline - now
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)
            return None

    def take_due(self, limit: int) -> list[Item]:
        """Up to ``limit`` more items due now, earliest first, without waiting."""
        taken: list[Item] = []
        with self._cond:
            now = time.monotonic()
            while self._heap and len(taken) < limit:
                due, _, path = self._heap[0]
                entry = self._items.get(path)
                if entry is not None and entry[0] == due and due > now:
                    break
                heapq.heappop(self._heap)
                if entry is not None and entry[0] == due:
                    del self._items[path]
                    taken.append(entry[1])
            if not self._items:
                self._start_afresh()
        return taken

    def _start_afresh(self) -> None:
        """Drained: give the containers' tables back (a dict or a list keeps the size of its
        largest burst otherwise). Cleared, not replaced: new container objects made at the
        end of a burst would be long-lived objects among its freed temporaries, keeping the
        allocator's arenas of the burst from being returned."""
        self._items.clear()
        self._heap.clear()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (``get`` answers None for good)."""
        with self._cond:
            return self._closed

    def close(self) -> None:
        """Wake every waiter; later puts are refused."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take_overflow(self) -> bool:
        with self._cond:
            flag, self.overflowed = self.overflowed, False
            return flag
