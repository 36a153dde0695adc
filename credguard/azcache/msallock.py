"""The msal-extensions cache lock (``<cache>.lockfile``), taken the way the Azure CLI takes it.

What msal-extensions 1.3.1 ``cache_lock.CrossPlatLock`` does on Linux/macOS, with portalocker
2.10.1 (the pair azure-cli 2.91.0 installs; portalocker comes in through azure-cli-telemetry):

* The lock file is ``<cache file>.lockfile`` beside the cache (az locks
  ``service_principal_entries.json.lockfile`` the same way).
* Acquire, step 1: ``open(lockfile, "x")`` (O_CREAT|O_EXCL, mode 0666 & ~umask, no O_NOFOLLOW)
  is retried every 0.25 s while the file exists. After 5 s an existing file is taken as stale and
  used anyway; only a warning is logged, it is never deleted.
* Step 2: portalocker opens it ``"ab+"`` (O_RDWR|O_APPEND|O_CREAT) and retries
  ``fcntl.flock(fd, LOCK_EX | LOCK_NB)`` every 0.25 s for 5 s, then raises ``LockException``.
* Holding: the file is truncated and ``"<pid> <sys.argv[0]>"`` is written into it.
* Release: ``flock(LOCK_UN)``, close, then ``os.remove(lockfile)`` (ENOENT/EACCES ignored).
* Without portalocker, msal-extensions falls back to ``filelock.CrossPlatLock``: the same
  ``"x"`` creation with the pid written, LockError after 5 s; it never flocks.

So this lock is both: the lock file exists for as long as credguard holds ``flock(LOCK_EX)`` on
it, an existing file is waited on for 5 s before it counts as stale, and release deletes it.
Stricter than msal-extensions: the file is opened O_NOFOLLOW|O_NONBLOCK and must be a regular
file owned by us, it is created 0600, the flock is kept on the first descriptor (no unlocked
window between create and lock), and it only counts once the path still names the locked inode
(a releasing holder deletes it; a stale inode would make two holders). Release deletes the file
only while the path still names our inode. A pure-flock or pure-existence holder of the other
kind past the 5 s stale mark is indistinguishable from a stale file — msal-extensions' own limit.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from credguard.errors import InputError, StateError
from credguard.fs import at, safe
from credguard.paths import platform_name

STALE_AFTER: Final = 5.0  # msal-extensions' wait before it uses an existing lock file anyway
_POLL: Final = 0.05


def _refuse(lockfile: Path, why: str) -> InputError:
    return InputError(f"refusing the MSAL cache lock file {lockfile}: {why}; nothing was changed")


def _check(st: os.stat_result, lockfile: Path) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(lockfile, "it is a symbolic link")
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(lockfile, "it is not a regular file")
    if not at.mine(st):
        raise _refuse(lockfile, f"it is owned by uid {st.st_uid}, not by you")


def _open(lockfile: Path, create_only: bool) -> int | None:
    """An fd on the lock file, or None if ``create_only`` and the file already exists."""
    try:
        fd = os.open(lockfile, safe.LOCK | (os.O_EXCL if create_only else 0), 0o600)
    except FileExistsError:
        with contextlib.suppress(FileNotFoundError):  # released meanwhile: create it next time
            _check(os.lstat(lockfile), lockfile)
        return None
    except OSError as exc:
        why = "it is a symbolic link" if lockfile.is_symlink() else exc.strerror or "error"
        raise _refuse(lockfile, why) from None
    try:
        _check(os.fstat(fd), lockfile)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _names(fd: int, lockfile: Path) -> bool:
    """Whether ``lockfile`` still names the inode ``fd`` is open on."""
    try:
        linked = os.lstat(lockfile)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (linked.st_dev, linked.st_ino) == (mine.st_dev, mine.st_ino)


def _try_lock(fd: int, lockfile: Path) -> bool:
    try:
        import fcntl  # POSIX only; msal_lock refuses Windows before it gets here
    except ImportError:
        raise StateError("no flock on this system: the MSAL cache lock cannot be taken") from None

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    if not _names(fd, lockfile):
        return False  # its holder deleted it on release: lock the file now at that path
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {sys.argv[0]}".encode())  # as msal-extensions does
    return True


def _acquire(lockfile: Path, timeout: float, what: str) -> int:
    start = time.monotonic()
    while True:
        now = time.monotonic()
        fd = _open(lockfile, create_only=now - start < STALE_AFTER)
        if fd is not None:
            try:
                locked = _try_lock(fd, lockfile)
            except BaseException:
                os.close(fd)
                raise
            if locked:
                return fd
            os.close(fd)
        if now - start >= timeout:
            raise StateError(
                f"{what} is locked by another process (is an az command running?); "
                f"nothing was changed (lock file: {lockfile})"
            )
        time.sleep(_POLL)


def _release(fd: int, lockfile: Path) -> None:
    try:
        if _names(fd, lockfile):
            with contextlib.suppress(FileNotFoundError, PermissionError):
                lockfile.unlink()  # msal-extensions deletes it too, before a waiter re-creates it
    finally:
        os.close(fd)  # closing drops the flock


@contextlib.contextmanager
def msal_lock(cache_path: Path, timeout: float = 10.0) -> Iterator[None]:
    """Hold ``<cache_path>.lockfile`` the way msal-extensions does, waiting up to ``timeout``
    seconds; StateError if it stays held (busy), InputError if the lock file is not a plain
    file of ours."""
    lockfile = cache_path.with_name(cache_path.name + ".lockfile")
    if platform_name() == "windows":
        raise StateError(
            f"locking {cache_path.name} the way msal-extensions does is not supported on "
            "Windows yet; nothing was changed"
        )
    fd = _acquire(lockfile, timeout, cache_path.name)
    try:
        yield
    finally:
        _release(fd, lockfile)
