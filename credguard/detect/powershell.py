"""Azure PowerShell caches (kind ``azure-powershell-cache``).

- ``AzureRmContext.json``: a finding only when a context holds a secret: a service-principal
  secret, a certificate password or an access token in the account's extended properties, a
  legacy ``Credential``, or a non-empty token cache. ``AzureRmContextSettings.json`` is not.
- ``TokenCache.dat`` (ADAL, see :mod:`credguard.detect.adal`), wherever it lies: a plaintext
  ADAL cache with a token, a DPAPI-protected one (the user's Windows profile decrypts it), or an
  MSAL JSON cache with a token; an empty cache is none. In the tool's own ``.Azure`` directory a
  cache of any other non-empty content is still reported (it is the tool's, whatever its format).
  ``keystore.cache`` (only there): any non-empty content.
- ``.IdentityService/msal.cache*``: an MSAL cache with token secrets; the empty signal file left
  when the OS keyring holds the real cache, and encrypted (non-JSON) content, are not findings.

A file under another name is judged only when it has the context document's shape or opens like
a plaintext ADAL cache. Contexts count only when they are Azure's: a GUID tenant or subscription,
or a named Azure environment.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from credguard.detect import adal, azure, jsonsafe, kinds, msal
from credguard.detect.base import Details, Detected
from credguard.detect.jsonsafe import JsonDict, filled, obj, objects, text

_OPAQUE = {"keystore.cache": "keystore.cache"}
_ACCOUNT_TYPES = frozenset({"User", "ServicePrincipal", "AccessToken", "ManagedService",
                            "ClientAssertion", "Certificate", "UserCertificate"})


def detect(data: bytes, path: PurePath) -> Detected | None:
    """Dispatch on the file name; see the module docstring for what each file must hold."""
    if not data.strip():
        return None
    name = path.name.lower()
    if name == "tokencache.dat" or adal.looks_like(data):
        return token_cache(data, in_tool_dir=path.parent.name.lower() == ".azure")
    if name in _OPAQUE:
        return _opaque(_OPAQUE[name], data)
    if name.startswith("msal.cache"):
        return _identity_service(data)
    if name == "azurermcontextsettings.json":
        return None
    if name != "azurermcontext.json" and not jsonsafe.looks_like_json(data):
        return None
    return context(jsonsafe.load(data), sniffed=name != "azurermcontext.json")


def _opaque(role: str, data: bytes) -> Detected:
    """A cache whose bytes are secret as a whole: only its role and size are told."""
    shape = "json" if jsonsafe.looks_like_json(data) else "opaque"
    return Detected(kinds.POWERSHELL_CACHE, {"file": role, "bytes": len(data), "format": shape})


def token_cache(data: bytes, *, in_tool_dir: bool) -> Detected | None:
    """A ``TokenCache.dat``: ADAL (plaintext or DPAPI) or MSAL JSON holding a token."""
    details: Details = {"file": "TokenCache.dat", "bytes": len(data)}
    if adal.is_dpapi(data):
        return Detected(kinds.POWERSHELL_CACHE, {**details, "format": "dpapi"})
    if data.startswith(adal.VERSION):
        cache = adal.parse(data)
        if not cache.has_secrets:
            return None
        return Detected(kinds.POWERSHELL_CACHE, {
            **details, "format": "adal", "items": cache.items,
            "refresh_tokens": cache.refresh_tokens, "access_tokens": cache.access_tokens,
            "authorities": sorted(cache.authorities), "client_ids": sorted(cache.client_ids),
        })
    if jsonsafe.looks_like_json(data):
        found = msal.summarize_many(jsonsafe.load(data))
        if found is not None and found[0].has_secrets:
            return Detected(kinds.POWERSHELL_CACHE,
                            {**details, "format": "msal", **found[0].details()})
        return None
    return _opaque("TokenCache.dat", data) if in_tool_dir else None


def _identity_service(data: bytes) -> Detected | None:
    """A plaintext MSAL cache under ``.IdentityService``; anything encrypted is left alone."""
    if not jsonsafe.looks_like_json(data):
        return None
    summary = msal.summarize_many(jsonsafe.load(data))
    if summary is None or not summary[0].has_secrets:
        return None
    return Detected(kinds.POWERSHELL_CACHE, {"file": "msal.cache", **summary[0].details()})


def _contexts(doc: JsonDict) -> list[JsonDict]:
    """Every saved Azure context: ``Contexts`` (Az) or the single ``Context`` of old AzureRM
    files; a context counts only with a GUID tenant or subscription or a named environment."""
    found = objects(doc.get("Contexts")) + objects([doc.get("Context")])
    return [ctx for ctx in found if _azure(ctx)]


def _azure(ctx: JsonDict) -> bool:
    return (azure.is_guid(obj(ctx.get("Tenant")).get("Id"))
            or azure.is_guid(obj(ctx.get("Subscription")).get("Id"))
            or bool(text(obj(ctx.get("Environment")).get("Name")))
            or text(obj(ctx.get("Account")).get("Type")) in _ACCOUNT_TYPES)


def _account_secrets(account: JsonDict) -> tuple[bool, bool, bool]:
    """(service-principal secret, certificate password, access token) held by an account."""
    props = obj(account.get("ExtendedProperties"))
    sp_secret = filled(props.get("ServicePrincipalSecret")) or filled(account.get("Credential"))
    cert_password = filled(props.get("CertificatePassword"))
    token = any(k.endswith("AccessToken") and filled(v) for k, v in props.items())
    return sp_secret, cert_password, token


def _token_cache(ctx: JsonDict) -> bool:
    cache = ctx.get("TokenCache")
    return filled(obj(cache).get("CacheData")) or (isinstance(cache, str) and filled(cache))


def context(doc: object, *, sniffed: bool = False) -> Detected | None:
    """Judge a parsed ``AzureRmContext.json``; ``sniffed`` requires its shape to be certain."""
    contexts = _contexts(obj(doc))
    if sniffed and not any(isinstance(c.get("Account"), dict) for c in contexts):
        return None
    accounts: list[dict[str, Any]] = []
    counts = [0, 0, 0, 0]  # service-principal secrets, certificate passwords, tokens, caches
    for ctx in contexts:
        account = obj(ctx.get("Account"))
        found = (*_account_secrets(account), _token_cache(ctx))
        counts = [n + flag for n, flag in zip(counts, found, strict=True)]
        entry = {"id": text(account.get("Id")) or None, "type": text(account.get("Type")) or None}
        if account and entry not in accounts:
            accounts.append(entry)
    if not any(counts):
        return None
    details: Details = {
        "file": "AzureRmContext.json",
        "contexts": len(contexts),
        "accounts": accounts,
        "has_service_principal_secret": counts[0] > 0,
        "service_principal_secrets": counts[0],
        "certificate_passwords": counts[1],
        "access_tokens": counts[2],
        "token_caches": counts[3],
    }
    return Detected(kinds.POWERSHELL_CACHE, details)
