"""Reconciliation scans: the daemon's answer to every event it may have missed.

watchdog drops events silently when the kernel queue overflows, and a daemon that was not
running saw nothing. So the roots are scanned at start-up, every ``INTERVAL`` seconds (with
jitter, so a fleet does not scan in step), after an overflow, when a root appears, and on
request; every finding goes into the work queue like a watcher event. A folder an event named
(one moved in) is scanned as part of the root holding it, walked to from that root's directory
without following a link, so a folder swapped for a link meanwhile is not entered. After each
scan, and once the work queue drains after a burst, what the work used goes back to the system
(:func:`release_memory`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import threading
from typing import Any

from credguard import paths
from credguard.daemon.ports import Host
from credguard.daemon.workqueue import WorkQueue
from credguard.scan import Scanner, ScanResult, below, holding_root

log = logging.getLogger("credguard.daemon")
INTERVAL = 600.0


class Reconciler:
    """Scans the roots on request or on a jittered timer and queues every finding."""

    def __init__(self, host: Host, queue: WorkQueue, interval: float = INTERVAL) -> None:
        self.host = host
        self.queue = queue
        self.interval = interval
        self.last: dict[str, Any] | None = None
        self._pending: dict[str | None, str] = {}  # root path (None: all roots) -> reason
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="credguard-reconcile", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(3.0)

    def request(self, root: str | None, reason: str) -> None:
        """Ask for a scan of one root or path (None: every root); requests coalesce."""
        with self._cond:
            self._pending[root] = reason
            self._cond.notify()

    def _next_wait(self) -> float:
        return self.interval * random.uniform(0.9, 1.1)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._pending and not self._stopped:
                    self._cond.wait(self._next_wait())
                if self._stopped:
                    return
                pending = self._pending or {None: "periodic"}
                self._pending = {}
            if self.queue.take_overflow():
                pending = {None: "queue-full"}
            self._scan(pending)

    def _walk(self, scanner: Scanner, pending: dict[str | None, str]) -> ScanResult:
        """Every root (None pending), or each pending root or folder beneath one."""
        roots = self.host.roots
        if None in pending:
            return scanner.scan(roots)
        for path in pending:
            assert path is not None
            known = [r for r in roots if os.path.abspath(r.path) == path]
            holder = holding_root(roots, path)
            if known:
                scanner.scan(known[:1])
            elif holder is not None:
                scanner.scan_beneath(holder, below(str(holder.path), path))
            else:
                log.warning("not rescanned: %r is beneath no root", path)
        return scanner.result

    def _scan(self, pending: dict[str | None, str]) -> None:
        try:
            result = self._walk(Scanner(self.host.cfg), pending)
        except Exception:  # a scan failure must not end reconciliation for good
            log.exception("reconciliation scan failed")
            return
        for finding in result.findings:
            self.queue.put(finding.path, "scan")
        reason = ",".join(sorted(set(pending.values())))
        self.last = {
            "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "reason": reason,
            "files": result.files,
            "dirs": result.dirs,
            "findings": len(result.findings),
            "seconds": round(result.seconds, 3),
        }
        self.host.audit(
            "scanned",
            files=result.files,
            dirs=result.dirs,
            count=len(result.findings),
            reason=reason,
        )
        release_memory()


# -- memory: a daemon that idles for months stays small -------------------------------------


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas before the daemon's threads start: each thread that
    allocates would otherwise get an arena of its own, and a daemon that idles for months keeps
    their pages. A no-op without glibc."""
    libc = _glibc()
    if libc is not None:
        m_arena_max = -8  # from glibc's malloc.h
        libc.mallopt(m_arena_max, arenas)


def release_memory() -> None:
    """Hand the memory a scan or a burst of work used back to the system (glibc keeps freed
    heap otherwise); called after each scan and once the work queue drains after a burst. A
    no-op where there is no ``malloc_trim``.

    The interpreter's type attribute cache is emptied first: CPython 3.11 caches a lookup
    under the name object it was given, and C code that looks a method up by a name it makes
    afresh (an aware datetime's ``isoformat`` asking for ``utcoffset``: every log line, audit
    record and vault item) leaves one such string alive per cache slot. A burst leaves
    hundreds of them scattered among its freed temporaries, where each keeps a block of the
    small-object allocator from being freed. The cache refills on the next lookups."""
    import gc
    import sys

    gc.collect()
    sys._clear_type_cache()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _glibc() -> Any:
    """The C library of this process when it is glibc (``mallopt``, ``malloc_trim``), else
    None: only Linux is asked (``ctypes.CDLL(None)`` is a TypeError on Windows, and macOS'
    libc has neither function)."""
    if paths.native_platform() != "linux":
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - musl has no malloc_trim
    except (AttributeError, OSError):
        return None
    return libc
