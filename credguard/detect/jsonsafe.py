"""JSON loading for detectors: BOM-tolerant, nesting-bounded, and never quoting the content.

Also the small typed accessors the JSON families share, so each family reads untrusted
documents the same way: anything of an unexpected type reads as empty, never as an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from credguard.detect.base import Malformed
from credguard.detect.placeholder import is_secret

MAX_DEPTH = 64
# An object, or an array whose first item starts like a JSON value: an INI file's "[section]"
# is no JSON array.
_OPENING = re.compile(r'\{|\[\s*(?:[\[{"\]\-0-9]|(?:true|false|null)\b)|\[\s*$')

JsonDict = dict[str, Any]


def looks_like_json(data: bytes) -> bool:
    """Whether the bytes start like a JSON object or array (after a BOM and whitespace).

    Families use it to leave content that is plainly something else (XML, prose, an encrypted
    blob) alone when the file name promised nothing.
    """
    head = data[:256]
    # The encoding JSON itself would detect (UTF-8/16/32, with or without BOM); a character cut
    # at the end of the head is dropped, not an error.
    text = head.decode(json.detect_encoding(head), errors="ignore")
    return _OPENING.match(text.lstrip("\ufeff \t\r\n")) is not None


def load(data: bytes) -> object:
    """Parse JSON bytes (UTF-8 with or without BOM, UTF-16, UTF-32).

    Raises :class:`Malformed` for anything that is not JSON, and for documents nested more than
    :data:`MAX_DEPTH` levels deep. The message never quotes the content.
    """
    try:
        doc = json.loads(data)
    except RecursionError:
        raise Malformed(f"JSON nested more than {MAX_DEPTH} levels deep") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        raise Malformed("not valid JSON") from None
    if _too_deep(doc):
        raise Malformed(f"JSON nested more than {MAX_DEPTH} levels deep")
    return doc


def _too_deep(doc: object) -> bool:
    """Iterative depth check: no recursion, whatever the document."""
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        children: Any
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def obj(value: object) -> JsonDict:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def arr(value: object) -> list[Any]:
    """``value`` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def objects(value: object) -> list[JsonDict]:
    """The JSON objects among the values of an object or the items of an array."""
    items = value.values() if isinstance(value, dict) else arr(value)
    return [item for item in items if isinstance(item, dict)]


def text(value: object) -> str:
    """A non-secret identifier as a stripped string; empty when it is not a string."""
    return value.strip() if isinstance(value, str) else ""


def filled(value: object) -> bool:
    """Whether a secret field holds something: a string that is no placeholder (``""``,
    ``"REDACTED"``, ``"<secret>"``...) or a non-empty container."""
    if isinstance(value, str):
        return is_secret(value)
    return isinstance(value, dict | list) and bool(value)


def unique(values: Iterable[object]) -> list[str]:
    """Sorted unique non-empty identifiers from raw JSON values (non-strings are skipped)."""
    found = {text(value) for value in values}
    found.discard("")
    return sorted(found)
