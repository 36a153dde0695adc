"""``credguard log [--json] [--since WHEN] [--verify]``: print or check the audit log."""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from credguard.cli.display import display_path
from credguard.errors import ExitCode

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
    cmd.add_argument("--json", action="store_true", help="the JSON lines exactly as stored")
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
    shown = 0
    for raw, record in audit.entries(args.since):
        print(raw if args.json else human_line(record))
        shown += 1
    if not shown:
        when = args.since.isoformat(timespec="seconds") if args.since else ""
        # with --json stdout stays pure JSON lines: the note goes to stderr
        print(
            f"no audit records since {when}" if when else "no audit records yet",
            file=sys.stderr if args.json else sys.stdout,
        )
    return ExitCode.OK


def human_line(record: dict[str, object]) -> str:
    """``time event key=value ...`` with every value made safe for one terminal line."""
    parts = [display_path(str(record.get("time"))), display_path(str(record.get("event")))]
    for key, value in record.items():
        if key not in _HIDDEN:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            shown = display_path(text)
            parts.append(f'{key}="{shown}"' if " " in shown or not shown else f"{key}={shown}")
    return " ".join(parts)


def _verify(audit: AuditLog, as_json: bool) -> int:
    result = audit.verify()
    if as_json:
        print(json.dumps(asdict(result), indent=2))
    elif not result.ok:
        print(f"audit log damaged at {result.where}: {result.problem}")
    elif not result.lines:
        print("no audit records yet")
    else:
        rotated = f" ({result.dropped} older lines rotated away)" if result.dropped else ""
        print(f"audit log intact: {result.lines} lines{rotated}")
    return ExitCode.OK if result.ok else ExitCode.INTEGRITY
