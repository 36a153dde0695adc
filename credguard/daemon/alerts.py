"""What the daemon tells about alerts and what it left behind.

* The control command ``alerts``: how many ``alerted`` and ``failed`` audit records the recent
  window holds, for the tray's icon (any process's records count). The log is read again only
  when ``audit.jsonl`` changed (inode, size, mtime), so a tray polling every few seconds costs a
  ``stat``; a log that cannot be read counts as before.
* ``status``'s ``at_risk``: the credential files the daemon knows are still on disk, and why
  (:class:`AtRisk`, fed by the worker).
* ``status``'s ``protected_count``: the ``protected`` records of the kept audit log, so the
  counter survives restarts (:class:`ProtectedCount`, reading only what was appended).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from credguard import policy
from credguard.audit.log import CURRENT, LOCK, AuditLog
from credguard.audit.record import Record, record_time
from credguard.errors import CredguardError
from credguard.fs import lock, safe
from credguard.protect.act import SEALED_IN_PLAINTEXT, Outcome, Result
from credguard.scan import project

log = logging.getLogger("credguard.daemon")
ALERT_WINDOW = timedelta(hours=24)  # older alerts never colour the icon
ALERT_EVENTS = frozenset({"alerted", "failed"})


class _LogView:
    """What a function of the audit log's recent records says, worked out again only when
    ``audit.jsonl`` changed (inode, size, mtime): a tray polling every few seconds costs a
    ``stat``. A log that cannot be read answers as before (and is logged)."""

    def __init__(self, audit: AuditLog, window: timedelta) -> None:
        self.audit, self.window = audit, window
        self._seen: tuple[int, int, int] | None = None

    def refresh(self, read: Callable[[Iterator[Record]], None],
                clear: Callable[[], None]) -> None:
        """``read`` the records of the window when the log changed; ``clear`` when it is gone."""
        try:
            st = os.stat(self.audit.directory / CURRENT)
            seen = (st.st_ino, st.st_size, st.st_mtime_ns)
            if seen != self._seen:
                read(self.audit.records(datetime.now(UTC) - self.window))
                self._seen = seen
        except FileNotFoundError:
            self._seen = None
            clear()
        except (OSError, CredguardError) as exc:
            log.warning("cannot read the audit log: %s", getattr(exc, "message", exc))


class RecentAlerts:
    """Counts the alert records of ``audit`` newer than ``window`` (and than a caller's
    ``since``); called on the control server's thread only."""

    def __init__(self, audit: AuditLog, window: timedelta = ALERT_WINDOW) -> None:
        self.audit, self.window = audit, window
        self._view = _LogView(audit, window)
        self._times: list[datetime] = []

    def count(self, since: datetime | None = None) -> int:
        """The alert records at or after ``since`` (an aware time) within the window."""
        self._view.refresh(self._read, self._times.clear)
        oldest = datetime.now(UTC) - self.window
        cutoff = oldest if since is None else max(since, oldest)
        return sum(when >= cutoff for when in self._times)

    def _read(self, records: Iterator[Record]) -> None:
        alerts = (r for r in records if r.get("event") in ALERT_EVENTS)
        self._times = [t for t in map(record_time, alerts) if t is not None]


RECENT_WINDOW = timedelta(days=7)  # the tray's recent menu looks this far back
RECENT_SHOWN = 10  # items it lists


class RecentProtected:
    """The vault items files were protected into lately, newest first (the tray's recent
    menu: each offers "Open for import" and "Restore"), asked on the control server's thread
    and an ``item`` command's, one at a time. ``present(item_id)`` says whether the item is
    still in the vault."""

    def __init__(self, audit: AuditLog, window: timedelta = RECENT_WINDOW) -> None:
        self._view = _LogView(audit, window)
        self._items: list[dict[str, str]] = []
        self._lock = threading.Lock()  # the server's thread and an `item` command's

    def _refresh(self) -> list[dict[str, str]]:
        with self._lock:
            self._view.refresh(self._read, self._items.clear)
            return self._items

    def items(self, present: Callable[[str], bool], shown: int = RECENT_SHOWN
              ) -> list[dict[str, str]]:
        """``[{"id", "name", "kind", "path", "time"}]``: at most ``shown``, one per item."""
        found: list[dict[str, str]] = []
        for item in self._refresh():
            if len(found) == shown:
                break
            if present(item["id"]):
                found.append(item)
        return found

    def path_of(self, item_id: str) -> str:
        """Where the item's file was ("" if the recent records do not say)."""
        return next((i["path"] for i in self._refresh() if i["id"] == item_id), "")

    def _read(self, records: Iterator[Record]) -> None:
        items: dict[str, dict[str, str]] = {}
        for r in records:  # oldest first: a later record of an item replaces an earlier one
            item_id, path = r.get("item_id"), r.get("path")
            if r.get("event") == "protected" and isinstance(item_id, str) and item_id \
                    and isinstance(path, str):
                items.pop(item_id, None)
                items[item_id] = {"id": item_id, "name": os.path.basename(path), "path": path,
                                  "kind": str(r.get("kind", "")), "time": str(r.get("time", ""))}
        self._items = list(reversed(items.values()))


# -- what is left on disk ("at_risk" in status) ------------------------------------------------

AT_RISK_SHOWN = 100  # entries a status answer lists; "at_risk_count" says how many there are
AT_RISK_KEPT = 10_000  # entries remembered; beyond that only counted
RISK_REASONS: dict[str, str] = {  # the stable reason ids, and what each means for the user
    "policy": "kept by the policy (an alert or harden action here)",
    "project": "part of a project: hardened, never deleted",
    "live-cache": "a live Azure tool cache, not sealed (credguard seal TOOL keeps it encrypted)",
    "alert-only": "waiting: no usable keystore, nothing is vaulted or deleted",
    "paused": "waiting: protection is paused",
    "delay": "waiting out its grace period (protect.delay), then vaulted and deleted",
    SEALED_IN_PLAINTEXT: "plaintext of a sealed cache, only alerted (seal.on_plaintext)",
    "failed": "protection failed (credguard log has why)",
}


@dataclass(frozen=True)
class Risk:
    """One credential file the daemon knows it left on disk, and why (ids: RISK_REASONS)."""

    path: str
    kind: str
    action: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def risk_of(outcome: Outcome) -> Risk | None:
    """The risk an outcome leaves, or None when the file is no longer at risk (protected,
    ignored) or the outcome is not final (changed: it is retried)."""
    finding, result = outcome.finding, outcome.result
    if result in (Result.PROTECTED, Result.IGNORED, Result.CHANGED):
        return None
    if result is Result.WAITING:
        reason = str(outcome.reason)
    elif result is Result.FAILED:
        reason = "failed"
    elif outcome.reason == SEALED_IN_PLAINTEXT:
        reason = SEALED_IN_PLAINTEXT
    else:  # alerted, hardened or imported: the file stays where it is by design
        place = policy.location_of(finding.path, project.of(finding.details) is not None)
        reason = ("project" if place is policy.Location.PROJECT
                  else "live-cache" if place in policy.TOOL_LOCATIONS else "policy")
    return Risk(finding.path, finding.kind, str(outcome.action), reason)


class AtRisk:
    """The credential files the daemon left on disk, by path: the worker notes each outcome,
    the control server reads a bounded, sorted snapshot (files gone since are dropped)."""

    def __init__(self, kept: int = AT_RISK_KEPT) -> None:
        self.kept = kept
        self._risks: dict[str, Risk] = {}
        self._unkept: set[str] = set()  # beyond ``kept``: only their number is reported
        self._lock = threading.Lock()

    def note(self, outcome: Outcome) -> None:
        """Record what ``outcome`` leaves at its path (a changed file keeps its old entry)."""
        if outcome.result is Result.CHANGED:
            return
        risk, path = risk_of(outcome), outcome.finding.path
        with self._lock:
            if risk is None:
                self._forget(path)
            elif path in self._risks or len(self._risks) < self.kept:
                self._risks[path] = risk
            elif len(self._unkept) < self.kept:
                self._unkept.add(path)

    def discard(self, path: str) -> None:
        """``path`` holds no credential any more (gone, emptied, allowlisted)."""
        with self._lock:
            self._forget(path)

    def _forget(self, path: str) -> None:
        self._risks.pop(path, None)
        self._unkept.discard(path)

    def snapshot(self, shown: int = AT_RISK_SHOWN) -> dict[str, Any]:
        """``at_risk`` (at most ``shown`` entries, by path), ``at_risk_count`` (all of them)
        and ``at_risk_shown_max``: the status fields."""
        with self._lock:
            for path in [p for p in (*self._risks, *self._unkept) if _gone(p)]:
                self._forget(path)
            risks = sorted(self._risks.values(), key=lambda r: r.path)
            count = len(risks) + len(self._unkept)
        return {"at_risk": [r.to_json() for r in risks[:shown]], "at_risk_count": count,
                "at_risk_shown_max": shown}


def _gone(path: str) -> bool:
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:  # too long a name for one call, a dir we cannot search: still there
        return False
    return False


# -- the protected counter ("protected_count" in status) ---------------------------------------

_PROTECTED = b'"event":"protected"'  # in a JSON string value the quotes would be escaped
_ROTATED = re.compile(r"audit\.[1-9][0-9]{0,5}\.jsonl")
_LOCK_WAIT = 1.0  # seconds: a busy log gives the last count, never a slow status


@dataclass
class _Tally:
    offset: int  # bytes read so far, up to the last whole line
    count: int
    first: str | None  # the time of the file's first record


class ProtectedCount:
    """How many ``protected`` records the kept audit log holds (any process's), and the time
    of its oldest record: the counter survives restarts. Each file is known by its inode, so a
    rotation renames it without a re-read, and only what was appended since is read."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self._tallies: dict[tuple[int, int], _Tally] = {}
        self._last: tuple[int, str | None] = (0, None)

    def count(self) -> tuple[int, str | None]:
        """(records, oldest record's time or None); the last answer if the log cannot be read."""
        directory = self.audit.directory
        if not directory.is_dir():
            return 0, None
        try:
            with lock.exclusive(directory / LOCK, timeout=_LOCK_WAIT, what="the audit log"):
                self._last = self._refresh(directory)
        except (OSError, CredguardError) as exc:
            log.warning("cannot count the audit log: %s", getattr(exc, "message", exc))
        return self._last

    def _refresh(self, directory: Path) -> tuple[int, str | None]:
        rotated = sorted((n for n in os.listdir(directory) if _ROTATED.fullmatch(n)),
                         key=lambda n: int(n.split(".")[1]), reverse=True)
        tallies: dict[tuple[int, int], _Tally] = {}
        for name in (*rotated, CURRENT):  # oldest first
            try:
                fd = os.open(directory / name, safe.READ)
            except FileNotFoundError:
                continue
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                key = (st.st_dev, st.st_ino)
                tallies[key] = _advance(f, self._tallies.get(key), st.st_size)
        self._tallies = tallies
        firsts = [t.first for t in tallies.values() if t.first]
        return sum(t.count for t in tallies.values()), firsts[0] if firsts else None


def _advance(f: BinaryIO, tally: _Tally | None, size: int) -> _Tally:
    """``tally`` brought up to the file's last whole line (from the start if it shrank)."""
    if tally is None or size < tally.offset:
        tally = _Tally(0, 0, None)
    f.seek(tally.offset)
    data = f.read(size - tally.offset)
    whole = data[: data.rfind(b"\n") + 1]
    if tally.offset == 0 and whole:
        tally.first = _time_of(whole[: whole.find(b"\n")])
    tally.count += whole.count(_PROTECTED)
    tally.offset += len(whole)
    return tally


def _time_of(line: bytes) -> str | None:
    try:
        value = json.loads(line).get("time")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
