"""The protect transaction's journal: one small, versioned, secret-free record per transaction.

Each record names the source (the root its walk starts from, directory, name, identity,
sha256), the vault item id, the random name the leftover will be renamed to before it is
unlinked and the seed of the bytes it will be overwritten with — all chosen before anything is
written, so recovery after a crash at any step knows exactly what may exist, and can tell the
file it left half-overwritten from any other content. A transaction
holds ``<txid>.lock`` while it runs; recovery only touches entries whose lock it can take.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from credguard import paths
from credguard.errors import StateError, check_version
from credguard.fs import lock
from credguard.fs.atomic import atomic_write_many, fsync_dir, private_dir

VERSION = 2  # 2: root, seed, passes, blocks (version 1 reads with root = its directory)
# States in order. "intent": nothing verified yet; "verified": the vault copy is written and
# read back; "imported": configured import targets ran; "deleting": the leftover may be
# overwritten or renamed; "done": nothing left to do.
STATES = ("intent", "verified", "imported", "deleting", "done")


@dataclass(frozen=True)
class Entry:
    txid: str
    state: str
    directory: str
    name: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    sha256: str
    kind: str
    item_id: str
    existing: bool  # the item was already in the vault: rollback must not remove it
    shred_name: str
    root: str = ""  # the directory the walk to ``directory`` starts from ("": ``directory``)
    seed: str = ""  # hex seed of the overwrite bytes ("": random, unrecognisable afterwards)
    passes: int = 1  # how many overwrite passes the deletion makes
    # the first 16 hex digits of each 4 KiB block's SHA-256: with the seed, recovery tells a
    # half-overwritten leftover from any other content without the vault (no more is learnt
    # from them than from ``sha256``)
    blocks: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return os.path.join(self.directory, self.name)

    def at(self, state: str) -> Entry:
        assert state in STATES
        return replace(self, state=state)


def journal_dir() -> Path:
    return paths.journal_dir()


def new_txid() -> str:
    return secrets.token_hex(8)


SEED_BYTES = 16


def new_seed() -> str:
    """The seed of a deletion's overwrite bytes: noise, not a secret (it only lets recovery
    recognise what the deletion itself wrote)."""
    return secrets.token_hex(SEED_BYTES)


def shred_name() -> str:
    return f".credguard-{secrets.token_hex(8)}"


def _path(txid: str, suffix: str = ".json") -> str:
    """A transaction's entry (or lock) file. A string, not a Path: a Path interns each new
    name, and the daemon's table of interned strings would grow with every file it protects."""
    return os.path.join(journal_dir(), f"{txid}{suffix}")


def write(entry: Entry) -> None:
    """Record ``entry`` durably (atomic replace, fsynced) before the step it announces."""
    write_many([entry])


def write_many(entries: Sequence[Entry]) -> None:
    """Record several entries durably as one group commit (a batch's transactions reach each
    state together); every one is on disk before this returns."""
    # ensure_ascii escapes undecodable file-name bytes (surrogates) so they round-trip
    # strict: a step must never follow an entry whose fsync failed (it may not be on disk)
    atomic_write_many([(_path(e.txid), json.dumps({"version": VERSION, **asdict(e)},
                                                  ensure_ascii=True).encode())
                       for e in entries], strict=True)


def remove(txid: str) -> None:
    forget([txid])


def forget(txids: Sequence[str]) -> None:
    """Remove the entries (and their lock files) of finished transactions; one directory
    sync for them all."""
    for txid in txids:
        for path in (_path(txid), _path(txid, ".lock")):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    fsync_dir(journal_dir())


def read(path: Path) -> Entry:
    try:
        doc: dict[str, Any] = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise StateError(f"journal entry {path} is unreadable: {exc}") from None
    try:
        if not isinstance(doc, dict):
            raise TypeError
        check_version(doc.pop("version", None), VERSION, f"journal entry {path}", StateError)
        entry = Entry(**{**doc, "blocks": tuple(doc.get("blocks", ()))})
        bytes.fromhex(entry.seed)
    except (TypeError, ValueError):
        raise StateError(f"journal entry {path} is damaged") from None
    if not _sound(entry):
        raise StateError(f"journal entry {path} is damaged")
    return entry


_TYPES = {"str": str, "int": int, "bool": bool}


def _sound(entry: Entry) -> bool:
    """Every field of the type it is written with (a wrong one would raise deep inside
    recovery, every time), and names that stay in their directory."""
    return (all(type(getattr(entry, f.name)) is _TYPES.get(str(f.type), tuple)
                for f in fields(Entry))
            and entry.state in STATES and entry.passes >= 1
            and len(entry.seed) in (0, 2 * SEED_BYTES)
            and all(type(b) is str for b in entry.blocks)
            and all(n not in ("", ".", "..") and "/" not in n and os.sep not in n
                    for n in (entry.name, entry.shred_name)))


def pending() -> list[Path]:
    """Journal entries on disk (cheap: one directory listing)."""
    try:
        return sorted(p for p in journal_dir().iterdir() if p.suffix == ".json")
    except FileNotFoundError:
        return []


@contextlib.contextmanager
def held(txid: str) -> Iterator[None]:
    """Hold a transaction's lock while it runs, so no concurrent recovery touches it."""
    private_dir(journal_dir())
    fd = lock.try_exclusive(_path(txid, ".lock"))
    if fd is None:  # pragma: no cover - txids are random
        raise StateError(f"transaction {txid} is already running")
    try:
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def claim(path: Path) -> Iterator[bool]:
    """For recovery: True if this entry's transaction is dead and now ours to finish."""
    fd = lock.try_exclusive(path.with_suffix(".lock"))
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)
