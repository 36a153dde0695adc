"""The real daemon acts only on files it can walk to from a root: not on another file system
mounted inside one (as the scan skips it), while folders moved in from outside stay covered."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, running_daemon, wait_for
from helpers.home import Home, run_subprocess, sha, vault_shas
from helpers.secret_service import SecretService

pytestmark = pytest.mark.timeout(180)


def state_home(home: Home) -> Path:
    return home.root / ".local" / "state"


@pytest.fixture
def ram_in_downloads(home: Home) -> Iterator[Path]:
    """A real tmpfs mounted at ~/Downloads/ram, unmounted afterwards."""
    point = home.downloads / "ram"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "credguard-test",
                    str(point)], check=True, capture_output=True)
    try:
        yield point
    finally:
        if subprocess.run(["umount", str(point)], check=False).returncode:
            subprocess.run(["umount", "--lazy", str(point)], check=False)


def test_a_file_on_a_tmpfs_inside_downloads_is_reported_not_protected(
        secret_service: SecretService, home: Home, ram_in_downloads: Path,
        tmp_path: Path) -> None:
    daemon = DaemonProcess(dict(os.environ), tmp_path / "d.log").start()  # watches the mount
    try:
        data = payloads.publish_profile().data
        there = ram_in_downloads / "contoso.PublishSettings"
        there.write_bytes(data)
        here = home.downloads / "fabrikam.PublishSettings"  # the root's own file system
        here.write_bytes(payloads.publish_profile().data)
        wait_for(lambda: not here.exists(), timeout=15)  # written after the other one
        assert there.read_bytes() == data

        def reports() -> list[dict[str, object]]:
            return [e for e in audit_events(state_home(home))
                    if e["event"] == "failed" and e.get("path") == str(there)]

        wait_for(reports, timeout=15)
        there.write_bytes(data)  # examined again: reported once per path and reason
        scan = run_subprocess("scan", "--json", env=daemon.env)
        time.sleep(2)
        assert there.read_bytes() == data
        assert sha(data) not in vault_shas(daemon.env)
        (report,) = reports()
        assert report["reason"] == "other-filesystem" and report["root"] == str(home.downloads)
        skipped = json.loads(scan.out)["skipped"]  # the scan's rule is the same
        assert {"path": str(ram_in_downloads), "reason": "other-filesystem"} in [
            {k: s[k] for k in ("path", "reason")} for s in skipped]
    finally:
        daemon.stop()


@pytest.fixture
def daemon(secret_service: SecretService, home: Home, tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


def test_files_made_later_in_a_folder_moved_in_are_protected(daemon: DaemonProcess,
                                                             home: Home) -> None:
    """trust-notes §4: watchdog 6 gives a folder moved in from outside no inotify watch; the
    daemon must still protect what is created in it (and in a new folder inside it) later."""
    outside = home.root / "proj"
    (outside / "old").mkdir(parents=True)
    (outside / "old" / "readme.txt").write_text("a project\n")
    moved = home.downloads / "proj"
    outside.rename(moved)
    time.sleep(1.5)
    datas = [payloads.publish_profile().data for _ in range(3)]
    files = [moved / "a.PublishSettings", moved / "old" / "b.PublishSettings",
             moved / "sub" / "c.PublishSettings"]
    (moved / "sub").mkdir()
    for path, data in zip(files, datas, strict=True):
        path.write_bytes(data)
    wait_for(lambda: not any(p.exists() for p in files), timeout=15)
    assert sorted(sha(d) for d in datas) == vault_shas(daemon.env)


def test_a_folder_the_user_asks_the_daemon_to_scan_is_walked_as_a_root(
        daemon: DaemonProcess, home: Home, tmp_path: Path) -> None:
    """Outside every watched root, ``credguard scan PATH`` makes PATH the root the daemon walks
    from when it acts on what the scan found (else it would be refused as outside-root)."""
    named = tmp_path / "elsewhere"
    (named / "deploy").mkdir(parents=True)
    path = named / "deploy" / "prod.PublishSettings"
    path.write_bytes(payloads.publish_profile().data)
    assert run_subprocess("scan", str(named), env=daemon.env).code == 1

    def detected() -> list[dict[str, object]]:
        return [e for e in audit_events(state_home(home)) if e["event"] == "detected"]

    (seen,) = wait_for(detected, timeout=15)
    assert seen["path"] == str(path) and seen["action"] == "alert"  # the policy out here
    assert path.exists()
    assert not [e for e in audit_events(state_home(home)) if e["event"] == "failed"]
