"""Command-line entry point: parses arguments, wires one module per verb group, and is the only
place that prints errors (``--debug`` adds the traceback).

A command loads only the module of its own verb (``credguard check`` never imports what
``exec`` or the daemon need); ``--help``, ``--version`` and a mistyped verb build the whole
parser. ``credguard check FILE...`` first asks its quick path (:mod:`credguard.cli.quick`),
which answers only "clean: nothing to print, exit 0", and only when the full check would; so
this module imports nothing the quick path does not need (argparse, signal and the rest load
in the functions that use them).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

# Every verb and its module, ``credguard.cli.<module>``, which registers it; in the order
# ``credguard --help`` lists them. tests/test_startup_imports.py keeps it in step with what the
# modules register.
VERBS: dict[str, str] = {
    "scan": "scan_cmd", "check": "scan_cmd",
    "protect": "protect_cmd", "recover": "protect_cmd",
    "import": "vault_cmd", "vault": "vault_cmd", "restore": "restore_cmd",
    "exec": "exec_cmd", "open": "open_cmd", "close": "open_cmd",
    "seal": "seal_cmd", "unseal": "seal_cmd", "az": "seal_cmd",
    "daemon": "daemon_cmd", "status": "daemon_cmd", "pause": "daemon_cmd",
    "resume": "daemon_cmd", "reload": "daemon_cmd",
    "start": "lifecycle_cmd", "stop": "lifecycle_cmd", "restart": "lifecycle_cmd",
    "service": "service_cmd",
    "tray": "tray_cmd",
    "log": "log_cmd",
    "config": "config_cmd", "ignore": "config_cmd",
    "doctor": "doctor_cmd",
}  # fmt: skip


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser: every verb, or, for a known ``verb``, only the verbs its
    module registers (parsing that verb's command line the same way)."""
    import argparse
    import importlib

    from credguard import __version__

    parser = argparse.ArgumentParser(
        prog="credguard",
        description="Find Azure credential files, keep them encrypted, delete the leftovers.",
    )
    parser.add_argument("--version", action="version", version=f"credguard {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = [VERBS[verb]] if verb in VERBS else dict.fromkeys(VERBS.values())
    for module in modules:
        importlib.import_module(f"credguard.cli.{module}").register(sub)
    return parser


def verb_of(argv: Sequence[str]) -> str | None:
    """The verb ``argv`` names, if the options before it leave its parse to that verb alone:
    only ``--debug`` may come first (``-h`` or ``--version`` there is the whole parser's)."""
    first = next((a for a in argv if a != "--debug"), None)
    return first if first in VERBS else None


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; for commands that run a child (``exec``), what follows the first
    ``--`` is the child's command line, untouched. Elsewhere ``--`` keeps its usual meaning.
    ``az`` passes every argument after it to az, untouched, except that ``credguard az -h``/
    ``--help`` is credguard's own help for ``az`` and a leading ``--`` is dropped (so
    ``credguard az -- --help`` is az's)."""
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


def may_delete(args: argparse.Namespace) -> bool:
    """Whether the command may delete files: only those finish interrupted deletions first."""
    return bool(getattr(args, "recovers", False) or getattr(args, "protect", False))


def recover_first(args: argparse.Namespace) -> None:
    """Before a command: write back sealed-cache sessions a killed credguard left, and, for a
    command that may delete, finish or roll back the protect transactions a crash
    interrupted. A read-only command never deletes a file: it only says that one waits. A
    keyring that is not available only postpones recovery; the command still runs."""
    from credguard.cli.common import interrupted, open_copies_due, recover
    from credguard.cli.display import display_path
    from credguard.errors import CredguardError

    if open_copies_due():  # a credguard killed while it waited for an open copy's expiry
        from credguard.cli.open_cmd import sweep
        from credguard.handoff.ramdir import ram_base

        sweep(ram_base(create=False))
    if getattr(args, "recovery_itself", False):
        return
    transactions, sessions = interrupted()
    if transactions and not may_delete(args):
        print("credguard: note: a protect transaction a crash interrupted waits for recovery; "
              "the daemon, 'credguard recover' or the next command that protects finishes it",
              file=sys.stderr)
        transactions = False
    if not (transactions or sessions):
        return
    try:
        notes = recover(transactions, sessions)
    except CredguardError as exc:
        _traceback(args)
        print(f"credguard: warning: crash recovery postponed: {display_path(exc.message)}",
              file=sys.stderr)
        return
    for note in notes:
        print(f"credguard: recovered: {display_path(note)}", file=sys.stderr)


class Terminated(BaseException):
    """SIGTERM, raised where the process is, so it unwinds like Ctrl-C: a running import
    target's process group is ended, RAM copies are removed, an unfinished step rolls back.
    (The daemon and ``exec`` install handlers of their own.)"""


def _terminated(_signum: int, _frame: object) -> None:
    raise Terminated


def _traceback(args: argparse.Namespace) -> None:
    """With ``--debug``, the traceback of the exception being handled."""
    if args.debug:
        import traceback

        traceback.print_exc()


def main(argv: Sequence[str] | None = None) -> int:
    """The console script's ``credguard``: the quick path's "clean" for a ``check`` it can
    answer alone, else :func:`full`."""
    if sys.stdout is None or sys.stderr is None:
        _without_console()
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["check"]:
        from credguard.cli.quick import clean

        try:
            if clean(words):
                return 0
        except KeyboardInterrupt:  # said as the full path says it
            from credguard.errors import ExitCode

            print("credguard: interrupted", file=sys.stderr)
            return ExitCode.INTERRUPTED
    return full(words, process=argv is None)


def _without_console() -> None:
    """Streams for pythonw (``credguardw.exe``, what the Windows task runs), which has no console:
    its ``sys.stdout`` and ``sys.stderr`` are None, and a write to them would fail. stdout goes to
    os.devnull; stderr to the daemon's log, the one command run that way (``daemon.log``, as
    ``credguard service paths`` shows), so that an error at start (a refused configuration) is
    kept where the installer and the user look; to os.devnull if that log cannot be opened."""
    import os

    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    if sys.stderr is None:
        from credguard.service.background import log_file

        try:
            log = log_file()
            log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            sys.stderr = open(  # noqa: SIM115 - for the life of the process
                log, "a", buffering=1, encoding="utf-8", errors="backslashreplace",
                opener=lambda path, flags: os.open(path, flags, 0o600),
            )
        except OSError:
            sys.stderr = open(os.devnull, "w")  # noqa: SIM115


def _quick_parse(words: list[str]) -> argparse.Namespace | None:
    """``exec``'s usual command line as the parser reads it, without building the parser
    (:func:`credguard.cli.exec_cmd.quick_args`); None for anything else."""
    if words[:1] != ["exec"]:
        return None
    from credguard.cli.exec_cmd import quick_args

    return quick_args(words)


def full(words: list[str], *, process: bool = False) -> int:
    """Parse and run the command line ``words``: the one path that reports anything.
    ``process``: this is a real process (not a test calling in-process), which takes SIGTERM
    as :class:`Terminated`."""
    import signal

    from credguard.errors import CredguardError, ExitCode

    args = _quick_parse(words) or parse(build_parser(verb_of(words)), words)
    if process:
        signal.signal(signal.SIGTERM, _terminated)
    try:
        recover_first(args)
        return int(args.func(args))
    except CredguardError as exc:
        from credguard.cli.display import display_path

        _traceback(args)
        print(f"credguard: error: {display_path(exc.message)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("credguard: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Terminated:
        print("credguard: terminated", file=sys.stderr)
        return ExitCode.TERMINATED
    except BrokenPipeError:
        return ExitCode.OK  # output piped into e.g. `head`: not an error worth a message
    except Exception as exc:  # a bug: say so, never swallow it
        if args.debug:
            _traceback(args)
        else:
            print(f"credguard: internal error: {type(exc).__name__} "
                  "(run with --debug for the traceback)", file=sys.stderr)
        return ExitCode.INTERNAL
