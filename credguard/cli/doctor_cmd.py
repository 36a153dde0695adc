"""``credguard doctor``: the one place to look when something is off."""

from __future__ import annotations

import argparse
from typing import Any

from credguard.cli.common import emit_json, load_config
from credguard.cli.display import display_path

DOCTOR_VERSION = 1  # the ``doctor --json`` document's shape


def register(sub: Any) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the daemon, keystore, vault, the roots' access, watcher limits, file "
             "systems, notifications, tray and service",
        description="One line per check: 'ok', '!!' (an essential check failed) or '--' (an "
        "optional one did). Exit 0 when every essential check passes, else the code of the "
        "first that fails: 5 no usable keystore (or a daemon in alert-only mode), 7 an unsafe "
        "vault directory or a daemon that does not answer, 9 no daemon running, 1 protection "
        "paused.",
    )
    p.add_argument("--json", action="store_true",
                   help="print one JSON document (schema: docs/schemas/doctor.schema.json)")
    p.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    """Exit 0 when every essential check passes, else the code of the first failed one
    (:func:`credguard.doctor.exit_code`)."""
    from credguard.doctor import exit_code, run_checks

    checks = run_checks(load_config())
    code = exit_code(checks)
    daemon = next(c for c in checks if c.check == "daemon")
    if args.json:
        emit_json({"version": DOCTOR_VERSION, "healthy": code == 0, "protecting": daemon.ok,
                   "protection": daemon.detail, "checks": [c.to_json() for c in checks]})
    else:
        for c in checks:
            mark = "ok " if c.ok else ("!! " if c.essential else "-- ")
            print(f"{mark} {c.check:13} {display_path(c.detail)}")
    return code
