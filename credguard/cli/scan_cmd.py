"""``credguard scan`` and ``credguard check``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credguard.cli.common import load_config
from credguard.errors import ExitCode

if TYPE_CHECKING:  # the scanner and detectors load only for the commands that scan
    from credguard.scan import ScanResult


def register(sub: Any) -> None:
    p = sub.add_parser("scan", help="find credential files now",
                       description="Scan the default roots (or PATHs) for Azure credential files.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="scan these instead (recursively)")
    p.add_argument("--protect", action="store_true",
                   help="then act on each finding as the policy says (protect, import, "
                        "harden, alert, ignore); always scans in this process")
    p.add_argument("--local", action="store_true",
                   help="scan in this process even when the daemon is running")
    _output_flags(p)
    p.set_defaults(func=run_scan)

    c = sub.add_parser("check", help="exit 1 if any FILE is a credential (pre-commit hook)",
                       description="Check files (e.g. staged for commit) for Azure credentials.")
    c.add_argument("files", nargs="+", metavar="FILE")
    _output_flags(c)
    c.set_defaults(func=run_check)


def _output_flags(p: argparse.ArgumentParser) -> None:
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable JSON (version 1)")
    fmt.add_argument("--sarif", action="store_true", help="SARIF 2.1.0 for code-scanning tools")


class _Progress:
    """Progress on stderr, only when it is a terminal, at most five times a second."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, files: int, dirs: int) -> None:
        now = time.monotonic()
        if now - self.last >= 0.2:
            self.last = now
            sys.stderr.write(f"\rscanning… {files} files in {dirs} directories")
            sys.stderr.flush()

    def done(self) -> None:
        if self.last:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _emit(args: argparse.Namespace, result: ScanResult,
          actions: list[dict[str, Any]] | None = None) -> int:
    from credguard.cli import render

    if args.json:
        doc = result.to_json()
        if actions is not None:
            doc["actions"] = actions
        print(json.dumps(doc, indent=2))
    elif args.sarif:
        print(render.render_sarif(result))
    else:
        render.render_human(result, sys.stdout)
        if actions:
            from credguard.cli.protect_cmd import print_actions

            print("\nActions (policy):")
            print_actions(actions)
    if actions is not None:
        if any(not a.get("protected") for a in actions):
            return ExitCode.FINDINGS
    elif result.findings:
        return ExitCode.FINDINGS
    if result.errors:
        return ExitCode.INPUT
    return ExitCode.OK


def _via_daemon(args: argparse.Namespace) -> ScanResult | None:
    """Ask a running daemon to scan (it also acts on what it finds); None if none runs."""
    import os

    from credguard import control
    from credguard.scan import ScanResult

    try:
        wanted = [os.path.abspath(p) for p in args.paths] if args.paths else None
        reply = control.request("scan", timeout=600.0, paths=wanted)
    except control.DaemonNotRunning:
        return None
    return ScanResult.from_json(reply["scan"], reply.get("errors", []))


def run_scan(args: argparse.Namespace) -> int:
    from credguard import paths
    from credguard.scan import explicit_roots, scan

    if not (args.local or args.protect):
        remote = _via_daemon(args)
        if remote is not None:
            return _emit(args, remote)
    cfg = load_config()
    if args.paths:
        roots = explicit_roots(args.paths)
    else:
        extra = [paths.Root(Path(p), "extra") for p in cfg["scan.extra_roots"]]
        roots = paths.default_roots() + extra
    progress = _Progress() if sys.stderr.isatty() and not (args.json or args.sarif) else None
    try:
        result = scan(roots, cfg, progress)
    finally:
        if progress is not None:
            progress.done()
    actions = None
    if args.protect:
        from credguard.cli.protect_cmd import apply_policy

        actions = apply_policy(result, cfg)
    return _emit(args, result, actions)


def run_check(args: argparse.Namespace) -> int:
    from credguard.scan import explicit_roots, scan

    cfg = load_config()
    roots = explicit_roots(args.files, explicit=False)
    result = scan(roots, cfg)
    if not (args.json or args.sarif) and not result.findings and not result.errors:
        return ExitCode.OK  # quiet success, as a pre-commit hook should be
    return _emit(args, result)
