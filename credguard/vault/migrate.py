"""Moving a vault's keys to the other keystore (``credguard vault migrate``), crash-safe as a
key rotation is.

The move makes a NEW key in the target keystore and re-encrypts every item under it; the old
keys are deleted from the source keystore only once no item needs them:

1. every item is decrypted first: a damaged one would be lost, so the move refuses (as a
   rotation does) before it changes anything;
2. the new key is stored in the target keystore (a crash here leaves a key nothing uses; a
   passphrase keystore file left so, which ``vault.json`` does not name, is replaced by the
   next attempt);
3. ``vault.json`` names the target keystore and the new key, and lists the old keys as
   retiring *in the source keystore* (``retiring_keystore``, format version 2): from here every
   command reads an item through whichever keystore holds its key;
4. the new key is read back from the target keystore, then each item still under an old key
   is re-encrypted under it (written, read back and verified: :meth:`Vault._write_item`);
5. the old keys are deleted from the source keystore;
6. ``vault.json`` forgets the source keystore (version 1 again); a passphrase keystore file
   left without keys is removed (by the next ``migrate --to keyring`` if a crash came first).

A crash at any step leaves every item readable, and ``credguard vault migrate --to TARGET``
again finishes the move (from step 4 once step 3 is on disk). ``vault destroy`` deletes the
keys from both keystores.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from credguard.errors import CredguardError, IntegrityError, StateError
from credguard.fs.atomic import fsync_dir
from credguard.vault import crypto
from credguard.vault import format as itemformat
from credguard.vault.keystore import PASSPHRASE_FILE
from credguard.vault.store import KEYSTORES, Vault, VaultState, fs_errors


@dataclass(frozen=True)
class Moved:
    """What a move did: ``action`` is ``moved``, ``resumed`` (an interrupted move finished) or
    ``unchanged`` (the vault already used the target keystore)."""

    source: str
    target: str
    action: str
    key_id: str | None
    items: int


def migrate(vault: Vault, target: str) -> Moved:
    """Move ``vault``'s keys to the ``target`` keystore (see the module docstring). The vault
    must have been opened with the keystore its ``vault.json`` names, and with an opener for
    the other one."""
    if target not in KEYSTORES:
        raise ValueError(f"unknown keystore {target!r}")
    with vault._locked():
        state = vault.read_state() or VaultState(vault.keystore_kind)
        source = state.moving_from or state.keystore
        if state.moving_from is not None and state.keystore != target:
            raise StateError(f"a move of the vault's keys to the {state.keystore} keystore is "
                             "unfinished; finish it first: credguard vault migrate --to "
                             f"{state.keystore}")
        if source == target:
            if target == "keyring":  # one a move killed at its very end left behind
                _remove_passphrase_file(vault)
            return Moved(source, target, "unchanged", state.key_id, len(vault.ids()))
        _verify_all(vault)
        if state.moving_from is None and state.key_id is None and not vault.ids():
            vault._write_state(VaultState(target))  # nothing encrypted yet: only the choice moves
            return Moved(source, target, "moved", None, 0)
        action = "resumed" if state.moving_from is not None else "moved"
        if state.moving_from is None:
            state = _start(vault, state, target)
        assert state.key_id is not None
        count = _reencrypt(vault, state.key_id, vault.keystore_for(target).get_key(state.key_id))
        old = vault.keystore_for(source)
        for key_id in state.retiring:
            old.delete_key(key_id)
        vault._write_state(VaultState(target, state.key_id))
        if source == "passphrase":
            _remove_passphrase_file(vault)
        return Moved(source, target, action, state.key_id, count)


def _verify_all(vault: Vault) -> None:
    bad = [i for i, r in vault.records() if isinstance(r, CredguardError)]
    if bad:
        raise IntegrityError(f"{len(bad)} item(s) fail verification ({', '.join(bad)}); export "
                             "or remove them before moving the vault's keys")


def _start(vault: Vault, state: VaultState, target: str) -> VaultState:
    """Steps 2 and 3: a new key in ``target``, then ``vault.json`` naming it."""
    if target == "passphrase":
        _remove_passphrase_file(vault)  # one vault.json does not name holds no key in use
    key_id, key = itemformat.new_key_id(), crypto.new_key()
    vault.keystore_for(target).put_key(key_id, key)
    old = sorted({k for k in (state.key_id, *state.retiring) if k})
    moving = VaultState(target, key_id, old, retiring_keystore=state.keystore)
    vault._write_state(moving)
    return moving


def _reencrypt(vault: Vault, key_id: str, key: bytes) -> int:
    """Step 4: every item not yet under ``key_id`` rewritten under it; how many items there
    are."""
    vault._keys[key_id] = key
    items = vault.ids()
    for item_id in items:
        if itemformat.read_key_id(vault._read_blob(item_id)) != key_id:
            vault._write_item(item_id, vault.get(item_id), key_id, key)
    return len(items)


def _remove_passphrase_file(vault: Vault) -> None:
    with (fs_errors(vault.dir, "remove the passphrase keystore of"),
          contextlib.suppress(FileNotFoundError)):
        (vault.dir / PASSPHRASE_FILE).unlink()
        fsync_dir(vault.dir, strict=True)
