"""``credguard start``, ``stop`` and ``restart``: the daemon through the installed service,
else as a background process; each says what it did (the pid, the service's name)."""

from __future__ import annotations

import argparse
from typing import Any

from credguard.cli.common import emit_json
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
            "in credguard's state dir. Exit 0 when done (also when there was nothing to do), 8 "
            "when the daemon exits at once or the service manager cannot be reached or fails, "
            "7 when the daemon does not answer or stop in time.",
        )
        p.add_argument("--json", action="store_true",
                       help=f"print one JSON document (schema: docs/schemas/{verb}.schema.json)")
        p.set_defaults(func=run_lifecycle, verb=verb)


def run_lifecycle(args: argparse.Namespace) -> int:
    from credguard.cli.display import display_path as shown
    from credguard.service import lifecycle

    outcome = getattr(lifecycle, args.verb)()
    if args.json:
        emit_json(outcome.to_json())
        return ExitCode.OK
    print(f"credguard: {shown(outcome.line())}")
    if outcome.log:
        print(f"  log: {shown(outcome.log)}")
    if outcome.note and outcome.action != "running":
        print(f"  {shown(outcome.note)}")
    return ExitCode.OK
