"""What the worker and the reconciler may read from, and report to, the daemon that runs them.

They depend on these Protocols only, never on :mod:`credguard.daemon.runtime`, so the daemon's
parts import one way (no cycle, not even for type checking).
"""

from __future__ import annotations

from typing import Any, Protocol

from credguard.audit.record import Event
from credguard.config import Config
from credguard.detect.base import Finding
from credguard.paths import Root
from credguard.policy import Mode
from credguard.protect.transaction import Protector


class Host(Protocol):
    """What a reconciliation scan needs: the configuration, the roots, the audit log."""

    @property
    def cfg(self) -> Config: ...
    @property
    def roots(self) -> list[Root]: ...
    def audit(self, event: Event, **fields: Any) -> None: ...
    def audit_many(self, records: list[tuple[Event, dict[str, Any], str]]) -> None: ...


class WorkerHost(Host, Protocol):
    """What the worker also needs: the mode, the vault, and where to report."""

    @property
    def mode(self) -> Mode: ...
    def protector(self) -> Protector: ...
    def keystore_lost(self, reason: str) -> None: ...  # switch to alert-only mode
    def notify(self, event: str, finding: Finding, fields: dict[str, Any]) -> None: ...
    def settled(self, examined: int) -> None: ...  # a burst is over: give its memory back
