"""Untrusted text (file names, paths, details read from files, error texts that quote them) made
safe to show: on a terminal, in a log line, in a desktop notification.

:func:`escape` is the one rule. Every character that could move the cursor, end a line, start an
escape sequence or reorder what a reader sees is shown as a Python-style escape: ``\\n``,
``\\x1b``, ``\\u202e``; a backslash is doubled, so the mapping is injective and
:func:`unescape` gives the exact string back. A byte of a file name that was not valid UTF-8
(``os.fsdecode``'s surrogateescape, U+DC80 to U+DCFF) is shown as the byte, ``\\xff``; the
control characters U+0080 to U+009F are ``\\u0080``…, so the two never meet.

Apply it where text leaves for a reader, never to the data: paths stay exact in JSON, the
vault, the journal and the audit log. :class:`SafeFormatter` does it for log records.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import TextIO

# bidirectional and other invisible format characters; all are also not str.isprintable(),
# listed so a change of Unicode data can never let one through
BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPE = re.compile(r"\\(\\|[nrt]|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|)")
_UNNAMED = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def escape(text: str) -> str:
    """``text`` as one visible line: printable characters as they are, everything else (C0 and
    C1 controls, DEL, line and paragraph separators, bidi and format characters, undecodable
    bytes) escaped. The result holds no character that is not printable."""
    if text.isprintable() and "\\" not in text and BIDI.isdisjoint(text):
        return text
    return "".join(_char(c) for c in text)


def _char(c: str) -> str:
    if c in _NAMED:
        return _NAMED[c]
    if c.isprintable() and c not in BIDI:
        return c
    code = ord(c)
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def unescape(shown: str) -> str:
    """The exact text :func:`escape` made ``shown`` from (``\\xNN`` above 7f: that byte, as
    surrogateescape decodes it). ValueError: ``shown`` is not something escape made."""
    return _ESCAPE.sub(_unescape_one, shown)


def _unescape_one(match: re.Match[str]) -> str:
    token = match[1]
    if not token:
        raise ValueError(f"a lone backslash at {match.start()}")
    if token in _UNNAMED:
        return _UNNAMED[token]
    code = int(token[1:], 16)
    return chr(0xDC00 + code if token[0] == "x" and code >= 0x80 else code)


def utc_timestamp(when: float) -> str:
    """ISO 8601 in UTC with milliseconds, as the audit log writes its times:
    ``2026-11-28T10:00:00.000Z``."""
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class SafeFormatter(logging.Formatter):
    """One record, one line: ``<UTC time> LEVEL logger: message``. The message with its
    arguments, and a traceback if there is one, go through :func:`escape`, so no file name can
    end the line early, forge the next one, or send escape sequences to a terminal or journald."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + record.exc_text
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        when = utc_timestamp(record.created)
        return f"{when} {record.levelname} {escape(record.name)}: {escape(text)}"


def log_to(stream: TextIO, level: int = logging.INFO) -> None:
    """Send this process's log records to ``stream`` (stderr: journald, syslog, ``daemon.log``)
    through :class:`SafeFormatter`; a no-op if logging is configured already."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter())
    logging.basicConfig(level=level, handlers=[handler])
