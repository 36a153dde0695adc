"""The audit record format: which events and fields exist, how a line is checked and parsed,
and how a chain of lines is verified. No I/O here; :mod:`credguard.audit.log` reads and writes."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

# fmt: off
Event = Literal["started", "stopped", "detected", "protected", "imported", "hardened", "alerted",
                "failed", "ignored", "recovered", "paused", "resumed", "reloaded", "scanned",
                "mode", "reload-refused", "restored", "opened", "closed", "expired"]
EVENTS: frozenset[str] = frozenset(get_args(Event))
FIELDS = frozenset({"path", "kind", "fingerprint", "item_id", "reason", "mode", "count", "root",
                    "detail", "action", "pid", "version", "paths", "duration", "files", "dirs",
                    "seconds"})  # no field for contents, keys, passwords or tokens: by design
# fmt: on
VERSION, ZERO = 1, "0" * 64
RESERVED = frozenset({"v", "seq", "time", "event", "prev"})
_SECRETISH = re.compile(r"pass|pwd|secret|token|cred|cert|pfx|private|key|bearer|sig", re.I)
_MAX_STR, _MAX_ITEMS, _MAX_BYTES = 4096, 256, 32768
_PATH_FIELDS = frozenset({"path", "root", "paths"})  # a longer path is elided, not refused
_ELIDED = "…[{n} characters elided]…"
Record = dict[str, object]
Problem = tuple[str, str] | None  # (what is wrong, file:line)
HEAD = "audit.head"


@dataclass(frozen=True)
class Verification:
    """``ok``, or the first ``problem`` and ``where`` (``file:line``) it is. ``lines`` counts the
    lines checked; ``dropped`` the older lines rotation deleted (expected, not an error)."""

    ok: bool
    lines: int
    problem: str = ""
    where: str = ""
    dropped: int = 0


class Chain:
    """Walks the lines oldest first, remembering the last one that chained."""

    def __init__(self, may_drop: bool) -> None:
        self.may_drop = may_drop  # a rotated file exists: earlier lines may be gone by design
        self.lines = self.dropped = self.seq = 0
        self.digest = self.where = ""

    def walk(self, files: list[tuple[str, bytes]]) -> Iterator[Problem]:
        """One result per line: a problem, or None if the line follows the one before."""
        for name, data in files:
            *lines, partial = data.split(b"\n")
            for number, raw in enumerate(lines, 1):
                yield self.step(f"{name}:{number}", raw)
            if partial:
                last = "last " if name == files[-1][0] else ""
                yield f"incomplete {last}line (a crash or truncation)", f"{name}:{len(lines) + 1}"

    def step(self, where: str, raw: bytes) -> Problem:
        """Check one line against the last one that chained; remember it if it does."""
        record = parse_line(raw)
        seq = record["seq"] if record is not None else None
        if record is None or not isinstance(seq, int):
            return "not a valid audit record", where
        found = self._problem(seq, record, where)
        if found is None:
            self.dropped = self.dropped if self.lines else seq - 1
            self.lines, self.seq, self.digest, self.where = self.lines + 1, seq, digest(raw), where
        return found

    def _problem(self, seq: int, record: Record, where: str) -> Problem:
        if not self.lines and seq == 1:
            return None if record["prev"] == ZERO else ("the first prev is not zeros", where)
        if not self.lines:
            return None if self.may_drop else (f"starts at seq {seq}: lines missing", where)
        if seq <= self.seq:
            return f"seq {seq} after seq {self.seq}: lines reordered or inserted", where
        if seq > self.seq + 1:
            return f"seq jumps from {self.seq} to {seq}: lines deleted or reordered", where
        if record["prev"] != self.digest:
            return "line edited: its hash is not the next line's prev", self.where
        return None

    def check_head(self, head: tuple[int, str] | None) -> Problem:
        """The last line against ``audit.head`` (which the next append moves on again)."""
        if (head is None and not self.lines) or head == (self.seq, self.digest):
            return None
        where, seq = self.where or HEAD, head[0] if head else 0
        if head is None:
            return "audit.head is missing or unreadable", where
        if seq == self.seq:
            return "last line edited: its hash does not match audit.head", where
        if seq > self.seq:
            return f"{seq - self.seq} line(s) missing at the end (audit.head: seq {seq})", where
        return f"lines after seq {seq} are not in audit.head (a crash, or added by hand)", where


def check_fields(fields: dict[str, object]) -> Record:
    """The fields, checked: allowed names, small JSON values, a bounded size."""
    for name in fields:
        if name not in FIELDS:
            raise ValueError(f"audit field {name!r} is not allowed")
    clean = {name: _clean(name, value, 0) for name, value in fields.items()}
    if len(json.dumps(clean)) > _MAX_BYTES:
        raise ValueError("audit record too large")
    return clean


def _clean(name: str, value: object, depth: int) -> object:
    """``value`` as a small JSON value, or ValueError naming ``name`` (never the value)."""
    value = os.fsdecode(value) if isinstance(value, os.PathLike) else value
    if value is None or isinstance(value, bool | int) or _finite(value):
        return value
    if isinstance(value, str) and name in _PATH_FIELDS:
        return elide(value)
    if isinstance(value, str) and len(value) <= _MAX_STR:
        return value
    if depth < 2 and isinstance(value, list | tuple) and len(value) <= _MAX_ITEMS:
        return [_clean(name, item, depth + 1) for item in value]
    if depth < 2 and isinstance(value, dict) and len(value) <= _MAX_ITEMS:
        if not all(isinstance(k, str) and not _SECRETISH.search(k) for k in value):
            raise ValueError(f"audit field {name!r}: a key is not allowed")
        return {key: _clean(name, item, depth + 1) for key, item in value.items()}
    raise ValueError(f"audit field {name!r}: {type(value).__name__} is not a small JSON value")


def elide(text: str, limit: int = _MAX_STR) -> str:
    """``text`` if it has at most ``limit`` characters; else its start and end around a marker
    that says how many characters were left out, ``limit`` characters in all."""
    if len(text) <= limit:
        return text
    room = limit - len(_ELIDED.format(n=len(text)))
    head = room // 2
    return text[:head] + _ELIDED.format(n=len(text) - room) + text[len(text) - (room - head):]


def _finite(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def parse_line(raw: bytes) -> Record | None:
    """A well-formed record from one line, or None."""
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict) or not set(record) <= FIELDS | RESERVED:
        return None
    prev = record.get("prev")
    ok = record.get("v") == VERSION and type(record.get("seq")) is int
    ok = ok and record.get("event") in EVENTS and record_time(record) is not None
    return record if ok and isinstance(prev, str) and re.fullmatch("[0-9a-f]{64}", prev) else None


def record_time(record: Record) -> datetime | None:
    """The record's time (aware), or None for a missing or naive one."""
    try:
        when = datetime.fromisoformat(str(record.get("time")))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()
