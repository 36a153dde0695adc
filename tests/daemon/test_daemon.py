"""The real daemon process against real directories, real inotify and the real Secret Service.

Each test starts ``python -m credguard daemon`` with the test's private HOME and keyring bus,
drops files the way browsers and tools do, and checks the vault, the disk and the audit log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, running_daemon, wait_for
from helpers.home import Home, run_subprocess, sha, vault_shas
from helpers.secret_service import SecretService, SessionBus

pytestmark = pytest.mark.timeout(180)


def state_home(home: Home) -> Path:
    return home.root / ".local" / "state"


@pytest.fixture
def daemon(secret_service: SecretService, home: Home, tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


def download(home: Home, name: str, data: bytes) -> Path:
    """Chrome-style: write NAME.crdownload, then rename it to NAME."""
    partial = home.downloads / f"{name}.crdownload"
    partial.write_bytes(data)
    final = home.downloads / name
    partial.rename(final)
    return final


def test_protects_a_download_and_reports_status(daemon: DaemonProcess, home: Home) -> None:
    data = payloads.publish_profile().data
    path = download(home, "contoso.PublishSettings", data)
    wait_for(lambda: not path.exists(), timeout=10)
    assert vault_shas(daemon.env) == [sha(data)]
    status = daemon.status()
    assert status is not None
    assert status["running"] is True and status["mode"] == "protecting"
    assert status["protected_count"] == 1 and status["pid"] == daemon.proc.pid  # type: ignore[union-attr]
    assert {"pid", "since", "keystore", "roots", "queue", "last_scan"} <= set(status)
    assert any(
        r["path"] == str(home.downloads) and r["state"] == "watching" for r in status["roots"]
    )
    events = [e["event"] for e in audit_events(state_home(home))]
    assert "started" in events and "protected" in events
    for secret in payloads.publish_profile().secrets:
        assert secret not in daemon.stderr()
    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5
    assert audit_events(state_home(home))[-1]["event"] == "stopped"


def test_a_second_daemon_is_refused(daemon: DaemonProcess, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "credguard", "daemon"],
        env=daemon.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 7 and "already running" in run.stderr


def test_status_when_not_running(secret_service: SecretService) -> None:
    run = run_subprocess("status", "--json")
    doc = json.loads(run.out)
    assert run.code == 9 and doc["running"] is False and doc["sealed"] == []
    assert doc["protecting"] is False and doc["start"] in doc["protection"]


def test_live_cache_is_hardened_not_deleted(daemon: DaemonProcess, home: Home) -> None:
    cache = home.write(".azure/msal_token_cache.json", payloads.msal_cache().data, mode=0o644)
    wait_for(lambda: (cache.stat().st_mode & 0o777) == 0o600, timeout=10)
    assert cache.exists()


def test_slowly_written_credential(daemon: DaemonProcess, home: Home) -> None:
    data = payloads.publishsettings_v2(n_subs=3).data
    path = home.downloads / "slow.publishsettings"
    with path.open("wb") as fh:
        step = max(1, len(data) // 10)
        for i in range(0, len(data), step):
            fh.write(data[i : i + step])
            fh.flush()
            time.sleep(0.5)  # ~5 s in all, the file open for writing the whole time
    wait_for(lambda: not path.exists(), timeout=15)
    assert vault_shas(daemon.env) == [sha(data)]  # the whole file, never a half-written one


def test_root_deleted_and_recreated(daemon: DaemonProcess, home: Home) -> None:
    import shutil

    shutil.rmtree(home.downloads)
    time.sleep(0.5)
    home.downloads.mkdir()
    data = payloads.publish_profile().data
    path = home.downloads / "late.PublishSettings"
    wait_for(lambda: daemon.status() is not None, timeout=5)
    path.write_bytes(data)
    wait_for(lambda: not path.exists(), timeout=15)
    assert sha(data) in vault_shas(daemon.env)


def test_burst_of_ten_thousand_files(daemon: DaemonProcess, home: Home) -> None:
    burst = home.downloads / "burst"
    burst.mkdir()
    creds = {}
    for i in range(10_000):
        if i % 100 == 0:
            data = payloads.publish_profile().data
            name = f"c{i:05}.PublishSettings"
            creds[name] = sha(data)
        else:
            data, name = b"just a file\n", f"f{i:05}.txt"
        (burst / name).write_bytes(data)
    # gone under every name (a batch renames its files away before it unlinks them)
    wait_for(lambda: len(os.listdir(burst)) == 9_900, timeout=120, every=0.5)
    assert not any((burst / n).exists() for n in creds)
    assert sorted(creds.values()) == vault_shas(daemon.env)


def test_sigkill_mid_burst_then_restart(
    secret_service: SecretService, home: Home, tmp_path: Path
) -> None:
    env = dict(os.environ)
    daemon = DaemonProcess(env, tmp_path / "d1.log").start()
    datas = [payloads.publish_profile().data for _ in range(60)]
    for i, data in enumerate(datas):
        (home.downloads / f"k{i:02}.PublishSettings").write_bytes(data)
        if i == 20:
            time.sleep(0.1)
    daemon.kill()
    restarted = DaemonProcess(env, tmp_path / "d2.log").start()
    try:
        wait_for(lambda: not any(home.downloads.iterdir()), timeout=60, every=0.2)
        assert vault_shas(env) == sorted(sha(d) for d in datas)
    finally:
        restarted.stop()


def test_no_keyring_starts_alert_only_and_says_why(
    no_secret_service: SessionBus, home: Home, tmp_path: Path
) -> None:
    daemon = DaemonProcess(dict(os.environ), tmp_path / "d.log").start()
    try:
        path = download(home, "a.PublishSettings", payloads.publish_profile().data)
        status = daemon.status()
        assert status is not None and status["mode"] == "alert-only"
        assert "keyring" in status["mode_reason"].lower()
        wait_for(lambda: any(e["event"] == "alerted" for e in audit_events(state_home(home))))
        assert path.exists()  # nothing deleted without a vault
        assert "alert-only" in daemon.stderr()
    finally:
        assert daemon.stop() == 0


def test_locked_keyring_at_start_then_unlocked(
    locked_secret_service: SecretService, home: Home, tmp_path: Path
) -> None:
    daemon = DaemonProcess(dict(os.environ), tmp_path / "d.log").start()
    try:
        data = payloads.publish_profile().data
        path = download(home, "a.PublishSettings", data)
        wait_for(lambda: any(e["event"] == "alerted" for e in audit_events(state_home(home))))
        assert path.exists()
        locked_secret_service.unlock()
        wait_for(lambda: not path.exists(), timeout=30, every=0.2)  # backoff retry: 5 s first
        status = daemon.status()
        assert status is not None and status["mode"] == "protecting"
    finally:
        daemon.stop()


def test_pause_resume_and_scan_through_the_daemon(daemon: DaemonProcess, home: Home) -> None:
    assert run_subprocess("pause", "1h", env=daemon.env).code == 0
    status = daemon.status()
    assert status is not None and status["mode"] == "paused"
    path = download(home, "a.PublishSettings", payloads.publish_profile().data)
    time.sleep(1.0)
    assert path.exists()
    scan = run_subprocess("scan", "--json", env=daemon.env)
    assert scan.code == 1 and json.loads(scan.out)["findings"][0]["path"] == str(path)
    assert run_subprocess("resume", env=daemon.env).code == 0
    wait_for(lambda: not path.exists(), timeout=10)


def test_sighup_reloads_policy(daemon: DaemonProcess, home: Home) -> None:
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text('[policy]\nazure-publish-profile = "alert"\n')
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: any(e["event"] == "reloaded" for e in audit_events(state_home(home))))
    path = download(home, "a.PublishSettings", payloads.publish_profile().data)
    wait_for(lambda: any(e["event"] == "alerted" for e in audit_events(state_home(home))))
    assert path.exists()
    home.config_file.write_text("[scan]\nbogus = 1\n")  # a bad reload keeps the old config
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in daemon.stderr())
    assert daemon.status() is not None
