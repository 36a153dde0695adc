"""Crash recovery: finish or roll back every protect transaction a crash left in the journal.

Run at the start of every credguard command. For each entry whose transaction is not running:

- ``intent`` (no verified copy): drop the partial vault item, keep the source, then protect the
  source afresh if it is still the file that was read;
- ``verified``/``imported`` (verified copy, source present): run what is left — import targets,
  then the deletion of the leftover;
- ``deleting``: finish deleting the leftover, under its random name or its own;
- ``done``: forget the entry.

Afterwards each credential is in the vault exactly once and no plaintext leftover remains.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from credguard.config import Config
from credguard.errors import CredguardError, KeystoreError
from credguard.fs import read
from credguard.fs.read import Unreadable
from credguard.protect import journal
from credguard.protect.deletion import resume_deletion, same_inode
from credguard.protect.shred import ShredRefused
from credguard.protect.transaction import Outcome, Protector
from credguard.vault.store import Vault


class Recovery:
    """Finishes or rolls back the journal's transactions for one configuration and vault."""

    def __init__(self, cfg: Config, vault: Vault) -> None:
        self.cfg = cfg
        self.vault = vault
        self.protector = Protector(cfg, vault)

    def run(self) -> list[str]:
        notes = []
        for path in journal.pending():
            with journal.claim(path) as ours:
                if not ours:
                    continue  # a live transaction (another credguard process) owns it
                if not path.exists():  # finished between the listing and the claim
                    with contextlib.suppress(FileNotFoundError):
                        path.with_suffix(".lock").unlink()
                    continue
                notes.append(self.one(journal.read(path)))
        return notes

    def one(self, entry: journal.Entry) -> str:
        where = os.path.join(entry.directory, entry.name)
        if entry.state == "intent":
            if not entry.existing:
                self.vault.remove(entry.item_id, missing_ok=True)
            journal.remove(entry.txid)
            return self._redo(entry, where)
        try:
            dir_fd = read.open_dir(entry.directory)
        except Unreadable:
            journal.remove(entry.txid)
            return f"{where}: its directory is gone; nothing left to delete"
        try:
            if entry.state in ("verified", "imported"):
                return self._finish(entry, dir_fd, where)
            if entry.state == "deleting":
                return self._finish_delete(entry, dir_fd, where)
            journal.remove(entry.txid)
            return f"{where}: protected"
        finally:
            os.close(dir_fd)

    def _redo(self, entry: journal.Entry, where: str) -> str:
        try:
            dir_fd = read.open_dir(entry.directory)
        except Unreadable:
            return f"{where}: rolled back; the source is gone"
        try:
            present = same_inode(dir_fd, entry) is not None
        finally:
            os.close(dir_fd)
        if not present:
            return f"{where}: rolled back; the source changed or is gone, so it was left alone"
        outcome = self.protector.protect(Path(where))
        return f"{where}: rolled back and protected again" if outcome.protected else \
            f"{where}: rolled back; not protected again ({outcome.error})"

    def _finish(self, entry: journal.Entry, dir_fd: int, where: str) -> str:
        if same_inode(dir_fd, entry) is None:
            journal.remove(entry.txid)
            return f"{where}: already gone; the vault copy is kept"
        try:
            record = self.vault.get(entry.item_id)
        except CredguardError as exc:
            if isinstance(exc, KeystoreError):  # the keyring is unavailable: try again later
                return f"{where}: not finished yet ({exc.message})"
            journal.remove(entry.txid)
            return f"{where}: the vault copy failed verification; the source is kept"
        outcome = self.protector.finish(entry, record, dir_fd, Outcome(where))
        return f"{where}: protected (finished after a crash)" if outcome.protected else \
            f"{where}: not deleted ({outcome.error})"

    def _finish_delete(self, entry: journal.Entry, dir_fd: int, where: str) -> str:
        try:
            result = resume_deletion(entry, dir_fd, self.cfg)
        except ShredRefused as exc:
            return f"{where}: could not finish deleting ({exc.message})"
        if result is not None and not result.deleted:
            return f"{where}: not deleted ({result.message})"
        return f"{where}: deleted (overwrite attempted; finished after a crash)"


def recover_pending(cfg_loader: Callable[[], Config],
                    vault_opener: Callable[[Config], Vault]) -> list[str]:
    """Recover if the journal holds anything (one directory listing when it does not)."""
    if not journal.pending():
        return []
    cfg = cfg_loader()
    return Recovery(cfg, vault_opener(cfg)).run()
