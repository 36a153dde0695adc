"""``credguard scan`` and ``credguard check``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from credguard.cli.common import emit_json, load_config
from credguard.cli.display import display_path, plural
from credguard.errors import ExitCode

if TYPE_CHECKING:  # the scanner and detectors load only for the commands that scan
    from credguard.config import Config
    from credguard.protect.act import Outcome
    from credguard.scan import ScanResult, Skipped

IMPORTED = "imported; original kept"
_DONE = {"protect": "protected", "import": "imported", "reseal": "re-sealed"}


def register(sub: Any) -> None:
    p = sub.add_parser("scan", help="find credential files now",
                       description="Scan the default roots (or PATHs) for Azure credential "
                                   "files. Exit 0: none found; 1: found; 4: a PATH could not be "
                                   "scanned. A running daemon scans (and acts as its policy "
                                   "says) unless --local or --protect is given.")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="scan these files or directories (recursively) instead of the default "
                        "roots")
    p.add_argument("--protect", action="store_true",
                   help="then act on each finding as the policy says (protect, import, "
                        "harden, alert, ignore); always scans in this process")
    p.add_argument("--local", action="store_true",
                   help="scan in this process even when the daemon is running")
    _output_flags(p, "scan")
    p.set_defaults(func=run_scan)

    c = sub.add_parser(
        "check", help="exit 1 if any FILE is a credential (pre-commit hook)",
        description="Check files (e.g. staged for commit) for Azure credentials, by name and by "
                    "content. Quiet when nothing is found. Exit 0: none found; 1: found; 4: a "
                    "FILE is missing, a directory or a special file. A symbolic link is not "
                    "followed (a commit holds only the link) and does not fail the check.")
    c.add_argument("files", nargs="+", metavar="FILE",
                   help="the files to check (a git hook passes the staged ones)")
    _output_flags(c, "check")
    c.set_defaults(func=run_check)


def _output_flags(p: argparse.ArgumentParser, schema: str) -> None:
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true",
                     help=f"print one JSON document (schema: docs/schemas/{schema}.schema.json)")
    fmt.add_argument("--sarif", action="store_true",
                     help="print SARIF 2.1.0, for code-scanning tools")


class _Progress:
    """Progress on stderr, only when it is a terminal, at most five times a second."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, files: int, dirs: int) -> None:
        now = time.monotonic()
        if now - self.last >= 0.2:
            self.last = now
            sys.stderr.write(f"\rscanning… {plural(files, 'file')} in "
                             f"{plural(dirs, 'directory', 'directories')}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.last:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _emit(args: argparse.Namespace, result: ScanResult,
          outcomes: list[Outcome] | None = None, verb: str = "scanned") -> int:
    from credguard.cli import render

    if args.json:
        doc = result.to_json()
        if outcomes is not None:
            doc["actions"] = [action_record(o) for o in outcomes]
        emit_json(doc)
    elif args.sarif:
        print(render.render_sarif(result))
    else:
        render.render_human(result, sys.stdout)
        if outcomes:
            print("\nActions (policy):")
            for o in outcomes:
                print(f"  {display_path(f'{o.finding.path}: {describe(o)}')}")
    for error in result.errors:  # listed in the report too; said plainly (exit 4 unless found)
        print(f"credguard: error: {display_path(error.path)}: not {verb}: {skip_text(error)}",
              file=sys.stderr)
    return _exit_code(result, outcomes)


def skip_text(skipped: Skipped) -> str:
    """Why a path was not examined: ``reason (detail)``, escaped."""
    detail = f" ({display_path(skipped.detail)})" if skipped.detail else ""
    return f"{display_path(skipped.reason)}{detail}"


def _exit_code(result: ScanResult, outcomes: list[Outcome] | None) -> int:
    """1 while a finding is left on disk; after acting, 5 if the keystore was lost (every
    finding was still reported, in alert-only mode from then on)."""
    if outcomes is not None:
        from credguard.protect.act import Result  # only after acting: check never loads it

        lost = next((o.keystore_lost for o in outcomes if o.keystore_lost), "")
        if lost:
            print(f"credguard: error: {display_path(lost)}; alert-only mode: what needed the "
                  "vault was left in place", file=sys.stderr)
            return ExitCode.KEYSTORE
        if any(o.result is not Result.PROTECTED for o in outcomes):
            return ExitCode.FINDINGS
    elif result.findings:
        return ExitCode.FINDINGS
    if result.errors:
        return ExitCode.INPUT
    return ExitCode.OK


def _via_daemon(args: argparse.Namespace) -> ScanResult | None:
    """Ask a running daemon to scan (it also acts on what it finds); None if none runs. The
    daemon streams a large result in parts; ``control.request`` puts it back together."""
    import os

    from credguard import control
    from credguard.scan import ScanResult

    try:
        wanted = [os.path.abspath(p) for p in args.paths] if args.paths else None
        reply = control.request("scan", timeout=600.0, paths=wanted)
    except control.DaemonNotRunning:
        return None
    except control.DaemonError as exc:
        if exc.detail.startswith("busy:"):  # the daemon runs as many scans as it will
            raise control.DaemonError(f"{exc.detail}; or scan here: credguard scan --local"
                                      ) from None
        raise
    return ScanResult.from_json(reply["scan"], reply.get("errors", []))


def run_scan(args: argparse.Namespace) -> int:
    from credguard.scan import configured_roots, explicit_roots, scan

    if not (args.local or args.protect):
        remote = _via_daemon(args)
        if remote is not None:
            return _emit(args, remote)
    cfg = load_config()
    roots = explicit_roots(args.paths) if args.paths else configured_roots(cfg)
    progress = _Progress() if sys.stderr.isatty() and not (args.json or args.sarif) else None
    try:
        result = scan(roots, cfg, progress)
    finally:
        if progress is not None:
            progress.done()
    outcomes = apply_policy(result, cfg) if args.protect else None
    return _emit(args, result, outcomes)


def apply_policy(result: ScanResult, cfg: Config) -> list[Outcome]:
    """Act on each finding as the daemon would (:mod:`credguard.protect.act`); once the keystore
    is lost, on the rest in alert-only mode (nothing more is written or deleted)."""
    import functools

    from credguard.azcache.plaintext import sealed_cache
    from credguard.policy import Mode
    from credguard.protect.act import Actor
    from credguard.protect.transaction import Protector
    from credguard.vault.access import open_vault

    actor = Actor(cfg, functools.cache(lambda: Protector(cfg, open_vault(cfg))), sealed_cache)
    mode, outcomes = Mode.PROTECTING, []
    for finding in result.findings:
        outcomes.append(actor.act(finding, mode))
        if outcomes[-1].keystore_lost:
            mode = Mode.ALERT_ONLY
    return outcomes


def action_record(o: Outcome) -> dict[str, Any]:
    """One ``scan --protect --json`` action: path, kind, action, and what became of it."""
    from credguard.protect.act import Result
    from credguard.protect.report import outcome_json

    record: dict[str, Any] = {"path": o.finding.path, "kind": o.finding.kind, "action": o.action}
    if o.transaction is not None:
        record.update(outcome_json(o.transaction))
    elif o.result in (Result.PROTECTED, Result.IMPORTED):
        done = o.result is Result.PROTECTED
        record.update(protected=done, id=o.item_id, item_id=o.item_id,  # item_id: deprecated
                      result=o.detail if done else IMPORTED)
    elif o.result in (Result.WAITING, Result.FAILED):
        error = o.detail or f"{o.reason} mode: nothing was written or deleted"
        record.update(protected=False, reason=o.reason, error=error)
    elif o.detail:  # harden: what it changed
        record["result"] = o.detail
    elif o.reason:
        record["reason"] = o.reason
    return record


def describe(o: Outcome) -> str:
    """What became of a finding, in a few words for the terminal."""
    from credguard.protect.act import RESEAL, Result

    if o.result is Result.WAITING:
        return f"NOT {_DONE[o.action]} ({o.reason} mode: left in place)"
    if o.result in (Result.FAILED, Result.CHANGED):
        return f"NOT {_DONE[o.action]}: {o.detail}"
    if o.result is Result.PROTECTED:
        return o.detail if o.action == RESEAL else "protected"
    if o.result is Result.IMPORTED:
        return IMPORTED
    if o.detail:  # harden: what it changed
        return o.detail
    return f"{o.action} ({o.reason or 'policy'})"


def run_check(args: argparse.Namespace) -> int:
    from credguard.cli import stamp
    from credguard.scan.check import check

    cfg = load_config()
    stamp.remember(cfg)  # a configuration that loaded in silence: the quick path may skip it
    result = check(args.files, cfg)
    if not (args.json or args.sarif) and not result.findings and not result.errors:
        for skipped in result.skipped:  # quiet success, as a hook should be: notes on stderr
            print(f"credguard: note: {display_path(skipped.path)}: skipped: "
                  f"{skip_text(skipped)}", file=sys.stderr)
        return ExitCode.OK
    return _emit(args, result, verb="checked")
