"""Helpers the XML families share: when to parse, connection strings, and URLs made safe to show.

Parsing itself goes through :mod:`credguard.detect.xmlsafe` (defusedxml, no DTDs or entities).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePath
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

from credguard.detect import encoding, xmlsafe
from credguard.detect.placeholder import is_secret

# Connection-string keys whose value is a secret (SQL/MySQL passwords, storage and bus keys).
_SECRET_KEYS = frozenset({"password", "pwd", "accountkey", "sharedaccesskey"})


def looks_like_xml(data: bytes) -> bool:
    """Whether the bytes start like an XML document (after a BOM and whitespace)."""
    return encoding.head_text(data).lstrip("\ufeff \t\r\n").startswith("<")


def load(data: bytes, path: PurePath, suffixes: tuple[str, ...]) -> Element | None:
    """The document's root element, or ``None`` when there is nothing to judge.

    A file whose name ends in one of ``suffixes`` promised XML, so anything unparsable raises
    :class:`~credguard.detect.base.Malformed`; any other file is parsed only when it starts like
    XML. Hostile XML always raises :class:`~credguard.detect.base.Hostile`.
    """
    if not data.strip():
        return None
    named = path.name.lower().endswith(suffixes)
    if not named and not looks_like_xml(data):
        return None
    return xmlsafe.parse(data)


def children(parent: Element, name: str) -> Iterator[Element]:
    """Direct children with local name ``name`` (namespace ignored)."""
    return (child for child in parent if xmlsafe.local(child.tag) == name)


def value(element: Element | None) -> str:
    """An element's stripped text; empty for a missing element."""
    return (element.text or "").strip() if element is not None else ""


def has_secret(connection_string: str) -> bool:
    """Whether a ``key=value;...`` connection string holds a password or key that is no
    placeholder."""
    for part in connection_string.split(";"):
        key, sep, val = part.partition("=")
        if sep and key.strip().lower() in _SECRET_KEYS and is_secret(val):
            return True
    return False


def host(url: str | None) -> str | None:
    """The host name of a URL or ``host:port`` string, without any user name or password."""
    parts = _split(url)
    return parts[0] if parts else None


def clean_url(url: str | None) -> str | None:
    """A URL reduced to scheme, host, port and path: user info, query and fragment dropped."""
    parts = _split(url)
    if parts is None:
        return None
    name, port, scheme, path = parts
    if ":" in name:
        name = f"[{name}]"
    netloc = f"{name}:{port}" if port else name
    return f"{scheme}://{netloc}{path}" if scheme else f"{netloc}{path}"


# urlsplit's cache (3.11+, 128 entries) would keep URLs read from credential files in memory
# after the files were vaulted and deleted: the uncached function is used.
_urlsplit = getattr(urlsplit, "__wrapped__", urlsplit)


def _split(url: str | None) -> tuple[str, str, str, str] | None:
    raw = (url or "").strip()
    if not raw:
        return None
    try:
        parts = _urlsplit(raw if "://" in raw else "//" + raw)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname, str(port) if port else "", parts.scheme, parts.path
