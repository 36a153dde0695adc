"""The daemon's worker: examines one queued path at a time and acts on it as the policy says.

Runs on its own thread, so the watcher never waits on disk, detection or the keyring. What to
do with a finding is :mod:`credguard.protect.act`'s decision; the worker audits and notifies the
outcome (each alert once per content), remembers findings that wait for protection to resume
(``alert-only`` and ``paused`` modes write and delete nothing), and retries changed files.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

from credguard import policy
from credguard.audit.record import Event
from credguard.azcache.plaintext import sealed_cache
from credguard.daemon.ports import WorkerHost
from credguard.daemon.workqueue import Item, WorkQueue
from credguard.detect.base import Finding
from credguard.fs import facts
from credguard.paths import Root
from credguard.protect.act import Actor, Outcome, Result
from credguard.scan import Scanner

log = logging.getLogger("credguard.daemon")
BUSY_RETRY = 1.0  # seconds between checks of a file another process is still writing
BUSY_ATTEMPTS = 600  # ~10 minutes, then it is examined anyway (a writer that never closes)
CHANGED_RETRY = 0.5


class Worker:
    """Consumes the work queue until it is closed."""

    def __init__(self, host: WorkerHost, queue: WorkQueue) -> None:
        self.host = host
        self.queue = queue
        self.protected_count = 0
        self.waiting: set[str] = set()  # findings to protect when protection resumes
        self.forced: set[tuple[str, str]] = set()  # (path, fingerprint) the user said to protect
        self._told: set[tuple[str, str]] = set()  # (path, fingerprint) already alerted

    def run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            try:
                self.process(item)
            except Exception:  # one bad file must never stop protection
                log.exception("error while examining %s", item.path)
                self.host.audit("failed", path=item.path, reason="internal-error")

    def root_for(self, path: str) -> Root | None:
        """The most specific root holding ``path`` (it decides whether content is sniffed)."""
        holding = [r for r in self.host.roots if policy.is_under(path, r.path)]
        return max(holding, key=lambda r: len(str(r.path)), default=None)

    def process(self, item: Item) -> None:
        path = item.path
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return
        if facts.being_written(path) and item.attempt < BUSY_ATTEMPTS:
            self.queue.put(path, item.reason, BUSY_RETRY, item.attempt + 1)
            return
        finding = self.detect(path)
        if finding is not None:
            self.act(finding, item)

    def detect(self, path: str) -> Finding | None:
        root = self.root_for(path)
        sniff = root.sniff if root is not None else True
        single = Root(Path(path), "daemon", recursive=False, sniff=sniff)
        result = Scanner(self.host.cfg).scan([single])
        for finding, entry in result.ignored:
            self._once("ignored", finding, reason=entry.reason)
        return result.findings[0] if result.findings else None

    def _once(self, event: Event, finding: Finding, **fields: Any) -> bool:
        key = (finding.path, finding.fingerprint + event)
        if key in self._told:
            return False
        self._told.add(key)
        self.host.audit(
            event, path=finding.path, kind=finding.kind, fingerprint=finding.fingerprint, **fields
        )
        self.host.notify(event, finding, fields)
        return True

    def force(self, path: str, fingerprint: str) -> None:
        """Protect ``path`` now whatever the policy says, if it still holds ``fingerprint`` (the
        user asked, from a notification, to protect that content)."""
        self.forced.add((path, fingerprint))
        self.queue.put(path, "forced")

    def act(self, finding: Finding, item: Item) -> None:
        forced = (finding.path, finding.fingerprint) in self.forced  # until it is protected
        actor = Actor(self.host.cfg, self.host.protector, sealed_cache)
        outcome = actor.act(finding, self.host.mode, forced)
        self._once("detected", finding, action=outcome.action)
        if outcome.keystore_lost:
            self.host.keystore_lost(outcome.keystore_lost)
        self.report(outcome, item)

    def report(self, o: Outcome, item: Item) -> None:
        """Audit and notify what became of a finding; remember it or retry it if need be."""
        finding = o.finding
        if o.result is Result.PROTECTED:
            self.protected(o)
        elif o.result is Result.WAITING:
            self.waiting.add(finding.path)
            self._once("alerted", finding, action=o.action, reason=o.reason)
        elif o.result is Result.CHANGED and item.attempt < BUSY_ATTEMPTS:
            self.queue.put(finding.path, item.reason, CHANGED_RETRY, item.attempt + 1)
        elif o.result in (Result.CHANGED, Result.FAILED):
            self._once("failed", finding, reason=o.reason, detail=o.detail)
        elif o.result is Result.IMPORTED:
            self._once("imported", finding, item_id=o.item_id)
        elif o.result in (Result.HARDENED, Result.ALERTED):
            if o.result is Result.HARDENED:
                self.host.audit("hardened", path=finding.path, kind=finding.kind, detail=o.detail)
            self._once("alerted", finding, action=o.action, **({"reason": o.reason}
                                                                 if o.reason else {}))

    def protected(self, o: Outcome) -> None:
        finding = o.finding
        self.protected_count += 1
        self.waiting.discard(finding.path)
        self.forced.discard((finding.path, finding.fingerprint))
        fields = {"item_id": o.item_id, "detail": o.detail}
        self.host.audit("protected", path=finding.path, kind=finding.kind,
                        fingerprint=finding.fingerprint, **fields)
        self.host.notify("protected", finding, fields)

    def requeue_waiting(self) -> None:
        for path in sorted(self.waiting):
            self.queue.put(path, "resumed")
        self.waiting.clear()
