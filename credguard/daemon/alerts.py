"""The daemon's answer to the control command ``alerts``: how many ``alerted`` and ``failed``
audit records the recent window holds, for the tray's icon (any process's records count).

The log is read again only when ``audit.jsonl`` changed (inode, size, mtime), so a tray polling
every few seconds costs a ``stat``; a log that cannot be read counts as before.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta

from credguard.audit.log import CURRENT, AuditLog
from credguard.audit.record import record_time
from credguard.errors import CredguardError

log = logging.getLogger("credguard.daemon")
ALERT_WINDOW = timedelta(hours=24)  # older alerts never colour the icon
ALERT_EVENTS = frozenset({"alerted", "failed"})


class RecentAlerts:
    """Counts the alert records of ``audit`` newer than ``window`` (and than a caller's
    ``since``); called on the control server's thread only."""

    def __init__(self, audit: AuditLog, window: timedelta = ALERT_WINDOW) -> None:
        self.audit, self.window = audit, window
        self._seen: tuple[int, int, int] | None = None
        self._times: list[datetime] = []

    def count(self, since: datetime | None = None) -> int:
        """The alert records at or after ``since`` (an aware time) within the window."""
        oldest = datetime.now(UTC) - self.window
        self._refresh(oldest)
        cutoff = oldest if since is None else max(since, oldest)
        return sum(when >= cutoff for when in self._times)

    def _refresh(self, oldest: datetime) -> None:
        try:
            st = os.stat(self.audit.directory / CURRENT)
            seen = (st.st_ino, st.st_size, st.st_mtime_ns)
            if seen != self._seen:
                alerts = (r for r in self.audit.records(oldest) if r.get("event") in ALERT_EVENTS)
                self._times = [t for t in map(record_time, alerts) if t is not None]
                self._seen = seen
        except FileNotFoundError:
            self._seen, self._times = None, []
        except (OSError, CredguardError) as exc:
            log.warning("cannot read the audit log: %s", getattr(exc, "message", exc))
