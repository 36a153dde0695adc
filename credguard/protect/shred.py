"""Deletion with overwrite attempted, and an honest per-file report (DESIGN §5 step 5).

:func:`shred_at` deletes one plaintext leftover relative to a directory descriptor the caller
validated: it never follows a symlink, never blocks, never removes a directory and never
touches any entry but ``name`` (and, once renamed, the temporary name). Everything it refuses
it refuses before the first byte is written. What the overwrite cannot reach (SSDs,
copy-on-write, network and sync folders, snapshots) is reported from :mod:`credguard.fs.facts`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from credguard.errors import InputError
from credguard.fs import at, facts, safe
from credguard.fs.facts import DELETED
from credguard.protect.overwrite import overwrite

TEMP_PREFIX = ".credguard-"
# Whether the content of an open file (fd, size) is what may be destroyed: read before the
# first byte is written, through the very descriptor the overwrite then uses.
Verify = Callable[[int, int], bool]


# A failed open or create, by errno name -> the refusal reason.
_ERRNOS = {
    "symlink": "ELOOP EMLINK",
    "not-regular": "ENXIO ENODEV EISDIR EOPNOTSUPP",
    "not-found": "ENOENT ENOTDIR",
    "read-only": "EACCES EPERM EROFS",
    "busy": "ETXTBSY EBUSY",
}
_REASONS = {
    getattr(errno, n): reason
    for reason, names in _ERRNOS.items()
    for n in names.split()
    if hasattr(errno, n)
}
_DETAILS = {
    "changed": "it changed since it was read: import the new version first",
    "symlink": "it is a symbolic link; refusing to follow it",
    "not-regular": "it is not a regular file",
    "hard-links": "it has other hard links (copies under other names); allow them to delete it",
    "other-owner": "it belongs to another user",
    "read-only": "it or its directory cannot be changed (read-only, immutable or no permission)",
    "busy": "it is in use (mounted on, being executed, or the temporary name is taken)",
    "not-found": "it no longer exists",
    "io-error": "the file system reported an error before anything was changed",
    "content": "its content is not the content that was vaulted: it is kept",
}


class ShredRefused(InputError):
    """Deletion refused; ``reason`` is a short stable id, the entry at ``name`` is untouched."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"not deleted: {detail or _DETAILS[reason]}")


@dataclass(frozen=True)
class Identity:
    """What the file was when it was read: any difference means it changed since."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class ShredResult:
    """The outcome of one deletion; ``limits`` say what the overwrite could not promise."""

    deleted: bool
    message: str  # DELETED, or what went wrong after the overwrite began
    limits: tuple[str, ...]  # from fsinfo.deletion_limits; empty when not deleted
    fs_type: str


def temp_name() -> str:
    """A fresh random name in the form :func:`shred_at` renames to (journal it first)."""
    return f"{TEMP_PREFIX}{secrets.token_hex(12)}"


def refusal(exc: OSError) -> ShredRefused:
    reason = _REASONS.get(exc.errno or 0, "io-error")
    detail = f"{_DETAILS[reason]} ({exc.strerror})" if reason == "io-error" else ""
    return ShredRefused(reason, detail)


def _check(st: os.stat_result, expected: Identity, allow_hard_links: bool) -> None:
    """Refuse anything but the regular, unchanged, singly linked file of this user."""
    if stat.S_ISLNK(st.st_mode):
        raise ShredRefused("symlink")
    if not stat.S_ISREG(st.st_mode):
        raise ShredRefused("not-regular")
    if Identity.of(st) != expected:
        raise ShredRefused("changed")
    if st.st_nlink > 1 and not allow_hard_links:
        raise ShredRefused("hard-links")
    if not at.mine(st):
        raise ShredRefused("other-owner")


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return at.stat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None


def same_inode(dir_fd: int, name: str, st: os.stat_result) -> bool:
    now = _lstat(dir_fd, name)
    return now is not None and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


def probe_name(new: str) -> str:
    """The directory probe's name, derived from the journaled rename target so that crash
    recovery can remove a probe left by a process killed between creating and removing it."""
    return f"{new}.probe"


def _probe_dir(dir_fd: int, new: str) -> None:
    """Refuse a directory whose entries cannot change (read-only, immutable, no permission).

    ``os.access`` is wrong for root and for immutable directories, so an empty file is
    really created and removed; if that fails, nothing has been changed yet.
    """
    probe = probe_name(new)
    with contextlib.suppress(OSError):  # absent, or the directory is read-only
        at.unlink(probe, dir_fd=dir_fd)  # left by a crashed attempt of this transaction
    try:
        os.close(at.open(probe, safe.NEW_FILE, 0o600, dir_fd=dir_fd))
        at.unlink(probe, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return  # full, not read-only: deleting is what frees space, so go on
        raise refusal(exc) from None


def _open_writable(dir_fd: int, name: str, expected: Identity, allow_hard_links: bool) -> int:
    """Open ``name`` for reading and writing; a read-only file of ours is made 0600 first.

    Permission can only be changed through a descriptor of the very inode that was checked
    (``fchmod``, never ``chmod`` by name), so a read-only file is opened read-only, checked,
    made writable, and reopened for writing; the caller checks the second open again.
    """
    try:
        return at.open(name, safe.READ_WRITE, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno != errno.EACCES:
            raise refusal(exc) from None
    try:
        ro = at.open(name, safe.READ, dir_fd=dir_fd)
    except OSError as exc:
        raise refusal(exc) from None
    try:
        st = at.fstat(ro)
        _check(st, expected, allow_hard_links)
        at.restrict(ro, 0o600)
        try:
            return at.open(name, safe.READ_WRITE, dir_fd=dir_fd)
        except OSError as exc:
            at.restrict(ro, stat.S_IMODE(st.st_mode))  # leave it as it was found
            raise refusal(exc) from None
    finally:
        os.close(ro)


def sync_dir(dir_fd: int) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse fsync on a directory
        at.sync_dir(dir_fd)


def _rename_checked(dir_fd: int, name: str, new: str, st: os.stat_result) -> None:
    """Rename ``name`` to ``new`` and prove the renamed entry is still the checked inode.

    If the name was swapped for another file after the checks, that file is renamed back and
    the deletion refused: the intruder keeps its name and content. The caller syncs the
    directory.
    """
    at.rename(name, new, dir_fd=dir_fd)
    if not same_inode(dir_fd, new, st):
        where = "left in place"
        try:
            if _lstat(dir_fd, name) is not None:  # never rename back over a yet newer file
                raise FileExistsError
            at.rename(new, name, dir_fd=dir_fd)
        except OSError:
            where = f"left as {new!r}"
        raise ShredRefused(
            "changed",
            f"the name was replaced by another file during deletion; that file was {where}",
        )


def _precheck(dir_fd: int, name: str, new: str, expected: Identity, allow: bool,
              where: Path | None, probed: set[tuple[int, int]]) -> None:
    """Every refusal that needs no descriptor of the file, before anything is opened.
    ``probed``: the directories (device, inode) this batch found changeable already."""
    try:
        _check(at.stat(name, dir_fd=dir_fd), expected, allow)
    except OSError as exc:
        raise refusal(exc) from None
    if where is not None and facts.is_mount_point(where / name):
        raise ShredRefused("busy", "something is mounted on it")
    directory = os.fstat(dir_fd)
    if (directory.st_dev, directory.st_ino) not in probed:
        _probe_dir(dir_fd, new)
        probed.add((directory.st_dev, directory.st_ino))
    if _lstat(dir_fd, new) is not None:  # os.rename would silently replace it
        raise ShredRefused("busy", f"the temporary name {new!r} is taken")


# What is true of the file when a step fails, by the step that failed.
_FAILED = {
    "overwrite": "overwrite failed ({error}); the file is still in place, partly overwritten",
    "rename": "overwritten, but could not be renamed ({error}); the file is still in place",
    "truncate": "overwritten, but could not be emptied ({error}); it is left as {new!r}",
    "unlink": "overwritten and emptied, but could not be removed ({error}); it is left as {new!r}",
}


@dataclass(frozen=True)
class Request:
    """One file to delete: :func:`shred_at`'s arguments."""

    dir_fd: int
    name: str
    expected: Identity
    passes: int = 1
    allow_hard_links: bool = False
    new_name: str | None = None
    verify: Verify | None = None
    seed: bytes | None = None


class _Open:
    """A file past every refusal, open for writing, and how far its deletion got."""

    def __init__(self, req: Request, new: str, fd: int, where: Path | None) -> None:
        self.req, self.new, self.fd, self.where = req, new, fd, where
        self.mount = facts.mount_of(where) if where else None  # before the last check
        self.st = os.fstat(fd)
        self.stage = "overwrite"
        self.failed = ""  # what went wrong, once a step failed
        self.refused: ShredRefused | None = None

    def fail(self, exc: OSError) -> None:
        self.failed = _FAILED[self.stage].format(error=exc.strerror or exc, new=self.new)

    @property
    def going(self) -> bool:
        return not self.failed and self.refused is None


def _open_checked(req: Request, probed: set[tuple[int, int]]) -> _Open:
    """Every refusal, then the file open for writing, checked again through its descriptor and
    its content verified; ShredRefused with nothing changed."""
    new = req.new_name or temp_name()
    where = facts.fd_path(req.dir_fd)
    _precheck(req.dir_fd, req.name, new, req.expected, req.allow_hard_links, where, probed)
    fd = _open_writable(req.dir_fd, req.name, req.expected, req.allow_hard_links)
    try:
        opened = _Open(req, new, fd, where)
        try:
            _check(opened.st, req.expected, req.allow_hard_links)
            if req.verify is not None and not req.verify(fd, opened.st.st_size):
                raise ShredRefused("content")
            _check(os.fstat(fd), req.expected, req.allow_hard_links)  # no link made meanwhile
        except OSError as exc:
            raise refusal(exc) from None
    except BaseException:
        os.close(fd)
        raise
    return opened


def _each(files: list[_Open], stage: str, act: Callable[[_Open], None]) -> None:
    """Run one stage for every file still going; an OSError stops that file only."""
    for f in files:
        if f.going:
            f.stage = stage
            try:
                act(f)
            except OSError as exc:
                f.fail(exc)
            except ShredRefused as exc:
                f.refused = exc


def _sync_dirs(files: list[_Open], stage: str) -> None:
    """One fsync per directory for the files that got through ``stage``."""
    synced: set[tuple[int, int]] = set()
    for f in files:
        if f.going and f.stage == stage:
            st = os.fstat(f.req.dir_fd)
            if (st.st_dev, st.st_ino) not in synced:
                synced.add((st.st_dev, st.st_ino))
                sync_dir(f.req.dir_fd)


def _unlink(f: _Open) -> None:
    if not same_inode(f.req.dir_fd, f.new, f.st):
        raise FileNotFoundError(errno.ENOENT, "the temporary name was replaced")
    at.unlink(f.new, dir_fd=f.req.dir_fd)


def _destroy(files: list[_Open], step: Callable[[str], None]) -> None:
    """Overwrite, rename, truncate, unlink, each stage for every file in turn, a directory
    synced once per stage: each file goes through the states a deletion of its own goes
    through, in the same order."""
    _each(files, "overwrite",
          lambda f: overwrite(f.fd, f.st.st_size, f.req.passes, f.req.seed, step))
    _each(files, "rename", lambda f: _rename_checked(f.req.dir_fd, f.req.name, f.new, f.st))
    _sync_dirs(files, "rename")
    _each(files, "rename", lambda f: step("after-rename"))

    def truncate(f: _Open) -> None:
        os.ftruncate(f.fd, 0)  # what a later undelete could find is now an empty file
        at.sync(f.fd)
        step("after-truncate")

    _each(files, "truncate", truncate)
    _each(files, "unlink", _unlink)
    _sync_dirs(files, "unlink")
    _each(files, "unlink", lambda f: step("after-unlink"))


def _result(f: _Open) -> ShredResult | ShredRefused:
    kind = f.mount.fstype if f.mount else ""
    if f.refused is not None:
        return f.refused
    if f.failed:
        return ShredResult(False, f.failed, (), kind)
    links = os.fstat(f.fd).st_nlink
    message = (f"{DELETED}; {links} other hard link(s) now name an empty file" if links
               else DELETED)  # other links only when hard links were allowed
    limits = (facts.deletion_limits(f.where, f.mount) if f.where
              else ["location unknown: limits unknown"])
    return ShredResult(True, message, tuple(limits), kind)


def shred_many(requests: Sequence[Request],
               step: Callable[[str], None] = lambda s: None) -> list[ShredResult | ShredRefused]:
    """:func:`shred_at` for several files, each stage done for all of them before the next
    (one directory sync per stage, not one per file); each one's result or refusal, in order.
    ``step`` is called for each file at each of its steps."""
    if any(req.passes < 1 for req in requests):
        raise ValueError("passes must be at least 1")
    results: list[ShredResult | ShredRefused | None] = [None] * len(requests)
    files: list[tuple[int, _Open]] = []
    probed: set[tuple[int, int]] = set()  # each directory is probed once
    try:
        for i, req in enumerate(requests):
            try:
                files.append((i, _open_checked(req, probed)))
            except ShredRefused as exc:
                results[i] = exc
        _destroy([f for _, f in files], step)
        for i, f in files:
            results[i] = _result(f)
    finally:
        for _, f in files:
            os.close(f.fd)
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def shred_at(dir_fd: int, name: str, expected: Identity, *, passes: int = 1,
             allow_hard_links: bool = False, new_name: str | None = None,
             verify: Verify | None = None, seed: bytes | None = None,
             step: Callable[[str], None] = lambda s: None) -> ShredResult:
    """Overwrite and delete ``name`` in the directory ``dir_fd`` if it is still ``expected``.

    Raises :class:`ShredRefused` before changing anything for a file that is not a regular
    file of this user with one link and the expected identity, whose content ``verify``
    rejects (read through the descriptor that is then overwritten), or whose directory cannot
    change. ``seed`` makes the overwrite bytes reproducible (:func:`noise`). Returns
    ``deleted=False`` with what is true of the file if a step fails midway.
    ``step`` is called with "before-overwrite", "mid-overwrite", "after-overwrite",
    "after-rename", "after-truncate" and "after-unlink" (fault injection).
    """
    [result] = shred_many([Request(dir_fd, name, expected, passes, allow_hard_links, new_name,
                                   verify, seed)], step)
    if isinstance(result, ShredRefused):
        raise result
    return result
