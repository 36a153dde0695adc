"""Command-line entry point: parses arguments, wires one module per verb group, and is the only
place that prints errors (``--debug`` adds the traceback)."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from credguard import __version__
from credguard.cli import (
    config_cmd,
    daemon_cmd,
    doctor_cmd,
    exec_cmd,
    log_cmd,
    protect_cmd,
    scan_cmd,
    seal_cmd,
    service_cmd,
    tray_cmd,
    vault_cmd,
)
from credguard.errors import CredguardError, ExitCode

_GROUPS = (
    scan_cmd, protect_cmd, vault_cmd, exec_cmd, seal_cmd, daemon_cmd, service_cmd, tray_cmd,
    log_cmd, config_cmd, doctor_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credguard",
        description="Find Azure credential files, keep them encrypted, delete the leftovers.",
    )
    parser.add_argument("--version", action="version", version=f"credguard {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in _GROUPS:
        group.register(sub)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; for commands that run a child (``exec``), what follows the first
    ``--`` is the child's command line, untouched. Elsewhere ``--`` keeps its usual meaning.
    ``az`` passes every argument after it to az, untouched (``credguard az --help`` is az's)."""
    first = next((i for i, a in enumerate(argv) if a != "--debug"), len(argv))
    if first < len(argv) and argv[first] == "az":
        args = parser.parse_args(argv[: first + 1])
        args.command = argv[first + 1:]
        return args
    if "--" in argv:
        cut = argv.index("--")
        args = parser.parse_args(argv[:cut])
        if getattr(args, "takes_command", False):
            args.command = argv[cut + 1:]
            return args
    return parser.parse_args(argv)


def recover(args: argparse.Namespace) -> None:
    """Finish or roll back protect transactions a crash interrupted, and sealed-cache sessions
    a killed credguard left (every command does this first). A keyring that is not available
    only postpones it; the command still runs."""
    from credguard.handoff import ramdir
    from credguard.protect import journal

    sessions = ramdir.has_leftovers("session-")
    if not journal.pending() and not sessions:
        return
    from credguard.azcache.session import recover_sessions, stale_sessions
    from credguard.cli.common import load_config
    from credguard.protect.recovery import recover_pending
    from credguard.vault.access import open_vault

    try:
        notes = recover_pending(load_config, open_vault)
        if sessions and stale_sessions():
            cfg = load_config()
            notes += recover_sessions(cfg, open_vault(cfg))
    except CredguardError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"credguard: warning: crash recovery postponed: {exc.message}", file=sys.stderr)
        return
    for note in notes:
        print(f"credguard: recovered: {note}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, list(sys.argv[1:] if argv is None else argv))
    try:
        recover(args)
        return int(args.func(args))
    except CredguardError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"credguard: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("credguard: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.OK  # output piped into e.g. `head`: not an error worth a message
    except Exception as exc:  # a bug: say so, never swallow it
        if args.debug:
            traceback.print_exc()
        else:
            print(f"credguard: internal error: {type(exc).__name__} "
                  "(run with --debug for the traceback)", file=sys.stderr)
        return ExitCode.INTERNAL
