"""``credguard protect``: the protect transaction on named paths, whatever the policy says.

(``credguard scan --protect`` acts as the policy says, through :mod:`credguard.protect.act`.)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credguard.cli.common import emit_json, load_config
from credguard.cli.display import display_path
from credguard.errors import ExitCode

if TYPE_CHECKING:
    from credguard.protect.transaction import Outcome


def register(sub: Any) -> None:
    p = sub.add_parser(
        "protect", help="vault credential files, verify, then delete the leftovers",
        description="For each PATH that is a credential: encrypt it into the vault, read it "
                    "back and verify it, run the configured import targets, then delete the "
                    "file (overwrite attempted). Acts on the named paths whatever the policy.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="the credential files to protect (each one named; no directory walk)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON document (schema: docs/schemas/protect.schema.json)")
    p.set_defaults(func=run_protect, recovers=True)

    r = sub.add_parser(
        "recover", help="finish or roll back what a crash interrupted",
        description="Finish or roll back protect transactions a crash interrupted (a leftover "
                    "is deleted only if it still holds what was vaulted, or what the "
                    "interrupted overwrite made of it; anything else is kept and reported), "
                    "and write back sealed-cache sessions a killed credguard left. The daemon "
                    "and every command that may delete do this first; read-only commands never "
                    "do.")
    r.add_argument("--json", action="store_true",
                   help="print one JSON document (schema: docs/schemas/recover.schema.json)")
    r.set_defaults(func=run_recover, recovery_itself=True)


def run_recover(args: argparse.Namespace) -> int:
    from credguard.cli.common import interrupted, recover

    transactions, sessions = interrupted()
    notes = recover(transactions, sessions) if transactions or sessions else []
    if args.json:
        emit_json({"version": 1, "recovered": notes})
    else:
        for note in notes:
            print(display_path(note))
        if not notes:
            print("nothing to recover")
    return ExitCode.OK


def outcome_json(o: Outcome) -> dict[str, Any]:
    """One ``protect --json`` result (docs/schemas/protect.schema.json); once the file is
    deleted, ``revoke`` no longer asks to delete it."""
    from credguard.notify.messages import revoke_advice

    doc = o.to_json()
    if o.kind is not None:
        doc["revoke"] = revoke_advice(o.kind, deleted=o.protected)
    return doc


def print_outcome(o: Outcome) -> None:
    from credguard.notify.messages import revoke_advice

    where = display_path(o.path)
    if not o.protected:
        why, error = display_path(o.reason or ""), display_path(o.error or "")
        print(f"{where}: NOT protected ({why}): {error}")
        return
    assert o.deletion is not None and o.kind is not None
    note = " (already in the vault)" if o.already_in_vault else ""
    print(f"{where}: protected as {o.item_id}{note}; {display_path(o.deletion.message)}")
    for t in o.targets:
        print(f"    import target {display_path(t.name)}: {display_path(t.detail)}")
    for limit in o.deletion.limits:
        print(f"    limit: {display_path(limit)}")
    print(f"    revoke: {revoke_advice(o.kind, deleted=True)}")


def batches(named: list[str]) -> list[list[str]]:
    """The paths in order, in groups of at most ``BATCH`` protected together (one group commit
    each); a path named again starts a new group, so it meets what the first one left."""
    from credguard.protect.transaction import BATCH

    groups: list[list[str]] = [[]]
    for path in named:
        full = os.path.abspath(path)
        if len(groups[-1]) >= BATCH or full in map(os.path.abspath, groups[-1]):
            groups.append([])
        groups[-1].append(path)
    return [group for group in groups if group]


def run_protect(args: argparse.Namespace) -> int:
    from credguard.protect.transaction import Protector
    from credguard.vault.access import open_vault

    cfg = load_config()
    protector = Protector(cfg, open_vault(cfg))
    outcomes = []
    for batch in batches(args.paths):
        with protector.protect_batch([(Path(p), None) for p in batch]) as done:
            outcomes += done
    if args.json:
        emit_json({"version": 1, "results": [outcome_json(o) for o in outcomes]})
    else:
        for o in outcomes:
            print_outcome(o)
    if all(o.protected for o in outcomes):
        return ExitCode.OK
    # a vault that cannot be written fails every path alike: say so as a state error
    return ExitCode.STATE if any(o.reason == "vault" for o in outcomes) else ExitCode.INPUT
