"""Log forging through file names (issue 14), against the real daemon: hostile names dropped into
Downloads as real publish profiles reach its stderr log, the audit log and the desktop
notifications only escaped, while the audit log and the vault keep the exact names.

The notification server is the recording one of ``helpers/notification_server.py`` (a fake,
said there: a real server cannot be read back without X), and dunst under Xvfb once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, wait_for
from helpers.home import Home
from helpers.hostile import FORGED_LINE, FORGING, NAMES, SHOWN, unsafe
from helpers.secret_service import SecretService

from credguard.detect.kinds import PUBLISH_PROFILE

if TYPE_CHECKING:  # imported by pytest_plugins, for its fixtures
    from helpers.notification_server import RealServer, RecordingServer

pytestmark = pytest.mark.timeout(180)
LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
                  r"[\w.]+: \S")  # fmt: skip


@pytest.fixture
def daemon(secret_service: SecretService, home: Home, tmp_path: Path) -> Iterator[DaemonProcess]:
    daemon = DaemonProcess(dict(os.environ), tmp_path / "daemon.log").start()
    try:
        yield daemon
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.stop()


def drop(home: Home, name: str) -> Path:
    """A real publish profile in Downloads under ``name`` (written, then renamed into place)."""
    partial = home.downloads / "incoming.crdownload"
    partial.write_bytes(payloads.publish_profile(app="forging").data)
    return partial.rename(home.downloads / name)


def protected_paths(home: Home) -> list[object]:
    state = home.root / ".local" / "state"
    return [e.get("path") for e in audit_events(state) if e["event"] == "protected"]


def assert_log_is_safe(log: bytes) -> str:
    """Every line of the daemon's stderr is one timestamped record of printable UTF-8."""
    text = log.decode("utf-8")  # strict: an undecodable byte would fail here
    lines = text.splitlines()
    assert lines and text.endswith("\n")
    assert [line for line in lines if not LINE.match(line) or unsafe(line)] == []
    assert not FORGED_LINE.search(text)
    return text


def test_hostile_names_reach_log_and_notifications_escaped(
    notification_server: RecordingServer, daemon: DaemonProcess, home: Home
) -> None:
    for count, name in enumerate(NAMES, 1):
        path = drop(home, name)
        (*_, call) = notification_server.wait_calls(count)
        wait_for(lambda: not os.path.lexists(path), timeout=15)  # noqa: B023 (waited here)
        assert call.summary == "Credential file protected"
        where = SHOWN[count - 1] + " (in ~/Downloads)"
        assert call.body.split("\n")[0] == where, call.body
        assert call.body.count("\n") == 4 and not unsafe(call.body, multiline=True)
    wait_for(lambda: len(protected_paths(home)) == len(NAMES), timeout=15)
    assert daemon.stop() == 0
    text = assert_log_is_safe(daemon.log_path.read_bytes())
    for shown in SHOWN:
        line = f"INFO credguard.daemon: protected {PUBLISH_PROFILE} {home.downloads}/{shown}\n"
        assert line in text
    assert sorted(map(str, protected_paths(home))) == sorted(
        str(home.downloads / name) for name in NAMES
    ), "the audit log keeps the exact names"


def test_protect_now_acts_on_the_exact_name_it_showed_escaped(
    notification_server: RecordingServer, secret_service: SecretService, home: Home,
    tmp_path: Path,
) -> None:
    """An alert shows the name escaped; its "Protect now" still protects that very file."""
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text(f'[policy]\n{PUBLISH_PROFILE} = "alert"\n')
    daemon = DaemonProcess(dict(os.environ), tmp_path / "daemon.log").start()
    try:
        path = drop(home, FORGING)
        (call,) = notification_server.wait_calls(1)
        assert call.body.startswith(SHOWN[0] + " (in ~/Downloads)\n") and path.exists()
        assert not unsafe(call.body, multiline=True)
        notification_server.press(call.id, "protect")
        wait_for(lambda: not os.path.lexists(path), timeout=15)
        wait_for(lambda: protected_paths(home) == [str(path)], timeout=15)
    finally:
        assert daemon.stop() == 0
    text = assert_log_is_safe(daemon.log_path.read_bytes())
    assert f"button 'protect' pressed for {home.downloads}/{SHOWN[0]}\n" in text


def test_a_real_notification_server_gets_the_escaped_name(
    real_notification_server: RealServer, daemon: DaemonProcess, home: Home
) -> None:
    path = drop(home, FORGING)
    wait_for(lambda: not os.path.lexists(path), timeout=15)
    wait_for(lambda: "FORGED" in real_notification_server.monitor_text())
    assert daemon.stop() == 0
    sent = real_notification_server.monitor_text()
    assert SHOWN[0] in sent and "\x1b" not in sent and "\x07" not in sent
    assert_log_is_safe(daemon.log_path.read_bytes())
