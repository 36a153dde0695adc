"""The Azure Developer CLI family: MSAL caches and credential files; positive and negative
tables, malformed input, and no secret in any verdict."""

from __future__ import annotations

from functools import partial

from helpers import payloads
from helpers.detection import (
    AZD,
    AZD_CACHE_PATH,
    AZD_CRED_PATH,
    DOWNLOADS,
    NOT_JSON,
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

from credguard.detect import azd, kinds, registry

azd_ = builder(azd.detect, kinds.AZD_CACHE, AZD_CRED_PATH)

# A credential file's content alone ({"clientSecret": ...}) has nothing Azure's: it is found by
# its name in azd's auth directory, or by a name that still carries azd's GUID client id.
POSITIVE: dict[str, Case] = {
    "azd-msal-cache": azd_(
        payloads.azd_msal_cache, AZD_CACHE_PATH, sniffable=False, caches=1, refresh_tokens=1
    ),
    "azd-msal-cache-map": azd_(
        partial(payloads.azd_msal_cache, wrapped=True),
        AZD / "msal" / "cache1.json",
        sniffable=False,
        caches=1,
        access_tokens=1,
    ),
    "azd-cred-secret": azd_(
        payloads.azd_cred,
        AZD / "credcontoso.onmicrosoft.com.11111111-2222-3333-4444-555555555555.json",
        sniffable=False,
        auth=["secret"],
        tenant_id="contoso.onmicrosoft.com",
        client_id="11111111-2222-3333-4444-555555555555",
    ),
    "azd-cred-bom": azd_(encoded(payloads.azd_cred, "utf-8-sig"), sniffable=False,
                         auth=["secret"]),
    "azd-cred-certificate": azd_(
        partial(payloads.azd_cred, kind="certificate"),
        AZD / "cred.json",
        sniffable=False,
        auth=["certificate"],
        tenant_id=None,
    ),
    "azd-cred-federated-token": azd_(
        partial(payloads.azd_cred, kind="federated-token"), sniffable=False,
        auth=["federated-token"]
    ),
}

NEGATIVE: dict[str, Negative] = {
    "azd-cache-empty-secrets": (AZD_CACHE_PATH, data(payloads.azd_msal_cache, empty_secrets=True)),
    "azd-cred-federated-auth": (AZD_CRED_PATH, data(payloads.azd_cred, kind="federated-auth")),
    "azd-cred-empty-secret": (AZD_CRED_PATH, const(b'{"clientSecret": ""}')),
    "azd-unknown-json": (DOWNLOADS / "x.json", const(b'{"clientSecret": "x", "a": 1}')),
    # another tool's {"clientSecret": ...} under any name but azd's own
    "azd-cred-shape-elsewhere": (DOWNLOADS / "creds.json", data(payloads.azd_cred)),
    "azd-cred-name-without-guid": (DOWNLOADS / "credtenant.client.json", data(payloads.azd_cred)),
    "azd-cred-redacted": (AZD_CRED_PATH, const(b'{"clientSecret": "REDACTED"}')),
    **common_negatives(
        azd.detect, {"azd-cache": AZD_CACHE_PATH, "azd-cred": AZD_CRED_PATH}, xml=False
    ),
}

MALFORMED: dict[str, Broken] = {
    "prose-named-azd-cache": (AZD_CACHE_PATH, payloads.mentions_only, NOT_JSON),
}


class TestAzd(FamilyContract):
    detector = staticmethod(azd.detect)
    positive, negative, malformed = POSITIVE, NEGATIVE, MALFORMED
    # no azd file is found by content alone under a neutral name (see POSITIVE)
    test_registry_finds_a_renamed_file_by_content = None  # type: ignore[assignment]


def test_a_credential_file_moved_out_keeps_its_guid_name_and_is_found() -> None:
    """Copied to Downloads under azd's own name, a credential is sniffed and found as azd's."""
    payload = payloads.azd_cred()
    name = "credcontoso.onmicrosoft.com.11111111-2222-3333-4444-555555555555.json"
    verdict = registry.detect_bytes(payload.data, DOWNLOADS / name, strict=False)
    assert verdict is not None and verdict.kind == kinds.AZD_CACHE
    assert verdict.details["client_id"] == "11111111-2222-3333-4444-555555555555"
    assert registry.detect_bytes(payload.data, DOWNLOADS / "credentials.json") is None
