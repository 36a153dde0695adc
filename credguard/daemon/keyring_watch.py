"""Alert-only mode's way back: retry the keystore with back-off until it works.

While the daemon is in alert-only mode (no usable keystore) this thread tries again after 2 s,
then 4, 8, … up to every 60 s (each ±10 %), so a keyring that comes up after the daemon — a
session bus and gnome-keyring started by a later login — is used within a minute, and a machine
that never gets one pays one cheap attempt a minute. The schedule starts again from 2 s each
time the daemon falls back to alert-only. An attempt never writes anything: what to do when it
succeeds is the daemon's (``attempt`` returns True).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator

__all__ = ["FIRST_DELAY", "MAX_DELAY", "KeystoreRetrier", "delays"]

FIRST_DELAY = 2.0  # seconds
MAX_DELAY = 60.0


def delays(first: float = FIRST_DELAY, most: float = MAX_DELAY) -> Iterator[float]:
    """``first``, doubling each time up to ``most``, then ``most`` for ever."""
    delay = first
    while True:
        yield min(delay, most)
        delay *= 2


class KeystoreRetrier:
    """Runs ``attempt`` on its back-off schedule for as long as ``needed()`` says so.

    ``needed`` is read before each attempt (alert-only still?); when it turns false the thread
    sleeps until :meth:`wake` (protection lost again, or a pause ended in alert-only mode).
    """

    def __init__(self, attempt: Callable[[], bool], needed: Callable[[], bool],
                 stop: threading.Event) -> None:
        self._attempt = attempt
        self._needed = needed
        self._stop = stop
        self._wakeup = threading.Event()

    def wake(self) -> None:
        self._wakeup.set()

    def run(self) -> None:
        while not self._stop.is_set():
            if self._needed():
                self._retry()
                continue
            self._wakeup.wait()
            self._wakeup.clear()

    def _retry(self) -> None:
        """Attempts on the schedule until one works, retrying is not needed, or stop."""
        for delay in delays():
            if self._stop.wait(delay * random.uniform(0.9, 1.1)):
                return
            if not self._needed() or self._attempt():
                return
