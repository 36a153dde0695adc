"""``credguard protect`` and the policy step behind ``credguard scan --protect``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credguard.cli.common import load_config
from credguard.cli.display import display_path
from credguard.errors import ExitCode

if TYPE_CHECKING:
    from credguard.config import Config
    from credguard.protect.transaction import Outcome, Protector
    from credguard.scan import ScanResult


def register(sub: Any) -> None:
    p = sub.add_parser(
        "protect", help="vault credential files, verify, then delete the leftovers",
        description="For each PATH that is a credential: encrypt it into the vault, read it "
                    "back and verify it, run the configured import targets, then delete the "
                    "file (overwrite attempted). Acts on the named paths whatever the policy.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_protect)


def _protector(cfg: Config) -> Protector:
    from credguard.protect.transaction import Protector
    from credguard.vault.access import open_vault

    return Protector(cfg, open_vault(cfg))


def print_outcome(o: Outcome) -> None:
    from credguard.detect.kinds import KINDS

    where = display_path(o.path)
    if not o.protected:
        print(f"{where}: NOT protected ({o.reason}): {o.error}")
        return
    assert o.deletion is not None and o.kind is not None
    note = " (already in the vault)" if o.already_in_vault else ""
    print(f"{where}: protected as {o.item_id}{note}; {o.deletion.message}")
    for t in o.targets:
        print(f"    import target {t.name}: {t.detail}")
    for limit in o.deletion.limits:
        print(f"    limit: {limit}")
    print(f"    revoke: {KINDS[o.kind].revoke}")


def run_protect(args: argparse.Namespace) -> int:
    cfg = load_config()
    protector = _protector(cfg)
    outcomes = [protector.protect(Path(p)) for p in args.paths]
    if args.json:
        print(json.dumps({"version": 1, "results": [o.to_json() for o in outcomes]}, indent=2))
    else:
        for o in outcomes:
            print_outcome(o)
    return ExitCode.OK if all(o.protected for o in outcomes) else ExitCode.INPUT


def apply_policy(result: ScanResult, cfg: Config) -> list[dict[str, Any]]:
    """Act on each finding as the policy says; returns one action record per finding."""
    from credguard import policy
    from credguard.protect.harden import harden

    protector: Protector | None = None
    actions: list[dict[str, Any]] = []
    for finding in result.findings:
        action = policy.decide(cfg.values, finding.kind, finding.path)
        record: dict[str, Any] = {"path": finding.path, "kind": finding.kind, "action": action}
        if action in ("protect", "import"):
            protector = protector or _protector(cfg)
            if action == "protect":
                outcome = protector.protect(Path(finding.path))
                record.update(outcome.to_json())
            else:
                record.update(_import_only(protector, finding.path))
        elif action == "harden":
            record["result"] = harden(finding.path)
        actions.append(record)
    return actions


def _import_only(protector: Protector, path: str) -> dict[str, Any]:
    from credguard.errors import CredguardError
    from credguard.protect.intake import take_in

    try:
        intake = take_in(Path(path), protector.cfg["scan.max_file_size"])
    except CredguardError as exc:
        return {"protected": False, "error": exc.message}
    known = protector.known()
    item_id = known.get(intake.record.sha256)
    if item_id is None:
        item_id = known[intake.record.sha256] = protector.vault.add(intake.record)
    return {"protected": False, "item_id": item_id, "result": "imported; original kept"}


def print_actions(actions: list[dict[str, Any]]) -> None:
    for a in actions:
        where = display_path(a["path"])
        if a["action"] == "protect":
            state = "protected" if a.get("protected") else f"NOT protected: {a.get('error')}"
            print(f"  {where}: {state}", file=sys.stdout)
        elif a["action"] in ("import", "harden"):
            print(f"  {where}: {a.get('result') or a.get('error')}")
        else:
            print(f"  {where}: {a['action']} (policy)")
