"""The ``harden`` action for live tool caches: the file 0600 and its directory 0700.

Deleting a live Azure CLI/PowerShell/azd cache would log the user out, so by default credguard
only makes sure no other local user can read it. Links are never followed; only files and
directories the user owns are changed.
"""

from __future__ import annotations

import os
import stat

from credguard.fs import at, safe
from credguard.fs.read import Unreadable


def _tighten(fd: int, mode: int) -> bool:
    st = os.fstat(fd)
    if not at.mine(st) or stat.S_IMODE(st.st_mode) & ~mode == 0:
        return False
    at.restrict(fd, stat.S_IMODE(st.st_mode) & mode)
    return True


def harden(path: str, root: str = "") -> str:
    """Remove group/other permissions from a cache file and its directory; says what changed.
    The file is reached from ``root`` (default: its own directory) by the rules of
    :mod:`credguard.fs.safe`: a path that cannot be walked is left untouched."""
    if not at.NATIVE:
        return ("not hardened: on Windows a file's access is its ACL (inherited from your "
                "profile, which admits only you, SYSTEM and administrators); credguard does "
                "not change ACLs")
    full = os.path.abspath(path)
    base = os.path.abspath(root) if root else os.path.dirname(full)
    try:
        # a directory others can write is just what hardening mends: only links and other
        # file systems stop the walk (everything is changed through descriptors)
        with safe.open_root(base, writers=False) as top:
            parent, name = safe.walk(top, os.path.relpath(full, base), writers=False)
    except Unreadable as exc:
        return f"not hardened: {exc.reason}"
    with parent:
        try:
            fd, _st = safe.open_regular(name, parent.fd)
        except Unreadable as exc:
            return f"not hardened: {exc.reason}"
        try:
            changed = [what for what, did in (("file 0600", _tighten(fd, 0o600)),
                                              ("directory 0700", _tighten(parent.fd, 0o700)))
                       if did]
        finally:
            os.close(fd)
    return f"hardened ({', '.join(changed)})" if changed else "already private"
