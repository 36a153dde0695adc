"""Desktop notifications on macOS and Windows: the system's notification centre through
desktop-notifier, on the ``credguard-notify`` thread's asyncio loop.

desktop-notifier is asynchronous and picks the system's own backend; its button callbacks need
the loop running, so the loop runs for as long as the courier does. On Windows that is enough
(its WinRT backend calls back on that loop). On macOS a press reaches only a CFRunLoop on the
main thread, which the daemon does not give up, so no buttons are offered there: the messages
name the tray menu or the command instead (:func:`credguard.notify.messages.buttons_shown`).
(On Linux desktop-notifier would talk D-Bus through dbus-fast: credguard uses
:mod:`credguard.notify.freedesktop` there, which reuses the keyring's jeepney instead.)
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # loaded with the first notification
    from desktop_notifier import DesktopNotifier, Icon

from credguard.notify import base
from credguard.notify.base import APP_NAME, ICON, THREAD, Outage, Owner, availability, due
from credguard.notify.messages import Message, Note, Pacer, buttons_shown, text

log = logging.getLogger("credguard.notify.desktop")
LIBRARY_LOG = "desktop_notifier.backends.base"
NO_BUTTONS = ("they would do nothing on macOS; the notifications name the tray menu or the "
              "command instead")


def _icon() -> Icon:
    from desktop_notifier import Icon

    return Icon(name=ICON)


class NativeCourier:
    """The notification thread and its loop: paces the notes and talks to the server."""

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.pacer = Pacer()
        self.outage = Outage()
        self.wake = asyncio.Event()
        self.server: DesktopNotifier | None = None
        self.error: BaseException | None = None  # why the last call failed, if it did
        self.task: asyncio.Task[None] | None = None
        self.stopping = False
        self.quiet = LibraryFailures(self)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=THREAD, daemon=True)
        self.thread.start()

    def add(self, note: Note | None) -> None:
        self.loop.call_soon_threadsafe(self._add, note)

    def stop(self, timeout: float) -> None:
        with suppress(RuntimeError):  # the loop already ended
            self.loop.call_soon_threadsafe(self._stop)
        self.thread.join(timeout)

    def _add(self, note: Note | None) -> None:
        if note is not None:
            self.pacer.add(note, time.monotonic())
        self.wake.set()

    def _stop(self) -> None:
        # the flag too: run() may not have started, and 3.11's wait_for can swallow a cancel
        self.stopping = True
        self.wake.set()
        if self.task is not None:
            self.task.cancel()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.run())
        finally:
            self.loop.close()

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
        due_at = self.pacer.next_due()
        timeout = None if due_at is None else max(0.0, due_at - time.monotonic())
        with suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout)
        self.wake.clear()

    async def send_due(self) -> None:
        taken = due(self.pacer, self.owner)
        if taken is not None and await self.deliver(*taken):
            self.pacer.sent(taken[1], time.monotonic())

    async def deliver(self, message: Message, note: Note) -> bool:
        """Send one notification; False (and the server marked down) if it was not taken."""
        if self.server is None and not await self.connect():
            return False
        assert self.server is not None
        sent: list[bool] = []
        from desktop_notifier import Button, Notification, Urgency

        buttons = [Button(label, self.pressed(key, note), identifier=key)
                   for key, label in message.buttons]  # fmt: skip
        notification = Notification(message.title, text(message.body),
                                    urgency=Urgency(message.urgency), buttons=tuple(buttons),
                                    on_dispatched=lambda: sent.append(True))  # fmt: skip
        self.error = None
        try:
            await asyncio.wait_for(self.server.send_notification(notification),
                                   base.CALL_TIMEOUT)  # fmt: skip
        except Exception as exc:  # TimeoutError, or anything desktop-notifier lets through
            self.error = exc
        if not sent:
            self.outage.failed("the notification server did not take a notification", self.error)
            await self.disconnect()
        return bool(sent)

    def pressed(self, action: str, note: Note) -> Callable[[], None]:
        return lambda: self.owner.press(action, note)

    async def connect(self) -> bool:
        """Open the server connection (asks for its capabilities); False while it is down."""
        if self.outage.down():
            return False
        try:
            from desktop_notifier import DesktopNotifier

            self.server = DesktopNotifier(app_name=APP_NAME, app_icon=_icon())
            await asyncio.wait_for(self.server.get_capabilities(), base.CALL_TIMEOUT)
        except Exception as exc:  # no bus, no server, a server that does not answer
            self.outage.failed("no usable notification server", exc)
            await self.disconnect()
            return False
        self.outage.working()
        return True

    async def disconnect(self) -> None:
        server, self.server = self.server, None
        await close_connection(server)


class LibraryFailures(logging.Filter):
    """Keeps desktop-notifier's own warning (with a traceback) for every failed send out of the
    log: the courier reports a failing server once itself, with the reason kept here."""

    def __init__(self, courier: NativeCourier) -> None:
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


def server_available(timeout: float) -> tuple[bool, str]:
    """Whether the notification centre answers now, and whether credguard's notifications
    show buttons there (they need the centre's support, and are not offered on macOS)."""

    async def probe() -> bool:
        from desktop_notifier import Capability, DesktopNotifier

        server = DesktopNotifier(app_name=APP_NAME, app_icon=_icon())
        try:
            capabilities = await asyncio.wait_for(server.get_capabilities(), timeout)
        finally:
            await close_connection(server)
        return Capability.BUTTONS in capabilities

    try:
        buttons = asyncio.run(probe())
    except Exception as exc:
        return availability(None, exc)
    if buttons and not buttons_shown():
        return availability(False, why=NO_BUTTONS)
    return availability(buttons)
