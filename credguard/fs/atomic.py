"""Durable file writes and private directories.

``atomic_write`` is the one way credguard replaces a file: a temporary file in the same directory,
written and fsynced, renamed over the target, then the directory fsynced, so a crash leaves either
the old or the new content, never a torn mix; ``atomic_write_many`` does it for several files
at once, each step for all of them before the next (one group commit). Files are 0600 and
directories 0700.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Sequence
from pathlib import Path

from credguard.fs import at
from credguard.fs.flags import NEW_FILE, SYNC_DIR

StrPath = str | os.PathLike[str]

FILE_MODE = 0o600
DIR_MODE = 0o700


def fsync_dir(path: Path, *, strict: bool = False) -> None:
    """Make a rename or unlink in ``path`` durable (a no-op where directories cannot be opened).

    ``strict``: an fsync error (EIO, ENOSPC, ...) is raised, for callers that must not act on
    a rename that may not be durable; only a file system refusing directory fsync (EINVAL) is
    still ignored.
    """
    if not at.NATIVE:
        return  # Windows: a rename or removal is durable once it returns (credguard.fs.at)
    try:
        fd = os.open(path, SYNC_DIR)
    except OSError:
        return
    try:
        at.sync(fd)
    except OSError as exc:
        if strict and exc.errno != errno.EINVAL:
            raise
        # some file systems refuse fsync on directories; nothing more can be done
    finally:
        os.close(fd)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 where credguard creates it."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return path


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_new(path: Path, data: bytes, *, durable: bool = False) -> Path:
    """Write ``data`` to a new 0600 file: never through a link, never over an existing file
    (FileExistsError); fsynced when ``durable``. A failed write leaves no partial file."""
    fd = os.open(path, NEW_FILE, FILE_MODE)
    try:
        try:
            _write_all(fd, data)
            if durable:
                at.sync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    return path


def write_new_at(dir_fd: int, name: str, data: bytes) -> None:
    """:func:`write_new` of ``name`` in the directory ``dir_fd``, durably: the file, then the
    directory, fsynced. FileExistsError if the name exists as anything (a link, a FIFO, a
    dangling link too: the create is exclusive); a failed write leaves no partial file."""
    fd = at.open(name, NEW_FILE, FILE_MODE, dir_fd=dir_fd)
    try:
        try:
            _write_all(fd, data)
            at.sync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            at.unlink(name, dir_fd=dir_fd)
        raise
    at.sync_dir(dir_fd)


def atomic_write(path: Path, data: bytes, mode: int = FILE_MODE, *, strict: bool = False) -> None:
    """Replace ``path`` with ``data`` durably: temp file, fsync, rename, fsync directory
    (``strict``: as :func:`fsync_dir`'s)."""
    atomic_write_many([(path, data)], mode, strict=strict)


def atomic_write_many(items: Sequence[tuple[StrPath, bytes]], mode: int = FILE_MODE, *,
                      strict: bool = False) -> None:
    """:func:`atomic_write` for several files (created ``mode``) as one group commit: every
    temporary file written, then each fsynced, then each renamed over its target, then each
    directory fsynced once (``strict``: as :func:`fsync_dir`'s). Each target holds its old or
    its new content after a crash; every one is durable when this returns. On an error the
    temporaries not yet renamed are removed and the error raised: targets already renamed hold
    their new content (callers write journal entries with it, and remove them all on an
    error). Names are handled as strings: a :class:`~pathlib.Path` made for each new name
    would intern it, and the daemon's table of interned strings would grow with every file it
    protects (:mod:`credguard.protect.journal`)."""
    targets = [(os.fspath(path), data) for path, data in items]
    parents = dict.fromkeys(os.path.dirname(target) for target, _ in targets)
    for parent in parents:
        private_dir(Path(parent))
    temps: list[tuple[str, str]] = []
    fds: list[int] = []
    try:
        try:
            for target, data in targets:  # all written first: their fsyncs then follow each other
                name = f".{os.path.basename(target)}.{os.urandom(8).hex()}.tmp"
                tmp = os.path.join(os.path.dirname(target), name)
                fds.append(os.open(tmp, NEW_FILE, mode))
                temps.append((tmp, target))
                _write_all(fds[-1], data)
            for fd in fds:
                at.sync(fd)
        finally:
            for fd in fds:
                os.close(fd)
        while temps:
            os.replace(*temps[0])
            temps.pop(0)
    except BaseException:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    for parent in parents:
        fsync_dir(Path(parent), strict=strict)
