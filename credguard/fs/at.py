"""File operations relative to an open directory, per operating system: the one dispatcher of
the concern.

POSIX has them in ``os`` (``dir_fd=``, ``follow_symlinks=False``). Windows' ``os`` has no
``dir_fd`` and cannot even open a directory, so there they are done by handle through
:mod:`credguard.fs.win32` (``NtCreateFile`` relative to the directory's handle, never following
a reparse point; delete and rename by the handle of the file itself). Directory descriptors are
C runtime descriptors on both, so callers hold, ``fstat`` and close them alike.

Also per system: who owns a file (:func:`mine`, :func:`private`; Windows' ``stat`` knows no
owner) and making writes durable (:func:`sync`: macOS needs ``F_FULLFSYNC``).

What Windows lacks and this module says rather than hides: directories are not fsynced (NTFS
journals its metadata: a rename is durable once it returns) and file modes are not set
(:func:`restrict` does nothing: a file's access is its ACL, which it inherits from the user's
profile directory).

Only ``os``, ``fcntl``, :mod:`credguard.xdg` and :mod:`.flags` are imported: ``credguard
check``'s quick path uses this module.
"""

from __future__ import annotations

import os

from credguard import xdg
from credguard.fs import flags

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Final

    from credguard.fs.win32 import Kernel

StrPath = str | os.PathLike[str]

# where os has dir_fd (every POSIX system credguard supports), os itself; else Win32
NATIVE: Final[bool] = flags.AT_SUPPORTED

try:
    import fcntl as _fcntl
except ImportError:  # Windows
    _fcntl = None  # type: ignore[assignment]
_FULLFSYNC: int | None = getattr(_fcntl, "F_FULLFSYNC", None)  # macOS' full flush (sync)


def _kernel() -> Kernel:
    return _win32().kernel()  # type: ignore[no-any-return]


def _win32() -> ModuleType:
    from credguard.fs import win32

    return win32


def open_dir(name: StrPath, *, dir_fd: int | None = None) -> int:
    """Open directory ``name`` without following a symlink in its final component."""
    if NATIVE:
        return os.open(name, flags.DIR, dir_fd=dir_fd)
    w = _win32()
    return _kernel().open_at(dir_fd, os.fspath(name), w.READ_DATA, w.OPEN, True, False)


def open(name: StrPath, flag: int, mode: int = 0o600, *,
         dir_fd: int | None = None) -> int:
    """``os.open(name, flag, mode, dir_fd=dir_fd)`` for a file (``flag`` from
    :mod:`.flags`); on Windows the file is opened by handle, never through a reparse point
    (ELOOP), exclusively created for ``O_CREAT|O_EXCL``, and ``mode`` is the ACL's business."""
    if NATIVE:
        return os.open(name, flag, mode, dir_fd=dir_fd)
    w = _win32()
    access = {os.O_RDONLY: w.READ_DATA, os.O_WRONLY: w.WRITE_DATA,
              os.O_RDWR: w.READ_DATA | w.WRITE_DATA}[flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)]
    if flag & (os.O_TRUNC | os.O_APPEND):
        raise ValueError("O_TRUNC and O_APPEND are not used with credguard's opens")
    if flag & os.O_CREAT:
        disposition = w.CREATE_NEW if flag & os.O_EXCL else w.OPEN_ALWAYS
    else:
        disposition = w.OPEN
    return _kernel().open_at(dir_fd, os.fspath(name), access, disposition, False, False)


def stat(name: StrPath, *, dir_fd: int | None = None) -> os.stat_result:
    """``name``'s own status, a symbolic link's (or a Windows reparse point's) not followed."""
    if NATIVE:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    kernel = _kernel()
    fd = kernel.open_at(dir_fd, os.fspath(name), 0, _win32().OPEN, None, True)
    try:
        return kernel.fstat(fd)
    finally:
        os.close(fd)


def fstat(fd: int) -> os.stat_result:
    """``os.fstat``; on Windows a reparse point's mode is ``S_IFLNK``."""
    if NATIVE:
        return os.fstat(fd)
    return _kernel().fstat(fd)


def unlink(name: StrPath, *, dir_fd: int | None = None) -> None:
    """Remove the name ``name`` (a symbolic link itself, never its target)."""
    if NATIVE:
        os.unlink(name, dir_fd=dir_fd)
        return
    kernel, text, w = _kernel(), os.fspath(name), _win32()
    fd = kernel.open_at(dir_fd, text, w.DELETE, w.OPEN, False, True)
    try:
        kernel.dispose(fd, dir_fd, text)
    finally:
        os.close(fd)


def rename(old: StrPath, new: StrPath, *, dir_fd: int | None = None) -> None:
    """Rename ``old`` to ``new`` in one directory, replacing ``new`` (POSIX ``rename``)."""
    if NATIVE:
        os.rename(old, new, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return
    kernel, text, w = _kernel(), os.fspath(old), _win32()
    fd = kernel.open_at(dir_fd, text, w.DELETE, w.OPEN, None, True)
    try:
        kernel.rename(fd, dir_fd, text, os.fspath(new), True)
    finally:
        os.close(fd)


def sync(fd: int) -> None:
    """Make what was written through ``fd`` durable: ``fsync``, and on macOS ``F_FULLFSYNC``,
    since its ``fsync`` leaves the data in the drive's cache (Apple's fsync(2)); where a file
    system refuses that, ``fsync``. A directory's fd: its renames and removals."""
    if _FULLFSYNC is not None:
        try:
            _fcntl.fcntl(fd, _FULLFSYNC)
        except OSError:
            pass
        else:
            return
    os.fsync(fd)


def sync_dir(dir_fd: int) -> None:
    """Make the renames and removals in directory ``dir_fd`` durable (nothing on Windows,
    where they are once they return)."""
    if NATIVE:
        sync(dir_fd)


def restrict(fd: int, mode: int) -> None:
    """Set the open file's mode (nothing on Windows: see the module's docstring)."""
    fchmod = getattr(os, "fchmod", None)
    if NATIVE and fchmod is not None:
        fchmod(fd, mode)


def mine(st: os.stat_result) -> bool:
    """Whether the file ``st`` describes is this user's. On Windows every ``stat`` says uid
    0: ownership is in the file's security descriptor, which credguard does not read, so
    there the answer is yes (the user's profile, where credguard's files and roots are,
    admits only the user, SYSTEM and administrators)."""
    if not NATIVE:
        return True
    return st.st_uid == xdg.euid()


def private(st: os.stat_result) -> bool:
    """:func:`mine`, and closed to group and others (Windows: as :func:`mine`, whose mode
    bits say only whether the read-only attribute is set)."""
    return mine(st) and (not NATIVE or not st.st_mode & 0o077)


def pread(fd: int, size: int, offset: int) -> bytes:
    """``os.pread`` (Windows has none: there a seek and a read, on a descriptor the caller
    alone uses)."""
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, size)


def pwrite(fd: int, data: bytes, offset: int) -> int:
    """``os.pwrite`` (Windows: a seek and a write, as :func:`pread`)."""
    if hasattr(os, "pwrite"):
        return os.pwrite(fd, data, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.write(fd, data)
