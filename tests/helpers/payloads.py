"""Credential-shaped test payloads, generated with fresh random values at run time.

Nothing credential-shaped is committed: every function builds its document now, and returns a
:class:`Payload` naming every secret string it embedded, so a test can assert that none of them
reaches details, messages, logs or output. Shapes follow the real files (see the detectors'
docstrings); all values are fake.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import string
import uuid
from dataclasses import dataclass
from pathlib import Path
from secrets import choice, token_bytes, token_urlsafe
from typing import Any
from xml.sax.saxutils import quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"  # Azure CLI (and azd): public ids
PS_CLIENT_ID = "1950a258-227b-4e31-a9cf-717495945fc2"  # Azure PowerShell
DPAPI_PREFIX = "AQAAANCMnd8BFdERjHoAwE/Cl+s"  # every DPAPI blob's base64 starts like this
MSBUILD_NS = "http://schemas.microsoft.com/developer/msbuild/2003"


@dataclass(frozen=True)
class Payload:
    """A file's bytes and every secret string embedded in them."""

    data: bytes
    secrets: tuple[str, ...]


# ---- random values -------------------------------------------------------------------------


def _guid() -> str:
    return str(uuid.uuid4())


def _alnum(n: int) -> str:
    return "".join(choice(string.ascii_letters + string.digits) for _ in range(n))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _jwt() -> str:
    """A token shaped like a JWT (header.payload.signature), random inside."""
    header = _b64url(b'{"typ":"JWT","alg":"RS256"}')
    return f"{header}.{_b64url(token_bytes(180))}.{_b64url(token_bytes(256))}"


def _refresh_token() -> str:
    return "1.A" + token_urlsafe(300)


@functools.cache
def _rsa_key() -> rsa.RSAPrivateKey:
    """One RSA 2048 key per test process: key generation is the slow part."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(cn: str, days: int) -> x509.Certificate:
    key = _rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def pkcs12_cert(cn: str = "Windows Azure Tools", days: int = 365) -> bytes:
    """A DER PKCS#12 without password: an RSA 2048 key and a fresh self-signed certificate."""
    cert = _certificate(cn, days)
    enc = serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(None, _rsa_key(), cert, None, enc)


def locked_pkcs12() -> bytes:
    """A DER PKCS#12 under a password credguard does not know: a certificate it cannot open."""
    enc = serialization.BestAvailableEncryption(token_urlsafe(12).encode())
    return pkcs12.serialize_key_and_certificates(None, _rsa_key(), _certificate("Locked", 30),
                                                 None, enc)


def _management_cert(cert_ok: bool) -> str:
    """Base64 as in ManagementCertificate; ``cert_ok=False`` gives a PKCS#12 that does not open
    (password-protected): still DER, still a certificate."""
    raw = pkcs12_cert() if cert_ok else locked_pkcs12()
    return base64.b64encode(raw).decode()


def _pem_line(pem: str) -> str:
    """A single base64 line of a PEM: findable even where JSON escapes the newlines."""
    return pem.splitlines()[2]


def _attrs(values: dict[str, str]) -> str:
    return " ".join(f"{key}={quoteattr(value)}" for key, value in values.items())


def _connection_string(password: str) -> str:
    return (
        "Data Source=tcp:contoso-sql.database.windows.net,1433;Initial Catalog=contosodb;"
        f"User Id=dbadmin@contoso-sql;Password={password}"
    )


# ---- classic .publishsettings --------------------------------------------------------------


def publishsettings_v1(
    n_subs: int = 1,
    cert_ok: bool = True,
    *,
    method: str | None = "AzureServiceManagementAPI",
    empty_cert: bool = False,
    cert_text: str | None = None,
    url: str = "https://management.core.windows.net/",
) -> Payload:
    """Schema 1: one certificate on the PublishProfile, shared by its subscriptions.

    ``cert_text`` puts that text where the certificate goes (a placeholder: no secret)."""
    cert = "" if empty_cert else _management_cert(cert_ok)
    if cert_text is not None:
        cert = cert_text
    profile = {"Url": url, "ManagementCertificate": cert}
    if method is not None:
        profile = {"PublishMethod": method, **profile}
    subs = "".join(
        f"\n    <Subscription {_attrs({'Id': _guid(), 'Name': f'Fake-Dev-{i}'})} />"
        for i in range(1, n_subs + 1)
    )
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n<PublishData>\n'
        f"  <PublishProfile {_attrs(profile)}>{subs}\n  </PublishProfile>\n</PublishData>\n"
    )
    return Payload(xml.encode(), (cert,) if cert and cert_text is None else ())


def publishsettings_v2(
    n_subs: int = 2,
    cert_ok: bool = True,
    *,
    method: str | None = "AzureServiceManagementAPI",
    empty_cert: bool = False,
    endpoint: str = "https://management.core.windows.net/",
    cert_text: str | None = None,
) -> Payload:
    """Schema 2.0: every Subscription carries its own certificate and management URL.

    ``cert_text`` puts that text where each certificate goes (a placeholder: no secret)."""
    certs = ["" if empty_cert else _management_cert(cert_ok) for _ in range(n_subs)]
    if cert_text is not None:
        certs = [cert_text] * n_subs
    subs = "".join(
        "\n    <Subscription "
        + _attrs(
            {
                "ServiceManagementUrl": endpoint,
                "Id": _guid(),
                "Name": f"Fake-Dev-{i}",
                "ManagementCertificate": cert,
            }
        )
        + " />"
        for i, cert in enumerate(certs, 1)
    )
    profile = {"SchemaVersion": "2.0"}
    if method is not None:
        profile["PublishMethod"] = method
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n<PublishData>\n'
        f"  <PublishProfile {_attrs(profile)}>{subs}\n  </PublishProfile>\n</PublishData>\n"
    )
    return Payload(xml.encode(), tuple(c for c in certs if c) if cert_text is None else ())


# ---- App Service publish profile -----------------------------------------------------------

_FTP_HOST = "waws-prod-am2-123.ftp.azurewebsites.windows.net"


def _profile_attrs(app: str, method: str) -> dict[str, str]:
    """Name, method, URL and user of one publishProfile, as the portal writes them."""
    scm = f"{app}.scm.azurewebsites.net:443"
    ftp_user = f"{app}\\${app}"
    known = {
        "MSDeploy": ("Web Deploy", "MSDeploy", scm, f"${app}"),
        "FTP": ("FTP", "FTP", f"ftps://{_FTP_HOST}/site/wwwroot", ftp_user),
        "ZipDeploy": ("Zip Deploy", "ZipDeploy", scm, f"${app}"),
        "ReadOnly - FTP": (
            "ReadOnly - FTP",
            "FTP",
            f"ftps://{_FTP_HOST.replace('123', '123dr')}/site/wwwroot",
            ftp_user,
        ),
    }
    label, publish_method, url, user = known.get(method, (method, method, scm, f"${app}"))
    attrs = {"profileName": f"{app} - {label}", "publishMethod": publish_method, "publishUrl": url}
    if publish_method == "MSDeploy":
        attrs["msdeploySite"] = app
    if publish_method == "FTP":
        attrs["ftpPassiveMode"] = "True"
    return {**attrs, "userName": user}


def publish_profile(
    app: str = "contoso-app",
    methods: tuple[str, ...] = ("MSDeploy", "FTP", "ZipDeploy"),
    db_password: bool = False,
    bom: bool = False,
    crlf: bool = False,
    declaration: bool = True,
    one_line: bool = True,
    comment_secret: bool = False,
    *,
    user_password: bool = True,
    password: str | None = None,
    hoster: str | None = None,
    urls: dict[str, str] | None = None,
) -> Payload:
    """An App Service publish profile (``<app>.PublishSettings``) as the portal serves it.

    ``password`` puts that text in every ``userPWD`` (a placeholder: no secret); ``hoster``
    makes it another hoster's Web Deploy profile (its host names instead of Azure's);
    ``urls`` gives the ``publishUrl`` of the methods it names (a local test server's, a plain
    ``ftp://`` one)."""
    pwd = _alnum(60) if user_password else ""
    if password is not None:
        pwd = password
    db_pwd = _alnum(24)
    conn = _connection_string(db_pwd) if db_password else ""
    panel_pwd = _alnum(16)
    sep = "\r\n" if crlf else "\n"
    inner = "" if one_line else sep + "  "
    common = {
        "userPWD": pwd,
        "destinationAppUrl": f"http://{app}.azurewebsites.net",
        "SQLServerDBConnectionString": conn,
        "mySQLDBConnectionString": "",
        "hostingProviderForumLink": "",
        "controlPanelLink": "https://portal.azure.com",
        "webSystem": "WebSites",
    }
    moved = {m: {"publishUrl": url} for m, url in (urls or {}).items()}
    profiles = [
        f"<publishProfile {_attrs({**_profile_attrs(app, m), **moved.get(m, {}), **common})}>"
        "<databases /></publishProfile>"
        for m in methods
    ]
    if hoster is not None:
        profiles = [p.replace("azurewebsites.windows.net", hoster)
                    .replace("azurewebsites.net", hoster)
                    .replace("portal.azure.com", "cp." + hoster) for p in profiles]
    comment = (
        f"<!-- Hoster control panel: https://cp.hoster.example user admin password {panel_pwd} -->"
    )
    body = "<publishData>" + (inner + comment if comment_secret else "")
    body += "".join(inner + p for p in profiles) + ("" if one_line else sep) + "</publishData>"
    text = ('<?xml version="1.0" encoding="utf-8"?>' + sep if declaration else "") + body + sep
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    found = [pwd] if pwd and password is None else []
    found += [db_pwd, conn] if db_password else []
    found += [panel_pwd] if comment_secret else []
    return Payload(data, tuple(found))


# ---- Visual Studio publish profiles --------------------------------------------------------


def _project(body: str, namespace: bool) -> bytes:
    ns = f' ToolsVersion="4.0" xmlns="{MSBUILD_NS}"' if namespace else ""
    return f'<?xml version="1.0" encoding="utf-8"?>\n<Project{ns}>\n{body}</Project>\n'.encode()


def pubxml(
    password: bool = True,
    *,
    app: str = "contoso-app",
    namespace: bool = False,
    connection_strings: bool = False,
) -> Payload:
    """``Properties/PublishProfiles/<name>.pubxml``, optionally with a plaintext Password."""
    sub, pwd, db_pwd = _guid(), _alnum(60), _alnum(20)
    props = {
        "WebPublishMethod": "MSDeploy",
        "ResourceId": f"/subscriptions/{sub}/resourceGroups/contoso-rg/providers/"
        f"Microsoft.Web/sites/{app}",
        "PublishProvider": "AzureWebSite",
        "LastUsedBuildConfiguration": "Release",
        "SiteUrlToLaunchAfterPublish": f"https://{app}.azurewebsites.net",
        "MSDeployServiceURL": f"{app}.scm.azurewebsites.net:443",
        "DeployIisAppPath": app,
        "MSDeployPublishMethod": "WMSVC",
        "UserName": f"${app}",
        "Password": pwd if password else "",
        "_SavePWD": "true" if password else "false",
    }
    body = "  <PropertyGroup>\n"
    body += "".join(f"    <{k}>{v}</{k}>\n" if v else f"    <{k} />\n" for k, v in props.items())
    body += "  </PropertyGroup>\n"
    conn = _connection_string(db_pwd)
    if connection_strings:
        body += (
            '  <ItemGroup>\n    <MSDeployParameterValue Include="DefaultConnection-Web.config '
            f'Connection String">\n      <ParameterValue>{conn}</ParameterValue>\n'
            "    </MSDeployParameterValue>\n  </ItemGroup>\n"
        )
    found = ([pwd] if password else []) + ([db_pwd, conn] if connection_strings else [])
    return Payload(_project(body, namespace), tuple(found))


def pubxml_user(
    encrypted: bool = True, connection_strings: bool = False, *, namespace: bool = True
) -> Payload:
    """``<name>.pubxml.user``: a DPAPI ``EncryptedPassword`` and/or plaintext connection strings."""
    blob = DPAPI_PREFIX + base64.b64encode(token_bytes(230)).decode()
    db_pwd = _alnum(20)
    conn = _connection_string(db_pwd)
    body = "  <PropertyGroup>\n    <TimeStampOfAssociatedLegacyPublishXmlFile />\n"
    body += f"    <EncryptedPassword>{blob if encrypted else ''}</EncryptedPassword>\n"
    body += "    <History>True|2024-01-02T03:04:05.0000000Z;</History>\n  </PropertyGroup>\n"
    if connection_strings:
        body += (
            '  <ItemGroup>\n    <DestinationConnectionStrings Include="DefaultConnection">\n'
            f"      <Value>{conn}</Value>\n    </DestinationConnectionStrings>\n  </ItemGroup>\n"
        )
    found = ([blob] if encrypted else []) + ([db_pwd, conn] if connection_strings else [])
    return Payload(_project(body, namespace), tuple(found))


# ---- MSAL caches ---------------------------------------------------------------------------


def _msal_doc(n_accounts: int, client_id: str, empty: bool) -> tuple[dict[str, Any], list[str]]:
    """An MSAL cache with an access, refresh and ID token per account, and their secrets."""
    env = "login.microsoftonline.com"
    doc: dict[str, dict[str, Any]] = {
        name: {} for name in ("AccessToken", "RefreshToken", "IdToken", "Account")
    }
    found: list[str] = []
    for i in range(n_accounts):
        uid, tenant = _guid(), _guid()
        home = f"{uid}.{tenant}"
        at, rt, idt = ("", "", "") if empty else (_jwt(), _refresh_token(), _jwt())
        found += [s for s in (at, rt, idt) if s]
        common = {"home_account_id": home, "environment": env, "client_id": client_id}
        scope = "https://management.core.windows.net//user_impersonation"
        doc["AccessToken"][f"{home}-{env}-accesstoken-{client_id}-{tenant}-{scope}"] = {
            "credential_type": "AccessToken",
            "secret": at,
            **common,
            "target": scope,
            "realm": tenant,
            "token_type": "Bearer",
            "cached_at": "1700000000",
            "expires_on": "1700003599",
            "extended_expires_on": "1700003599",
        }
        doc["RefreshToken"][f"{home}-{env}-refreshtoken-{client_id}--"] = {
            "credential_type": "RefreshToken",
            "secret": rt,
            **common,
            "target": scope,
            "last_modification_time": "1700000000",
            "family_id": "1",
        }
        doc["IdToken"][f"{home}-{env}-idtoken-{client_id}-{tenant}-"] = {
            "credential_type": "IdToken",
            "secret": idt,
            **common,
            "realm": tenant,
        }
        doc["Account"][f"{home}-{env}-{tenant}"] = {
            "home_account_id": home,
            "environment": env,
            "realm": tenant,
            "local_account_id": uid,
            "username": f"user{i}@contoso.example",
            "authority_type": "MSSTS",
            "account_source": "authorization_code",
        }
    doc["AppMetadata"] = {
        f"appmetadata-{env}-{client_id}": {
            "client_id": client_id,
            "environment": env,
            "family_id": "1",
        }
    }
    return doc, found


def msal_cache(n_accounts: int = 1, *, empty_secrets: bool = False) -> Payload:
    """The Azure CLI's plaintext ``msal_token_cache.json``."""
    doc, found = _msal_doc(n_accounts, CLI_CLIENT_ID, empty_secrets)
    return Payload(json.dumps(doc, indent=4).encode(), tuple(found))


def ps_msal_cache(*, empty_secrets: bool = False) -> Payload:
    """Azure PowerShell's shared ``.IdentityService/msal.cache`` in plaintext."""
    doc, found = _msal_doc(1, PS_CLIENT_ID, empty_secrets)
    return Payload(json.dumps(doc).encode(), tuple(found))


def azd_msal_cache(*, wrapped: bool = False, empty_secrets: bool = False) -> Payload:
    """azd's ``auth/msal/cache*.json``; ``wrapped`` maps a partition key to the cache."""
    doc, found = _msal_doc(1, CLI_CLIENT_ID, empty_secrets)
    return Payload(json.dumps({"": doc} if wrapped else doc).encode(), tuple(found))


# ---- Azure CLI JSON files ------------------------------------------------------------------


def access_tokens(service_principal: bool = False, *, empty_secrets: bool = False) -> Payload:
    """Legacy ADAL ``accessTokens.json``: a user's tokens, or a service principal's secret."""
    tenant = _guid()
    if service_principal:
        secret = "" if empty_secrets else token_urlsafe(30)
        entry: dict[str, Any] = {
            "servicePrincipalId": _guid(),
            "servicePrincipalTenant": tenant,
            "accessToken": secret,
        }
        return Payload(json.dumps([entry], indent=2).encode(), (secret,) if secret else ())
    at, rt = ("", "") if empty_secrets else (_jwt(), _refresh_token())
    entry = {
        "tokenType": "Bearer",
        "expiresIn": 3599,
        "expiresOn": "2019-05-01 12:00:00.000000",
        "resource": "https://management.core.windows.net/",
        "accessToken": at,
        "refreshToken": rt,
        "oid": _guid(),
        "userId": "user@contoso.example",
        "isMRRT": True,
        "_clientId": CLI_CLIENT_ID,
        "_authority": f"https://login.microsoftonline.com/{tenant}",
    }
    return Payload(json.dumps([entry], indent=2).encode(), tuple(s for s in (at, rt) if s))


def sp_entries(certificate: bool = False, *, empty_secrets: bool = False) -> Payload:
    """``service_principal_entries.json``: a client secret, or a certificate path."""
    entry: dict[str, Any] = {"client_id": _guid(), "tenant": _guid()}
    if certificate:
        entry["certificate"] = "/home/dev/.azure/sp-cert.pem"
        return Payload(json.dumps([entry]).encode(), ())
    secret = "" if empty_secrets else _alnum(8) + "~" + token_urlsafe(24)
    entry["client_secret"] = secret
    return Payload(json.dumps([entry]).encode(), (secret,) if secret else ())


def aks_sp(*, empty_secrets: bool = False) -> Payload:
    """``aksServicePrincipal.json``: ``{<subscription>: {client_secret, service_principal}}``."""
    secret = "" if empty_secrets else token_urlsafe(32)
    doc = {_guid(): {"client_secret": secret, "service_principal": _guid()}}
    return Payload(json.dumps(doc).encode(), (secret,) if secret else ())


def _pem_pair() -> tuple[str, str]:
    key = _rsa_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    cert = _certificate("Windows Azure Tools", 365).public_bytes(serialization.Encoding.PEM)
    return key.decode(), cert.decode()


def legacy_azure_profile(*, empty_key: bool = False) -> Payload:
    """The old node CLI's ``azureProfile.json`` with a management certificate's PEM key."""
    key, cert = _pem_pair()
    if empty_key:
        key = ""
    sub = {
        "id": _guid(),
        "name": "Fake-Dev",
        "managementEndpointUrl": "https://management.core.windows.net",
        "registeredProviders": [],
        "managementCertificate": {"key": key, "cert": cert},
        "isDefault": True,
        "environmentName": "AzureCloud",
    }
    doc = {"environments": [], "subscriptions": [sub]}
    found = [cert, _pem_line(cert)] + ([key, _pem_line(key)] if key else [])
    return Payload(json.dumps(doc, indent=2).encode(), tuple(found))


def modern_azure_profile() -> Payload:
    """Today's ``azureProfile.json`` (UTF-8 with BOM, as the CLI writes it): no secret."""
    tenant = _guid()
    sub = {
        "id": _guid(),
        "name": "Fake-Dev",
        "state": "Enabled",
        "user": {"name": "user@contoso.example", "type": "user"},
        "isDefault": True,
        "tenantId": tenant,
        "environmentName": "AzureCloud",
        "homeTenantId": tenant,
        "managedByTenants": [],
    }
    doc = {"installationId": _guid(), "subscriptions": [sub]}
    return Payload(b"\xef\xbb\xbf" + json.dumps(doc, indent=2).encode(), ())


# ---- Azure PowerShell and azd --------------------------------------------------------------


def ps_context(sp_secret: bool = True, *, token_cache: bool = False) -> Payload:
    """``~/.Azure/AzureRmContext.json``: a service principal's secret and/or a token cache.

    With neither, a modern context that holds no secret (a negative).
    """
    tenant, sub, app = _guid(), _guid(), _guid()
    secret = token_urlsafe(30) if sp_secret else ""
    cache = base64.b64encode(token_bytes(400)).decode() if token_cache else None
    ext = {"Tenants": tenant, "Subscriptions": sub}
    if sp_secret:
        ext["ServicePrincipalSecret"] = secret
    account = {
        "Id": app if sp_secret else "user@contoso.example",
        "Credential": None,
        "Type": "ServicePrincipal" if sp_secret else "User",
        "TenantMap": {},
        "ExtendedProperties": ext,
    }
    ctx = {
        "Account": account,
        "Tenant": {"Id": tenant, "Directory": None, "IsHome": True, "ExtendedProperties": {}},
        "Subscription": {
            "Id": sub,
            "Name": "Fake-Dev",
            "State": "Enabled",
            "ExtendedProperties": {"Tenants": tenant},
        },
        "Environment": {"Name": "AzureCloud", "Type": "Discovered"},
        "VersionProfile": None,
        "TokenCache": {"CacheData": cache},
        "ExtendedProperties": {},
    }
    key = f"Fake-Dev ({sub}) - {tenant} - {account['Id']}"
    doc = {
        "DefaultContextKey": key,
        "EnvironmentTable": {},
        "Contexts": {key: ctx},
        "ExtendedProperties": {},
    }
    found = [s for s in (secret, cache) if s]
    return Payload(json.dumps(doc, indent=2).encode(), tuple(found))


def azd_cred(*, kind: str = "secret") -> Payload:
    """azd's ``auth/cred<tenant>.<client>.json``.

    ``kind``: ``secret``, ``certificate``, ``federated-token``, or ``federated-auth`` (a token
    provider's name only: no secret, a negative).
    """
    if kind == "federated-auth":
        return Payload(json.dumps({"federatedAuth": {"tokenProvider": "github"}}).encode(), ())
    fields = {
        "secret": "clientSecret",
        "certificate": "clientCertificate",
        "federated-token": "federatedToken",
    }
    if kind == "certificate":
        secret = base64.b64encode(pkcs12_cert()).decode()
    else:
        secret = token_urlsafe(30) if kind == "secret" else _jwt()
    return Payload(json.dumps({fields[kind]: secret}).encode(), (secret,))


# ---- hostile and harmless documents --------------------------------------------------------


def billion_laughs() -> bytes:
    """The classic exponential entity expansion, wrapped as a publish settings file."""
    lines = ['<?xml version="1.0"?>', "<!DOCTYPE PublishData [", '  <!ENTITY lol "lol">']
    lines += [
        f'  <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    ]
    lines += [
        "]>",
        '<PublishData><PublishProfile PublishMethod="AzureServiceManagementAPI" '
        'ManagementCertificate="&lol9;" /></PublishData>',
    ]
    return "\n".join(lines).encode()


def xxe(target_path: str | Path) -> bytes:
    """A publish settings file whose certificate is an external entity naming a local file."""
    uri = Path(target_path).resolve().as_uri()
    return (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE PublishData [<!ENTITY xxe SYSTEM "{uri}">]>\n'
        '<PublishData><PublishProfile PublishMethod="AzureServiceManagementAPI" '
        'ManagementCertificate="&xxe;"><Subscription Id="x" Name="&xxe;" />'
        "</PublishProfile></PublishData>\n"
    ).encode()


def mentions_only() -> bytes:
    """Prose that names every marker and file but holds no credential: never a finding."""
    return (
        b"Notes on Azure credential files\n\n"
        b"A classic .publishsettings file has a PublishData root whose PublishProfile "
        b'(PublishMethod="AzureServiceManagementAPI") carries a ManagementCertificate. App '
        b"Service publish profiles use publishData/publishProfile with userPWD. Visual Studio "
        b"keeps <Project> files with EncryptedPassword. The Azure CLI keeps "
        b"msal_token_cache.json (RefreshToken, AccessToken), service_principal_entries.json "
        b"(client_secret) and, in the old CLI, managementCertificate in azureProfile.json.\n"
    )
