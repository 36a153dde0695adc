"""The policy step: what to do with a finding, and doing it. The ONE place both drivers decide.

A plaintext file of a sealed tool cache is re-sealed (or, with ``seal.on_plaintext = "alert"``,
only alerted); anything else gets the action the policy (or the user, by forcing protection)
gives it (a finding the scan placed in a project, ``details["project"]``, is in the
``project`` location: see :mod:`credguard.scan.project`). Only :attr:`Mode.PROTECTING` writes
to the vault or deletes: in the other modes such a finding is *waiting*. A keystore that goes
away makes the outcome say so; the caller goes on in alert-only mode. The CLI prints the
:class:`Outcome`, the daemon audits and notifies it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal, Protocol

from credguard import policy
from credguard.config import Config
from credguard.detect.base import Finding
from credguard.errors import CredguardError, KeystoreError
from credguard.policy import Action, Mode
from credguard.protect.harden import harden
from credguard.protect.transaction import Outcome as TransactionOutcome
from credguard.protect.transaction import Protector
from credguard.scan import project
from credguard.vault.store import Vault

RESEAL: Literal["reseal"] = "reseal"
Decision = Action | Literal["reseal"]  # a policy action, or re-sealing a sealed cache
SEALED_IN_PLAINTEXT = "sealed-cache-in-plaintext"


class Result(StrEnum):
    """What became of a finding."""

    IGNORED = "ignored"
    ALERTED = "alerted"  # reported only (also: nothing needed hardening)
    HARDENED = "hardened"  # group/other permissions removed
    IMPORTED = "imported"  # a vault copy; the file kept
    PROTECTED = "protected"  # in the vault (a sealed cache: re-sealed), the plaintext deleted
    WAITING = "waiting"  # the mode allows no writes: act again when protection resumes
    CHANGED = "changed"  # the file changed while it was being protected: try again
    FAILED = "failed"


class Absorbed(Protocol):
    """What re-sealing did (:class:`credguard.azcache.seal.Result`)."""

    @property
    def tool(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def item_id(self) -> str | None: ...


class SealedCache(Protocol):
    """A sealed tool cache a plaintext file belongs to (azcache, a floor above, provides it)."""

    def absorb(self, cfg: Config, vault: Vault) -> Absorbed | None: ...


SealedLookup = Callable[[str], SealedCache | None]


@dataclass(frozen=True)
class Outcome:
    """What was decided and done for one finding; no secret in any field."""

    finding: Finding
    action: Decision
    result: Result
    reason: str = ""  # waiting: the mode; failed: a stable id; alerted: why, if not the policy
    detail: str = ""  # what harden or the deletion did, or the error
    item_id: str | None = None
    keystore_lost: str = ""  # why the keystore went away: go on in alert-only mode
    transaction: TransactionOutcome | None = None  # the protect transaction, if one ran


class Actor:
    """Acts on findings under one configuration. ``protector`` opens the vault when a finding
    needs it (a KeystoreError then means alert-only); ``sealed`` finds sealed caches."""

    def __init__(self, cfg: Config, protector: Callable[[], Protector],
                 sealed: SealedLookup) -> None:
        self.cfg = cfg
        self.protector = protector
        self.sealed = sealed

    def act(self, finding: Finding, mode: Mode, forced: bool = False) -> Outcome:
        """Decide and do; ``forced``: the user asked to protect it whatever the policy says."""
        cache = self.sealed(finding.path)
        if cache is not None:
            outcome = self._reseal(finding, cache, mode)
            if outcome is not None:
                return outcome
        return self._apply(finding, self._decide(finding, forced), mode)

    def act_many(self, requests: Sequence[tuple[Finding, bool]], mode: Mode,
                 report: Callable[[list[Outcome]], None]) -> None:
        """:meth:`act` on several (finding, forced) pairs, the files to protect protected
        together (:meth:`Protector.protect_batch`: one group commit). ``report`` gets every
        outcome once: first those of the files protected together, before their journal
        entries are forgotten (what it records is on disk before a crash could lose it), then
        the others'."""
        together: list[Finding] = []
        rest: list[Outcome] = []
        for finding, forced in requests:
            if (mode is Mode.PROTECTING and self.sealed(finding.path) is None
                    and self._decide(finding, forced) is Action.PROTECT):
                together.append(finding)
            else:
                rest.append(self.act(finding, mode, forced))
        if together:
            with contextlib.ExitStack() as stack:
                try:
                    done = stack.enter_context(self.protector().protect_batch(
                        [(Path(f.path), Path(f.root) if f.root else None) for f in together]))
                except KeystoreError as exc:
                    rest[:0] = [_keystore_lost(f, Action.PROTECT, exc) for f in together]
                else:
                    report([_protected(f, d) for f, d in zip(together, done, strict=True)])
        if rest:
            report(rest)

    def deletes(self, finding: Finding, forced: bool, mode: Mode) -> bool:
        """Whether acting on ``finding`` now would vault and delete it because the policy
        says so: what a grace period (``protect.delay``) may hold back. Never a protection
        the user asked for (``forced``), nor a sealed cache's plaintext (re-sealed at once)."""
        return (not forced and mode is Mode.PROTECTING and self.sealed(finding.path) is None
                and self._decide(finding, False) is Action.PROTECT)

    def _decide(self, finding: Finding, forced: bool) -> Action:
        return Action.PROTECT if forced else policy.decide(
            self.cfg.values, finding.kind, finding.path,
            in_project=project.of(finding.details) is not None)

    def _apply(self, finding: Finding, action: Action, mode: Mode) -> Outcome:
        if action is Action.IGNORE:
            return Outcome(finding, action, Result.IGNORED)
        if action is Action.ALERT:
            return Outcome(finding, action, Result.ALERTED)
        if action is Action.HARDEN:
            done = harden(finding.path, finding.root)
            did = Result.HARDENED if done.startswith("hardened") else Result.ALERTED
            return Outcome(finding, action, did, detail=done)
        if mode is not Mode.PROTECTING:
            return Outcome(finding, action, Result.WAITING, reason=mode)
        try:
            if action is Action.IMPORT:
                return self._import(finding)
            return self._protect(finding)
        except KeystoreError as exc:
            return _keystore_lost(finding, action, exc)

    def _reseal(self, finding: Finding, cache: SealedCache, mode: Mode) -> Outcome | None:
        """None when the cache was unsealed meanwhile: the ordinary policy applies."""
        if self.cfg["seal.on_plaintext"] != "reseal":
            return Outcome(finding, Action.ALERT, Result.ALERTED, reason=SEALED_IN_PLAINTEXT)
        if mode is not Mode.PROTECTING:
            return Outcome(finding, RESEAL, Result.WAITING, reason=mode)
        try:
            done = cache.absorb(self.cfg, self.protector().vault)
        except KeystoreError as exc:
            return _keystore_lost(finding, RESEAL, exc)
        except CredguardError as exc:
            return Outcome(finding, RESEAL, Result.FAILED, reason="reseal", detail=exc.message)
        if done is None:
            return None
        detail = f"re-sealed into the sealed {done.tool} cache ({done.action})"
        return Outcome(finding, RESEAL, Result.PROTECTED, item_id=done.item_id, detail=detail)

    def _import(self, finding: Finding) -> Outcome:
        protector = self.protector()
        try:
            item_id = protector.import_copy(Path(finding.path),
                                            Path(finding.root) if finding.root else None)
        except KeystoreError:
            raise
        except CredguardError as exc:
            return Outcome(finding, Action.IMPORT, Result.FAILED, reason="import",
                           detail=exc.message)
        return Outcome(finding, Action.IMPORT, Result.IMPORTED, item_id=item_id)

    def _protect(self, finding: Finding) -> Outcome:
        return _protected(finding, self.protector().protect(
            Path(finding.path), Path(finding.root) if finding.root else None))


def _protected(finding: Finding, done: TransactionOutcome) -> Outcome:
    """What a protect transaction's outcome means for the finding."""
    if done.protected:
        assert done.deletion is not None
        return Outcome(finding, Action.PROTECT, Result.PROTECTED, item_id=done.item_id,
                       detail=done.deletion.message, transaction=done)
    result = Result.CHANGED if done.reason == "changed" else Result.FAILED
    return Outcome(finding, Action.PROTECT, result, reason=done.reason or "unknown",
                   detail=done.error or "", transaction=done)


def _keystore_lost(finding: Finding, action: Decision, exc: KeystoreError) -> Outcome:
    return Outcome(finding, action, Result.WAITING, reason=Mode.ALERT_ONLY,
                   keystore_lost=exc.message)
