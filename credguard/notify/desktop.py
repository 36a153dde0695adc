"""Desktop notifications from the daemon, through desktop-notifier: D-Bus
``org.freedesktop.Notifications`` on Linux, the native notification centres on macOS and Windows.

A side channel that never slows down or breaks protection: the worker hands an event over without
waiting, and everything else runs on the ``credguard-notify`` thread's asyncio loop, paced and
coalesced as :mod:`credguard.notify.messages` says. A missing or broken notification server is
logged once, as a warning, then tried again at most every ``RETRY`` s; meanwhile notifications are
dropped. Which backend desktop-notifier uses is its own choice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded on the first notification: an idle daemon does not carry D-Bus code
    from desktop_notifier import Capability, DesktopNotifier, Icon

from credguard.notify.messages import Message, Note, Pacer, is_shown, text
from credguard.policy import TOOL_LOCATIONS, Action, Mode, location_of

log = logging.getLogger("credguard.notify.desktop")
RETRY = 60.0  # s before a missing or broken server is tried again
CALL_TIMEOUT = 5.0  # s for any call to the notification server
CLOSE_TIMEOUT = 1.0  # s close() waits for the thread (a daemon thread: it never blocks exit)


def _icon() -> Icon:
    from desktop_notifier import Icon

    return Icon(name="dialog-password")  # a freedesktop icon name; other platforms ignore it

LIBRARY_LOG = "desktop_notifier.backends.base"
OnPress = Callable[[str, str, str], None]  # (action, path, fingerprint)


class Notifier:
    """The daemon's desktop notifications; every method returns at once and never raises.

    ``on_action(action, path, fingerprint)`` runs on the notification thread when the user
    presses "Protect now" (``"protect"``) or "Ignore" (``"ignore"``) on an alert. ``enabled``
    may be changed at any time (a reload); while False nothing is queued or shown.
    """

    def __init__(self, enabled: bool, on_action: OnPress) -> None:
        self.enabled = enabled
        self.on_action = on_action
        self._lock = threading.Lock()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._courier = Courier(self)

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
        self._submit(Note(event, kind, path, fingerprint, action, reason, detail, project))

    def mode(self, mode: str, reason: str) -> None:
        """Tell the user when protection pauses for the keyring (``alert-only``) and resumes."""
        if self.enabled and mode in (Mode.ALERT_ONLY, Mode.PROTECTING):
            self._submit(Note("paused" if mode == Mode.ALERT_ONLY else "resumed", reason=reason))

    def close(self) -> None:
        """Stop the notification thread and its connection; pending notifications are dropped."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with suppress(RuntimeError):  # the loop already ended
            loop.call_soon_threadsafe(self._courier.stop)
        thread.join(CLOSE_TIMEOUT)

    def press(self, action: str, path: str, fingerprint: str) -> None:
        """A button was pressed: hand it to the daemon (its errors are logged, not raised)."""
        log.info("notification button %r pressed for %s", str(action), path)
        try:
            self.on_action(action, path, fingerprint)
        except Exception:
            log.exception("the notification action %r failed", action)

    def _submit(self, note: Note | None) -> None:
        try:
            with self._lock:
                if self._closed:
                    return
                if self._loop is None:
                    self._loop = asyncio.new_event_loop()
                    self._thread = threading.Thread(
                        target=self._run, args=(self._loop,), name="credguard-notify", daemon=True
                    )
                    self._thread.start()
                self._loop.call_soon_threadsafe(self._courier.add, note)
        except Exception:  # a side channel never raises into the worker
            log.exception("a desktop notification was dropped")

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._courier.run())
        finally:
            loop.close()


class Courier:
    """The loop-thread half: paces the notes and talks to the notification server."""

    def __init__(self, owner: Notifier) -> None:
        self.owner = owner
        self.pacer = Pacer()
        self.wake = asyncio.Event()
        self.server: DesktopNotifier | None = None
        self.down_until = 0.0  # missing or broken: not tried again before this
        self.warned = False
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None
        self.stopping = False
        self.quiet = LibraryFailures(self)

    def add(self, note: Note | None) -> None:
        """Take a note in (None only wakes the loop up)."""
        if note is not None:
            self.pacer.add(note, time.monotonic())
        self.wake.set()

    def stop(self) -> None:
        # the flag too: run() may not have started, and 3.11's wait_for can swallow a cancel
        self.stopping = True
        self.wake.set()
        if self.task is not None:
            self.task.cancel()

    async def run(self) -> None:
        """Connect, then show what the pacer hands out, until cancelled."""
        self.task = asyncio.current_task()
        self.quiet.thread = threading.get_ident()
        logging.getLogger(LIBRARY_LOG).addFilter(self.quiet)
        try:
            await self.connect()
            while not self.stopping:
                await self.wait()
                try:
                    await self.send_due()
                except Exception:  # a bug here must not end notifications for good
                    log.exception("a desktop notification failed")
        except asyncio.CancelledError:
            pass
        finally:
            logging.getLogger(LIBRARY_LOG).removeFilter(self.quiet)
            await self.disconnect()

    async def wait(self) -> None:
        due = self.pacer.next_due()
        timeout = None if due is None else max(0.0, due - time.monotonic())
        with suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout)
        self.wake.clear()

    async def send_due(self) -> None:
        taken = self.pacer.take(time.monotonic())
        if taken is None or not self.owner.enabled:
            return
        message, note = taken
        if await self.deliver(message, note):
            self.pacer.sent(note, time.monotonic())

    async def deliver(self, message: Message, note: Note) -> bool:
        """Send one notification; False (and the server marked down) if it was not taken."""
        if self.server is None and not await self.connect():
            return False
        assert self.server is not None
        sent: list[bool] = []
        from desktop_notifier import Button, Notification, Urgency

        buttons = [Button(label, self.pressed(key, note), identifier=key)
                   for key, label in message.buttons]  # fmt: skip
        urgency = Urgency(message.urgency)
        notification = Notification(message.title, text(message.body), urgency=urgency,
                                    buttons=tuple(buttons),
                                    on_dispatched=lambda: sent.append(True))  # fmt: skip
        self.error = None
        try:
            await asyncio.wait_for(self.server.send_notification(notification), CALL_TIMEOUT)
        except Exception as exc:  # TimeoutError, or anything desktop-notifier lets through
            self.error = exc
        if not sent:
            self.failed("the notification server did not take a notification")
            await self.disconnect()
        return bool(sent)

    def pressed(self, action: str, note: Note) -> Callable[[], None]:
        return lambda: self.owner.press(action, note.path, note.fingerprint)

    async def connect(self) -> bool:
        """Open the server connection (asks for its capabilities); False while it is down."""
        if time.monotonic() < self.down_until:
            return False
        self.error = None
        try:
            from desktop_notifier import DesktopNotifier

            self.server = DesktopNotifier(app_name="credguard", app_icon=_icon())
            await asyncio.wait_for(self.server.get_capabilities(), CALL_TIMEOUT)
        except Exception as exc:  # no bus, no server, a server that does not answer
            self.error = exc
            self.failed("no usable notification server")
            await self.disconnect()
            return False
        if self.warned:
            log.info("desktop notifications work again")
            self.warned = False
        return True

    def failed(self, what: str) -> None:
        """Mark the server down for ``RETRY`` s; only the first failure is a warning."""
        self.down_until = time.monotonic() + RETRY
        error = self.error
        why = f"{what}: {type(error).__name__} {error}".rstrip() if error else what
        level = logging.DEBUG if self.warned else logging.WARNING
        log.log(level, "no desktop notifications (%s); protection goes on, retry in %d s",
                why, RETRY)  # fmt: skip
        self.warned = True

    async def disconnect(self) -> None:
        server, self.server = self.server, None
        await close_connection(server)


class LibraryFailures(logging.Filter):
    """Keeps desktop-notifier's own warning (with a traceback) for every failed send out of the
    log: the courier reports a failing server once itself, with the reason kept here."""

    def __init__(self, courier: Courier) -> None:
        super().__init__()
        self.courier = courier
        self.thread = 0  # the courier's loop thread: other notifiers' records are not ours

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self.thread or record.getMessage() != "Notification failed":
            return True
        if record.exc_info and record.exc_info[1] is not None:
            self.courier.error = record.exc_info[1]
        return False


async def close_connection(server: DesktopNotifier | None) -> None:
    """Close the server connection, if ``server`` opened one."""
    # desktop-notifier has no close(); its D-Bus backend keeps a dbus-fast MessageBus in .bus
    bus = getattr(getattr(server, "_backend", None), "bus", None)
    if bus is None:
        return
    with suppress(Exception):
        bus.disconnect()
        await asyncio.wait_for(bus.wait_for_disconnect(), 1.0)


def server_available(timeout: float = CALL_TIMEOUT) -> tuple[bool, str]:
    """Whether a notification server answers now, and whether it shows buttons (for doctor)."""

    from desktop_notifier import Capability, DesktopNotifier

    async def probe() -> frozenset[Capability]:
        server = DesktopNotifier(app_name="credguard", app_icon=_icon())
        try:
            return await asyncio.wait_for(server.get_capabilities(), timeout)
        finally:
            await close_connection(server)

    try:
        capabilities = asyncio.run(probe())
    except Exception as exc:
        return False, f"no usable notification server ({type(exc).__name__}: {exc})"
    buttons = "with" if Capability.BUTTONS in capabilities else "without"
    return True, f"a notification server answers ({buttons} buttons)"
