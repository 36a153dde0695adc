"""What a deletion can leave behind, and its removal: a file a crash left under its temporary
name (:func:`finish_renamed`, for recovery) and a Trash item's ``.trashinfo``
(:func:`remove_trashinfo`). Both follow :mod:`credguard.protect.shred`'s rules: no symlink is
followed, no directory removed, nothing of another user's touched.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from credguard.fs import at, safe
from credguard.fs.safe import SkipReason, Unreadable, open_dir
from credguard.protect.shred import ShredRefused, probe_name, refusal, same_inode, sync_dir


def finish_renamed(dir_fd: int, name: str, inode: tuple[int, int] | None = None) -> bool:
    """Recovery: empty and remove a file a crash left under its temporary name.

    The rename happens only after the overwrite was synced, so emptying and unlinking is all
    that is left to do; an empty directory probe left by the same attempt goes too. False if
    there is no such file. With ``inode`` (device, inode number), anything else under that
    name is refused untouched.
    """
    with contextlib.suppress(OSError):  # absent, or the directory is read-only
        at.unlink(probe_name(name), dir_fd=dir_fd)
    try:
        fd = at.open(name, safe.WRITE, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise refusal(exc) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ShredRefused("not-regular")
        if not at.mine(st):
            raise ShredRefused("other-owner")
        if inode is not None and (st.st_dev, st.st_ino) != inode:
            raise ShredRefused("changed", "another file took the temporary name; it is kept")
        os.ftruncate(fd, 0)
        at.sync(fd)
        if same_inode(dir_fd, name, st):
            at.unlink(name, dir_fd=dir_fd)
            sync_dir(dir_fd)
    finally:
        os.close(fd)
    return True


def remove_trashinfo(files_dir: Path, name: str) -> bool:
    """Remove ``../info/<name>.trashinfo`` of a Trash item (it names the original path).

    It holds no secret, so it is simply unlinked (a symlink there is removed, not followed).
    False if there is none.
    """
    try:
        info = open_dir(files_dir.parent / "info")
    except Unreadable as exc:
        if exc.reason == SkipReason.NOT_FOUND:
            return False
        symlink = exc.reason == SkipReason.SYMLINK
        raise ShredRefused("symlink" if symlink else "not-regular") from None
    try:
        entry = f"{name}.trashinfo"
        try:
            st = at.stat(entry, dir_fd=info)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            raise ShredRefused("not-regular")
        at.unlink(entry, dir_fd=info)
        sync_dir(info)
    finally:
        os.close(info)
    return True
