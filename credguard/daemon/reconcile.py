"""Reconciliation scans: the daemon's answer to every event it may have missed.

watchdog drops events silently when the kernel queue overflows, and a daemon that was not
running saw nothing. So the roots are scanned at start-up, every ``INTERVAL`` seconds (with
jitter, so a fleet does not scan in step), after an overflow, when a root appears, and on
request; every finding goes into the work queue like a watcher event.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from pathlib import Path
from typing import Any

from credguard.daemon.ports import Host
from credguard.daemon.workqueue import WorkQueue
from credguard.paths import Root
from credguard.scan import Scanner

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

    def _roots(self, pending: dict[str | None, str]) -> list[Root]:
        if None in pending:
            return list(self.host.roots)
        roots = []
        for path in pending:
            assert path is not None
            known = next((r for r in self.host.roots if str(r.path) == path), None)
            roots.append(known or Root(Path(path), "requested", recursive=True, sniff=True))
        return roots

    def _scan(self, pending: dict[str | None, str]) -> None:
        roots = self._roots(pending)
        try:
            result = Scanner(self.host.cfg).scan(roots)
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


def release_memory() -> None:
    """Hand the memory a scan used back to the system (glibc keeps freed heap otherwise), so
    a daemon that idles for months stays small. A no-op where there is no ``malloc_trim``."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).malloc_trim(0)
