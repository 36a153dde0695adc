"""Which text encoding a tool wrote a file in, told by its first bytes, not by what it claims.

Windows tools write XML and JSON in UTF-16 (Windows PowerShell 5.1's ``Out-File``, with or
without a byte-order mark) or with a UTF-8 BOM, and an XML declaration copied from elsewhere may
claim ``encoding="utf-8"`` for UTF-16 text. The byte-order mark, else the NUL pattern ASCII
text has in UTF-16, decides; a declaration that contradicts them is ignored.
"""

from __future__ import annotations

UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF32_LE_BOM = b"\xff\xfe\x00\x00"


def utf16(head: bytes) -> str | None:
    """``utf-16`` when ``head`` opens with a UTF-16 byte-order mark; ``utf-16-le``/``-be`` when,
    without one, its first two characters are ASCII written in UTF-16; else ``None``."""
    if head.startswith(UTF16_BOMS) and not head.startswith(_UTF32_LE_BOM):
        return "utf-16"
    if len(head) < 4:
        return None
    a, b, c, d = head[:4]
    if a and not b and c and not d:
        return "utf-16-le"
    if not a and b and not c and d:
        return "utf-16-be"
    return None


def text_codec(head: bytes) -> str | None:
    """The codec to decode a file with when its first bytes decide it (a BOM, or UTF-16's NUL
    pattern), else ``None``: then the bytes speak for themselves (an XML declaration, UTF-8)."""
    if head.startswith(UTF8_BOM):
        return "utf-8-sig"
    return utf16(head)


def head_text(data: bytes, size: int = 256) -> str:
    """The first characters of ``data`` decoded as :func:`text_codec` says (UTF-8 otherwise),
    undecodable bytes dropped: for cheap looks, never for parsing."""
    head = data[: size * 2]
    return head.decode(text_codec(head) or "utf-8", errors="ignore")[:size]
