"""Desktop notifications: the Notifier against a notification server on a private D-Bus, and the
real daemon process notifying, with its buttons acting through the daemon.

The fast tests use the recording server of ``notification_server.py`` (a fake, said there: a
real server cannot be read back without X); one end-to-end test runs dunst under Xvfb and reads
the Notify call with ``dbus-monitor``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, wait_for
from helpers.home import Home, run_subprocess, sha, vault_shas
from helpers.secret_service import SecretService, SessionBus

from credguard import config
from credguard.detect.kinds import KINDS, PUBLISH_PROFILE
from credguard.notify import base, desktop, messages
from credguard.notify.desktop import Notifier

if TYPE_CHECKING:  # imported by pytest_plugins, for its fixtures
    from helpers.notification_server import NotifyCall, RealServer, RecordingServer


pytestmark = pytest.mark.timeout(120)
FP = "sha256:" + "ab" * 32
Pressed = list[tuple[str, str, str]]


def warnings_from(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- the Notifier against a recording server ----------------------------------------------------


def test_protected_says_what_where_and_how_to_revoke(
    notification_server: RecordingServer, notifier: Notifier, home: Home
) -> None:
    path = str(home.downloads / "contoso.PublishSettings")
    fields = {"item_id": "x", "detail": "deleted (overwrite attempted)"}
    notifier.event("protected", PUBLISH_PROFILE, path, FP, fields)
    (call,) = notification_server.wait_calls(1)
    assert call.app_name == "credguard" and call.summary == "Credential file protected"
    assert "contoso.PublishSettings (in ~/Downloads)" in call.body
    assert KINDS[PUBLISH_PROFILE].title in call.body
    assert "deleted (overwrite attempted)" in call.body
    assert "If it may have leaked: Reset the publish profile" in call.body
    assert FP not in call.body and call.urgency == 1


@pytest.mark.parametrize("key", ["open", "restore"])
def test_protected_offers_open_for_import_and_restore(
    notification_server: RecordingServer, notifier: Notifier, pressed: Pressed, home: Home,
    key: str,
) -> None:  # fmt: skip
    """Both act on the vault item the file went to; the text says how long the copy lives
    and never tells the user to delete the file credguard deleted."""
    path = str(home.downloads / "contoso.PublishSettings")
    item_id = "ab" * 16
    notifier.event("protected", PUBLISH_PROFILE, path, FP, {"item_id": item_id, "detail": "x"})
    (call,) = notification_server.wait_calls(1)
    assert call.buttons == {"open": "Open for import", "restore": "Restore"}
    assert "Open for import: a RAM-only copy for 5 min." in call.body
    assert "this file" not in call.body and "delete" not in call.body.lower()
    notification_server.press(call.id, key)
    wait_for(lambda: pressed, timeout=5)
    assert pressed == [(key, path, FP, item_id)]


def test_a_protected_file_without_a_vault_item_offers_no_button(
    notification_server: RecordingServer, notifier: Notifier, home: Home
) -> None:
    notifier.event("protected", PUBLISH_PROFILE, str(home.downloads / "a.xml"), FP, {})
    (call,) = notification_server.wait_calls(1)
    assert call.buttons == {} and "Open for import" not in call.body


def covered(calls: list[NotifyCall]) -> int:
    """How many events these notifications tell about (a summary's title starts with it)."""
    return sum(int(c.summary.split()[0]) if c.summary[0].isdigit() else 1 for c in calls)


def test_a_burst_of_100_is_one_to_three_notifications(
    notification_server: RecordingServer, notifier: Notifier, home: Home
) -> None:
    for i in range(100):
        path = str(home.downloads / f"c{i:03}.PublishSettings")
        notifier.event("protected", PUBLISH_PROFILE, path, FP, {"detail": "x"})
    wait_for(lambda: covered(notification_server.calls) == 100, timeout=15)
    time.sleep(messages.MIN_GAP + 0.5)  # nothing else comes
    calls = notification_server.calls
    assert 1 <= len(calls) <= 3 and covered(calls) == 100
    summary = calls[-1]
    count = int(summary.summary.split()[0])
    assert summary.summary == f"{count} credential files protected"
    assert summary.body.startswith(f"c{100 - count:03}.PublishSettings, ")
    assert (
        f"and {count - 5} more" in summary.body and "deleted (overwrite attempted)" in summary.body
    )


@pytest.mark.parametrize("key", ["protect", "ignore"])
def test_alert_buttons_reach_on_action(
    notification_server: RecordingServer, notifier: Notifier, pressed: Pressed, home: Home,
    key: str,
) -> None:  # fmt: skip
    path = str(home.root / "stray.PublishSettings")
    notifier.event("alerted", PUBLISH_PROFILE, path, FP, {"action": "alert"})
    (call,) = notification_server.wait_calls(1)
    assert call.summary == "Credential file found, not protected"
    assert call.buttons == {"protect": "Protect now", "ignore": "Ignore"}
    assert call.urgency == 2  # critical: it stays until the user decides
    notification_server.press(call.id, key)
    wait_for(lambda: pressed, timeout=5)
    assert pressed == [(key, path, FP)]


def test_a_deferred_alert_offers_only_ignore(
    notification_server: RecordingServer, notifier: Notifier, home: Home
) -> None:
    path = str(home.downloads / "a.PublishSettings")
    notifier.event("alerted", PUBLISH_PROFILE, path, FP, {"action": "protect",
                                                          "reason": "alert-only"})  # fmt: skip
    (call,) = notification_server.wait_calls(1)
    assert call.buttons == {"ignore": "Ignore"}
    assert "Protection is paused (no usable keyring); it will be protected" in call.body


def test_only_what_matters_is_shown(
    notification_server: RecordingServer, notifier: Notifier, home: Home
) -> None:
    path = str(home.azure / "msal_token_cache.json")
    notifier.event("alerted", "azure-cli-token-cache", path, FP, {"action": "harden"})
    for event in ("detected", "ignored", "hardened"):
        notifier.event(event, PUBLISH_PROFILE, path, FP, {})
    notifier.mode("paused", "")  # the user's own pause
    notifier.mode("protecting", "")  # a resume nobody was told to wait for
    notifier.event("failed", PUBLISH_PROFILE, path, FP, {"reason": "changed", "detail": ""})
    (call,) = notification_server.wait_calls(1)
    assert call.summary == "Could not protect a credential file" and "changed" in call.body
    time.sleep(0.5)
    assert len(notification_server.calls) == 1


def test_keyring_pause_and_resume(
    notification_server: RecordingServer, notifier: Notifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(messages, "MIN_GAP", 0.2)
    notifier.mode("alert-only", "the keyring is locked")
    notifier.mode("alert-only", "the keyring is locked")
    (paused,) = notification_server.wait_calls(1)
    assert paused.summary == "Protection paused until the keyring is unlocked"
    assert paused.body.startswith("the keyring is locked.")
    notifier.mode("protecting", "")
    resumed = notification_server.wait_calls(2)[1]
    assert resumed.summary == "Protection resumed"


def test_markup_in_a_file_name_is_shown_as_text(
    notification_server: RecordingServer, notifier: Notifier, home: Home
) -> None:
    notifier.event("imported", PUBLISH_PROFILE, str(home.root / "a<b>&c.xml"), FP, {})
    (call,) = notification_server.wait_calls(1)
    assert "a&lt;b&gt;&amp;c.xml" in call.body


def test_disabled_sends_nothing_and_starts_no_thread(
    notification_server: RecordingServer, home: Home
) -> None:
    n = Notifier(False, lambda *_: None)
    n.start()
    n.event("protected", PUBLISH_PROFILE, str(home.downloads / "a.xml"), FP, {})
    n.mode("alert-only", "locked")
    time.sleep(0.3)
    assert notification_server.calls == []
    assert not [t for t in threading.enumerate() if t.name == "credguard-notify"]
    n.close()


# -- no server, a broken server, a server that comes back --------------------------------------


def burst_of_events(n: Notifier, home: Home) -> None:
    for i in range(5):
        n.event("protected", PUBLISH_PROFILE, str(home.downloads / f"{i}.xml"), FP, {})
        n.mode("alert-only", "locked")


def the_one_warning(
    notifier: Notifier, home: Home, caplog: pytest.LogCaptureFixture, settle: float = 0.3
) -> str:
    """Two bursts of events while notifications fail: the single warning they give."""
    burst_of_events(notifier, home)
    wait_for(lambda: warnings_from(caplog), timeout=10)
    burst_of_events(notifier, home)
    time.sleep(settle)
    notifier.close()
    (warning,) = warnings_from(caplog)
    return warning


def test_no_bus_at_all_is_one_warning(
    notifier: Notifier, home: Home, caplog: pytest.LogCaptureFixture
) -> None:
    assert "DBUS_SESSION_BUS_ADDRESS" not in os.environ
    notifier.start()
    warning = the_one_warning(notifier, home, caplog, settle=0)
    assert "no usable notification server" in warning and "protection goes on" in warning


def test_no_server_on_the_bus_is_one_warning(
    no_secret_service: SessionBus, notifier: Notifier, home: Home,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    warning = the_one_warning(notifier, home, caplog)
    assert "org.freedesktop.Notifications" in warning


def test_a_broken_server_is_one_warning(
    broken_notification_server: RecordingServer, notifier: Notifier, home: Home,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    warning = the_one_warning(notifier, home, caplog)  # desktop-notifier's traceback: kept out
    assert "did not take a notification" in warning and "broken on purpose" in warning


def test_a_server_that_comes_back_is_used_again(
    no_secret_service: SessionBus, notifier: Notifier, home: Home,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(base, "RETRY", 0.3)
    caplog.set_level(logging.INFO, "credguard.notify.desktop")
    notifier.start()
    wait_for(lambda: warnings_from(caplog), timeout=10)
    from helpers.notification_server import RecordingServer

    server = RecordingServer(no_secret_service.address).start()
    try:
        time.sleep(0.4)
        notifier.event("protected", PUBLISH_PROFILE, str(home.downloads / "late.xml"), FP, {})
        (call,) = server.wait_calls(1)
        assert "late.xml" in call.body
        assert "desktop notifications work again" in caplog.text
    finally:
        notifier.close()
        server.stop()


def test_server_available_says_whether_one_answers(
    notification_server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert desktop.server_available() == (True, "a notification server answers (with buttons)")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    ok, detail = desktop.server_available()
    assert not ok and detail.startswith("no usable notification server")


# -- the daemon ---------------------------------------------------------------------------------


def download(home: Home, name: str, data: bytes) -> Path:
    """Chrome-style: write NAME.crdownload, then rename it to NAME."""
    partial = home.downloads / f"{name}.crdownload"
    partial.write_bytes(data)
    return partial.rename(home.downloads / name)


def events(home: Home, name: str) -> list[dict[str, object]]:
    return [e for e in audit_events(home.root / ".local" / "state") if e["event"] == name]


@pytest.fixture
def daemon_env(secret_service: SecretService) -> dict[str, str]:
    return dict(os.environ)


@pytest.fixture
def alerting_daemon(
    notification_server: RecordingServer, daemon_env: dict[str, str], home: Home, tmp_path: Path
) -> Iterator[DaemonProcess]:
    """A daemon whose policy only alerts about publish profiles, even in Downloads."""
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text(f'[policy]\n{PUBLISH_PROFILE} = "alert"\n')
    daemon = DaemonProcess(daemon_env, tmp_path / "daemon.log").start()
    try:
        yield daemon
    finally:
        daemon.stop()


def test_daemon_notifies_a_protected_download(
    notification_server: RecordingServer, daemon_env: dict[str, str], home: Home, tmp_path: Path
) -> None:
    payload = payloads.publish_profile()
    daemon = DaemonProcess(daemon_env, tmp_path / "daemon.log").start()
    try:
        path = download(home, "contoso.PublishSettings", payload.data)
        (call,) = notification_server.wait_calls(1)
        assert not path.exists()
        assert call.summary == "Credential file protected"
        assert "contoso.PublishSettings (in ~/Downloads)" in call.body
        assert "no desktop notifications" not in daemon.stderr()
    finally:
        assert daemon.stop() == 0
    seen = repr(notification_server.calls) + daemon.stderr()
    assert not [s for s in payload.secrets if s in seen]


def test_protect_now_protects_through_the_daemon(
    alerting_daemon: DaemonProcess, notification_server: RecordingServer, home: Home
) -> None:
    data = payloads.publish_profile().data
    path = download(home, "keep.PublishSettings", data)
    (call,) = notification_server.wait_calls(1)
    assert call.buttons == {"protect": "Protect now", "ignore": "Ignore"} and path.exists()
    notification_server.press(call.id, "protect")
    wait_for(lambda: not path.exists(), timeout=15)
    assert vault_shas(alerting_daemon.env) == [sha(data)]
    assert notification_server.wait_calls(2)[1].summary == "Credential file protected"


def test_ignore_allowlists_through_the_daemon(
    alerting_daemon: DaemonProcess, notification_server: RecordingServer, home: Home
) -> None:
    path = download(home, "mine.PublishSettings", payloads.publish_profile().data)
    (call,) = notification_server.wait_calls(1)
    fingerprint = wait_for(lambda: events(home, "alerted"))[0]["fingerprint"]
    notification_server.press(call.id, "ignore")
    wait_for(lambda: events(home, "reloaded"), timeout=15)
    text = home.config_file.read_text()
    assert f'fingerprint = "{fingerprint}"' in text and "ignored from a notification" in text
    assert run_subprocess("scan", "--json", str(path), "--local").code == 0  # now allowlisted
    assert path.exists()


def test_a_locked_keyring_pauses_and_resumes_with_notices(
    locked_secret_service: SecretService, home: Home, tmp_path: Path
) -> None:
    from helpers.notification_server import RecordingServer

    server = RecordingServer(locked_secret_service.address).start()
    daemon = DaemonProcess(dict(os.environ), tmp_path / "daemon.log").start()
    try:
        assert server.wait_calls(1)[0].summary == "Protection paused until the keyring is unlocked"
        path = download(home, "wait.PublishSettings", payloads.publish_profile().data)
        alert = server.wait_calls(2)[1]
        assert alert.summary == "Credential file found" and alert.buttons == {"ignore": "Ignore"}
        locked_secret_service.unlock()
        wait_for(lambda: not path.exists(), timeout=30, every=0.2)  # backoff retry: 5 s first
        summaries = [c.summary for c in server.wait_calls(4)]
        assert summaries[2:] == ["Protection resumed", "Credential file protected"]
    finally:
        daemon.stop()
        server.stop()


def test_the_setting_and_its_sources(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.load()["notifications.enabled"] is True
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text("[notifications]\nenabled = false\n")
    assert config.load()["notifications.enabled"] is False
    monkeypatch.setenv("CREDGUARD_NOTIFICATIONS_ENABLED", "yes")
    assert config.load()["notifications.enabled"] is True


def test_turned_off_by_a_reload(
    notification_server: RecordingServer, daemon_env: dict[str, str], home: Home, tmp_path: Path
) -> None:
    daemon = DaemonProcess(daemon_env, tmp_path / "daemon.log").start()
    try:
        home.config_file.parent.mkdir(parents=True, exist_ok=True)
        home.config_file.write_text("[notifications]\nenabled = false\n")
        assert run_subprocess("reload", env=daemon_env).code == 0
        wait_for(lambda: events(home, "reloaded"))
        path = download(home, "quiet.PublishSettings", payloads.publish_profile().data)
        wait_for(lambda: not path.exists(), timeout=15)
        time.sleep(0.5)
        assert notification_server.calls == []
    finally:
        assert daemon.stop() == 0


def test_end_to_end_with_a_real_notification_server(
    real_notification_server: RealServer, daemon_env: dict[str, str], home: Home, tmp_path: Path
) -> None:
    daemon = DaemonProcess(daemon_env, tmp_path / "daemon.log").start()
    try:
        path = download(home, "real.PublishSettings", payloads.publish_profile().data)
        wait_for(lambda: not path.exists(), timeout=15)
        wait_for(lambda: "real.PublishSettings" in real_notification_server.monitor_text())
    finally:
        assert daemon.stop() == 0
    text = real_notification_server.monitor_text()
    assert "member=Notify" in text and 'string "credguard"' in text
    assert 'string "Credential file protected"' in text
    assert "no desktop notifications" not in daemon.stderr()
