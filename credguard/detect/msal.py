"""Summaries of MSAL token caches (Azure CLI, Azure PowerShell, azd all use the same shape).

An MSAL cache is a JSON object with the sections ``AccessToken``, ``RefreshToken``, ``IdToken``,
``Account`` and ``AppMetadata``, each mapping a cache key to an entry; token entries keep their
secret in ``secret``. A summary counts the tokens and lists non-secret identifiers only. A token
counts only when its ``environment`` is an Entra ID authority: MSAL caches of other identity
providers are not Azure credentials.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from credguard.detect import azure, jsonsafe
from credguard.detect.base import Details

SECTIONS = ("AccessToken", "RefreshToken", "IdToken", "Account", "AppMetadata")


@dataclass
class Summary:
    """Counts and identifiers of one or more MSAL caches; never a secret."""

    refresh_tokens: int = 0
    access_tokens: int = 0
    id_tokens: int = 0
    accounts: set[str] = field(default_factory=set)
    tenants: set[str] = field(default_factory=set)
    client_ids: set[str] = field(default_factory=set)

    @property
    def has_secrets(self) -> bool:
        """True when a refresh or access token holds a non-empty secret."""
        return self.refresh_tokens + self.access_tokens > 0

    def add(self, other: Summary) -> None:
        """Fold another cache's summary into this one."""
        self.refresh_tokens += other.refresh_tokens
        self.access_tokens += other.access_tokens
        self.id_tokens += other.id_tokens
        self.accounts |= other.accounts
        self.tenants |= other.tenants
        self.client_ids |= other.client_ids

    def details(self) -> Details:
        """The summary as finding details (sorted, JSON-ready)."""
        return {
            "refresh_tokens": self.refresh_tokens,
            "access_tokens": self.access_tokens,
            "id_tokens": self.id_tokens,
            "accounts": jsonsafe.unique(self.accounts),
            "tenants": jsonsafe.unique(self.tenants),
            "client_ids": jsonsafe.unique(self.client_ids),
        }


def is_cache(doc: object) -> bool:
    """Whether ``doc`` has the MSAL shape: an object with a token section that is an object."""
    if not isinstance(doc, dict):
        return False
    present = [doc[name] for name in SECTIONS if name in doc]
    has_tokens = any(isinstance(doc.get(name), dict) for name in SECTIONS[:3])
    return has_tokens and all(isinstance(section, dict) for section in present)


def _count_secrets(section: object) -> int:
    return sum(1 for entry in jsonsafe.objects(section)
               if jsonsafe.filled(entry.get("secret"))
               and azure.is_authority(entry.get("environment")))


def summarize(doc: object) -> Summary:
    """Summarise one MSAL cache; a document of another shape gives an empty summary."""
    cache = jsonsafe.obj(doc)
    summary = Summary(
        refresh_tokens=_count_secrets(cache.get("RefreshToken")),
        access_tokens=_count_secrets(cache.get("AccessToken")),
        id_tokens=_count_secrets(cache.get("IdToken")),
    )
    for name in SECTIONS:
        for entry in jsonsafe.objects(cache.get(name)):
            summary.tenants.add(jsonsafe.text(entry.get("realm")))
            summary.client_ids.add(jsonsafe.text(entry.get("client_id")))
    summary.accounts = {
        jsonsafe.text(entry.get("username")) for entry in jsonsafe.objects(cache.get("Account"))
    }
    return summary


def summarize_many(doc: object) -> tuple[Summary, int] | None:
    """Summarise an MSAL cache or an object mapping keys to MSAL caches.

    Returns the merged summary and how many caches it covers, or ``None`` when ``doc`` is
    neither shape.
    """
    if is_cache(doc):
        return summarize(doc), 1
    caches = [value for value in jsonsafe.objects(doc) if is_cache(value)]
    if not caches:
        return None
    total = Summary()
    for cache in caches:
        total.add(summarize(cache))
    return total, len(caches)
