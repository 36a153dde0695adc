"""What a scan found, passed over and could not scan, and its JSON form (no secret values)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from credguard.config import IgnoreEntry
from credguard.detect.base import Finding


class Skipped(NamedTuple):
    """A path that was not examined, and why (never silently dropped)."""

    path: str
    reason: str
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"path": self.path, "reason": self.reason}
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass
class ScanResult:
    """Everything one scan or check saw. (A dataclass: the daemon sends a large one in parts
    made with ``dataclasses.replace``.)"""

    findings: list[Finding] = field(default_factory=list)
    ignored: list[tuple[Finding, IgnoreEntry]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[Skipped] = field(default_factory=list)  # explicit paths that could not be scanned
    files: int = 0
    dirs: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "findings": [f.to_json() for f in self.findings],
            "ignored": [{**f.to_json(), "reason": e.reason} for f, e in self.ignored],
            "skipped": [s.to_json() for s in self.skipped],
            "stats": {"files": self.files, "dirs": self.dirs, "seconds": round(self.seconds, 3)},
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any], errors: list[dict[str, str]]) -> ScanResult:
        """Rebuild a result sent by the daemon (``to_json`` plus the explicit-path errors)."""
        def finding(f: dict[str, Any]) -> Finding:
            return Finding(f["path"], f["kind"], f["fingerprint"], f["details"])

        stats = doc["stats"]
        return cls(
            findings=[finding(f) for f in doc["findings"]],
            ignored=[(finding(f), IgnoreEntry(f["fingerprint"], f["reason"], "daemon"))
                     for f in doc["ignored"]],
            skipped=[Skipped(s["path"], s["reason"], s.get("detail", "")) for s in doc["skipped"]],
            errors=[Skipped(s["path"], s["reason"], s.get("detail", "")) for s in errors],
            files=stats["files"], dirs=stats["dirs"], seconds=stats["seconds"])
