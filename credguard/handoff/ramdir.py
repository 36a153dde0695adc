"""Private directories on a RAM file system, for handing a credential to a child process.

A credential credguard hands out as a file lives only in RAM: ``credguard`` in the user runtime
dir when that is a tmpfs, else this user's private directory in ``/dev/shm``, which another user
cannot squat (:mod:`credguard.fs.shared`: ``credguard-<uid>`` when it is this user's own 0700
directory on the tmpfs, else a random name recorded in the user's state dir). If neither exists,
callers refuse rather than fall back to disk. Each directory is named after the owning process
and holds a lock file whose flock the owner keeps and hands to every child using the directory;
one left behind by a crashed (SIGKILLed) credguard is removed by the next command once no
process holds that lock any more, so a child still running keeps its files.

Every command asks :func:`has_leftovers` first, so importing this module is cheap: a plain
listing answers "no" for nearly every command, and what only checking, making, sweeping or
claiming a directory needs (:mod:`credguard.fs.facts`, :mod:`credguard.fs.lock`,
:mod:`credguard.fs.shared`, shutil) is imported where it is used.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

from credguard import paths
from credguard.errors import StateError
from credguard.fs import at

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true

RAM_FS = frozenset({"tmpfs", "ramfs"})
NO_RAM = ("no RAM file system for credential files (no tmpfs user runtime dir or /dev/shm); "
          "credguard refuses to write the credential to disk")
_SYSTEM = {"macos": "macOS", "windows": "Windows"}


def no_ram() -> str:
    """Why nothing can be written here: :data:`NO_RAM` on Linux; macOS and Windows have no
    RAM-only file system credguard can use at all (README, "Platforms"), which is said
    plainly, with what still works."""
    system = _SYSTEM.get(paths.platform_name())
    if system is None:
        return NO_RAM
    return (f"{system} has no RAM-only file system for credential files, and credguard "
            "refuses to write a credential to disk (`credguard exec --no-file` hands over "
            "the variables alone)")


LOCK_NAME = ".lock"  # credential files never start with a dot (handover.safe_file_name)


if TYPE_CHECKING:
    from typing import NamedTuple

    class RamDir(NamedTuple):
        """A private RAM directory and the fd of its held lock: pass ``lock_fd`` to every
        child that uses the directory's files, and the directory outlives a SIGKILLed
        credguard for as long as one of them runs. (A named tuple made without typing at run
        time: ``exec`` loads this module.)"""

        path: Path
        lock_fd: int
else:
    RamDir = namedtuple("RamDir", ["path", "lock_fd"])


def _owned_private(path: Path) -> bool:
    st = os.lstat(path)
    return stat.S_ISDIR(st.st_mode) and at.private(st)


def ram_base(create: bool = True) -> Path | None:
    """A private directory on a RAM file system for this user, created if needed, or None
    (also None when ``create`` is false and it does not exist yet)."""
    from credguard.fs.facts import fs_type

    for candidate in paths.ram_dir_candidates():
        if not candidate.is_dir() or fs_type(candidate) not in RAM_FS:
            continue
        if candidate == paths.runtime_dir():  # the user's own: a fixed name is safe there
            return _runtime_base(candidate / "credguard", create)
        from credguard.fs import shared

        spot = paths.shared_dir(candidate, "ram")  # a shared tmpfs such as /dev/shm
        return shared.claim(spot) if create else shared.find(spot)
    return None


def _runtime_base(base: Path, create: bool) -> Path | None:
    if not create and not os.path.lexists(base):
        return None
    with contextlib.suppress(FileExistsError):
        base.mkdir(mode=0o700)
    if not _owned_private(base):
        raise StateError(f"refusing to use {base}: it is a link, not yours, or not 0700")
    return base


def has_leftovers(prefix: str) -> bool:
    """Whether this user's RAM directory holds entries named ``prefix*`` (cheap: no creation).

    Every command asks this first, so an unusable RAM directory is "no" here, not an error:
    only the commands that need it (exec, az) refuse it. Only when a plain listing of every
    place the directory can be finds such a name (:func:`listed`) is the directory itself
    found and checked (its file system, owner and mode, the shared tmpfs's record): the same
    answer, without loading what that takes when, as almost always, nothing is left.
    """
    if not any(name.startswith(prefix) for name in listed()):
        return False
    try:
        base = ram_base(create=False)
        return base is not None and any(base.glob(f"{prefix}*"))
    except (StateError, OSError):
        return False


def listed() -> Iterator[str]:
    """The entries of every directory :func:`ram_base` could answer, unchecked: ``credguard``
    in the runtime dir, and in a shared tmpfs this user's preferred name and any name
    :mod:`credguard.fs.shared` may have recorded (``<preferred>-<random>``). A superset, so
    "no such name here" is the same answer as :func:`ram_base`'s directory would give."""
    runtime = paths.runtime_dir()
    for candidate in paths.ram_dir_candidates():
        if candidate == runtime:
            places = [candidate / "credguard"]
        else:
            name = paths.shared_dir(candidate, "ram").name
            try:
                places = [candidate / entry for entry in os.listdir(candidate)
                          if entry == name or entry.startswith(f"{name}-")]
            except OSError:
                continue
        for place in places:
            try:
                yield from os.listdir(place)
            except OSError:  # not there, or not a directory we may list: nothing to sweep
                continue


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, but is someone else's
        return True
    return True


def _stale(entry: Path) -> bool:
    """Whether ``entry`` is a directory whose credguard has exited and whose lock nobody holds
    (a child it started still holds it; the owner's pid also covers the instant between the
    directory's creation and its lock)."""
    owner = entry.name.split("-", 1)[0]
    if not owner.isdigit() or alive(int(owner)) or entry.is_symlink() or not entry.is_dir():
        return False
    from credguard.fs import lock

    try:
        fd = lock.try_exclusive(entry / LOCK_NAME)
    except OSError:  # removed meanwhile by another sweep, or not a lock we made: leave it
        return False
    if fd is None:
        return False
    os.close(fd)  # whoever might still take it was started by a process that is gone
    return True


def sweep(base: Path) -> int:
    """Remove directories left by credguard processes that no longer run and that no child
    they started still uses; returns how many."""
    removed = 0
    for entry in base.iterdir():
        if _stale(entry):
            remove(entry)
            removed += 1
    return removed


@contextlib.contextmanager
def private_ram_dir() -> Iterator[RamDir]:
    """A fresh 0700 directory in RAM with its lock held, removed on exit (also on errors and
    interrupts)."""
    from credguard.fs import lock

    base = ram_base()
    if base is None:
        raise StateError(no_ram())
    sweep(base)
    path = base / f"{os.getpid()}-{os.urandom(8).hex()}"
    path.mkdir(mode=0o700)
    try:
        fd = lock.try_exclusive(path / LOCK_NAME)
        if fd is None:  # pragma: no cover - a fresh random name nobody else knows
            raise StateError(f"{path} is locked by another process")
        try:
            yield RamDir(path, fd)
        finally:
            os.close(fd)
    finally:
        remove(path)


def remove(path: Path) -> None:
    """Remove the private directory ``path`` and all it holds, never following a link. The
    files credguard wrote there (and any the child left beside them) go one by one through the
    directory's descriptor; only a directory the child made inside it needs shutil.rmtree,
    which would cost every ``exec`` its import. Errors are ignored, as the sweep of the next
    command removes what is left."""
    from credguard.fs.flags import DIR

    try:
        fd = os.open(path, DIR)
    except OSError:
        return
    try:
        for entry in os.scandir(fd):
            if not entry.is_dir(follow_symlinks=False):  # a link is removed, never followed
                with contextlib.suppress(OSError):
                    at.unlink(entry.name, dir_fd=fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    try:
        os.rmdir(path)
    except OSError:  # not empty: the child made a directory in it
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def write_private(directory: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to a new 0600 file (never through a link, never over an existing file)."""
    from credguard.fs.atomic import write_new

    return write_new(directory / name, data)
