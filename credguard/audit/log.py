"""The hash-chained audit log, and its structured copy to the system log.

One compact JSON line per event in ``<state dir>/audit/audit.jsonl``, keys in a fixed order:
``{"v":1,"seq":N,"time":"<UTC, ms>Z","event":E,<fields, sorted>,"prev":H}``, H being the SHA-256
of the previous line's bytes without its newline (64 zeros for the first line ever); ``audit.head``
holds the last line's seq and hash, anchoring the last line too. An edited, deleted, inserted or
reordered line breaks the chain and :meth:`AuditLog.verify` names its ``file:line``. This is tamper
evidence, not protection: whoever can write the files can recompute the chain; the system-log
copy is the record outside their reach. A file that would pass ``max_bytes`` becomes
``audit.1.jsonl`` (older ones shift up, ``keep`` are kept); the chain runs on across files.

A crash mid-line leaves a last line without its newline; the next append repairs it first (a whole
record gets its newline, anything else is cut off and a ``recovered`` record gives its length and
SHA-256), and likewise records an ``audit.head`` a crash left behind. No secret values, ever:
fixed event and field names, small JSON values only, errors name the field, never the value.
Each record is also logged to ``credguard.audit.log`` at INFO as ``event seq=N key=value ...``; the
daemon's stderr goes to journald/syslog/the unified log, where a fleet collects it (DESIGN §8).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from credguard import paths
from credguard.audit.record import (
    EVENTS,
    HEAD,
    RESERVED,
    VERSION,
    ZERO,
    Chain,
    Event,
    Record,
    Verification,
    check_fields,
    digest,
    parse_line,
    record_time,
)
from credguard.fs import at, lock, safe
from credguard.fs.atomic import DIR_MODE, FILE_MODE, atomic_write, fsync_dir, private_dir

CURRENT, LOCK = "audit.jsonl", "audit.lock"
_ROTATED = re.compile(r"audit\.([1-9][0-9]{0,5})\.jsonl")
_CHUNK = 8192
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")  # what now() writes
log = logging.getLogger("credguard.audit.log")


class AuditLog:
    """The log in ``directory`` (default ``<state dir>/audit``, made 0700 on the first append;
    files 0600). ``audit.lock`` serializes appends and reads across threads and processes."""

    def __init__(
        self, directory: Path | None = None, *, max_bytes: int = 1 << 20, keep: int = 5
    ) -> None:
        if max_bytes < 1 or keep < 0:
            raise ValueError("max_bytes must be positive and keep not negative")
        self.directory = directory or paths.audit_dir()
        self.max_bytes, self.keep = max_bytes, keep

    def append(self, event: Event, **fields: object) -> Record:
        """Write one record durably (write, flush, fsync, then ``audit.head``) and return it.
        ValueError: ``event`` is no :data:`Event` (checked at run time too), an unknown field, or
        a value that is not a small JSON value.
        StateError: another process held the lock for 30 s."""
        return self.append_many([(event, fields)])[-1]

    def append_many(self, events: Sequence[tuple[Event, Mapping[str, object]]],
                    times: Sequence[str] | None = None) -> list[Record]:
        """Write several records, in order, as one group commit: every line written, then one
        fsync and one ``audit.head`` move (a rotation on the way fsyncs the file it retires
        first). The daemon's worker writes a batch's records so, each with the ``times`` it
        happened at (:func:`now` then; by default the time of writing). Every record is checked
        before anything is written: ValueError for a bad one, and nothing is written. Returns
        the records written (a ``recovered`` record first when a crash cut the log short)."""
        if not events:
            return []
        for event, _ in events:
            if event not in EVENTS:
                raise ValueError(f"unknown audit event {event!r}")
        if times is not None and (len(times) != len(events)
                                  or not all(isinstance(t, str) and _TIME.fullmatch(t)
                                             for t in times)):
            raise ValueError("one time per record, each as now() writes it")
        todo: list[tuple[str, Record, str | None]] = [
            (e, check_fields(dict(f)), None if times is None else times[i])
            for i, (e, f) in enumerate(events)]
        private_dir(self.directory)
        if hasattr(os, "fchmod") and self.directory.stat().st_mode & 0o077:
            self.directory.chmod(DIR_MODE)
        with lock.exclusive(self.directory / LOCK, what="the audit log"):
            prev, seq, repair = self._prepare()
            todo[:0] = [("recovered", repair, None)] if repair else []
            written = self._write(todo, prev, seq + 1)
        for record in written:
            log.info("%s", _syslog_line(record))
        return written

    def entries(self, since: datetime | None = None) -> Iterator[tuple[str, Record]]:
        """(line as stored, record) for each valid record at or after ``since`` (naive means
        local time), oldest first across files; bad lines are skipped (``verify`` names them)."""
        cutoff = since.astimezone() if since is not None else None
        for _, data in self._snapshot()[0]:
            for raw in data.split(b"\n")[:-1]:  # what follows the last newline is no whole line
                record = parse_line(raw)
                when = record_time(record) if record is not None else None
                if record is not None and when is not None and (cutoff is None or when >= cutoff):
                    yield raw.decode("utf-8", "replace"), record

    def records(self, since: datetime | None = None) -> Iterator[Record]:
        """The valid records at or after ``since``, oldest first (see :meth:`entries`)."""
        return (record for _, record in self.entries(since))

    def verify(self) -> Verification:
        """Check each kept line's seq and prev, oldest first, then the last line against
        ``audit.head``, and report the first problem."""
        files, head = self._snapshot()
        chain = Chain(may_drop=self.keep == 0 or any(n != CURRENT for n, _ in files))
        found = next((p for p in chain.walk(files) if p), None) or chain.check_head(head)
        if found:
            return Verification(False, chain.lines, *found)
        return Verification(True, chain.lines, dropped=chain.dropped)

    def _rotated(self) -> list[tuple[int, Path]]:
        """Rotated files, newest (``audit.1.jsonl``) first."""
        names = os.listdir(self.directory) if self.directory.is_dir() else []
        return sorted(
            (int(m[1]), self.directory / m[0]) for m in map(_ROTATED.fullmatch, names) if m
        )

    def _snapshot(self) -> tuple[list[tuple[str, bytes]], tuple[int, str] | None]:
        """Every file's name and bytes, oldest first, and the head, read under the lock."""
        if not self.directory.is_dir():
            return [], None
        with lock.exclusive(self.directory / LOCK, what="the audit log"):
            found = [p for _, p in reversed(self._rotated())] + [self.directory / CURRENT]
            files = [(p.name, p.read_bytes()) for p in found if p.exists()]
            return files, _read_head(self.directory / HEAD)

    def _prepare(self) -> tuple[str, int, Record | None]:
        """Hash and seq of the last whole line, read from the files' tails after repairing a
        line a crash cut short; plus the ``recovered`` fields if bytes were cut off."""
        current = self.directory / CURRENT
        last, partial = _tail(current)
        repair = _repair(current, partial) if partial else None
        if partial and repair is None:
            last = partial  # a whole record that only lacked its newline
        rotated = self._rotated()
        if last is None and rotated:
            last = _tail(rotated[0][1])[0]
        if last is None:
            return ZERO, 0, repair
        head, seq = _read_head(self.directory / HEAD), (parse_line(last) or {}).get("seq")
        if not isinstance(seq, int):  # a damaged last line (verify reports it): keep counting
            seq = head[0] if head else 0
        if repair is None and head != (seq, digest(last)):  # crash before it moved, or tampering
            said = f"audit.head said seq {head[0]}" if head else "audit.head was missing"
            repair = {"reason": "audit.head did not match the last line", "detail": said}
        return digest(last), seq, repair

    def _write(self, todo: list[tuple[str, Record, str | None]], prev: str,
               seq: int) -> list[Record]:
        """Append one line per record, numbered from ``seq``, rotating first whenever the next
        line would not fit; then one fsync, then move ``audit.head`` to the last line."""
        current = self.directory / CURRENT
        size = current.stat().st_size if current.exists() else 0
        written: list[Record] = []
        f = _open(current, "ab")
        try:
            for number, (event, fields, when) in enumerate(todo, seq):
                start: Record = {"v": VERSION, "seq": number, "time": when or now(),
                                 "event": event}
                record = start | dict(sorted(fields.items())) | {"prev": prev}
                line = json.dumps(record, separators=(",", ":")).encode("ascii")  # ensure_ascii
                if size and size + len(line) + 1 > self.max_bytes:
                    _sync(f)  # what the rotation retires is durable first
                    f.close()
                    self._rotate()
                    f, size = _open(current, "ab"), 0
                f.write(line + b"\n")
                size += len(line) + 1
                prev = digest(line)
                written.append(record)
            _sync(f)
        finally:
            f.close()
        atomic_write(self.directory / HEAD,
                     json.dumps({"seq": seq + len(written) - 1, "hash": prev}).encode())
        return written

    def _rotate(self) -> None:
        """audit.jsonl -> audit.1.jsonl -> audit.2.jsonl ...; numbers ``keep`` and up are gone."""
        for number, path in reversed(self._rotated()):
            if number >= self.keep:
                path.unlink()
            else:
                os.replace(path, self.directory / f"audit.{number + 1}.jsonl")
        current = self.directory / CURRENT
        if self.keep:
            os.replace(current, self.directory / "audit.1.jsonl")
        else:
            current.unlink()
        fsync_dir(self.directory)


def _open(path: Path, mode: str) -> IO[bytes]:
    """Open an audit file without following a symlink; created 0600, or made 0600."""

    def opener(name: str, flags: int) -> int:
        fd = os.open(name, flags | safe.BASE, FILE_MODE)
        if os.fstat(fd).st_mode & 0o077:
            at.restrict(fd, FILE_MODE)
        return fd

    return open(path, mode, opener=opener)


def _sync(f: IO[bytes]) -> None:
    f.flush()
    at.sync(f.fileno())


def _tail(path: Path) -> tuple[bytes | None, bytes]:
    """The last whole line (None if none) and the bytes after it, read backwards from the end
    in growing chunks: the file is never read whole."""
    if not path.exists():
        return None, b""
    with _open(path, "rb") as f:
        pos, buf = f.seek(0, os.SEEK_END), b""
        while True:
            step = min(max(_CHUNK, len(buf)), pos)
            pos = f.seek(pos - step)
            buf = f.read(step) + buf
            end = buf.rfind(b"\n")
            start = buf.rfind(b"\n", 0, max(end, 0))
            if end >= 0 and (start >= 0 or pos == 0):
                return buf[start + 1 : end], buf[end + 1 :]
            if pos == 0:
                return None, buf


def _repair(path: Path, partial: bytes) -> Record | None:
    """Give a whole record its missing newline (None), or cut the partial line off and return
    the fields of the ``recovered`` record that says so."""
    whole = parse_line(partial) is not None
    with _open(path, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        if whole:
            f.write(b"\n")
        else:
            f.truncate(size - len(partial))
        f.flush()
        at.sync(f.fileno())
    cut = f"audit log: cut {len(partial)} bytes, sha256 {digest(partial)}"
    return (
        None if whole else {"reason": "incomplete last line", "count": len(partial), "detail": cut}
    )


def _read_head(path: Path) -> tuple[int, str] | None:
    """(seq, hash) from ``audit.head``, or None if it is missing or unreadable."""
    try:
        doc = json.loads(path.read_bytes())
        return int(doc["seq"]), str(doc["hash"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def now() -> str:
    """A record's time: UTC, milliseconds. Formatted from the naive UTC time: an aware one's
    ``isoformat`` asks its tzinfo for ``utcoffset`` by a name made afresh each call, and
    CPython 3.11's type attribute cache keeps such a name alive (up to 4,096 of them, one per
    slot), so a burst of records would leave small strings scattered over the heap."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _syslog_line(record: Record) -> str:
    """``event seq=N key=value ...`` on one line; non-plain values JSON-quoted (ASCII)."""
    parts = [f"{record['event']} seq={record['seq']}"]
    for key, value in record.items():
        if key not in RESERVED:
            plain = isinstance(value, str) and re.fullmatch(r"[\w./:@+,-]+", value, re.ASCII)
            parts.append(f"{key}={value if plain else json.dumps(value)}")
    return " ".join(parts)
