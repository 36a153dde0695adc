"""Opening beneath a root on a real file system: symlinks, swaps, mounts, other users' and
shared directories, hostile names, FIFOs and paths longer than PATH_MAX.

Mounts and ownership changes need root (CI runs as root); those tests are skipped otherwise.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from credguard.fs import safe
from credguard.fs.safe import SafeDir, SkipReason, Unreadable

pytestmark = pytest.mark.timeout(10)
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mount)")
NOBODY = 65534


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/a/b/f.txt holding b"inside", and outside/f.txt holding b"outside"."""
    (tmp_path / "root" / "a" / "b").mkdir(parents=True)
    (tmp_path / "root" / "a" / "b" / "f.txt").write_bytes(b"inside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "f.txt").write_bytes(b"outside")
    return tmp_path / "root"


@pytest.fixture
def root(tree: Path) -> Iterator[SafeDir]:
    before = _open_fds()
    with safe.open_root(tree) as opened:
        yield opened
    assert _open_fds() == before, "a descriptor leaked"


def _mount_tmpfs(where: Path) -> Iterator[Path]:
    where.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "none", str(where)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def _read(root: SafeDir, rel: str) -> bytes:
    fd, _st = safe.open_file_beneath(root, rel)
    try:
        return os.read(fd, 100)
    finally:
        os.close(fd)


def _refusal(root: SafeDir, rel: str, opener: str = "file") -> Unreadable:
    fn = {"file": safe.open_file_beneath, "dir": safe.open_dir_beneath, "walk": safe.walk}[opener]
    with pytest.raises(Unreadable) as info:
        fn(root, rel)
    return info.value


def test_a_nested_file_is_opened_and_walk_names_its_parent(root: SafeDir, tree: Path) -> None:
    assert _read(root, "a/b/f.txt") == b"inside"
    parent, name = safe.walk(root, "a/b/f.txt")
    with parent:
        assert name == "f.txt" and parent.path == str(tree / "a" / "b")
        assert os.fstat(parent.fd).st_ino == (tree / "a" / "b").stat().st_ino
    with safe.open_dir_beneath(root, "a") as sub:
        assert _read(sub, "b/f.txt") == b"inside"  # a SafeDir is a base for further walks


def test_a_symlink_in_the_middle_is_refused(root: SafeDir, tree: Path) -> None:
    (tree / "link").symlink_to(tree.parent / "outside")
    refused = _refusal(root, "link/f.txt")
    assert refused.reason == SkipReason.SYMLINK and refused.detail.startswith("link: ")


def test_a_symlink_at_the_end_is_refused(root: SafeDir, tree: Path) -> None:
    (tree / "a" / "f.txt").symlink_to(tree.parent / "outside" / "f.txt")
    (tree / "a" / "d").symlink_to(tree.parent / "outside")
    assert _refusal(root, "a/f.txt").reason == SkipReason.SYMLINK
    assert _refusal(root, "a/d", "dir").reason == SkipReason.SYMLINK


def test_a_symlinked_root_is_refused(tree: Path) -> None:
    link = tree.parent / "root-link"
    link.symlink_to(tree)
    with pytest.raises(Unreadable) as info:
        safe.open_root(link)
    assert info.value.reason == SkipReason.SYMLINK


def test_a_directory_swapped_for_a_symlink_between_two_walks(root: SafeDir, tree: Path) -> None:
    """The first walk's fd still names the directory it opened; the second walk refuses."""
    first = safe.open_dir_beneath(root, "a")
    with first:
        (tree / "a").rename(tree / "moved")
        (tree / "a").symlink_to(tree.parent / "outside")
        assert _refusal(root, "a/f.txt").reason == SkipReason.SYMLINK
        assert os.fstat(first.fd).st_ino == (tree / "moved").stat().st_ino
        assert _read(first, "b/f.txt") == b"inside"


@pytest.mark.parametrize("rel", ["..", "../outside/f.txt", "a/../../outside/f.txt", "/etc/passwd",
                                 "", "a//b/f.txt", "./a", "a/.", "a/b\0/f.txt"])
def test_names_that_do_not_lead_beneath_are_rejected(root: SafeDir, rel: str) -> None:
    for opener in ("file", "dir", "walk"):
        assert _refusal(root, rel, opener).reason == SkipReason.OUTSIDE_ROOT


def test_missing_and_non_directory_components(root: SafeDir) -> None:
    assert _refusal(root, "a/nope/f.txt").reason == SkipReason.NOT_FOUND
    assert _refusal(root, "a/b/f.txt/x").reason == SkipReason.NOT_REGULAR
    assert _refusal(root, "a/b", "file").reason == SkipReason.NOT_REGULAR  # a dir, not a file


@pytest.mark.parametrize("flags", [safe.READ, safe.WRITE], ids=["read", "write"])
def test_a_fifo_is_refused_without_blocking(root: SafeDir, tree: Path, flags: int) -> None:
    os.mkfifo(tree / "a" / "pipe")  # no reader or writer: a blocking open would hang here
    with pytest.raises(Unreadable) as info:
        safe.open_file_beneath(root, "a/pipe", flags)
    assert info.value.reason == SkipReason.NOT_REGULAR


def test_a_path_longer_than_path_max_opens_through_descriptors(root: SafeDir) -> None:
    name = "d" * 200
    fd = os.dup(root.fd)
    for _ in range(30):  # 30 x 201 characters: beyond PATH_MAX (4096)
        os.mkdir(name, 0o700, dir_fd=fd)
        child = os.open(name, safe.DIR, dir_fd=fd)
        os.close(fd)
        fd = child
    leaf = os.open("deep.txt", safe.NEW_FILE, 0o600, dir_fd=fd)
    os.write(leaf, b"deep")
    os.close(leaf)
    os.close(fd)
    rel = "/".join([name] * 30 + ["deep.txt"])
    assert len(rel) > os.pathconf("/", "PC_PATH_MAX")
    with pytest.raises(OSError):
        os.stat(Path(root.path) / rel)  # the path itself is too long for the kernel
    assert _read(root, rel) == b"deep"


def test_a_world_writable_directory_needs_the_sticky_bit(root: SafeDir, tree: Path) -> None:
    (tree / "a").chmod(0o777)
    refused = _refusal(root, "a/b/f.txt")
    assert refused.reason == SkipReason.UNSAFE_DIRECTORY and refused.detail.startswith("a: ")
    (tree / "a").chmod(0o1777)
    assert _read(root, "a/b/f.txt") == b"inside"


def test_an_unsafe_root_is_refused(tree: Path) -> None:
    tree.chmod(0o777)
    with pytest.raises(Unreadable) as info:
        safe.open_root(tree)
    assert info.value.reason == SkipReason.UNSAFE_DIRECTORY


@as_root
def test_another_users_directory_is_refused_even_in_a_sticky_root(root: SafeDir,
                                                                   tree: Path) -> None:
    tree.chmod(0o1777)  # a shared root such as /tmp/shared: its entries may be anyone's
    os.chown(tree / "a", NOBODY, NOBODY)
    (tree / "a").chmod(0o755)
    refused = _refusal(root, "a/b/f.txt")
    assert refused.reason == SkipReason.UNSAFE_DIRECTORY and f"uid {NOBODY}" in refused.detail


@as_root
def test_group_write_is_safe_only_for_a_private_group(root: SafeDir, tree: Path) -> None:
    (tree / "a").chmod(0o775)
    os.chown(tree / "a", 0, NOBODY)  # nogroup: no member is us
    assert _refusal(root, "a/b/f.txt").reason == SkipReason.UNSAFE_DIRECTORY
    shared = set(grp.getgrgid(0).gr_mem) - {"root"}
    if shared or any(p.pw_gid == 0 and p.pw_uid for p in pwd.getpwall()):
        pytest.skip("group 0 has members besides root here (e.g. Fedora's operator)")
    os.chown(tree / "a", 0, 0)  # root's own group, like a user's private group (umask 002)
    assert _read(root, "a/b/f.txt") == b"inside"


@as_root
def test_a_mount_inside_the_root_is_another_file_system(root: SafeDir, tree: Path) -> None:
    for mnt in _mount_tmpfs(tree / "a" / "mnt"):
        (mnt / "f.txt").write_bytes(b"on tmpfs")
        refused = _refusal(root, "a/mnt/f.txt")
        assert refused.reason == SkipReason.OTHER_FILESYSTEM
        assert refused.detail.startswith("a/mnt: ")


@as_root
def test_a_file_bind_mounted_from_another_file_system_is_refused(root: SafeDir, tree: Path,
                                                                  tmp_path: Path) -> None:
    for mnt in _mount_tmpfs(tmp_path / "elsewhere"):
        (mnt / "f.txt").write_bytes(b"on tmpfs")
        target = tree / "a" / "bound.txt"
        target.write_bytes(b"")
        subprocess.run(["mount", "--bind", str(mnt / "f.txt"), str(target)],
                       check=True)
        try:
            assert _refusal(root, "a/bound.txt").reason == SkipReason.OTHER_FILESYSTEM
        finally:
            subprocess.run(["umount", str(target)], check=True)


def test_refusals_close_every_descriptor(tree: Path) -> None:
    (tree / "a" / "link").symlink_to(tree.parent / "outside")
    (tree / "a" / "b").chmod(0o777)
    before = _open_fds()
    with safe.open_root(tree) as root:
        for rel in ("a/link/f.txt", "a/b/f.txt", "a/missing/x", "a/b/f.txt/x", ".."):
            for opener in ("file", "dir", "walk"):
                _refusal(root, rel, opener)
    assert _open_fds() == before


def test_skip_reasons_keep_their_json_strings() -> None:
    from credguard.fs import read

    assert read.SkipReason is SkipReason and read.Unreadable is Unreadable
    assert [r.value for r in SkipReason] == [
        "symlink", "not-regular", "too-large", "unreadable", "malformed", "too-deep",
        "not-found", "other-filesystem", "unsafe-directory", "outside-root"]


def test_open_file_beneath_opens_with_the_flags_asked_for(root: SafeDir, tree: Path) -> None:
    fd, _st = safe.open_file_beneath(root, "a/b/f.txt", safe.READ_WRITE)
    try:
        os.pwrite(fd, b"IN", 0)  # a read-only descriptor would raise EBADF
    finally:
        os.close(fd)
    assert (tree / "a" / "b" / "f.txt").read_bytes() == b"INside"


def test_a_refused_final_component_is_named_in_the_detail(root: SafeDir, tree: Path) -> None:
    os.mkfifo(tree / "a" / "pipe")
    refusal = _refusal(root, "a/pipe")
    assert refusal.reason == SkipReason.NOT_REGULAR
    assert refusal.detail.startswith("a/pipe: ")


def test_a_refusal_without_detail_is_named_by_its_place_alone() -> None:
    from credguard.fs.safe import _located

    assert _located(Unreadable(SkipReason.SYMLINK), "a/b").detail == "a/b"
    assert _located(Unreadable(SkipReason.SYMLINK, "why"), "a/b").detail == "a/b: why"


def test_the_flag_sets_never_follow_block_or_leak() -> None:
    for flags in (safe.READ, safe.WRITE, safe.READ_WRITE, safe.NEW_FILE, safe.LOCK):
        assert flags & os.O_NOFOLLOW and flags & os.O_NONBLOCK and flags & os.O_CLOEXEC
        assert flags & os.O_NOCTTY
    assert safe.DIR & os.O_DIRECTORY and safe.DIR & os.O_NOFOLLOW and safe.DIR & os.O_CLOEXEC
    assert safe.NEW_FILE & os.O_EXCL and safe.NEW_FILE & os.O_CREAT
    assert not safe.SYNC_DIR & os.O_NOFOLLOW  # fsync only: following changes nothing


def test_each_refusal_says_what_it_met(root: SafeDir, tree: Path) -> None:
    """The details reach the user (scan --json skipped[].detail): each says what was met."""
    os.mkfifo(tree / "a" / "pipe")
    fd = root.fd
    cases = {
        "a/missing": (SkipReason.NOT_FOUND, "no such file"),
        "a/b/f.txt/x": (SkipReason.NOT_FOUND, "a parent is not a directory"),
        "a/pipe": (SkipReason.NOT_REGULAR, "not a regular file"),
        "x" * 300: (SkipReason.UNREADABLE, os.strerror(errno.ENAMETOOLONG)),
    }
    for rel, (reason, detail) in cases.items():
        with pytest.raises(Unreadable) as info:
            os.close(safe.open_regular(rel, fd)[0])
        assert (info.value.reason, info.value.detail) == (reason, detail), rel


def test_a_directory_on_another_file_system_says_so(tree: Path, tmp_path: Path) -> None:
    for _mnt in _mount_tmpfs(tree / "a" / "mnt"):
        with safe.open_root(tree) as top:
            refusal = _refusal(top, "a/mnt/f.txt")
        assert refusal.reason == SkipReason.OTHER_FILESYSTEM
        assert refusal.detail == "a/mnt: on another file system"
