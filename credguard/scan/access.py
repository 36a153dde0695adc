"""Whether this process may read a root, and what the user must grant when it may not.

On macOS the folders the system guards refuse a process that was not granted them with EPERM,
whatever their modes say: Downloads, Desktop and Documents need the user's consent, the Trash
Full Disk Access, each granted to the interpreter that runs the daemon. Elsewhere a refusal is
the file modes' (EACCES). Refused, a root is "unreadable" to every scan: the daemon reports it
(``credguard status``) and ``credguard doctor`` says it, so downloads never go unprotected
silently.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from credguard import paths

DENIED = frozenset({errno.EPERM, errno.EACCES})
MACOS_GRANT = ("System Settings > Privacy & Security > Files and Folders "
               "(Downloads/Desktop/Documents) or Full Disk Access (Trash)")


def denied(path: Path | str) -> bool:
    """True when opening the directory ``path`` to list it fails for lack of permission
    (EPERM, EACCES); a missing root, or one that is not a directory, is not refused."""
    try:
        with os.scandir(path):
            pass
    except OSError as exc:
        return exc.errno in DENIED
    return False


def interpreter() -> str:
    """The interpreter running this process, links resolved: the program a macOS grant names."""
    return os.path.realpath(sys.executable)


def advice(path: Path | str) -> str:
    """What to say of a refused root: on macOS, what to grant to which interpreter."""
    if paths.platform_name() == "macos":
        return (f"cannot read {path}: permission denied; allow it in {MACOS_GRANT} for "
                f"{interpreter()}, then run: credguard restart")
    return f"cannot read {path}: permission denied"


def refused(roots: Iterable[paths.Root]) -> list[str]:
    """:func:`advice` for each of ``roots`` this process may not read, in their order."""
    return [advice(root.path) for root in roots if denied(root.path)]
