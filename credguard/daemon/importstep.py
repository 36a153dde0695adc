"""The import step from the daemon: what "Open for import" and "Restore" do, pressed on a
protected file's notification or in the tray's recent menu (the ``item`` control command).

Both give back a credential the daemon holds the key to, so both are refused unless the keyring
would give that key to the user right now without asking (:meth:`KeyringKeystore.unlocked_now`,
as for ``exec``); another keystore (a passphrase the daemon was started with) is the user's own
process's.

* **Open for import** writes the item under its original name into a new open copy in the
  daemon's RAM directory (:mod:`credguard.handoff.opened`; never a disk: without a RAM file
  system it is refused) for ``credguard open``'s default time, and wakes the daemon's timer,
  which removes it then. Its path goes on the clipboard when the daemon has one.
* **Restore** writes the file back where it came from, allowlisted first
  (:mod:`credguard.handoff.restore`): never over an existing file, never through a link.

The caller audits, notifies and answers; errors are :class:`CredguardError`, with nothing
written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from credguard.config import Config
from credguard.daemon.expiry import OpenCopies
from credguard.errors import KeystoreError, StateError
from credguard.handoff import clipboard, opened, ramdir, restore
from credguard.notify.messages import OPEN, RESTORE
from credguard.vault.format import Record
from credguard.vault.keystore import KeyringKeystore
from credguard.vault.store import Vault

__all__ = ["ACTIONS", "OPEN", "RESTORE", "Done", "open_copy", "restore_file"]

log = logging.getLogger("credguard.daemon")
ACTIONS = (OPEN, RESTORE)  # the notification's button keys, and the `item` command's actions
ELSEWHERE = "move it away first, or: credguard restore ID --to PATH"
LOCKED = ("the keyring is locked (or cannot say whether it is without asking): unlock it, then "
          "try again")


@dataclass(frozen=True)
class Done:
    """What an action did: the file it wrote (the open copy's, or the restored one), the item's
    record, and the open copy (None for a restore) or the allowlisted fingerprint."""

    path: str
    record: Record
    copy: opened.Copy | None = None
    fingerprint: str = ""
    clipboard: str | None = None  # the tool that put the open copy's path on the clipboard


def check_unlocked(vault: Vault | None) -> Vault:
    """The vault, if its key may be used on the user's behalf now; StateError/KeystoreError
    otherwise."""
    if vault is None:
        raise StateError("the daemon holds no vault key (no usable keyring)")
    if isinstance(vault.keystore, KeyringKeystore) and not vault.keystore.unlocked_now():
        raise KeystoreError(LOCKED)
    return vault


def open_copy(vault: Vault | None, item_id: str, copies: OpenCopies) -> Done:
    """Open ``item_id`` for import for :data:`opened.DEFAULT_SECONDS`; the timer is woken."""
    record = check_unlocked(vault).get(item_id)
    base = ramdir.ram_base(create=True)
    if base is None:
        raise StateError(ramdir.no_ram())
    copy = opened.place(base, item_id, record.name, record.data, opened.DEFAULT_SECONDS)
    copies.wake()
    log.info("vault item %s opened for import until %d", item_id, copy.expires)
    path = str(copy.file or copy.directory)
    return Done(path, record, copy=copy, clipboard=clipboard.copy_path(path))


def restore_file(cfg: Config, vault: Vault | None, item_id: str,
                 reload: Callable[[], None]) -> Done:
    """Restore ``item_id`` where it came from (``reload`` applies the allowlist entry)."""
    record = check_unlocked(vault).get(item_id)
    target = restore.target_for(record)
    fingerprint = restore.write_back(cfg, record, target, reload,
                                     lambda message: log.warning("%s", message), ELSEWHERE)
    log.info("vault item %s restored to %r", item_id, target)
    return Done(target, record, fingerprint=fingerprint)
