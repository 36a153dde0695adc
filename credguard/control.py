"""The daemon's control protocol and its client (used by the CLI and a tray icon).

Wire format (version 2; 1 had no parts): one connection carries one request and one response,
each line a JSON object in UTF-8 ending in ``\\n``. Request: ``{"v": 2, "cmd": "...", "args":
{...}}``. Response: zero or more parts ``{"v": 2, "part": {"at": [key, ...], "items": [...]}}``,
then ``{"v": 2, "ok": true, "result": {...}}`` or ``{"v": 2, "ok": false, "error": "..."}``.
A part's items go, in order, first into the list at key path ``at`` of the result: large
results (a scan's findings and skips) are streamed (:func:`parts`), so no size fails a command;
an error after parts voids them. Another version gets "another protocol version".
The socket lives in :func:`credguard.paths.control_dir` (0700; without a runtime dir, a
private directory in the temp dir that another user cannot squat, :mod:`credguard.fs.shared`),
is itself 0600, and the server checks the peer's uid on every connection
(:mod:`credguard.daemon.server`). Besides the user's commands (status, scan, pause, resume,
reload), ``alerts`` answers the tray with ``{"count": N}``: the daemon's recent ``alerted``
and ``failed`` audit records at or after ``since``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import stat
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from credguard import paths
from credguard.errors import CredguardError, ExitCode, NotFoundError, StateError
from credguard.fs import shared

PROTOCOL = 2
COMMANDS = ("status", "scan", "pause", "resume", "reload", "alerts")
MAX_REQUEST = 64 * 1024  # bytes in a request line, newline excluded
MAX_RESPONSE = 16 * 1024 * 1024  # bytes in one response line: a bound, never reached in practice
PART_ITEMS, PART_BYTES = 500, 1024 * 1024  # a part's items at most; longer lines are split
MAX_AT = 4  # keys in a part's path into the result
MAX_SCAN_PATHS = 1000
SOCKET_NAME = "control.sock"
MAX_PAUSE = 7 * 24 * 3600  # seconds
_ERROR_SHOWN = 500  # characters of a daemon's error message shown to the user


class ProtocolError(CredguardError):
    """A request that breaks the protocol; the message is short and fixed (no request content).
    Raised in a client, it is the caller's arguments that cannot be sent: a usage error."""

    exit_code = ExitCode.USAGE


class DaemonError(CredguardError):
    """The daemon refused a request (busy), failed, or answered something unusable."""

    exit_code = ExitCode.STATE
    template = "credguard daemon: {detail}"


class DaemonNotRunning(NotFoundError):
    """No daemon listens on the control socket (missing, or stale with nobody answering)."""

    template = "credguard daemon is not running ({detail}); start it with: credguard start"


def socket_path() -> Path | None:
    """Where clients find the control socket: ``control.sock`` in
    :func:`credguard.paths.control_dir`; without a runtime dir, in the private directory of
    this user's that :func:`credguard.fs.shared.find` finds in the temp dir (None: there is
    none, so no daemon runs)."""
    where = paths.control_dir()
    if isinstance(where, Path):
        return where / SOCKET_NAME
    found = shared.find(where)
    return found / SOCKET_NAME if found is not None else None


def daemon_socket_path() -> Path:
    """Where the daemon puts the control socket: :func:`socket_path`, and without a runtime
    dir a private directory in the temp dir made if there is none yet, under another name when
    another user took the usual one (:func:`credguard.fs.shared.claim`)."""
    where = paths.control_dir()
    if isinstance(where, Path):
        return where / SOCKET_NAME
    return shared.claim(where) / SOCKET_NAME


def check_control_dir(directory: Path) -> None:
    """Raise StateError, naming the fix, unless ``directory`` is a real directory (not a
    symbolic link) owned by this user and closed to group and others: only then can a socket
    in it be trusted to be ours (the server) or be reached by nobody else (the client)."""
    st = os.lstat(directory)
    where = f"refusing control directory {directory}"
    if not stat.S_ISDIR(st.st_mode):  # lstat: a symbolic link is not a directory
        raise StateError(f"{where}: it is a symbolic link or not a directory (remove it)")
    if st.st_uid != os.geteuid():
        raise StateError(f"{where}: it belongs to uid {st.st_uid}, not to you (remove it)")
    if st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        raise StateError(f"{where}: its mode is {mode:04o} (fix: chmod 700 {directory})")


# -- validation ----------------------------------------------------------------------------


def validate(request: object) -> tuple[str, dict[str, Any]]:
    """``(cmd, args)`` of a well-formed request, args normalised: ``scan`` always has ``paths``
    (a list of absolute path strings, or None for the default roots), ``pause`` always has
    ``seconds`` (a number in 1..604800, or None for "until resume"), ``alerts`` always has
    ``since`` (an aware datetime from an ISO 8601 string with a UTC offset, or None), the
    others have none. Raises :class:`ProtocolError` with a short fixed message otherwise."""
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
    if args:
        raise ProtocolError(f"{cmd} takes no arguments")
    return cmd, {}


def _only(cmd: str, args: dict[str, Any], key: str) -> object:
    if not set(args) <= {key}:
        raise ProtocolError(f"unknown argument for {cmd} (expected only {key})")
    return args.get(key)


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
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(value)
            if when.tzinfo is not None:
                return when
    raise ProtocolError("alerts since must be an ISO 8601 time with a UTC offset")


# -- wire format ---------------------------------------------------------------------------


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line: compact ASCII JSON plus ``\\n`` (non-ASCII and undecodable file
    names travel as ``\\u`` escapes). Raises TypeError/ValueError for non-JSON values."""
    text = json.dumps(message, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.encode("ascii") + b"\n"


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def decode(line: bytes) -> object:
    """The JSON value of one line; ProtocolError if it is not strict UTF-8 JSON (NaN and
    Infinity refused, nesting and number size bounded by the parser)."""
    try:
        return json.loads(line.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProtocolError("malformed JSON line") from None


def ok_line(result: dict[str, Any]) -> bytes:
    """A success response line (TypeError/ValueError if ``result`` is not JSON-able)."""
    return encode({"v": PROTOCOL, "ok": True, "result": result})


def error_line(message: str) -> bytes:
    """An error response line."""
    return encode({"v": PROTOCOL, "ok": False, "error": message})


@dataclass(frozen=True)
class Part:
    """Items of the list at key path ``at`` of a result, sent before the result itself."""

    at: tuple[str, ...]
    items: list[Any]


# A large result: parts, then (the generator's return value) the rest of the result
Streamed = Generator[Part, None, dict[str, Any]]


def parts(at: tuple[str, ...], items: Iterable[Any], size: int = PART_ITEMS) -> Iterator[Part]:
    """``items`` as parts of at most ``size`` items each (none for no items), taken lazily:
    a handler streams a long list without building its JSON all at once."""
    rest = iter(items)
    while chunk := list(itertools.islice(rest, size)):
        yield Part(at, chunk)


def part_lines(part: Part) -> Iterator[bytes]:
    """The protocol lines of ``part``: one, or halves of it while a line is too long."""
    line = encode({"v": PROTOCOL, "part": {"at": list(part.at), "items": part.items}})
    if len(line) <= PART_BYTES or len(part.items) <= 1:
        return iter((line,))
    half = len(part.items) // 2
    return itertools.chain(part_lines(Part(part.at, part.items[:half])),
                           part_lines(Part(part.at, part.items[half:])))


def parse_request(line: bytes) -> tuple[str, dict[str, Any]]:
    """:func:`validate` of the JSON in ``line``; ProtocolError with a fixed message if the line
    is not strict UTF-8 JSON."""
    try:
        request = decode(line)
    except ProtocolError:
        raise ProtocolError("malformed request: not a UTF-8 JSON line") from None
    return validate(request)


class _Lines:
    """Lines from ``sock``: ProtocolError past ``limit`` bytes, EOFError, TimeoutError."""

    def __init__(self, sock: socket.socket, limit: int, deadline: float) -> None:
        self.sock, self.limit, self.deadline = sock, limit, deadline
        self.buf = bytearray()

    def next(self) -> bytes:
        start = 0
        while (end := self.buf.find(b"\n", start)) < 0:
            if len(self.buf) > self.limit:
                raise ProtocolError("line too long")
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no complete line before the deadline")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed before a newline")
            start = len(self.buf)
            self.buf += chunk
        if end > self.limit:
            raise ProtocolError("line too long")
        line = bytes(self.buf[:end])
        del self.buf[: end + 1]
        return line


# -- client --------------------------------------------------------------------------------


def request(
    cmd: str, *, timeout: float = 10.0, path: Path | None = None, **args: Any
) -> dict[str, Any]:
    """Send one command to the running daemon; its whole ``result``, parts put in place.

    ``args`` are the command's arguments (``paths=`` for scan, ``seconds=`` for pause), checked
    with :func:`validate` before anything is sent (ProtocolError). Raises DaemonNotRunning when
    there is no socket or nobody answers on it, StateError when the socket's directory is not
    the user's own 0700 one (:func:`check_control_dir`), DaemonError when the daemon refuses,
    fails, or does not answer within ``timeout`` seconds in total; never blocks longer.
    """
    target = Path(path) if path is not None else socket_path()
    if target is None:
        raise DaemonNotRunning("no control directory of yours in the temp dir")
    if isinstance(args.get("paths"), list | tuple):
        args["paths"] = [os.fspath(p) for p in args["paths"]]
    message = {"v": PROTOCOL, "cmd": cmd, "args": args}
    validate(message)
    deadline = time.monotonic() + timeout
    with _connected(target, timeout) as sock:
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(encode(message))  # a refusal may come before the daemon reads
            return _receive(_Lines(sock, MAX_RESPONSE, deadline))
        except TimeoutError:
            raise DaemonError(f"no answer within {timeout:g} s") from None
        except ProtocolError:
            raise DaemonError("response too large") from None
        except (EOFError, ConnectionResetError):
            raise DaemonError("the connection closed without an answer") from None
        except OSError as exc:
            raise DaemonError(f"control socket error: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _connected(target: Path, timeout: float) -> Iterator[socket.socket]:
    try:
        check_control_dir(target.parent)  # never talk to a socket someone else could plant
    except FileNotFoundError:
        raise DaemonNotRunning(f"no control socket at {target}") from None
    except OSError as exc:
        raise DaemonError(f"cannot reach {target}: {exc.strerror}") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(os.fspath(target))
        except FileNotFoundError:
            raise DaemonNotRunning(f"no control socket at {target}") from None
        except ConnectionRefusedError:
            raise DaemonNotRunning(f"nobody answers on {target}") from None
        except TimeoutError:
            raise DaemonError(f"no answer within {timeout:g} s") from None
        except OSError as exc:
            raise DaemonError(f"cannot connect to {target}: {exc.strerror or exc}") from None
        yield sock
    finally:
        sock.close()


def _receive(lines: _Lines) -> dict[str, Any]:
    """The final result, with the items of the parts before it put in their places."""
    streamed: dict[tuple[str, ...], list[Any]] = {}
    while "part" in (reply := _reply(lines.next())):
        at, items = _part(reply["part"])
        streamed.setdefault(at, []).extend(items)
    result = _result(reply)
    for at, items in streamed.items():
        node: Any = result
        for key in at[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else None
        current = node.setdefault(at[-1], []) if isinstance(node, dict) else None
        if not isinstance(current, list):
            raise DaemonError("malformed response")
        node[at[-1]] = items + current
    return result


def _reply(line: bytes) -> dict[str, Any]:
    try:
        reply = decode(line)
    except ProtocolError:
        reply = None
    if not isinstance(reply, dict):
        raise DaemonError("malformed response")
    if reply.get("v") != PROTOCOL:
        raise DaemonError("the daemon speaks another protocol version (restart it)")
    return reply


def _part(part: object) -> tuple[tuple[str, ...], list[Any]]:
    if isinstance(part, dict) and set(part) == {"at", "items"}:
        at, items = part["at"], part["items"]
        if (isinstance(at, list) and 1 <= len(at) <= MAX_AT
                and all(isinstance(key, str) for key in at) and isinstance(items, list)):
            return tuple(at), items
    raise DaemonError("malformed response")


def _result(reply: dict[str, Any]) -> dict[str, Any]:
    result, error = reply.get("result"), reply.get("error")
    if reply.get("ok") is True and isinstance(result, dict):
        return result
    if reply.get("ok") is False and isinstance(error, str):
        shown = "".join(ch if ch.isprintable() else "?" for ch in error[:_ERROR_SHOWN])
        raise DaemonError(shown)
    raise DaemonError("malformed response")


def is_running(path: Path | None = None) -> bool:
    """True when a daemon answers a ``status`` request on the socket within 2 seconds."""
    try:
        request("status", timeout=2.0, path=path)
    except CredguardError:
        return False
    return True
