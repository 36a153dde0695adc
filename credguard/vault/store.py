"""The vault on disk: one encrypted file per item, written atomically under a cross-process lock.

Layout of the vault directory (0700, owned by the user; anything else is refused):

- ``<item id>.cgv``: one item each (see :mod:`credguard.vault.format`); names and metadata live
  only inside the ciphertext, there is no plaintext index;
- ``vault.json``: non-secret state: format version, which keystore holds the keys, the current
  key id, key ids being retired by an interrupted rotation or keystore move, and (only while a
  move between keystores is unfinished, see :mod:`credguard.vault.migrate`) the keystore those
  retiring keys are in: version 2, which an older credguard refuses rather than misreads;
- ``passphrase-keystore.json``: the wrapped keys of the passphrase keystore, when it is used;
- ``.lock``: the lock file serialising writers across processes.

Every file-system error on the vault path (read-only, full, no permission, I/O error: on the
lock, a write, an fsync or a read-back) is a :class:`StateError` naming the vault directory and
the error, and a failed write leaves no item behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credguard.errors import (
    CredguardError,
    IntegrityError,
    NotFoundError,
    StateError,
    check_version,
)
from credguard.fs import lock
from credguard.fs.atomic import atomic_write, atomic_write_many, fsync_dir, private_dir
from credguard.fs.read import Unreadable, read_at
from credguard.vault import crypto
from credguard.vault import format as itemformat
from credguard.vault.format import Record
from credguard.vault.keystore import PASSPHRASE_FILE, Keystore

STATE_VERSION = 2  # 2 adds "retiring_keystore", written only while a keystore move is unfinished
KEYSTORES = ("keyring", "passphrase")


def _no_step(_label: str) -> None:
    """The fault-injection hook when none is installed."""


ITEM_SUFFIX = ".cgv"
MAX_ITEM = 64 << 20  # an item is the original file (≤ the scan cap) plus a small header


@dataclass
class VaultState:
    """``vault.json``: which keystore, which key is current, which keys are being retired and,
    while a move between keystores is unfinished, which keystore those retiring keys are in."""

    keystore: str
    key_id: str | None = None
    retiring: list[str] = field(default_factory=list)
    retiring_keystore: str | None = None

    @property
    def moving_from(self) -> str | None:
        """The keystore an unfinished move left keys in (None: no move is unfinished)."""
        moving = self.retiring_keystore
        return moving if moving is not None and moving != self.keystore else None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"version": 1, "keystore": self.keystore, "key_id": self.key_id,
                               "retiring": self.retiring}
        if self.moving_from is not None:
            doc.update(version=STATE_VERSION, retiring_keystore=self.moving_from)
        return doc


def fs_failure(directory: Path, doing: str, exc: OSError) -> StateError:
    """A file-system error on the vault path, as the one message that names the vault
    directory, what failed and the error (``EROFS``, ``ENOSPC``, ``EIO``, ...)."""
    code = errno.errorcode.get(exc.errno or 0)
    why = (exc.strerror or "unknown error") + (f" ({code})" if code else "")
    hint = "; free some space and try again" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return StateError(f"cannot {doing} the vault in {directory}: {why}{hint}")


@contextlib.contextmanager
def fs_errors(directory: Path, doing: str) -> Iterator[None]:
    """Turn an OSError raised inside into :func:`fs_failure`'s StateError."""
    try:
        yield
    except OSError as exc:
        raise fs_failure(directory, doing, exc) from None


def check_private_dir(path: Path) -> None:
    """Refuse a vault directory that is a link, not ours, or open to group/others."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise fs_failure(path, "open", exc) from None
    if not stat.S_ISDIR(st.st_mode):
        raise StateError(f"refusing to use {path}: it is not a directory (or is a symlink)")
    getuid = getattr(os, "getuid", None)
    if getuid is not None and st.st_uid != getuid():
        raise StateError(f"refusing to use {path}: it belongs to uid {st.st_uid}, not to you")
    if getuid is not None and st.st_mode & 0o077:
        raise StateError(
            f"refusing to use {path}: its mode is {stat.S_IMODE(st.st_mode):04o}, so other "
            f"users may read or replace vault files; fix it with: chmod 700 '{path}'")


class Vault:
    """Encrypted items in a private directory, keys in a :class:`Keystore`."""

    def __init__(self, directory: Path, keystore: Keystore, keystore_kind: str,
                 opener: Callable[[str], Keystore] | None = None) -> None:
        """``opener`` opens another kind of keystore, for the keys an unfinished move between
        keystores left behind (none: such keys cannot be read)."""
        self.dir = directory
        self.keystore = keystore
        self.keystore_kind = keystore_kind
        self._opener = opener
        self._stores: dict[str, Keystore] = {keystore_kind: keystore}
        self._keys: dict[str, bytes] = {}

    # -- state ------------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.dir / "vault.json"

    def _ensure_dir(self) -> None:
        check_private_dir(self.dir)
        private_dir(self.dir)
        check_private_dir(self.dir)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with fs_errors(self.dir, "create"):
            self._ensure_dir()
        with contextlib.ExitStack() as held:
            with fs_errors(self.dir, "lock"):
                held.enter_context(lock.exclusive(self.dir / ".lock"))
            yield

    def read_state(self) -> VaultState | None:
        return read_state(self.dir)

    def _write_state(self, state: VaultState) -> None:
        with fs_errors(self.dir, "save the state of"):
            atomic_write(self.state_file, json.dumps(state.to_json(), indent=2).encode(),
                         strict=True)

    def ensure_key(self) -> str:
        """Make sure the current key exists and is readable (creating it for a new vault);
        raises KeystoreError when the keyring cannot give it. Returns its key id."""
        with self._locked():
            return self._current_key()[0]

    def keystore_for(self, kind: str) -> Keystore:
        """The keystore of ``kind``: this vault's own, or another one opened once."""
        store = self._stores.get(kind)
        if store is None:
            if self._opener is None:
                raise StateError(f"the {kind} keystore of the vault in {self.dir} is not open")
            store = self._stores[kind] = self._opener(kind)
        return store

    def _key(self, key_id: str) -> bytes:
        key = self._keys.get(key_id)
        if key is None:
            state = self.read_state()
            moved = state.moving_from if state is not None else None
            holder = (self.keystore_for(moved) if moved and state and key_id in state.retiring
                      else self.keystore)
            key = holder.get_key(key_id)
            self._keys[key_id] = key
        return key

    def _current_key(self) -> tuple[str, bytes]:
        """The key new items are written with; created (and stored) on first use."""
        state = self.read_state() or VaultState(self.keystore_kind)
        if state.key_id is None:
            key_id, key = itemformat.new_key_id(), crypto.new_key()
            self.keystore.put_key(key_id, key)
            state.key_id = key_id
            self._write_state(state)
            self._keys[key_id] = key
        return state.key_id, self._key(state.key_id)

    # -- items ------------------------------------------------------------------------------

    def _path(self, item_id: str) -> str:
        """An item's file. A string, not a Path: a Path interns each new name, and the
        daemon's table of interned strings would grow with every file it protects."""
        if not itemformat.is_item_id(item_id):
            raise StateError(f"not a vault item id: {item_id!r}")
        return os.path.join(self.dir, f"{item_id}{ITEM_SUFFIX}")

    def ids(self) -> list[str]:
        """Every item id, sorted; no decryption."""
        return item_ids(self.dir)

    def _read_blob(self, item_id: str) -> bytes:
        path = self._path(item_id)
        try:
            return read_at(path, None, MAX_ITEM).data
        except Unreadable as exc:
            if exc.reason == "not-found":
                raise NotFoundError(f"no vault item {item_id}") from None
            raise StateError(f"cannot read item {item_id} of the vault in {self.dir}: "
                             f"{exc.detail or exc.reason}") from None

    def get(self, item_id: str) -> Record:
        """Decrypt one item; IntegrityError (opaque) if it was damaged or tampered with."""
        blob = self._read_blob(item_id)
        return itemformat.unpack(blob, self._key(itemformat.read_key_id(blob)), item_id)

    def add(self, record: Record, item_id: str | None = None,
            step: Callable[[str], None] = _no_step) -> str:
        """Encrypt, write atomically, read back and verify; returns the item id.

        ``item_id`` may be chosen by the caller beforehand (the protect journal records it
        first); ``step`` is the fault-injection hook, called between write and read-back.
        On any failure (disk full included) no partial item is left behind.
        """
        item_id = item_id or itemformat.new_item_id()
        self.add_many([(record, item_id)], step)
        return item_id

    def add_many(self, items: Sequence[tuple[Record, str]],
                 step: Callable[[str], None] = _no_step) -> None:
        """:meth:`add` for several (record, new item id) pairs as one group commit: every item
        encrypted and written, fsynced, renamed into place, one directory sync, then each read
        back and verified. All or nothing: on any failure every item this call wrote is
        removed and the error raised."""
        for record, _ in items:
            if crypto.sha256_hex(record.data) != record.sha256:
                raise IntegrityError("record checksum does not match its data")
        if len({item_id for _, item_id in items}) != len(items):
            raise StateError("the same vault item id twice in one write")
        with self._locked():
            key_id, key = self._current_key()
            for _, item_id in items:
                if os.path.lexists(self._path(item_id)):
                    raise StateError(f"vault item {item_id} exists already")
            self._write_items(items, key_id, key, step)

    def _write_item(self, item_id: str, record: Record, key_id: str, key: bytes) -> None:
        """Re-encrypt an item that exists (a key rotation, a keystore move), read back and
        verified. Nothing is removed on a failure: the atomic replace left the old item (still
        readable under its own key) or the new one (which ``vault verify`` then reports)."""
        self._write_items([(record, item_id)], key_id, key, new=False)

    def _write_items(self, items: Sequence[tuple[Record, str]], key_id: str, key: bytes,
                     step: Callable[[str], None] = _no_step, *, new: bool = True) -> None:
        """Write ``items`` under ``key`` and verify each; ``new``: they did not exist, so all
        are removed again on a failure."""
        written = [self._path(item_id) for _, item_id in items] if new else []
        try:
            with fs_errors(self.dir, f"write item {items[0][1] if items else ''} to"):
                # strict: an item whose rename may not be durable is never reported written
                atomic_write_many([(self._path(item_id), itemformat.pack(record, key, key_id,
                                                                          item_id))
                                   for record, item_id in items], strict=True)
            step("after-item-write")
            for record, item_id in items:
                try:
                    back = self.get(item_id)
                except NotFoundError:
                    raise StateError(f"vault item {item_id} vanished before it was read back "
                                     f"from the vault in {self.dir}") from None
                if back.sha256 != record.sha256:  # pragma: no cover - unpack checks this
                    raise IntegrityError("vault item did not read back identically")
        except CredguardError:
            if written:
                self._discard(*written)
            raise

    def _discard(self, *written: str) -> None:
        """Remove failed items; best effort (a read-only vault cannot hold a new one anyway)."""
        with contextlib.suppress(OSError):
            for path in written:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            fsync_dir(self.dir)

    def remove(self, item_id: str, missing_ok: bool = False) -> None:
        with self._locked(), fs_errors(self.dir, f"remove item {item_id} from"):
            path = self._path(item_id)
            try:
                os.unlink(path)
            except FileNotFoundError:
                if missing_ok:
                    return
                raise NotFoundError(f"no vault item {item_id}") from None
            fsync_dir(self.dir, strict=True)

    def has(self, item_id: str) -> bool:
        with fs_errors(self.dir, "read"):
            return Path(self._path(item_id)).exists()  # asked rarely: its Path may intern

    def records(self) -> Iterator[tuple[str, Record | CredguardError]]:
        """Every item decrypted, or the error that item failed with (others still load)."""
        for item_id in self.ids():
            try:
                yield item_id, self.get(item_id)
            except (IntegrityError, StateError, NotFoundError) as exc:
                yield item_id, exc

    # -- keys -------------------------------------------------------------------------------

    def rotate_key(self) -> tuple[str, int]:
        """Re-encrypt every item under a new key; the old keys go only after all are rewritten.

        A crash part-way leaves every item readable (each names its own key id) and the old key
        ids listed in ``retiring``; the next rotation finishes retiring them.
        """
        with self._locked():
            state = self.read_state() or VaultState(self.keystore_kind)
            refuse_while_moving(state, "rotating the key")
            records = list(self.records())
            bad = [i for i, r in records if isinstance(r, CredguardError)]
            if bad:
                raise IntegrityError(f"{len(bad)} item(s) fail verification ({', '.join(bad)}); "
                                     "export or remove them before rotating the key")
            old = [k for k in [state.key_id, *state.retiring] if k]
            key_id, key = itemformat.new_key_id(), crypto.new_key()
            self.keystore.put_key(key_id, key)
            self._keys[key_id] = key
            state.key_id, state.retiring = key_id, sorted(set(old))
            self._write_state(state)
            for item_id, record in records:
                assert isinstance(record, Record)
                self._write_item(item_id, record, key_id, key)
            for old_id in state.retiring:
                self.keystore.delete_key(old_id)
                self._keys.pop(old_id, None)
            state.retiring = []
            self._write_state(state)
            return key_id, len(records)

    def destroy(self) -> int:
        """Crypto-erase: delete every key from the keystore(s) first, then the files (the
        passphrase keystore's file too, whichever keystore the vault uses now)."""
        with self._locked():
            state = self.read_state()
            key_ids = set(state.retiring if state else [])
            if state and state.key_id:
                key_ids.add(state.key_id)
            for item_id in self.ids():
                with contextlib.suppress(CredguardError):
                    key_ids.add(itemformat.read_key_id(self._read_blob(item_id)))
            moved = state.moving_from if state else None
            stores = [self.keystore, *([self.keystore_for(moved)] if moved else [])]
            for key_id in sorted(key_ids):
                for store in stores:
                    store.delete_key(key_id)
            items = self.ids()
            with fs_errors(self.dir, "remove the files of"):
                for item_id in items:
                    os.unlink(self._path(item_id))
                for name in (PASSPHRASE_FILE, self.state_file.name):
                    with contextlib.suppress(FileNotFoundError):
                        (self.dir / name).unlink()
                fsync_dir(self.dir, strict=True)
            return len(items)


def refuse_while_moving(state: VaultState, doing: str) -> None:
    """StateError if a move between keystores is unfinished: it must be finished first."""
    if state.moving_from is not None:
        raise StateError(f"a move of the vault's keys to the {state.keystore} keystore is "
                         f"unfinished; finish it before {doing}: credguard vault migrate "
                         f"--to {state.keystore}")


def item_ids(directory: Path) -> list[str]:
    """The ids of the items in a vault directory, sorted, without decrypting anything."""
    check_private_dir(directory)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise fs_failure(directory, "list the items of", exc) from None
    stems = (n[: -len(ITEM_SUFFIX)] for n in names if n.endswith(ITEM_SUFFIX))
    return sorted(s for s in stems if itemformat.is_item_id(s))


def read_state(directory: Path) -> VaultState | None:
    """``vault.json`` of a vault directory, or None for a vault never written to."""
    path = directory / "vault.json"
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise fs_failure(directory, "read the state of", exc) from None
    except ValueError:
        raise StateError(f"{path} is damaged (not JSON)") from None
    try:
        check_version(doc.get("version") if isinstance(doc, dict) else None, STATE_VERSION,
                      str(path), StateError)
    except ValueError:
        raise StateError(f"{path} is damaged") from None
    keystore, key_id, retiring = doc.get("keystore"), doc.get("key_id"), doc.get("retiring", [])
    moving = doc.get("retiring_keystore")
    if keystore not in KEYSTORES or not (key_id is None or itemformat.is_key_id(key_id)):
        raise StateError(f"{path} is damaged")
    if not isinstance(retiring, list) or not all(itemformat.is_key_id(k) for k in retiring):
        raise StateError(f"{path} is damaged")
    if moving is not None and moving not in KEYSTORES:
        raise StateError(f"{path} is damaged")
    return VaultState(keystore, key_id, retiring, moving)

