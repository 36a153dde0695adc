"""The safe bounded reader every detector reads through.

Promises: never follows a symlink (the final component is opened with ``O_NOFOLLOW`` relative to
a directory descriptor the caller validated, so a parent swapped for a link cannot redirect it),
never blocks (``O_NONBLOCK``, and anything that is not a regular file is refused before a byte is
read), never reads more than the cap (the size is checked with ``fstat`` first, and the read stops
at cap + 1 bytes even if the file grows), and never raises anything but :class:`Unreadable` for a
file it will not or cannot read. The opening itself (flags, single-component opens) is
:mod:`credguard.fs.safe`'s, re-exported here for the reader's importers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from credguard.fs.safe import SkipReason, Unreadable, open_dir, open_regular

__all__ = ["FileData", "SkipReason", "Unreadable", "open_dir", "open_regular", "read_at",
           "read_fd", "read_path"]

_CHUNK = 1 << 16


class FileData(NamedTuple):
    """Bytes of a regular file plus the identity they were read from."""

    data: bytes
    size: int
    dev: int
    ino: int
    mtime_ns: int
    complete: bool  # False when only a prefix was asked for and the file is longer


def read_fd(fd: int, st: os.stat_result, cap: int, prefix: int | None = None) -> FileData:
    """Read at most ``cap`` bytes (or ``prefix`` bytes) from an open regular file."""
    if st.st_size > cap:
        raise Unreadable(SkipReason.TOO_LARGE, f"{st.st_size} bytes exceeds the {cap}-byte limit")
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
        raise Unreadable(SkipReason.UNREADABLE, exc.strerror or "read failed") from None
    if prefix is None and got > cap:
        raise Unreadable(SkipReason.TOO_LARGE,
                         f"file grew past the {cap}-byte limit while being read")
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


def read_path(path: Path, cap: int, prefix: int | None = None) -> FileData:
    """Read a file named by path: its parent is opened as a directory, the file relative to it.

    The parents of an explicitly named path are the user's choice and are followed; the final
    component never is.
    """
    parent = open_dir(path.parent)
    try:
        return read_at(path.name, parent, cap, prefix)
    finally:
        os.close(parent)
