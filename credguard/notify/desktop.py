"""Desktop notifications from the daemon, and the one place that picks how they are sent: D-Bus
``org.freedesktop.Notifications`` through jeepney on Linux and other freedesktop systems
(:mod:`credguard.notify.freedesktop`), the native notification centres through desktop-notifier
on macOS and Windows (:mod:`credguard.notify.native`).

A side channel that never slows down or breaks protection: the worker hands an event over without
waiting, and everything else runs on the ``credguard-notify`` thread, paced and coalesced as
:mod:`credguard.notify.messages` says. A missing or broken notification server is logged once, as
a warning, then tried again at most every ``RETRY`` s (:mod:`credguard.notify.base`); meanwhile
notifications are dropped. The backend is loaded with the first notification.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from credguard import paths
from credguard.notify import base
from credguard.notify.base import Courier
from credguard.notify.messages import Note, is_shown
from credguard.policy import TOOL_LOCATIONS, Action, Mode, location_of

log = logging.getLogger("credguard.notify.desktop")
CLOSE_TIMEOUT = 1.0  # s close() waits for the thread (a daemon thread: it never blocks exit)
NATIVE = ("macos", "windows")  # platforms notified through desktop-notifier; others use D-Bus
OnPress = Callable[[str, Note], None]  # (action, the note whose button it was)


def backend_name() -> str:
    """``native`` (desktop-notifier) on macOS and Windows, else ``freedesktop`` (D-Bus)."""
    return "native" if paths.platform_name() in NATIVE else "freedesktop"


def new_courier(owner: Notifier) -> Courier:
    """This system's notification thread, started."""
    if backend_name() == "native":
        from credguard.notify.native import NativeCourier

        return NativeCourier(owner)
    from credguard.notify.freedesktop import FreedesktopCourier

    return FreedesktopCourier(owner)


class Notifier:
    """The daemon's desktop notifications; every method returns at once and never raises.

    ``on_action(action, note)`` runs on the notification thread when the user presses "Protect
    now" (``"protect"``) or "Ignore" (``"ignore"``) on an alert, or "Open for import"
    (``"open"``) or "Restore" (``"restore"``) on a protected file's notification (never on
    macOS, where no buttons are offered: :func:`~credguard.notify.messages.buttons_shown`).
    ``enabled`` may be changed at any time (a reload); while False nothing is queued or shown.
    """

    def __init__(self, enabled: bool, on_action: OnPress) -> None:
        self.enabled = enabled
        self.on_action = on_action
        self._lock = threading.Lock()
        self._closed = False
        self._courier: Courier | None = None

    def start(self) -> None:
        """Connect to the notification server early (if enabled): a missing one is logged now."""
        if self.enabled:
            self._submit(None)

    def event(
        self, event: str, kind: str, path: str, fingerprint: str, fields: dict[str, Any]
    ) -> None:
        """Queue a worker event: protected, imported, failed and alerted are shown, except
        alerts about live tool caches hardened in place (they recur with every token refresh);
        a file hardened because it is part of a project (``fields["project"]``, what
        :func:`credguard.scan.project.describe` says) is shown, unless it is in a tool's own
        directory (a home that is a git work tree holds the live caches too)."""
        action, project = str(fields.get("action", "")), str(fields.get("project", ""))
        quiet = not project or location_of(path) in TOOL_LOCATIONS
        if not self.enabled or not is_shown(event) or (
                (event, action) == ("alerted", Action.HARDEN) and quiet):
            return
        reason, detail = str(fields.get("reason", "")), str(fields.get("detail", ""))
        item_id = str(fields.get("item_id") or "")
        self._submit(Note(event, kind, path, fingerprint, action, reason, detail, project,
                          item_id))

    def mode(self, mode: str, reason: str) -> None:
        """Tell the user when protection pauses for the keyring (``alert-only``) and resumes."""
        if self.enabled and mode in (Mode.ALERT_ONLY, Mode.PROTECTING):
            self._submit(Note("paused" if mode == Mode.ALERT_ONLY else "resumed", reason=reason))

    def close(self) -> None:
        """Stop the notification thread and its connection; pending notifications are dropped."""
        with self._lock:
            self._closed = True
            courier = self._courier
        if courier is not None:
            courier.stop(CLOSE_TIMEOUT)

    def press(self, action: str, note: Note) -> None:
        """A button was pressed: hand it to the daemon (its errors are logged, not raised)."""
        log.info("notification button %r pressed for %s", str(action), note.path)
        try:
            self.on_action(action, note)
        except Exception:
            log.exception("the notification action %r failed", action)

    def _submit(self, note: Note | None) -> None:
        try:
            with self._lock:
                if self._closed:
                    return
                if self._courier is None:
                    self._courier = new_courier(self)
                self._courier.add(note)
        except Exception:  # a side channel never raises into the worker
            log.exception("a desktop notification was dropped")


def server_available(timeout: float | None = None) -> tuple[bool, str]:
    """Whether a notification server answers now, and whether it shows buttons (for doctor)."""
    wait = base.CALL_TIMEOUT if timeout is None else timeout
    if backend_name() == "native":
        from credguard.notify import native

        return native.server_available(wait)
    from credguard.notify import freedesktop

    return freedesktop.server_available(wait)
