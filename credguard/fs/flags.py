"""The open flags: every ``os.open`` in credguard takes its flags from here, through
:mod:`credguard.fs.safe`, which re-exports them, or directly where that module's imports would
cost too much (dataclasses): ``credguard check``'s quick path (:mod:`credguard.cli.quick`), and
what ``exec`` needs for its RAM directory (:mod:`.lock`, :mod:`.facts`, :mod:`.atomic`). Only
``os`` is imported.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    from typing import Final

# getattr(..., 0): a flag the platform lacks (Windows) is no flag. Plain module constants, no
# helper function: they are fixed at import, and tests check the values themselves.
NOFOLLOW: Final[int] = getattr(os, "O_NOFOLLOW", 0)
DIRECTORY: Final[int] = getattr(os, "O_DIRECTORY", 0)
CLOEXEC: Final[int] = getattr(os, "O_CLOEXEC", 0)
# Every file open: never follow a final symlink, never block on a FIFO or device (a FIFO opened
# for writing with no reader fails with ENXIO), never acquire a controlling terminal, never leak
# into a child, never translate newlines (Windows opens text mode without O_BINARY).
BASE: Final[int] = (NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | CLOEXEC
                    | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0))
READ: Final = os.O_RDONLY | BASE
WRITE: Final = os.O_WRONLY | BASE
READ_WRITE: Final = os.O_RDWR | BASE
NEW_FILE: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | BASE  # FileExistsError if it exists
LOCK: Final = os.O_RDWR | os.O_CREAT | BASE
DIR: Final = os.O_RDONLY | DIRECTORY | NOFOLLOW | CLOEXEC
# A directory opened only to fsync it: following a symlink there changes nothing.
SYNC_DIR: Final = os.O_RDONLY | DIRECTORY | CLOEXEC
AT_SUPPORTED: Final = os.open in os.supports_dir_fd
