"""The real daemon meets a bad configuration on reload: a file nested 5,000 deep, a FIFO, a link
to ``/dev/zero``. Each reload is refused, the daemon keeps running, and the configuration it
started with stays in force."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, running_daemon, wait_for
from helpers.home import Home
from helpers.secret_service import SecretService

pytestmark = pytest.mark.timeout(180)
DEEP = 5000


@pytest.fixture
def alerting_daemon(secret_service: SecretService, home: Home,
                    tmp_path: Path) -> Iterator[DaemonProcess]:
    """A daemon started with a config that only alerts on publish profiles (default: protect),
    so which configuration is in force shows in what it does with a download."""
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text('[policy]\nazure-publish-profile = "alert"\n')
    yield from running_daemon(dict(os.environ), tmp_path)


def _replace(path: Path, make: str) -> None:
    path.unlink()
    if make == "deep":
        path.write_text("[scan]\nexclude = " + "[" * DEEP + "]" * DEEP + "\n")
    elif make == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")


def test_reload_with_a_bad_config_keeps_the_daemon_and_its_config(
        alerting_daemon: DaemonProcess, home: Home) -> None:
    daemon = alerting_daemon
    assert daemon.proc is not None
    state = home.root / ".local" / "state"
    for refusals, make in enumerate(("deep", "fifo", "dev-zero"), 1):
        _replace(home.config_file, make)
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda n=refusals: (daemon.stderr().count("reload refused") >= n  # type: ignore[misc]
                                     or daemon.proc.poll() is not None))
        assert daemon.proc.poll() is None, f"the daemon died:\n{daemon.stderr()}"
        assert daemon.status() is not None, "the daemon still answers"
    log = daemon.stderr()
    assert "nested more than 16 levels deep" in log and "not a regular file" in log
    assert "RecursionError" not in log and "Traceback" not in log
    assert not any(e["event"] == "reloaded" for e in audit_events(state))
    path = home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)
    wait_for(lambda: any(e["event"] == "alerted" for e in audit_events(state)))
    assert path.exists(), "the configuration it started with (alert) is still in force"
    assert daemon.stop() == 0
