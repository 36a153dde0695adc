"""The Azure CLI family: MSAL and ADAL token caches, service principal entries and the legacy
certificate profile; positive and negative tables, malformed input, no secret in any verdict."""

from __future__ import annotations

from functools import partial

from helpers import payloads
from helpers.detection import (
    ADAL_PATH,
    AZURE,
    DOWNLOADS,
    GUID,
    MSAL_PATH,
    NOT_JSON,
    PROFILE_PATH,
    SP_PATH,
    Broken,
    Case,
    FamilyContract,
    Negative,
    builder,
    common_negatives,
    const,
    data,
    encoded,
    length,
)

from credguard.detect import azcli, kinds

AKS_PATH = AZURE / "aksServicePrincipal.json"

cli_tokens = builder(azcli.detect, kinds.CLI_TOKEN_CACHE, MSAL_PATH)
cli_sp = builder(azcli.detect, kinds.CLI_SERVICE_PRINCIPAL, SP_PATH)
cli_cert = builder(azcli.detect, kinds.CLI_LEGACY_CERT, PROFILE_PATH)

POSITIVE: dict[str, Case] = {
    "cli-msal": cli_tokens(
        payloads.msal_cache,
        format="msal",
        refresh_tokens=1,
        access_tokens=1,
        accounts=["user0@contoso.example"],
        tenants=length(1),
        client_ids=[payloads.CLI_CLIENT_ID],
    ),
    "cli-msal-bom": cli_tokens(encoded(payloads.msal_cache, "utf-8-sig"), refresh_tokens=1),
    "cli-msal-three-accounts": cli_tokens(
        partial(payloads.msal_cache, n_accounts=3), refresh_tokens=3, accounts=length(3)
    ),
    "cli-adal-user": cli_tokens(
        payloads.access_tokens,
        ADAL_PATH,
        format="adal",
        refresh_tokens=1,
        access_tokens=1,
        accounts=["user@contoso.example"],
    ),
    "cli-adal-service-principal": cli_tokens(
        partial(payloads.access_tokens, service_principal=True),
        ADAL_PATH,
        format="adal",
        service_principal_secrets=1,
    ),
    "cli-sp-secret": cli_sp(
        payloads.sp_entries, entries=lambda e: [x["auth"] for x in e] == ["secret"]
    ),
    "cli-sp-certificate": cli_sp(
        partial(payloads.sp_entries, certificate=True),
        entries=lambda e: e[0]["certificate_path"] == "/home/dev/.azure/sp-cert.pem",
    ),
    "cli-aks": cli_sp(
        payloads.aks_sp,
        AKS_PATH,
        entries=lambda e: GUID.match(e[0]["subscription"]) is not None,
    ),
    "cli-acs": cli_sp(payloads.aks_sp, AZURE / "acsServicePrincipal.json"),
    "cli-legacy-certificate": cli_cert(
        payloads.legacy_azure_profile,
        subscriptions=lambda s: [x["name"] for x in s] == ["Fake-Dev"],
    ),
}

NEGATIVE: dict[str, Negative] = {
    "cli-msal-empty-secrets": (MSAL_PATH, data(payloads.msal_cache, empty_secrets=True)),
    "cli-msal-empty-object": (MSAL_PATH, const(b"{}")),
    "cli-msal-empty-sections": (
        MSAL_PATH,
        const(b'{"AccessToken": {}, "RefreshToken": {}, "Account": {}}'),
    ),
    "cli-adal-empty-list": (ADAL_PATH, const(b"[]")),
    "cli-adal-empty-secrets": (ADAL_PATH, data(payloads.access_tokens, empty_secrets=True)),
    "cli-adal-sp-empty-secret": (
        ADAL_PATH,
        data(payloads.access_tokens, service_principal=True, empty_secrets=True),
    ),
    "cli-sp-empty-secret": (SP_PATH, data(payloads.sp_entries, empty_secrets=True)),
    "cli-aks-empty-secret": (AKS_PATH, data(payloads.aks_sp, empty_secrets=True)),
    "cli-legacy-empty-key": (PROFILE_PATH, data(payloads.legacy_azure_profile, empty_key=True)),
    "cli-modern-azure-profile": (PROFILE_PATH, data(payloads.modern_azure_profile)),
    "cli-token-list-without-adal-fields": (
        DOWNLOADS / "tokens.json",
        const(b'[{"accessToken": "abc"}]'),
    ),
    **common_negatives(
        azcli.detect,
        {f"cli-{p.name}": p for p in (MSAL_PATH, ADAL_PATH, SP_PATH, PROFILE_PATH, AKS_PATH)},
        xml=False,
    ),
}

MALFORMED: dict[str, Broken] = {
    "prose-named-msal-cache": (MSAL_PATH, payloads.mentions_only, NOT_JSON),
    "truncated-access-tokens": (ADAL_PATH, lambda: payloads.access_tokens().data[:-5], NOT_JSON),
    "invalid-utf8-sp-entries": (SP_PATH, const(b'[{"client_id": "\xff\xfe\xfa"}]'), NOT_JSON),
    "starts-like-json-unknown-name": (DOWNLOADS / "x.json", const(b"{not json"), NOT_JSON),
}


class TestAzCli(FamilyContract):
    detector = staticmethod(azcli.detect)
    positive, negative, malformed = POSITIVE, NEGATIVE, MALFORMED
