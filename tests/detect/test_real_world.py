"""What real files taught (issue 13, docs/accuracy.md): placeholders, other vendors' look-alikes,
certificates that are not certificates, ADAL's binary cache, UTF-16 with a lying declaration.

Each failure class found on the corpus of real files is generated here at run time (nothing
credential-shaped is committed). Files are judged as a scan judges them: by name first, else
sniffed by content (``explicit`` = named on the command line, sniffed whatever its extension).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import PurePath

import pytest
from helpers import lookalikes, payloads
from helpers.detection import AZURE, DOWNLOADS, HOME, PS, assert_no_secret
from helpers.payloads import Payload

from credguard.detect import kinds, registry
from credguard.detect.base import Detected, Malformed
from credguard.detect.placeholder import is_placeholder

REPO = HOME / "src" / "webapp"


def judge(data: bytes, path: PurePath, *, explicit: bool = False) -> Detected | None:
    families = registry.by_name(path.parent, path.name)
    if families:
        return registry.detect_bytes(data, path, families)
    if (explicit or registry.sniff_eligible(path.name)) and registry.sniff_matches(
        data[: registry.SNIFF_PREFIX]
    ):
        return registry.detect_bytes(data, path, strict=False)
    return None


# -- placeholders ----------------------------------------------------------------------------

PLACEHOLDERS = ["REDACTED", "[Redacted]", "{The password you already selected}",
                "YOUR-PASSWORD-HERE", "$(DeployPassword)", "", "   ", "****", "xxxxxxxx", "XXXX",
                "<password>", "#{DeployPassword}#", "${PUBLISH_PASSWORD}", "%DEPLOY_PWD%"]


@pytest.mark.parametrize("value", PLACEHOLDERS)
def test_a_profile_whose_every_password_is_a_placeholder_is_no_credential(value: str) -> None:
    assert is_placeholder(value)
    payload = payloads.publish_profile(password=value)
    for name in ("contoso-app.PublishSettings", "contoso-app.publishsettings.txt", "profile.xml"):
        assert judge(payload.data, DOWNLOADS / name) is None, name


@pytest.mark.parametrize("value", ["Zq3mR8vK1pLx0c", "hunter2-but-longer", "12345", "p@ss"])
def test_real_passwords_are_no_placeholders(value: str) -> None:
    assert not is_placeholder(value)


def test_one_real_password_among_placeholders_is_a_credential() -> None:
    real = payloads.publish_profile(methods=("MSDeploy",))
    redacted = payloads.publish_profile(methods=("FTP", "ZipDeploy"), password="REDACTED")
    body = real.data.decode().replace("</publishData>", "")
    rest = redacted.data.decode().split("<publishData>", 1)[1]
    verdict = judge((body + rest).encode(), DOWNLOADS / "contoso-app.PublishSettings")
    assert verdict is not None and verdict.kind == kinds.PUBLISH_PROFILE
    assert verdict.details["publish_methods"] == ["FTP", "MSDeploy", "ZipDeploy"]


def test_a_placeholder_database_password_is_none() -> None:
    payload = payloads.publish_profile(db_password=True, password="REDACTED")
    redacted = payload.data
    for secret in payload.secrets:
        redacted = redacted.replace(secret.encode(), b"{your_password}")
    assert judge(redacted, DOWNLOADS / "contoso-app.PublishSettings") is None
    verdict = judge(payload.data, DOWNLOADS / "contoso-app.PublishSettings")
    assert verdict is not None and verdict.details["has_database_passwords"] is True


def test_another_hosters_web_deploy_profile_is_not_azures() -> None:
    """Plesk and other hosters serve the same publishData format: not an Azure credential."""
    payload = payloads.publish_profile(hoster="webhost.example")
    assert judge(payload.data, DOWNLOADS / "site.PublishSettings") is None


@pytest.mark.parametrize("value", ["MSDeploy", "FTP"])
def test_vs_profile_placeholder_passwords_are_none(value: str) -> None:
    body = (f"<PropertyGroup><WebPublishMethod>{value}</WebPublishMethod>"
            "<Password>$(DeployPassword)</Password></PropertyGroup>")
    data = f'<Project xmlns="{payloads.MSBUILD_NS}">{body}</Project>'.encode()
    assert judge(data, REPO / "Properties/PublishProfiles/prod.pubxml") is None


def test_a_userpwd_that_spells_out_password_is_a_phrase_put_in_its_place() -> None:
    """Azure generates userPWD (60 random characters); a phrase naming it is no secret."""
    payload = payloads.publish_profile(password="ThisIsWherePasswordGoesInAzure")
    assert judge(payload.data, DOWNLOADS / "contoso-app.PublishSettings") is None


# -- classic publish settings: a certificate must be a certificate ----------------------------

NOT_CERTIFICATES = {
    "redacted": "[Redacted]",
    "sentence": "Your management certificate goes here once you download it",
    "stars": "****************",
    "random-base64": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=",
    "truncated-der": "MIIKXAIBAzCCChg=",
}


@pytest.mark.parametrize("value", NOT_CERTIFICATES.values(), ids=NOT_CERTIFICATES.keys())
@pytest.mark.parametrize("schema", ["v1", "v2"])
def test_a_management_certificate_that_is_not_der_is_no_credential(value: str,
                                                                   schema: str) -> None:
    make = payloads.publishsettings_v1 if schema == "v1" else payloads.publishsettings_v2
    data = make(cert_text=value).data
    assert judge(data, DOWNLOADS / "Fake-Dev-credentials.publishsettings") is None


def test_a_password_protected_pkcs12_still_is_a_credential() -> None:
    payload = payloads.publishsettings_v1(cert_ok=False)
    verdict = judge(payload.data, DOWNLOADS / "Fake-Dev-credentials.publishsettings")
    assert verdict is not None and verdict.kind == kinds.PUBLISHSETTINGS
    assert verdict.details["certificates"] == [{"parsed": False}]


def test_a_publishsettings_without_method_needs_an_azure_management_url() -> None:
    own = payloads.publishsettings_v1(method=None)
    assert judge(own.data, DOWNLOADS / "a.publishsettings") is not None
    other = payloads.publishsettings_v1(method=None, url="https://api.example.com/")
    assert judge(other.data, DOWNLOADS / "a.publishsettings") is None


# -- empty caches ----------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"[]", b"{}", b"[]\n", b"\xef\xbb\xbf{}"],
                         ids=["list", "object", "list-newline", "bom-object"])
@pytest.mark.parametrize("path", [
    AZURE / "msal_token_cache.json", AZURE / "accessTokens.json",
    AZURE / "service_principal_entries.json", AZURE / "aksServicePrincipal.json",
    AZURE / "azureProfile.json", PS / "AzureRmContext.json", DOWNLOADS / "TokenCache.dat",
    HOME / ".azd" / "auth" / "msal" / "cache.json",
], ids=lambda p: p.name)
def test_an_empty_cache_is_no_credential(content: bytes, path: PurePath) -> None:
    assert judge(content, path) is None


def test_caches_without_secret_entries_are_none() -> None:
    for payload, path in [
        (payloads.msal_cache(empty_secrets=True), AZURE / "msal_token_cache.json"),
        (payloads.access_tokens(empty_secrets=True), AZURE / "accessTokens.json"),
        (lookalikes.adal_token_cache(2, empty_secrets=True), DOWNLOADS / "TokenCache.dat"),
        (lookalikes.adal_token_cache(0), REPO / "TokenCache.dat"),
    ]:
        assert judge(payload.data, path) is None, path


def test_redacted_tokens_are_no_secrets() -> None:
    payload = payloads.msal_cache()
    data = payload.data
    for secret in payload.secrets:
        data = data.replace(secret.encode(), b"REDACTED")
    assert judge(data, AZURE / "msal_token_cache.json") is None


# -- other vendors' files --------------------------------------------------------------------

LOOKALIKES: dict[str, tuple[Callable[[], Payload], str]] = {
    "google-oauth-installed": (lookalikes.google_oauth_client,
                               "client_secret_1234-abc.apps.googleusercontent.com.json"),
    "google-oauth-web": (partial(lookalikes.google_oauth_client, "web"), "client_secret.json"),
    "google-service-account": (lookalikes.google_service_account, "fake-project-1a2b3c.json"),
    "firebase-service-account": (partial(lookalikes.google_service_account, firebase=True),
                                 "serviceAccountKey.json"),
    "aws-credentials": (lookalikes.aws_credentials, "credentials"),
    "github-hosts": (lookalikes.gh_hosts, "hosts.yml"),
    "kubeconfig": (lookalikes.kubeconfig, "config"),
    "npmrc": (lookalikes.npmrc, ".npmrc"),
    "appsettings-placeholders": (lookalikes.appsettings_placeholders, "appsettings.json"),
    "local-settings-emulator": (lookalikes.local_settings_emulator, "local.settings.json"),
}
# Names an Azure rule once accepted any JSON under (the Google client secret matched the AKS
# service-principal rule), plus neutral names a download gets.
AZURE_NAMES = ["aksServicePrincipal.json", "acsServicePrincipal.json",
               "service_principal_entries.json", "accessTokens.json", "download", "notes.txt"]


@pytest.mark.parametrize("name", LOOKALIKES)
def test_other_vendors_files_are_never_azure_credentials(name: str) -> None:
    """Never a finding; under an Azure file's own name, at most malformed (that name promised
    a format the content does not have: a clear error, nothing deleted)."""
    make, real_name = LOOKALIKES[name]
    payload = make()
    for path in (DOWNLOADS / real_name, REPO / real_name, HOME / real_name,
                 *(DOWNLOADS / n for n in AZURE_NAMES), AZURE / "aksServicePrincipal.json"):
        named = bool(registry.by_name(path.parent, path.name))
        try:
            assert judge(payload.data, path, explicit=True) is None, path
        except Malformed as exc:
            assert named, path
            assert_no_secret(payload.secrets, str(exc))


def test_json_of_azure_shape_but_without_azure_ids_is_none() -> None:
    """The key names alone: no GUID subscription, client or tenant, no Entra ID authority."""
    docs = [
        b'{"my-subscription": {"client_secret": "s3cr3t-value", "service_principal": "app"}}',
        b'[{"client_id": "app", "tenant": "my tenant", "client_secret": "s3cr3t-value"}]',
        b'[{"_clientId": "app", "_authority": "https://auth.example.com/t",'
        b' "refreshToken": "r3fr3sh-value", "accessToken": "acc3ss-value"}]',
        b'[{"servicePrincipalId": "app", "accessToken": "s3cr3t-value"}]',
    ]
    for data in docs:
        for name in ("aksServicePrincipal.json", "service_principal_entries.json",
                     "accessTokens.json", "x.json"):
            assert judge(data, AZURE / name) is None, (name, data)


def test_an_msal_cache_of_another_authority_is_none() -> None:
    payload = payloads.msal_cache()
    data = payload.data.replace(b"login.microsoftonline.com", b"login.example.com")
    assert judge(data, AZURE / "msal_token_cache.json") is None
    b2c = payload.data.replace(b"login.microsoftonline.com", b"contoso.b2clogin.com")
    assert judge(b2c, AZURE / "msal_token_cache.json") is not None


# -- formats real files showed beyond the reference -----------------------------------------


def test_ansible_azure_credentials_in_the_cli_directory() -> None:
    payload = lookalikes.ansible_credentials()
    verdict = judge(payload.data, AZURE / "credentials")
    assert verdict is not None and verdict.kind == kinds.CLI_SERVICE_PRINCIPAL
    assert verdict.details["format"] == "ansible"
    assert [e["auth"] for e in verdict.details["entries"]] == ["secret"]
    assert_no_secret(payload.secrets, verdict.details)
    # the same name elsewhere is AWS's (or anyone's): not looked at
    assert judge(payload.data, HOME / ".aws" / "credentials") is None
    assert judge(payload.data, DOWNLOADS / "credentials") is None
    placeholder = lookalikes.ansible_credentials(secret="<your-secret>")
    assert judge(placeholder.data, AZURE / "credentials") is None
    with pytest.raises(Malformed, match="not an INI file"):
        judge(b"secret without a section\n", AZURE / "credentials")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-bom", "utf-16-le-bom", "utf-16-be"])
@pytest.mark.parametrize("name", ["azure-credentials.txt", "creds.xml", "credentials-backup"])
def test_ansible_credentials_renamed_or_re_encoded_are_found_by_content(name: str,
                                                                       encoding: str) -> None:
    payload = lookalikes.ansible_credentials()
    data = ENCODINGS[encoding](payload.data.decode())
    verdict = judge(data, DOWNLOADS / name)
    assert verdict is not None and verdict.kind == kinds.CLI_SERVICE_PRINCIPAL


def test_other_ini_files_with_client_ids_are_neither_found_nor_malformed() -> None:
    """rclone, Ansible for other clouds, MySQL option files: INI, not JSON, not Azure's."""
    for text in ("[drive]\ntype = drive\nclient_id = 123.apps.googleusercontent.com\n"
                 "client_secret = GOCSPX-abcdefghijklmnop\n",
                 "[default]\nclient_id=app\nsecret=s3cr3t-value-here\ntenant=my tenant\n"):
        assert judge(text.encode(), DOWNLOADS / "rclone.conf", explicit=True) is None
        assert judge(text.encode(), DOWNLOADS / "settings.txt") is None


def test_a_renamed_powershell_msal_cache_keeps_its_kind() -> None:
    """By content, PowerShell's MSAL cache differs from the CLI's only by its client id."""
    payload = payloads.ps_msal_cache()
    verdict = judge(payload.data, DOWNLOADS / "msal-cache-copy.json")
    assert verdict is not None and verdict.kind == kinds.POWERSHELL_CACHE
    assert verdict.details["file"] == "msal.cache"
    cli = judge(payloads.msal_cache().data, DOWNLOADS / "msal-cache-copy.json")
    assert cli is not None and cli.kind == kinds.CLI_TOKEN_CACHE


@pytest.mark.parametrize("name", ["AzureProfile.json", "azureprofile.json"])
def test_a_powershell_context_saved_as_azure_profile_json(name: str) -> None:
    """``Save-AzureRmContext -Path AzureProfile.json``: the CLI's old name, PowerShell's content."""
    payload = payloads.ps_context(sp_secret=False, token_cache=True)
    verdict = judge(payload.data, DOWNLOADS / name)
    assert verdict is not None and verdict.kind == kinds.POWERSHELL_CACHE
    assert verdict.details["token_caches"] == 1
    assert judge(payloads.ps_context(sp_secret=False).data, DOWNLOADS / name) is None


@pytest.mark.parametrize("name", ["AzureProfile.json", "profile.txt", "profile.xml", "profile"])
def test_an_old_saved_profile_is_found_under_its_name_and_renamed(name: str) -> None:
    """``Save-AzureRmProfile``'s single ``Context`` with a base64 ADAL cache string."""
    payload = lookalikes.old_azure_profile()
    verdict = judge(payload.data, DOWNLOADS / name)
    assert verdict is not None and verdict.kind == kinds.POWERSHELL_CACHE
    assert verdict.details["token_caches"] == 1
    assert_no_secret(payload.secrets, verdict.details)


# -- ADAL TokenCache.dat ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    DOWNLOADS / "TokenCache.dat", REPO / "TokenCache.dat", REPO / "bin" / "tokencache.DAT",
    PS / "TokenCache.dat", HOME / "TokenCache.dat",
], ids=["downloads", "repo", "repo-bin-case", "powershell-dir", "home"])
def test_adal_token_cache_is_found_by_name_anywhere(path: PurePath) -> None:
    payload = lookalikes.adal_token_cache(2)
    verdict = judge(payload.data, path)
    assert verdict is not None and verdict.kind == kinds.POWERSHELL_CACHE
    assert verdict.details["format"] == "adal"
    assert verdict.details["refresh_tokens"] == 2 and verdict.details["access_tokens"] == 2
    assert verdict.details["authorities"] == ["login.windows.net"]
    assert_no_secret(payload.secrets, verdict.details)


@pytest.mark.parametrize("name", ["cache.bin", "download", "TokenCache.dat.bak", "tc.txt"])
def test_adal_token_cache_is_found_by_content_when_named(name: str) -> None:
    payload = lookalikes.adal_token_cache()
    verdict = judge(payload.data, DOWNLOADS / name, explicit=True)
    assert verdict is not None and verdict.details["format"] == "adal"


def test_dpapi_token_cache_is_a_credential() -> None:
    payload = lookalikes.dpapi_token_cache()
    verdict = judge(payload.data, REPO / "TokenCache.dat")
    assert verdict is not None and verdict.details == {
        "file": "TokenCache.dat", "bytes": len(payload.data), "format": "dpapi"}


def test_token_cache_dat_of_other_content_counts_only_in_the_tools_directory() -> None:
    for data in (b"placeholder\n", b"\x00\x01\x02\x03" * 50, b"REDACTED"):
        assert judge(data, DOWNLOADS / "TokenCache.dat") is None
        verdict = judge(data, PS / "TokenCache.dat")
        assert verdict is not None and verdict.details["format"] == "opaque"


def test_adal_tokens_of_another_authority_are_none() -> None:
    payload = lookalikes.adal_token_cache(authority="https://adfs.example.com/adfs/")
    assert judge(payload.data, DOWNLOADS / "TokenCache.dat") is None


@pytest.mark.parametrize("cut", [9, 30, -5])
def test_a_cut_short_adal_cache_is_malformed(cut: int) -> None:
    data = lookalikes.adal_token_cache().data[:cut]
    with pytest.raises(Malformed, match="not an ADAL token cache") as info:
        judge(data, DOWNLOADS / "TokenCache.dat")
    assert "eyJ" not in str(info.value)


# -- encodings: UTF-8 BOM, UTF-16 LE/BE with and without BOM, a lying declaration --------------

ENCODINGS: dict[str, Callable[[str], bytes]] = {
    "utf-8": lambda t: t.encode(),
    "utf-8-bom": lambda t: t.encode("utf-8-sig"),
    "utf-16-le-bom": lambda t: b"\xff\xfe" + t.encode("utf-16-le"),
    "utf-16-be-bom": lambda t: b"\xfe\xff" + t.encode("utf-16-be"),
    "utf-16-le": lambda t: t.encode("utf-16-le"),
    "utf-16-be": lambda t: t.encode("utf-16-be"),
}
POSITIVES: dict[str, tuple[Callable[[], Payload], str, str]] = {
    "publishsettings": (payloads.publishsettings_v1, "Fake-Dev-credentials.publishsettings",
                        kinds.PUBLISHSETTINGS),
    "publish-profile": (payloads.publish_profile, "contoso-app.PublishSettings",
                        kinds.PUBLISH_PROFILE),
    "pubxml-user": (payloads.pubxml_user, "prod.pubxml.user", kinds.VS_PUBLISH_SECRET),
    "msal-cache": (payloads.msal_cache, "msal_token_cache.json", kinds.CLI_TOKEN_CACHE),
    "access-tokens": (payloads.access_tokens, "accessTokens.json", kinds.CLI_TOKEN_CACHE),
    "sp-entries": (payloads.sp_entries, "service_principal_entries.json",
                   kinds.CLI_SERVICE_PRINCIPAL),
    "aks-sp": (payloads.aks_sp, "aksServicePrincipal.json", kinds.CLI_SERVICE_PRINCIPAL),
    "ps-context": (payloads.ps_context, "AzureRmContext.json", kinds.POWERSHELL_CACHE),
}


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("positive", POSITIVES)
@pytest.mark.parametrize("rename", ["own-name", ".txt", ".xml", "no-extension"])
def test_re_encoded_and_renamed_copies_are_found(positive: str, encoding: str,
                                                 rename: str) -> None:
    """Windows PowerShell 5.1 writes UTF-16 and keeps ``encoding="utf-8"`` in the declaration:
    the byte-order mark (or the NUL pattern) decides, not the declaration."""
    make, name, kind = POSITIVES[positive]
    payload = make()
    data = ENCODINGS[encoding](payload.data.decode())
    stem = name.split(".")[0]
    file_name = {"own-name": name, ".txt": stem + ".txt", ".xml": stem + ".xml",
                 "no-extension": stem}[rename]
    parent = AZURE if positive in ("msal-cache", "access-tokens", "sp-entries", "aks-sp") else (
        PS if positive == "ps-context" else DOWNLOADS)
    verdict = judge(data, (parent if rename == "own-name" else DOWNLOADS) / file_name)
    assert verdict is not None, (positive, encoding, rename)
    assert verdict.kind == kind
    assert_no_secret(payload.secrets, verdict.details)


def test_a_utf16_document_keeps_its_utf8_declaration_and_still_parses() -> None:
    text = payloads.publish_profile().data.decode()
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    data = b"\xff\xfe" + text.encode("utf-16-le")
    verdict = judge(data, DOWNLOADS / "contoso-app.PublishSettings")
    assert verdict is not None and verdict.kind == kinds.PUBLISH_PROFILE


@pytest.mark.parametrize("encoding", ["utf-16-le-bom", "utf-16-be"])
def test_hostile_xml_in_utf16_is_still_refused(encoding: str) -> None:
    data = ENCODINGS[encoding](payloads.billion_laughs().decode())
    with pytest.raises(Malformed, match="hostile"):
        judge(data, DOWNLOADS / "laughs.publishsettings")


# -- a sniffed file with credential markers that does not parse -------------------------------


@pytest.mark.parametrize("data", [
    b'{"AccessToken": {"x": ',  # cut short
    b"<publishData><publishProfile userPWD='x'></publishData>",  # not well-formed
    b'// comment\n{"refreshToken": "abc"}'[10:] + b",,",  # trailing garbage
], ids=["json-cut", "xml-broken", "json-garbage"])
def test_a_sniffed_file_with_markers_that_does_not_parse_is_malformed(data: bytes) -> None:
    with pytest.raises(Malformed):
        judge(data, DOWNLOADS / "notes.txt")
