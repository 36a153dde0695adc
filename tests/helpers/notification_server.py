"""Notification servers for tests, on the private bus of the ``secret_service`` fixture.

``notification_server`` (function) -> :class:`RecordingServer`
    A small server written here with jeepney — the one fake, because a real server cannot be
    driven or read back without X: it owns ``org.freedesktop.Notifications``, answers
    Introspect, GetCapabilities, GetServerInformation, Notify and CloseNotification the way the
    specification says, records every Notify call (``.calls``), and emits ``ActionInvoked`` and
    ``NotificationClosed`` on request (``.press(id, key)``), as a real server does when the user
    presses a button. ``broken_notification_server`` answers every Notify with an error.
``real_notification_server`` (function) -> :class:`RealServer`
    A REAL server: dunst (or notification-daemon) on a fresh Xvfb display, plus ``dbus-monitor``
    recording every method call to the Notifications interface. Skipped only when the programs
    are missing (Debian: xvfb, dunst or notification-daemon, dbus-bin). With dunst,
    ``.press(key)`` presses a button of the notification shown: ``dunstctl context`` opens
    dunst's menu of actions, and its "dmenu" (a script here, as a user's dmenu would) picks the
    one whose action key is ``key``; dunst then emits ``ActionInvoked`` itself.

Both sit on the Secret Service's bus, so a daemon under test finds a keyring and a notification
server on one ``DBUS_SESSION_BUS_ADDRESS``. Every process is killed at teardown.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_return, new_signal  # type: ignore[import-untyped]
from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
from jeepney.io.threading import (  # type: ignore[import-untyped]
    DBusConnection,
    DBusRouter,
    Proxy,
    ReceiveStopped,
    open_dbus_connection,
)
from jeepney.low_level import Message  # type: ignore[import-untyped]

from helpers.secret_service import SecretService, _stop

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
EMITTER = DBusAddress(PATH, interface=NAME)
INTROSPECTION = """<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node>
 <interface name="org.freedesktop.DBus.Introspectable">
  <method name="Introspect"><arg name="xml" type="s" direction="out"/></method>
 </interface>
 <interface name="org.freedesktop.Notifications">
  <method name="GetCapabilities"><arg name="caps" type="as" direction="out"/></method>
  <method name="Notify">
   <arg name="app_name" type="s" direction="in"/>
   <arg name="replaces_id" type="u" direction="in"/>
   <arg name="app_icon" type="s" direction="in"/>
   <arg name="summary" type="s" direction="in"/>
   <arg name="body" type="s" direction="in"/>
   <arg name="actions" type="as" direction="in"/>
   <arg name="hints" type="a{sv}" direction="in"/>
   <arg name="expire_timeout" type="i" direction="in"/>
   <arg name="id" type="u" direction="out"/>
  </method>
  <method name="CloseNotification"><arg name="id" type="u" direction="in"/></method>
  <method name="GetServerInformation">
   <arg name="name" type="s" direction="out"/>
   <arg name="vendor" type="s" direction="out"/>
   <arg name="version" type="s" direction="out"/>
   <arg name="spec_version" type="s" direction="out"/>
  </method>
  <signal name="NotificationClosed"><arg name="id" type="u"/><arg name="reason" type="u"/></signal>
  <signal name="ActionInvoked"><arg name="id" type="u"/><arg name="action_key" type="s"/></signal>
 </interface>
</node>
"""
DISMISSED, CLOSED_BY_CALL = 2, 3  # NotificationClosed reasons
REACTION = 0.2  # s: the quickest a person presses a button on a notification that appeared


@dataclass(frozen=True)
class NotifyCall:
    """One Notify call as the server received it."""

    id: int
    app_name: str
    app_icon: str
    summary: str
    body: str
    actions: list[str]
    hints: dict[str, Any]
    expire_timeout: int

    @property
    def buttons(self) -> dict[str, str]:
        """``{action key: label}`` without the "default" (click on the body) action."""
        pairs = dict(zip(self.actions[::2], self.actions[1::2], strict=True))
        pairs.pop("default", None)
        return pairs

    @property
    def urgency(self) -> int:
        return int(self.hints["urgency"][1]) if "urgency" in self.hints else 1


@dataclass
class RecordingServer:
    """Owns ``org.freedesktop.Notifications`` on ``address`` until ``stop()``."""

    address: str
    broken: bool = False
    capabilities: tuple[str, ...] = ("actions", "body", "body-markup")
    calls: list[NotifyCall] = field(default_factory=list)

    def start(self) -> RecordingServer:
        self._conn: DBusConnection = open_dbus_connection(bus=self.address)
        with DBusRouter(self._conn) as router:
            reply = Proxy(message_bus, router, timeout=5).RequestName(NAME, 4)  # do not queue
        assert reply == (1,), f"could not own {NAME}: {reply}"
        self._changed = threading.Condition()
        self._answering = threading.Lock()  # a call recorded is answered before stop() closes
        self._answered: dict[int, float] = {}  # notification id -> when Notify was answered
        self._thread = threading.Thread(target=self._serve, name="notification-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the connection (the bus frees the name) and end the serving thread; a call
        already recorded (``wait_calls`` saw it) is answered first, as a real server would."""
        with self._answering:
            self._conn.close()
        self._thread.join(5)

    def wait_calls(self, count: int, timeout: float = 15.0) -> list[NotifyCall]:
        """At least ``count`` Notify calls (all of them), or fail the test after ``timeout``."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.calls) >= count, timeout):
                pytest.fail(f"{len(self.calls)} Notify call(s) in {timeout} s, wanted {count}")
            return list(self.calls)

    def press(self, notification_id: int, key: str) -> None:
        """What a server does when the user presses a button: ActionInvoked, then closed.

        Not sooner than ``REACTION`` s after the notification was answered, as with a person:
        desktop-notifier maps the server's id to its notification only after taking the reply.
        """
        with self._changed:
            shown = self._answered[notification_id]
        time.sleep(max(0.0, shown + REACTION - time.monotonic()))
        self._conn.send(new_signal(EMITTER, "ActionInvoked", "us", (notification_id, key)))
        self.dismiss(notification_id)

    def dismiss(self, notification_id: int, reason: int = DISMISSED) -> None:
        self._conn.send(new_signal(EMITTER, "NotificationClosed", "uu", (notification_id, reason)))

    def _serve(self) -> None:
        try:
            while True:
                msg = self._conn.receive()
                if msg.header.message_type == MessageType.method_call:
                    with self._answering:
                        self._conn.send(self._answer(msg))
        except (ReceiveStopped, OSError, ValueError):
            return  # stop() closed the connection

    def _answer(self, msg: Message) -> Message:
        member = msg.header.fields.get(HeaderFields.member)
        if member == "Introspect":
            return new_method_return(msg, "s", (INTROSPECTION,))
        if member == "GetCapabilities":
            return new_method_return(msg, "as", (list(self.capabilities),))
        if member == "GetServerInformation":
            return new_method_return(msg, "ssss", ("credguard-test", "tests", "1.0", "1.2"))
        if member == "Notify" and not self.broken:
            return new_method_return(msg, "u", (self._record(msg.body),))
        if member == "CloseNotification":
            self.dismiss(msg.body[0], CLOSED_BY_CALL)
            return new_method_return(msg)
        if member == "Notify":  # a broken server
            return new_error(msg, "org.freedesktop.DBus.Error.Failed", "s", ("broken on purpose",))
        return new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod")

    def _record(self, body: tuple[Any, ...]) -> int:
        with self._changed:
            call = NotifyCall(len(self.calls) + 1, body[0], body[2], body[3], body[4],
                              list(body[5]), dict(body[6]), body[7])  # fmt: skip
            self.calls.append(call)
            self._answered[call.id] = time.monotonic()
            self._changed.notify_all()
            return call.id


@pytest.fixture
def notification_server(secret_service: SecretService) -> Iterator[RecordingServer]:
    server = RecordingServer(secret_service.address).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broken_notification_server(secret_service: SecretService) -> Iterator[RecordingServer]:
    server = RecordingServer(secret_service.address, broken=True).start()
    try:
        yield server
    finally:
        server.stop()


# -- a real server ----------------------------------------------------------------------------


def _program(*candidates: str) -> str:
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    pytest.skip(f"not installed: {' or '.join(candidates)} (Debian: xvfb, dunst, dbus-bin)")


@dataclass
class RealServer:
    """Xvfb + a real notification server + dbus-monitor, all on one private bus."""

    bus: SecretService
    root: Path
    monitor_log: Path = field(init=False)
    env: dict[str, str] = field(init=False)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> RealServer:
        xvfb = _program("Xvfb")
        server = _program("dunst", "/usr/lib/notification-daemon/notification-daemon")
        monitor = _program("dbus-monitor")
        self.env = env = {**self.bus.daemon_env, "DISPLAY": self._start_xvfb(xvfb)}
        self._spawn([server, *self._dunst_config(server)], env, self.root / "server.log")
        self._wait(lambda: self.bus.call(message_bus.NameHasOwner(NAME))[0], "the server")
        self.monitor_log = self.root / "monitor.log"
        rule = f"type='method_call',interface='{NAME}'"
        self._spawn([monitor, "--address", self.bus.address, rule], env, self.monitor_log)
        self._wait(lambda: "NameLost" in self.monitor_text(), "dbus-monitor")  # it is listening
        return self

    def monitor_text(self) -> str:
        return self.monitor_log.read_text(errors="replace")

    def _dunst_config(self, server: str) -> list[str]:
        """dunst's arguments: a configuration whose dmenu picks the action :meth:`press` names
        from the menu lines ``#<label> (<summary>) [<id>,<key>]``."""
        if Path(server).name != "dunst":
            return []
        pick, menu = self.root / "pick", self.root / "menu.txt"
        script = self.root / "dmenu"
        script.write_text(f'#!/bin/sh\ncat > "{menu}"\n'
                          f'grep -m1 ",$(cat "{pick}")]$" "{menu}"\n')
        script.chmod(0o700)
        config = self.root / "dunstrc"
        config.write_text(f"[global]\n    dmenu = {script}\n")
        return ["-config", str(config)]

    def press(self, key: str, timeout: float = 10.0) -> str:
        """Press the button ``key`` of a notification dunst shows (asked again until dunst
        shows it: it draws a notification a moment after taking it); the menu it offered."""
        (self.root / "pick").write_text(key)
        menu = self.root / "menu.txt"
        deadline = time.monotonic() + timeout
        while True:
            menu.unlink(missing_ok=True)
            subprocess.run(["dunstctl", "context"], env=self.env, check=True, timeout=10,
                           capture_output=True)
            self._wait(menu.exists, "dunst's action menu")
            offered = menu.read_text()
            if f",{key}]" in offered or time.monotonic() > deadline:
                return offered
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _stop(proc)

    def _start_xvfb(self, xvfb: str) -> str:
        """Xvfb on the first free display; it writes the number once it accepts clients."""
        read, write = os.pipe()
        try:
            self.procs.append(subprocess.Popen(
                [xvfb, "-displayfd", str(write), "-nolisten", "tcp", "-screen", "0", "800x600x24"],
                pass_fds=(write,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True))  # fmt: skip
        finally:
            os.close(write)  # so a dying Xvfb means end of file, not a hang
        with os.fdopen(read, "rb") as pipe:
            number = pipe.readline().decode().strip()
        if not number.isdigit():
            self.stop()
            pytest.fail("Xvfb did not start", pytrace=False)
        return f":{number}"

    def _spawn(self, args: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("ab") as out:
            self.procs.append(
                subprocess.Popen(
                    args,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    start_new_session=True,
                )
            )

    def _wait(self, check: Any, what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                self.stop()
                pytest.fail(f"{what} did not start; logs in {self.root}", pytrace=False)
            time.sleep(0.02)


@pytest.fixture
def real_notification_server(secret_service: SecretService, tmp_path: Path) -> Iterator[RealServer]:
    root = tmp_path / "real-notifications"
    root.mkdir()
    server = RealServer(secret_service, root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
