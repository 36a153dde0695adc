"""The notification backends and the one place that picks them (issue 16: a daemon that gives
memory back): on Linux the keyring's jeepney on one plain thread, never desktop-notifier,
dbus-fast or an asyncio loop; desktop-notifier on macOS and Windows, run here through its own
D-Bus backend by forcing ``CREDGUARD_PLATFORM``.

Against the recording server of ``helpers/notification_server.py`` on the test's private bus
(a fake, said there); the two other servers here are fakes too, each saying why.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
from helpers.daemon import wait_for
from helpers.home import Home
from helpers.notification_server import NAME, RecordingServer
from helpers.secret_service import SecretService
from jeepney import DBusAddress, HeaderFields, new_signal  # type: ignore[import-untyped]
from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
from jeepney.io.blocking import (  # type: ignore[import-untyped]
    DBusConnection,
    Proxy,
    open_dbus_connection,
)

from credguard.detect.kinds import PUBLISH_PROFILE
from credguard.notify import base, desktop, freedesktop, messages
from credguard.notify.desktop import Notifier

pytestmark = pytest.mark.timeout(120)
FP = "sha256:" + "cd" * 32
EMITTER = DBusAddress("/org/freedesktop/Notifications", interface=NAME)
Pressed = list[tuple[str, str, str]]


def alert(notifier: Notifier, path: str, reason: str = "") -> None:
    """An alert with buttons: "Protect now" and "Ignore" (only "Ignore" while paused)."""
    fields = {"action": "protect" if reason else "alert", "reason": reason}
    notifier.event("alerted", PUBLISH_PROFILE, path, FP, fields)


PICKED = [("linux", "freedesktop"), ("other", "freedesktop"), ("macos", "native"),
          ("windows", "native")]  # fmt: skip


@pytest.mark.parametrize(("platform", "name"), PICKED)
def test_one_dispatcher_picks_the_backend(
    platform: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDGUARD_PLATFORM", platform)
    assert desktop.backend_name() == name


CHILD = textwrap.dedent("""\
    import json, sys, threading
    from credguard.notify.desktop import Notifier
    notifier = Notifier(True, lambda *args: None)
    notifier.event("protected", "azure-publish-profile", sys.argv[1], "sha256:" + "0" * 64, {})
    sys.stdin.readline()  # the test saw the notification arrive
    json.dump({"modules": sorted(sys.modules),
               "threads": sorted(t.name for t in threading.enumerate())}, sys.stdout)
    notifier.close()
""")


def test_linux_notifies_on_one_thread_without_a_second_dbus_stack(
    notification_server: RecordingServer, home: Home
) -> None:
    """What the daemon carries once it has notified: one more thread, and no desktop-notifier,
    dbus-fast or asyncio (the keyring has loaded jeepney already)."""
    path = str(home.downloads / "fresh.PublishSettings")
    child = subprocess.Popen([sys.executable, "-c", CHILD, path], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        (call,) = notification_server.wait_calls(1)
        out, err = child.communicate("\n", timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert call.summary == "Credential file protected" and "fresh.PublishSettings" in call.body
    seen = json.loads(out)
    heavy = [m for m in seen["modules"]
             if m.split(".")[0] in ("desktop_notifier", "dbus_fast", "asyncio")]  # fmt: skip
    assert heavy == [] and "jeepney.io.blocking" in seen["modules"]
    assert seen["threads"] == ["MainThread", "credguard-notify"]
    assert "no desktop notifications" not in err


# -- buttons: only the server's own signals, only the keys offered, only once ------------------


def forge(address: str, nid: int, key: str) -> None:
    """Another program on the bus sends ActionInvoked for our notification: broadcast, and
    addressed to every connection on the bus (a unicast signal passes any match rule)."""
    with open_dbus_connection(bus=address) as conn:
        signal = new_signal(EMITTER, "ActionInvoked", "us", (nid, key))
        conn.send(signal)
        (names,) = Proxy(message_bus, conn, timeout=5).ListNames()
        for name in names:
            if name.startswith(":") and name != conn.unique_name:
                signal = new_signal(EMITTER, "ActionInvoked", "us", (nid, key))
                signal.header.fields[HeaderFields.destination] = name
                conn.send(signal)


def test_a_button_press_counts_only_from_the_server(
    notification_server: RecordingServer, notifier: Notifier, pressed: Pressed, home: Home
) -> None:
    path = str(home.root / "stray.PublishSettings")
    alert(notifier, path)
    (call,) = notification_server.wait_calls(1)
    forge(notification_server.address, call.id, "protect")
    time.sleep(0.5)
    assert pressed == []
    notification_server.press(call.id, "ignore")
    wait_for(lambda: pressed, timeout=5)
    assert pressed == [("ignore", path, FP)]


def test_a_button_counts_once_and_only_if_it_was_offered(
    notification_server: RecordingServer, notifier: Notifier, pressed: Pressed, home: Home,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(messages, "MIN_GAP", 0.1)
    paused = str(home.downloads / "waiting.PublishSettings")
    alert(notifier, paused, reason="alert-only")
    (first,) = notification_server.wait_calls(1)
    assert first.buttons == {"ignore": "Ignore"}
    notification_server.press(first.id, "protect")  # not offered while protection is paused
    time.sleep(messages.WINDOW + 0.2)
    path = str(home.root / "twice.PublishSettings")
    alert(notifier, path)
    second = notification_server.wait_calls(2)[1]
    notification_server.press(second.id, "protect")
    notification_server.press(second.id, "protect")  # again, once the server closed it
    wait_for(lambda: pressed, timeout=5)
    time.sleep(0.5)
    assert pressed == [("protect", path, FP)]


def test_buttons_still_work_after_the_server_restarted(
    secret_service: SecretService, notifier: Notifier, pressed: Pressed, home: Home,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A new server process owns the name under a new unique name: its signals count."""
    monkeypatch.setattr(messages, "MIN_GAP", 0.1)
    old = RecordingServer(secret_service.address).start()
    try:
        alert(notifier, str(home.root / "one.PublishSettings"))
        old.wait_calls(1)
    finally:
        old.stop()
    new = RecordingServer(secret_service.address).start()
    try:
        time.sleep(messages.WINDOW + 0.2)
        path = str(home.root / "two.PublishSettings")
        alert(notifier, path)
        (call,) = new.wait_calls(1)
        new.press(call.id, "protect")
        wait_for(lambda: pressed, timeout=5)
        assert pressed == [("protect", path, FP)]
    finally:
        new.stop()


def test_buttons_of_old_notifications_are_forgotten(
    notification_server: RecordingServer, notifier: Notifier, pressed: Pressed, home: Home,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A server that never says a notification closed cannot make the daemon grow."""
    monkeypatch.setattr(freedesktop, "BUTTONS_KEPT", 2)
    monkeypatch.setattr(messages, "MIN_GAP", 0.1)
    monkeypatch.setattr(messages, "WINDOW", 0.1)
    paths = [str(home.root / f"{i}.PublishSettings") for i in range(3)]
    for i, path in enumerate(paths, 1):
        alert(notifier, path)
        notification_server.wait_calls(i)
        time.sleep(0.3)
    calls = notification_server.calls
    notification_server.press(calls[0].id, "protect")  # the oldest: forgotten
    notification_server.press(calls[2].id, "protect")
    wait_for(lambda: pressed, timeout=5)
    time.sleep(0.3)
    assert pressed == [("protect", paths[2], FP)]


# -- a server that never answers ---------------------------------------------------------------


@pytest.fixture
def silent_server(secret_service: SecretService) -> Iterator[DBusConnection]:
    """A fake server: owns the name and never reads a message (no real server hangs on cue)."""
    conn = open_dbus_connection(bus=secret_service.address)
    try:
        assert Proxy(message_bus, conn, timeout=5).RequestName(NAME, 4) == (1,)
        yield conn
    finally:
        conn.close()


def test_a_server_that_never_answers_times_out_once(
    silent_server: DBusConnection, notifier: Notifier, home: Home,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(base, "CALL_TIMEOUT", 0.5)
    started = time.monotonic()
    notifier.start()
    for i in range(3):
        notifier.event("protected", PUBLISH_PROFILE, str(home.downloads / f"{i}.xml"), FP, {})
    wait_for(lambda: [r for r in caplog.records if r.levelno >= logging.WARNING], timeout=10)
    assert time.monotonic() - started < 5
    time.sleep(0.5)
    closing = time.monotonic()
    notifier.close()
    assert time.monotonic() - closing < 1.5
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "no usable notification server: TimeoutError" in warning


def test_doctor_sees_a_silent_server_as_none(
    silent_server: DBusConnection,
) -> None:
    ok, detail = desktop.server_available(0.5)
    assert not ok and detail.startswith("no usable notification server (TimeoutError")


def test_doctor_says_when_a_server_shows_no_buttons(secret_service: SecretService) -> None:
    server = RecordingServer(secret_service.address, capabilities=("body",)).start()
    try:
        assert desktop.server_available() == (True,
                                              "a notification server answers (without buttons)")
    finally:
        server.stop()


# -- desktop-notifier, the macOS and Windows backend -------------------------------------------


@pytest.fixture
def as_macos(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatcher picks desktop-notifier, which on this Linux talks D-Bus itself."""
    monkeypatch.setenv("CREDGUARD_PLATFORM", "macos")


@pytest.fixture
def as_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """desktop-notifier as on Windows, where buttons are offered (its WinRT backend calls back
    on the courier's loop); on this Linux it talks D-Bus itself."""
    monkeypatch.setenv("CREDGUARD_PLATFORM", "windows")


@pytest.mark.usefixtures("as_windows")
def test_native_backend_shows_alerts_and_hands_on_their_buttons(
    notification_server: RecordingServer, notifier: Notifier, pressed: Pressed, home: Home
) -> None:
    path = str(home.root / "a<b>.PublishSettings")
    alert(notifier, path)
    (call,) = notification_server.wait_calls(1)
    assert call.summary == "Credential file found, not protected" and call.urgency == 2
    assert call.buttons == {"protect": "Protect now", "ignore": "Ignore"}
    assert "a<b>.PublishSettings" in call.body  # plain text: Windows reads no markup
    notification_server.press(call.id, "protect")
    wait_for(lambda: pressed, timeout=5)
    assert pressed == [("protect", path, FP)]
    assert desktop.server_available() == (True, "a notification server answers (with buttons)")


@pytest.mark.usefixtures("as_macos")
def test_macos_gets_no_buttons_but_the_commands_that_do_their_work(
    notification_server: RecordingServer, notifier: Notifier, home: Home
) -> None:
    """A press would never reach the daemon on macOS (desktop-notifier needs a CFRunLoop on
    the main thread there), so no button is sent, though this server could show them; the
    body names the tray menu and the commands instead."""
    alert(notifier, str(home.root / "a<b>.PublishSettings"))
    (call,) = notification_server.wait_calls(1)
    assert call.summary == "Credential file found, not protected" and call.buttons == {}
    assert "'credguard protect PATH' protects it now" in call.body
    assert "'credguard ignore FINGERPRINT' (as 'credguard scan' shows it)" in call.body
    assert "a<b>.PublishSettings" in call.body  # plain text: macOS reads no markup
    time.sleep(messages.MIN_GAP)
    item_id = "ab" * 16
    notifier.event("protected", PUBLISH_PROFILE, str(home.downloads / "c.PublishSettings"), FP,
                   {"item_id": item_id, "detail": "deleted"})  # fmt: skip
    _, call = notification_server.wait_calls(2)
    assert call.summary == "Credential file protected" and call.buttons == {}
    assert "Open for import:" not in call.body
    assert f"\"Recently protected\" menu or 'credguard open {item_id}'" in call.body
    assert f"'credguard restore {item_id}' puts the file back" in call.body
    assert FP not in call.body
    ok, detail = desktop.server_available()
    assert ok and detail.startswith("a notification server answers (without buttons: they "
                                    "would do nothing on macOS")


@pytest.mark.usefixtures("as_macos")
def test_native_backend_reports_a_broken_server_once(
    broken_notification_server: RecordingServer, notifier: Notifier, home: Home,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    for i in range(3):
        notifier.event("protected", PUBLISH_PROFILE, str(home.downloads / f"{i}.xml"), FP, {})
        time.sleep(messages.WINDOW / 2)
    wait_for(lambda: [r for r in caplog.records if r.levelno >= logging.WARNING], timeout=10)
    time.sleep(0.5)
    notifier.close()
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "did not take a notification" in warning and "broken on purpose" in warning
