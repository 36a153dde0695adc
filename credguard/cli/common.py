"""Small helpers shared by the verb modules: loading config and printing its warnings, asking
before something irreversible, and crash recovery for the commands that may delete."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from credguard import paths
from credguard.cli.display import display_path
from credguard.errors import CredguardError

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    from typing import Any

    from credguard.config import Config


def load_config(flags: Mapping[str, Any] | None = None) -> Config:
    from credguard import config

    cfg = config.load(flags)
    for warning in cfg.warnings:
        print(f"credguard: warning: {display_path(warning)}", file=sys.stderr)
    return cfg


def confirm(question: str, yes: bool, typed: str = "yes") -> None:
    """Ask before something irreversible; without a terminal, ``--yes`` is required. When the
    word to type is "yes", "y" counts too (any case); any other word must be typed exactly."""
    from credguard.errors import UsageError

    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("refusing without --yes (no terminal to ask on); nothing was changed")
    answer = input(f"{question}\nType '{typed}' to continue: ").strip()
    accepted = answer.lower() in ("y", "yes") if typed == "yes" else answer == typed
    if not accepted:
        raise UsageError("cancelled; nothing was changed")


def emit_json(document: Mapping[str, Any]) -> None:
    """Print one ``--json`` document: always an object with an integer ``"version"`` (its
    schema is ``docs/schemas/<command>.schema.json``)."""
    import json

    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise TypeError("a --json document needs an integer 'version'")
    print(json.dumps(document, indent=2))


def interrupted() -> tuple[bool, bool]:
    """Whether (a protect transaction, a sealed-cache session) waits for recovery. Every
    command asks it first, so it is cheap: a few directory listings
    (:func:`_journal_waits`, :func:`credguard.handoff.ramdir.has_leftovers`) that load the
    journal's and the RAM directory's checks only when there is something to check."""
    from credguard.handoff import ramdir

    return _journal_waits(), ramdir.has_leftovers("session-")


def audit(event: str, **fields: object) -> None:
    """One audit record for a command's own step; a log that cannot be written is a warning:
    the step itself stands."""
    from credguard.audit.log import AuditLog

    try:
        AuditLog().append(event, **fields)  # type: ignore[arg-type]  # checked at run time
    except (OSError, ValueError, CredguardError) as exc:
        print(f"credguard: warning: audit log write failed: {display_path(str(exc))}",
              file=sys.stderr)


def open_copies_due() -> bool:
    """Whether an open copy's time is up (``credguard open``, killed while it waited, or no
    daemon to own the timer): a listing of the RAM directories that imports the open copies'
    module only when one of them holds one."""
    from credguard.handoff import ramdir

    names = [name for name in ramdir.listed() if name.startswith("open-")]
    if not names:
        return False
    import time

    from credguard.handoff.opened import parse

    now = time.time()
    return any(copy is not None and copy.expires <= now
               for copy in (parse(name, Path()) for name in names))


def _journal_waits() -> bool:
    """``bool(journal.pending())``, without importing :mod:`credguard.protect.journal` (json,
    secrets, dataclasses) unless the journal directory holds a ``.json`` name: a listing
    answers "no" for nearly every command. An error other than "no directory" is left to
    ``journal.pending()`` to meet, as before."""
    try:
        if not any(name.endswith(".json") for name in os.listdir(paths.journal_dir())):
            return False
    except FileNotFoundError:
        return False
    except OSError:
        pass
    from credguard.protect import journal

    return bool(journal.pending())


def recover(transactions: bool = True, sessions: bool = True) -> list[str]:
    """Finish or roll back the protect transactions a crash interrupted (they may delete a
    leftover) and write back the sealed-cache sessions a killed credguard left (credguard's
    own RAM copies); what was done, each also an audit record. A keyring that is not
    available raises (KeystoreError): recovery waits for a later command."""
    from credguard.audit.log import AuditLog
    from credguard.azcache.session import recover_sessions, stale_sessions
    from credguard.protect.recovery import recover_pending
    from credguard.vault.access import open_vault

    log = AuditLog()

    def audit(path: str, detail: str) -> None:
        try:
            log.append("recovered", path=path, detail=detail, reason="journal")
        except (OSError, ValueError, CredguardError) as exc:  # the recovery itself stands
            print(f"credguard: warning: audit log write failed: {display_path(str(exc))}",
                  file=sys.stderr)

    notes = recover_pending(load_config, open_vault, audit) if transactions else []
    if sessions and stale_sessions():
        cfg = load_config()
        notes += recover_sessions(cfg, open_vault(cfg))
    return notes
