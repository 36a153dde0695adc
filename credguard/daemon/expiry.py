"""The daemon's timer for open copies (``credguard open``, :mod:`credguard.handoff.opened`).

A copy's expiry is in its name, so the timer keeps no list of its own: it looks at the RAM
directory, removes what is due (an ``expired`` audit record each), and sleeps until the next
expiry it saw, at most a minute; ``credguard open`` wakes it for a new copy (the ``opened``
control command). A daemon restarted meanwhile finds the copies where they are. An open copy
goes when its time is up even if the terminal that opened it was closed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from credguard.errors import CredguardError
from credguard.handoff import opened, ramdir

__all__ = ["LONGEST_SLEEP", "OpenCopies"]

LONGEST_SLEEP = 60.0  # seconds between looks when no copy is due sooner
log = logging.getLogger("credguard.daemon")


class OpenCopies:
    """Removes open copies when their time is up; ``audit(path, item_id)`` records each."""

    def __init__(self, audit: Callable[[str, str], None], stop: threading.Event) -> None:
        self._audit = audit
        self._stop = stop
        self._wake = threading.Event()

    def wake(self) -> None:
        """Look again now (a new copy, or the daemon stopping)."""
        self._wake.set()

    def run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.sweep())
            self._wake.clear()

    def sweep(self) -> float:
        """Remove what is due; the seconds until the next copy is (at most a minute)."""
        try:
            base = ramdir.ram_base(create=False)
        except (CredguardError, OSError) as exc:
            log.warning("open copies: no RAM directory to look in: %s", exc)
            return LONGEST_SLEEP
        if base is None:
            return LONGEST_SLEEP
        now = time.time()
        left = []
        for copy in opened.copies(base):
            if copy.expires > now:
                left.append(copy.expires - now)
            elif opened.close(copy):
                log.info("open copy of vault item %s expired: removed", copy.item_id)
                self._audit(str(copy.directory), copy.item_id)
        return min([LONGEST_SLEEP, *left])
