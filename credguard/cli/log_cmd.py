"""``credguard log [--json] [--since WHEN] [--verify]``: print or check the audit log."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from credguard.cli.common import emit_json
from credguard.cli.display import display_path
from credguard.errors import ExitCode
from credguard.textsafe import escape

if TYPE_CHECKING:  # imported where used, so other verbs never load it
    from credguard.audit.log import AuditLog

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_HIDDEN = ("v", "seq", "time", "event", "prev")  # shown by position, or not at all


def register(sub: Any) -> None:
    cmd = sub.add_parser(
        "log",
        help="print or verify the audit log",
        description="Print the audit log, oldest first (times in UTC), or check its hash chain.",
    )
    cmd.add_argument("--json", action="store_true",
                     help="print one JSON document (schema: docs/schemas/log.schema.json): the "
                          "records as stored, or with --verify the verdict")
    cmd.add_argument(
        "--since",
        type=parse_when,
        metavar="WHEN",
        help="only records at or after WHEN: 2026-11-28, 2026-11-28T10:00 (local time unless "
        "an offset is given) or a duration ago: 90s, 30m, 2h, 7d, 2w",
    )
    cmd.add_argument(
        "--verify", action="store_true", help="check the hash chain; exit 6 if it is broken"
    )
    # a bad --since is argparse's usage error (exit 2), like every other bad value
    cmd.set_defaults(func=run_log)


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """An aware time from a duration ago ("30m", "2h", "7d") or an ISO date or date-time; one
    without an offset is local time. argparse.ArgumentTypeError (exit 2) for anything else."""
    now = now or datetime.now().astimezone()
    match = re.fullmatch(r"(\d{1,9})\s*([smhdw])", text.strip().lower())
    try:
        if match:
            return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
        return datetime.fromisoformat(text.strip()).astimezone()
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"not a time or duration: {text!r} (try 2026-11-28, 2026-11-28T10:00, 30m, 2h, 7d)"
        ) from None


def run_log(args: argparse.Namespace) -> int:
    from credguard.audit.log import AuditLog

    audit = AuditLog()
    if args.verify:
        return _verify(audit, args.json)
    if args.json:
        emit_json({"version": 1, "records": list(audit.records(args.since))})
        return ExitCode.OK
    shown = 0
    for record in audit.records(args.since):
        print(human_line(record))
        shown += 1
    if not shown:
        when = args.since.isoformat(timespec="seconds") if args.since else ""
        print(f"no audit records since {when}" if when else "no audit records yet")
    return ExitCode.OK


def human_line(record: dict[str, object]) -> str:
    """``time event key=value ...`` on one terminal line. A value with a space or a quote, or
    an empty one, is quoted, ``"`` inside it shown as ``\\"`` (backslashes are doubled by
    :func:`credguard.textsafe.escape`), so no value can end early or forge another field."""
    parts = [display_path(str(record.get("time"))), display_path(str(record.get("event")))]
    for key, value in record.items():
        if key not in _HIDDEN:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            parts.append(f"{escape(key)}={_value(text)}")
    return " ".join(parts)


def _value(text: str) -> str:
    shown = escape(text)
    if shown and " " not in shown and '"' not in shown:
        return shown
    return '"' + shown.replace('"', '\\"') + '"'


def _verify(audit: AuditLog, as_json: bool) -> int:
    result = audit.verify()
    if as_json:
        emit_json({"version": 1, **asdict(result)})
    elif not result.ok:
        print(f"audit log damaged at {result.where}: {result.problem}")
    elif not result.lines:
        print("no audit records yet")
    else:
        rotated = f" ({result.dropped} older lines rotated away)" if result.dropped else ""
        print(f"audit log intact: {result.lines} lines{rotated}")
    return ExitCode.OK if result.ok else ExitCode.INTEGRITY
