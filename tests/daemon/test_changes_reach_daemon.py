"""Changes reach the real daemon without a manual reload: ``credguard ignore`` waits until the
running daemon ignores the file, a hand edit of ``config.toml`` takes effect within seconds, and
a configuration the daemon refuses is a config error (exit 3, file:line) that the audit log and
``status`` show until the file is fixed. ``pause``/``resume`` speak to people."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, running_daemon, wait_for
from helpers.home import Home, run_subprocess, sha, vault_shas
from helpers.secret_service import SecretService

from credguard.errors import ExitCode

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def daemon(secret_service: SecretService, home: Home, tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


def events(home: Home, name: str) -> list[dict[str, Any]]:
    return [e for e in audit_events(home.root / ".local" / "state") if e["event"] == name]


def download(home: Home, name: str, data: bytes) -> Path:
    partial = home.downloads / f"{name}.crdownload"
    partial.write_bytes(data)
    return partial.rename(home.downloads / name)


def fingerprint(data: bytes, tmp_path: Path) -> str:
    """The fingerprint ``scan`` shows, of a copy outside every watched root."""
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "a.PublishSettings").write_bytes(data)
    run = run_subprocess("scan", "--local", "--json", str(outside))
    value: str = json.loads(run.out)["findings"][0]["fingerprint"]
    return value


def test_ignore_reaches_the_running_daemon_before_it_returns(
        daemon: DaemonProcess, home: Home, tmp_path: Path) -> None:
    mine, other = payloads.publish_profile(app="mine").data, payloads.publish_profile().data
    fp = fingerprint(mine, tmp_path)
    run = run_subprocess("ignore", fp, "--reason", "a lab profile", env=daemon.env)
    assert run.code == 0, run.err
    assert "the running daemon ignores it from now on" in run.out
    assert "request" in [e.get("reason") for e in events(home, "reloaded")]
    kept = download(home, "mine.PublishSettings", mine)  # no reload, no waiting
    wait_for(lambda: events(home, "ignored"), timeout=10)
    gone = download(home, "other.PublishSettings", other)  # the daemon protects the rest
    wait_for(lambda: not gone.exists(), timeout=10)
    assert kept.exists() and vault_shas(daemon.env) == [sha(other)]
    again = run_subprocess("ignore", fp, env=daemon.env)  # already there: still told
    assert again.code == 0 and "already in" in again.out and "daemon ignores it" in again.out


def test_ignore_without_a_daemon_says_so(secret_service: SecretService, home: Home,
                                         tmp_path: Path) -> None:
    fp = fingerprint(payloads.publish_profile().data, tmp_path)
    run = run_subprocess("ignore", fp)
    assert run.code == 0, run.err
    assert "not running: it reads the allowlist when it starts" in run.out


def test_a_hand_edit_takes_effect_within_seconds(daemon: DaemonProcess, home: Home) -> None:
    home.config_file.parent.mkdir(parents=True, exist_ok=True)  # not there when it started
    home.config_file.write_text('[policy]\nazure-publish-profile = "alert"\n')
    wait_for(lambda: events(home, "reloaded"), timeout=5)
    assert events(home, "reloaded")[0]["reason"] == "file-change"
    path = download(home, "a.PublishSettings", payloads.publish_profile().data)
    wait_for(lambda: events(home, "alerted"), timeout=10)
    assert path.exists()


def test_a_refused_config_is_an_error_everywhere_until_fixed(
        daemon: DaemonProcess, home: Home) -> None:
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text('version = 1\n[policy]\nazure-publish-profil = "alert"\n')
    where = f"{home.config_file}:3"
    run = run_subprocess("reload", env=daemon.env)
    assert run.code == ExitCode.CONFIG and run.out == ""
    assert "reload refused" in run.err and where in run.err
    refusals = events(home, "reload-refused")
    assert refusals and where in refusals[-1]["detail"] and "reload refused" in daemon.stderr()
    status = daemon.status()
    assert status is not None and where in status["config_error"]["error"]
    shown = run_subprocess("status", env=daemon.env)
    assert "config:    refused, the previous configuration is in force" in shown.out
    assert where in shown.out
    path = download(home, "a.PublishSettings", payloads.publish_profile().data)
    wait_for(lambda: not path.exists(), timeout=10)  # the old configuration (protect) holds
    assert not events(home, "reloaded")
    home.config_file.write_text('version = 1\n[policy]\nazure-publish-profile = "alert"\n')
    wait_for(lambda: (daemon.status() or {}).get("config_error", 1) is None, timeout=5)
    ok = run_subprocess("reload", "--json", env=daemon.env)
    assert ok.code == 0 and json.loads(ok.out)["reloaded"] is True


def test_pause_and_resume_say_what_happened(daemon: DaemonProcess) -> None:
    paused = run_subprocess("pause", "90m", env=daemon.env)
    assert paused.code == 0
    assert re.fullmatch(r"protection paused until (\d{4}-\d\d-\d\d )?\d\d:\d\d \(.*\)\n",
                        paused.out), paused.out
    resumed = run_subprocess("resume", env=daemon.env)
    assert (resumed.code, resumed.out) == (0, "protection resumed\n")
    again = run_subprocess("resume", env=daemon.env)
    assert again.out == "protection is on (it was not paused)\n"
    forever = run_subprocess("pause", "--json", env=daemon.env)
    assert json.loads(forever.out) == {"version": 1, "mode": "paused", "seconds": None,
                                       "until": None}
    assert run_subprocess("resume", "--json", env=daemon.env).out.startswith("{")
