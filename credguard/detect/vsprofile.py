"""Visual Studio publish profiles (kind ``vs-publish-profile-secret``).

MSBuild ``<Project>`` files (with or without the MSBuild namespace): ``*.pubxml.user`` keeps the
deployment password as a DPAPI blob in ``EncryptedPassword`` and may hold plaintext
``DestinationConnectionStrings``; a ``*.pubxml`` sometimes holds a plaintext ``Password``. A
renamed file found by content must also show a publish marker, so an ordinary MSBuild project
with a ``Password`` property is not mistaken for one. A placeholder (``$(DeployPassword)``,
``REDACTED``, ``****``) is no password.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from xml.etree.ElementTree import Element

from credguard.detect import kinds, xmldoc, xmlsafe
from credguard.detect.base import Details, Detected
from credguard.detect.placeholder import is_secret

_MARKERS = frozenset(
    {"WebPublishMethod", "MSDeployServiceURL", "PublishProvider", "EncryptedPassword"}
)
_SUBSCRIPTION = re.compile(r"/subscriptions/([^/\s]+)", re.IGNORECASE)
_SITE = re.compile(r"/sites/([^/\s]+)", re.IGNORECASE)


def file_type(path: PurePath) -> str:
    """``pubxml.user``, ``pubxml`` or ``unknown`` (a file found by its content)."""
    name = path.name.lower()
    if name.endswith(".pubxml.user"):
        return "pubxml.user"
    return "pubxml" if name.endswith(".pubxml") else "unknown"


def detect(data: bytes, path: PurePath) -> Detected | None:
    """A finding for a password (encrypted or plain) or a connection string with a password."""
    root = xmldoc.load(data, path, (".pubxml", ".pubxml.user"))
    if root is None or xmlsafe.local(root.tag) != "Project":
        return None
    kind = file_type(path)
    props = properties(root)
    if kind == "unknown" and not _MARKERS & props.keys():
        return None
    connections = sorted(set(_secret_items(root)) | {k for k, v in props.items() if _conn(v)})
    encrypted = is_secret(props.get("EncryptedPassword"))
    plaintext = is_secret(props.get("Password"))
    if not (encrypted or plaintext or connections):
        return None
    resource = props.get("ResourceId", "")
    details: Details = {
        "file_type": kind,
        "publish_method": props.get("WebPublishMethod"),
        "service_url": xmldoc.clean_url(props.get("MSDeployServiceURL")),
        "site_name": props.get("DeployIisAppPath") or _first(_SITE, resource),
        "subscription_id": _first(_SUBSCRIPTION, resource),
        "has_encrypted_password": encrypted,
        "has_plaintext_password": plaintext,
        "connection_string_names": connections,
    }
    return Detected(kinds.VS_PUBLISH_SECRET, details)


def properties(root: Element) -> dict[str, str]:
    """Non-empty properties of every ``PropertyGroup``; the first value of a name wins."""
    found: dict[str, str] = {}
    for group in xmldoc.children(root, "PropertyGroup"):
        for prop in group:
            name, text = xmlsafe.local(prop.tag), xmldoc.value(prop)
            if text and name not in found:
                found[name] = text
    return found


def _secret_items(root: Element) -> list[str]:
    """Names (``Include``) of items whose metadata is a connection string with a password.

    Covers ``DestinationConnectionStrings`` (``Value``) and ``MSDeployParameterValue``
    (``ParameterValue``), as child elements or attributes.
    """
    names = []
    for group in xmldoc.children(root, "ItemGroup"):
        for item in group:
            metadata = [xmldoc.value(child) for child in item]
            metadata += [v for k, v in item.attrib.items() if k != "Include"]
            if any(_conn(v) for v in metadata):
                names.append((item.get("Include") or "").strip() or xmlsafe.local(item.tag))
    return names


def _conn(text: str) -> bool:
    return "=" in text and xmldoc.has_secret(text)


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group(1) if match else None
