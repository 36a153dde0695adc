"""``credguard daemon``, ``status``, ``pause``, ``resume`` and ``reload``.

Each ``--json`` prints one document with a ``version`` (schemas: ``docs/schemas/<command>``
``.schema.json``); without a running daemon, every command but ``daemon`` exits 9 (NotFound).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from typing import Any

from credguard.cli.common import emit_json, load_config
from credguard.errors import ConfigError, ExitCode, UsageError

_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
STATUS_VERSION = 1  # the ``status --json`` document's shape
ANSWER_VERSION = 1  # the ``pause``/``resume``/``reload --json`` documents' shapes
_NO_DAEMON = "Without a running daemon it exits 9 and changes nothing."


def _json_help(name: str) -> str:
    return f"print one JSON document (schema: docs/schemas/{name}.schema.json)"


def register(sub: Any) -> None:
    d = sub.add_parser("daemon", help="run the protection service in the foreground",
                       description="Watch the roots, protect credentials as the policy says, "
                                   "serve the control socket. The service manager runs this. "
                                   "Exit 3 for an invalid configuration, 7 when another daemon "
                                   "runs or the state directory is unsafe.")
    d.set_defaults(func=run_daemon, recovers=True)
    st = sub.add_parser("status", help="is the daemon running, and what is it doing",
                        description="What the daemon does: mode, keystore, roots, what it left "
                        "on disk, sealed caches. Exit 0 while it runs (whether it protects is "
                        "'protecting'), 9 when it does not (the document still says how to "
                        "start it).")
    st.add_argument("--json", action="store_true", help=_json_help("status"))
    st.set_defaults(func=run_status)
    pa = sub.add_parser("pause", help="pause protection (alert only) for DURATION or until "
                                      "resumed",
                        description="Credential files are reported, not vaulted or deleted, "
                        f"until DURATION ends or 'credguard resume'. {_NO_DAEMON}")
    pa.add_argument("duration", nargs="?", metavar="DURATION",
                    help="how long: a whole number with s, m, h or d (90s, 30m, 1h, 2d; a bare "
                         "number is seconds), at most 7d; none: until resumed")
    re_ = sub.add_parser("resume", help="resume protection after a pause",
                         description=f"End a pause now. {_NO_DAEMON}")
    rl = sub.add_parser("reload", help="make the daemon re-read its configuration now "
                                       "(it also notices changes to its files by itself)",
                        description="Waits for the outcome: exit 0 once the daemon runs the new "
                        "configuration, 3 when it refused it (file:line) and keeps the one it "
                        f"had. {_NO_DAEMON}")
    for parser, name, func in ((pa, "pause", run_pause), (re_, "resume", run_resume),
                               (rl, "reload", run_reload)):
        parser.add_argument("--json", action="store_true", help=_json_help(name))
        parser.set_defaults(func=func)


def parse_duration(text: str, most: int | None = None, longest: str = "7d",
                   unchanged: str = "protection was not paused", what: str = "a pause") -> int:
    """Seconds in ``text`` (90s, 30m, 1h, 2d; a bare number is seconds), 1 s to ``most``
    (written ``longest``; by default a pause's 7 days); UsageError, ending in ``unchanged``,
    otherwise."""
    from credguard.control import MAX_PAUSE

    m = _DURATION.match(text.strip().lower())
    if not m or int(m.group(1)) <= 0:
        raise UsageError(f"not a duration: {text!r} (e.g. 90s, 30m, 1h, 2d); {unchanged}")
    seconds = int(m.group(1)) * _UNIT[m.group(2)]
    if seconds > (MAX_PAUSE if most is None else most):
        raise UsageError(f"too long {what}: {text!r} (at most {longest}); {unchanged}")
    return seconds


def run_daemon(args: argparse.Namespace) -> int:
    import sys

    from credguard.daemon.runtime import run
    from credguard.textsafe import log_to

    log_to(sys.stderr)  # timestamped lines, file names escaped: no forged or split records
    return run(load_config())


def run_status(args: argparse.Namespace) -> int:
    """Exit 0 while a daemon runs (whether it protects is ``protecting``), 9 when none does."""
    from credguard.doctor import daemon_status, protection, start_command

    status = {"version": STATUS_VERSION, **daemon_status()}
    verdict = protection(status)  # the judgment doctor's "daemon" check prints
    status.update(protecting=verdict.protecting, protection=verdict.reason)
    if not status.get("running"):
        status["start"] = start_command()
    status["sealed"] = _sealed()
    if args.json:
        emit_json(status)
    else:
        _print_status(status)
    return ExitCode.OK if status.get("running") else ExitCode.NOT_FOUND


def _print_status(status: dict[str, Any]) -> None:
    from credguard.cli.display import display_path as shown
    from credguard.doctor import start_hint

    if not status.get("running"):
        print("credguard daemon: not running — nothing protects your credentials")
        print(f"  {shown(start_hint())}")
    else:
        print(f"credguard daemon: running (pid {status['pid']}, since {status['since']})")
        flag = "yes" if status["protecting"] else "NO"
        print(f"  protecting: {flag} — {shown(status['protection'])}")
        reason = f" — {shown(status['mode_reason'])}" if status.get("mode_reason") else ""
        print(f"  mode:      {status['mode']}{reason}")
        refused = status.get("config_error")
        if isinstance(refused, dict):
            print(f"  config:    refused, the previous configuration is in force — "
                  f"{shown(str(refused.get('error', '')))}")
        print(f"  keystore:  {shown(str(status['keystore']))}")
        print(f"  protected: {_protected(status)}   queue: {status['queue']}")
        if status.get("last_scan"):
            s = status["last_scan"]
            print(f"  last scan: {s['time']} ({s['files']} files, {s['findings']} finding(s))")
        for root in status.get("roots", []):
            detail = shown(str(root.get("detail", "")))
            print(f"  {root['state']:8} {shown(root['path'])}  {detail}".rstrip())
            if root.get("access"):  # the daemon cannot read it: what to grant
                print(f"  {'denied':8} {shown(str(root['access']))}")
        _print_at_risk(status)
    for seal in status["sealed"]:
        if "error" in seal:
            print(f"  sealed:    cannot read the seals: {shown(seal['error'])}")
            continue
        print(f"  sealed:    {seal['tool']} cache in {shown(seal['root'])} "
              f"({len(seal['files'])} file(s), since {seal['sealed_at']})")


def _protected(status: dict[str, Any]) -> str:
    """The audit log's count (it survives restarts) and this run's, when the daemon says both."""
    count = status.get("protected_count", 0)
    if "protected_this_run" not in status:  # an older daemon: its count starts at its start
        return f"{count} (since start)"
    since = f" since {status['protected_since']}" if status.get("protected_since") else ""
    return f"{count} (audit log{since}; {status['protected_this_run']} since start)"


def _print_at_risk(status: dict[str, Any]) -> None:
    """Each credential file the daemon left on disk: action, reason, kind and the path."""
    from credguard.cli.display import display_path as shown
    from credguard.daemon.alerts import RISK_REASONS

    risks, count = status.get("at_risk", []), status.get("at_risk_count", 0)
    if not count:
        print("  at risk:   nothing the daemon knows of is left on disk")
        return
    print(f"  at risk:   {count} credential file(s) left on disk:")
    for risk in risks:
        why = RISK_REASONS.get(risk["reason"], risk["reason"])
        print(f"    {risk['action']:8} {shown(risk['path'])}")
        print(f"             {risk['kind']}: {shown(why)}")
    if count > len(risks):
        print(f"    … and {count - len(risks)} more (the daemon lists at most "
              f"{status.get('at_risk_shown_max', len(risks))})")


def _sealed() -> list[dict[str, Any]]:
    """The sealed Azure tool caches (from credguard's state; no keyring needed). The vault
    item is ``id``; ``item_id`` repeats it for one version (deprecated)."""
    from credguard.azcache.sealstore import Store
    from credguard.errors import CredguardError

    try:
        seals = [seal.public() for seal in Store().all()]
    except CredguardError as exc:
        return [{"error": exc.message}]
    for seal in seals:
        seal.setdefault("id", seal.get("item_id"))
        seal.setdefault("item_id", seal["id"])
    return seals


def _request(cmd: str, **kwargs: Any) -> dict[str, Any]:
    from credguard import control

    return control.request(cmd, **kwargs)


def run_pause(args: argparse.Namespace) -> int:
    seconds = parse_duration(args.duration) if args.duration is not None else None
    result = _request("pause", seconds=seconds) if seconds else _request("pause")
    if args.json:
        until = _end(seconds).isoformat(timespec="seconds") if seconds else None
        emit_json({"version": ANSWER_VERSION, "mode": result.get("mode"), "seconds": seconds,
                   "until": until})
    elif seconds is None:
        print("protection paused until you run 'credguard resume' (credential files are "
              "reported, not vaulted or deleted)")
    else:
        print(f"protection paused until {_clock(seconds)} (credential files are reported, "
              "not vaulted or deleted; 'credguard resume' ends the pause sooner)")
    return ExitCode.OK


def _end(seconds: int) -> dt.datetime:
    """When a pause of ``seconds`` from now ends: an aware local datetime."""
    return dt.datetime.now().astimezone() + dt.timedelta(seconds=seconds)


def _clock(seconds: int) -> str:
    """When a pause of ``seconds`` ends, in local time: "19:22", or with the date if not today."""
    end = _end(seconds)
    return end.strftime("%H:%M" if end.date() == dt.date.today() else "%Y-%m-%d %H:%M")


def run_resume(args: argparse.Namespace) -> int:
    was = _request("status").get("mode")
    result = _request("resume")
    mode = result.get("mode")
    if args.json:
        emit_json({"version": ANSWER_VERSION, "mode": mode, "was": was})
    elif mode != "protecting":
        print(f"pause ended, but the daemon is in {mode} mode: credential files are reported, "
              "not vaulted or deleted ('credguard status' says why)")
    else:
        print("protection resumed" if was == "paused" else "protection is on (it was not paused)")
    return ExitCode.OK


def run_reload(args: argparse.Namespace) -> int:
    """Exit 0 once the daemon runs the new configuration; 3 (and the error, file:line) when it
    refused it and keeps the one it had."""
    result = _request("reload")
    if "reloading" in result:
        check_reload(result)  # a daemon too old to say the outcome: an error, no document
    if args.json:
        emit_json({"version": ANSWER_VERSION, "reloaded": bool(result.get("reloaded")),
                   "files": result.get("files", []), "config_error": result.get("config_error")})
    check_reload(result)
    if not args.json:
        print("credguard daemon: configuration reloaded")
    return ExitCode.OK


def reload_daemon() -> dict[str, Any]:
    """Ask the running daemon to re-read its configuration and wait for its answer (see
    :func:`check_reload`). DaemonNotRunning when no daemon runs."""
    return check_reload(_request("reload"))


def check_reload(result: dict[str, Any]) -> dict[str, Any]:
    """The daemon's answer to ``reload`` if it applied the configuration; ConfigError with its
    reason (file:line) when it refused it and keeps the running one."""
    from credguard.control import DaemonError

    if "reloading" in result:  # a daemon from before the answer waited for the outcome
        raise DaemonError("this daemon does not say whether it accepted the configuration: "
                          "restart it, then see 'credguard status'")
    error = result.get("config_error")
    if not result.get("reloaded"):
        detail = error.get("error") if isinstance(error, dict) else "no reason given"
        raise ConfigError(f"reload refused: the daemon keeps its running configuration: {detail}")
    return result
