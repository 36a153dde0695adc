"""Rendering scan results: a human table and SARIF 2.1.0 (the JSON document is
:meth:`~credguard.scan.ScanResult.to_json`, printed by ``emit_json``).

Every renderer works from :class:`~credguard.scan.ScanResult`, which holds no secret values:
kinds, paths, fingerprints and the detectors' non-secret details.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from credguard import __version__
from credguard.cli.display import display_path, plural
from credguard.detect.base import Finding
from credguard.detect.kinds import KINDS
from credguard.scan import ScanResult, project

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/credguard/credguard"


def summarize(details: Mapping[str, Any], width: int = 100) -> str:
    """A one-line digest of non-secret details: scalars as k=v, lists of names joined, lists
    of records as their count."""
    parts = []
    for key, value in details.items():
        if isinstance(value, list | tuple):
            if value and all(isinstance(v, str) for v in value):
                parts.append(f"{key}={','.join(value)}")
            else:
                parts.append(f"{key}={len(value)}")
        elif isinstance(value, bool):
            if value:
                parts.append(key)
        elif value not in (None, ""):
            parts.append(f"{key}={value}")
    text = display_path("; ".join(parts))
    return text if len(text) <= width else text[: width - 1] + "…"


def _location(path: str) -> dict[str, Any]:
    return {"physicalLocation": {"artifactLocation": {"uri": Path(path).as_uri()}}}


def _sarif_result(finding: Finding, rule_index: dict[str, int]) -> dict[str, Any]:
    info = KINDS[finding.kind]
    return {
        "ruleId": finding.kind,
        "ruleIndex": rule_index[finding.kind],
        "level": "error",
        "message": {"text": f"{info.title} ({finding.fingerprint}). {info.revoke}"},
        "locations": [_location(finding.path)],
        "partialFingerprints": {"credguardFileSha256/v1": finding.fingerprint.split(":", 1)[1]},
        "properties": {"details": dict(finding.details)},
    }


def render_sarif(result: ScanResult) -> str:
    """One run, one rule per kind (all kinds, in a stable order), one result per finding.

    Ignored findings appear with an external suppression carrying the allowlist reason;
    skipped paths become tool execution notifications.
    """
    rules = [
        {
            "id": info.kind,
            "name": "".join(w.capitalize() for w in info.kind.split("-")),
            "shortDescription": {"text": info.title},
            "fullDescription": {"text": info.risk},
            "help": {"text": info.revoke},
            "defaultConfiguration": {"level": "error"},
        }
        for info in KINDS.values()
    ]
    rule_index: dict[str, int] = {info.kind: i for i, info in enumerate(KINDS.values())}
    results = [_sarif_result(f, rule_index) for f in result.findings]
    for finding, entry in result.ignored:
        item = _sarif_result(finding, rule_index)
        item["suppressions"] = [{"kind": "external", "justification": entry.reason}]
        results.append(item)
    notes = [
        # the message is read by people (viewers print it): escaped; the location stays exact
        {"level": "note",
         "message": {"text": display_path(f"skipped ({s.reason}) {s.detail}".strip())},
         "locations": [_location(s.path)]}
        for s in result.skipped
    ]
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "credguard", "version": __version__,
                                "informationUri": INFO_URI, "rules": rules}},
            "invocations": [{"executionSuccessful": not result.errors,
                             "toolExecutionNotifications": notes}],
            "results": results,
        }],
    }
    return json.dumps(sarif, indent=2)


def render_human(result: ScanResult, out: TextIO) -> None:
    if result.findings:
        out.write(f"{plural(len(result.findings), 'credential file')} found:\n\n")
        for f in result.findings:
            info = KINDS[f.kind]
            out.write(f"  {display_path(f.path)}\n")
            out.write(f"    kind:        {f.kind} — {info.title}\n")
            out.write(f"    fingerprint: {f.fingerprint}\n")
            digest = summarize({k: v for k, v in f.details.items() if k != project.KEY})
            if digest:
                out.write(f"    details:     {digest}\n")
            found = project.of(f.details)
            if found is not None:
                out.write(f"    project:     {display_path(project.describe(f.details))} "
                          f"({display_path(found.root)})\n")
            out.write(f"    revoke:      {info.revoke}\n\n")
    else:
        out.write("No credential files found.\n")
    if result.ignored:
        out.write(f"\n{len(result.ignored)} ignored (allowlisted):\n")
        for f, entry in result.ignored:
            reason = f" — {display_path(entry.reason)}" if entry.reason else ""
            out.write(f"  {f.kind:30} {display_path(f.path)}{reason}\n")
    if result.skipped:
        out.write(f"\n{len(result.skipped)} skipped:\n")
        for s in result.skipped:
            detail = f" ({display_path(s.detail)})" if s.detail else ""
            out.write(f"  {display_path(s.reason):16} {display_path(s.path)}{detail}\n")
    out.write(f"\nScanned {plural(result.files, 'file')} in "
              f"{plural(result.dirs, 'directory', 'directories')} in {result.seconds:.2f} s.\n")
