"""The stable kind ids and what credguard tells users about each.

Kind ids appear in JSON/SARIF output, configuration and allowlists: never rename one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Kind(StrEnum):
    """A kind of credential artifact; the value is its stable, user-visible id."""

    PUBLISHSETTINGS = "azure-publishsettings"
    PUBLISH_PROFILE = "azure-publish-profile"
    VS_PUBLISH_SECRET = "vs-publish-profile-secret"  # noqa: S105 - a kind id, not a password
    CLI_TOKEN_CACHE = "azure-cli-token-cache"  # noqa: S105 - a kind id, not a token
    CLI_SERVICE_PRINCIPAL = "azure-cli-service-principal"
    CLI_LEGACY_CERT = "azure-cli-legacy-certificate"
    POWERSHELL_CACHE = "azure-powershell-cache"
    AZD_CACHE = "azd-credential-cache"


class KindInfo(NamedTuple):
    """User-facing facts about a kind: one-line title, why it matters, and how to revoke it.
    (Value classes on the ``check`` path are NamedTuples: a frozen dataclass costs about 0.5 ms
    to create, and typing is loaded there anyway.)"""

    kind: Kind
    title: str
    risk: str
    revoke: str


# The short names the detector families use.
PUBLISHSETTINGS = Kind.PUBLISHSETTINGS
PUBLISH_PROFILE = Kind.PUBLISH_PROFILE
VS_PUBLISH_SECRET = Kind.VS_PUBLISH_SECRET
CLI_TOKEN_CACHE = Kind.CLI_TOKEN_CACHE
CLI_SERVICE_PRINCIPAL = Kind.CLI_SERVICE_PRINCIPAL
CLI_LEGACY_CERT = Kind.CLI_LEGACY_CERT
POWERSHELL_CACHE = Kind.POWERSHELL_CACHE
AZD_CACHE = Kind.AZD_CACHE

_INFO = (
    KindInfo(
        PUBLISHSETTINGS,
        "Classic Azure publish settings (subscription management certificate)",
        "The unprotected management certificate controls every listed subscription.",
        "Delete the management certificate from the subscription (Azure portal, classic "
        "management certificates), then delete this file.",
    ),
    KindInfo(
        PUBLISH_PROFILE,
        "App Service publish profile (plaintext deployment password)",
        "userPWD is the app's deployment password in plaintext; connection strings may hold "
        "database passwords.",
        "Reset the publish profile: 'az webapp deployment list-publishing-profiles' after "
        "'Reset publish profile' in the portal (or 'az resource invoke-action --action "
        "newpassword'), and rotate any database password it lists.",
    ),
    KindInfo(
        VS_PUBLISH_SECRET,
        "Visual Studio publish profile with a password or connection string",
        "The profile stores a deployment password (DPAPI-encrypted or plaintext) or plaintext "
        "connection strings next to the project, where it is easily committed.",
        "Reset the App Service publish profile and rotate the connection-string passwords; keep "
        "*.pubxml.user out of source control.",
    ),
    KindInfo(
        CLI_TOKEN_CACHE,
        "Azure CLI token cache in plaintext",
        "Refresh tokens (and, in accessTokens.json, service-principal secrets) let anyone "
        "act as the signed-in identity.",
        "Run 'az logout' (or 'az account clear') and revoke sessions for the account "
        "(Entra ID: revoke sessions); rotate any service-principal secret it held.",
    ),
    KindInfo(
        CLI_SERVICE_PRINCIPAL,
        "Azure CLI service-principal secret",
        "A service principal's client secret or certificate path is stored in plaintext.",
        "Rotate the service principal's credential ('az ad sp credential reset') and run "
        "'az logout' for it.",
    ),
    KindInfo(
        CLI_LEGACY_CERT,
        "Old Azure CLI profile holding a management certificate",
        "The classic (node) Azure CLI stored a management certificate's private key in "
        "azureProfile.json.",
        "Delete the management certificate from the subscription, then remove the key from "
        "this file.",
    ),
    KindInfo(
        POWERSHELL_CACHE,
        "Azure PowerShell context or token cache holding secrets",
        "Azure PowerShell kept tokens or service-principal secrets in plaintext.",
        "Run 'Disconnect-AzAccount' / 'Clear-AzContext' and rotate any service-principal "
        "secret it held.",
    ),
    KindInfo(
        AZD_CACHE,
        "Azure Developer CLI credential cache",
        "azd keeps MSAL tokens or client credentials in plaintext on Linux and macOS.",
        "Run 'azd auth logout' and rotate any client secret it held.",
    ),
)

# Keyed by kind id (a Kind is its id), so a kind read back from a vault record or JSON finds it too.
KINDS: dict[str, KindInfo] = {info.kind: info for info in _INFO}
