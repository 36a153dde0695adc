"""The safe bounded reader every detector reads through.

Promises: never follows a symlink (the final component is opened with ``O_NOFOLLOW`` relative to
a directory descriptor the caller validated, so a parent swapped for a link cannot redirect it),
never blocks (``O_NONBLOCK``, and anything that is not a regular file is refused before a byte is
read), never reads more than the cap (the size is checked with ``fstat`` first, and the read stops
at cap + 1 bytes even if the file grows), and never raises anything but :class:`Unreadable` for a
file it will not or cannot read.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

# Reasons are stable strings: they appear in ``--json`` output as ``skipped[].reason``.
SYMLINK = "symlink"
NOT_REGULAR = "not-regular"
TOO_LARGE = "too-large"
UNREADABLE = "unreadable"
MALFORMED = "malformed"
TOO_DEEP = "too-deep"
NOT_FOUND = "not-found"

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_READ_FLAGS = (
    os.O_RDONLY
    | _O_NOFOLLOW
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_BINARY", 0)
)
DIR_FLAGS = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_CHUNK = 1 << 16


class Unreadable(Exception):
    """A file the reader refused or failed to read; ``reason`` is one of the constants above."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class FileData:
    """Bytes of a regular file plus the identity they were read from."""

    data: bytes
    size: int
    dev: int
    ino: int
    mtime_ns: int
    complete: bool  # False when only a prefix was asked for and the file is longer


def _open_error(exc: OSError) -> Unreadable:
    if exc.errno in (errno.ELOOP, errno.EMLINK):
        return Unreadable(SYMLINK, "refusing to follow a symbolic link")
    if exc.errno == errno.ENOENT:
        return Unreadable(NOT_FOUND, "no such file")
    if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):
        return Unreadable(NOT_REGULAR, "not a regular file")
    if exc.errno == errno.ENOTDIR:
        return Unreadable(NOT_FOUND, "a parent is not a directory")
    return Unreadable(UNREADABLE, exc.strerror or "cannot open")


def open_regular(name: str, dir_fd: int | None) -> tuple[int, os.stat_result]:
    """Open ``name`` (relative to ``dir_fd``) read-only without following or blocking.

    Returns the descriptor and its ``fstat``; the caller closes it.
    """
    if not _O_NOFOLLOW:  # Windows: no O_NOFOLLOW (and no dir_fd), so refuse links by lstat
        try:
            if stat.S_ISLNK(os.lstat(name).st_mode):
                raise Unreadable(SYMLINK, "refusing to follow a symbolic link")
        except OSError as exc:
            raise _open_error(exc) from None
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise _open_error(exc) from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise _open_error(exc) from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise Unreadable(NOT_REGULAR, "not a regular file")
    return fd, st


def read_fd(fd: int, st: os.stat_result, cap: int, prefix: int | None = None) -> FileData:
    """Read at most ``cap`` bytes (or ``prefix`` bytes) from an open regular file."""
    if st.st_size > cap:
        raise Unreadable(TOO_LARGE, f"{st.st_size} bytes exceeds the {cap}-byte limit")
    want = cap + 1 if prefix is None else min(prefix, cap + 1)
    chunks: list[bytes] = []
    got = 0
    # A prefix read may stop once fstat's size is reached (saves an EOF read per sniffed
    # file); a full read goes on to EOF so a file that grew past the cap is caught.
    enough = min(want, st.st_size) if prefix is not None and st.st_size else want
    try:
        while got < enough:
            chunk = os.read(fd, min(_CHUNK, want - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except OSError as exc:
        raise Unreadable(UNREADABLE, exc.strerror or "read failed") from None
    if prefix is None and got > cap:
        raise Unreadable(TOO_LARGE, f"file grew past the {cap}-byte limit while being read")
    data = b"".join(chunks)
    complete = prefix is None or got < want
    return FileData(data, st.st_size, st.st_dev, st.st_ino, st.st_mtime_ns, complete)


def read_at(name: str, dir_fd: int | None, cap: int, prefix: int | None = None) -> FileData:
    """Open and read ``name`` relative to ``dir_fd`` through every check above."""
    fd, st = open_regular(name, dir_fd)
    try:
        return read_fd(fd, st, cap, prefix)
    finally:
        os.close(fd)


def open_dir(name: str | Path, dir_fd: int | None = None) -> int:
    """Open a directory without following a symlink in its final component."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            # Linux reports a symlink opened with O_DIRECTORY|O_NOFOLLOW as ENOTDIR: tell the
            # two apart without following it, so the reason the user sees is the true one.
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                raise _open_error(exc) from None
            if stat.S_ISLNK(st.st_mode):
                raise Unreadable(SYMLINK, "refusing to follow a symbolic link") from None
            raise Unreadable(NOT_REGULAR, "not a directory") from None
        raise _open_error(exc) from None


def read_path(path: Path, cap: int, prefix: int | None = None) -> FileData:
    """Read a file named by path: its parent is opened as a directory, the file relative to it.

    The parents of an explicitly named path are the user's choice and are followed; the final
    component never is.
    """
    if not os.supports_dir_fd or os.open not in os.supports_dir_fd:
        return read_at(str(path), None, cap, prefix)
    parent = open_dir(path.parent)
    try:
        return read_at(path.name, parent, cap, prefix)
    finally:
        os.close(parent)
