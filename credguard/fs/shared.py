"""This user's private directory inside a directory every user may write (``/tmp``,
``/dev/shm``), which no other user can squat.

In such a place whoever creates a name first owns it, so a fixed name such as
``/tmp/credguard-1000`` can be taken by another user before credguard starts. A directory there
is therefore used only when :func:`problem` finds nothing wrong with it: a real directory (not
a symbolic link), this user's, mode 0700, on its parent's file system. When the preferred name
(:attr:`credguard.paths.SharedDir.name`) fails that check, credguard says so in a log line and
makes a directory under a fresh random name instead, which it writes in the record in the
user's own state dir (:attr:`credguard.paths.SharedDir.record`); later processes read the record
first. A record only names a directory: what it names is checked like any other, so a forged or
stale one can never lead anywhere but to another private directory of this user's. Nothing is
created, written or removed inside a directory that failed the check.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import stat
from pathlib import Path

from credguard import xdg
from credguard.errors import StateError
from credguard.fs import at, lock
from credguard.fs.atomic import atomic_write, private_dir
from credguard.fs.read import Unreadable, read_path
from credguard.paths import SharedDir

log = logging.getLogger("credguard.runtime")
_ATTEMPTS = 16  # fresh random names tried; a clash needs another user to guess 64 bits
_RECORD_CAP = 256  # bytes: a record holds one directory name
_LOCK_TIMEOUT = 30.0  # seconds to wait for another credguard writing the record


def problem(path: Path, parent_dev: int) -> str | None:
    """Why ``path`` is not a private directory of this user's on the file system
    ``parent_dev``, in words for a log line; None when it is one."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "it does not exist"
    except OSError as exc:
        return f"it cannot be examined ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a directory"
    if not at.mine(st):
        return f"it belongs to uid {st.st_uid}"
    if stat.S_IMODE(st.st_mode) != 0o700:
        return f"its mode is {stat.S_IMODE(st.st_mode):04o}, not 0700"
    if st.st_dev != parent_dev:
        return "it is on another file system than its parent"
    return None


def _parent_dev(parent: Path) -> int:
    """The device of ``parent``; StateError unless nobody but its owner (root or this user)
    can rename or remove another user's entries in it (the sticky bit of ``/tmp``)."""
    try:
        st = os.stat(parent)
    except OSError as exc:
        raise StateError(f"cannot use {parent}: {exc.strerror}") from None
    shared_write = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if (not stat.S_ISDIR(st.st_mode) or st.st_uid not in (0, xdg.euid())
            or (shared_write and not st.st_mode & stat.S_ISVTX)):
        raise StateError(f"refusing {parent}: other users could replace what credguard puts "
                         "there (it is not a directory with the sticky bit owned by root)")
    return st.st_dev


def _recorded(spot: SharedDir) -> Path | None:
    """The directory the record names, if it holds a name credguard could have written."""
    try:
        text = read_path(spot.record, _RECORD_CAP).data.decode("ascii").strip()
    except (Unreadable, UnicodeDecodeError):
        return None
    if not re.fullmatch(rf"{re.escape(spot.name)}-[0-9a-f]{{16}}", text):
        return None
    return spot.parent / text


def find(spot: SharedDir) -> Path | None:
    """This user's directory for ``spot``, creating nothing: the recorded one, else the
    preferred name, whichever passes :func:`problem` first; None when neither does."""
    dev = _parent_dev(spot.parent)
    for path in (_recorded(spot), spot.parent / spot.name):
        if path is not None and problem(path, dev) is None:
            return path
    return None


def _mkdir(path: Path) -> bool:
    """Create ``path`` 0700; False when the name exists already (anyone's)."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return False
    except OSError as exc:
        raise StateError(f"cannot create {path}: {exc.strerror}") from None
    os.chmod(path, 0o700)  # a strict umask may have narrowed it; nobody else can swap it
    return True


def _fresh(spot: SharedDir, dev: int) -> Path:
    for _ in range(_ATTEMPTS):
        path = spot.parent / f"{spot.name}-{secrets.token_hex(8)}"
        if _mkdir(path):
            why = problem(path, dev)
            if why is not None:
                raise StateError(f"cannot make a private directory in {spot.parent}: "
                                 f"{path}: {why}")
            return path
    raise StateError(f"cannot make a private directory in {spot.parent}: "
                     f"{_ATTEMPTS} random names were all taken")


def claim(spot: SharedDir) -> Path:
    """This user's directory for ``spot``, made if there is none yet: :func:`find`'s answer,
    else the preferred name once this process made it, else (the name is someone else's, or
    not private) a new random name, recorded, with a log line saying what was skipped and why.
    StateError when no private directory can be made or recorded."""
    found = find(spot)
    if found is not None:
        return found
    dev = _parent_dev(spot.parent)
    preferred = spot.parent / spot.name
    _mkdir(preferred)
    why = problem(preferred, dev)
    if why is None:
        return preferred
    try:
        private_dir(spot.record.parent)
        with lock.exclusive(spot.record.with_name(".lock"), _LOCK_TIMEOUT,
                            what="the runtime directory record"):
            again = _recorded(spot)  # another credguard may have made one meanwhile
            if again is not None and problem(again, dev) is None:
                return again
            path = _fresh(spot, dev)
            try:
                atomic_write(spot.record, f"{path.name}\n".encode())
            except BaseException:
                with contextlib.suppress(OSError):
                    path.rmdir()  # empty and ours, and no later process could find it
                raise
    except OSError as exc:
        raise StateError(f"cannot record a private directory in {spot.record}: "
                         f"{exc.strerror or exc}") from None
    log.warning("not using %s: %s; using %s instead (recorded in %s)",
                preferred, why, path, spot.record)
    return path
