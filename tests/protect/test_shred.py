"""Deletion with overwrite against real files, hostile entries and races in temp directories.

Every refusal is checked to leave the entry (and anything it points to) exactly as it was; a
regression that blocks on a FIFO fails by the short timeout instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.attacker import run_as

from credguard.errors import ExitCode
from credguard.fs import facts
from credguard.fs.read import open_dir
from credguard.protect import overwrite, remains, shred
from credguard.protect.shred import Identity, ShredRefused, shred_at

pytestmark = pytest.mark.timeout(10)
ROOT = os.geteuid() == 0
SECRET = b"-----BEGIN PRIVATE KEY-----\n" + b"A" * 8000 + b"\n-----END PRIVATE KEY-----\n"
OTHER_UID = 4242


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    """An empty directory of its own (conftest puts a ``home`` into ``tmp_path``)."""
    path = tmp_path / "t"
    path.mkdir()
    return path


class Crash(Exception):
    """Raised from the step hook to simulate a process killed at that point."""


@contextlib.contextmanager
def opened(path: Path) -> Iterator[int]:
    fd = open_dir(path)
    try:
        yield fd
    finally:
        os.close(fd)


def ident(path: Path | bytes) -> Identity:
    return Identity.of(os.stat(path, follow_symlinks=False))


def write(path: Path, data: bytes = SECRET, mode: int = 0o600) -> Identity:
    path.write_bytes(data)
    path.chmod(mode)
    return ident(path)


def shred_path(path: Path, expected: Identity | None = None, **kw: object) -> shred.ShredResult:
    with opened(path.parent) as fd:
        return shred_at(fd, path.name, expected or ident(path), **kw)  # type: ignore[arg-type]


def refused(path: Path, expected: Identity | None = None, **kw: object) -> str:
    with pytest.raises(ShredRefused) as info:
        shred_path(path, expected, **kw)
    assert info.value.exit_code == ExitCode.INPUT
    return info.value.reason


def test_deletes_a_regular_file_and_leaves_no_temporary_name(tmp: Path) -> None:
    victim = tmp / "x.publishsettings"
    write(victim)
    result = shred_path(victim)
    assert result.deleted and result.message == shred.DELETED
    assert result.fs_type == facts.fs_type(tmp) != ""
    assert result.limits and result.limits == tuple(facts.deletion_limits(tmp))
    assert os.listdir(tmp) == []


def test_content_is_overwritten_before_the_unlink(tmp: Path) -> None:
    victim = tmp / "big.pfx"
    original = bytes(range(256)) * (10 * 1024)  # 2.5 MiB: more than one chunk
    write(victim, original)
    seen: dict[str, bytes] = {}
    keep = os.open(victim, os.O_RDONLY)  # the inode, as a later undelete would find it
    try:

        def step(label: str) -> None:
            if label in ("after-overwrite", "after-rename"):
                seen[label] = os.pread(keep, len(original) + 1, 0)

        assert shred_path(victim, step=step).deleted
        for data in seen.values():
            assert len(data) == len(original) and data != original
            same = sum(a == b for a, b in zip(data, original, strict=True))
            assert same < len(original) // 100  # random: about 1 in 256 bytes match by chance
        after = os.fstat(keep)
        assert after.st_size == 0 and after.st_nlink == 0
    finally:
        os.close(keep)


def test_random_data_comes_in_bounded_chunks(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    victim = tmp / "big.pfx"
    write(victim, b"\0" * (3 * overwrite.CHUNK + 5))
    asked: list[int] = []
    real = os.urandom

    def spy(n: int) -> bytes:
        asked.append(n)
        return real(n)

    monkeypatch.setattr(os, "urandom", spy)
    assert shred_path(victim).deleted
    assert max(asked) <= 1 << 20 and sum(asked) == 3 * overwrite.CHUNK + 5


def test_failure_after_the_rename_is_reported_and_recoverable(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp / "a.json"
    write(victim)

    def broken(fd: int, length: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "ftruncate", broken)
    new = shred.temp_name()
    result = shred_path(victim, new_name=new)
    assert not result.deleted and result.limits == ()
    assert "could not be emptied" in result.message and new in result.message
    monkeypatch.undo()
    with opened(tmp) as fd:
        assert remains.finish_renamed(fd, new)
    assert os.listdir(tmp) == []


def test_steps_are_called_in_order(tmp: Path) -> None:
    victim = tmp / "a.json"
    write(victim)
    labels: list[str] = []
    shred_path(victim, step=labels.append)
    assert labels == [
        "before-overwrite",
        "mid-overwrite",
        "after-overwrite",
        "after-rename",
        "after-truncate",
        "after-unlink",
    ]


def test_empty_file_is_deleted_and_still_reports_every_step(tmp: Path) -> None:
    victim = tmp / "empty.json"
    write(victim, b"")
    labels: list[str] = []
    assert shred_path(victim, step=labels.append).deleted
    assert "mid-overwrite" in labels and not victim.exists()


def test_three_passes_write_the_size_three_times(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp / "a.pem"
    write(victim)
    written: list[int] = []
    real = os.pwrite

    def counting(fd: int, data: bytes, offset: int) -> int:
        written.append(len(data))
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", counting)
    assert shred_path(victim, passes=3).deleted
    assert sum(written) == 3 * len(SECRET)
    with pytest.raises(ValueError):
        shred_path(tmp / "x", Identity(0, 0, 0, 0), passes=0)


def test_symlink_is_refused_and_its_target_intact(tmp: Path) -> None:
    target = tmp / "target"
    write(target)
    link = tmp / "x.publishsettings"
    link.symlink_to(target)
    assert refused(link) == "symlink"
    assert link.is_symlink() and target.read_bytes() == SECRET


def test_symlink_to_a_directory_is_refused(tmp: Path) -> None:
    real = tmp / "real"
    real.mkdir()
    write(real / "inside.json")
    (tmp / "link.json").symlink_to(real)
    assert refused(tmp / "link.json") == "symlink"
    assert (real / "inside.json").read_bytes() == SECRET


def test_fifo_is_refused_without_blocking(tmp: Path) -> None:
    fifo = tmp / "pipe.publishsettings"
    os.mkfifo(fifo)
    assert refused(fifo) == "not-regular"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_socket_is_refused(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp)  # a relative bind keeps under the 108-byte socket path limit
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("s.json")
        assert refused(tmp / "s.json") == "not-regular"
        assert stat.S_ISSOCK(os.lstat("s.json").st_mode)


@pytest.mark.security
@pytest.mark.skipif(not ROOT, reason="mknod needs root")
def test_device_node_is_refused_without_being_opened(tmp: Path) -> None:
    dev = tmp / "zero.pem"
    os.mknod(dev, 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    assert refused(dev) == "not-regular"
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


def test_directory_with_a_credential_name_is_refused(tmp: Path) -> None:
    folder = tmp / "x.publishsettings"
    folder.mkdir()
    write(folder / "inner")
    assert refused(folder) == "not-regular"
    assert (folder / "inner").read_bytes() == SECRET


def test_hard_linked_file_is_refused_unless_allowed(tmp: Path) -> None:
    victim = tmp / "a.pfx"
    write(victim)
    other = tmp / "copy.pfx"
    os.link(victim, other)
    assert refused(victim) == "hard-links"
    assert victim.read_bytes() == other.read_bytes() == SECRET
    result = shred_path(victim, allow_hard_links=True)
    assert result.deleted and "1 other hard link" in result.message
    assert not victim.exists() and other.read_bytes() == b""


def test_file_replaced_after_it_was_read_is_refused(tmp: Path) -> None:
    victim = tmp / "a.json"
    expected = write(victim)
    write(tmp / "new", b"new version")
    os.replace(tmp / "new", victim)  # a new inode: the old one existed until now
    assert refused(victim, expected) == "changed"
    assert victim.read_bytes() == b"new version"


def test_file_that_grew_is_refused(tmp: Path) -> None:
    victim = tmp / "a.json"
    expected = write(victim)
    with victim.open("ab") as f:
        f.write(b"more")
    assert refused(victim, expected) == "changed"
    assert victim.read_bytes() == SECRET + b"more"


def test_name_swapped_during_deletion_is_renamed_back(tmp: Path) -> None:
    victim = tmp / "a.json"
    write(victim)

    def swap(label: str) -> None:
        if label == "before-overwrite":  # after the checks, before the rename
            victim.unlink()
            victim.write_bytes(b"intruder")

    assert refused(victim, step=swap) == "changed"
    assert victim.read_bytes() == b"intruder"
    assert os.listdir(tmp) == ["a.json"]


@pytest.mark.security
@pytest.mark.skipif(not ROOT, reason="chown to another user needs root")
def test_file_of_another_user_is_refused(tmp: Path) -> None:
    victim = tmp / "a.json"
    write(victim)
    os.chown(victim, OTHER_UID, OTHER_UID)
    assert refused(victim) == "other-owner"
    assert victim.read_bytes() == SECRET


def test_temporary_name_taken_is_refused(tmp: Path) -> None:
    victim = tmp / "a.json"
    write(victim)
    write(tmp / ".credguard-taken", b"other")
    assert refused(victim, new_name=".credguard-taken") == "busy"
    assert victim.read_bytes() == SECRET
    assert (tmp / ".credguard-taken").read_bytes() == b"other"


def as_user(uid: int, action: Callable[[], str]) -> str:
    """Run ``action`` in a forked child that dropped root to ``uid``; its result or error."""
    return run_as(uid, uid, action)


def owned_dir(tmp: Path, uid: int) -> Path:
    folder = tmp / "user"
    folder.mkdir(mode=0o700)
    os.chown(folder, uid, uid)
    return folder


@pytest.mark.security
@pytest.mark.skipif(not ROOT, reason="dropping to another user needs root")
def test_read_only_file_is_made_writable_and_deleted(tmp: Path) -> None:
    """Not root: opening a 0400 file for writing fails, so it is fchmodded through an fd."""
    folder = owned_dir(tmp, OTHER_UID)
    victim = folder / "a.json"
    expected = write(victim, mode=0o400)
    os.chown(victim, OTHER_UID, OTHER_UID)
    expected = ident(victim)
    with opened(folder) as fd:
        out = as_user(OTHER_UID, lambda: str(shred_at(fd, "a.json", expected).deleted))
    assert out == "True" and os.listdir(folder) == []


@pytest.mark.security
@pytest.mark.skipif(not ROOT, reason="dropping to another user needs root")
def test_a_read_only_file_that_still_cannot_be_written_is_refused_and_left_as_found(
        tmp: Path) -> None:
    """Not root, a 0500 program that is running: the first open for writing fails (no write
    permission), the fchmod to 0600 works, and the reopen still fails (the kernel refuses to
    write a running program: ETXTBSY). Refused as busy, its mode given back, nothing written."""
    folder = owned_dir(tmp, OTHER_UID)
    program = folder / "prog"
    shutil.copyfile("/bin/sleep", program)
    os.chown(program, OTHER_UID, OTHER_UID)
    program.chmod(0o500)
    before, expected = program.read_bytes(), ident(program)
    running = subprocess.Popen([str(program), "30"])
    try:
        with opened(folder) as fd:
            out = as_user(OTHER_UID, lambda: str(shred_at(fd, "prog", expected).deleted))
    finally:
        running.kill()
        running.wait()
    assert out.startswith("error: busy "), out
    assert stat.S_IMODE(program.stat().st_mode) == 0o500
    assert program.read_bytes() == before


def test_read_only_file_as_current_user(tmp: Path) -> None:
    victim = tmp / "a.json"
    write(victim, mode=0o400)
    assert shred_path(victim).deleted and not victim.exists()


@pytest.mark.security
@pytest.mark.skipif(not ROOT, reason="dropping to another user needs root")
def test_read_only_directory_of_a_user_is_refused(tmp: Path) -> None:
    folder = owned_dir(tmp, OTHER_UID)
    write(folder / "a.json")
    os.chown(folder / "a.json", OTHER_UID, OTHER_UID)
    expected = ident(folder / "a.json")
    folder.chmod(0o500)
    with opened(folder) as fd:
        out = as_user(OTHER_UID, lambda: str(shred_at(fd, "a.json", expected).deleted))
    assert out.startswith("error: read-only")
    assert (folder / "a.json").read_bytes() == SECRET


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[Path]:
    if not ROOT or shutil.which("chattr") is None:
        pytest.skip("chattr +i needs root and e2fsprogs")
    if subprocess.run(["chattr", "+i", str(path)], check=False).returncode:
        pytest.skip("this file system has no immutable attribute")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.security
def test_immutable_directory_is_refused_before_anything_is_overwritten(tmp: Path) -> None:
    """Root writes through permissions, not through the immutable flag."""
    folder = tmp / "d"
    folder.mkdir()
    victim = folder / "a.json"
    write(victim)
    with immutable(folder):
        assert refused(victim) == "read-only"
        assert victim.read_bytes() == SECRET


@pytest.mark.security
def test_a_batch_probes_each_directory_and_refuses_every_file_of_an_immutable_one(
        tmp: Path) -> None:
    """``shred_many`` probes a directory once for all its files; one that cannot change
    refuses each of its files (the probe is not remembered as passed), the others go."""
    stuck, free = tmp / "stuck", tmp / "free"
    stuck.mkdir()
    free.mkdir()
    files = [stuck / "a.json", stuck / "b.json", free / "c.json", free / "d.json"]
    idents = [write(f) for f in files]
    fds = {stuck: open_dir(stuck), free: open_dir(free)}
    try:
        with immutable(stuck):
            results = shred.shred_many([shred.Request(fds[f.parent], f.name, i)
                                        for f, i in zip(files, idents, strict=True)])
    finally:
        for fd in fds.values():
            os.close(fd)
    assert [getattr(r, "reason", None) for r in results[:2]] == ["read-only", "read-only"]
    assert [getattr(r, "deleted", None) for r in results[2:]] == [True, True]
    assert [f.exists() for f in files] == [True, True, False, False]
    assert sorted(os.listdir(free)) == [] and sorted(os.listdir(stuck)) == ["a.json", "b.json"]


@pytest.mark.security
def test_immutable_file_is_refused(tmp: Path) -> None:
    victim = tmp / "a.json"
    write(victim)
    with immutable(victim):
        assert refused(victim) == "read-only"
    assert victim.read_bytes() == SECRET


@contextlib.contextmanager
def mounted(*args: str) -> Iterator[None]:
    if not ROOT:
        pytest.skip("mounting needs root (CI runs as root)")
    subprocess.run(["mount", *args], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", args[-1]], check=False)


@pytest.mark.security
def test_read_only_mount_is_refused(tmp: Path) -> None:
    where = tmp / "mnt"
    where.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=1m", "cg-shred", str(where)):
        expected = write(where / "a.json")
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        assert refused(where / "a.json", expected) == "read-only"
        assert (where / "a.json").read_bytes() == SECRET


@pytest.mark.security
def test_bind_mounted_file_is_refused_as_busy(tmp: Path) -> None:
    victim = tmp / "a.json"
    write(victim)
    write(tmp / "over", b"mounted")
    with mounted("--bind", str(tmp / "over"), str(victim)):
        assert refused(victim) == "busy"
        assert victim.read_bytes() == b"mounted"
    assert victim.read_bytes() == SECRET


def test_tmpfs_deletion_reports_ram(tmp: Path) -> None:
    where = tmp / "mnt"
    where.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=1m", "cg-shred", str(where)):
        write(where / "a.json")
        result = shred_path(where / "a.json")
        assert result.deleted and result.fs_type == "tmpfs"
        assert any("RAM" in line for line in result.limits)


def test_full_file_system_still_deletes(tmp: Path) -> None:
    """No inode left for the probe file: a full disk is not a read-only one."""
    where = tmp / "mnt"
    where.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=64k,nr_inodes=2", "cg-full", str(where)):
        write(where / "a.json")  # the root directory and this file use both inodes
        with pytest.raises(OSError):
            (where / "b").write_bytes(b"")
        assert shred_path(where / "a.json").deleted
        assert os.listdir(where) == []


@pytest.mark.parametrize("raw", [b"evil\nname.publishsettings", b"bad\xff\xfe.publishsettings"])
def test_odd_names_are_deleted(tmp: Path, raw: bytes) -> None:
    path = os.fsencode(tmp) + b"/" + raw
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, SECRET)
    os.close(fd)
    with opened(tmp) as dir_fd:
        assert shred_at(dir_fd, os.fsdecode(raw), ident(path)).deleted
    assert os.listdir(os.fsencode(tmp)) == []


def test_trash_item_goes_with_its_trashinfo(tmp: Path) -> None:
    files = tmp / "Trash" / "files"
    info = tmp / "Trash" / "info"
    files.mkdir(parents=True)
    info.mkdir()
    write(files / "x.publishsettings")
    (info / "x.publishsettings.trashinfo").write_text(
        "[Trash Info]\nPath=/home/u/Downloads/x.publishsettings\nDeletionDate=2024-01-01T00:00:00\n"
    )
    assert shred_path(files / "x.publishsettings").deleted
    assert remains.remove_trashinfo(files, "x.publishsettings")
    assert os.listdir(files) == [] and os.listdir(info) == []
    assert not remains.remove_trashinfo(files, "x.publishsettings")
    assert not remains.remove_trashinfo(tmp / "nowhere" / "files", "x")


def test_trashinfo_symlink_is_removed_not_followed(tmp: Path) -> None:
    files = tmp / "files"
    (tmp / "info").mkdir()
    files.mkdir()
    write(tmp / "target")
    (tmp / "info" / "a.trashinfo").symlink_to(tmp / "target")
    assert remains.remove_trashinfo(files, "a")
    assert (tmp / "target").read_bytes() == SECRET


def test_crash_after_rename_is_finished_by_recovery(tmp: Path) -> None:
    victim = tmp / "a.json"
    write(victim)
    new = shred.temp_name()

    def crash(label: str) -> None:
        if label == "after-rename":
            raise Crash

    with opened(tmp) as fd:
        with pytest.raises(Crash):
            shred_at(fd, "a.json", ident(victim), new_name=new, step=crash)
        assert os.listdir(tmp) == [new]
        assert (tmp / new).read_bytes() != SECRET  # overwritten before the rename
        assert remains.finish_renamed(fd, new)
        assert os.listdir(tmp) == []
        assert not remains.finish_renamed(fd, new)


def test_crash_mid_overwrite_leaves_the_file_in_place(tmp: Path) -> None:
    victim = tmp / "a.json"
    write(victim)
    fds_before = len(os.listdir("/proc/self/fd"))

    def crash(label: str) -> None:
        if label == "mid-overwrite":
            raise Crash

    with pytest.raises(Crash):
        shred_path(victim, step=crash)
    assert os.listdir(tmp) == ["a.json"] and victim.stat().st_size == len(SECRET)
    assert len(os.listdir("/proc/self/fd")) == fds_before  # the file's fd was closed


def test_finish_renamed_refuses_a_symlink(tmp: Path) -> None:
    write(tmp / "target")
    (tmp / ".credguard-x").symlink_to(tmp / "target")
    with opened(tmp) as fd, pytest.raises(ShredRefused) as info:
        remains.finish_renamed(fd, ".credguard-x")
    assert info.value.reason == "symlink"
    assert (tmp / "target").read_bytes() == SECRET


def test_missing_file_is_not_found(tmp: Path) -> None:
    assert refused(tmp / "gone.json", Identity(0, 0, 0, 0)) == "not-found"


def test_refusal_messages_name_no_content(tmp: Path) -> None:
    victim = tmp / "a.json"
    expected = write(victim)
    victim.write_bytes(SECRET + b"x")
    with pytest.raises(ShredRefused) as info:
        shred_path(victim, expected)
    assert "import the new version first" in info.value.message
    assert b"PRIVATE" not in info.value.message.encode()


def test_a_probe_left_by_a_crash_is_removed(tmp: Path) -> None:
    """A process killed between creating and removing the directory probe leaves an empty
    file named after the journaled rename target; recovery and a retry both remove it."""
    new = ".credguard-abc"
    (tmp / shred.probe_name(new)).write_bytes(b"")
    dir_fd = open_dir(tmp)
    try:
        assert remains.finish_renamed(dir_fd, new) is False  # nothing renamed, probe gone
        assert not (tmp / shred.probe_name(new)).exists()
        (tmp / shred.probe_name(new)).write_bytes(b"")
        victim = tmp / "x.publishsettings"
        victim.write_bytes(b"secret-ish")
        shred_at(dir_fd, victim.name, Identity.of(victim.stat()), new_name=new)
    finally:
        os.close(dir_fd)
    assert os.listdir(tmp) == []
