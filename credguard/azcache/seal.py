"""Sealing, re-sealing and unsealing a tool's cache: the secret files in, or back out of, the vault.

Every change follows the protect transaction's rule, durable and verified before destructive:

1. take credguard's lock on the sealed state, then each cache's ``<file>.lockfile`` the way
   msal-extensions takes it (a running ``az`` holds it while it writes);
2. read each secret file without following a link, check JSON files parse (a half-written or
   damaged cache is refused and left alone: nothing is changed);
3. write the new bundle to the vault (its id journaled first, read back and compared by the
   vault), then commit ``sealed.json`` (the old bundle's id moves to ``superseded``);
4. only then delete the plaintext, each file through the protect journal (``deleting``) and the
   identity-checked shred, so a crash mid-delete is finished by recovery. A file that changed
   after it was read is left in place and reported; sealing again picks it up.

Re-sealing (*absorbing*) plaintext that reappeared (a plain ``az login``) merges it into the
sealed files by entry (:mod:`credguard.azcache.msalmerge`): nothing sealed is lost.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credguard.azcache import msalmerge
from credguard.azcache.msallock import msal_lock
from credguard.azcache.sealstore import Seal, Store, now, pack_bundle, unpack_bundle
from credguard.azcache.tools import Tool
from credguard.config import Config
from credguard.errors import InputError, NotFoundError, StateError
from credguard.fs import at, read, safe
from credguard.fs.atomic import atomic_write
from credguard.fs.read import SkipReason, Unreadable
from credguard.handoff import ramdir
from credguard.protect import journal
from credguard.protect.deletion import delete_leftover, new_entry
from credguard.protect.faults import crash_hook_from_env
from credguard.protect.shred import Identity, ShredRefused
from credguard.vault.format import Record, new_item_id
from credguard.vault.store import Vault

__all__ = ["Plain", "Result", "Sealer"]


@dataclass(frozen=True)
class Plain:
    """One plaintext secret file as read: its bytes and the identity they were read from."""

    data: bytes
    identity: Identity


@dataclass
class Result:
    """What a seal/unseal/absorb did; names only, never contents."""

    tool: str
    root: str
    action: str  # "sealed", "resealed", "unsealed", "unchanged"
    item_id: str | None = None
    files: list[str] = field(default_factory=list)  # the secret files the bundle now holds
    deleted: list[str] = field(default_factory=list)  # plaintext files removed
    kept: list[dict[str, str]] = field(default_factory=list)  # {"file", "reason"} left in place
    limits: list[str] = field(default_factory=list)  # what deletion could not promise
    conflicts: list[str] = field(default_factory=list)
    created_root: bool = False  # sealing made the tool's (missing) directory, 0700

    def to_json(self) -> dict[str, Any]:
        """The ``seal``/``unseal`` ``--json`` document (docs/schemas/seal.schema.json)."""
        return {"version": 1, "tool": self.tool, "root": self.root, "action": self.action,
                "id": self.item_id,
                "item_id": self.item_id,  # deprecated alias of "id", kept for one version
                "files": self.files, "deleted": self.deleted, "kept": self.kept,
                "limits": sorted(set(self.limits)), "conflicts": self.conflicts,
                "created_root": self.created_root}


class Sealer:
    """Seal operations for one configuration, vault and state store."""

    def __init__(self, cfg: Config, vault: Vault, store: Store | None = None) -> None:
        self.cfg = cfg
        self.vault = vault
        self.store = store or Store()
        self.step = crash_hook_from_env()

    # ---- reading the plaintext ----------------------------------------------------------------

    def candidates(self, tool: Tool, root: Path, seal: Seal | None) -> list[str]:
        """The names a plaintext secret of ``tool`` may have in ``root`` (present or sealed)."""
        names = set(seal.files if seal else []) | set(tool.redirected(root))
        return sorted(names | set(tool.secret_names(root)))

    def plaintext(self, tool: Tool, root: Path, names: list[str]) -> dict[str, Plain]:
        """Each of ``names`` present in ``root`` (and the files they reference), read safely
        and checked. InputError (nothing changed) for a secret file that is a link or special
        file, too large, or a JSON file that does not parse."""
        found: dict[str, Plain] = {}
        for rel in names:
            plain = self._read(root, rel)
            if plain is None:
                continue
            found[rel] = plain
            for ref in tool.referenced_secrets(rel, plain.data, root):
                if ref not in found and ref not in names:
                    more = self._read(root, ref)
                    if more is not None:
                        found[ref] = more
        return found

    def _read(self, root: Path, rel: str) -> Plain | None:
        path = root / rel
        try:
            data = read.read_path(path, self.cfg["scan.max_file_size"])
        except Unreadable as exc:
            if exc.reason == SkipReason.NOT_FOUND:
                return None
            raise InputError(f"{path}: not read ({exc.reason}: {exc.detail}); nothing was "
                             "changed") from None
        if rel.endswith(".json"):
            try:
                msalmerge.loads(data.data, str(path))
            except msalmerge.MergeError as exc:
                raise InputError(f"{exc}: the tool may be writing it, or it is damaged; "
                                 "nothing was changed") from None
        return Plain(data.data, Identity(data.dev, data.ino, data.size, data.mtime_ns))

    @contextlib.contextmanager
    def cache_locks(self, tool: Tool, root: Path, rels: list[str]) -> Iterator[None]:
        """The tool's own ``<file>.lockfile`` for each msal-locked file (always the main cache
        files, present or not), in a fixed order."""
        wanted = {r for r in rels if tool.is_msal_locked(r)}
        if tool.id == "azure-cli":
            wanted |= {"msal_token_cache.json", "service_principal_entries.json"}
        with contextlib.ExitStack() as stack:
            for rel in sorted(wanted):
                if (root / rel).parent.is_dir():
                    stack.enter_context(msal_lock(root / rel, self.cfg["seal.lock_timeout"]))
            yield

    # ---- the sealed bundle -------------------------------------------------------------------

    def sealed_files(self, tool: Tool, seal: Seal) -> dict[str, bytes]:
        return unpack_bundle(self.vault.get(seal.item_id).data, tool.id)

    def tidy(self, seal: Seal) -> Seal:
        """Remove items a crash left pending or a commit superseded (never the current one)."""
        leftovers = [i for i in (*seal.pending, *seal.superseded) if i != seal.item_id]
        if not leftovers and not seal.pending:
            return seal
        for item_id in leftovers:
            self.vault.remove(item_id, missing_ok=True)
        seal.pending, seal.superseded = [], []
        self.store.put(seal)
        return seal

    def commit(self, tool: Tool, root: Path, seal: Seal | None, files: dict[str, bytes]) -> Seal:
        """Write ``files`` as the new sealed bundle and point the record at it (under the lock)."""
        item_id = new_item_id()
        if seal is None:
            seal = Seal(tool.id, os.fspath(root), "", [], now())
        seal.pending = [*seal.pending, item_id]
        self.store.put(seal)  # journal the id first: a crash leaves nothing unaccounted for
        bundle = pack_bundle(tool.id, files)
        record = Record.new(tool.kind, f"sealed {tool.id} cache", os.fspath(root), bundle,
                            {"sealed": tool.title, "files": ", ".join(sorted(files))})
        self.vault.add(record, item_id, self.step)
        old = seal.item_id
        seal.item_id, seal.files, seal.updated_at = item_id, sorted(files), now()
        seal.pending = [i for i in seal.pending if i != item_id]
        seal.superseded = [*seal.superseded, *([old] if old else [])]
        self.store.put(seal)
        return self.tidy(seal)

    # ---- deleting the plaintext --------------------------------------------------------------

    def delete_plain(self, root: Path, rel: str, plain: Plain, item_id: str,
                     result: Result) -> None:
        """Shred one plaintext file the vault now holds (journaled; identity-checked)."""
        path = root / rel
        try:
            with safe.open_root(root) as top:
                parent, name = safe.walk(top, rel)
        except Unreadable as exc:
            result.kept.append({"file": rel, "reason": f"directory not usable: {exc.detail}"})
            return
        entry = new_entry(os.fspath(path.parent), name, plain.identity, plain.data,
                          kind="sealed-cache", item_id=item_id, root=os.fspath(root),
                          passes=self.cfg["protect.passes"])
        try:
            with parent, journal.held(entry.txid):
                outcome = delete_leftover(entry, parent.fd, self.cfg, self.step)
        except ShredRefused as exc:
            result.kept.append({"file": rel, "reason": exc.message})
            return
        if outcome.deleted:
            result.deleted.append(rel)
            result.limits.extend(outcome.limits)
        else:
            result.kept.append({"file": rel, "reason": outcome.message})

    # ---- the operations ----------------------------------------------------------------------

    def seal(self, tool: Tool, root: Path | None = None) -> Result:
        """Seal ``tool``'s cache (re-seal whatever plaintext is there if it is sealed already).

        A cache with no secret file yet (no login yet, or no directory yet: it is made, 0700)
        is sealed empty: the first login through ``credguard az``/``exec`` then goes straight
        into the vault and never touches the disk."""
        root = root or tool.root()
        why = tool.encryption_on(root, os.environ)
        if why:
            raise InputError(
                f"the {tool.title} already encrypts its token cache here ({why}); credguard "
                "does not seal an encrypted cache; nothing was changed")
        created = _make_root(root)
        _check_root(root)
        with self.store.locked():
            seal = self.finish_unseal_if_needed(tool, root)
            if seal is None and ramdir.ram_base(create=True) is None:
                raise StateError(
                    f"the {tool.title} could not run sealed here: {ramdir.no_ram()}, and a sealed "
                    f"cache is handed to it only in RAM ('credguard az', 'credguard exec "
                    f"--{tool.id}' would always refuse); nothing was sealed")
            result = self._absorb(tool, root, seal, first=seal is None)[0]
        result.created_root = created
        return result

    def absorb(self, tool: Tool, root: Path | None = None) -> Result | None:
        """Re-seal plaintext that reappeared in a sealed root; None if ``tool`` is not sealed."""
        root = root or tool.root()
        with self.store.locked():
            seal = self.finish_unseal_if_needed(tool, root)
            return None if seal is None else self._absorb(tool, root, seal, first=False)[0]

    def checkout(self, tool: Tool, root: Path) -> dict[str, bytes] | None:
        """The sealed files, after re-sealing any plaintext that reappeared; None if ``tool``
        is not sealed at ``root``."""
        with self.store.locked():
            seal = self.finish_unseal_if_needed(tool, root)
            return None if seal is None else self._absorb(tool, root, seal, first=False)[1]

    def _absorb(self, tool: Tool, root: Path, seal: Seal | None, first: bool
                ) -> tuple[Result, dict[str, bytes]]:
        """Merge the plaintext into the sealed files, commit if that changed them, delete the
        plaintext; the result and the sealed files now."""
        result = Result(tool.id, os.fspath(root), "sealed" if first else "unchanged")
        if seal is not None:
            seal = self.tidy(seal)
        sealed = self.sealed_files(tool, seal) if seal is not None else {}
        names = self.candidates(tool, root, seal)
        with self.cache_locks(tool, root, names):
            plain = self.plaintext(tool, root, names)
            merged = dict(sealed)
            for rel, item in plain.items():
                if rel in sealed:
                    merged[rel], conflicts = merge_file(rel, None, item.data, sealed[rel])
                    result.conflicts.extend(conflicts)
                else:
                    merged[rel] = item.data
            if seal is None or merged != sealed:
                seal = self.commit(tool, root, seal, merged)
                result.action = "sealed" if first else "resealed"
            assert seal is not None
            result.item_id, result.files = seal.item_id, list(seal.files)
            for rel, item in plain.items():
                self.delete_plain(root, rel, item, seal.item_id, result)
        return result, merged

    def unseal(self, tool: Tool, root: Path | None = None) -> Result:
        """Put the sealed files back as the tool wrote them (0600) and forget the seal."""
        root = root or tool.root()
        with self.store.locked():
            seal = self.store.get(tool.id, root)
            if seal is None:
                raise NotFoundError(f"the {tool.title} cache in {root} is not sealed: nothing "
                                    "to unseal")
            if seal.state != "unsealing":
                self._absorb(tool, root, self.tidy(seal), first=False)  # newer plaintext first
                seal = self.store.get(tool.id, root)
                assert seal is not None
                seal.state = "unsealing"
                self.store.put(seal)
            return self._finish_unseal(tool, root, seal)

    def finish_unseal_if_needed(self, tool: Tool, root: Path) -> Seal | None:
        """The seal of ``tool`` at ``root``; an interrupted unseal is finished first (None)."""
        seal = self.store.get(tool.id, root)
        if seal is not None and not seal.item_id:  # a first seal that crashed before its commit
            for item_id in seal.pending:
                self.vault.remove(item_id, missing_ok=True)
            self.store.delete(seal)
            return None
        if seal is not None and seal.state == "unsealing":
            self._finish_unseal(tool, root, seal)
            return None
        return seal

    def _finish_unseal(self, tool: Tool, root: Path, seal: Seal) -> Result:
        result = Result(tool.id, os.fspath(root), "unsealed", seal.item_id)
        files = self.sealed_files(tool, seal)
        with self.cache_locks(tool, root, sorted(files)):
            for rel, data in sorted(files.items()):
                write_into(root, rel, data)
                result.files.append(rel)
        self.store.delete(seal)
        for item_id in {seal.item_id, *seal.pending, *seal.superseded}:
            self.vault.remove(item_id, missing_ok=True)
        return result


def _make_root(root: Path) -> bool:
    """Make the tool's directory (0700) if it does not exist; whether it was made. Its parent
    must exist: a mistyped variable such as AZURE_CONFIG_DIR makes no tree of directories."""
    try:
        os.mkdir(root, 0o700)
    except FileExistsError:
        return False
    except FileNotFoundError:
        raise InputError(f"{root.parent} does not exist: {root} not made, nothing was "
                         "sealed") from None
    except OSError as exc:
        raise InputError(f"{root} could not be made ({exc.strerror}): nothing was "
                         "sealed") from None
    return True


def _check_root(root: Path) -> None:
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{root} is not a directory (or is a symbolic link): not sealed")
    if not at.mine(st):
        raise InputError(f"{root} belongs to uid {st.st_uid}, not to you: not sealed")


def write_into(root: Path, rel: str, data: bytes, mode: int = 0o600) -> None:
    """Replace ``root/rel`` with ``data`` atomically, never through a link below ``root``;
    parents are created 0700. The one way files go back into a tool's directory."""
    path = root / rel
    for parent in reversed(path.relative_to(root).parents):
        directory = root / parent
        if directory != root and os.path.islink(directory):
            raise InputError(f"{directory} is a symbolic link; not written through")
    if os.path.islink(path):
        raise InputError(f"{path} is a symbolic link; not overwritten")
    atomic_write(path, data, mode & 0o777 or 0o600)


def merge_file(rel: str, base: bytes | None, ours: bytes, theirs: bytes
               ) -> tuple[bytes, list[str]]:
    """Three-way merge of one secret file (``base``: what the writer of ``ours`` started from,
    None if unknown). JSON caches merge by entry; other files: the changed side, ours if both."""
    if ours == theirs or (base is not None and theirs == base):
        return ours, []
    if base is not None and ours == base:
        return theirs, []
    if not rel.endswith(".json"):
        return ours, ([] if base is None else
                      [f"{rel} changed on both sides; kept the newer run's copy"])
    doc_base = None if base is None else msalmerge.loads(base, rel)
    doc_ours = msalmerge.loads(ours, rel)
    if doc_base is not None and doc_ours == doc_base:  # only re-serialised: unchanged
        return theirs, []
    merged, conflicts = msalmerge.merge(doc_base, doc_ours, msalmerge.loads(theirs, rel))
    return msalmerge.dumps(merged, like=ours), [f"{rel}: {c}" for c in conflicts]
