"""The daemon's own configuration files (the user config, the managed policy), watched so a
change reaches the running daemon without ``credguard reload``.

They are watched by their metadata, once a second on the daemon's main loop, not by inotify: a
few ``stat`` calls see every way a file changes (an edit in place, an editor's rename over it,
a deletion, a link retargeted, a missing directory made later, the managed policy's root-owned
directory) with no watch to re-arm and no thread. A change is reported once the files have been
quiet for :data:`QUIET` seconds, so a file deleted and written again is read once, whole.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

QUIET = 0.5  # seconds the files must stay unchanged before they are read

_Stat = tuple[int, int, int, int, int, int] | None
Signature = tuple[_Stat, ...]


def _stat(path: Path, follow: bool) -> _Stat:
    try:
        st = os.stat(path, follow_symlinks=follow)  # metadata only: a FIFO is never opened
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def signature(files: Sequence[Path]) -> Signature:
    """What changes when any of ``files`` does: each one's own entry (a link retargeted or
    replaced) and what it leads to (the linked file edited)."""
    return tuple(_stat(path, follow) for path in files for follow in (False, True))


class ConfigWatch:
    """Reports, once, that ``files`` changed and have since been quiet for ``quiet`` seconds."""

    def __init__(self, files: Sequence[Path], quiet: float = QUIET,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.files = tuple(files)
        self._quiet, self._clock = quiet, clock
        self._seen = signature(self.files)
        self._changed_at: float | None = None

    def mark(self) -> None:
        """The files are being read now: only a change after this counts."""
        self._seen, self._changed_at = signature(self.files), None

    def changed(self) -> bool:
        """True once the files changed and then stayed unchanged for the quiet time."""
        now, current = self._clock(), signature(self.files)
        if current != self._seen:
            self._seen, self._changed_at = current, now
            return False
        if self._changed_at is not None and now - self._changed_at >= self._quiet:
            self._changed_at = None
            return True
        return False
