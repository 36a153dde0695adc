"""Which files are detection candidates: by name (the family modules to ask) and by their first
bytes (a cheap content pre-filter).

The one source of both rules. :mod:`credguard.detect.registry` maps the module names given here
to its detector families; the quick path of ``credguard check`` (:mod:`credguard.cli.quick`)
asks the same questions before anything else is loaded. So this module stays lean: it imports
``os`` and :mod:`credguard.detect.encoding` only (no ``re``, ``pathlib`` or ``typing``).
"""

from __future__ import annotations

import os

from credguard.detect import encoding

# The family modules (``credguard.detect.<name>``), as by_name names them.
PUBLISH_SETTINGS, APP_SERVICE, VS_PROFILE = "publishsettings", "appservice", "vsprofile"
AZ_CLI, POWERSHELL, AZD = "azcli", "powershell", "azd"
XML_FAMILIES = (PUBLISH_SETTINGS, APP_SERVICE, VS_PROFILE)
JSON_FAMILIES = (AZ_CLI, POWERSHELL, AZD)

_PUBLISH = (PUBLISH_SETTINGS, APP_SERVICE)
_EXACT: dict[str, tuple[str, ...]] = {
    "msal_token_cache.json": (AZ_CLI,),
    "accesstokens.json": (AZ_CLI,),
    "service_principal_entries.json": (AZ_CLI,),
    "aksserviceprincipal.json": (AZ_CLI,),
    "acsserviceprincipal.json": (AZ_CLI,),
    # the old node CLI's profile, or a PowerShell context saved under that name
    # (Save-AzureRmContext -Path AzureProfile.json)
    "azureprofile.json": (AZ_CLI, POWERSHELL),
    "azurermcontext.json": (POWERSHELL,),
    # ADAL's cache, wherever it lies (committed to a repo, copied off a Windows profile): judged
    # by content, so an empty or foreign file of that name is no finding
    "tokencache.dat": (POWERSHELL,),
}
# Names too generic to match anywhere: only inside the tool's own directory.
_PS_DIR_NAMES = frozenset({"keystore.cache"})
_FIRST = frozenset("mcakstp")  # first letters of every name-based candidate, a cheap pre-filter
PARTIAL_SUFFIXES = (".crdownload", ".part", ".partial", ".download")
_NAMED_SUFFIXES = (".publishsettings", ".pubxml", ".pubxml.user")
_SNIFF_SUFFIXES = frozenset({".xml", ".txt", ".config", ".json", ""})

SNIFF_PREFIX = 4096
# Words that open (or appear early in) every credential document the families recognise.
MARKERS = (
    "PublishData", "publishData", "<Project", "AccessToken", "RefreshToken", "accessToken",
    "refreshToken", "servicePrincipal", "client_secret", "client_assertion", '"certificate"',
    "managementCertificate", "Contexts", '"Context"', "TokenCache", "clientSecret",
    "clientCertificate", "federatedToken", "client_id",
)
_WHITESPACE = b" \t\r\n"
_OPENERS = frozenset((b"<", b"{", b"["))
_encoded: dict[str, tuple[bytes, ...]] = {}  # MARKERS per codec, encoded on first use

# ADAL v3's binary cache (credguard.detect.adal) opens with its schema version, 3.
ADAL_VERSION = b"\x03\x00\x00\x00"


def is_partial_download(name: str) -> bool:
    """A browser's in-progress download: never a finding; the rename that completes it is."""
    return name.lower().endswith(PARTIAL_SUFFIXES)


def by_name(parent: str | os.PathLike[str], name: str) -> tuple[str, ...]:
    """The family modules to ask about a file chosen by its name alone; empty when it is no
    candidate. ``parent`` is the directory holding it (a string on the scan's hot path)."""
    low = name.lower()
    if low.endswith(_NAMED_SUFFIXES):
        return _PUBLISH if low.endswith(".publishsettings") else (VS_PROFILE,)
    if low[:1] not in _FIRST or low.endswith(PARTIAL_SUFFIXES):
        return ()
    exact = _EXACT.get(low)
    if exact:
        return exact
    parent = os.fspath(parent)
    pdir = os.path.basename(parent.rstrip("\\/")).lower()
    if low == "credentials" and pdir == ".azure":  # Ansible azure_rm's service principal
        return (AZ_CLI,)
    if low in _PS_DIR_NAMES and pdir == ".azure":
        return (POWERSHELL,)
    if low.startswith("msal.cache") and pdir == ".identityservice":
        return (POWERSHELL,)
    if low.startswith(("cache", "cred")) and low.endswith(".json") and in_auth_dir(parent):
        return (AZD,)
    return ()


def in_auth_dir(parent: str) -> bool:
    """Whether a directory is (beneath) azd's ``auth`` directory (``.azd/auth``), by name; both
    separators count, as a path copied off Windows has backslashes."""
    parts = parent.replace("\\", "/").lower().split("/")
    return "auth" in parts and (".azd" in parts or "azd" in parts)


def sniff_eligible(name: str) -> bool:
    """Small ``.xml``/``.txt``/``.config``/``.json`` and extension-less files are sniffed."""
    dot = name.rfind(".")
    if dot <= 0:
        return True
    ext = name[dot:].lower()
    return ext in _SNIFF_SUFFIXES


def adal_looks_like(data: bytes) -> bool:
    """Whether the bytes open like a plaintext ADAL v3 cache: version 3, then a first key
    naming an authority (a cheap check for sniffing)."""
    return data.startswith(ADAL_VERSION) and b":::" in data[:4096] and b"://" in data[:4096]


def sniff_matches(prefix: bytes) -> bool:
    """Whether a file's first bytes could start a credential document (a cheap pre-filter).

    Every sniffable family reads XML or JSON, or ADAL's binary cache, so text that does not open
    with ``<``, ``{`` or ``[`` (after a BOM and white space) is rejected before any marker search.
    UTF-16 text is recognised by its BOM, or without one by the NUL bytes of its ASCII; its
    markers are found at odd offsets too (``in`` tries every byte offset).
    """
    codec = encoding.utf16(prefix)
    if codec is not None:
        big = codec == "utf-16-be" or prefix.startswith(b"\xfe\xff")
        return _contains_marker(prefix, "utf-16-be" if big else "utf-16-le")
    if adal_looks_like(prefix):
        return True
    if prefix.startswith(encoding.UTF8_BOM):
        prefix = prefix[3:]
    if prefix.lstrip(_WHITESPACE)[:1] not in _OPENERS:
        return False
    return _contains_marker(prefix, "utf-8")


def _contains_marker(data: bytes, codec: str) -> bool:
    markers = _encoded.get(codec)
    if markers is None:
        markers = _encoded[codec] = _alternatives(codec)
    return any(marker in data for marker in markers)


def _alternatives(codec: str) -> tuple[bytes, ...]:
    """Each marker encoded on its own. (The regular expression this replaced encoded the whole
    pattern ``a|b|…`` in UTF-16, so the NUL of each ``|`` joined a neighbouring marker: in
    UTF-16-LE a marker at the start of the text, right after the BOM, went unseen.)"""
    return tuple(marker.encode(codec) for marker in MARKERS)
