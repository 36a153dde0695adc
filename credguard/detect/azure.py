"""Azure's own identifiers and host names: what makes a document Azure's and not another
vendor's look-alike.

A key name alone (``client_secret``, ``userPWD``) is shared with Google, AWS, other hosters and
hand-made configs, so every detector also requires Azure structure: GUID tenant, client and
subscription ids, an Entra ID authority host, an App Service or Service Management host.
"""

from __future__ import annotations

import re

from credguard.detect import xmldoc

# The first-party client ids of the tools (public values, in every token they request).
AZURE_CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"  # also azd's
POWERSHELL_CLIENT_ID = "1950a258-227b-4e31-a9cf-717495945fc2"
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# Entra ID (Azure AD) authorities in the public and sovereign clouds, and the hosts B2C / CIAM
# tenants get.
AUTHORITY_HOSTS = frozenset({
    "login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net",
    "login.microsoftonline.us", "login.usgovcloudapi.net", "login-us.microsoftonline.com",
    "login.chinacloudapi.cn", "login.partner.microsoftonline.cn", "login.microsoftonline.de",
    "login.windows-ppe.net",
})
_AUTHORITY_SUFFIXES = (".b2clogin.com", ".ciamlogin.com")
# App Service publishing and site hosts (public, China, US Government, Germany, App Service
# Environments), and the classic Service Management endpoints.
APP_SERVICE_SUFFIXES = (
    ".azurewebsites.net", ".azurewebsites.windows.net", ".chinacloudsites.cn",
    ".chinacloudsites.chinacloudapi.cn", ".azurewebsites.us", ".usgovcloudapi.net",
    ".azurewebsites.de", ".appserviceenvironment.net", ".appserviceenvironment.us",
)
PORTAL_HOSTS = frozenset({
    "windows.azure.com", "portal.azure.com", "manage.windowsazure.com", "portal.azure.cn",
    "portal.azure.us", "manage.windowsazure.cn", "manage.windowsazure.us",
})
MANAGEMENT_HOSTS = frozenset({
    "management.core.windows.net", "management.core.chinacloudapi.cn",
    "management.core.usgovcloudapi.net", "management.core.cloudapi.de",
    "management.azure.com",
})


def is_guid(value: object) -> bool:
    """Whether ``value`` is a string holding exactly one GUID (braces allowed)."""
    return isinstance(value, str) and _GUID.fullmatch(value.strip().strip("{}")) is not None


def host_of(value: object) -> str:
    """The lower-cased host of a URL, ``host:port`` or bare host name (:func:`xmldoc.host`);
    empty when none."""
    return (xmldoc.host(value) or "") if isinstance(value, str) else ""


def is_authority(value: object) -> bool:
    """Whether a URL or host names an Entra ID authority."""
    host = host_of(value)
    return host in AUTHORITY_HOSTS or host.endswith(_AUTHORITY_SUFFIXES)


def is_app_service(value: object) -> bool:
    """Whether a URL or host is an App Service publishing or site host."""
    return host_of(value).endswith(APP_SERVICE_SUFFIXES)


def is_portal(value: object) -> bool:
    return host_of(value) in PORTAL_HOSTS


def is_management(value: object) -> bool:
    """Whether a URL or host is an Azure management endpoint (classic or Resource Manager)."""
    return host_of(value) in MANAGEMENT_HOSTS
