"""File names that attack whoever reads credguard's output (issue 14, "log forging"), and the
check that a text a reader sees holds none of their control, escape or bidi characters."""

from __future__ import annotations

import os
import re
import unicodedata

from credguard.textsafe import BIDI, escape

# a newline that starts a forged audit line, an OSC title sequence, a BEL, a CSI colour
FORGING = ("evil\nINFO credguard.audit: protected seq=99 path=FORGED"
           "\x1b]0;pwned\x07\x1b[31m.publishsettings")  # fmt: skip
UNDECODABLE = os.fsdecode(b"bad\xff\xfe\x1b[2J.publishsettings")  # not UTF-8, and a CSI
REVERSED = "invoice\u202egpj.publishsettings"  # shows as "invoice" + reversed text
NAMES = (FORGING, UNDECODABLE, REVERSED)
SHOWN = tuple(escape(name) for name in NAMES)
FORGED_LINE = re.compile(r"^\s*INFO credguard\.audit", re.MULTILINE)


def unsafe(text: str, multiline: bool = False) -> list[str]:
    """The characters of ``text`` a terminal, journald or a notification would act on or hide:
    controls (newlines too, unless ``multiline``), bidi and format characters, and undecodable
    bytes. Empty: the text is safe to show."""
    allowed = {"\n"} if multiline else set()
    return [
        c for c in text
        if c not in allowed
        and (c in BIDI or unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp"))
    ]  # fmt: skip
