"""``credguard daemon``, ``status``, ``pause``, ``resume`` and ``reload``."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from credguard.cli.common import load_config
from credguard.errors import ExitCode, InputError

_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def register(sub: Any) -> None:
    d = sub.add_parser("daemon", help="run the protection service in the foreground",
                       description="Watch the roots, protect credentials as the policy says, "
                                   "serve the control socket. The service manager runs this.")
    d.set_defaults(func=run_daemon, recovers=True)
    st = sub.add_parser("status", help="is the daemon running, and what is it doing")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=run_status)
    pa = sub.add_parser("pause", help="pause protection (alert only) for DURATION or until "
                                      "resumed")
    pa.add_argument("duration", nargs="?", metavar="DURATION", help="e.g. 30m, 1h, 90s")
    pa.set_defaults(func=run_pause)
    re_ = sub.add_parser("resume", help="resume protection after a pause")
    re_.set_defaults(func=run_resume)
    rl = sub.add_parser("reload", help="make the daemon re-read its configuration")
    rl.set_defaults(func=run_reload)


def parse_duration(text: str) -> int:
    m = _DURATION.match(text.strip().lower())
    if not m or int(m.group(1)) <= 0:
        raise InputError(f"not a duration: {text!r} (e.g. 90s, 30m, 1h, 2d)")
    return int(m.group(1)) * _UNIT[m.group(2)]


def run_daemon(args: argparse.Namespace) -> int:
    import sys

    from credguard.daemon.runtime import run
    from credguard.textsafe import log_to

    log_to(sys.stderr)  # timestamped lines, file names escaped: no forged or split records
    return run(load_config())


def run_status(args: argparse.Namespace) -> int:
    from credguard import control

    try:
        status = control.request("status")
    except control.DaemonNotRunning:
        status = {"running": False}
    status["sealed"] = _sealed()
    if args.json:
        print(json.dumps(status, indent=2))
        return ExitCode.OK if status.get("running") else ExitCode.STATE
    if not status.get("running"):
        print("credguard daemon: not running")
    else:
        print(f"credguard daemon: running (pid {status['pid']}, since {status['since']})")
        reason = f" — {status['mode_reason']}" if status.get("mode_reason") else ""
        print(f"  mode:      {status['mode']}{reason}")
        print(f"  keystore:  {status['keystore']}")
        print(f"  protected: {status['protected_count']}   queue: {status['queue']}")
        if status.get("last_scan"):
            s = status["last_scan"]
            print(f"  last scan: {s['time']} ({s['files']} files, {s['findings']} finding(s))")
        for root in status.get("roots", []):
            print(f"  {root['state']:8} {root['path']}  {root.get('detail', '')}".rstrip())
    for seal in status["sealed"]:
        print(f"  sealed:    {seal['tool']} cache in {seal['root']} ({len(seal['files'])} "
              f"file(s), since {seal['sealed_at']})")
    return ExitCode.OK if status.get("running") else ExitCode.STATE


def _sealed() -> list[dict[str, Any]]:
    """The sealed Azure tool caches (from credguard's state; no keyring needed)."""
    from credguard.azcache.sealstore import Store
    from credguard.errors import CredguardError

    try:
        return [seal.public() for seal in Store().all()]
    except CredguardError as exc:
        return [{"error": exc.message}]


def _simple(cmd: str, **kwargs: Any) -> int:
    from credguard import control

    result = control.request(cmd, **kwargs)
    print(f"credguard daemon: {json.dumps(result)}")
    return ExitCode.OK


def run_pause(args: argparse.Namespace) -> int:
    if args.duration:
        return _simple("pause", seconds=parse_duration(args.duration))
    return _simple("pause")


def run_resume(args: argparse.Namespace) -> int:
    return _simple("resume")


def run_reload(args: argparse.Namespace) -> int:
    return _simple("reload")
