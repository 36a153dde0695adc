"""Desktop notifications on Linux and other freedesktop desktops: the session bus's
``org.freedesktop.Notifications``, through jeepney's blocking connection on one plain thread.

jeepney is already in the daemon for the keyring (secretstorage), so notifying costs a thread,
a socket and a few small objects, not a second D-Bus stack with an asyncio loop. The thread
sleeps in one ``select`` on the bus socket and a wake-up socket: the worker's notes, the
pacer's next due time and the server's signals (a button pressed, a notification closed) each
wake it. Alerts carry the "Protect now"/"Ignore" actions; an ``ActionInvoked`` signal from the
server that showed them is handed to the owner. Every call has a timeout; a failing server is
reported as :class:`~credguard.notify.base.Outage` says.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import threading
import time
from collections import deque
from contextlib import suppress
from typing import Any

from jeepney import (  # type: ignore[import-untyped]  # keyring's, through secretstorage
    DBusAddress,
    HeaderFields,
    MessageType,
    new_method_call,
)
from jeepney.bus_messages import MatchRule, message_bus  # type: ignore[import-untyped]
from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped]
from jeepney.wrappers import unwrap_msg  # type: ignore[import-untyped]

from credguard.notify import base
from credguard.notify.base import APP_NAME, ICON, THREAD, Outage, Owner, availability, due
from credguard.notify.messages import Message, Note, Pacer, text

log = logging.getLogger("credguard.notify.desktop")
NAME = "org.freedesktop.Notifications"
SERVER = DBusAddress("/org/freedesktop/Notifications", bus_name=NAME, interface=NAME)
# What the bus sends this connection (only the signals of the name's owner), and what is kept
# of what arrives (the sender is checked against the owner again, by its unique name)
SUBSCRIPTION = MatchRule(type="signal", sender=NAME, interface=NAME, path=SERVER.object_path)
SIGNALS = MatchRule(type="signal", interface=NAME, path=SERVER.object_path)
URGENCY = {"low": 0, "normal": 1, "critical": 2}  # the spec's urgency hint, a byte
SERVER_DEFAULT = -1  # expire_timeout: the server decides (a critical one stays until acted on)
BUTTONS_KEPT = 64  # notifications whose buttons may still be pressed, the oldest forgotten first
SIGNALS_KEPT = 256  # signals waiting to be handled; a flood beyond it is dropped, not stored


class Bus:
    """A connection to the session bus, to call the notification server and hear its signals.

    Raises (a missing bus, a server that does not answer in time, an error reply) are the
    caller's to report; ``close()`` ends the connection.
    """

    def __init__(self, timeout: float) -> None:
        if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
            raise ConnectionError("no session bus: DBUS_SESSION_BUS_ADDRESS is not set")
        self.conn = open_dbus_connection("SESSION", auth_timeout=timeout)
        self.timeout = timeout
        self.owner = ""  # the unique name that answered the last call: the server
        self.signals: deque[Any] = deque(maxlen=SIGNALS_KEPT)
        self.conn.filter(SIGNALS, queue=self.signals)

    def socket(self) -> socket.socket:
        sock: socket.socket = self.conn.sock
        return sock

    def subscribe(self) -> None:
        """Have the bus send the server's signals here (ActionInvoked, NotificationClosed)."""
        unwrap_msg(self.conn.send_and_get_reply(message_bus.AddMatch(SUBSCRIPTION),
                                                timeout=self.timeout))  # fmt: skip

    def call(self, method: str, signature: str | None = None, body: tuple[Any, ...] = ()
             ) -> tuple[Any, ...]:  # fmt: skip
        """Call the server and return its reply's values (DBusErrorResponse: an error reply)."""
        reply = self.conn.send_and_get_reply(new_method_call(SERVER, method, signature, body),
                                             timeout=self.timeout)  # fmt: skip
        values = tuple(unwrap_msg(reply))
        self.owner = str(reply.header.fields.get(HeaderFields.sender, ""))
        return values

    def read(self) -> list[tuple[str, tuple[Any, ...]]]:
        """The server's signals that arrived, as (member and signature, values): for instance
        ``("ActionInvoked(us)", (7, "protect"))``; never waits."""
        with suppress(TimeoutError):
            while True:  # what the socket holds now; a partial message stays in the parser
                self.conn.recv_messages(timeout=0)
        found = []
        while self.signals:
            msg = self.signals.popleft()
            fields = msg.header.fields
            if msg.header.message_type is MessageType.signal and self.owner and (
                    fields.get(HeaderFields.sender) == self.owner):  # fmt: skip
                member = fields.get(HeaderFields.member, "")
                found.append((f"{member}({fields.get(HeaderFields.signature, '')})",
                              tuple(msg.body)))  # fmt: skip
        return found

    def close(self) -> None:
        with suppress(OSError):
            self.conn.close()

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class FreedesktopCourier:
    """The notification thread: takes notes in, paces them, sends them, hears the buttons."""

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.pacer = Pacer()
        self.outage = Outage()
        self.inbox: deque[Note | None] = deque()
        self.stopping = False
        self.bus: Bus | None = None
        self.buttons: dict[int, tuple[Note, frozenset[str]]] = {}  # id -> its note and keys
        self._wake_r, self._wake_w = socket.socketpair()  # a closed socket object is inert
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self._wake_r, selectors.EVENT_READ)
        self.thread = threading.Thread(target=self.run, name=THREAD, daemon=True)
        self.thread.start()

    def add(self, note: Note | None) -> None:
        if self.thread.is_alive():  # else nothing would ever take it out
            self.inbox.append(note)
            self.wake()

    def wake(self) -> None:
        with suppress(OSError):  # full (already woken up) or closed (stopped)
            self._wake_w.send(b"\0")

    def stop(self, timeout: float) -> None:
        self.stopping = True
        self.wake()
        self.thread.join(timeout)
        self._wake_w.close()

    def run(self) -> None:
        try:
            self.connect()
            while not self.stopping:
                self.take_in()
                self.hear()
                try:
                    self.send_due()
                except Exception:  # a bug here must not end notifications for good
                    log.exception("a desktop notification failed")
                self.wait()
        except Exception:  # logged, never raised into the daemon; notes are dropped from now on
            log.exception("desktop notifications stopped")
        finally:
            self.disconnect()
            self.selector.close()
            self._wake_r.close()

    def take_in(self) -> None:
        """Hand the notes that came in to the pacer (None is only a wake-up)."""
        now = time.monotonic()
        while self.inbox:
            note = self.inbox.popleft()
            if note is not None:
                self.pacer.add(note, now)

    def wait(self) -> None:
        """Sleep until a note, a signal or the pacer's next due time (whichever comes first)."""
        due_at = self.pacer.next_due()
        timeout = None if due_at is None else max(0.0, due_at - time.monotonic())
        for key, _ in self.selector.select(timeout):
            if key.fileobj is self._wake_r:
                with suppress(OSError):
                    while self._wake_r.recv(4096):
                        pass

    def send_due(self) -> None:
        taken = due(self.pacer, self.owner)
        if taken is not None and self.deliver(*taken):
            self.pacer.sent(taken[1], time.monotonic())

    def deliver(self, message: Message, note: Note) -> bool:
        """Send one notification; False (and the server marked down) if it was not taken."""
        if self.bus is None and not self.connect():
            return False
        assert self.bus is not None
        actions = [part for button in message.buttons for part in button]  # key, label, ...
        hints = {"urgency": ("y", URGENCY.get(message.urgency, 1))}
        try:
            (nid,) = self.bus.call("Notify", "susssasa{sv}i", (
                APP_NAME, 0, ICON, message.title, text(message.body), actions, hints,
                SERVER_DEFAULT))  # fmt: skip
        except Exception as exc:  # a timeout, an error reply, a lost connection
            self.outage.failed("the notification server did not take a notification", exc)
            self.disconnect()
            return False
        if message.buttons:
            self.buttons[int(nid)] = (note, frozenset(key for key, _ in message.buttons))
            while len(self.buttons) > BUTTONS_KEPT:
                del self.buttons[next(iter(self.buttons))]
        return True

    def hear(self) -> None:
        """Act on the server's signals: a pressed button reaches the owner, once."""
        if self.bus is None:
            return
        try:
            signals = self.bus.read()
        except OSError as exc:  # the bus went away: the next notification reconnects
            log.debug("the session bus connection ended: %s", exc)
            self.disconnect()
            return
        for member, values in signals:  # the spec's signatures only: no other shape is read
            if member == "ActionInvoked(us)":
                nid, key = values
                note, keys = self.buttons.pop(nid, (None, frozenset[str]()))
                if note is not None and key in keys:
                    self.owner.press(key, note)
            elif member == "NotificationClosed(uu)":
                self.buttons.pop(values[0], None)

    def connect(self) -> bool:
        """Connect and ask the server what it can do; False while it is down."""
        if self.outage.down():
            return False
        bus = None
        try:
            bus = Bus(base.CALL_TIMEOUT)
            bus.subscribe()
            bus.call("GetCapabilities")
            self.selector.register(bus.socket(), selectors.EVENT_READ)
        except Exception as exc:  # no bus, no server, a server that does not answer
            if bus is not None:
                bus.close()
            self.outage.failed("no usable notification server", exc)
            return False
        self.bus = bus
        self.outage.working()
        return True

    def disconnect(self) -> None:
        bus, self.bus = self.bus, None
        if bus is not None:
            with suppress(KeyError, ValueError, OSError):
                self.selector.unregister(bus.socket())
            bus.close()
        self.buttons.clear()  # a new connection hears nothing about the old notifications


def server_available(timeout: float) -> tuple[bool, str]:
    """Whether a notification server answers on the session bus, and whether it shows
    buttons (the spec's "actions" capability)."""
    try:
        with Bus(timeout) as bus:
            (capabilities,) = bus.call("GetCapabilities")
    except Exception as exc:
        return availability(None, exc)
    return availability("actions" in capabilities)
