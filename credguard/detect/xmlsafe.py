"""XML parsing for detectors: defusedxml only, with DTDs, entities and external references
forbidden, so billion-laughs and XXE payloads are refused before anything is expanded or fetched.

A document whose first bytes decide its encoding (a byte-order mark, or UTF-16's NUL pattern) is
decoded by them, whatever its XML declaration claims; any other is left to its declaration.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as safe_et

from credguard.detect import encoding
from credguard.detect.base import Hostile, Malformed


def parse(data: bytes) -> Element:
    """Parse a whole document; :class:`Hostile` for DTD/entity tricks, :class:`Malformed` else."""
    try:
        codec = encoding.text_codec(data[:4])
        # text, not bytes: the parser then ignores the declaration's encoding
        doc: bytes | str = data.decode(codec) if codec else data
        return safe_et.fromstring(doc, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise Hostile(f"refused hostile XML ({type(exc).__name__})") from None
    except (ParseError, ValueError, UnicodeError) as exc:
        # ParseError's text carries a line/column but no content; keep only its class name
        # plus position so no secret fragment can leak through the message.
        pos = getattr(exc, "position", None)
        where = f" at line {pos[0]}, column {pos[1]}" if pos else ""
        raise Malformed(f"not well-formed XML{where}") from None


def local(tag: str) -> str:
    """An element's name without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]
