"""Three-way merge of the Azure CLI's credential-cache JSON files.

Two ``credguard az`` runs can start from the same sealed copy (``base``); :func:`merge` folds one
run's result (``ours``) into what is sealed now (``theirs``) so that neither run's token updates
are lost. Conflict descriptions name a section and a count only: MSAL entry keys carry account
ids and entry values carry secrets, so neither ever appears in a message.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from typing import Final

MSAL_SECTIONS: Final = ("AccessToken", "RefreshToken", "IdToken", "Account", "AppMetadata")
_BOM: Final = b"\xef\xbb\xbf"
_MISSING: Final = object()  # "no such entry", distinct from a JSON null

_BOTH_CHANGED: Final = "changed on both sides; kept ours"
_OURS_DELETED: Final = "deleted by ours but changed by theirs; kept theirs"
_THEIRS_DELETED: Final = "changed by ours but deleted by theirs; kept ours"


class MergeError(ValueError):
    """A cache file is not valid JSON or not the expected shape; the message never quotes it."""


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> object:
    raise _NonFinite(name)


def loads(data: bytes, what: str) -> object:
    """Parse strict JSON (UTF-8, an optional BOM tolerated) or raise :class:`MergeError`."""
    body = data[len(_BOM) :] if data.startswith(_BOM) else data
    # `from None` throughout: JSONDecodeError.doc and UnicodeDecodeError.object hold the content.
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MergeError(f"{what} is not valid JSON: invalid UTF-8 at byte {exc.start}") from None
    try:
        # Duplicate object keys are accepted and the last one wins: that is what json.loads, and
        # so msal and az themselves, do when they read the same file.
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise MergeError(f"{what} is not valid JSON: {exc.msg} at {where}") from None
    except _NonFinite:
        raise MergeError(f"{what} is not valid JSON: NaN or Infinity is not a number") from None
    except (ValueError, RecursionError):
        raise MergeError(f"{what} is not valid JSON: a number or nesting is too large") from None


def is_msal_cache(doc: object) -> bool:
    """Whether ``doc`` is shaped like an MSAL token cache (``{}`` is an empty one)."""
    if not isinstance(doc, dict):
        return False
    known = [doc[name] for name in MSAL_SECTIONS if name in doc]
    return (bool(known) or not doc) and all(isinstance(section, dict) for section in known)


def _sp_identity(entry: object) -> tuple[object, object] | None:
    if isinstance(entry, dict) and isinstance(entry.get("client_id"), str):
        return entry["client_id"], entry.get("tenant")
    return None


def _sp_entries(doc: object) -> dict[Hashable, object] | None:
    """A ``service_principal_entries.json`` list keyed by (client_id, tenant), or None."""
    if not isinstance(doc, list):
        return None
    keyed: dict[Hashable, object] = {}
    for entry in doc:
        identity = _sp_identity(entry)
        if identity is None or not isinstance(identity[1], str | None) or identity in keyed:
            return None  # not that file, or ambiguous: merge it as a whole instead
        keyed[identity] = entry
    return keyed


def _same(a: object, b: object) -> bool:
    """JSON equality: unlike ==, keeps 1, 1.0 and true apart."""
    if a is _MISSING or b is _MISSING:
        return a is b
    return a is b or json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _pick(base: object, ours: object, theirs: object) -> tuple[object, str | None]:
    """Three-way merge of one value (``_MISSING`` = absent): the result and a conflict kind."""
    if _same(ours, base):
        return theirs, None
    if _same(theirs, base) or _same(ours, theirs):
        return ours, None
    if ours is _MISSING:
        return theirs, _OURS_DELETED
    return ours, _THEIRS_DELETED if theirs is _MISSING else _BOTH_CHANGED


def _union(*maps: Iterable[Hashable]) -> list[Hashable]:
    return list(dict.fromkeys(key for keys in maps for key in keys))


def _merge_keyed(
    base: Mapping[Hashable, object], ours: Mapping[Hashable, object],
    theirs: Mapping[Hashable, object],
) -> tuple[dict[Hashable, object], Counter[str]]:
    """Merge entry by entry; the order is theirs', then ours' new entries."""
    merged: dict[Hashable, object] = {}
    kinds: Counter[str] = Counter()
    for key in _union(theirs, ours, base):
        value, kind = _pick(*(side.get(key, _MISSING) for side in (base, ours, theirs)))
        if kind:
            kinds[kind] += 1
        if value is not _MISSING:
            merged[key] = value
    return merged, kinds


def _describe(label: str, kinds: Counter[str]) -> list[str]:
    return [
        f"{label} entry {kind}" if count == 1 else f"{count} {label} entries {kind}"
        for kind, count in kinds.items()
    ]


def _merge_msal(
    base: dict[str, object], ours: dict[str, object], theirs: dict[str, object]
) -> tuple[object, list[str]]:
    merged: dict[str, object] = {}
    conflicts: list[str] = []
    for name in _union(theirs, ours, base):
        assert isinstance(name, str)
        label = name if name in MSAL_SECTIONS else "unrecognised section"
        sides = [side.get(name, _MISSING) for side in (base, ours, theirs)]
        if not all(value is _MISSING or isinstance(value, dict) for value in sides):
            value, kind = _pick(*sides)
            conflicts += [f"{label} value {kind}"] if kind else []
            if value is not _MISSING:
                merged[name] = value
            continue
        b, o, t = (value if isinstance(value, dict) else {} for value in sides)
        section, kinds = _merge_keyed(b, o, t)
        conflicts += _describe(label, kinds)
        if section or sides[1] is not _MISSING or sides[2] is not _MISSING:
            merged[name] = section
    return merged, conflicts


def _merge_shaped(base: object, ours: object, theirs: object) -> tuple[object, list[str]]:
    if all(is_msal_cache(doc) for doc in (base, ours, theirs)):
        assert isinstance(base, dict) and isinstance(ours, dict) and isinstance(theirs, dict)
        return _merge_msal(base, ours, theirs)
    keyed = [_sp_entries(doc) for doc in (base, ours, theirs)]
    if keyed[0] is not None and keyed[1] is not None and keyed[2] is not None:
        merged, kinds = _merge_keyed(keyed[0], keyed[1], keyed[2])
        return list(merged.values()), _describe("service principal", kinds)
    value, kind = _pick(base, ours, theirs)
    return value, [f"file {kind}"] if kind else []


def merge(base: object | None, ours: object, theirs: object) -> tuple[object, list[str]]:
    """Merge this run's ``ours`` into the sealed ``theirs``; ``base`` is what both started from
    (None: the file did not exist). Returns a new document and conflict descriptions; the inputs
    are never changed."""
    if base is None:
        both_msal = is_msal_cache(ours) and is_msal_cache(theirs)
        both_sp = _sp_entries(ours) is not None and _sp_entries(theirs) is not None
        base = {} if both_msal else [] if both_sp else _MISSING
    if _same(ours, base):
        return copy.deepcopy(theirs), []
    if _same(theirs, base):
        return copy.deepcopy(ours), []
    merged, conflicts = _merge_shaped(base, ours, theirs)
    return copy.deepcopy(merged), conflicts


def _indent_of(like: bytes) -> str | None:
    if b"\n" not in like:
        return None
    found = re.search(rb"\n([ \t]+)\S", like)
    return found.group(1).decode("ascii") if found else " " * 4


def dumps(doc: object, like: bytes | None = None) -> bytes:
    """Serialize ``doc``: MSAL caches as msal's ``serialize()`` does (``json.dumps(cache,
    indent=4)``), anything else on one line; ``like`` (the file being replaced) decides the
    indentation, a UTF-8 BOM, CRLF line ends and a final newline instead."""
    if like is None:
        return json.dumps(doc, indent=4 if is_msal_cache(doc) else None).encode("utf-8")
    body = like[len(_BOM) :] if like.startswith(_BOM) else like
    out = json.dumps(doc, indent=_indent_of(body)).encode("utf-8")
    if body.rstrip(b" \t").endswith(b"\n"):
        out += b"\n"
    if b"\r\n" in body:
        out = out.replace(b"\n", b"\r\n")  # JSON strings never hold a raw newline
    return _BOM + out if like.startswith(_BOM) else out
