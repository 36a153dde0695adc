"""The protect transaction: read, journal, vault, verify, import targets, delete the leftover.

Durable before destructive: not one byte of the source is overwritten before its vault copy
has been written, fsynced, read back, decrypted and compared. Every step is journaled first
(:mod:`credguard.protect.journal`), so :mod:`credguard.protect.recovery` can finish or roll
back a transaction that a crash interrupted at any point.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credguard.config import Config
from credguard.detect.kinds import KINDS
from credguard.errors import CredguardError, InputError, KeystoreError
from credguard.fs import at, safe
from credguard.fs.read import SkipReason, Unreadable
from credguard.protect import journal, targets
from credguard.protect.deletion import delete_leftover, delete_leftovers, new_entry
from credguard.protect.faults import Step, crash_hook_from_env
from credguard.protect.intake import Intake, Refused, read_in
from credguard.protect.shred import Identity, ShredRefused, ShredResult
from credguard.vault.format import Record, new_item_id
from credguard.vault.store import Vault


@dataclass
class Outcome:
    """What happened to one path. ``reason`` is a stable id when it was not protected."""

    path: str
    kind: str | None = None
    protected: bool = False
    item_id: str | None = None
    already_in_vault: bool = False
    targets: list[targets.TargetResult] = field(default_factory=list)
    deletion: ShredResult | None = None
    reason: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "kind": self.kind, "protected": self.protected,
            "id": self.item_id,
            "item_id": self.item_id,  # deprecated alias of "id", kept for one version
            "already_in_vault": self.already_in_vault,
            "targets": [t.to_json() for t in self.targets],
            "deletion": None if self.deletion is None else {
                "deleted": self.deletion.deleted, "result": self.deletion.message,
                "limits": list(self.deletion.limits), "fs_type": self.deletion.fs_type},
            "revoke": KINDS[self.kind].revoke if self.kind else None,
            "reason": self.reason, "error": self.error,
        }

    def refuse(self, reason: str, error: str) -> Outcome:
        self.reason, self.error = reason, error
        return self


BATCH = 64  # files protected together at most (one group commit)
Request = tuple[Path, Path | None]  # a path, and the root its walk starts from (None: its parent)


@dataclass(frozen=True)
class Staged:
    """A file read in for a transaction: what was read, its open directory, its walk's root."""

    source: Intake
    fd: int
    root: str


class Protector:
    """Runs protect transactions against one vault under one configuration."""

    def __init__(self, cfg: Config, vault: Vault, step: Step | None = None,
                 one_at_a_time: contextlib.AbstractContextManager[Any] | None = None) -> None:
        self.cfg = cfg
        self.vault = vault
        self.step = step or crash_hook_from_env()
        self._known: dict[str, str] | None = None
        # held for a whole batch: the daemon's lock, shared by the Protectors of its worker
        # and of its control requests, so that their group commits never interleave
        self._one = one_at_a_time if one_at_a_time is not None else contextlib.nullcontext()

    def known(self) -> dict[str, str]:
        """sha256 -> item id of every readable item (built once, kept up to date)."""
        if self._known is None:
            self._known = {r.sha256: i for i, r in self.vault.records()
                           if isinstance(r, Record)}
        return self._known

    def protect(self, path: Path, root: Path | None = None) -> Outcome:
        """Protect ``path``, opened from ``root`` one component at a time by the rules of
        :mod:`credguard.fs.safe` (no symlink, no other file system, no directory another user
        could change). Without ``root``, a path the user named: its parent is the root (its
        own parents are the user's choice). A path that cannot be walked is refused untouched.
        """
        with self.protect_batch([(path, root)]) as outcomes:
            return outcomes[0]

    @contextlib.contextmanager
    def protect_batch(self, requests: Sequence[Request]) -> Iterator[list[Outcome]]:
        """Protect several (path, root) pairs as :meth:`protect` does each, as one group
        commit: their journal entries written together, their vault items written together,
        then each leftover deleted. Yields each one's outcome, in order; the journal entries
        of the deleted files are forgotten when the ``with`` block ends, so what the caller
        records there (the daemon's audit records) is on disk first, and a crash before that
        leaves recovery to finish and report them. Every file keeps every guarantee of a
        transaction of its own: its intent and its vault copy are durable and verified before
        its first byte is overwritten."""
        with self._one, contextlib.ExitStack() as stack:
            outcomes, staged = [], []
            for path, root in requests:
                outcome, source = self._take(path, root, stack)
                outcomes.append(outcome)
                if source is not None:
                    staged.append((source, outcome))
            done = self._transact(staged, stack) if staged else []
            try:
                yield outcomes
            finally:
                if done:
                    journal.forget(done)

    def _take(self, path: Path, root: Path | None,
              stack: contextlib.ExitStack) -> tuple[Outcome, Staged | None]:
        """Walk to ``path`` and read it in; its directory stays open on ``stack``."""
        full = Path(os.path.abspath(path))
        outcome = Outcome(str(full))
        base = Path(os.path.abspath(root)) if root is not None else full.parent
        try:
            with safe.open_root(base) as top:
                parent, _name = safe.walk(top, os.path.relpath(full, base))
        except Unreadable as exc:
            return outcome.refuse(exc.reason, f"not walked from {base}: {exc.detail}"), None
        stack.enter_context(parent)
        try:
            source = read_in(parent.fd, full, self.cfg["scan.max_file_size"],
                             vet=lambda st: self._vet(st, parent.dev))
        except (Unreadable, Refused) as exc:
            return outcome.refuse(exc.reason, exc.detail), None
        outcome.kind = source.record.kind
        return outcome, Staged(source, parent.fd, str(base))

    def import_copy(self, path: Path, root: Path | None = None) -> str:
        """Vault a copy of ``path`` (once per content) and leave the file alone; its item id.
        Read through a walk from ``root`` as :meth:`protect` does (reading only: a directory
        others can change does not stop it). InputError if it is not a readable credential."""
        full = Path(os.path.abspath(path))
        base = Path(os.path.abspath(root)) if root is not None else full.parent
        try:
            with safe.open_root(base, writers=False) as top:
                parent, _name = safe.walk(top, os.path.relpath(full, base), writers=False)
            with parent:
                record = read_in(parent.fd, full, self.cfg["scan.max_file_size"]).record
        except (Unreadable, Refused) as exc:
            raise InputError(f"{full}: not imported ({exc.reason}: {exc.detail})") from None
        known = self.known()
        if record.sha256 not in known:
            known[record.sha256] = self.vault.add(record)
        return known[record.sha256]

    def _vet(self, st: os.stat_result, dev: int) -> None:
        """Refuse a file only its owner may delete, one other names keep reachable, or one
        mounted from another file system."""
        if st.st_dev != dev:
            raise Refused(SkipReason.OTHER_FILESYSTEM, "on another file system than its root")
        if not at.mine(st):
            raise Refused("other-owner", f"owned by uid {st.st_uid}, not by you")
        if st.st_nlink > 1 and not self.cfg["protect.allow_hard_links"]:
            raise Refused("hard-links", f"{st.st_nlink} hard links keep the data reachable "
                                        "(protect.allow_hard_links = true to proceed)")

    def _transact(self, staged: list[tuple[Staged, Outcome]],
                  stack: contextlib.ExitStack) -> list[str]:
        """Journal, vault and verify every staged file, then finish each; the txids the caller
        forgets once it has recorded the outcomes."""
        entries, fresh = [], dict[str, str]()  # sha256 -> new item id in this batch
        for s, outcome in staged:
            record, f = s.source.record, s.source.file
            existing = self._existing(record.sha256) or fresh.get(record.sha256)
            entry = new_entry(
                str(s.source.path.parent), s.source.path.name,
                Identity(f.dev, f.ino, f.size, f.mtime_ns), record.data, kind=record.kind,
                item_id=existing or new_item_id(), existing=existing is not None,
                root=s.root, passes=self.cfg["protect.passes"])
            fresh.setdefault(record.sha256, entry.item_id)
            outcome.item_id, outcome.already_in_vault = entry.item_id, entry.existing
            stack.enter_context(journal.held(entry.txid))
            entries.append(entry)
        pending = [entry.txid for entry in entries]  # to roll back (forget) on an error
        try:
            journal.write_many(entries)
            self.step("after-intent")
            self._store([(e, s.source.record) for e, (s, _) in zip(entries, staged, strict=True)])
        except KeystoreError:
            journal.forget(pending)  # the keyring went away: the caller decides
            raise                    # (protect/act.py: alert-only mode)
        except CredguardError as exc:
            journal.forget(pending)
            for _, outcome in staged:
                outcome.refuse("vault", exc.message)
            return []
        except BaseException:  # a bug or an interrupt: nothing was deleted; roll back
            journal.forget(pending)
            raise
        return self._finish_all(entries, staged)

    def _finish_all(self, entries: list[journal.Entry],
                    staged: list[tuple[Staged, Outcome]]) -> list[str]:
        """From verified vault copies: a file with import targets is finished on its own
        (:meth:`finish`); the others' leftovers are deleted together. An error rolls back
        (forgets) every entry whose deletion had not begun, then is raised."""
        together: list[tuple[journal.Entry, Staged, Outcome]] = []
        pending = [entry.txid for entry in entries]
        try:
            for entry, (s, outcome) in zip(entries, staged, strict=True):
                if targets.applicable(self.cfg.targets, s.source.record.kind):
                    pending.remove(entry.txid)
                    self.finish(entry.at("verified"), s.source.record, s.fd, outcome)
                else:
                    together.append((entry.at("verified"), s, outcome))
        except BaseException:
            journal.forget(pending)
            raise
        if not together:
            return []
        results = delete_leftovers([(entry, s.fd) for entry, s, _ in together], self.cfg,
                                   self.step)
        for (_, _, outcome), result in zip(together, results, strict=True):
            self._deleted(outcome, result)
        if any(outcome.protected for _, _, outcome in together):
            self.step("after-done")
        return [entry.txid for entry, _, _ in together]

    @staticmethod
    def _deleted(outcome: Outcome, result: ShredResult | ShredRefused) -> Outcome:
        if isinstance(result, ShredRefused):
            return outcome.refuse(result.reason, f"{result.message}; the vault copy is kept")
        outcome.deletion = result
        if not result.deleted:  # failed part-way (I/O error): say where it was left
            return outcome.refuse("io-error", f"{result.message}; the vault copy is kept")
        outcome.protected = True
        return outcome

    def _existing(self, sha256: str) -> str | None:
        """The id of the vault item holding this content, if it is still there (an item the
        user removed meanwhile is forgotten, and the content stored afresh)."""
        known = self.known()
        item_id = known.get(sha256)
        if item_id is not None and not self.vault.has(item_id):
            del known[sha256]
            return None
        return item_id

    def _store(self, batch: list[tuple[journal.Entry, Record]]) -> None:
        """Write the new vault copies together and verify them, then verify the copies that
        were there already (or written for the same content earlier in this batch)."""
        new = [(record, entry.item_id) for entry, record in batch if not entry.existing]
        if new:
            self.vault.add_many(new, self.step)
            self.known().update((record.sha256, item_id) for record, item_id in new)
        for entry, record in batch:
            if entry.existing and self.vault.get(entry.item_id).sha256 != record.sha256:
                raise CredguardError("the vault copy does not match")  # pragma: no cover
        self.step("after-verify")

    def finish(self, entry: journal.Entry, record: Record, dir_fd: int,
               outcome: Outcome) -> Outcome:
        """From a verified vault copy: import targets, then delete the leftover.

        Shared by the transaction and by crash recovery (which re-enters here).
        """
        if entry.state == "verified" and targets.applicable(self.cfg.targets, record.kind):
            journal.write(entry)
            try:
                outcome.targets = targets.run_targets(self.cfg.targets, record, entry.item_id)
            except BaseException:  # nothing deleted: the source stays, the vault copy too
                journal.remove(entry.txid)
                raise
            failed = [f"{t.name} ({t.detail})" for t in outcome.targets if not t.ok]
            if failed:
                journal.remove(entry.txid)
                return outcome.refuse("target-failed", f"import target(s) failed: "
                                      f"{', '.join(failed)}; the source is kept")
            self.step("after-targets")
            entry = entry.at("imported")
        # Each journal write is an fsync'd rename: only the states recovery must tell apart
        # are written ("verified" only matters while targets run; "done" is the removal).
        try:
            result: ShredResult | ShredRefused = delete_leftover(entry, dir_fd, self.cfg,
                                                                 self.step)
        except ShredRefused as exc:
            result = exc
        self._deleted(outcome, result)
        if outcome.protected:
            self.step("after-done")
        return outcome
