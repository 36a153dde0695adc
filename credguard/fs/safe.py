"""The one owner of open flags, and of opening a path beneath a root directory.

Every ``os.open`` in credguard takes its flags from here (they are defined in
:mod:`credguard.fs.flags`, which ``credguard check``'s quick path imports alone). The
``*_beneath`` functions open a path from a directory descriptor one component at a time: never
through a symlink (``O_NOFOLLOW|O_DIRECTORY`` on every directory), never onto another file
system (every component's ``st_dev`` is the root's), never through a directory another user
could change (owned by someone but the user or root, or writable by group or others without the
sticky bit).
A path that fails is refused with :class:`Unreadable` and a stable :class:`SkipReason`, and
every descriptor opened on the way is closed. The opens relative to a directory are
:mod:`credguard.fs.at`'s (``dir_fd`` on POSIX, handles on Windows).

Why no ``openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV)`` fast path: it resolves
the whole path in one call (about 2 us for 8 levels, against 16 us for this walk), but it cannot
check who owns each directory, so the walk would still open and ``fstat`` every component.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from credguard import xdg
from credguard.fs import at

# Re-exported: the open flags live in credguard.fs.flags, lean for check's quick path.
from credguard.fs.flags import AT_SUPPORTED as AT_SUPPORTED
from credguard.fs.flags import BASE as BASE
from credguard.fs.flags import DIR as DIR
from credguard.fs.flags import LOCK as LOCK
from credguard.fs.flags import NEW_FILE as NEW_FILE
from credguard.fs.flags import NOFOLLOW as NOFOLLOW
from credguard.fs.flags import READ as READ
from credguard.fs.flags import READ_WRITE as READ_WRITE
from credguard.fs.flags import SYNC_DIR as SYNC_DIR
from credguard.fs.flags import WRITE as WRITE

StrPath = str | os.PathLike[str]

_SHARED_WRITE: Final = stat.S_IWGRP | stat.S_IWOTH


class SkipReason(StrEnum):
    """Why a path was not examined: stable strings, shown as ``skipped[].reason`` in --json."""

    SYMLINK = "symlink"
    NOT_REGULAR = "not-regular"
    TOO_LARGE = "too-large"
    UNREADABLE = "unreadable"
    MALFORMED = "malformed"
    TOO_DEEP = "too-deep"
    NOT_FOUND = "not-found"
    OTHER_FILESYSTEM = "other-filesystem"
    UNSAFE_DIRECTORY = "unsafe-directory"
    OUTSIDE_ROOT = "outside-root"


class Unreadable(Exception):
    """A path credguard refused or failed to open or read; ``reason`` says why."""

    def __init__(self, reason: SkipReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _open_error(exc: OSError) -> Unreadable:
    if exc.errno in (errno.ELOOP, errno.EMLINK):
        return Unreadable(SkipReason.SYMLINK, "refusing to follow a symbolic link")
    if exc.errno == errno.ENOENT:
        return Unreadable(SkipReason.NOT_FOUND, "no such file")
    if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):
        return Unreadable(SkipReason.NOT_REGULAR, "not a regular file")
    if exc.errno == errno.ENOTDIR:
        return Unreadable(SkipReason.NOT_FOUND, "a parent is not a directory")
    return Unreadable(SkipReason.UNREADABLE, exc.strerror or "cannot open")


# -- one component, relative to a directory the caller validated --------------------------------


def open_dir(name: StrPath, dir_fd: int | None = None) -> int:
    """Open a directory without following a symlink in its final component."""
    try:
        return at.open_dir(name, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            # Linux reports a symlink opened with O_DIRECTORY|O_NOFOLLOW as ENOTDIR: tell the
            # two apart without following it, so the reason the user sees is the true one.
            try:
                st = at.stat(name, dir_fd=dir_fd)
            except OSError:
                raise _open_error(exc) from None
            if stat.S_ISLNK(st.st_mode):
                raise Unreadable(SkipReason.SYMLINK, "refusing to follow a symbolic link") from None
            raise Unreadable(SkipReason.NOT_REGULAR, "not a directory") from None
        raise _open_error(exc) from None


def open_regular(name: str, dir_fd: int | None, flags: int = READ) -> tuple[int, os.stat_result]:
    """Open regular file ``name`` (relative to ``dir_fd``) without following or blocking.

    ``flags`` always gets :data:`BASE` added. Returns the descriptor and its ``fstat``; the
    caller closes it.
    """
    try:
        fd = at.open(name, flags | BASE, 0o777, dir_fd=dir_fd)
    except OSError as exc:
        raise _open_error(exc) from None
    try:
        st = at.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise _open_error(exc) from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise Unreadable(SkipReason.NOT_REGULAR, "not a regular file")
    return fd, st


# -- a path beneath a root ---------------------------------------------------------------------


@dataclass(frozen=True)
class SafeDir:
    """A directory opened by this module's rules: ``fd`` (the holder closes it), the device
    every path beneath it must stay on, and its path for messages (never reopened)."""

    fd: int
    dev: int
    path: str

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> SafeDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.lru_cache(maxsize=64)
def _private_group(gid: int, uid: int) -> bool:
    """Whether ``uid`` (with root) is the only member of group ``gid``: a user private group,
    as umask 002 systems give every user. The group database is read once per group."""
    try:  # POSIX only, like this check (see _unsafe)
        import grp
        import pwd
    except ImportError:
        return False

    trusted = {uid, 0}
    try:
        names = {pwd.getpwuid(u).pw_name for u in trusted}
        members = set(grp.getgrgid(gid).gr_mem)
        primary = {p.pw_uid for p in pwd.getpwall() if p.pw_gid == gid}
    except KeyError:
        return False
    # A group without members is refused as well: setgid programs write as such groups.
    return bool(members or primary) and members <= names and primary <= trusted


def _unsafe(st: os.stat_result) -> str:
    """Why another user could change entries in this directory ("" if no one can).

    Not on Windows, where that is the directory's ACL, which credguard does not read: the
    directories it walks are in the user's profile, whose ACL admits only the user, SYSTEM
    and administrators (README, "Platforms")."""
    if not at.NATIVE:
        return ""
    me = xdg.euid()
    if st.st_uid not in (me, 0):
        return f"it belongs to uid {st.st_uid}"
    if st.st_mode & stat.S_ISVTX or not st.st_mode & _SHARED_WRITE:
        return ""
    if st.st_mode & stat.S_IWOTH:
        return "anyone may rename or delete its entries (writable, no sticky bit)"
    if _private_group(st.st_gid, me):
        return ""
    return f"group {st.st_gid} may rename or delete its entries (writable, no sticky bit)"


def _check_dir(st: os.stat_result, dev: int, writers: bool = True) -> None:
    if st.st_dev != dev:
        raise Unreadable(SkipReason.OTHER_FILESYSTEM, "on another file system")
    why = _unsafe(st) if writers else ""
    if why:
        raise Unreadable(SkipReason.UNSAFE_DIRECTORY, why)


def _components(relpath: StrPath) -> list[str]:
    """The names in ``relpath``: at least one, each naming a child (no '..', '.', '' or NUL)."""
    text = os.fspath(relpath)
    names = text.split(os.sep)
    if os.path.isabs(text) or any(n in ("", ".", "..") or "\0" in n for n in names):
        raise Unreadable(SkipReason.OUTSIDE_ROOT,
                         "not a relative path of plain names (absolute, '..', '.' or empty)")
    return names


def _located(exc: Unreadable, where: str) -> Unreadable:
    return Unreadable(exc.reason, f"{where}: {exc.detail}" if exc.detail else where)


def open_root(path: StrPath, *, writers: bool = True) -> SafeDir:
    """Open ``path`` as the start of walks: its final component is never a symlink (its parents
    are the configuration's choice and are followed) and it passes the directory check
    (``writers=False``: all but the check that no other user can change its entries)."""
    where = os.fspath(path)
    fd = open_dir(path)
    try:
        st = at.fstat(fd)
        _check_dir(st, st.st_dev, writers)
    except Unreadable as exc:
        os.close(fd)
        raise _located(exc, where) from None
    except BaseException:
        os.close(fd)
        raise
    return SafeDir(fd, st.st_dev, where)


def _descend(base: SafeDir, names: Sequence[str], writers: bool = True) -> SafeDir:
    fd = os.dup(base.fd)
    try:
        for depth, name in enumerate(names, 1):
            try:
                child = open_dir(name, fd)
                os.close(fd)
                fd = child
                _check_dir(at.fstat(fd), base.dev, writers)
            except Unreadable as exc:  # name the component that failed
                raise _located(exc, "/".join(names[:depth])) from None
    except BaseException:
        os.close(fd)
        raise
    return SafeDir(fd, base.dev, os.path.join(base.path, *names))


def open_dir_beneath(base: SafeDir, relpath: StrPath) -> SafeDir:
    """Open directory ``relpath`` beneath ``base``, every component (itself too) checked."""
    return _descend(base, _components(relpath))


def walk(base: SafeDir, relpath: StrPath, *, writers: bool = True) -> tuple[SafeDir, str]:
    """The directory holding ``relpath``'s final component, opened beneath ``base`` with every
    check (``writers=False``: all but the one for directories other users can change, for a
    caller that only tightens permissions through descriptors), and that component's name
    (not opened: the caller decides how)."""
    *dirs, name = _components(relpath)
    return _descend(base, dirs, writers), name


def open_file_beneath(base: SafeDir, relpath: StrPath,
                      flags: int = READ) -> tuple[int, os.stat_result]:
    """Open regular file ``relpath`` beneath ``base`` (see :func:`open_regular`), on ``base``'s
    file system. Returns the descriptor and its ``fstat``; the caller closes it."""
    where = os.fspath(relpath)
    parent, name = walk(base, relpath)
    with parent:
        try:
            fd, st = open_regular(name, parent.fd, flags)
        except Unreadable as exc:
            raise _located(exc, where) from None
    if st.st_dev != base.dev:
        os.close(fd)
        raise Unreadable(SkipReason.OTHER_FILESYSTEM, f"{where}: on another file system")
    return fd, st
