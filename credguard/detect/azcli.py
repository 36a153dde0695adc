"""Azure CLI files in ``~/.azure`` (kinds ``azure-cli-token-cache``,
``azure-cli-service-principal`` and ``azure-cli-legacy-certificate``), and the service-principal
INI file Ansible's azure_rm modules keep there (``~/.azure/credentials``).

A known file name picks one judge; any other name is sniffed by structure, trying every judge.
Each judge sees parsed JSON and returns a verdict only when a secret field holds a value that is
no placeholder, so a modern ``azureProfile.json`` (subscriptions and user names only) is not a
finding. Each also requires Azure's structure, not a key name: an Entra ID authority, GUID client,
tenant and subscription ids (Google's ``client_secret_*.json`` has ``client_secret`` too).
"""

from __future__ import annotations

import configparser
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from credguard.detect import azure, encoding, jsonsafe, kinds, msal
from credguard.detect.base import Detected, Malformed
from credguard.detect.jsonsafe import filled, objects, text, unique

Judge = Callable[[object], Detected | None]

# ADAL fields only a token entry has; without one, a list of objects is not an ADAL cache.
_ADAL_MARKERS = ("_clientId", "_authority", "servicePrincipalId")
# service_principal_entries.json: the field that holds the credential, and what we call it.
_SP_AUTH = (
    ("client_secret", "secret"),
    ("certificate", "certificate"),
    ("client_assertion", "client-assertion"),
)


def token_cache_msal(doc: object) -> Detected | None:
    """``msal_token_cache.json``: a finding when a refresh or access token has a secret."""
    if not msal.is_cache(doc):
        return None
    summary = msal.summarize(doc)
    if not summary.has_secrets:
        return None
    return Detected(kinds.CLI_TOKEN_CACHE, {"format": "msal", **summary.details()})


def token_cache_adal(doc: object) -> Detected | None:
    """Legacy ``accessTokens.json``: ADAL entries; a service principal's secret sits under
    ``accessToken`` next to ``servicePrincipalId`` (or a ``certificateFile`` path)."""
    entries = [e for e in objects(jsonsafe.arr(doc)) if _adal_entry(e)]
    users = [e for e in entries if "servicePrincipalId" not in e]
    sps = [e for e in entries if "servicePrincipalId" in e]
    counts = {
        "refresh_tokens": sum(filled(e.get("refreshToken")) for e in users),
        "access_tokens": sum(filled(e.get("accessToken")) for e in users),
        "service_principal_secrets": sum(filled(e.get("accessToken")) for e in sps),
        "service_principal_certificates": sum(filled(e.get("certificateFile")) for e in sps),
    }
    if not any(counts.values()):
        return None
    authorities = (text(e.get("_authority")).rstrip("/").rsplit("/", 1)[-1] for e in users)
    details = {
        "format": "adal",
        **counts,
        "accounts": unique(e.get("userId") for e in users),
        "tenants": unique([*authorities, *(e.get("servicePrincipalTenant") for e in sps)]),
        "client_ids": unique(e.get("_clientId") or e.get("servicePrincipalId") for e in entries),
    }
    return Detected(kinds.CLI_TOKEN_CACHE, details)


def _adal_entry(entry: dict[str, Any]) -> bool:
    """An ADAL token entry of Entra ID, or a service principal's entry with a GUID id."""
    if "servicePrincipalId" in entry:
        return azure.is_guid(entry.get("servicePrincipalId"))
    return any(m in entry for m in _ADAL_MARKERS) and azure.is_authority(entry.get("_authority"))


def _tenant(value: object) -> bool:
    """A tenant as az stores it: a GUID or a domain name."""
    name = text(value)
    return azure.is_guid(name) or ("." in name and " " not in name)


def service_principal_entries(doc: object) -> Detected | None:
    """``service_principal_entries.json``: ``client_id`` and ``tenant`` with a client secret,
    a certificate path or a client assertion."""
    found = []
    for entry in objects(jsonsafe.arr(doc)):
        auth = next((name for key, name in _SP_AUTH if filled(entry.get(key))), None)
        if auth is None or not azure.is_guid(entry.get("client_id")):
            continue
        if not _tenant(entry.get("tenant")):
            continue
        item: dict[str, Any] = {
            "client_id": text(entry.get("client_id")),
            "tenant": text(entry.get("tenant")) or None,
            "auth": auth,
        }
        if auth == "certificate":
            item["certificate_path"] = text(entry.get("certificate"))
        found.append(item)
    return Detected(kinds.CLI_SERVICE_PRINCIPAL, {"entries": found}) if found else None


def ansible_credentials(data: bytes) -> Detected | None:
    """Ansible azure_rm's ``~/.azure/credentials`` (INI): per profile ``client_id``, ``secret``
    and ``tenant``, or ``ad_user`` and ``password``."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(data.decode(encoding.text_codec(data[:4]) or "utf-8"))
    except (UnicodeDecodeError, configparser.Error):
        raise Malformed("not an INI file") from None
    found: list[dict[str, Any]] = []
    for profile in parser.sections():
        section = parser[profile]
        client, tenant = section.get("client_id", ""), section.get("tenant", "")
        if azure.is_guid(client) and _tenant(tenant) and filled(section.get("secret")):
            found.append({"profile": profile, "client_id": client.strip(),
                          "tenant": tenant.strip(), "auth": "secret"})
        elif text(section.get("ad_user")) and filled(section.get("password")):
            found.append({"profile": profile, "client_id": None,
                          "tenant": tenant.strip() or None, "auth": "password"})
    if not found:
        return None
    return Detected(kinds.CLI_SERVICE_PRINCIPAL, {"format": "ansible", "entries": found})


def aks_service_principal(doc: object) -> Detected | None:
    """``aksServicePrincipal.json`` / ``acsServicePrincipal.json``:
    ``{<subscription>: {"client_secret": ..., "service_principal": ...}}``."""
    found = [
        {
            "service_principal": text(entry.get("service_principal")) or None,
            "subscription": subscription.strip(),
            "auth": "secret",
        }
        for subscription, entry in jsonsafe.obj(doc).items()
        if isinstance(entry, dict) and filled(entry.get("client_secret"))
        and azure.is_guid(subscription) and azure.is_guid(entry.get("service_principal"))
    ]
    return Detected(kinds.CLI_SERVICE_PRINCIPAL, {"entries": found}) if found else None


def legacy_profile(doc: object) -> Detected | None:
    """The node CLI's ``azureProfile.json``: subscriptions with ``managementCertificate.key``."""
    subscriptions = objects(jsonsafe.obj(doc).get("subscriptions"))
    found = [
        {"id": text(sub.get("id")) or None, "name": text(sub.get("name")) or None}
        for sub in subscriptions
        if filled(jsonsafe.obj(sub.get("managementCertificate")).get("key"))
        and azure.is_guid(sub.get("id"))
    ]
    return Detected(kinds.CLI_LEGACY_CERT, {"subscriptions": found}) if found else None


_BY_NAME: dict[str, Judge] = {
    "msal_token_cache.json": token_cache_msal,
    "accesstokens.json": token_cache_adal,
    "service_principal_entries.json": service_principal_entries,
    "aksserviceprincipal.json": aks_service_principal,
    "acsserviceprincipal.json": aks_service_principal,
    "azureprofile.json": legacy_profile,
}
_SNIFF_ORDER: tuple[Judge, ...] = (
    token_cache_msal,
    token_cache_adal,
    service_principal_entries,
    aks_service_principal,
    legacy_profile,
)


def detect(data: bytes, path: PurePath) -> Detected | None:
    """Judge a known file by its name, any other JSON by its structure, any other text as
    Ansible's INI (which needs GUID ids and a secret: nothing else passes).

    Raises :class:`~credguard.detect.base.Malformed` for a known name that is not JSON, or
    for unparsable content that starts like JSON.
    """
    if not data.strip():
        return None
    if path.name.lower() == "credentials":
        return ansible_credentials(data) if path.parent.name.lower() == ".azure" else None
    judge = _BY_NAME.get(path.name.lower())
    if judge is None and not jsonsafe.looks_like_json(data):
        try:
            return ansible_credentials(data)
        except Malformed:
            return None  # found by content: prose or XML, not an INI file
    doc = jsonsafe.load(data)
    for each in (judge,) if judge else _SNIFF_ORDER:
        verdict = each(doc)
        if verdict is not None:
            return verdict if judge else _renamed(verdict)
    return None


def _renamed(verdict: Detected) -> Detected:
    """A cache found by content under another name: Azure PowerShell's MSAL cache has the CLI's
    shape, but PowerShell's own client id."""
    ids = verdict.details.get("client_ids")
    if verdict.details.get("format") == "msal" and ids == [azure.POWERSHELL_CLIENT_ID]:
        details = {k: v for k, v in verdict.details.items() if k != "format"}
        return Detected(kinds.POWERSHELL_CACHE, {"file": "msal.cache", **details})
    return verdict
