"""Paths longer than PATH_MAX (4096) inside a root, against the real daemon: walked one
directory descriptor at a time, such a file is protected like any other, and its audit record
names it with the middle elided."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, wait_for
from helpers.home import Home, run_subprocess, sha, vault_shas
from helpers.secret_service import SecretService

from credguard.audit.log import AuditLog

pytestmark = pytest.mark.timeout(180)
PATH_MAX = 4096
DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def state_home(home: Home) -> Path:
    return home.root / ".local" / "state"


class DeepTree:
    """Directories made one level at a time through descriptors, deeper than PATH_MAX."""

    def __init__(self, top: Path, levels: int = 20, width: int = 240) -> None:
        self.top = top
        self.names = [f"{i:02d}" + "d" * (width - 2) for i in range(levels)]
        fd = os.open(top, DIR)
        for name in self.names:
            os.mkdir(name, 0o700, dir_fd=fd)
            child = os.open(name, DIR, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(fd)
        assert len(str(self.path("x"))) > PATH_MAX

    def path(self, name: str) -> Path:
        return self.top.joinpath(*self.names, name)

    def _bottom(self) -> int:
        fd = os.open(self.top, DIR)
        for name in self.names:
            child = os.open(name, DIR, dir_fd=fd)
            os.close(fd)
            fd = child
        return fd

    def write(self, name: str, data: bytes) -> None:
        fd = self._bottom()
        try:
            out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=fd)
            with os.fdopen(out, "wb") as f:
                f.write(data)
        finally:
            os.close(fd)

    def exists(self, name: str) -> bool:
        fd = self._bottom()
        try:
            os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        finally:
            os.close(fd)
        return True


def test_a_file_deeper_than_path_max_is_protected_and_audited(
        secret_service: SecretService, home: Home, tmp_path: Path) -> None:
    tree = DeepTree(home.downloads)
    data = payloads.publishsettings_v2().data
    tree.write("deep.publishsettings", data)
    daemon = DaemonProcess(dict(os.environ), tmp_path / "d.log").start()  # the start-up scan
    try:
        wait_for(lambda: not tree.exists("deep.publishsettings"), timeout=20)
        assert sha(data) in vault_shas(daemon.env)
        (protected,) = [e for e in audit_events(state_home(home)) if e["event"] == "protected"]
        shown = protected["path"]
        assert len(shown) <= PATH_MAX and "characters elided" in shown
        assert shown.startswith(str(home.downloads)) and shown.endswith("deep.publishsettings")
        assert run_subprocess("scan", env=daemon.env).code == 0  # nothing left to find
        late = payloads.publish_profile().data
        tree.write("late.PublishSettings", late)  # no inotify watch reaches this deep
        assert run_subprocess("scan", env=daemon.env).code == 1  # scan now, through the daemon
        wait_for(lambda: not tree.exists("late.PublishSettings"), timeout=20)
        assert sha(late) in vault_shas(daemon.env)
        assert "ENAMETOOLONG" not in daemon.stderr() and "too long" not in daemon.stderr()
        assert "audit log write failed" not in daemon.stderr()
    finally:
        daemon.stop()
    assert AuditLog(state_home(home) / "credguard" / "audit").verify().ok
