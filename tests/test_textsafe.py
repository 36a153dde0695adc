"""The one rule for showing untrusted text (issue 14): every control, bidi and format character
and every undecodable byte is escaped, visibly and reversibly, and log records stay one line."""

from __future__ import annotations

import logging
import os
import re
import sys
from datetime import UTC, datetime

import pytest
from helpers.hostile import FORGING, NAMES, SHOWN, UNDECODABLE, unsafe
from hypothesis import given, settings
from hypothesis import strategies as st

from credguard.textsafe import BIDI, SafeFormatter, escape, unescape, utc_timestamp

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
# any code point at all (lone surrogates too), and file names as os.fsdecode reads them
ANY_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=())),
    st.binary().map(os.fsdecode),
)


@pytest.mark.parametrize(("raw", "shown"), [
    ("\n", r"\n"), ("\r", r"\r"), ("\t", r"\t"), ("\\", "\\\\"),
    ("\x00", r"\x00"), ("\x07", r"\x07"), ("\x1b", r"\x1b"), ("\x7f", r"\x7f"),
    ("\x85", r"\u0085"), ("\x9b", r"\u009b"),  # C1: NEL and the one-byte CSI
    ("\u2028", r"\u2028"), ("\u2029", r"\u2029"), ("\ufeff", r"\ufeff"), ("\u200b", r"\u200b"),
    (os.fsdecode(b"\xff"), r"\xff"), (os.fsdecode(b"\x80"), r"\x80"),  # undecodable bytes
    ("\ud800", r"\ud800"), ("\U000e0041", r"\U000e0041"),  # a lone surrogate, a tag character
    ("a b-ü_中.publishsettings 😀", "a b-ü_中.publishsettings 😀"),
])  # fmt: skip
def test_each_character_is_shown_as_it_should(raw: str, shown: str) -> None:
    assert escape(raw) == shown
    assert unescape(shown) == raw


@pytest.mark.parametrize("char", sorted(BIDI))
def test_every_bidi_and_direction_mark_is_escaped(char: str) -> None:
    assert escape(f"a{char}b") == f"a\\u{ord(char):04x}b"


def test_the_issues_names() -> None:
    assert escape(FORGING) == (r"evil\nINFO credguard.audit: protected seq=99 path=FORGED"
                               r"\x1b]0;pwned\x07\x1b[31m.publishsettings")  # fmt: skip
    assert escape(UNDECODABLE) == r"bad\xff\xfe\x1b[2J.publishsettings"
    assert [unescape(s) for s in SHOWN] == list(NAMES)


def test_a_c1_control_and_an_undecodable_byte_stay_apart() -> None:
    byte, control = os.fsdecode(b"\x9b"), "\x9b"
    assert escape(byte) == r"\x9b" and escape(control) == r"\u009b"


def test_unescape_refuses_what_escape_never_makes() -> None:
    for bad in ("a\\", "\\q", "\\x1", "\\u12"):
        with pytest.raises(ValueError):
            unescape(bad)


@settings(max_examples=500, deadline=None)
@given(ANY_TEXT)
def test_what_escape_makes_is_safe_and_one_line(text: str) -> None:
    shown = escape(text)
    assert not unsafe(shown)
    assert shown.isprintable() and len(shown.splitlines()) <= 1


@settings(max_examples=500, deadline=None)
@given(ANY_TEXT)
def test_escape_is_reversible(text: str) -> None:
    assert unescape(escape(text)) == text


@settings(max_examples=500, deadline=None)
@given(ANY_TEXT, ANY_TEXT)
def test_distinct_texts_stay_distinct(a: str, b: str) -> None:
    """Injective, and character by character: no name can pose as another, or as part of one."""
    assert (escape(a) == escape(b)) == (a == b)
    assert escape(a + b) == escape(a) + escape(b)


# -- log records -------------------------------------------------------------------------------


def record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"cannot read {FORGING}")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("credguard.daemon", logging.INFO, __file__, 1, msg, args, exc_info)


def test_a_record_is_one_timestamped_line_with_its_arguments_escaped() -> None:
    entry = record("%s %s %s", "protected", "publish-settings", FORGING)
    line = SafeFormatter().format(entry)
    assert re.fullmatch(STAMP + r" INFO credguard\.daemon: protected publish-settings .*", line)
    assert line.endswith(escape(FORGING)) and not unsafe(line)
    stamp = datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(stamp.timestamp() - entry.created) < 0.001
    assert utc_timestamp(0) == "1970-01-01T00:00:00.000Z"


def test_a_traceback_stays_in_its_record() -> None:
    line = SafeFormatter().format(record("examining %s failed", UNDECODABLE, exc=True))
    assert not unsafe(line) and re.match(STAMP + " INFO ", line)
    assert r"\nTraceback (most recent call last):\n" in line
    assert line.endswith("ValueError: cannot read " + escape(FORGING))
