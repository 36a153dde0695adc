"""``credguard exec ID [--profile METHOD] [--no-file] -- CMD...``."""

from __future__ import annotations

import contextlib
import os
import sys

from credguard.cli.common import load_config
from credguard.control.handover import PROFILE_METHODS
from credguard.errors import UsageError
from credguard.vault.itemid import ID_HELP, resolve_id

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from credguard.handoff.handover import Handover


NEST_MARKER = "CREDGUARD_EXEC"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "exec", help="run a command with one credential, handed over in RAM only",
        usage="credguard exec [-h] [--profile METHOD] [--no-file] ID -- CMD [ARG...]\n"
              "       credguard exec --azure-cli|--azure-powershell|--azd -- CMD [ARG...]",
        description="Run CMD with the credential of vault item ID in its environment and, as "
                    "CREDGUARD_FILE, a copy in a private RAM directory removed when CMD exits. "
                    "With --azure-cli (--azure-powershell, --azd) CMD instead sees a private RAM "
                    "copy of that tool's sealed cache, written back to the vault when it exits. "
                    "CMD's exit status is credguard's. For an App Service publish profile, "
                    "CREDGUARD_PUBLISH_* come from the first profile in the file that has a "
                    "password, unless --profile names another.")
    p.add_argument("id", metavar="ID", nargs="?", help=ID_HELP + " (not with --azure-cli etc.)")
    sealed = p.add_mutually_exclusive_group()
    for tool in ("azure-cli", "azure-powershell", "azd"):
        sealed.add_argument(f"--{tool}", dest="sealed_tool", action="store_const", const=tool,
                            help=f"run CMD against the sealed {tool} cache (see credguard seal)")
    p.add_argument("--profile", choices=PROFILE_METHODS,
                   help="which profile of an App Service publish profile to hand over (default: "
                        "the first profile in the file that has a password)")
    p.add_argument("--no-file", action="store_true",
                   help="variables only: no CREDGUARD_FILE (for machines without a RAM file "
                        "system)")
    # The command comes after "--"; main() hands it over as args.command (argparse cannot mix
    # a variable-length positional with options reliably).
    p.set_defaults(func=run_exec, takes_command=True, command=[], recovers=True)


def quick_args(words: list[str]) -> argparse.Namespace | None:
    """What the parser makes of ``exec [--no-file] [--profile METHOD] ID -- CMD...``, the form
    scripts use, without building the parser: argparse and the help formatter it loads take
    several milliseconds of an ``exec`` that asks the daemon. None for
    any other form, which the parser then reads (and reports on) as always;
    tests/cli/test_exec_line.py compares the two."""
    if words[:1] != ["exec"] or "--" not in words:
        return None
    cut = words.index("--")
    item, profile, no_file = None, None, False
    rest = iter(words[1:cut])
    for word in rest:
        if word == "--no-file" and not no_file:
            no_file = True
        elif word == "--profile" and profile is None:
            profile = next(rest, None)
            if profile not in PROFILE_METHODS:
                return None
        elif word[:1] not in ("-", "") and item is None:
            item = word
        else:
            return None
    if item is None:
        return None
    from types import SimpleNamespace

    args: argparse.Namespace = SimpleNamespace(  # type: ignore[assignment]  # the same fields
        debug=False, command=words[cut + 1:], id=item, sealed_tool=None, profile=profile,
        no_file=no_file, func=run_exec, takes_command=True, recovers=True)
    return args


def run_exec(args: argparse.Namespace) -> int:
    from credguard.handoff import child, handover, ramdir

    command = list(args.command)
    if not command:
        raise UsageError("no command given: credguard exec ID -- CMD [ARGS...]")
    if args.sealed_tool is not None:
        if args.id is not None or args.profile or args.no_file:
            raise UsageError(f"--{args.sealed_tool} takes no item ID, --profile or --no-file")
        from credguard.cli.seal_cmd import run_tool

        return run_tool(args.sealed_tool, command)
    if args.id is None:
        raise UsageError("no item ID given: credguard exec ID -- CMD [ARGS...]")
    if NEST_MARKER in os.environ:
        raise UsageError("refusing to nest credguard exec: this shell already runs under "
                         f"credguard exec (item {os.environ[NEST_MARKER]})")
    given = handover_for(args.id, args.profile, files=not args.no_file)
    ram_ctx: contextlib.AbstractContextManager[ramdir.RamDir | None] = (
        contextlib.nullcontext(None) if args.no_file else ramdir.private_ram_dir())
    with ram_ctx as ram:
        if ram is not None:
            handover.write_files(given, ram.path)
        for warning in given.warnings:
            print(f"credguard: warning: {warning}", file=sys.stderr)
        if sys.stderr.isatty():
            print(f"credguard: running {command[0]} with {', '.join(given.names)}",
                  file=sys.stderr)
        # the child holds the directory's lock: if credguard is killed, the next command's
        # sweep leaves the directory alone until the child (and whatever it started) exits
        return child.run(command, handover.child_environment(os.environ, given),
                         keep_fds=(ram.lock_fd,) if ram else ())


def handover_for(item: str, profile: str | None, files: bool) -> Handover:
    """What the child gets, its files not yet written: from the running daemon when it would
    give exactly what this process would read (:mod:`credguard.cli.exec_daemon`), else from
    the vault opened here."""
    from credguard.cli.exec_daemon import through_daemon

    handover = through_daemon(item, profile, files)
    if handover is not None:
        return handover
    from credguard.handoff import environment
    from credguard.vault.access import open_vault

    vault = open_vault(load_config())
    item_id = resolve_id(vault, item)
    return environment.plan(vault.get(item_id), item_id, profile, files)
