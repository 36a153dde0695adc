"""``credguard seal TOOL``, ``credguard unseal TOOL`` and ``credguard az ARGS...``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any

from credguard.cli.common import load_config
from credguard.errors import ExitCode, InputError, TargetError

TOOL_IDS = ("azure-cli", "azure-powershell", "azd")


def register(sub: Any) -> None:
    verbs = (
        ("seal", "keep an Azure tool's token cache encrypted in the vault",
         "Move the secret files of an Azure tool's cache (Azure CLI: msal_token_cache.json, "
         "service_principal_entries.json, ...) into the vault and delete the plaintext. "
         "Non-secret files stay. Run the tool through `credguard az` or `credguard exec "
         "--azure-cli` afterwards. Sealing again re-seals plaintext that reappeared (a plain "
         "`az login`)."),
        ("unseal", "put a sealed cache back as plaintext files and forget the seal",
         "Write the sealed files back where the tool keeps them (mode 0600), remove them from "
         "the vault and forget the seal."),
    )
    for verb, summary, description in verbs:
        p = sub.add_parser(verb, help=summary, description=description)
        p.add_argument("tool", choices=TOOL_IDS)
        p.add_argument("--json", action="store_true", help="machine-readable result")
        p.set_defaults(func=run_sealer, verb=verb, recovers=True)
    a = sub.add_parser(
        "az", help="run the real az against the sealed Azure CLI cache",
        usage="credguard az [AZ ARGUMENTS...]",
        description="Run `az` from PATH with AZURE_CONFIG_DIR pointing at a private RAM copy of "
                    "the sealed cache; token refreshes, logins and logouts are written back to "
                    "the vault afterwards. Every argument goes to az unchanged; az's output and "
                    "exit status are credguard's.")
    a.set_defaults(func=run_az, takes_command=True, command=[], recovers=True)


def _sealer() -> Any:
    from credguard.azcache.seal import Sealer
    from credguard.vault.access import open_vault

    cfg = load_config()
    return Sealer(cfg, open_vault(cfg))


def _report(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
        return
    from credguard.azcache.tools import by_id

    title = by_id(result.tool).title
    if result.action == "unsealed":
        print(f"unsealed the {title} cache in {result.root}: {len(result.files)} file(s) "
              "written back (0600)")
    elif result.action == "unchanged":
        print(f"the {title} cache in {result.root} is sealed; nothing new to seal")
    else:
        print(f"{result.action} the {title} cache in {result.root} "
              f"({len(result.files)} secret file(s), vault item {result.item_id})")
    for rel in result.deleted:
        print(f"  deleted plaintext {rel} (overwrite attempted)")
    for kept in result.kept:
        print(f"  kept {kept['file']}: {kept['reason']}", file=sys.stderr)
    for limit in sorted(set(result.limits)):
        print(f"  note: {limit}")
    for conflict in result.conflicts:
        print(f"  merged with a conflict: {conflict}", file=sys.stderr)
    if result.action in ("sealed", "resealed"):
        print(f"  run the tool through `credguard {'az' if result.tool == 'azure-cli' else ''}"
              f"{'' if result.tool == 'azure-cli' else 'exec --' + result.tool + ' -- CMD'}` "
              "from now on")


def run_sealer(args: argparse.Namespace) -> int:
    """``seal`` or ``unseal`` (``args.verb``) for ``args.tool``."""
    from credguard.azcache.tools import by_id

    result = getattr(_sealer(), args.verb)(by_id(args.tool))
    _report(result, args.json)
    return ExitCode.OK


def run_tool(tool_id: str, command: list[str]) -> int:
    """Run ``command`` against the sealed cache of ``tool_id`` (for ``az`` and ``exec``)."""
    from credguard.azcache.session import run_sealed
    from credguard.azcache.tools import by_id
    from credguard.vault.access import open_vault

    if not command:
        raise InputError("no command given")
    cfg = load_config()
    vault = open_vault(cfg)  # no keyring, no cache: refuse rather than hand over nothing
    return run_sealed(cfg, vault, by_id(tool_id), command, dict(os.environ))


def run_az(args: argparse.Namespace) -> int:
    az = shutil.which("az")
    if az is None:
        raise TargetError("az was not found on PATH (install the Azure CLI)")
    return run_tool("azure-cli", [az, *args.command])
