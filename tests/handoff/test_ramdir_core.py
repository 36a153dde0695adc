"""The RAM directory's own rules, in this process (mutation testing found them reached only
through ``credguard exec`` child processes, docs/mutation.md): where the base is, when it is
refused, which leftovers a sweep removes and which it must keep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from credguard.errors import StateError
from credguard.fs import lock
from credguard.handoff import ramdir


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_base_is_credguard_in_a_tmpfs_runtime_dir_made_private(tmpfs_runtime: Path) -> None:
    assert ramdir.ram_base(create=False) is None
    assert not ramdir.has_leftovers("")
    base = ramdir.ram_base()
    assert base == tmpfs_runtime / "credguard"
    assert base.stat().st_mode & 0o777 == 0o700
    assert ramdir.ram_base(create=False) == base


def test_a_base_open_to_others_is_refused_and_means_no_leftovers(tmpfs_runtime: Path) -> None:
    base = tmpfs_runtime / "credguard"
    base.mkdir(mode=0o755)
    base.chmod(0o755)
    (base / "az-1").mkdir()
    with pytest.raises(StateError) as info:
        ramdir.ram_base()
    assert info.value.message == f"refusing to use {base}: it is a link, not yours, or not 0700"
    assert ramdir.has_leftovers("az-") is False  # every command asks: not an error there
    assert sorted(p.name for p in base.iterdir()) == ["az-1"]


def test_a_linked_base_is_refused(tmpfs_runtime: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmpfs_runtime / "credguard").symlink_to(elsewhere)
    with pytest.raises(StateError, match="it is a link, not yours, or not 0700"):
        ramdir.ram_base()


def test_has_leftovers_looks_for_the_prefix_only(tmpfs_runtime: Path) -> None:
    base = ramdir.ram_base()
    assert base is not None
    assert ramdir.has_leftovers("az-") is False
    (base / "az-123").mkdir()
    assert ramdir.has_leftovers("az-") is True
    assert ramdir.has_leftovers("ps-") is False


def test_alive_tells_running_from_exited_processes() -> None:
    assert ramdir.alive(os.getpid()) is True
    assert ramdir.alive(dead_pid()) is False


def test_a_sweep_removes_only_what_nobody_uses(tmpfs_runtime: Path) -> None:
    """Removed: a dead process's dir whose lock nobody holds. Kept: a live process's dir, a
    dead process's dir whose lock a child still holds, a link, a file, a name without a pid."""
    base = ramdir.ram_base()
    assert base is not None
    gone = dead_pid()
    stale = base / f"{gone}-aaaa"
    stale.mkdir(mode=0o700)
    (stale / ramdir.LOCK_NAME).write_text("")
    (stale / "cred.PublishSettings").write_bytes(b"secret-ish")
    mine = base / f"{os.getpid()}-bbbb"
    mine.mkdir(mode=0o700)
    (mine / ramdir.LOCK_NAME).write_text("")
    held = base / f"{gone}-cccc"
    held.mkdir(mode=0o700)
    (held / ramdir.LOCK_NAME).write_text("")
    fd = lock.try_exclusive(held / ramdir.LOCK_NAME)
    assert fd is not None
    target = base.parent / "target"
    target.mkdir(mode=0o700)
    (base / f"{gone}-dddd").symlink_to(target)
    (base / f"{gone}-eeee").write_text("")
    (base / "notapid-ffff").mkdir()
    odd = base / f"{gone}-gggg"  # its lock is not a file credguard made: left alone
    odd.mkdir(mode=0o700)
    (odd / ramdir.LOCK_NAME).mkdir()
    try:
        assert ramdir.sweep(base) == 1
    finally:
        os.close(fd)
    assert sorted(p.name for p in base.iterdir()) == sorted(
        [mine.name, held.name, f"{gone}-dddd", f"{gone}-eeee", "notapid-ffff", odd.name])
    assert target.is_dir()
    assert ramdir.sweep(base) == 1  # the lock is free now: that dir's owner is gone
    assert not held.exists()


def test_a_private_ram_dir_is_made_locked_and_removed(tmpfs_runtime: Path) -> None:
    with ramdir.private_ram_dir() as ram:
        assert ram.path.parent == tmpfs_runtime / "credguard"
        assert ram.path.name.startswith(f"{os.getpid()}-")
        assert ram.path.stat().st_mode & 0o777 == 0o700
        assert lock.try_exclusive(ram.path / ramdir.LOCK_NAME) is None  # held
        written = ramdir.write_private(ram.path, "a.PublishSettings", b"x")
        assert written.stat().st_mode & 0o777 == 0o600
        with pytest.raises(FileExistsError):
            ramdir.write_private(ram.path, "a.PublishSettings", b"y")
    assert not ram.path.exists()


@pytest.mark.parametrize("nested", [False, True])
def test_removing_a_ram_dir_follows_no_link_and_takes_what_the_child_left(
        tmpfs_runtime: Path, tmp_path: Path, nested: bool) -> None:
    """Flat files go one by one (no shutil); a directory the child made, through
    shutil.rmtree; links inside, even to a directory, are removed, never followed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    with ramdir.private_ram_dir() as ram:
        ramdir.write_private(ram.path, "a.PublishSettings", b"x")
        (ram.path / "to-dir").symlink_to(outside)
        (ram.path / "to-file").symlink_to(outside / "keep")
        os.mkfifo(ram.path / "fifo")
        if nested:
            (ram.path / "made" / "deeper").mkdir(parents=True)
            (ram.path / "made" / "link").symlink_to(outside)
            (ram.path / "made" / "deeper" / "f").write_text("f")
    assert not ram.path.exists()
    assert (outside / "keep").read_text() == "keep"


def test_the_daemons_timer_removes_due_open_copies_and_sleeps_until_the_next(
        tmpfs_runtime: Path) -> None:
    import threading

    from credguard.daemon.expiry import LONGEST_SLEEP, OpenCopies
    from credguard.handoff import opened

    base = ramdir.ram_base()
    assert base is not None
    due = opened.place(base, "a" * 32, "a.PublishSettings", b"x", 0)
    later = opened.place(base, "b" * 32, "b.PublishSettings", b"y", 30)
    removed: list[tuple[str, str]] = []
    timer = OpenCopies(lambda path, item: removed.append((path, item)), threading.Event())
    sleep = timer.sweep()
    assert removed == [(str(due.directory), "a" * 32)]
    assert not due.directory.exists() and later.directory.is_dir()
    assert 25 < sleep <= 30  # the next copy is due in about 30 s
    opened.close(later)
    assert timer.sweep() == LONGEST_SLEEP and len(removed) == 1


@pytest.mark.parametrize(("platform", "system"), [("windows", "Windows"), ("macos", "macOS")])
def test_no_ram_names_the_system_and_what_still_works(monkeypatch: pytest.MonkeyPatch,
                                                      platform: str, system: str) -> None:
    monkeypatch.setenv("CREDGUARD_PLATFORM", platform)
    assert ramdir.no_ram() == (
        f"{system} has no RAM-only file system for credential files, and credguard refuses to "
        "write a credential to disk (`credguard exec --no-file` hands over the variables "
        "alone)")
    monkeypatch.setenv("CREDGUARD_PLATFORM", "linux")
    assert ramdir.no_ram() == ramdir.NO_RAM
