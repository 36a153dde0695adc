"""The protect transaction: read, journal, vault, verify, import targets, delete the leftover.

Durable before destructive: not one byte of the source is overwritten before its vault copy
has been written, fsynced, read back, decrypted and compared. Every step is journaled first
(:mod:`credguard.protect.journal`), so :mod:`credguard.protect.recovery` can finish or roll
back a transaction that a crash interrupted at any point.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credguard import policy
from credguard.config import Config
from credguard.detect.kinds import KINDS
from credguard.detect.registry import ALL_FAMILIES, Malformed, by_name, detect_bytes
from credguard.errors import CredguardError, KeystoreError
from credguard.fs import read
from credguard.fs.read import Unreadable
from credguard.protect import journal, targets
from credguard.protect.shred import Identity, ShredRefused, ShredResult, remove_trashinfo, shred_at
from credguard.vault.format import Record, new_item_id
from credguard.vault.store import Vault

CRASH_ENV = "CREDGUARD_TEST_CRASH_AT"
Step = Callable[[str], None]


def crash_hook_from_env() -> Step:
    """The fault-injection hook: with ``CREDGUARD_TEST_CRASH_AT=LABEL[:N]`` the process exits
    hard (``os._exit``, no cleanup, like a power cut) the Nth time it reaches step LABEL.
    Without the variable it does nothing; it exists for the crash-recovery tests."""
    spec = os.environ.get(CRASH_ENV, "")
    label, _, count = spec.partition(":")
    remaining = [int(count) if count.isdigit() else 1]

    def step(reached: str) -> None:
        if label and reached == label:
            remaining[0] -= 1
            if remaining[0] <= 0:
                sys.stderr.flush()
                os._exit(99)

    return step


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
            "item_id": self.item_id, "already_in_vault": self.already_in_vault,
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


@dataclass(frozen=True)
class _Source:
    dir_fd: int
    directory: str
    name: str
    identity: Identity
    record: Record


class Protector:
    """Runs protect transactions against one vault under one configuration."""

    def __init__(self, cfg: Config, vault: Vault, step: Step | None = None) -> None:
        self.cfg = cfg
        self.vault = vault
        self.step = step or crash_hook_from_env()
        self._known: dict[str, str] | None = None

    def known(self) -> dict[str, str]:
        """sha256 -> item id of every readable item (built once, kept up to date)."""
        if self._known is None:
            self._known = {r.sha256: i for i, r in self.vault.records()
                           if isinstance(r, Record)}
        return self._known

    def protect(self, path: Path) -> Outcome:
        full = os.path.abspath(path)
        outcome = Outcome(full)
        directory, name = os.path.split(full)
        try:
            dir_fd = read.open_dir(directory)
        except Unreadable as exc:
            return outcome.refuse(exc.reason, f"its directory cannot be used: {exc.detail}")
        try:
            source = self._read(dir_fd, directory, name, outcome)
            if source is None:
                return outcome
            outcome.kind = source.record.kind
            return self._transact(source, outcome)
        finally:
            os.close(dir_fd)

    def _read(self, dir_fd: int, directory: str, name: str, outcome: Outcome) -> _Source | None:
        try:
            fd, st = read.open_regular(name, dir_fd)
            try:
                data = read.read_fd(fd, st, self.cfg["scan.max_file_size"])
            finally:
                os.close(fd)
        except Unreadable as exc:
            outcome.refuse(exc.reason, exc.detail)
            return None
        if st.st_uid != os.getuid():
            outcome.refuse("other-owner", f"owned by uid {st.st_uid}, not by you")
            return None
        if st.st_nlink > 1 and not self.cfg["protect.allow_hard_links"]:
            outcome.refuse("hard-links", f"{st.st_nlink} hard links keep the data reachable "
                                         "(protect.allow_hard_links = true to proceed)")
            return None
        families = by_name(directory, name)
        try:
            verdict = detect_bytes(data.data, Path(directory, name), families or ALL_FAMILIES,
                                   strict=bool(families))
        except Malformed as exc:
            outcome.refuse("malformed", str(exc))
            return None
        if verdict is None:
            outcome.refuse("not-credential", "not a detected credential")
            return None
        identity = Identity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        record = Record.new(verdict.kind, name, directory, data.data, dict(verdict.details))
        return _Source(dir_fd, directory, name, identity, record)

    def _transact(self, src: _Source, outcome: Outcome) -> Outcome:
        existing = self.known().get(src.record.sha256)
        entry = journal.Entry(
            txid=journal.new_txid(), state="intent", directory=src.directory, name=src.name,
            dev=src.identity.dev, ino=src.identity.ino, size=src.identity.size,
            mtime_ns=src.identity.mtime_ns, sha256=src.record.sha256, kind=src.record.kind,
            item_id=existing or new_item_id(), existing=existing is not None,
            shred_name=journal.shred_name())
        outcome.item_id, outcome.already_in_vault = entry.item_id, entry.existing
        with journal.held(entry.txid):
            journal.write(entry)
            self.step("after-intent")
            try:
                self._store(entry, src.record)
            except KeystoreError:
                journal.remove(entry.txid)  # the keyring went away: callers decide (daemon:
                raise                       # alert-only mode; CLI: exit 5)
            except CredguardError as exc:
                journal.remove(entry.txid)
                return outcome.refuse("vault", exc.message)
            return self.finish(entry.at("verified"), src.record, src.dir_fd, outcome)

    def _store(self, entry: journal.Entry, record: Record) -> None:
        """Write and verify the vault copy (or verify the one already there)."""
        if entry.existing:
            if self.vault.get(entry.item_id).sha256 != record.sha256:  # pragma: no cover
                raise CredguardError("the vault copy does not match")
        else:
            self.vault.add(record, entry.item_id, self.step)
            self.known()[record.sha256] = entry.item_id
        self.step("after-verify")

    def finish(self, entry: journal.Entry, record: Record, dir_fd: int,
               outcome: Outcome) -> Outcome:
        """From a verified vault copy: import targets, then delete the leftover.

        Shared by the transaction and by crash recovery (which re-enters here).
        """
        if entry.state == "verified" and targets.applicable(self.cfg.targets, record.kind):
            journal.write(entry)
            outcome.targets = targets.run_targets(self.cfg.targets, record, entry.item_id)
            failed = [t.name for t in outcome.targets if not t.ok]
            if failed:
                journal.remove(entry.txid)
                return outcome.refuse("target-failed", f"import target(s) failed: "
                                      f"{', '.join(failed)}; the source is kept")
            self.step("after-targets")
            entry = entry.at("imported")
        # Each journal write is an fsync'd rename: only the states recovery must tell apart
        # are written ("verified" only matters while targets run; "done" is the removal).
        journal.write(entry.at("deleting"))
        try:
            outcome.deletion = shred_at(
                dir_fd, entry.name, Identity(entry.dev, entry.ino, entry.size, entry.mtime_ns),
                passes=self.cfg["protect.passes"],
                allow_hard_links=self.cfg["protect.allow_hard_links"],
                new_name=entry.shred_name, step=self.step)
        except ShredRefused as exc:
            journal.remove(entry.txid)
            return outcome.refuse(exc.reason, f"{exc.message}; the vault copy is kept")
        if not outcome.deletion.deleted:  # failed part-way (I/O error): say where it was left
            journal.remove(entry.txid)
            return outcome.refuse("io-error", f"{outcome.deletion.message}; the vault copy "
                                  "is kept")
        if policy.location_of(Path(entry.directory, entry.name)) == "trash":
            remove_trashinfo(Path(entry.directory), entry.name)
        journal.remove(entry.txid)
        self.step("after-done")
        outcome.protected = True
        return outcome
