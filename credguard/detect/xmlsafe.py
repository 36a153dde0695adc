"""XML parsing for detectors: defusedxml only, with DTDs, entities and external references
forbidden, so billion-laughs and XXE payloads are refused before anything is expanded or fetched.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as safe_et

from credguard.detect.base import Hostile, Malformed


def parse(data: bytes) -> Element:
    """Parse a whole document; :class:`Hostile` for DTD/entity tricks, :class:`Malformed` else."""
    try:
        return safe_et.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
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
