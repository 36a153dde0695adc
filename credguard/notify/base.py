"""What every notification backend shares: the timeouts, the one-warning-then-retry rule for a
missing server, and the two sides a courier talks to (:class:`Owner`, :class:`Courier`).

A courier is a backend's thread: it takes notes in without blocking the caller, paces them with
:class:`~credguard.notify.messages.Pacer` and talks to the notification server. Nothing here
touches a server: the backends (:mod:`credguard.notify.freedesktop`,
:mod:`credguard.notify.native`) do, and :mod:`credguard.notify.desktop` picks one.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from credguard.notify.messages import Message, Note, Pacer

log = logging.getLogger("credguard.notify.desktop")  # one logger, whichever backend runs
RETRY = 60.0  # s before a missing or broken server is tried again
CALL_TIMEOUT = 5.0  # s for any call to the notification server
THREAD = "credguard-notify"  # the courier's thread (a daemon thread: it never blocks exit)
APP_NAME = "credguard"
ICON = "dialog-password"  # a freedesktop icon name; macOS and Windows ignore it


class Owner(Protocol):
    """The :class:`~credguard.notify.desktop.Notifier` as a courier sees it."""

    enabled: bool

    def press(self, action: str, note: Note) -> None: ...


class Courier(Protocol):
    """A backend's notification thread, started when it is made."""

    def add(self, note: Note | None) -> None:
        """Take a note in (None only connects); returns at once, never raises."""

    def stop(self, timeout: float) -> None:
        """End the thread and close the connection; waits at most ``timeout`` s."""


class Outage:
    """Whether the server is down, and the log lines that say so: a failure marks it down for
    ``RETRY`` s and only the first failure in a row is a warning; the first success after a
    warning says notifications work again."""

    def __init__(self) -> None:
        self.down_until = 0.0
        self.warned = False

    def down(self) -> bool:
        """True while a failed server is not to be tried again yet."""
        return time.monotonic() < self.down_until

    def failed(self, what: str, error: BaseException | None) -> None:
        self.down_until = time.monotonic() + RETRY
        why = f"{what}: {type(error).__name__} {error}".rstrip() if error else what
        level = logging.DEBUG if self.warned else logging.WARNING
        log.log(level, "no desktop notifications (%s); protection goes on, retry in %d s",
                why, RETRY)  # fmt: skip
        self.warned = True

    def working(self) -> None:
        if self.warned:
            log.info("desktop notifications work again")
            self.warned = False


def due(pacer: Pacer, owner: Owner) -> tuple[Message, Note] | None:
    """The message to send now, if any (none while notifications are turned off)."""
    taken = pacer.take(time.monotonic())
    return taken if taken is not None and owner.enabled else None


def availability(buttons: bool | None, error: BaseException | None = None,
                 why: str = "") -> tuple[bool, str]:
    """What ``server_available`` says: a server answered (``buttons``: whether notifications
    show them there; ``why`` not, when the server could), or none did (``error``: why)."""
    if buttons is None:
        cause = f" ({type(error).__name__}: {error})" if error else ""
        return False, f"no usable notification server{cause}"
    shown = "with buttons" if buttons else "without buttons" + (f": {why}" if why else "")
    return True, f"a notification server answers ({shown})"
