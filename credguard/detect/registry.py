"""Detector registry: which files are candidates, and which family judges them.

Candidates are chosen by name first (cheap: a lower-cased name against a few sets); in
download-like folders and explicitly named paths, small text/XML files are also sniffed by
content. A family module turns bytes into a :class:`Detected` verdict or ``None``; it is
imported when it is first asked, so a check of ordinary files (the pre-commit hook) loads none.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
from pathlib import PurePath

from credguard.detect import adal, encoding
from credguard.detect.base import Detected, DetectFn, Finding, Hostile, Malformed
from credguard.detect.kinds import KINDS, Kind, KindInfo

__all__ = [
    "KINDS",
    "DetectFn",
    "Detected",
    "Family",
    "Finding",
    "Hostile",
    "Kind",
    "KindInfo",
    "Malformed",
    "by_name",
    "detect_bytes",
    "fingerprint",
    "is_partial_download",
    "sniff_eligible",
    "sniff_matches",
]


class Family:
    """The ``detect`` function of the family module ``credguard.detect.<module>``, imported on
    the first call; equal to that function, so ``azcli.detect in by_name(...)`` holds."""

    __slots__ = ("_detect", "module")

    def __init__(self, module: str) -> None:
        self.module = module
        self._detect: DetectFn | None = None

    @property
    def detect(self) -> DetectFn:
        if self._detect is None:
            found: DetectFn = importlib.import_module(f"credguard.detect.{self.module}").detect
            self._detect = found
        return self._detect

    def __call__(self, data: bytes, path: PurePath) -> Detected | None:
        return self.detect(data, path)

    def __eq__(self, other: object) -> bool:
        return other is self or other is self.detect

    def __hash__(self) -> int:
        return hash(self.module)

    def __repr__(self) -> str:
        return f"<detector family {self.module}>"


_PUBLISH_SETTINGS, _APP_SERVICE, _VS_PROFILE = (
    Family("publishsettings"), Family("appservice"), Family("vsprofile"))
_AZ_CLI, _POWERSHELL, _AZD = Family("azcli"), Family("powershell"), Family("azd")
XML_FAMILIES: tuple[DetectFn, ...] = (_PUBLISH_SETTINGS, _APP_SERVICE, _VS_PROFILE)
JSON_FAMILIES: tuple[DetectFn, ...] = (_AZ_CLI, _POWERSHELL, _AZD)
ALL_FAMILIES = XML_FAMILIES + JSON_FAMILIES



def preload(families: tuple[DetectFn, ...]) -> None:
    """Import the families' modules now rather than on their first file (the daemon does
    this before its first credential)."""
    for family in families:
        if isinstance(family, Family):
            _ = family.detect


_PUBLISH: tuple[DetectFn, ...] = (_PUBLISH_SETTINGS, _APP_SERVICE)
_EXACT: dict[str, tuple[DetectFn, ...]] = {
    "msal_token_cache.json": (_AZ_CLI,),
    "accesstokens.json": (_AZ_CLI,),
    "service_principal_entries.json": (_AZ_CLI,),
    "aksserviceprincipal.json": (_AZ_CLI,),
    "acsserviceprincipal.json": (_AZ_CLI,),
    # the old node CLI's profile, or a PowerShell context saved under that name
    # (Save-AzureRmContext -Path AzureProfile.json)
    "azureprofile.json": (_AZ_CLI, _POWERSHELL),
    "azurermcontext.json": (_POWERSHELL,),
    # ADAL's cache, wherever it lies (committed to a repo, copied off a Windows profile): judged
    # by content, so an empty or foreign file of that name is no finding
    "tokencache.dat": (_POWERSHELL,),
}
# Names too generic to match anywhere: only inside the tool's own directory.
_PS_DIR_NAMES = frozenset({"keystore.cache"})
_FIRST = frozenset("mcakstp")  # first letters of every name-based candidate, a cheap pre-filter
_PARTIAL_SUFFIXES = (".crdownload", ".part", ".partial", ".download")
_NAMED_SUFFIXES = (".publishsettings", ".pubxml", ".pubxml.user")
_SNIFF_SUFFIXES = frozenset({".xml", ".txt", ".config", ".json", ""})
SNIFF_PREFIX = 4096
# Words that open (or appear early in) every credential document the families recognise.
_MARKERS = (
    "PublishData", "publishData", "<Project", "AccessToken", "RefreshToken", "accessToken",
    "refreshToken", "servicePrincipal", "client_secret", "client_assertion", '"certificate"',
    "managementCertificate", "Contexts", '"Context"', "TokenCache", "clientSecret",
    "clientCertificate", "federatedToken", "client_id",
)


@functools.cache
def _marker_re(codec: str = "utf-8") -> re.Pattern[bytes]:
    """Any of :data:`_MARKERS` in ``codec``; compiled on first use (the UTF-16 ones take
    milliseconds, and most runs of ``credguard check`` meet no file that needs them)."""
    return re.compile("|".join(re.escape(m) for m in _MARKERS).encode(codec))

_WHITESPACE = b" \t\r\n"
_OPENERS = frozenset((b"<", b"{", b"["))


def is_partial_download(name: str) -> bool:
    """A browser's in-progress download: never a finding; the rename that completes it is."""
    return name.lower().endswith(_PARTIAL_SUFFIXES)


def by_name(parent: str | PurePath, name: str) -> tuple[DetectFn, ...]:
    """The families to try for a file chosen by its name alone; empty when it is no candidate.

    ``parent`` is the directory holding it (a string on the scan's hot path).
    """
    low = name.lower()
    if low.endswith(_NAMED_SUFFIXES):
        return _PUBLISH if low.endswith(".publishsettings") else (_VS_PROFILE,)
    if low[:1] not in _FIRST or low.endswith(_PARTIAL_SUFFIXES):
        return ()
    exact = _EXACT.get(low)
    if exact:
        return exact
    parent = os.fspath(parent)
    pdir = os.path.basename(parent.rstrip("\\/")).lower()
    if low == "credentials" and pdir == ".azure":  # Ansible azure_rm's service principal
        return (_AZ_CLI,)
    if low in _PS_DIR_NAMES and pdir == ".azure":
        return (_POWERSHELL,)
    if low.startswith("msal.cache") and pdir == ".identityservice":
        return (_POWERSHELL,)
    if low.startswith(("cache", "cred")) and low.endswith(".json"):
        from credguard.detect import azd  # only for such names

        if azd.in_auth_dir(parent):
            return (_AZD,)
    return ()


def sniff_eligible(name: str) -> bool:
    """Small ``.xml``/``.txt``/``.config``/``.json`` and extension-less files are sniffed."""
    dot = name.rfind(".")
    if dot <= 0:
        return True
    ext = name[dot:].lower()
    return ext in _SNIFF_SUFFIXES


def sniff_matches(prefix: bytes) -> bool:
    """Whether a file's first bytes could start a credential document (a cheap pre-filter).

    Every sniffable family reads XML or JSON, or ADAL's binary cache, so text that does not open
    with ``<``, ``{`` or ``[`` (after a BOM and white space) is rejected before any marker search.
    UTF-16 text is recognised by its BOM, or without one by the NUL bytes of its ASCII.
    """
    codec = encoding.utf16(prefix)
    if codec is not None:
        big = codec == "utf-16-be" or prefix.startswith(b"\xfe\xff")
        marker = _marker_re("utf-16-be" if big else "utf-16-le")
        return marker.search(prefix) is not None or marker.search(prefix[1:]) is not None
    if adal.looks_like(prefix):
        return True
    if prefix.startswith(encoding.UTF8_BOM):
        prefix = prefix[3:]
    if prefix.lstrip(_WHITESPACE)[:1] not in _OPENERS:
        return False
    return _marker_re().search(prefix) is not None


def fingerprint(data: bytes) -> str:
    import hashlib  # loads OpenSSL: only once there is a finding

    return "sha256:" + hashlib.sha256(data).hexdigest()


def detect_bytes(
    data: bytes,
    path: PurePath,
    families: tuple[DetectFn, ...] = ALL_FAMILIES,
    *,
    strict: bool = True,
) -> Detected | None:
    """Run ``families`` in order; the first verdict wins. Empty files are never findings.

    Raises :class:`Malformed` when no family gave a verdict and one failed to parse: always for
    hostile XML (:class:`Hostile`); for any parse failure when ``strict`` (the file was chosen
    by its name, so it promised a format); and for a file found by content whose first bytes
    carry a credential marker (:func:`sniff_matches`): a scan reports it as skipped rather than
    dropping it in silence. Other files that merely are not such a format are not findings.
    """
    if not data.strip():
        return None
    malformed: Malformed | None = None
    for family in families:
        try:
            verdict = family(data, path)
        except Malformed as exc:
            malformed = malformed or exc
            continue
        if verdict is not None:
            return verdict
    if malformed is not None and (
        strict or isinstance(malformed, Hostile) or sniff_matches(data[:SNIFF_PREFIX])
    ):
        raise malformed
    return None
