"""The daemon's worker: examines the queued paths that are due and acts on them as the policy
says, a burst in batches (the files to protect in a batch are one group commit).

Runs on its own thread, so the watcher never waits on disk, detection or the keyring. A queued
path is only a name: the worker finds the most specific root holding it and walks there from
that root's directory one component at a time (:mod:`credguard.fs.safe`), reads it through the
walked parent and hands the finding on with that root, so acting on it walks again. A path that
cannot be walked (a symlink on the way, another file system) is reported, never read or acted
on. What to do with a finding is :mod:`credguard.protect.act`'s decision; the worker audits and
notifies the outcome (each alert once per content), remembers findings that wait for protection
to resume (``alert-only`` and ``paused`` modes write and delete nothing), and retries changed
files. When the queue has been quiet for a while after work (a burst is done), it tells the host,
which gives the burst's memory back; nothing it keeps per file outlives the file's protection.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credguard import policy
from credguard.audit.log import now
from credguard.audit.record import Event, elide
from credguard.azcache.plaintext import sealed_cache
from credguard.daemon.alerts import AtRisk
from credguard.daemon.ports import WorkerHost
from credguard.daemon.workqueue import Item, WorkQueue
from credguard.detect.base import Finding
from credguard.detect.registry import by_name
from credguard.fs import at, facts, safe
from credguard.fs.safe import SkipReason, Unreadable
from credguard.notify.messages import DELAY
from credguard.paths import Root
from credguard.policy import Action
from credguard.protect import transaction
from credguard.protect.act import Actor, Outcome, Result
from credguard.scan import Scanner, below, holding_root, project

if TYPE_CHECKING:
    from credguard.scan.project import Projects

log = logging.getLogger("credguard.daemon")
BUSY_RETRY = 1.0  # seconds between checks of a file another process is still writing
BUSY_ATTEMPTS = 600  # ~10 minutes, then it is examined anyway (a writer that never closes)
CHANGED_RETRY = 0.5
QUIET = 2.0  # seconds with nothing due after work: the burst is over
SETTLE_GAP = 30.0  # seconds at least between two "burst over" calls (each collects garbage)
TOLD_KEPT = 10_000  # (path, content, event) remembered as told; beyond that the oldest go
# Due items examined together, their protections one group commit: half the command's batch
# (transaction.BATCH). A burst's temporaries then fit in the memory the daemon holds already,
# which it can give back, at no cost in rate (docs/benchmarks.md, daemon memory).
BATCH = transaction.BATCH // 2
ONCE = ("detected", "alerted", "ignored", "failed", "imported")  # what _once tells once


def _spoken(seconds: float) -> str:
    """``in 45 s``, ``in 2 min``, ``in 1 h``: a wait as a notification says it."""
    whole = max(1, round(seconds))
    if whole < 60:
        return f"in {whole} s"
    return f"in {round(whole / 60)} min" if whole < 3600 else f"in {round(whole / 3600)} h"


def prepare() -> None:
    """Load now what the first credential would load: the XML detector families and the XML
    parser, and AES-GCM, used once on a throwaway key. The first download is handled without
    waiting for imports, and what they keep for good is part of the daemon's start-up, not
    memory a burst leaves behind (the small objects a module keeps would pin the memory the
    burst's temporaries took, which is then never given back)."""
    from credguard.detect import registry, xmlsafe
    from credguard.vault import crypto

    registry.preload(registry.XML_FAMILIES)
    xmlsafe.parse(b"<warm-up/>")
    key = crypto.new_key()
    nonce, sealed = crypto.encrypt(key, bytes(1024), b"warm-up")
    crypto.decrypt(key, nonce, sealed, b"warm-up")


class Worker:
    """Consumes the work queue until it is closed."""

    def __init__(self, host: WorkerHost, queue: WorkQueue) -> None:
        self.host = host
        self.queue = queue
        self.protected_count = 0  # since this start (status: "protected_this_run")
        self.at_risk = AtRisk()  # what the outcomes left on disk (status: "at_risk")
        self.waiting: set[str] = set()  # findings to protect when protection resumes
        self.forced: set[tuple[str, str]] = set()  # (path, fingerprint) the user said to protect
        # (path, fingerprint + event) already told, oldest first: a dict as an ordered set
        self._told: dict[tuple[str, str], None] = {}
        self.named: dict[str, str] = {}  # path outside every root -> the scan root that found it
        # (path, fingerprint) -> when this daemon first found it, for the grace period
        # (protect.delay); the file's ctime counts when earlier, so a restart keeps the deadline
        self.first_seen: dict[tuple[str, str], float] = {}
        self._changed_at: dict[str, float] = {}  # a batch's files' ctimes
        self._examined = 0  # items taken since the host was last told a burst was over
        self._records: list[tuple[Event, dict[str, Any], str]] | None = None  # a batch's audit
        self._projects: Projects | None = None  # a batch's project lookups
        self._settled = -SETTLE_GAP

    def run(self) -> None:
        prepare()
        while True:
            items = self.next_items()
            if not items:
                return
            self.process_all(items)
            del items  # not kept while the queue is waited on

    def next_items(self) -> list[Item]:
        """The next due item and, in a burst, up to ``BATCH`` - 1 more already due (none once
        the queue is closed)."""
        first = self.next_item()
        if first is None:
            return []
        more = self.queue.take_due(BATCH - 1)
        self._examined += len(more)
        return [first, *more]

    def process_all(self, items: list[Item]) -> None:
        """Examine each item, then act on the findings together: the files to protect are one
        group commit (:meth:`Actor.act_many`). The batch's audit records are written together
        too, those of the protected files before their journal entries are forgotten. One
        bad file never stops the others."""
        from credguard.scan.project import Projects

        self._records, self._projects = [], Projects()  # one walk up per folder, not per file
        try:
            found: dict[str, tuple[Finding, Item, str]] = {}  # path -> (..., when found)
            for item in items:
                try:
                    finding = self.process(item)
                except Exception:
                    self._internal_error(item.path, "examining")
                else:
                    if finding is not None:
                        found[finding.path] = (finding, item, now())
            if found:
                self._act_all(found)
        finally:
            self._flush()
            self._records, self._projects = None, None
            self._changed_at.clear()

    def _act_all(self, found: dict[str, tuple[Finding, Item, str]]) -> None:
        actor = Actor(self.host.cfg, self.host.protector, sealed_cache)
        waiting = dict(found)  # not reported yet

        def report(outcomes: list[Outcome]) -> None:
            for outcome in outcomes:
                _, item, when = waiting.pop(outcome.finding.path)
                self._once("detected", outcome.finding, at=when, action=outcome.action)
                if outcome.keystore_lost:
                    self.host.keystore_lost(outcome.keystore_lost)
                self.report(outcome, item)
            self._flush()

        requests = []
        for finding, _item, when in found.values():
            forced = (finding.path, finding.fingerprint) in self.forced
            if not self._deferred(actor, finding, forced, when):
                requests.append((finding, forced))
            else:
                del waiting[finding.path]
        try:
            actor.act_many(requests, self.host.mode, report)
        except Exception:  # a bug: what was not reported is told it failed
            for path in waiting:
                self._internal_error(path, "protecting")

    def _deferred(self, actor: Actor, finding: Finding, forced: bool, when: str) -> bool:
        """Whether ``finding`` waits out its grace period (``protect.delay``) before the policy
        vaults and deletes it: then the user is told at once (once: "Protect now" or "Keep"),
        and it is queued again for its deadline, counted from when the file last changed (its
        ctime; a restarted daemon finds the same deadline) or when this daemon first found it,
        whichever is earlier. At the deadline it is examined afresh: a file still open for
        writing keeps waiting, a changed one starts a new grace period, a kept one is
        allowlisted."""
        values = self.host.cfg.values
        if not policy.any_delay(values):  # the default: nothing looked up per finding
            return False
        delay = policy.delay_for(values, finding.path,
                                 in_project=project.of(finding.details) is not None)
        if delay <= 0 or not actor.deletes(finding, forced, self.host.mode):
            return False
        now = time.time()
        key = (finding.path, finding.fingerprint)
        first = self.first_seen.setdefault(key, now)
        if len(self.first_seen) > TOLD_KEPT:
            del self.first_seen[next(iter(self.first_seen))]
        left = min(self._changed_at.get(finding.path, now), first) + delay - now
        if left <= 0:
            return False
        self.at_risk.note(Outcome(finding, Action.PROTECT, Result.WAITING, reason=DELAY))
        self._once("detected", finding, at=when, action=Action.PROTECT)
        at = time.strftime("%H:%M", time.localtime(now + left))
        self._once("alerted", finding, action=Action.PROTECT, reason=DELAY, duration=delay,
                   detail=f"{_spoken(left)} (at {at})")
        self.queue.put(finding.path, DELAY, left)
        return True

    def _internal_error(self, path: str, doing: str) -> None:
        log.exception("error while %s %s", doing, path)
        self._audit("failed", path=path, reason="internal-error")

    def _audit(self, event: Event, at: str | None = None, **fields: Any) -> None:
        """An audit record: kept, with the time it happened (``at``, else now), with the
        batch's others while a batch runs."""
        if self._records is None:
            self.host.audit(event, **fields)
        else:
            self._records.append((event, fields, at or now()))

    def _flush(self) -> None:
        """Write the batch's audit records so far, together (one fsync)."""
        if self._records:
            records, self._records = self._records, []
            self.host.audit_many(records)

    def next_item(self) -> Item | None:
        """The next due item (None once the queue is closed). After work, once nothing has been
        due for ``QUIET`` s, the host is told the burst is over first, at most every
        ``SETTLE_GAP`` s (a burst soon after another is told once the gap has passed)."""
        while True:
            wait = None
            if self._examined:
                wait = max(QUIET, self._settled + SETTLE_GAP - time.monotonic())
            item = self.queue.get(wait)
            if item is not None or self.queue.closed:
                self._examined += item is not None
                return item
            try:
                self.host.settled(self._examined)
            except Exception:  # housekeeping must never stop protection
                log.exception("giving memory back after a burst failed")
            self._examined, self._settled = 0, time.monotonic()

    def root_for(self, path: str) -> Root | None:
        """The most specific root holding ``path`` by name (it decides whether content is
        sniffed, and the walk starts there); for a path outside every root, the root of the
        scan the user asked for that found it."""
        best = holding_root(self.host.roots, path)
        named = self.named.get(path)
        if best is None and named is not None:
            return Root(Path(named), "requested", sniff=True)
        return best

    def submit(self, finding: Finding, reason: str) -> bool:
        """Queue a finding of a scan the user asked for; outside every root, its scan root
        is remembered as where the walk to it starts. False if the queue is full."""
        if finding.root and holding_root(self.host.roots, finding.path) is None:
            self.named[finding.path] = finding.root
        return self.queue.put(finding.path, reason)

    def process(self, item: Item) -> Finding | None:
        """Examine ``item``: the finding to act on, if any."""
        root = self.root_for(item.path)
        if root is None:
            self.refused(item.path, "", Unreadable(SkipReason.OUTSIDE_ROOT,
                                                   "beneath no root the daemon watches"))
            return None
        base = os.path.abspath(root.path)
        try:
            # others' directories are read (never through a link, never off the root's file
            # system): acting on what is found there is what protect refuses
            with safe.open_root(base, writers=False) as top:
                parent, name = safe.walk(top, below(base, item.path), writers=False)
        except Unreadable as exc:
            self.refused(item.path, base, exc)
            return None
        with parent:
            finding = self.examine(parent, name, item, base, root.sniff)
        if finding is None:  # gone, emptied, allowlisted, or queued again while being written
            self.at_risk.discard(item.path)
        return finding

    def examine(self, parent: safe.SafeDir, name: str, item: Item, base: str,
                sniff: bool) -> Finding | None:
        """The finding in ``name`` (in ``parent``, walked from root ``base``), if any; a file
        still being written is queued again instead."""
        try:
            st = at.stat(name, dir_fd=parent.fd)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                self.refused(item.path, base, Unreadable(SkipReason.UNREADABLE,
                                                         exc.strerror or "cannot examine it"))
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return None
        self._changed_at[item.path] = st.st_ctime
        if st.st_dev != parent.dev:  # a file mounted over its name
            self.refused(item.path, base, Unreadable(SkipReason.OTHER_FILESYSTEM,
                                                     "on another file system than its root"))
            return None
        if facts.being_written(name, parent.fd) and item.attempt < BUSY_ATTEMPTS:
            self.queue.put(item.path, item.reason, BUSY_RETRY, item.attempt + 1)
            return None
        scanner = Scanner(self.host.cfg, projects=self._projects)
        result = scanner.scan_entry(parent.fd, name, item.path, base, sniff)
        for finding, entry in result.ignored:
            self._once("ignored", finding, reason=entry.reason)
        return result.findings[0] if result.findings else None

    def refused(self, path: str, root: str, exc: Unreadable) -> None:
        """Report, once per path and reason, a candidate that is not examined because the
        walk to it failed; it is never read or acted on. A vanished path, and one whose name
        makes it no candidate, are not worth a report."""
        folder, name = os.path.split(path)
        if exc.reason == SkipReason.NOT_FOUND or not by_name(folder, name):
            return
        if not self._tell((path, f"refused:{exc.reason}")):
            return
        fields = {"reason": exc.reason, "detail": elide(exc.detail), "root": root}
        log.warning("not examined (%s): %r", exc.reason, path)
        self._audit("failed", path=path, **fields)
        self.host.notify("failed", Finding(path, "", "", {}, root), fields)

    def _tell(self, key: tuple[str, str]) -> bool:
        """Remember ``key`` as told; False if it already was. At most ``TOLD_KEPT`` are kept:
        one forgotten long ago is told again, never lost."""
        if key in self._told:
            return False
        self._told[key] = None
        if len(self._told) > TOLD_KEPT:
            del self._told[next(iter(self._told))]
        return True

    def _once(self, event: Event, finding: Finding, at: str | None = None,
              **fields: Any) -> bool:
        if not self._tell((finding.path, finding.fingerprint + event)):
            return False
        self._audit(event, at, path=finding.path, kind=finding.kind,
                    fingerprint=finding.fingerprint, **fields)
        self.host.notify(event, finding, fields)
        return True

    def force(self, path: str, fingerprint: str) -> None:
        """Protect ``path`` now whatever the policy says, if it still holds ``fingerprint`` (the
        user asked, from a notification, to protect that content; also during its grace
        period)."""
        self.forced.add((path, fingerprint))
        self.queue.put(path, "forced", sooner=True)

    def report(self, o: Outcome, item: Item) -> None:
        """Audit and notify what became of a finding; remember it or retry it if need be."""
        finding = o.finding
        self.at_risk.note(o)
        if o.result is Result.PROTECTED:
            self.protected(o)
        elif o.result is Result.WAITING:
            self.waiting.add(finding.path)
            self._once("alerted", finding, action=o.action, reason=o.reason)
        elif o.result is Result.CHANGED and item.attempt < BUSY_ATTEMPTS:
            self.queue.put(finding.path, item.reason, CHANGED_RETRY, item.attempt + 1)
        elif o.result in (Result.CHANGED, Result.FAILED):
            self._once("failed", finding, reason=o.reason, detail=elide(o.detail))
        elif o.result is Result.IMPORTED:
            self._once("imported", finding, item_id=o.item_id)
        elif o.result in (Result.HARDENED, Result.ALERTED):
            if o.result is Result.HARDENED:
                self._audit("hardened", path=finding.path, kind=finding.kind, detail=o.detail)
            self._once("alerted", finding, action=o.action, **({"reason": o.reason}
                                                                 if o.reason else {}))

    def protected(self, o: Outcome) -> None:
        finding = o.finding
        self.protected_count += 1
        self.waiting.discard(finding.path)
        self.forced.discard((finding.path, finding.fingerprint))
        self.first_seen.pop((finding.path, finding.fingerprint), None)
        for event in ONCE:  # the file is gone: one that comes back is news
            self._told.pop((finding.path, finding.fingerprint + event), None)
        fields = {"item_id": o.item_id, "detail": o.detail}
        self._audit("protected", path=finding.path, kind=finding.kind,
                    fingerprint=finding.fingerprint, **fields)
        self.host.notify("protected", finding, fields)

    def requeue_waiting(self) -> None:
        for path in sorted(self.waiting):
            self.queue.put(path, "resumed")
        self.waiting.clear()
