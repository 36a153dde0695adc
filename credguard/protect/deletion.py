"""The one journaled deletion of a plaintext leftover, used by protect, recovery and azcache.

The journal says ``deleting`` (with the random name the file is renamed to before it is
unlinked) before the first byte is overwritten, so recovery can finish a deletion a crash
interrupted; the entry is forgotten once the deletion is done or refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from credguard import policy
from credguard.config import Config
from credguard.fs import at
from credguard.protect import journal
from credguard.protect.faults import Step, no_fault
from credguard.protect.overwrite import CHUNK, noise
from credguard.protect.remains import finish_renamed, remove_trashinfo
from credguard.protect.shred import Identity, Request, ShredRefused, ShredResult, Verify, shred_many

BLOCK = 4096  # the unit a crash can leave half written: a file system block


def block_digests(data: bytes) -> tuple[str, ...]:
    """What the journal keeps of each block of the vaulted bytes (see ``Entry.blocks``)."""
    return tuple(hashlib.sha256(data[i:i + BLOCK]).hexdigest()[:16]
                 for i in range(0, len(data), BLOCK))


def new_entry(directory: str, name: str, identity: Identity, data: bytes, *, kind: str,
              item_id: str, root: str, passes: int, existing: bool = True) -> journal.Entry:
    """A fresh ``intent`` entry for the file ``identity`` describes, which holds ``data``
    (nothing is written yet); ``existing``: the vault item was there before, so a rollback
    must not remove it; ``root``: where the walk to ``directory`` starts (an absolute path);
    ``passes``: the overwrite passes its deletion will make."""
    return journal.Entry(
        txid=journal.new_txid(), state="intent", directory=directory, name=name,
        dev=identity.dev, ino=identity.ino, size=identity.size, mtime_ns=identity.mtime_ns,
        sha256=hashlib.sha256(data).hexdigest(), kind=kind, item_id=item_id,
        existing=existing, shred_name=journal.shred_name(), root=root,
        seed=journal.new_seed(), passes=passes, blocks=block_digests(data))


def same_inode(dir_fd: int, entry: journal.Entry) -> os.stat_result | None:
    """The entry's file as it is now, if its name in ``dir_fd`` still holds the same inode."""
    try:
        st = at.stat(entry.name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    return st if (st.st_dev, st.st_ino) == (entry.dev, entry.ino) else None


def _blocks(fd: int, size: int) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset < size:
        block = at.pread(fd, min(BLOCK, size - offset), offset)
        if not block:
            return
        yield offset, block
        offset += len(block)


def matches(sha256: str) -> Verify:
    """The file holds exactly the bytes whose SHA-256 was journaled (those that were vaulted)."""
    def check(fd: int, size: int) -> bool:
        digest, seen = hashlib.sha256(), 0
        for _offset, block in _blocks(fd, size):
            digest.update(block)
            seen += len(block)
        return seen == size and not at.pread(fd, 1, size) and digest.hexdigest() == sha256
    return check


def ours(entry: journal.Entry) -> Verify:
    """The file is the vaulted bytes with any of its blocks replaced by what a pass of this
    entry's deletion writes there: all a crash mid-overwrite can leave. Anything else (a new
    download under the same name, a ``cp`` over the same inode) is not ours to destroy."""
    seed = bytes.fromhex(entry.seed) if entry.seed else None
    chunks: dict[tuple[int, int], bytes] = {}

    def written(pass_no: int, offset: int, length: int) -> bytes:
        key = (pass_no, offset // CHUNK)
        if key not in chunks:
            start = key[1] * CHUNK
            chunks[key] = noise(seed, pass_no, start, min(start + CHUNK, entry.size))
        at = offset % CHUNK
        return chunks[key][at:at + length]

    def check(fd: int, size: int) -> bool:
        if size != entry.size or len(entry.blocks) != -(-size // BLOCK) or at.pread(fd, 1, size):
            return False
        for offset, block in _blocks(fd, size):
            if hashlib.sha256(block).hexdigest()[:16] == entry.blocks[offset // BLOCK]:
                continue
            if seed is None or not any(block == written(p, offset, len(block))
                                       for p in range(1, entry.passes + 1)):
                return False
        return True
    return check


def delete_leftover(entry: journal.Entry, dir_fd: int, cfg: Config, step: Step = no_fault,
                    found: Identity | None = None, verify: Verify | None = None) -> ShredResult:
    """Journal ``entry`` as ``deleting``, then overwrite and delete its file in ``dir_fd`` if it
    is still the file that was read (``found``: what recovery found there instead) and holds
    what was vaulted (``verify``, by default the journaled SHA-256), and a Trash item's
    ``.trashinfo``. Raises :class:`ShredRefused` with the file untouched.

    The entry is forgotten once the deletion is done, refused or reported failed. An
    unexpected error keeps it only if the overwrite had begun, so recovery finishes that
    deletion; before that, nothing had changed and the entry is forgotten too.
    """
    [result] = _delete([(entry, dir_fd, found, verify)], cfg, step)
    if isinstance(result, ShredRefused):
        raise result
    journal.remove(entry.txid)
    return result


def delete_leftovers(batch: Sequence[tuple[journal.Entry, int]], cfg: Config,
                     step: Step = no_fault) -> list[ShredResult | ShredRefused]:
    """:func:`delete_leftover` for several entries (each with its directory) as one group
    commit: all journaled ``deleting`` together, then the files deleted together
    (:func:`shred_many`: each stage for all, a directory synced once per stage); each one's
    result or refusal, in order.

    A refused entry is forgotten at once (nothing changed). The entries of files deleted (or
    left part-way by an I/O error) are NOT: the caller forgets them (:func:`journal.forget`)
    once it has recorded what happened, so a crash before that leaves them to recovery, which
    finishes and reports them. An unexpected error keeps every entry once an overwrite had
    begun (recovery checks each file before it finishes it), else forgets them all.
    """
    return _delete([(entry, dir_fd, None, None) for entry, dir_fd in batch], cfg, step)


def _delete(batch: Sequence[tuple[journal.Entry, int, Identity | None, Verify | None]],
            cfg: Config, step: Step) -> list[ShredResult | ShredRefused]:
    journal.write_many([entry.at("deleting") for entry, *_ in batch])
    began = False

    def tracked(label: str) -> None:
        nonlocal began
        began = began or label == "before-overwrite"
        step(label)

    allow = cfg["protect.allow_hard_links"]
    try:
        results = shred_many([Request(
            dir_fd, entry.name, found or Identity(entry.dev, entry.ino, entry.size,
                                                  entry.mtime_ns),
            entry.passes, allow, entry.shred_name, verify or matches(entry.sha256),
            bytes.fromhex(entry.seed) if entry.seed else None)
            for entry, dir_fd, found, verify in batch], tracked)
        for (entry, *_), result in zip(batch, results, strict=True):
            if isinstance(result, ShredResult) and result.deleted:
                _remove_trashinfo(entry)
    except Exception:
        if not began:  # nothing changed: forgotten
            journal.forget([entry.txid for entry, *_ in batch])
        raise
    refused = [entry.txid for (entry, *_), result in zip(batch, results, strict=True)
               if isinstance(result, ShredRefused)]
    if refused:  # a refusal leaves nothing to finish
        journal.forget(refused)
    return results


def resume_deletion(entry: journal.Entry, dir_fd: int, cfg: Config) -> ShredResult | None:
    """Recovery: finish a deletion a crash interrupted, if what is there is the vaulted
    content or what this deletion made of it (:func:`ours`); None when the file had already
    been renamed away (its remains are removed). Raises :class:`ShredRefused` with anything
    else kept untouched."""
    finish_renamed(dir_fd, entry.shred_name, (entry.dev, entry.ino))
    st = same_inode(dir_fd, entry)
    if st is not None:  # crashed before the rename, maybe mid-overwrite: same inode
        return delete_leftover(entry, dir_fd, cfg, found=Identity.of(st), verify=ours(entry))
    _remove_trashinfo(entry)
    journal.remove(entry.txid)
    return None


def _remove_trashinfo(entry: journal.Entry) -> None:
    """A deleted Trash item's ``.trashinfo`` goes too (it names the original path, no secret;
    one that cannot be removed does not undo the deletion)."""
    if policy.location_of(Path(entry.directory, entry.name)) == policy.Location.TRASH:
        with contextlib.suppress(ShredRefused):
            remove_trashinfo(Path(entry.directory), entry.name)
