"""The safe bounded reader against hostile files on a real file system.

Each test would hang, read outside the root, or exhaust memory without the protection it checks;
they run under a short timeout so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.attacker import User, other_user, run_as

from credguard.fs import read
from credguard.fs.read import SkipReason, Unreadable

pytestmark = pytest.mark.timeout(10)
CAP = 4 << 20


def test_reads_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"hello")
    data = read.read_path(tmp_path / "a.txt", CAP)
    assert data.data == b"hello" and data.complete and data.size == 5


def test_final_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_bytes(b"outside")
    (tmp_path / "link.publishsettings").symlink_to(target)
    with pytest.raises(Unreadable) as info:
        read.read_path(tmp_path / "link.publishsettings", CAP)
    assert info.value.reason == SkipReason.SYMLINK


def test_symlinked_directory_is_refused_relative_to_a_validated_parent(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.publishsettings").write_bytes(b"<PublishData/>")
    root = tmp_path / "root"
    root.mkdir()
    (root / "sub").symlink_to(outside)
    root_fd = read.open_dir(root)
    try:
        with pytest.raises(Unreadable) as info:
            read.open_dir("sub", root_fd)
        assert info.value.reason == SkipReason.SYMLINK
    finally:
        os.close(root_fd)


def test_fifo_is_skipped_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.publishsettings"
    os.mkfifo(fifo)
    with pytest.raises(Unreadable) as info:
        read.read_path(fifo, CAP)  # a blocking open would hang here (no writer)
    assert info.value.reason == SkipReason.NOT_REGULAR


def test_socket_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "s.publishsettings"
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(path))
        with pytest.raises(Unreadable) as info:
            read.read_path(path, CAP)
        assert info.value.reason in (SkipReason.NOT_REGULAR, SkipReason.UNREADABLE)
    finally:
        sock.close()


@pytest.mark.security
@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root (CI runs as root)")
def test_device_is_skipped(tmp_path: Path) -> None:
    dev = tmp_path / "zero.publishsettings"
    os.mknod(dev, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero: an endless read
    with pytest.raises(Unreadable) as info:
        read.read_path(dev, CAP)
    assert info.value.reason == SkipReason.NOT_REGULAR


def test_huge_sparse_file_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.publishsettings"
    with big.open("wb") as fh:
        fh.truncate(3 << 30)  # 3 GiB, sparse: reading it would take seconds and 3 GiB of RAM
    with pytest.raises(Unreadable) as info:
        read.read_path(big, CAP)
    assert info.value.reason == SkipReason.TOO_LARGE


def test_read_stops_at_the_cap_when_the_file_grows(tmp_path: Path) -> None:
    """fstat says small, but a writer keeps appending: the read must stop at cap + 1."""
    path = tmp_path / "grow.txt"
    path.write_bytes(b"x" * 10)
    fd, st = read.open_regular(path.name, read.open_dir(tmp_path))
    try:
        with path.open("ab") as fh:
            fh.write(b"y" * (2 * 1024 * 1024))
        with pytest.raises(Unreadable) as info:
            read.read_fd(fd, st, cap=1024 * 1024)
        assert info.value.reason == SkipReason.TOO_LARGE
    finally:
        os.close(fd)


def test_prefix_read_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_bytes(b"z" * 100_000)
    data = read.read_path(path, CAP, prefix=4096)
    assert len(data.data) == 4096 and not data.complete


@pytest.fixture
def reader() -> Iterator[User | None]:
    """Who reads the mode-0 file: as root (how CI runs), who reads anything, a real second user
    (``useradd``, removed afterwards); otherwise the current user, who is not root already."""
    if os.geteuid() != 0:
        yield None
        return
    with other_user() as user:
        yield user


def read_as(user: User | None, path: Path) -> str:
    """``read.read_path(path)``: "read N" with the number of bytes it got, or the reason it was
    refused. For a ``user``, in a forked child that dropped root for that uid."""
    if user is None:
        return _read(path)
    return run_as(user.uid, user.gid, lambda: _read(path))


def _read(path: Path) -> str:
    try:
        return f"read {len(read.read_path(path, CAP).data)}"
    except Unreadable as exc:
        return str(exc.reason)


@pytest.mark.security
def test_unreadable_file_reports_reason(reader: User | None) -> None:
    """A mode-0 file read by a user who is not root: in a folder that user owns, beside a file
    of theirs they can read, so only the file's mode stands in the way."""
    folder = Path(tempfile.mkdtemp(prefix="cg-read-", dir="/tmp"))  # every uid can reach it
    try:
        readable, locked = folder / "mine.publishsettings", folder / "locked.publishsettings"
        for path, mode in ((folder, 0o700), (readable, 0o600), (locked, 0)):
            if path != folder:
                path.write_bytes(b"data")
            if reader is not None:
                os.chown(path, reader.uid, reader.gid)
            path.chmod(mode)
        assert read_as(reader, readable) == "read 4"
        assert read_as(reader, locked) == SkipReason.UNREADABLE
    finally:
        shutil.rmtree(folder)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(Unreadable) as info:
        read.read_path(tmp_path / "nope", CAP)
    assert info.value.reason == SkipReason.NOT_FOUND


def test_fifo_with_writer_waiting_is_not_read(tmp_path: Path) -> None:
    """Even with a writer attached, a FIFO is refused before any read."""
    fifo = tmp_path / "busy.publishsettings"
    os.mkfifo(fifo)
    opened = threading.Event()

    def writer() -> None:
        fd = os.open(fifo, os.O_RDWR)  # O_RDWR on a FIFO never blocks on Linux
        opened.set()
        os.write(fd, b"<PublishData/>")
        os.close(fd)

    t = threading.Thread(target=writer)
    t.start()
    opened.wait(5)
    t.join(5)
    with pytest.raises(Unreadable) as info:
        read.read_path(fifo, CAP)
    assert info.value.reason == SkipReason.NOT_REGULAR
