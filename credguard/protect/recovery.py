"""Crash recovery: finish or roll back every protect transaction a crash left in the journal.

Run by the commands that may delete (protect, scan --protect, the daemon, ...), never by a
read-only one. For each entry whose transaction is not running:

- ``intent`` (no verified copy): keep the source, then protect it afresh if it is still the
  file that was read. A vault item the transaction wrote is kept: it is complete (items are
  written atomically), and another transaction of the same content may rely on it. Without a
  keyring the entry is kept for a later command, as every entry that needs the vault is;
- ``verified``/``imported`` (verified copy, source present): run what is left — import targets,
  then the deletion of the leftover, if it still holds exactly the vaulted bytes;
- ``deleting``: finish deleting the leftover if it is the vaulted content or what this
  deletion's overwrite made of it (anything else — a new file under the same name, a ``cp``
  over the same inode — is kept and reported);
- a damaged entry is set aside (``*.damaged``) and reported; the others are still recovered.

Every directory is walked from the entry's root by the rules of :mod:`credguard.fs.safe`, and
every action is reported (and audited, when the caller passes an audit hook).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from credguard.config import Config
from credguard.errors import CredguardError, KeystoreError
from credguard.fs import safe
from credguard.fs.read import Unreadable
from credguard.protect import journal
from credguard.protect.deletion import resume_deletion, same_inode
from credguard.protect.shred import ShredRefused
from credguard.protect.transaction import Outcome, Protector
from credguard.vault.format import Record
from credguard.vault.store import Vault

Audit = Callable[[str, str], None]  # (path, what recovery did): an audit record of it


class Postponed(Exception):
    """The keyring is unavailable: the entry stays for a later command."""


class Recovery:
    """Finishes or rolls back the journal's transactions for one configuration and vault."""

    def __init__(self, cfg: Config, vault: Vault, audit: Audit | None = None) -> None:
        self.cfg = cfg
        self.vault = vault
        self.protector = Protector(cfg, vault)
        self.audit = audit

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
                where, note = self._recover(path)
                if self.audit is not None:
                    self.audit(where, note)
                notes.append(f"{where}: {note}")
        return notes

    def _recover(self, path: Path) -> tuple[str, str]:
        try:
            entry = journal.read(path)
        except CredguardError as exc:
            with contextlib.suppress(OSError):
                path.rename(path.with_suffix(".damaged"))
            return str(path), f"set aside, not recovered ({exc.message})"
        try:
            return entry.path, self.one(entry)
        except Postponed as exc:
            return entry.path, f"not finished yet ({exc})"

    def one(self, entry: journal.Entry) -> str:
        if entry.state == "intent":
            journal.remove(entry.txid)
            return self._redo(entry)
        try:
            directory = _open(entry)
        except Unreadable as exc:
            journal.remove(entry.txid)
            return f"its directory cannot be walked ({exc.reason}); nothing was deleted"
        with directory:
            if entry.state in ("verified", "imported"):
                return self._finish(entry, directory.fd)
            if entry.state == "deleting":
                return self._finish_delete(entry, directory.fd)
            journal.remove(entry.txid)
            return "protected"

    def _record(self, entry: journal.Entry) -> Record | None:
        """The verified vault copy; None if it fails verification. Postponed without a keyring."""
        try:
            record = self.vault.get(entry.item_id)
        except KeystoreError as exc:
            raise Postponed(exc.message) from None
        except CredguardError:
            return None
        return record if record.sha256 == entry.sha256 else None

    def _redo(self, entry: journal.Entry) -> str:
        try:
            with _open(entry) as directory:
                present = same_inode(directory.fd, entry) is not None
        except Unreadable:
            return "rolled back; the source is gone"
        if not present:
            return "rolled back; the source changed or is gone, so it was left alone"
        try:
            outcome = self.protector.protect(Path(entry.path),
                                             Path(entry.root or entry.directory))
        except KeystoreError as exc:  # not protected again: the entry waits for the keyring
            journal.write(entry)
            raise Postponed(exc.message) from None
        return "rolled back and protected again" if outcome.protected else \
            f"rolled back; not protected again ({outcome.error})"

    def _finish(self, entry: journal.Entry, dir_fd: int) -> str:
        if same_inode(dir_fd, entry) is None:
            journal.remove(entry.txid)
            return "already gone; the vault copy is kept"
        record = self._record(entry)
        if record is None:
            journal.remove(entry.txid)
            return "the vault copy failed verification; the source is kept"
        outcome = self.protector.finish(entry, record, dir_fd, Outcome(entry.path))
        return "protected (finished after a crash)" if outcome.protected else \
            f"not deleted ({outcome.error})"

    def _finish_delete(self, entry: journal.Entry, dir_fd: int) -> str:
        try:
            result = resume_deletion(entry, dir_fd, self.cfg)
        except ShredRefused as exc:
            journal.remove(entry.txid)
            return f"could not finish deleting ({exc.message})"
        if result is not None and not result.deleted:
            return f"not deleted ({result.message})"
        return "deleted (overwrite attempted; finished after a crash)"


def _open(entry: journal.Entry) -> safe.SafeDir:
    """The entry's directory, walked from its root (version-1 entries: the directory itself)."""
    root = entry.root or entry.directory
    top = safe.open_root(root)
    if os.path.abspath(entry.directory) == os.path.abspath(root):
        return top
    with top:
        return safe.open_dir_beneath(top, os.path.relpath(entry.directory, root))


def recover_pending(cfg_loader: Callable[[], Config],
                    vault_opener: Callable[[Config], Vault],
                    audit: Audit | None = None) -> list[str]:
    """Recover if the journal holds anything (one directory listing when it does not)."""
    if not journal.pending():
        return []
    cfg = cfg_loader()
    return Recovery(cfg, vault_opener(cfg), audit).run()
