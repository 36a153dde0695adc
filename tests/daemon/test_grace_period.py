"""``protect.delay`` (issue 18, item 4): the daemon's grace period before it vaults and deletes a
file the policy protects. The user is told at once ("vaulted and deleted in …", with "Protect
now" and "Keep"); the file is protected when the period ends, unless it was kept or changed; a
file still open for writing keeps waiting (one open for reading does not); and a daemon killed
during the period finds the deadline again (the file's ctime), so what is overdue is protected
by the start-up scan. Against the real daemon process, a real gnome-keyring and the recording
notification server (the one fake, see ``helpers/notification_server.py``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, running_daemon, wait_for
from helpers.home import Home, sha, vault_shas
from helpers.secret_service import SecretService

from credguard import config, policy
from credguard.daemon.workqueue import WorkQueue
from credguard.errors import ConfigError

if TYPE_CHECKING:  # imported by pytest_plugins, for its fixtures
    from helpers.notification_server import NotifyCall, RecordingServer

pytestmark = pytest.mark.timeout(120)
SHORT = 3  # seconds of the Desktop's grace period in these tests
BUTTONS = {"protect": "Protect now", "keep": "Keep"}


def events(home: Home, *names: str) -> list[dict[str, object]]:
    return [e for e in audit_events(home.root / ".local" / "state") if e["event"] in names]


def place(folder: Path, name: str, data: bytes) -> Path:
    """A finished download: written beside, then renamed into place."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{name}.part"
    partial.write_bytes(data)
    return partial.rename(folder / name)


def alert_for(server: RecordingServer, path: Path) -> NotifyCall:
    def found() -> NotifyCall | None:
        return next((c for c in server.calls if c.body.startswith(f"{path.name} (in ")), None)

    call = wait_for(found, timeout=15)
    assert isinstance(call, type(server.calls[0]))
    return call


def configure(home: Home, delay: str) -> None:
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text(f"[protect]\ndelay = {delay}\n")


@pytest.fixture
def daemon(secret_service: SecretService, notification_server: RecordingServer, home: Home,
           tmp_path: Path) -> Iterator[DaemonProcess]:
    """Downloads wait a minute, the Desktop ``SHORT`` seconds."""
    configure(home, f'{{ downloads = "1m", desktop = "{SHORT}s" }}')
    yield from running_daemon(dict(os.environ), tmp_path)


def test_a_file_waits_out_its_grace_period_then_is_protected(
        daemon: DaemonProcess, notification_server: RecordingServer, home: Home) -> None:
    data = payloads.publish_profile("grace").data
    path = place(home.desktop, "grace.PublishSettings", data)
    placed = time.time()
    call = alert_for(notification_server, path)
    assert call.summary.startswith(f"Credential file: vaulted and deleted in {SHORT} s (at ")
    assert call.buttons == BUTTONS and call.urgency == 2
    assert "when its grace period ends (protect.delay)" in call.body
    status = daemon.status() or {}
    assert [(r["path"], r["reason"]) for r in status["at_risk"]] == [(str(path), "delay")]
    (alerted,) = events(home, "alerted")
    assert (alerted["reason"], alerted["duration"]) == ("delay", SHORT)
    assert path.exists() and not events(home, "protected")
    wait_for(lambda: not path.exists(), timeout=15)
    assert time.time() - placed >= SHORT - 0.5  # not before its time
    assert vault_shas(daemon.env) == [sha(data)]
    wait_for(lambda: [c for c in notification_server.calls
                      if c.summary == "Credential file protected"])
    assert (daemon.status() or {})["at_risk"] == []


def test_protect_now_and_keep_during_the_grace_period(
        daemon: DaemonProcess, notification_server: RecordingServer, home: Home) -> None:
    now_data = payloads.publish_profile("now").data
    kept_data = payloads.publish_profile("kept").data
    now = place(home.downloads, "now.PublishSettings", now_data)
    first = alert_for(notification_server, now)
    time.sleep(1.5)  # a quiet spell: the next alert is shown alone, with its buttons
    kept = place(home.downloads, "kept.PublishSettings", kept_data)
    second = alert_for(notification_server, kept)
    assert first.summary.startswith("Credential file: vaulted and deleted in 1 min (at ")
    pressed = time.monotonic()
    notification_server.press(first.id, "protect")
    wait_for(lambda: not now.exists(), timeout=15)
    assert time.monotonic() - pressed < 30  # at once, not after the minute
    notification_server.press(second.id, "keep")
    wait_for(lambda: config.load().ignored(f"sha256:{sha(kept_data)}"), timeout=15)
    entry = config.load().ignored(f"sha256:{sha(kept_data)}")
    assert entry is not None and entry.reason == "kept from a notification"
    wait_for(lambda: [e for e in events(home, "ignored") if e["path"] == str(kept)], timeout=15)
    assert kept.read_bytes() == kept_data and vault_shas(daemon.env) == [sha(now_data)]


def test_a_file_open_for_writing_keeps_waiting_one_read_does_not(
        daemon: DaemonProcess, notification_server: RecordingServer, home: Home) -> None:
    written = place(home.desktop, "written.PublishSettings", payloads.publish_profile("w").data)
    read = place(home.desktop, "read.PublishSettings", payloads.publish_profile("r").data)
    writer = os.open(written, os.O_WRONLY | os.O_APPEND)
    reader = os.open(read, os.O_RDONLY)  # an import dialog reading it
    try:
        alert_for(notification_server, read)
        wait_for(lambda: not read.exists(), timeout=15)
        time.sleep(2)  # well past the deadline the two share
        assert written.exists()  # still being written: not even examined yet
    finally:
        os.close(writer)
        os.close(reader)
    wait_for(lambda: not written.exists(), timeout=15)


def test_a_restarted_daemon_protects_what_is_overdue_at_once(
        secret_service: SecretService, notification_server: RecordingServer, home: Home,
        tmp_path: Path) -> None:
    """The deadline is the file's: killed during the period, the daemon started after it
    protects the file in its start-up scan, without a new grace period."""
    delay = 6
    configure(home, f'"{delay}s"')
    daemon = DaemonProcess(dict(os.environ), tmp_path / "daemon.log").start()
    try:
        path = place(home.desktop, "restart.PublishSettings",
                     payloads.publish_profile("restart").data)
        placed = path.stat().st_ctime
        alert_for(notification_server, path)
        daemon.kill()  # SIGKILL
        time.sleep(max(0.0, placed + delay + 0.5 - time.time()))
        assert path.exists()
        daemon.start()
        started = time.monotonic()
        wait_for(lambda: not path.exists(), timeout=15)
        assert time.monotonic() - started < delay - 1  # not a new grace period
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.stop()


# -- the setting, and the queue ---------------------------------------------------------------


@pytest.mark.parametrize(("raw", "downloads", "home_seconds"), [
    ('"2m"', 120, 120), ("90", 90, 90), ('"1h"', 3600, 3600), ("0", 0, 0),
    ('{ downloads = "30s" }', 30, 0), ('{ default = "1m", home = 0 }', 60, 0),
])
def test_the_setting_by_location(home: Home, raw: str, downloads: int,
                                 home_seconds: int) -> None:
    configure(home, raw)
    values = config.load().values
    assert policy.delay_for(values, home.downloads / "a.xml") == downloads
    assert policy.delay_for(values, home.root / "a.xml") == home_seconds


def test_no_delay_by_default(home: Home) -> None:
    assert policy.delay_for(config.load().values, home.downloads / "a.xml") == 0


@pytest.mark.parametrize("raw", ['"-1s"', '"2d"', "3601", '"soon"', "true", "1.5",
                                 '{ elsewhere = "1m" }', '{ downloads = "2h" }'])
def test_bad_delays_are_refused_with_the_line(home: Home, raw: str) -> None:
    configure(home, raw)
    with pytest.raises(ConfigError, match=r"config\.toml:2.*protect\.delay"):
        config.load()


def test_the_environment_sets_it(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDGUARD_PROTECT_DELAY", "45s")
    assert policy.delay_for(config.load().values, home.desktop / "a.xml") == 45


def test_a_managed_policy_caps_the_delay(home: Home) -> None:
    """A shorter grace period protects more: the user may shorten the policy's, not lengthen
    it (location by location)."""
    home.policy_file.parent.mkdir(parents=True, exist_ok=True)
    home.policy_file.write_text('[protect]\ndelay = "1m"\n')
    configure(home, '{ downloads = "30s" }')
    assert policy.delay_for(config.load().values, home.downloads / "a.xml") == 30
    configure(home, '{ downloads = "30s", home = "5m" }')
    cfg = config.load()
    assert policy.delay_for(cfg.values, home.downloads / "a.xml") == 60  # the policy's stands
    assert [o.key for o in cfg.overridden] == ["protect.delay"]


def test_a_path_waiting_keeps_its_later_time_unless_asked_sooner() -> None:
    queue = WorkQueue()
    queue.put("/a", "delay", 60)
    queue.put("/a", "created")  # an event meanwhile does not cut the grace period short
    assert queue.get(timeout=0.2) is None
    queue.put("/a", "forced", sooner=True)  # "Protect now"
    item = queue.get(timeout=1)
    assert item is not None and item.reason == "forced"
    queue.put("/b", "created")
    queue.put("/b", "delay", 60, sooner=True)  # sooner never postpones
    item = queue.get(timeout=1)
    assert item is not None and item.path == "/b"
