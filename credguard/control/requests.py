"""The control commands and the checks every request passes before it is answered (or sent)."""

from __future__ import annotations

import contextlib
import os

from credguard.control.wire import PROTOCOL, ProtocolError, decode

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

COMMANDS = ("status", "scan", "pause", "resume", "reload", "alerts", "protect", "exec",
            "opened", "recent", "item")
ITEM_ACTIONS = ("open", "restore")  # "Open for import" and "Restore" (the tray's recent menu)
MAX_SCAN_PATHS = 1000
MAX_PAUSE = 7 * 24 * 3600  # seconds


def validate(request: object) -> tuple[str, dict[str, Any]]:
    """``(cmd, args)`` of a well-formed request, args normalised: ``scan`` always has ``paths``
    (a list of absolute path strings, or None for the default roots), ``pause`` always has
    ``seconds`` (a number in 1..604800, or None for "until resume"), ``alerts`` always has
    ``since`` (an aware datetime from an ISO 8601 string with a UTC offset, or None),
    ``protect`` has ``paths`` and ``context`` (:func:`.protect.protect_args`), ``exec`` its item,
    profile, files and context (:func:`.handover.exec_args`), ``opened`` an open copy's
    directory name and a context (:func:`.handover.opened_args`), ``item`` an ``action`` (one of
    :data:`ITEM_ACTIONS`) and a vault item ``id`` (32 lowercase hex digits), the others have
    none. Raises
    :class:`ProtocolError` with a short fixed message otherwise."""
    if not isinstance(request, dict):
        raise ProtocolError("request must be a JSON object")
    if not set(request) <= {"v", "cmd", "args"}:
        raise ProtocolError("unknown request field (expected v, cmd, args)")
    version = request.get("v")
    if type(version) is not int or version != PROTOCOL:
        raise ProtocolError(f"unsupported protocol version (this side speaks {PROTOCOL})")
    cmd = request.get("cmd")
    if not isinstance(cmd, str) or cmd not in COMMANDS:
        raise ProtocolError(f"unknown command (expected one of: {', '.join(COMMANDS)})")
    args = request.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError("args must be a JSON object")
    if cmd == "scan":
        return cmd, {"paths": _scan_paths(_only(cmd, args, "paths"))}
    if cmd == "pause":
        return cmd, {"seconds": _pause_seconds(_only(cmd, args, "seconds"))}
    if cmd == "alerts":
        return cmd, {"since": _since(_only(cmd, args, "since"))}
    if cmd == "protect":
        from credguard.control.protect import protect_args

        return cmd, protect_args(args)
    if cmd == "exec":
        from credguard.control.handover import exec_args

        return cmd, exec_args(args)
    if cmd == "opened":
        from credguard.control.handover import opened_args

        return cmd, opened_args(args)
    if cmd == "item":
        return cmd, _item(args)
    if args:
        raise ProtocolError(f"{cmd} takes no arguments")
    return cmd, {}


def _only(cmd: str, args: dict[str, Any], key: str) -> object:
    if not set(args) <= {key}:
        raise ProtocolError(f"unknown argument for {cmd} (expected only {key})")
    return args.get(key)


def _item(args: dict[str, Any]) -> dict[str, Any]:
    if set(args) != {"action", "id"}:
        raise ProtocolError("item takes exactly an action and an id")
    action, item_id = args["action"], args["id"]
    if action not in ITEM_ACTIONS:
        raise ProtocolError(f"item action must be one of: {', '.join(ITEM_ACTIONS)}")
    if not (isinstance(item_id, str) and len(item_id) == 32
            and all(c in "0123456789abcdef" for c in item_id)):
        raise ProtocolError("item id must be a vault item id (32 lowercase hex digits)")
    return {"action": action, "id": item_id}


def _scan_paths(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise ProtocolError("scan paths must be a non-empty list of absolute paths")
    if len(value) > MAX_SCAN_PATHS:
        raise ProtocolError(f"too many scan paths (at most {MAX_SCAN_PATHS})")
    for item in value:
        if not isinstance(item, str) or "\0" in item or not os.path.isabs(item):
            raise ProtocolError("scan paths must be absolute path strings")
    return list(value)


def _pause_seconds(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError("pause seconds must be a number")
    if not 1 <= value <= MAX_PAUSE:  # NaN compares false, so it is refused too
        raise ProtocolError(f"pause seconds must be between 1 and {MAX_PAUSE}")
    return value


def _since(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= 64:
        from datetime import datetime

        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(value)
            if when.tzinfo is not None:
                return when
    raise ProtocolError("alerts since must be an ISO 8601 time with a UTC offset")


def parse_request(line: bytes) -> tuple[str, dict[str, Any]]:
    """:func:`validate` of the JSON in ``line``; ProtocolError with a fixed message if the line
    is not strict UTF-8 JSON."""
    try:
        request = decode(line)
    except ProtocolError:
        raise ProtocolError("malformed request: not a UTF-8 JSON line") from None
    return validate(request)
