"""``credguard start``, ``stop`` and ``restart``: the daemon through the installed service,
else as a background process; each says what it did (the pid, the service's name)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from credguard.errors import ExitCode

_VERBS = (
    ("start", "start the daemon (the installed service, else a background process)"),
    ("stop", "stop the daemon, however it was started"),
    ("restart", "stop the daemon if it runs, then start it"),
)


def register(sub: Any) -> None:
    for verb, summary in _VERBS:
        p = sub.add_parser(
            verb,
            help=summary,
            description=f"{summary[0].upper()}{summary[1:]}. The installed per-user service "
            "(systemd user unit, launchd agent, Windows task) is used when its manager can "
            "be reached; otherwise the daemon runs in the background, logging to daemon.log "
            "in credguard's state dir.",
        )
        p.add_argument("--json", action="store_true", help="machine-readable outcome")
        p.set_defaults(func=run_lifecycle, verb=verb)


def run_lifecycle(args: argparse.Namespace) -> int:
    from credguard.cli.display import display_path as shown
    from credguard.service import lifecycle

    outcome = getattr(lifecycle, args.verb)()
    if args.json:
        print(json.dumps(outcome.to_json(), indent=2))
        return ExitCode.OK
    print(f"credguard: {shown(outcome.line())}")
    if outcome.log:
        print(f"  log: {shown(outcome.log)}")
    if outcome.note and outcome.action != "running":
        print(f"  {shown(outcome.note)}")
    return ExitCode.OK
