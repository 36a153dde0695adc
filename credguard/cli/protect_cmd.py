"""``credguard protect``: the protect transaction on named paths, whatever the policy says.

(``credguard scan --protect`` acts as the policy says, through :mod:`credguard.protect.act`.)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from credguard.cli.common import emit_json, load_config
from credguard.cli.display import display_path
from credguard.errors import ExitCode


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


def print_result(doc: dict[str, Any]) -> None:
    """One result (:func:`credguard.protect.report.outcome_json`) as text."""
    where = display_path(doc["path"])
    if not doc["protected"]:
        why, error = display_path(doc["reason"] or ""), display_path(doc["error"] or "")
        print(f"{where}: NOT protected ({why}): {error}")
        return
    deletion = doc["deletion"]
    note = " (already in the vault)" if doc["already_in_vault"] else ""
    print(f"{where}: protected as {doc['id']}{note}; {display_path(deletion['result'])}")
    for t in doc["targets"]:
        print(f"    import target {display_path(t['name'])}: {display_path(t['detail'])}")
    for limit in deletion["limits"]:
        print(f"    limit: {display_path(limit)}")
    print(f"    revoke: {doc['revoke']}")


def batches(named: list[str]) -> list[list[str]]:
    """The paths in order, in groups of at most ``BATCH`` protected together (one group commit
    each, :data:`credguard.protect.transaction.BATCH`: also what one request to the daemon
    may carry); a path named again starts a new group, so it meets what the first one left."""
    from credguard.control.protect import MAX_PATHS as BATCH

    groups: list[list[str]] = [[]]
    for path in named:
        full = os.path.abspath(path)
        if len(groups[-1]) >= BATCH or full in map(os.path.abspath, groups[-1]):
            groups.append([])
        groups[-1].append(path)
    return [group for group in groups if group]


def run_protect(args: argparse.Namespace) -> int:
    """Each batch (:func:`batches`) protected by the running daemon when it would do exactly
    what this process would (:mod:`credguard.control.protect`), else here: the same results,
    output and exit code either way."""
    from credguard.cli.protect_daemon import through_daemon

    groups = batches(args.paths)
    asked = through_daemon(groups)
    results = asked.results + protect_here(groups[asked.done:], warned=asked.warned)
    if args.json:
        emit_json({"version": 1, "results": results})
    else:
        for doc in results:
            print_result(doc)
    if all(doc["protected"] for doc in results):
        return ExitCode.OK
    # a vault that cannot be written fails every path alike: say so as a state error
    return ExitCode.STATE if any(doc["reason"] == "vault" for doc in results) else ExitCode.INPUT


def protect_here(groups: list[list[str]], warned: bool = False) -> list[dict[str, Any]]:
    """The batches protected in this process; ``warned``: the configuration's warnings were
    printed already."""
    if not groups:
        return []
    from credguard.config import load
    from credguard.protect.report import outcome_json
    from credguard.protect.transaction import Protector
    from credguard.vault.access import open_vault

    cfg = load() if warned else load_config()
    protector = Protector(cfg, open_vault(cfg))
    results = []
    for batch in groups:
        with protector.protect_batch([(Path(p), None) for p in batch]) as done:
            results += [outcome_json(o) for o in done]
    return results
