"""``credguard doctor``: the one place to look when something is off."""

from __future__ import annotations

import argparse
import json
from typing import Any

from credguard.cli.common import load_config
from credguard.cli.display import display_path
from credguard.errors import ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check the daemon, keystore, vault, watcher limits, file "
                                      "systems, notifications, tray and service")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    """Exit 0 when every essential check passes; 5 when the keystore or the vault fails, else 7
    when no daemon protects (not running, alert-only, paused)."""
    from credguard.doctor import run_checks

    checks = run_checks(load_config())
    failed = {c.check for c in checks if c.essential and not c.ok}
    daemon = next(c for c in checks if c.check == "daemon")
    if args.json:
        print(json.dumps({"version": 1, "healthy": not failed, "protecting": daemon.ok,
                          "protection": daemon.detail,
                          "checks": [c.to_json() for c in checks]}, indent=2))
    else:
        for c in checks:
            mark = "ok " if c.ok else ("!! " if c.essential else "-- ")
            print(f"{mark} {c.check:13} {display_path(c.detail)}")
    if not failed:
        return ExitCode.OK
    return ExitCode.STATE if failed == {"daemon"} else ExitCode.KEYSTORE
