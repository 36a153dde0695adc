"""The daemon's worker: examines one queued path at a time and acts on it as the policy says.

Runs on its own thread, so the watcher never waits on disk, detection or the keyring. In
``alert-only`` mode (no usable keyring) and ``paused`` mode nothing is written or deleted:
findings are detected, audited and remembered, and protected once protection resumes.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credguard import policy
from credguard.detect.base import Finding
from credguard.errors import CredguardError, KeystoreError
from credguard.fs import facts
from credguard.paths import Root
from credguard.protect.harden import harden
from credguard.scan import Scanner

if TYPE_CHECKING:
    from credguard.azcache.tools import Tool
    from credguard.daemon.runtime import Daemon
    from credguard.daemon.workqueue import Item

log = logging.getLogger("credguard.daemon")
BUSY_RETRY = 1.0  # seconds between checks of a file another process is still writing
BUSY_ATTEMPTS = 600  # ~10 minutes, then it is examined anyway (a writer that never closes)
CHANGED_RETRY = 0.5


class Worker:
    """Consumes the work queue until it is closed."""

    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon
        self.waiting: set[str] = set()  # findings to protect when protection resumes
        self.forced: set[tuple[str, str]] = set()  # (path, fingerprint) the user said to protect
        self._told: set[tuple[str, str]] = set()  # (path, fingerprint) already alerted

    def run(self) -> None:
        while True:
            item = self.d.queue.get()
            if item is None:
                return
            try:
                self.process(item)
            except Exception:  # one bad file must never stop protection
                log.exception("error while examining %s", item.path)
                self.d.audit("failed", path=item.path, reason="internal-error")

    def root_for(self, path: str) -> Root | None:
        """The most specific root holding ``path`` (it decides whether content is sniffed)."""
        holding = [r for r in self.d.roots if policy.is_under(path, r.path)]
        return max(holding, key=lambda r: len(str(r.path)), default=None)

    def process(self, item: Item) -> None:
        path = item.path
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return
        if facts.being_written(path) and item.attempt < BUSY_ATTEMPTS:
            self.d.queue.put(path, item.reason, BUSY_RETRY, item.attempt + 1)
            return
        finding = self.detect(path)
        if finding is not None:
            self.act(finding, item)

    def detect(self, path: str) -> Finding | None:
        root = self.root_for(path)
        sniff = root.sniff if root is not None else True
        single = Root(Path(path), "daemon", recursive=False, sniff=sniff)
        result = Scanner(self.d.cfg).scan([single])
        for finding, entry in result.ignored:
            self._once("ignored", finding, reason=entry.reason)
        return result.findings[0] if result.findings else None

    def _once(self, event: str, finding: Finding, **fields: Any) -> bool:
        key = (finding.path, finding.fingerprint + event)
        if key in self._told:
            return False
        self._told.add(key)
        self.d.audit(
            event, path=finding.path, kind=finding.kind, fingerprint=finding.fingerprint, **fields
        )
        self.d.notify(event, finding, fields)
        return True

    def force(self, path: str, fingerprint: str) -> None:
        """Protect ``path`` now whatever the policy says, if it still holds ``fingerprint`` (the
        user asked, from a notification, to protect that content)."""
        self.forced.add((path, fingerprint))
        self.d.queue.put(path, "forced")

    def sealed_cache(self, path: str) -> tuple[Tool, Path] | None:
        """The sealed tool cache ``path`` is a plaintext secret file of, if any."""
        from credguard.azcache.sealstore import Store
        from credguard.azcache.tools import TOOLS

        try:
            seals = Store().all()
        except CredguardError:
            return None
        for seal in seals:
            tool = TOOLS.get(seal.tool)
            if tool is None or not policy.is_under(path, Path(seal.root)):
                continue
            rel = os.path.relpath(path, seal.root).replace(os.sep, "/")
            if tool.is_secret(rel) or rel in seal.files:
                return tool, Path(seal.root)
        return None

    def reseal(self, finding: Finding, tool: Tool, root: Path) -> None:
        """A sealed cache reappeared in plaintext (a plain ``az login``): re-seal it into the
        vault (merging by entry) or, with ``seal.on_plaintext = "alert"``, only alert."""
        from credguard.azcache.seal import Sealer

        self._once("detected", finding, action="reseal")
        if self.d.cfg["seal.on_plaintext"] != "reseal":
            self._once("alerted", finding, action="alert", reason="sealed-cache-in-plaintext")
            return
        if self.d.mode != "protecting":
            self.waiting.add(finding.path)
            self._once("alerted", finding, action="reseal", reason=self.d.mode)
            return
        try:
            result = Sealer(self.d.cfg, self.d.protector().vault).absorb(tool, root)
        except KeystoreError as exc:
            self.d.keystore_lost(exc.message)
            self.waiting.add(finding.path)
            return
        except CredguardError as exc:
            self._once("failed", finding, reason="reseal", detail=exc.message)
            return
        if result is None:  # unsealed meanwhile: the ordinary policy applies
            return
        self.waiting.discard(finding.path)
        self.d.protected_count += 1
        fields = {"item_id": result.item_id,
                  "detail": f"re-sealed into the sealed {tool.id} cache ({result.action})"}
        self.d.audit("protected", path=finding.path, kind=finding.kind,
                     fingerprint=finding.fingerprint, **fields)
        self.d.notify("protected", finding, fields)

    def act(self, finding: Finding, item: Item) -> None:
        sealed = self.sealed_cache(finding.path)
        if sealed is not None:
            self.reseal(finding, *sealed)
            return
        action = policy.decide(self.d.cfg.values, finding.kind, finding.path)
        if (finding.path, finding.fingerprint) in self.forced:  # until it is protected
            action = "protect"
        self._once("detected", finding, action=action)
        if action in ("protect", "import") and self.d.mode != "protecting":
            self.waiting.add(finding.path)
            self._once("alerted", finding, action=action, reason=self.d.mode)
        elif action == "protect":
            self.protect(finding, item)
        elif action == "import":
            self.import_only(finding)
        elif action == "harden":
            result = harden(finding.path)
            if result.startswith("hardened"):
                self.d.audit("hardened", path=finding.path, kind=finding.kind, detail=result)
            self._once("alerted", finding, action=action)
        elif action == "alert":
            self._once("alerted", finding, action=action)

    def protect(self, finding: Finding, item: Item) -> None:
        protector = self.d.protector()
        try:
            outcome = protector.protect(Path(finding.path))
        except KeystoreError as exc:
            self.d.keystore_lost(exc.message)
            self.waiting.add(finding.path)
            self._once("alerted", finding, action="protect", reason="alert-only")
            return
        if outcome.protected:
            assert outcome.deletion is not None
            self.d.protected_count += 1
            self.waiting.discard(finding.path)
            self.forced.discard((finding.path, finding.fingerprint))
            fields = {"item_id": outcome.item_id, "detail": outcome.deletion.message}
            self.d.audit(
                "protected",
                path=finding.path,
                kind=finding.kind,
                fingerprint=finding.fingerprint,
                **fields,
            )
            self.d.notify("protected", finding, fields)
        elif outcome.reason == "changed" and item.attempt < BUSY_ATTEMPTS:
            self.d.queue.put(finding.path, item.reason, CHANGED_RETRY, item.attempt + 1)
        else:
            self._once(
                "failed", finding, reason=outcome.reason or "unknown", detail=outcome.error or ""
            )

    def import_only(self, finding: Finding) -> None:
        from credguard.protect.intake import take_in

        protector = self.d.protector()
        try:
            intake = take_in(Path(finding.path), self.d.cfg["scan.max_file_size"])
            known = protector.known()
            if intake.record.sha256 not in known:
                known[intake.record.sha256] = protector.vault.add(intake.record)
        except KeystoreError as exc:
            self.d.keystore_lost(exc.message)
            self.waiting.add(finding.path)
            return
        except CredguardError as exc:
            self._once("failed", finding, reason="import", detail=exc.message)
            return
        self._once("imported", finding, item_id=known[intake.record.sha256])

    def requeue_waiting(self) -> None:
        for path in sorted(self.waiting):
            self.d.queue.put(path, "resumed")
        self.waiting.clear()
