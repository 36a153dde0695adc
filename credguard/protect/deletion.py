"""The one journaled deletion of a plaintext leftover, used by protect, recovery and azcache.

The journal says ``deleting`` (with the random name the file is renamed to before it is
unlinked) before the first byte is overwritten, so recovery can finish a deletion a crash
interrupted; the entry is forgotten once the deletion is done or refused.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from credguard import policy
from credguard.config import Config
from credguard.protect import journal
from credguard.protect.faults import Step, no_fault
from credguard.protect.shred import (
    Identity,
    ShredRefused,
    ShredResult,
    finish_renamed,
    remove_trashinfo,
    shred_at,
)


def new_entry(directory: str, name: str, identity: Identity, *, kind: str, item_id: str,
              sha256: str = "", existing: bool = True) -> journal.Entry:
    """A fresh ``intent`` entry for the file ``identity`` describes (nothing is written yet);
    ``existing``: the vault item was there before, so a rollback must not remove it."""
    return journal.Entry(
        txid=journal.new_txid(), state="intent", directory=directory, name=name,
        dev=identity.dev, ino=identity.ino, size=identity.size, mtime_ns=identity.mtime_ns,
        sha256=sha256, kind=kind, item_id=item_id, existing=existing,
        shred_name=journal.shred_name())


def same_inode(dir_fd: int, entry: journal.Entry) -> os.stat_result | None:
    """The entry's file as it is now, if its name in ``dir_fd`` still holds the same inode."""
    try:
        st = os.stat(entry.name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return st if (st.st_dev, st.st_ino) == (entry.dev, entry.ino) else None


def delete_leftover(entry: journal.Entry, dir_fd: int, cfg: Config, step: Step = no_fault,
                    found: Identity | None = None) -> ShredResult:
    """Journal ``entry`` as ``deleting``, then overwrite and delete its file in ``dir_fd`` if it
    is still the file that was read (``found``: what recovery found there instead), and a Trash
    item's ``.trashinfo``. The entry is forgotten whatever happens. Raises
    :class:`ShredRefused` with the file untouched."""
    journal.write(entry.at("deleting"))
    try:
        expected = found or Identity(entry.dev, entry.ino, entry.size, entry.mtime_ns)
        result = shred_at(dir_fd, entry.name, expected, passes=cfg["protect.passes"],
                          allow_hard_links=cfg["protect.allow_hard_links"],
                          new_name=entry.shred_name, step=step)
        if result.deleted:
            _remove_trashinfo(entry)
    finally:
        journal.remove(entry.txid)
    return result


def resume_deletion(entry: journal.Entry, dir_fd: int, cfg: Config) -> ShredResult | None:
    """Recovery: finish a deletion a crash interrupted; None when the file had already been
    renamed away (its remains are removed). Raises :class:`ShredRefused` as
    :func:`delete_leftover`."""
    finish_renamed(dir_fd, entry.shred_name)
    st = same_inode(dir_fd, entry)
    if st is not None:  # crashed before the rename, maybe mid-overwrite: same inode, ours
        return delete_leftover(entry, dir_fd, cfg, found=Identity.of(st))
    _remove_trashinfo(entry)
    journal.remove(entry.txid)
    return None


def _remove_trashinfo(entry: journal.Entry) -> None:
    """A deleted Trash item's ``.trashinfo`` goes too (it names the original path, no secret;
    one that cannot be removed does not undo the deletion)."""
    if policy.location_of(Path(entry.directory, entry.name)) == policy.Location.TRASH:
        with contextlib.suppress(ShredRefused):
            remove_trashinfo(Path(entry.directory), entry.name)
