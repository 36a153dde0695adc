"""App Service publish profiles (kind ``azure-publish-profile``).

Root ``publishData`` (camelCase) with one ``publishProfile`` per method (MSDeploy, FTP,
ZipDeploy, the "ReadOnly - FTP" recovery profile...). ``userPWD`` is the app's deployment
password in plaintext; the database connection-string attributes may hold passwords too.
Details name apps, methods and hosts only: never a password, a user name (half a credential) or a
connection string. XML comments (where hosters put control-panel logins) are never read.

Only Azure's profiles count: at least one profile must publish to, or serve from, an App Service
host (or name the Azure portal as its control panel); other hosters' Web Deploy profiles use the
same format. A password that is a placeholder (``REDACTED``, ``$(DeployPassword)``...) is none.
"""

from __future__ import annotations

from pathlib import PurePath
from xml.etree.ElementTree import Element

from credguard.detect import azure, kinds, xmldoc, xmlsafe
from credguard.detect.base import Details, Detected
from credguard.detect.placeholder import is_secret

_DB_ATTRIBUTES = ("SQLServerDBConnectionString", "mySQLDBConnectionString")


def detect(data: bytes, path: PurePath) -> Detected | None:
    """A finding when a profile has a deployment password or a database password."""
    root = xmldoc.load(data, path, (".publishsettings",))
    if root is None or xmlsafe.local(root.tag) != "publishData":
        return None
    profiles = list(xmldoc.children(root, "publishProfile"))
    if not any(_azure(p) for p in profiles):
        return None
    has_password = any(_deployment_password(p.get("userPWD")) for p in profiles)
    has_db_password = any(_has_db_password(p) for p in profiles)
    if not (has_password or has_db_password):
        return None
    return Detected(kinds.PUBLISH_PROFILE, _details(profiles, has_db_password))


def _deployment_password(value: str | None) -> bool:
    """Azure generates ``userPWD`` (60 random characters): one that is a placeholder, or that
    spells out "password" (a phrase the author put in its place), is none."""
    return is_secret(value) and "password" not in (value or "").lower()


def _azure(profile: Element) -> bool:
    """Whether a profile is App Service's: its publishing or site host, or the Azure portal."""
    return (azure.is_app_service(profile.get("publishUrl"))
            or azure.is_app_service(profile.get("destinationAppUrl"))
            or azure.is_portal(profile.get("controlPanelLink")))


def _has_db_password(profile: Element) -> bool:
    """A password in a connection-string attribute or a ``databases/add`` entry."""
    strings = [profile.get(name) or "" for name in _DB_ATTRIBUTES]
    for databases in xmldoc.children(profile, "databases"):
        strings += [add.get("connectionString") or "" for add in databases]
    return any(xmldoc.has_secret(s) for s in strings)


def _app_name(profile: Element) -> str:
    """``msdeploySite``, else the profile name before its " - <method>" suffix."""
    site = (profile.get("msdeploySite") or "").strip()
    if site:
        return site
    return (profile.get("profileName") or "").split(" - ", 1)[0].strip()


def _unique(values: list[str | None]) -> list[str]:
    return sorted({v.strip() for v in values if v and v.strip()})


def _details(profiles: list[Element], has_db_password: bool) -> Details:
    return {
        "profiles": len(profiles),
        "apps": _unique([_app_name(p) for p in profiles]),
        "publish_methods": _unique([p.get("publishMethod") for p in profiles]),
        "publish_hosts": _unique([xmldoc.host(p.get("publishUrl")) for p in profiles]),
        "destination_app_urls": _unique(
            [xmldoc.clean_url(p.get("destinationAppUrl")) for p in profiles]
        ),
        "has_database_passwords": has_db_password,
    }
