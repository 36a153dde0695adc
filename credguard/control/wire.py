"""The control protocol's wire format: one JSON object per line, requests and responses, large
results streamed in parts (see :mod:`credguard.control`). Cheap to import: ``credguard
protect`` loads it on every run."""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections import namedtuple
from collections.abc import Generator, Iterable, Iterator

from credguard.errors import CredguardError, ExitCode

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    from typing import Any, NamedTuple

PROTOCOL = 2
MAX_REQUEST = 64 * 1024  # bytes in a request line, newline excluded
MAX_RESPONSE = 16 * 1024 * 1024  # bytes in one response line: a bound, never reached in practice
PART_ITEMS, PART_BYTES = 500, 1024 * 1024  # a part's items at most; longer lines are split
MAX_AT = 4  # keys in a part's path into the result


class ProtocolError(CredguardError):
    """A request that breaks the protocol; the message is short and fixed (no request content).
    Raised in a client, it is the caller's arguments that cannot be sent: a usage error."""

    exit_code = ExitCode.USAGE


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


if TYPE_CHECKING:
    class Part(NamedTuple):
        """Items of the list at key path ``at`` of a result, sent before the result itself.
        (A named tuple, made without typing at run time: the client's import of this module
        stays cheap, see ``credguard protect`` and ``exec``.)"""

        at: tuple[str, ...]
        items: list[Any]

    # A large result: parts, then (the generator's return value) the rest of the result
    Streamed = Generator[Part, None, dict[str, Any]]
else:
    Part = namedtuple("Part", ["at", "items"])
    Streamed = Generator


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
