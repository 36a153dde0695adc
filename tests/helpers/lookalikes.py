"""Real-world shapes that are not Azure credentials, and ADAL's binary cache: generated now.

- Other vendors' credential files developers really have (Google OAuth client secrets, Google
  and Firebase service accounts, AWS, GitHub CLI, kubeconfig, npm), and Azure-adjacent files with
  no secret (``appsettings.json`` templates, ``local.settings.json`` for the storage emulator):
  credguard must report none of them.
- ADAL v3's ``TokenCache.dat`` (plaintext and DPAPI-wrapped), laid out as ADAL's
  ``TokenCache.Serialize()`` writes it (see ``credguard/detect/adal.py``).

Every value is random; each function returns a :class:`~helpers.payloads.Payload` naming the
secrets it embedded (so a test can check none reaches output).
"""

from __future__ import annotations

import base64
import json
import uuid
from secrets import token_bytes, token_hex, token_urlsafe

from cryptography.hazmat.primitives import serialization

from helpers.payloads import PS_CLIENT_ID, Payload, _jwt, _refresh_token, _rsa_key


def _pem_key() -> str:
    return _rsa_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


def google_oauth_client(flavour: str = "installed") -> Payload:
    """``client_secret_<id>.apps.googleusercontent.com.json`` as the Google console serves it."""
    secret = "GOCSPX-" + token_urlsafe(21)
    doc = {flavour: {
        "client_id": f"{token_hex(6)}-{token_hex(16)}.apps.googleusercontent.com",
        "project_id": "fake-project-123456",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_secret": secret,
        "redirect_uris": ["http://localhost"],
    }}
    return Payload(json.dumps(doc).encode(), (secret,))


def google_service_account(firebase: bool = False) -> Payload:
    """A Google Cloud (or Firebase Admin SDK) service-account key file."""
    key = _pem_key()
    email = ("firebase-adminsdk-abcde" if firebase else "deployer") + \
        "@fake-project.iam.gserviceaccount.com"
    doc = {
        "type": "service_account", "project_id": "fake-project",
        "private_key_id": token_hex(20), "private_key": key, "client_email": email,
        "client_id": str(int.from_bytes(token_bytes(8), "big")),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "universe_domain": "googleapis.com",
    }
    return Payload(json.dumps(doc, indent=2).encode(), (key.splitlines()[2],))


def aws_credentials() -> Payload:
    secret = token_urlsafe(30)
    text = (f"[default]\naws_access_key_id = AKIA{token_hex(8).upper()}\n"
            f"aws_secret_access_key = {secret}\n")
    return Payload(text.encode(), (secret,))


def gh_hosts() -> Payload:
    """GitHub CLI's ``~/.config/gh/hosts.yml``."""
    token = "gho_" + token_urlsafe(27)
    text = f"github.com:\n    user: dev\n    oauth_token: {token}\n    git_protocol: https\n"
    return Payload(text.encode(), (token,))


def kubeconfig() -> Payload:
    token = token_urlsafe(40)
    text = (
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://k8s.example:6443\n"
        "  name: dev\ncontexts:\n- context:\n    cluster: dev\n    user: dev\n  name: dev\n"
        f"current-context: dev\nusers:\n- name: dev\n  user:\n    token: {token}\n"
    )
    return Payload(text.encode(), (token,))


def npmrc() -> Payload:
    token = "npm_" + token_urlsafe(27)
    return Payload(f"//registry.npmjs.org/:_authToken={token}\n".encode(), (token,))


def appsettings_placeholders() -> Payload:
    """An ASP.NET ``appsettings.json`` template: every secret a placeholder."""
    doc = {
        "ConnectionStrings": {
            "Default": "Server=tcp:{server}.database.windows.net;Database={db};"
                       "User ID={user};Password={your_password};",
        },
        "AzureAd": {
            "Instance": "https://login.microsoftonline.com/", "TenantId": "<tenant-id>",
            "ClientId": "<client-id>", "ClientSecret": "<client-secret>",
        },
        "Logging": {"LogLevel": {"Default": "Information"}},
    }
    return Payload(json.dumps(doc, indent=2).encode(), ())


def local_settings_emulator() -> Payload:
    """An Azure Functions ``local.settings.json`` using the storage emulator."""
    doc = {"IsEncrypted": False, "Values": {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "FUNCTIONS_WORKER_RUNTIME": "dotnet-isolated",
    }}
    return Payload(json.dumps(doc, indent=2).encode(), ())


# ---- ADAL TokenCache.dat -------------------------------------------------------------------


def _dotnet_string(text: str) -> bytes:
    """``BinaryWriter.Write(string)``: a 7-bit variable-length byte count, then UTF-8."""
    raw = text.encode()
    size, prefix = len(raw), bytearray()
    while True:
        byte = size & 0x7F
        size >>= 7
        prefix.append(byte | (0x80 if size else 0))
        if not size:
            return bytes(prefix) + raw


def adal_token_cache(
    items: int = 1, *, authority: str = "https://login.windows.net/{tenant}/",
    empty_secrets: bool = False,
) -> Payload:
    """A plaintext ADAL v3 cache (AzureRM PowerShell on Linux/macOS, old SDKs)."""
    body, found = bytearray(), []
    for _ in range(items):
        tenant = str(uuid.uuid4())
        auth = authority.format(tenant=tenant)
        key = f"{auth}:::https://management.core.windows.net/:::{PS_CLIENT_ID}:::0"
        at, rt = ("", "") if empty_secrets else (_jwt(), _refresh_token())
        found += [s for s in (at, rt) if s]
        value = json.dumps({
            "RefreshToken": rt,
            "ResourceInResponse": "https://management.core.windows.net/",
            "Result": {"AccessToken": at, "AccessTokenType": "Bearer",
                       "ExpiresOn": {"DateTime": "/Date(1700000000000)/", "OffsetMinutes": 0},
                       "TenantId": tenant, "UserInfo": {"DisplayableId": "user@contoso.example"}},
            "UserAssertionHash": None,
        }).replace("/", "\\/")  # DataContractJsonSerializer escapes every slash
        body += _dotnet_string(key) + _dotnet_string(value)
    data = b"\x03\x00\x00\x00" + items.to_bytes(4, "little") + bytes(body)
    return Payload(data, tuple(found))


def dpapi_token_cache() -> Payload:
    """AzureRM on Windows: the cache wrapped by DPAPI (only its header is plain)."""
    blob = bytes.fromhex("01000000d08c9ddf0115d1118c7a00c04fc297eb") + token_bytes(1200)
    return Payload(blob, (base64.b64encode(blob[40:100]).decode(),))


def ansible_credentials(*, secret: str | None = None) -> Payload:
    """Ansible azure_rm's ``~/.azure/credentials``: a service principal's secret in INI."""
    value = token_urlsafe(24) if secret is None else secret
    text = (f"[default]\nsubscription_id={uuid.uuid4()}\nclient_id={uuid.uuid4()}\n"
            f"secret={value}\ntenant={uuid.uuid4()}\n")
    return Payload(text.encode(), (value,) if secret is None else ())


def old_azure_profile() -> Payload:
    """The older ``Save-AzureRmProfile`` output: one ``Context`` whose ``TokenCache`` is a
    base64 string of an ADAL cache (real files are saved as ``AzureProfile.json``)."""
    tenant, sub = str(uuid.uuid4()), str(uuid.uuid4())
    cache = base64.b64encode(adal_token_cache().data).decode()
    doc = {"Environments": {}, "Context": {
        "Account": {"Id": "user@contoso.example", "Type": 1,
                    "Properties": {"Tenants": tenant, "Subscriptions": sub}},
        "Subscription": {"Id": sub, "Name": "Fake-Dev", "Environment": "AzureCloud",
                         "Account": "user@contoso.example", "State": "Enabled",
                         "Properties": {"Tenants": tenant}},
        "Environment": {"Name": "AzureCloud", "OnPremise": False, "Endpoints": {
            "ActiveDirectory": "https://login.microsoftonline.com/"}},
        "Tenant": {"Id": tenant, "Domain": "contoso.example"},
        "TokenCache": cache,
    }}
    return Payload(json.dumps(doc, indent=2).encode("utf-8-sig"), (cache[40:120],))
