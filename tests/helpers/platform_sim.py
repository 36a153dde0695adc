"""A simulation of Windows (``nt``) and macOS (``darwin``) on Linux, for the platform
conformance suite (issue 19; tests/platform).

**This is a simulation, not the platform.** No Windows or Mac can run here. :func:`install`
changes this process so that credguard, imported afterwards, meets the target system's Python:

- the modules the target lacks cannot be imported (``fcntl``, ``termios``, ``pwd``, ``grp``,
  ``resource`` on ``nt``);
- the ``os``, ``socket``, ``signal`` names it lacks are gone (``os.getuid``, ``os.fchmod``,
  ``O_NOFOLLOW``, ``O_DIRECTORY``, ``AF_UNIX``, ``SIGHUP``, ``SIGKILL`` on ``nt``; Linux-only
  names such as ``O_PATH``, ``SO_PEERCRED``, ``memfd_create`` on ``darwin``) and the ones it has
  instead exist (``O_BINARY`` and ``msvcrt`` on ``nt``, ``F_GETPATH``/``F_FULLFSYNC`` on
  ``darwin``);
- ``sys.platform`` is the target's, so credguard's dispatchers (:mod:`credguard.paths`) choose
  the target's code;
- what the target answers instead, where Linux answers otherwise: ``socket.socketpair`` over
  loopback TCP (as CPython does on Windows), ``msvcrt``'s locks (by ``fcntl``), macOS'
  ``getsockopt(SOL_LOCAL, LOCAL_PEERCRED)`` as a ``struct xucred`` (from ``SO_PEERCRED``) and
  ``F_GETPATH``/``F_FULLFSYNC`` (from ``/proc`` and ``fsync``; the full flushes are counted in
  :data:`FULL_FSYNCS`), and no ``/proc`` or ``/dev/shm`` for credguard on macOS;
- on ``nt``, the Microsoft C runtime's behaviours, for credguard's own calls (a call whose
  caller is a ``credguard`` module; the standard library and third-party packages already
  imported were set up for Linux and keep Linux's ``os``): ``dir_fd=`` raises
  NotImplementedError; opening a directory fails with EACCES; a file opened without
  ``O_BINARY`` would be in text mode (LF written as CRLF), so such an open raises
  :class:`TextModeOpen` (never caught by credguard, it fails the test loudly); ``os.rename``
  does not replace an existing file; ``os.scandir``/``os.listdir`` take no descriptor; every
  ``stat`` says uid 0 and mode 0777/0666 (0555/0444 read-only), as Windows' does.

What cannot be simulated is said so: Win32 itself. credguard's Windows file layer calls
``NtCreateFile``/``SetFileInformationByHandle`` through :mod:`credguard.fs.win32`, whose
:data:`~credguard.fs.win32.KERNEL` this module replaces with :class:`SimKernel`, the same
operations done with Linux's ``openat`` (no reparse point followed becomes ``O_NOFOLLOW``,
delete-by-handle becomes an unlink checked against the handle's file id). File paths keep
``/`` (the path syntax is not simulated). watchdog falls back to polling (its native
observers cannot load), keyring to its fail backend (credguard's passphrase keystore is used),
desktop-notifier to none.

Run as ``python tests/helpers/platform_sim.py nt|darwin ARGS...``: the simulation, then
``credguard ARGS`` (``--script FILE ARGS...`` runs a Python file instead).
"""

from __future__ import annotations

# what the standard library needs from the real platform, imported before anything changes
import asyncio  # noqa: F401
import ctypes
import errno
import getpass  # noqa: F401
import multiprocessing.connection  # noqa: F401
import os
import runpy
import selectors  # noqa: F401
import shutil  # noqa: F401
import signal
import socket
import stat
import struct
import subprocess  # noqa: F401
import sys
import tempfile  # noqa: F401
import types
import urllib.request  # noqa: F401
import uuid  # noqa: F401
from collections.abc import Callable
from typing import Any

import psutil  # noqa: F401  # a platform C extension: loaded for Linux before the switch

TARGETS = ("nt", "darwin")

# -- nt ------------------------------------------------------------------------------------

NT_MISSING_MODULES = ("fcntl", "termios", "pwd", "grp", "resource", "tty", "pty", "syslog",
                      "posix", "crypt", "spwd")
NT_MISSING_OS = (
    "getuid", "geteuid", "getgid", "getegid", "getgroups", "setuid", "seteuid", "setgid",
    "fchmod", "fchown", "chown", "lchown", "lchmod", "killpg", "getpgid", "getpgrp", "setsid",
    "setpgid", "getsid", "mkfifo", "mknod", "statvfs", "fstatvfs", "fork", "forkpty", "openpty",
    "nice", "getloadavg", "uname", "sync", "fdatasync", "pipe2", "sched_getaffinity",
    "posix_fadvise", "posix_fallocate", "memfd_create", "pread", "pwrite", "sendfile",
    "getxattr", "setxattr", "listxattr", "removexattr", "wait3", "wait4", "WNOHANG", "ttyname",
    "ctermid", "lockf", "major", "minor", "makedev", "sysconf", "fpathconf", "pathconf",
    "confstr", "readv", "writev", "chroot", "initgroups", "getpriority", "setpriority",
    "O_NOFOLLOW", "O_DIRECTORY", "O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC", "O_SYNC", "O_DSYNC",
    "O_ASYNC", "O_NOATIME", "O_PATH", "O_TMPFILE", "O_DIRECT", "O_LARGEFILE", "O_NDELAY",
    "O_RSYNC", "O_ACCMODE", "getresuid", "getresgid", "pidfd_open", "eventfd", "splice",
    "copy_file_range", "get_blocking", "set_blocking", "login_tty", "grantpt",
)
# Windows' own open flags; distinct bits unused by Linux's, as the simulation keeps Linux's
# values for the flags both have
NT_OS_FLAGS = {"O_BINARY": 1 << 26, "O_TEXT": 1 << 27, "O_NOINHERIT": 1 << 28,
               "O_TEMPORARY": 1 << 29, "O_SHORT_LIVED": 1 << 30, "O_RANDOM": 1 << 24,
               "O_SEQUENTIAL": 1 << 25}
NT_SIGNALS = {"SIGABRT", "SIGFPE", "SIGILL", "SIGINT", "SIGSEGV", "SIGTERM", "SIG_DFL",
              "SIG_IGN", "NSIG", "Signals", "Handlers", "Sigmasks"}
NT_MISSING_SIGNAL_FUNCS = ("pthread_sigmask", "pthread_kill", "setitimer", "getitimer",
                           "alarm", "pause", "siginterrupt", "sigwait", "sigwaitinfo",
                           "sigtimedwait", "sigpending", "ITIMER_REAL")
NT_MISSING_SOCKET = ("AF_UNIX", "SO_PEERCRED", "SCM_RIGHTS", "SCM_CREDENTIALS", "sethostname",
                     "CMSG_LEN", "CMSG_SPACE", "send_fds", "recv_fds")

# -- darwin --------------------------------------------------------------------------------

DARWIN_MISSING_MODULES = ("spwd", "crypt")
DARWIN_MISSING_OS = (
    "O_PATH", "O_TMPFILE", "O_DIRECT", "O_NOATIME", "O_LARGEFILE", "O_RSYNC", "memfd_create",
    "posix_fadvise", "posix_fallocate", "pipe2", "sched_getaffinity", "sched_setaffinity",
    "getxattr", "setxattr", "listxattr", "removexattr", "pidfd_open", "eventfd", "splice",
    "copy_file_range", "getresuid", "getresgid", "setresuid", "setresgid", "fdatasync",
    "POSIX_FADV_DONTNEED",
)
DARWIN_MISSING_SOCKET = ("SO_PEERCRED", "SCM_CREDENTIALS", "SO_PASSCRED", "AF_NETLINK",
                         "AF_PACKET")
DARWIN_MISSING_FCNTL = ("F_OFD_SETLK", "F_OFD_SETLKW", "F_OFD_GETLK", "F_SETLEASE",
                        "F_GETLEASE", "F_NOTIFY", "F_SETPIPE_SZ", "F_GETPIPE_SZ", "F_ADD_SEALS",
                        "F_GET_SEALS", "F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW",
                        "F_SEAL_WRITE", "DN_ACCESS", "DN_MODIFY", "DN_CREATE", "DN_DELETE")
DARWIN_F_GETPATH, DARWIN_F_FULLFSYNC = 50, 51
DARWIN_MISSING_SIGNALS = ("SIGRTMIN", "SIGRTMAX", "SIGPWR", "SIGSTKFLT", "SIGPOLL", "SIGCLD")

_real: dict[str, Any] = {}
FULL_FSYNCS: list[int] = []  # darwin: the descriptors F_FULLFSYNC was asked for
_FILE_MODE_RW, _FILE_MODE_RO = 0o666, 0o444


class TextModeOpen(AssertionError):
    """credguard opened a file without ``O_BINARY``: on Windows its bytes would be translated
    (LF as CRLF written, CRLF as LF read). An AssertionError, so nothing in credguard catches
    it as an OSError."""


def _from_credguard(depth: int = 2) -> bool:
    """Whether the caller ``depth`` frames up is a credguard module."""
    name = sys._getframe(depth).f_globals.get("__name__", "")
    return isinstance(name, str) and (name == "credguard" or name.startswith("credguard."))


def _no_dir_fd(name: str, dir_fd: object, *extra: object) -> None:
    if dir_fd is not None or any(e is not None for e in extra):
        raise NotImplementedError(f"{name}: dir_fd unavailable on this platform")


def _windows_stat(st: os.stat_result) -> os.stat_result:
    """``st`` as Windows reports it: uid and gid 0, the mode from the read-only attribute."""
    kind = stat.S_IFMT(st.st_mode)
    writable = bool(st.st_mode & stat.S_IWUSR)
    if kind == stat.S_IFDIR:
        perm = 0o777 if writable else 0o555
    elif kind == stat.S_IFLNK:
        perm = 0o777
    else:
        perm = _FILE_MODE_RW if writable else _FILE_MODE_RO
    values = list(st[:10])
    values[0] = kind | perm
    values[4] = values[5] = 0  # st_uid, st_gid
    extra = {"st_atime": st.st_atime, "st_mtime": st.st_mtime, "st_ctime": st.st_ctime,
             "st_atime_ns": st.st_atime_ns, "st_mtime_ns": st.st_mtime_ns,
             "st_ctime_ns": st.st_ctime_ns}
    return os.stat_result(values, extra)


class _Entry:
    """A ``DirEntry`` whose ``stat`` is Windows' (:func:`_windows_stat`)."""

    def __init__(self, entry: os.DirEntry[str]) -> None:
        self._entry = entry
        self.name, self.path = entry.name, entry.path

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self._entry.is_dir(follow_symlinks=follow_symlinks)

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return self._entry.is_file(follow_symlinks=follow_symlinks)

    def is_symlink(self) -> bool:
        return self._entry.is_symlink()

    def is_junction(self) -> bool:
        return False

    def inode(self) -> int:
        return self._entry.inode()

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        return _windows_stat(self._entry.stat(follow_symlinks=follow_symlinks))

    def __fspath__(self) -> str:
        return self.path


class _Scandir:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __iter__(self) -> _Scandir:
        return self

    def __next__(self) -> _Entry:
        return _Entry(next(self._inner))

    def __enter__(self) -> _Scandir:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.close()

    def close(self) -> None:
        self._inner.close()


def _install_nt_os() -> None:
    real_open, real_stat, real_lstat, real_fstat = os.open, os.stat, os.lstat, os.fstat
    real_rename, real_scandir, real_listdir = os.rename, os.scandir, os.listdir
    real_unlink, real_mkdir, real_rmdir, real_chmod = os.unlink, os.mkdir, os.rmdir, os.chmod
    real_utime = os.utime
    binary, noinherit = NT_OS_FLAGS["O_BINARY"], NT_OS_FLAGS["O_NOINHERIT"]
    windows_only = sum(NT_OS_FLAGS.values())
    _real.update(open=real_open, stat=real_stat, lstat=real_lstat, fstat=real_fstat,
                 rename=real_rename, unlink=real_unlink, scandir=real_scandir)

    def nt_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        mine = _from_credguard()
        if mine:
            _no_dir_fd("open", dir_fd)
        cloexec = _REAL["O_CLOEXEC"] if flags & noinherit else 0
        fd = real_open(path, (flags & ~windows_only) | cloexec, mode, dir_fd=dir_fd)
        if mine and stat.S_ISDIR(real_fstat(fd).st_mode):
            os.close(fd)
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        if mine and not flags & binary:
            os.close(fd)
            raise TextModeOpen(f"os.open({path!r}) without O_BINARY: text mode on Windows")
        return fd

    def nt_stat(path: Any, *, dir_fd: int | None = None, follow_symlinks: bool = True
                ) -> os.stat_result:
        if _from_credguard():
            _no_dir_fd("stat", dir_fd)
        return _windows_stat(real_stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks))

    def nt_lstat(path: Any, *, dir_fd: int | None = None) -> os.stat_result:
        if _from_credguard():
            _no_dir_fd("lstat", dir_fd)
        return _windows_stat(real_lstat(path, dir_fd=dir_fd))

    def nt_fstat(fd: int) -> os.stat_result:
        return _windows_stat(real_fstat(fd))

    def nt_rename(src: Any, dst: Any, *, src_dir_fd: int | None = None,
                  dst_dir_fd: int | None = None) -> None:
        if _from_credguard():
            _no_dir_fd("rename", src_dir_fd, dst_dir_fd)
            if os.path.lexists(dst):  # Windows' rename never replaces (os.replace does)
                raise FileExistsError(errno.EEXIST, "Cannot create a file when that file "
                                      "already exists", os.fspath(src), None, os.fspath(dst))
        real_rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    def nt_scandir(path: Any = ".") -> Any:
        if isinstance(path, int) and _from_credguard():
            raise TypeError("scandir: path should be string, bytes, os.PathLike or None, "
                            "not int")
        return _Scandir(real_scandir(path))

    def nt_listdir(path: Any = ".") -> list[Any]:
        if isinstance(path, int) and _from_credguard():
            raise TypeError("listdir: path should be string, bytes, os.PathLike or None, "
                            "not int")
        return real_listdir(path)

    def with_no_dir_fd(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, dir_fd: int | None = None, **kwargs: Any) -> Any:
            if _from_credguard():
                _no_dir_fd(name, dir_fd)
            return real(*args, dir_fd=dir_fd, **kwargs)
        call.__name__ = name
        return call

    def nt_chmod(path: Any, mode: int, *, dir_fd: int | None = None,
                 follow_symlinks: bool = True) -> None:
        if _from_credguard():
            _no_dir_fd("chmod", dir_fd)
            if isinstance(path, int):
                raise TypeError("chmod: path should be string, bytes or os.PathLike, not int")
            # Windows keeps only the read-only attribute
            mode = _FILE_MODE_RW if mode & stat.S_IWRITE else _FILE_MODE_RO
            if stat.S_ISDIR(real_stat(path).st_mode):
                mode |= 0o111
        real_chmod(path, mode, dir_fd=dir_fd, follow_symlinks=follow_symlinks)

    os.open = nt_open
    os.stat, os.lstat, os.fstat = nt_stat, nt_lstat, nt_fstat
    os.rename, os.scandir, os.listdir = nt_rename, nt_scandir, nt_listdir
    os.unlink = os.remove = with_no_dir_fd("unlink", real_unlink)
    os.mkdir = with_no_dir_fd("mkdir", real_mkdir)
    os.rmdir = with_no_dir_fd("rmdir", real_rmdir)
    os.utime = with_no_dir_fd("utime", real_utime)
    os.chmod = nt_chmod
    for name in NT_MISSING_OS:
        if hasattr(os, name):
            delattr(os, name)
    for name, value in NT_OS_FLAGS.items():
        setattr(os, name, value)
    os.supports_dir_fd = set()
    os.supports_fd = {os.stat, os.truncate}
    os.supports_follow_symlinks = {os.stat}
    os.supports_effective_ids = set()


def _install_msvcrt() -> None:
    """A stand-in for ``msvcrt``'s byte-range locks and handle functions (fcntl underneath:
    taken before ``fcntl`` is removed)."""
    import fcntl

    module = types.ModuleType("msvcrt")
    module.__doc__ = "simulated msvcrt (tests/helpers/platform_sim.py)"
    module.LK_UNLCK, module.LK_LOCK, module.LK_NBLCK, module.LK_RLCK, module.LK_NBRLCK = (
        0, 1, 2, 3, 4)

    def locking(fd: int, mode: int, nbytes: int) -> None:
        if mode == module.LK_UNLCK:
            fcntl.lockf(fd, fcntl.LOCK_UN, nbytes, 0, os.SEEK_CUR)
            return
        op = fcntl.LOCK_EX if mode in (module.LK_LOCK, module.LK_NBLCK) else fcntl.LOCK_SH
        try:
            fcntl.lockf(fd, op | fcntl.LOCK_NB, nbytes, 0, os.SEEK_CUR)
        except BlockingIOError:
            raise PermissionError(errno.EACCES, "Permission denied") from None

    module.locking = locking
    module.get_osfhandle = lambda fd: fd
    module.open_osfhandle = lambda handle, flags: handle
    module.setmode = lambda fd, flags: NT_OS_FLAGS["O_BINARY"]
    sys.modules["msvcrt"] = module


def _loopback_socketpair(family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
                         proto: int = 0) -> tuple[socket.socket, socket.socket]:
    """Windows' ``socket.socketpair``: CPython there emulates it with a loopback TCP pair."""
    with socket.socket(socket.AF_INET, type, proto) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        a = socket.socket(socket.AF_INET, type, proto)
        a.connect(listener.getsockname())
        b, _ = listener.accept()
    return a, b


def _install_nt() -> None:
    socket.socketpair = _loopback_socketpair  # type: ignore[assignment]
    _install_msvcrt()
    _install_nt_os()
    for name in NT_MISSING_MODULES:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    for name in NT_MISSING_SOCKET:
        if hasattr(socket, name):
            delattr(socket, name)
    keep = NT_SIGNALS
    for name in list(vars(signal)):
        if (name.startswith("SIG") and name not in keep) or name in NT_MISSING_SIGNAL_FUNCS:
            delattr(signal, name)
    signal.SIGBREAK = 21  # type: ignore[attr-defined]
    signal.CTRL_C_EVENT, signal.CTRL_BREAK_EVENT = 0, 1  # type: ignore[attr-defined]
    real_cdll = ctypes.CDLL

    class NtCDLL(real_cdll):  # type: ignore[misc,valid-type]
        """``ctypes.CDLL(None)`` is a TypeError on Windows; no libc, no POSIX libraries."""

        def __init__(self, name: str | None, *args: Any, **kwargs: Any) -> None:
            if name is None:
                raise TypeError("argument of type 'NoneType' is not iterable")
            if _from_credguard(3):
                raise OSError(errno.ENOENT, f"could not find module {name!r}")
            super().__init__(name, *args, **kwargs)

    ctypes.CDLL = NtCDLL  # type: ignore[misc]
    sys.platform = "win32"
    import platformdirs.windows  # its Windows class, now; the shell folders from the environment

    platformdirs.windows._RESOLVE_WIN_FOLDER = platformdirs.windows.get_win_folder_from_env_vars
    from credguard.fs import win32  # the one module that calls Win32: its kernel simulated

    win32.KERNEL = SimKernel()


def _install_darwin() -> None:
    import fcntl

    real_fcntl = fcntl.fcntl

    def darwin_fcntl(fd: int, cmd: int, arg: Any = 0) -> Any:
        if cmd == DARWIN_F_GETPATH:  # the path of an open descriptor: Linux's /proc link
            path = os.readlink(f"/proc/self/fd/{fd}").encode()
            return path + b"\0" * (max(len(arg), len(path) + 1) - len(path))
        if cmd == DARWIN_F_FULLFSYNC:
            FULL_FSYNCS.append(fd)
            os.fsync(fd)
            return 0
        return real_fcntl(fd, cmd, arg)

    fcntl.fcntl = darwin_fcntl
    fcntl.F_GETPATH, fcntl.F_FULLFSYNC = DARWIN_F_GETPATH, DARWIN_F_FULLFSYNC  # type: ignore
    for name in DARWIN_MISSING_FCNTL:
        if hasattr(fcntl, name):
            delattr(fcntl, name)
    for name in DARWIN_MISSING_MODULES:
        sys.modules[name] = None  # type: ignore[assignment]
    for name in DARWIN_MISSING_OS:
        if hasattr(os, name):
            delattr(os, name)
    so_peercred = socket.SO_PEERCRED
    real_getsockopt = socket.socket.getsockopt

    def darwin_getsockopt(self: socket.socket, level: int, option: int, *size: int) -> Any:
        """macOS' ``getsockopt(SOL_LOCAL, LOCAL_PEERCRED)``: a ``struct xucred`` (version 0,
        uid, ngroups, 16 groups), made from Linux's ``SO_PEERCRED``."""
        if (level, option) == (0, 0x001) and self.family == getattr(socket, "AF_UNIX", -1):
            _pid, uid, gid = struct.unpack("=iII", real_getsockopt(
                self, socket.SOL_SOCKET, so_peercred, 12))
            return struct.pack("=IIh16I", 0, uid, 1, gid, *([0] * 15)).ljust(76, b"\0")
        return real_getsockopt(self, level, option, *size)

    socket.socket.getsockopt = darwin_getsockopt  # type: ignore[method-assign]
    for name in DARWIN_MISSING_SOCKET:
        if hasattr(socket, name):
            delattr(socket, name)
    socket.LOCAL_PEERCRED = 0x001  # type: ignore[attr-defined]
    for name in DARWIN_MISSING_SIGNALS:
        if hasattr(signal, name):
            delattr(signal, name)
    real_open = os.open

    def darwin_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None
                    ) -> int:
        if _from_credguard() and os.fspath(path).startswith(("/proc/", "/dev/shm")):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    os.open = darwin_open
    os.supports_dir_fd = {*os.supports_dir_fd, darwin_open}  # as the real os.open
    os.supports_fd = {*os.supports_fd, darwin_open}
    sys.platform = "darwin"


class SimKernel:
    """Stands in for :class:`credguard.fs.win32.Win32Kernel` (Win32 cannot run here). Each
    operation does with Linux's ``openat`` what the Win32 one does: the same arguments, the
    same results, POSIX errno values for the failures credguard handles."""

    def open_at(self, dir_fd: int | None, name: str, access: int, disposition: int,
                directory: bool | None, reparse_ok: bool) -> int:
        from credguard.fs import win32

        reading, writing = access & win32.READ_DATA, access & win32.WRITE_DATA
        if writing:
            flags = _REAL["O_RDWR"] if reading else _REAL["O_WRONLY"]
        else:  # reading, or only attributes or delete: Linux's O_PATH reads nothing
            flags = _REAL["O_RDONLY"] if reading else _REAL["O_PATH"]
        flags |= _REAL["O_CLOEXEC"] | _REAL["O_NOFOLLOW"] | _REAL["O_NONBLOCK"]
        if disposition == win32.CREATE_NEW:
            flags |= _REAL["O_CREAT"] | _REAL["O_EXCL"]
        elif disposition == win32.OPEN_ALWAYS:
            flags |= _REAL["O_CREAT"]
        if directory:
            flags |= _REAL["O_DIRECTORY"]
        try:
            fd = _real["open"](name, flags, 0o666, dir_fd=dir_fd)
        except OSError as exc:
            link = exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and stat.S_ISLNK(
                _real["stat"](name, dir_fd=dir_fd, follow_symlinks=False).st_mode))
            if not link:
                raise
            if not reparse_ok:
                raise OSError(errno.ELOOP, "a reparse point", name) from None
            return _real["open"](name, _REAL["O_PATH"] | _REAL["O_NOFOLLOW"]  # type: ignore
                                 | _REAL["O_CLOEXEC"], dir_fd=dir_fd)
        mode = _real["fstat"](fd).st_mode
        if stat.S_ISLNK(mode) and not reparse_ok:
            os.close(fd)
            raise OSError(errno.ELOOP, "a reparse point", name)
        if directory is False and stat.S_ISDIR(mode):
            os.close(fd)
            raise PermissionError(errno.EACCES, "Access is denied (a directory)", name)
        return fd  # type: ignore[no-any-return]

    def fstat(self, fd: int) -> os.stat_result:
        return _windows_stat(_real["fstat"](fd))

    def dispose(self, fd: int, dir_fd: int | None, name: str) -> None:
        self._same(fd, dir_fd, name)
        _real["unlink"](name, dir_fd=dir_fd)

    def rename(self, fd: int, dir_fd: int | None, name: str, new: str, replace: bool) -> None:
        self._same(fd, dir_fd, name)
        if not replace and _exists(dir_fd, new):
            raise FileExistsError(errno.EEXIST, "exists", new)
        _real["rename"](name, new, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)

    @staticmethod
    def _same(fd: int, dir_fd: int | None, name: str) -> None:
        """Win32 acts on the handle's file; here the name is what is changed, so the
        simulation checks that the name still is that file (else the swap is refused, as a
        handle-based call could not be fooled)."""
        held = _real["fstat"](fd)
        now = _real["stat"](name, dir_fd=dir_fd, follow_symlinks=False)
        if (held.st_dev, held.st_ino) != (now.st_dev, now.st_ino):
            raise FileNotFoundError(errno.ENOENT, "the handle's file is gone", name)


def _exists(dir_fd: int | None, name: str) -> bool:
    try:
        _real["stat"](name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


# Linux's open flags, taken before the simulation removes some from os
_REAL = {name: getattr(os, name) for name in (
    "O_RDONLY", "O_WRONLY", "O_RDWR", "O_PATH", "O_CLOEXEC", "O_NOFOLLOW", "O_NONBLOCK",
    "O_CREAT", "O_EXCL", "O_DIRECTORY")}


def install(target: str) -> None:
    """Make this process look like ``target`` (``nt`` or ``darwin``) to credguard, which must
    not have been imported yet."""
    if target not in TARGETS:
        raise ValueError(f"no simulation of {target!r}")
    if any(name == "credguard" or name.startswith("credguard.") for name in sys.modules):
        raise RuntimeError("install() before credguard is imported")
    if target == "nt":
        _install_nt()
    else:
        _install_darwin()


def main(argv: list[str]) -> int:
    target, *rest = argv
    install(target)
    if rest[:1] == ["--script"]:
        sys.modules.setdefault("platform_sim", sys.modules[__name__])  # for the script
        sys.argv = rest[1:]
        runpy.run_path(rest[1], run_name="__main__")
        return 0
    from credguard.cli import main as credguard_main

    return credguard_main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
