"""The Azure PowerShell family: contexts, token caches, the key store and the IdentityService
MSAL cache; positive and negative tables, malformed input, no secret in any verdict."""

from __future__ import annotations

import base64
import json
import os
from functools import partial

from helpers import payloads
from helpers.detection import (
    CONTEXT_PATH,
    HOME,
    IDENTITY_PATH,
    NOT_JSON,
    PS,
    Broken,
    Case,
    FamilyContract,
    Negative,
    builder,
    common_negatives,
    const,
    data,
    encoded,
)
from helpers.payloads import Payload

from credguard.detect import kinds, powershell

PS_NAMES = ("AzureRmContext.json", "TokenCache.dat", "keystore.cache")
PS_SETTINGS = json.dumps(
    {
        "Mode": "CurrentUser",
        "ContextDirectory": "/home/dev/.Azure",
        "ContextFile": "AzureRmContext.json",
        "CacheFile": "msal.cache",
        "KeyStoreFile": "keystore.cache",
        "Settings": {},
    }
).encode()


def _opaque_cache() -> Payload:
    return Payload(b"\x02\x00\x00\x00" + os.urandom(300), ())


def _keystore() -> Payload:
    secret = base64.b64encode(os.urandom(48)).decode()
    doc = [{"keyStoreKey": {"type": "ServicePrincipal", "appId": "x"}, "value": secret}]
    return Payload(json.dumps(doc).encode(), (secret,))


pwsh = builder(powershell.detect, kinds.POWERSHELL_CACHE, CONTEXT_PATH)

POSITIVE: dict[str, Case] = {
    "pwsh-context-sp-secret": pwsh(
        payloads.ps_context,
        file="AzureRmContext.json",
        has_service_principal_secret=True,
        accounts=lambda a: a[0]["type"] == "ServicePrincipal",
    ),
    "pwsh-context-utf16": pwsh(
        encoded(payloads.ps_context, "utf-16"), has_service_principal_secret=True
    ),
    "pwsh-context-token-cache": pwsh(
        partial(payloads.ps_context, sp_secret=False, token_cache=True),
        has_service_principal_secret=False,
        token_caches=1,
    ),
    "pwsh-tokencache-dat": pwsh(
        _opaque_cache, PS / "TokenCache.dat", sniffable=False, file="TokenCache.dat"
    ),
    "pwsh-keystore": pwsh(_keystore, PS / "keystore.cache", sniffable=False, file="keystore.cache"),
    # By content alone this is an MSAL cache, which the CLI family claims: not sniffed here.
    "pwsh-identityservice-msal": pwsh(
        payloads.ps_msal_cache,
        IDENTITY_PATH,
        sniffable=False,
        file="msal.cache",
        refresh_tokens=1,
        client_ids=[payloads.PS_CLIENT_ID],
    ),
    "pwsh-identityservice-msal-nocae": pwsh(
        payloads.ps_msal_cache,
        HOME / ".local/share/.IdentityService" / "msal.cache.nocae",
        sniffable=False,
    ),
}

NEGATIVE: dict[str, Negative] = {
    "pwsh-context-without-secrets": (CONTEXT_PATH, data(payloads.ps_context, sp_secret=False)),
    "pwsh-context-settings": (PS / "AzureRmContextSettings.json", const(PS_SETTINGS)),
    "pwsh-msal-signal-file": (IDENTITY_PATH, const(b"")),
    "pwsh-msal-encrypted": (IDENTITY_PATH, lambda: b"\x01\x00\x00\x00" + os.urandom(200)),
    "pwsh-msal-empty-secrets": (IDENTITY_PATH, data(payloads.ps_msal_cache, empty_secrets=True)),
    "pwsh-tokencache-whitespace": (PS / "TokenCache.dat", const(b"  \n")),
    **common_negatives(
        powershell.detect,
        {**{f"pwsh-{n}": PS / n for n in PS_NAMES}, "pwsh-msal-cache": IDENTITY_PATH},
        xml=False,
    ),
}

MALFORMED: dict[str, Broken] = {
    "prose-named-context": (CONTEXT_PATH, payloads.mentions_only, NOT_JSON),
    "garbage-identityservice-json": (IDENTITY_PATH, const(b'{"AccessToken": '), NOT_JSON),
}


class TestPowerShell(FamilyContract):
    detector = staticmethod(powershell.detect)
    positive, negative, malformed = POSITIVE, NEGATIVE, MALFORMED
