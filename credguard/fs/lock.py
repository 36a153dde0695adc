"""Cross-process exclusive locks on a lock file (flock on POSIX, msvcrt on Windows)."""

from __future__ import annotations

import contextlib
import importlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from credguard.errors import StateError
from credguard.fs.flags import LOCK


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


fcntl = _optional("fcntl")  # POSIX; None on Windows, where msvcrt locks instead


def _try_lock(fd: int) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    import msvcrt  # pragma: no cover - Windows only

    try:  # pragma: no cover
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
    except OSError:  # pragma: no cover
        return False
    return True  # pragma: no cover


@contextlib.contextmanager
def exclusive(path: Path, timeout: float = 30.0, what: str = "the vault") -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created 0600) or raise StateError after ``timeout``.

    The lock dies with the process, so a crashed holder never blocks anyone.
    """
    fd = os.open(path, LOCK, 0o600)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise StateError(f"{what} is busy: another credguard process holds {path}")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def try_exclusive(path: str | os.PathLike[str]) -> int | None:
    """Take an exclusive lock on ``path`` without waiting: the open fd (close it to release),
    or None if another process holds it."""
    fd = os.open(path, LOCK, 0o600)
    if _try_lock(fd):
        return fd
    os.close(fd)
    return None
