"""``credguard doctor``: the one place to look when something is off."""

from __future__ import annotations

import argparse
import json
from typing import Any

from credguard.cli.common import load_config
from credguard.errors import ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check keystore, vault, watcher limits, file systems, "
                                      "notifications, tray and service")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    from credguard.doctor import run_checks

    checks = run_checks(load_config())
    healthy = all(c.ok for c in checks if c.essential)
    if args.json:
        print(json.dumps({"version": 1, "healthy": healthy,
                          "checks": [c.to_json() for c in checks]}, indent=2))
    else:
        for c in checks:
            mark = "ok " if c.ok else ("!! " if c.essential else "-- ")
            print(f"{mark} {c.check:13} {c.detail}")
    return ExitCode.OK if healthy else ExitCode.KEYSTORE
