"""``credguard seal TOOL``, ``credguard unseal TOOL`` and ``credguard az ARGS...``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import Any

from credguard.cli.common import emit_json, load_config
from credguard.cli.display import display_path, plural
from credguard.errors import ExitCode, TargetError, UsageError

TOOL_IDS = ("azure-cli", "azure-powershell", "azd")
_RUN_WITH = {"azure-cli": "credguard az ARGS", "azure-powershell":
             "credguard exec --azure-powershell -- CMD", "azd": "credguard exec --azd -- CMD"}
OWN_HELP = ("-h", "--help")  # right after `az`: credguard's help; anywhere else: az's
AZ_DESCRIPTION = (
    "Run `az` from PATH with AZURE_CONFIG_DIR pointing at a private RAM copy of the sealed "
    "Azure CLI cache (see `credguard seal azure-cli`); token refreshes, logins and logouts are "
    "written back to the vault afterwards. The arguments go to az unchanged, and az's output "
    "and exit status are credguard's. Only the first argument can be credguard's: -h/--help "
    "shows this help, and a `--` is dropped, so `credguard az -- --help` is az's own help "
    "(as is `credguard az vm --help`).")


def register(sub: Any) -> None:
    verbs = (
        ("seal", "keep an Azure tool's token cache encrypted in the vault",
         "Move the secret files of an Azure tool's cache (Azure CLI: msal_token_cache.json, "
         "service_principal_entries.json, ...) into the vault and delete the plaintext. "
         "Non-secret files stay. Run the tool through `credguard az` or `credguard exec "
         "--azure-cli` afterwards. Sealing again re-seals plaintext that reappeared (a plain "
         "`az login`). A cache with no login yet is sealed empty (its directory is made, 0700, "
         "if it does not exist): the first login through credguard goes straight to the vault."),
        ("unseal", "put a sealed cache back as plaintext files and forget the seal",
         "Write the sealed files back where the tool keeps them (mode 0600), remove them from "
         "the vault and forget the seal. Exit 9 if the cache is not sealed."),
    )
    for verb, summary, description in verbs:
        p = sub.add_parser(verb, help=summary, description=description)
        p.add_argument("tool", choices=TOOL_IDS, metavar="TOOL",
                       help=f"the tool whose cache to {verb}: {', '.join(TOOL_IDS)}")
        p.add_argument("--json", action="store_true",
                       help=f"print one JSON document (schema: docs/schemas/{verb}.schema.json)")
        p.set_defaults(func=run_sealer, verb=verb, recovers=True)
    a = sub.add_parser(
        "az", help="run the real az against the sealed Azure CLI cache",
        usage="credguard az [-h] [--] [AZ ARGUMENTS...]", description=AZ_DESCRIPTION)
    # what follows `az` never reaches argparse (cli.parse hands it over as args.command):
    # declared so that the help lists it
    a.add_argument("az_arguments", nargs=argparse.REMAINDER, metavar="AZ ARGUMENTS",
                   help="passed to az unchanged (a first `--` is dropped, so `credguard az -- "
                        "--help` is az's own help)")
    a.set_defaults(func=run_az, takes_command=True, command=[], recovers=True,
                   az_help=a.format_help)


def _sealer() -> Any:
    from credguard.azcache.seal import Sealer
    from credguard.vault.access import open_vault

    cfg = load_config()
    return Sealer(cfg, open_vault(cfg))


def _report(result: Any, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_json())
        return
    from credguard.azcache.tools import by_id

    title, root = by_id(result.tool).title, display_path(result.root)
    if result.action == "unsealed":
        print(f"unsealed the {title} cache in {root}: "
              f"{plural(len(result.files), 'file')} written back (0600)")
    elif result.action == "unchanged":
        print(f"the {title} cache in {root} is sealed; nothing new to seal")
    elif not result.files:
        made = f"made {root} (0700) and " if result.created_root else ""
        print(f"{made}sealed the {title} cache in {root} with no secret file in it yet "
              f"(vault item {result.item_id}): a login through `{_RUN_WITH[result.tool]}` "
              "goes straight into the vault, never onto the disk")
    else:
        print(f"{result.action} the {title} cache in {root} "
              f"({plural(len(result.files), 'secret file')}, vault item {result.item_id})")
    for rel in result.deleted:
        print(f"  deleted plaintext {display_path(rel)} (overwrite attempted)")
    for kept in result.kept:
        print(f"  kept {display_path(kept['file'])}: {display_path(kept['reason'])}",
              file=sys.stderr)
    for limit in sorted(set(result.limits)):
        print(f"  note: {display_path(limit)}")
    for conflict in result.conflicts:
        print(f"  merged with a conflict: {display_path(conflict)}", file=sys.stderr)
    if result.action in ("sealed", "resealed") and result.files:
        print(f"  run the tool through `{_RUN_WITH[result.tool]}` from now on")


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
        raise UsageError("no command given")
    cfg = load_config()
    vault = open_vault(cfg)  # no keyring, no cache: refuse rather than hand over nothing
    return run_sealed(cfg, vault, by_id(tool_id), command, dict(os.environ))


def run_az(args: argparse.Namespace) -> int:
    """``credguard az ARGS``: credguard's help for ``-h``/``--help`` right after ``az``; a
    ``--`` right after ``az`` is dropped (so ``az -- --help`` is az's own help); the rest is
    az's command line."""
    arguments = list(args.command)
    if arguments[:1] and arguments[0] in OWN_HELP:
        print(args.az_help(), end="")
        return ExitCode.OK
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    az = shutil.which("az")
    if az is None:
        raise TargetError("az was not found on PATH (install the Azure CLI)")
    return run_tool("azure-cli", [az, *arguments])
