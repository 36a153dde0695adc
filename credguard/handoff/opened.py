"""Open copies (``credguard open``): a vault item as a file in RAM, for a limited time.

An open copy is a directory ``open-<expiry>-<item id>-<random>`` in this user's private RAM
directory (:func:`credguard.handoff.ramdir.ram_base`: a tmpfs, never a disk), holding the item
under its original file name (made safe: :func:`credguard.handoff.handover.safe_file_name`),
0600. Its expiry (whole seconds since the epoch) is in its name, so whoever looks next — the
command that made it, waiting in the foreground; the daemon's timer; any later command, which
sweeps what is due — removes it without asking anyone, and a credguard killed meanwhile leaves
it behind only until then. Exec's own directories (``<pid>-<random>``) are another matter
(:func:`credguard.handoff.ramdir.sweep`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from credguard.handoff import ramdir
from credguard.handoff.handover import safe_file_name

PREFIX = "open-"
DEFAULT_SECONDS = 5 * 60
MAX_SECONDS = 60 * 60


class Copy:
    """One open copy: its directory, the item it holds and when it expires."""

    __slots__ = ("directory", "expires", "item_id")

    def __init__(self, directory: Path, item_id: str, expires: int) -> None:
        self.directory = directory
        self.item_id = item_id
        self.expires = expires

    @property
    def file(self) -> Path | None:
        """The file in it (None once it is gone)."""
        try:
            return next(p for p in self.directory.iterdir() if not p.name.startswith("."))
        except (OSError, StopIteration):
            return None


def parse(name: str, directory: Path) -> Copy | None:
    """The open copy a directory entry names, or None if it names none."""
    if not name.startswith(PREFIX):
        return None
    parts = name[len(PREFIX):].split("-")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isalnum():
        return None
    return Copy(directory / name, parts[1], int(parts[0]))


def place(base: Path, item_id: str, name: str, data: bytes, seconds: int) -> Copy:
    """Write ``data`` as ``name`` into a new open copy in ``base`` that expires in
    ``seconds``."""
    expires = int(time.time()) + seconds
    directory = base / f"{PREFIX}{expires}-{item_id}-{os.urandom(4).hex()}"
    directory.mkdir(mode=0o700)
    try:
        ramdir.write_private(directory, safe_file_name(name), data)
    except BaseException:
        ramdir.remove(directory)
        raise
    return Copy(directory, item_id, expires)


def copies(base: Path) -> list[Copy]:
    """Every open copy in ``base``, soonest to expire first."""
    try:
        names = os.listdir(base)
    except OSError:
        return []
    found = [c for c in (parse(n, base) for n in names) if c is not None]
    return sorted(found, key=lambda c: c.expires)


def due(base: Path, now: float | None = None) -> list[Copy]:
    """The open copies in ``base`` whose time is up."""
    now = time.time() if now is None else now
    return [c for c in copies(base) if c.expires <= now]


def close(copy: Copy) -> bool:
    """Remove the copy; False if it was gone already."""
    if not copy.directory.is_dir():
        return False
    ramdir.remove(copy.directory)
    return True
