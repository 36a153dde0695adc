"""Every detector family against generated payloads: positive and negative tables, malformed and
hostile input, and the promise that no secret reaches details or exception messages."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePath
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12
from helpers import payloads
from helpers.home import REPO
from helpers.payloads import Payload

from credguard.detect import (
    appservice,
    azcli,
    azd,
    jsonsafe,
    kinds,
    powershell,
    publishsettings,
    registry,
    vsprofile,
)
from credguard.detect.base import Detected, DetectFn, Hostile, Malformed

HOME = PurePath("/home/dev")
DOWNLOADS = HOME / "Downloads"
AZURE = HOME / ".azure"
PS = HOME / ".Azure"
AZD = HOME / ".azd" / "auth"
XML_FAMILIES: tuple[DetectFn, ...] = (publishsettings.detect, appservice.detect, vsprofile.detect)
JSON_FAMILIES: tuple[DetectFn, ...] = (azcli.detect, powershell.detect, azd.detect)
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def assert_no_secret(secrets: tuple[str, ...], *texts: object) -> None:
    """None of ``secrets`` appears in any text (details as JSON and repr, messages...)."""
    rendered = [json.dumps(t) if isinstance(t, dict) else str(t) for t in texts]
    rendered += [repr(t) for t in texts]
    for secret in secrets:
        assert secret, "an empty secret would match anything"
        for text in rendered:
            assert secret not in text


def length(n: int) -> Callable[[Any], bool]:
    return lambda value: len(value) == n


def all_parsed(value: list[dict[str, Any]]) -> bool:
    return bool(value) and all(
        c["parsed"] and c["subject"] == "CN=Windows Azure Tools" and ISO_UTC.match(c["not_after"])
        for c in value
    )


@dataclass(frozen=True)
class Case:
    """One positive payload: where it lives, who judges it, and what the details must say."""

    family: DetectFn
    path: PurePath
    make: Callable[[], Payload]
    kind: str
    expect: dict[str, Any] = field(default_factory=dict)  # value, or predicate on the value
    sniffable: bool = True  # found by content alone under a neutral name, as the same kind


def _opaque_cache() -> Payload:
    return Payload(b"\x02\x00\x00\x00" + os.urandom(300), ())


def _keystore() -> Payload:
    secret = base64.b64encode(os.urandom(48)).decode()
    doc = [{"keyStoreKey": {"type": "ServicePrincipal", "appId": "x"}, "value": secret}]
    return Payload(json.dumps(doc).encode(), (secret,))


def _encoded(factory: Callable[[], Payload], encoding: str) -> Callable[[], Payload]:
    """The same payload re-encoded (``utf-8-sig`` adds a BOM; ``utf-16`` as Windows tools may)."""

    def make() -> Payload:
        payload = factory()
        return Payload(payload.data.decode("utf-8").encode(encoding), payload.secrets)

    return make


def _builder(family: DetectFn, kind: str, default: PurePath) -> Callable[..., Case]:
    """A per-family Case maker: ``(factory, path=default, *, sniffable=True, **expect)``."""

    def build(
        make: Callable[[], Payload],
        path: PurePath = default,
        *,
        sniffable: bool = True,
        **expect: Any,
    ) -> Case:
        return Case(family, path, make, kind, expect, sniffable)

    return build


_P, _A, _V = publishsettings.detect, appservice.detect, vsprofile.detect
_C, _S, _D = azcli.detect, powershell.detect, azd.detect
PS_PATH = DOWNLOADS / "Fake-Dev-1-2-2026-credentials.publishsettings"
PP_PATH = DOWNLOADS / "contoso-app.PublishSettings"
PUBXML = HOME / "src/Properties/PublishProfiles/prod.pubxml"
PUBXML_USER = HOME / "src/Properties/PublishProfiles/prod.pubxml.user"
MSAL_PATH = AZURE / "msal_token_cache.json"
ADAL_PATH = AZURE / "accessTokens.json"
SP_PATH = AZURE / "service_principal_entries.json"
PROFILE_PATH = AZURE / "azureProfile.json"
CONTEXT_PATH = PS / "AzureRmContext.json"
IDENTITY_PATH = HOME / ".IdentityService" / "msal.cache"
AZD_CACHE_PATH = AZD / "msal" / "cache.json"
AZD_CRED_PATH = AZD / "credt.c.json"
ALL_METHODS = ("MSDeploy", "FTP", "ZipDeploy", "ReadOnly - FTP")

settings = _builder(_P, kinds.PUBLISHSETTINGS, PS_PATH)
profile = _builder(_A, kinds.PUBLISH_PROFILE, PP_PATH)
vs = _builder(_V, kinds.VS_PUBLISH_SECRET, PUBXML)
cli_tokens = _builder(_C, kinds.CLI_TOKEN_CACHE, MSAL_PATH)
cli_sp = _builder(_C, kinds.CLI_SERVICE_PRINCIPAL, SP_PATH)
cli_cert = _builder(_C, kinds.CLI_LEGACY_CERT, PROFILE_PATH)
pwsh = _builder(_S, kinds.POWERSHELL_CACHE, CONTEXT_PATH)
azd_ = _builder(_D, kinds.AZD_CACHE, AZD_CRED_PATH)
CHINA = "https://management.core.chinacloudapi.cn/"
PP_METHODS = ["FTP", "MSDeploy", "ZipDeploy"]

POSITIVE: dict[str, Case] = {
    # classic publish settings
    "ps-v1": settings(
        payloads.publishsettings_v1,
        schema_version="1",
        subscriptions=length(1),
        certificates=all_parsed,
    ),
    "ps-v1-three-subscriptions": settings(
        partial(payloads.publishsettings_v1, n_subs=3),
        subscriptions=length(3),
        certificates=length(1),
    ),
    "ps-v2": settings(
        payloads.publishsettings_v2,
        schema_version="2.0",
        subscriptions=length(2),
        certificates=all_parsed,
    ),
    "ps-v1-cert-unparsable": settings(
        partial(payloads.publishsettings_v1, cert_ok=False), certificates=[{"parsed": False}]
    ),
    "ps-v2-cert-unparsable": settings(
        partial(payloads.publishsettings_v2, cert_ok=False), certificates=[{"parsed": False}] * 2
    ),
    "ps-v1-no-publish-method": settings(partial(payloads.publishsettings_v1, method=None)),
    "ps-v2-china-cloud": settings(
        partial(payloads.publishsettings_v2, endpoint=CHINA),
        DOWNLOADS / "x.PUBLISHSETTINGS",
        subscriptions=lambda subs: {s["management_url"] for s in subs} == {CHINA},
    ),
    # App Service publish profiles
    "pp-portal": profile(
        payloads.publish_profile,
        apps=["contoso-app"],
        publish_methods=PP_METHODS,
        destination_app_urls=["http://contoso-app.azurewebsites.net"],
        has_database_passwords=False,
    ),
    "pp-bom": profile(partial(payloads.publish_profile, bom=True)),
    "pp-crlf-multiline": profile(partial(payloads.publish_profile, crlf=True, one_line=False)),
    "pp-no-declaration": profile(partial(payloads.publish_profile, declaration=False)),
    "pp-bom-crlf-no-declaration": profile(
        partial(payloads.publish_profile, bom=True, crlf=True, declaration=False)
    ),
    "pp-comment-secret": profile(partial(payloads.publish_profile, comment_secret=True)),
    "pp-all-methods": profile(
        partial(payloads.publish_profile, methods=ALL_METHODS),
        profiles=4,
        publish_hosts=length(3),
        publish_methods=PP_METHODS,
    ),
    **{
        f"pp-only-{m.replace(' ', '')}": profile(
            partial(payloads.publish_profile, app="fabrikam", methods=(m,)),
            apps=["fabrikam"],
            profiles=1,
        )
        for m in ALL_METHODS
    },
    "pp-db-password-only": profile(
        partial(payloads.publish_profile, user_password=False, db_password=True),
        has_database_passwords=True,
    ),
    "pp-db-and-user-password": profile(
        partial(payloads.publish_profile, db_password=True), has_database_passwords=True
    ),
    # Visual Studio publish profiles
    "vs-pubxml-password": vs(
        payloads.pubxml,
        file_type="pubxml",
        publish_method="MSDeploy",
        site_name="contoso-app",
        service_url="contoso-app.scm.azurewebsites.net:443",
        subscription_id=GUID.match,
        has_plaintext_password=True,
        has_encrypted_password=False,
    ),
    "vs-pubxml-namespace": vs(
        partial(payloads.pubxml, namespace=True), has_plaintext_password=True
    ),
    "vs-pubxml-connection-string": vs(
        partial(payloads.pubxml, password=False, connection_strings=True),
        has_plaintext_password=False,
        connection_string_names=["DefaultConnection-Web.config Connection String"],
    ),
    "vs-pubxml-user-encrypted": vs(
        payloads.pubxml_user,
        PUBXML_USER,
        file_type="pubxml.user",
        has_encrypted_password=True,
        connection_string_names=[],
    ),
    "vs-pubxml-user-no-namespace": vs(
        partial(payloads.pubxml_user, namespace=False), PUBXML_USER, has_encrypted_password=True
    ),
    # No publish marker: only its name makes it a publish profile, so it is not sniffed.
    "vs-pubxml-user-connection-strings-only": vs(
        partial(payloads.pubxml_user, encrypted=False, connection_strings=True),
        PUBXML_USER,
        sniffable=False,
        has_encrypted_password=False,
        connection_string_names=["DefaultConnection"],
    ),
    # Azure CLI
    "cli-msal": cli_tokens(
        payloads.msal_cache,
        format="msal",
        refresh_tokens=1,
        access_tokens=1,
        accounts=["user0@contoso.example"],
        tenants=length(1),
        client_ids=[payloads.CLI_CLIENT_ID],
    ),
    "cli-msal-bom": cli_tokens(_encoded(payloads.msal_cache, "utf-8-sig"), refresh_tokens=1),
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
        AZURE / "aksServicePrincipal.json",
        entries=lambda e: GUID.match(e[0]["subscription"]) is not None,
    ),
    "cli-acs": cli_sp(payloads.aks_sp, AZURE / "acsServicePrincipal.json"),
    "cli-legacy-certificate": cli_cert(
        payloads.legacy_azure_profile,
        subscriptions=lambda s: [x["name"] for x in s] == ["Fake-Dev"],
    ),
    # Azure PowerShell
    "pwsh-context-sp-secret": pwsh(
        payloads.ps_context,
        file="AzureRmContext.json",
        has_service_principal_secret=True,
        accounts=lambda a: a[0]["type"] == "ServicePrincipal",
    ),
    "pwsh-context-utf16": pwsh(
        _encoded(payloads.ps_context, "utf-16"), has_service_principal_secret=True
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
    # azd
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
        auth=["secret"],
        tenant_id="contoso.onmicrosoft.com",
        client_id="11111111-2222-3333-4444-555555555555",
    ),
    "azd-cred-bom": azd_(_encoded(payloads.azd_cred, "utf-8-sig"), auth=["secret"]),
    "azd-cred-certificate": azd_(
        partial(payloads.azd_cred, kind="certificate"),
        AZD / "cred.json",
        auth=["certificate"],
        tenant_id=None,
    ),
    "azd-cred-federated-token": azd_(
        partial(payloads.azd_cred, kind="federated-token"), auth=["federated-token"]
    ),
}

POSITIVE_PARAMS = [pytest.param(case, id=name) for name, case in POSITIVE.items()]
SNIFF_PARAMS = [pytest.param(c, id=n) for n, c in POSITIVE.items() if c.sniffable]


def check_details(
    case: Case, verdict: Detected | None, payload: Payload, *, expect: bool = True
) -> Detected:
    """The verdict has the case's kind (and expected details), and no secret in its details."""
    assert verdict is not None
    assert verdict.kind == case.kind
    for key, want in case.expect.items() if expect else ():
        got = verdict.details[key]
        assert want(got) if callable(want) else got == want, (key, got)
    assert_no_secret(payload.secrets, verdict.details)
    return verdict


@pytest.mark.parametrize("case", POSITIVE_PARAMS)
def test_positive(case: Case) -> None:
    payload = case.make()
    check_details(case, case.family(payload.data, case.path), payload)


@pytest.mark.parametrize("case", POSITIVE_PARAMS)
def test_registry_picks_the_family_by_name(case: Case) -> None:
    payload = case.make()
    families = registry.by_name(case.path.parent, case.path.name)
    assert case.family in families
    verdict = registry.detect_bytes(payload.data, case.path, families)
    assert verdict == case.family(payload.data, case.path)


@pytest.mark.parametrize("case", SNIFF_PARAMS)
@pytest.mark.parametrize("name", ["renamed.txt", "download"])
def test_registry_finds_a_renamed_file_by_content(case: Case, name: str) -> None:
    payload = case.make()
    verdict = registry.detect_bytes(payload.data, DOWNLOADS / name, strict=False)
    check_details(case, verdict, payload, expect=False)  # details may differ (file_type)


@pytest.mark.parametrize("case", POSITIVE_PARAMS)
def test_truncated_payload_leaks_nothing(case: Case) -> None:
    """Half a credential file: a verdict, nothing or Malformed, never a secret in any of them."""
    payload = case.make()
    for cut in (len(payload.data) // 2, len(payload.data) - 3):
        try:
            verdict = case.family(payload.data[:cut], case.path)
        except Malformed as exc:
            assert_no_secret(payload.secrets, exc, exc.args)
        else:
            assert_no_secret(payload.secrets, verdict.details if verdict else {})


def test_publish_profile_never_copies_user_names() -> None:
    payload = payloads.publish_profile(app="contoso-app", methods=ALL_METHODS)
    verdict = appservice.detect(payload.data, DOWNLOADS / "a.publishsettings")
    assert verdict is not None
    text = json.dumps(verdict.details) + repr(verdict.details)
    assert "$contoso-app" not in text and "userName" not in text and "control" not in text


def test_certificate_details_match_the_certificate() -> None:
    payload = payloads.publishsettings_v1()
    verdict = publishsettings.detect(payload.data, PS_PATH)
    assert verdict is not None
    _key, cert, _extra = pkcs12.load_key_and_certificates(
        base64.b64decode(payload.secrets[0]), None
    )
    assert cert is not None
    [described] = verdict.details["certificates"]
    assert described == {
        "parsed": True,
        "subject": "CN=Windows Azure Tools",
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "thumbprint": cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303
    }


def test_pkcs12_cert_opens_without_password() -> None:
    _key, cert, _ = pkcs12.load_key_and_certificates(payloads.pkcs12_cert(cn="X", days=2), None)
    assert cert is not None and cert.subject.rfc4514_string() == "CN=X"


def test_certificate_parsing_is_lazy() -> None:
    """Importing the detectors must not import cryptography (scan start-up time)."""
    code = "import sys, credguard.detect; print('cryptography' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "False"


# ---- negatives -----------------------------------------------------------------------------

CSPROJ = (
    b'<Project Sdk="Microsoft.NET.Sdk"><PropertyGroup><TargetFramework>net8.0'
    b"</TargetFramework><Password>hunter2</Password></PropertyGroup></Project>"
)
XML_MENTIONS = (
    b"<doc><p>PublishData, publishData, ManagementCertificate, userPWD, "
    b"EncryptedPassword, RefreshToken</p></doc>"
)
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


def _db_without_password() -> bytes:
    payload = payloads.publish_profile(user_password=False, db_password=True)
    pwd = payload.secrets[0]
    return payload.data.replace(f"Password={pwd}".encode(), b"Integrated Security=True")


def data(factory: Callable[..., Payload], **kwargs: Any) -> Callable[[], bytes]:
    """A bytes maker from a payload factory and its arguments."""
    return lambda: factory(**kwargs).data


def const(raw: bytes) -> Callable[[], bytes]:
    return lambda: raw


Negative = tuple[DetectFn, PurePath, Callable[[], bytes]]
NEGATIVE: dict[str, Negative] = {
    "ps-empty-certificate-v1": (_P, PS_PATH, data(payloads.publishsettings_v1, empty_cert=True)),
    "ps-empty-certificate-v2": (_P, PS_PATH, data(payloads.publishsettings_v2, empty_cert=True)),
    "ps-other-publish-method": (_P, PS_PATH, data(payloads.publishsettings_v1, method="MSDeploy")),
    "ps-wrong-case-root": (
        _P,
        PS_PATH,
        lambda: payloads.publishsettings_v1().data.replace(b"PublishData", b"publishData"),
    ),
    "ps-given-app-service-profile": (_P, PP_PATH, data(payloads.publish_profile)),
    "pp-no-passwords": (_A, PP_PATH, data(payloads.publish_profile, user_password=False)),
    "pp-db-without-password": (_A, PP_PATH, _db_without_password),
    "pp-given-classic-settings": (_A, PS_PATH, data(payloads.publishsettings_v2)),
    "vs-pubxml-no-password": (_V, PUBXML, data(payloads.pubxml, password=False)),
    "vs-pubxml-user-empty": (_V, PUBXML_USER, data(payloads.pubxml_user, encrypted=False)),
    "vs-csproj-password-renamed": (_V, DOWNLOADS / "build.xml", const(CSPROJ)),
    "cli-msal-empty-secrets": (_C, MSAL_PATH, data(payloads.msal_cache, empty_secrets=True)),
    "cli-msal-empty-object": (_C, MSAL_PATH, const(b"{}")),
    "cli-msal-empty-sections": (
        _C,
        MSAL_PATH,
        const(b'{"AccessToken": {}, "RefreshToken": {}, "Account": {}}'),
    ),
    "cli-adal-empty-list": (_C, ADAL_PATH, const(b"[]")),
    "cli-adal-empty-secrets": (_C, ADAL_PATH, data(payloads.access_tokens, empty_secrets=True)),
    "cli-adal-sp-empty-secret": (
        _C,
        ADAL_PATH,
        data(payloads.access_tokens, service_principal=True, empty_secrets=True),
    ),
    "cli-sp-empty-secret": (_C, SP_PATH, data(payloads.sp_entries, empty_secrets=True)),
    "cli-aks-empty-secret": (
        _C,
        AZURE / "aksServicePrincipal.json",
        data(payloads.aks_sp, empty_secrets=True),
    ),
    "cli-legacy-empty-key": (
        _C,
        PROFILE_PATH,
        data(payloads.legacy_azure_profile, empty_key=True),
    ),
    "cli-modern-azure-profile": (_C, PROFILE_PATH, data(payloads.modern_azure_profile)),
    "cli-token-list-without-adal-fields": (
        _C,
        DOWNLOADS / "tokens.json",
        const(b'[{"accessToken": "abc"}]'),
    ),
    "pwsh-context-without-secrets": (_S, CONTEXT_PATH, data(payloads.ps_context, sp_secret=False)),
    "pwsh-context-settings": (_S, PS / "AzureRmContextSettings.json", const(PS_SETTINGS)),
    "pwsh-msal-signal-file": (_S, IDENTITY_PATH, const(b"")),
    "pwsh-msal-encrypted": (_S, IDENTITY_PATH, lambda: b"\x01\x00\x00\x00" + os.urandom(200)),
    "pwsh-msal-empty-secrets": (
        _S,
        IDENTITY_PATH,
        data(payloads.ps_msal_cache, empty_secrets=True),
    ),
    "pwsh-tokencache-whitespace": (_S, PS / "TokenCache.dat", const(b"  \n")),
    "azd-cache-empty-secrets": (
        _D,
        AZD_CACHE_PATH,
        data(payloads.azd_msal_cache, empty_secrets=True),
    ),
    "azd-cred-federated-auth": (_D, AZD_CRED_PATH, data(payloads.azd_cred, kind="federated-auth")),
    "azd-cred-empty-secret": (_D, AZD_CRED_PATH, const(b'{"clientSecret": ""}')),
    "azd-unknown-json": (_D, DOWNLOADS / "x.json", const(b'{"clientSecret": "x", "a": 1}')),
}
NAMED: list[tuple[str, DetectFn, PurePath]] = [
    ("publishsettings", _P, PS_PATH),
    ("appservice", _A, PP_PATH),
    ("pubxml", _V, PUBXML),
    ("pubxml-user", _V, PUBXML_USER),
    *[
        (f"cli-{path.name}", _C, path)
        for path in (
            MSAL_PATH,
            ADAL_PATH,
            SP_PATH,
            PROFILE_PATH,
            AZURE / "aksServicePrincipal.json",
        )
    ],
    *[
        (f"pwsh-{n}", _S, PS / n)
        for n in ("AzureRmContext.json", "TokenCache.dat", "keystore.cache")
    ],
    ("pwsh-msal-cache", _S, IDENTITY_PATH),
    ("azd-cache", _D, AZD_CACHE_PATH),
    ("azd-cred", _D, AZD_CRED_PATH),
]
for _name, _fn, _path in NAMED:
    NEGATIVE[f"empty-{_name}"] = (_fn, _path, const(b""))
    NEGATIVE[f"blank-{_name}"] = (_fn, _path, const(b" \r\n\t"))
for _fn in XML_FAMILIES + JSON_FAMILIES:
    _mod = _fn.__module__.rsplit(".", 1)[-1]
    NEGATIVE[f"mentions-only-{_mod}"] = (_fn, DOWNLOADS / "readme.txt", payloads.mentions_only)
    NEGATIVE[f"mentions-in-xml-{_mod}"] = (_fn, DOWNLOADS / "notes.xml", const(XML_MENTIONS))
    if _fn in XML_FAMILIES:
        NEGATIVE[f"json-given-to-{_mod}"] = (_fn, DOWNLOADS / "x.json", data(payloads.msal_cache))
    else:
        NEGATIVE[f"xml-given-to-{_mod}"] = (_fn, DOWNLOADS / "x", data(payloads.publish_profile))


@pytest.mark.parametrize(
    ("family", "path", "make"), [pytest.param(*v, id=k) for k, v in NEGATIVE.items()]
)
def test_negative(family: DetectFn, path: PurePath, make: Callable[[], bytes]) -> None:
    assert family(make(), path) is None


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize(
    "data",
    [b"", payloads.mentions_only(), XML_MENTIONS],
    ids=["empty", "mentions-only", "mentions-in-xml"],
)
def test_registry_negative(data: bytes, strict: bool) -> None:
    for name in ("readme.txt", "notes", "notes.xml"):
        assert registry.detect_bytes(data, DOWNLOADS / name, strict=strict) is None


def test_registry_modern_azure_profile_is_not_a_finding() -> None:
    families = registry.by_name(AZURE, "azureProfile.json")
    assert (
        registry.detect_bytes(payloads.modern_azure_profile().data, PROFILE_PATH, families) is None
    )


# ---- malformed input -----------------------------------------------------------------------


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


NOT_JSON, NOT_XML = "not valid JSON", "not well-formed XML"
MALFORMED: dict[str, tuple[DetectFn, PurePath, Callable[[], bytes], str]] = {
    "prose-named-msal-cache": (_C, MSAL_PATH, payloads.mentions_only, NOT_JSON),
    "truncated-access-tokens": (
        _C,
        ADAL_PATH,
        lambda: payloads.access_tokens().data[:-5],
        NOT_JSON,
    ),
    "invalid-utf8-sp-entries": (_C, SP_PATH, const(b'[{"client_id": "\xff\xfe\xfa"}]'), NOT_JSON),
    "starts-like-json-unknown-name": (_C, DOWNLOADS / "x.json", const(b"{not json"), NOT_JSON),
    "nested-100000": (_C, MSAL_PATH, lambda: _nested(100_000), "deep"),
    "nested-65": (_C, MSAL_PATH, lambda: _nested(jsonsafe.MAX_DEPTH + 1), "deep"),
    "prose-named-context": (_S, CONTEXT_PATH, payloads.mentions_only, NOT_JSON),
    "garbage-identityservice-json": (_S, IDENTITY_PATH, const(b'{"AccessToken": '), NOT_JSON),
    "prose-named-azd-cache": (_D, AZD_CACHE_PATH, payloads.mentions_only, NOT_JSON),
    "prose-named-publishsettings": (_P, PS_PATH, payloads.mentions_only, NOT_XML),
    "broken-publishsettings": (_P, PS_PATH, const(b"<PublishData><PublishProfile"), NOT_XML),
    "broken-publish-profile": (
        _A,
        PP_PATH,
        lambda: payloads.publish_profile().data[:-40],
        NOT_XML,
    ),
    "json-named-pubxml": (_V, PUBXML, const(b"{}"), NOT_XML),
}


@pytest.mark.parametrize(
    ("family", "path", "make", "message"), [pytest.param(*v, id=k) for k, v in MALFORMED.items()]
)
def test_malformed(
    family: DetectFn, path: PurePath, make: Callable[[], bytes], message: str
) -> None:
    with pytest.raises(Malformed, match=message) as info:
        family(make(), path)
    assert not isinstance(info.value, Hostile)


def test_nesting_at_the_limit_is_accepted() -> None:
    assert azcli.detect(_nested(jsonsafe.MAX_DEPTH), AZURE / "msal_token_cache.json") is None


def test_registry_raises_malformed_for_a_named_file_only() -> None:
    path = AZURE / "msal_token_cache.json"
    with pytest.raises(Malformed, match="not valid JSON"):
        registry.detect_bytes(b"{oops", path, registry.by_name(AZURE, path.name))
    assert registry.detect_bytes(b"{oops", DOWNLOADS / "x.json", strict=False) is None


def test_malformed_messages_never_quote_the_content() -> None:
    payload = payloads.publish_profile(db_password=True)
    broken = payload.data.replace(b"<databases />", b"<databases>", 1)
    with pytest.raises(Malformed) as info:
        appservice.detect(broken, DOWNLOADS / "a.publishsettings")
    assert_no_secret(payload.secrets, info.value)
    payload = payloads.sp_entries()
    with pytest.raises(Malformed) as info:
        azcli.detect(
            payload.data.replace(b'"client_secret"', b"client_secret"),
            AZURE / "service_principal_entries.json",
        )
    assert_no_secret(payload.secrets, info.value)


# ---- hostile XML ---------------------------------------------------------------------------

XML_CASES = [
    pytest.param(fn, path, id=fn.__module__.rsplit(".", 1)[-1])
    for fn, path in (
        (_P, DOWNLOADS / "laughs.publishsettings"),
        (_A, DOWNLOADS / "laughs.publishsettings"),
        (_V, HOME / "p/laughs.pubxml"),
    )
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("family", "path"), XML_CASES)
def test_billion_laughs_is_refused_quickly(family: DetectFn, path: PurePath) -> None:
    start = time.monotonic()
    with pytest.raises(Hostile):
        family(payloads.billion_laughs(), path)
    with pytest.raises(Hostile):  # also when only sniffed: hostile XML is always reported
        registry.detect_bytes(payloads.billion_laughs(), DOWNLOADS / "laughs.txt", strict=False)
    assert time.monotonic() - start < 2


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("family", "path"), XML_CASES)
def test_xxe_is_refused_and_never_read(family: DetectFn, path: PurePath, tmp_path: Path) -> None:
    marker = "XXE-MARKER-" + base64.b32encode(os.urandom(10)).decode()
    target = tmp_path / "target.txt"
    target.write_text(marker)
    data = payloads.xxe(target)
    with pytest.raises(Hostile) as info:
        family(data, path)
    with pytest.raises(Hostile) as via_registry:
        registry.detect_bytes(data, path, registry.by_name(path.parent, path.name))
    assert_no_secret(
        (marker,),
        info.value,
        info.value.args,
        via_registry.value,
        info.value.__context__,
        info.value.__cause__,
    )


def test_internal_entity_in_publish_profile_is_hostile() -> None:
    data = (
        b'<?xml version="1.0"?><!DOCTYPE publishData [<!ENTITY p "x">]>'
        b'<publishData><publishProfile userPWD="&p;" /></publishData>'
    )
    with pytest.raises(Hostile):
        appservice.detect(data, DOWNLOADS / "a.publishsettings")
