"""The daemon's control protocol and its client (used by the CLI and a tray icon).

Wire format (version 2; 1 had no parts): one connection carries one request and one response,
each line a JSON object in UTF-8 ending in ``\\n``. Request: ``{"v": 2, "cmd": "...", "args":
{...}}``. Response: zero or more parts ``{"v": 2, "part": {"at": [key, ...], "items": [...]}}``,
then ``{"v": 2, "ok": true, "result": {...}}`` or ``{"v": 2, "ok": false, "error": "..."}``.
A part's items go, in order, first into the list at key path ``at`` of the result: large
results (a scan's findings and skips) are streamed (:func:`parts`), so no size fails a command;
an error after parts voids them. Another version gets "another protocol version".
The socket lives in :func:`credguard.paths.control_dir` (0700; without a runtime dir, a private
directory in the temp dir that another user cannot squat, :mod:`credguard.fs.shared`), is itself
0600, and the server checks the peer's uid on every connection (:mod:`credguard.daemon.server`);
on Windows a keyed loopback channel stands in for it (:mod:`.channel`, the one dispatcher of the
transport). Besides the user's commands (status, scan, pause, resume, reload), ``alerts``
answers the tray with ``{"count": N}``: the daemon's recent ``alerted`` and ``failed`` audit
records at or after ``since``, ``protect`` is ``credguard protect`` done by the daemon when it
would do exactly what the command would (:mod:`.protect`), and ``exec`` is the handover
``credguard exec`` would read from the vault (:mod:`.handover`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from credguard import paths
from credguard.control import channel
from credguard.control.requests import (
    COMMANDS,
    MAX_PAUSE,
    MAX_SCAN_PATHS,
    parse_request,
    validate,
)
from credguard.control.wire import (
    MAX_AT,
    MAX_REQUEST,
    MAX_RESPONSE,
    PART_BYTES,
    PART_ITEMS,
    PROTOCOL,
    Part,
    ProtocolError,
    Streamed,
    _Lines,
    decode,
    encode,
    error_line,
    ok_line,
    part_lines,
    parts,
)
from credguard.errors import CredguardError, ExitCode, NotFoundError, StateError
from credguard.fs import at

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "COMMANDS", "MAX_AT", "MAX_PAUSE", "MAX_REQUEST", "MAX_RESPONSE", "MAX_SCAN_PATHS",
    "PART_BYTES", "PART_ITEMS", "PROTOCOL", "SOCKET_NAME", "DaemonError", "DaemonNotRunning",
    "Part", "ProtocolError", "Streamed", "check_control_dir", "daemon_socket_path", "decode",
    "encode", "error_line", "is_running", "ok_line", "parse_request", "part_lines", "parts",
    "request", "socket_path", "validate",
]

SOCKET_NAME = "control.sock"
_ERROR_SHOWN = 500  # characters of a daemon's error message shown to the user


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
    from credguard.fs import shared  # only without a runtime dir: most commands never need it

    found = shared.find(where)
    return found / SOCKET_NAME if found is not None else None


def daemon_socket_path() -> Path:
    """Where the daemon puts the control socket: :func:`socket_path`, and without a runtime
    dir a private directory in the temp dir made if there is none yet, under another name when
    another user took the usual one (:func:`credguard.fs.shared.claim`)."""
    where = paths.control_dir()
    if isinstance(where, Path):
        return where / SOCKET_NAME
    from credguard.fs import shared

    return shared.claim(where) / SOCKET_NAME


def check_control_dir(directory: Path) -> None:
    """Raise StateError, naming the fix, unless ``directory`` is a real directory (not a
    symbolic link) owned by this user and closed to group and others: only then can a socket
    in it be trusted to be ours (the server) or be reached by nobody else (the client).
    (Windows: a real directory; its ACL is the user profile's, see :func:`credguard.fs.at.mine`.)"""
    st = os.lstat(directory)
    where = f"refusing control directory {directory}"
    if not stat.S_ISDIR(st.st_mode):  # lstat: a symbolic link is not a directory
        raise StateError(f"{where}: it is a symbolic link or not a directory (remove it)")
    if not at.mine(st):
        raise StateError(f"{where}: it belongs to uid {st.st_uid}, not to you (remove it)")
    if not at.private(st):
        mode = stat.S_IMODE(st.st_mode)
        raise StateError(f"{where}: its mode is {mode:04o} (fix: chmod 700 {directory})")


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
    link = channel.for_platform()
    with _connected(link, target, timeout, message) as (sock, line, proof):
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(line)  # a refusal may come before the daemon reads
            lines = _Lines(sock, MAX_RESPONSE, deadline)
            if proof:
                _proven(lines.next(), proof)
            return _receive(lines)
        except TimeoutError:
            raise DaemonError(f"no answer within {timeout:g} s") from None
        except ProtocolError:
            raise DaemonError("response too large") from None
        except (EOFError, ConnectionResetError):
            raise DaemonError("the connection closed without an answer") from None
        except OSError as exc:
            raise DaemonError(f"control socket error: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _connected(link: channel.UnixChannel | channel.LoopbackChannel, target: Path,
               timeout: float, message: dict[str, Any],
               ) -> Iterator[tuple[socket.socket, bytes, bytes]]:
    """A connection to the daemon at ``target``, the line that sends ``message`` over it
    and the line the daemon must answer first (empty: none), as ``link`` makes them."""
    try:
        check_control_dir(target.parent)  # never talk to a socket someone else could plant
    except FileNotFoundError:
        raise DaemonNotRunning(f"no control socket at {target}") from None
    except OSError as exc:
        raise DaemonError(f"cannot reach {target}: {exc.strerror}") from None
    endpoint = link.endpoint(target)
    try:
        line, proof = link.request_line(message, endpoint)
        sock = link.connect(endpoint, timeout)
    except FileNotFoundError:
        raise DaemonNotRunning(f"no control socket at {endpoint}") from None
    except ConnectionRefusedError:
        raise DaemonNotRunning(f"nobody answers on {endpoint}") from None
    except TimeoutError:
        raise DaemonError(f"no answer within {timeout:g} s") from None
    except OSError as exc:
        raise DaemonError(f"cannot connect to {endpoint}: {exc.strerror or exc}") from None
    try:
        yield sock, line, proof
    finally:
        sock.close()


def _proven(first: bytes, proof: bytes) -> None:
    """The daemon's first line must be ``proof`` (the loopback channel's): an error line
    instead is the daemon's refusal, anything else a process that is not the user's daemon."""
    if first + b"\n" == proof:
        return
    reply = _reply(first)
    if reply.get("ok") is False:
        _result(reply)  # raises DaemonError with the daemon's message
    raise DaemonError("the process on the control port is not your credguard daemon (it "
                      "cannot prove it holds your control key)")


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
