"""Azure Developer CLI caches in ``~/.azd/auth`` (kind ``azd-credential-cache``).

- ``auth/**/cache*.json``: MSAL caches (one per partition key; older layouts kept an object
  mapping keys to caches); a finding when a refresh or access token has a secret.
- ``auth/cred<tenant>.<client>.json``: a service principal's persisted secret:
  ``clientSecret``, ``clientCertificate`` (base64) or ``federatedToken``. A ``federatedAuth``
  entry only names a token provider (the token is fetched when needed): no secret, no finding.

A file under another name is judged only when it has the credential file's exact shape and its
name still carries azd's GUID tenant and client (``cred<tenant>.<client>.json``).
"""

from __future__ import annotations

import re
from pathlib import PurePath

from credguard.detect import azure, jsonsafe, kinds, msal
from credguard.detect.base import Details, Detected
from credguard.detect.candidates import in_auth_dir
from credguard.detect.jsonsafe import filled, obj

_CRED_FIELDS = {
    "clientSecret": "secret",
    "clientCertificate": "certificate",
    "federatedToken": "federated-token",
}
_CRED_KEYS = frozenset({*_CRED_FIELDS, "federatedAuth"})
_CRED_NAME = re.compile(r"^cred(?P<tenant>.+)\.(?P<client>[^.]+)\.json$", re.IGNORECASE)


def detect(data: bytes, path: PurePath) -> Detected | None:
    """In azd's auth directory, dispatch on the name (``cache*.json`` / ``cred*.json``);
    elsewhere only a credential file still under azd's GUID name is judged."""
    if not data.strip():
        return None
    name = path.name.lower()
    is_json_name = name.endswith(".json")
    own_dir = in_auth_dir(str(path.parent))
    if own_dir and is_json_name and name.startswith("cache"):
        return cache(jsonsafe.load(data))
    if own_dir and is_json_name and name.startswith("cred"):
        return credential(jsonsafe.load(data), path.name)
    match = _CRED_NAME.match(path.name)
    if match is None or not azure.is_guid(match.group("client")):
        return None
    if not jsonsafe.looks_like_json(data):
        return None
    doc = jsonsafe.load(data)
    if not isinstance(doc, dict) or not doc or not doc.keys() <= _CRED_KEYS:
        return None
    return credential(doc, path.name)


def cache(doc: object) -> Detected | None:
    """An azd MSAL cache file (or a map of them) holding token secrets."""
    found = msal.summarize_many(doc)
    if found is None or not found[0].has_secrets:
        return None
    summary, count = found
    return Detected(kinds.AZD_CACHE, {"file": "cache", "caches": count, **summary.details()})


def credential(doc: object, name: str) -> Detected | None:
    """An azd persisted client credential with a non-empty secret; ids come from the name."""
    record = obj(doc)
    auth = sorted(label for key, label in _CRED_FIELDS.items() if filled(record.get(key)))
    if not auth:
        return None
    match = _CRED_NAME.match(name)
    details: Details = {
        "file": "cred",
        "auth": auth,
        "tenant_id": match.group("tenant") if match else None,
        "client_id": match.group("client") if match else None,
    }
    return Detected(kinds.AZD_CACHE, details)
