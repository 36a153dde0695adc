"""``credguard service install|uninstall|status``: the per-user service for this OS."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from credguard.cli.common import emit_json
from credguard.errors import ExitCode

STATUS_VERSION = 1  # the ``service status --json`` document's shape


def register(sub: Any) -> None:
    p = sub.add_parser(
        "service",
        help="install, remove or inspect the per-user service",
        description="Run 'credguard daemon' as a per-user service: a systemd "
        "user unit, a launchd agent or a Windows logon task.",
    )
    verbs = p.add_subparsers(dest="service_command", metavar="VERB", required=True)
    ins = verbs.add_parser(
        "install", help="install, enable and start the service (again: rewrite it and restart)",
        description="Write the service definition, enable it for your login and start it. "
        "Running it again rewrites the definition and restarts the service. Without a "
        "reachable service manager nothing is changed (exit 8); --no-start works without one.",
    )
    ins.add_argument(
        "--print",
        action="store_true",
        dest="print_only",
        help="write the rendered definition to stdout; install nothing",
    )
    ins.add_argument(
        "--no-start",
        action="store_true",
        help="install and enable without starting (no running service manager "
        "needed); it starts at the next login",
    )
    ins.set_defaults(func=run_install)
    uni = verbs.add_parser(
        "uninstall", help="stop and remove the service (never the vault)",
        description="Stop the service, disable it and delete its definition; fine when it is "
        "not installed. The vault, the configuration and the state stay.",
    )
    uni.set_defaults(func=run_uninstall)
    st = verbs.add_parser(
        "status", help="installed, enabled, running?",
        description="What the service manager says of the credguard service, and whether a "
        "daemon answers on the control socket. Exit 0 when the service manager runs the "
        "daemon, 9 when it does not (not installed, or not running).",
    )
    st.add_argument("--json", action="store_true", help="print one JSON document "
                    "(schema: docs/schemas/service-status.schema.json)")
    st.set_defaults(func=run_service_status)
    pa = verbs.add_parser(
        "paths", help="where credguard keeps the vault, the configuration and its state",
        description="One 'NAME<TAB>PATH' line each: vault, config, state, log (what the "
        "installers print and purge).",
    )
    pa.set_defaults(func=run_paths)


def run_install(args: argparse.Namespace) -> int:
    from credguard import service

    svc = service.backend()
    if args.print_only:
        sys.stdout.write(svc.render(service.daemon_command()))
        return ExitCode.OK
    print(f"credguard service ({svc.name}): {svc.install(start=not args.no_start)}")
    return ExitCode.OK


def run_uninstall(args: argparse.Namespace) -> int:
    from credguard import service

    svc = service.backend()
    print(f"credguard service ({svc.name}): {svc.uninstall()}")
    return ExitCode.OK


def _responding() -> bool:
    """Whether a daemon answers on the control socket, however it was started (a Python
    without Unix sockets, on older Windows, has nothing to ask)."""
    import socket

    from credguard import control
    from credguard.errors import CredguardError

    if not hasattr(socket, "AF_UNIX"):
        return False
    try:
        control.request("status", timeout=2.0)
    except CredguardError:
        return False
    return True


def run_service_status(args: argparse.Namespace) -> int:
    """Exit 0 when the service manager runs the daemon, 9 (NOT_FOUND) otherwise."""
    from credguard import service
    from credguard.cli.display import display_path as shown

    status: dict[str, Any] = {"version": STATUS_VERSION, **service.backend().status(),
                              "responding": _responding()}
    if args.json:
        emit_json(status)
    else:
        flags = [
            word if status[key] else f"not {word}"
            for key, word in (
                ("installed", "installed"),
                ("enabled", "enabled"),
                ("running", "running"),
            )
        ]
        print(f"credguard service ({status['backend']}): {', '.join(flags)}")
        print(f"  definition: {shown(status['definition'])}")
        print(f"  manager:    {shown(status['manager'])}")
        if status["responding"] and not status["running"]:
            print("  note:       a credguard daemon started outside the service manager is running")
    return ExitCode.OK if status["running"] else ExitCode.NOT_FOUND


def run_paths(args: argparse.Namespace) -> int:
    """Where things are, as the installed credguard sees them (platformdirs, per OS)."""
    from credguard import paths
    from credguard.service import background

    where = {
        "vault": paths.vault_dir(),
        "config": paths.user_config_file().parent,
        "state": paths.user_state_dir(),
        "log": background.log_file(),
    }
    for name, path in where.items():
        print(f"{name}\t{path}")
    return ExitCode.OK
