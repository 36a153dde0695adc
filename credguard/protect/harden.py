"""The ``harden`` action for live tool caches: the file 0600 and its directory 0700.

Deleting a live Azure CLI/PowerShell/azd cache would log the user out, so by default credguard
only makes sure no other local user can read it. Links are never followed; only files and
directories the user owns are changed.
"""

from __future__ import annotations

import os
import stat

from credguard.fs import read
from credguard.fs.read import Unreadable


def _tighten(fd: int, mode: int) -> bool:
    st = os.fstat(fd)
    if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & ~mode == 0:
        return False
    os.fchmod(fd, stat.S_IMODE(st.st_mode) & mode)
    return True


def harden(path: str) -> str:
    """Remove group/other permissions from a cache file and its directory; says what changed."""
    directory, name = os.path.split(os.path.abspath(path))
    try:
        dir_fd = read.open_dir(directory)
    except Unreadable as exc:
        return f"not hardened: {exc.reason}"
    try:
        fd, _st = read.open_regular(name, dir_fd)
    except Unreadable as exc:
        os.close(dir_fd)
        return f"not hardened: {exc.reason}"
    try:
        changed = [what for what, did in (("file 0600", _tighten(fd, 0o600)),
                                          ("directory 0700", _tighten(dir_fd, 0o700))) if did]
    finally:
        os.close(fd)
        os.close(dir_fd)
    return f"hardened ({', '.join(changed)})" if changed else "already private"
