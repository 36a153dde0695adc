"""ADAL's binary token cache (``TokenCache.dat``), written by AzureRM PowerShell and old SDKs.

ADAL v3's ``TokenCache.Serialize()``: an ``Int32`` schema version 3 and an ``Int32`` item count
(little-endian), then per item a key and a value, each a .NET ``BinaryWriter`` string (a 7-bit
variable-length byte count, then UTF-8). The key is ``{authority}:::{resource}:::{clientId}:::
{subjectType}``; the value is JSON holding ``RefreshToken`` and ``Result.AccessToken``. AzureRM on
Windows wraps the whole blob in DPAPI (``ProtectedData.Protect``): then only the DPAPI header is
visible. Parsing reads counts and identifiers, never a token.
"""

from __future__ import annotations

from credguard.detect.base import Malformed
from credguard.detect.candidates import ADAL_VERSION as VERSION
from credguard.detect.candidates import adal_looks_like as looks_like

__all__ = ["DPAPI_HEADER", "MAX_ITEMS", "VERSION", "Cache", "is_dpapi", "looks_like", "parse"]

# Every DPAPI blob opens with its version (1) and the DPAPI provider's GUID.
DPAPI_HEADER = bytes.fromhex("01000000d08c9ddf0115d1118c7a00c04fc297eb")
MAX_ITEMS = 10_000


class Cache:
    """What a plaintext ADAL cache holds: counts and non-secret identifiers. (A plain class:
    nothing here needs what a dataclass adds.)"""

    __slots__ = ("access_tokens", "authorities", "client_ids", "items", "refresh_tokens")

    def __init__(self, items: int = 0) -> None:
        self.items = items
        self.refresh_tokens = 0
        self.access_tokens = 0
        self.authorities: set[str] = set()
        self.client_ids: set[str] = set()

    @property
    def has_secrets(self) -> bool:
        return self.refresh_tokens + self.access_tokens > 0


def is_dpapi(data: bytes) -> bool:
    return data.startswith(DPAPI_HEADER)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(5):
        if pos >= len(data):
            break
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise Malformed("not an ADAL token cache (bad string length)")


def _string(data: bytes, pos: int) -> tuple[str, int]:
    size, pos = _varint(data, pos)
    end = pos + size
    if end > len(data):
        raise Malformed("not an ADAL token cache (cut short)")
    try:
        return data[pos:end].decode("utf-8"), end
    except UnicodeDecodeError:
        raise Malformed("not an ADAL token cache (a string is not UTF-8)") from None


def parse(data: bytes) -> Cache:
    """Read a plaintext ADAL v3 cache; :class:`Malformed` for anything else."""
    # here, not above: the PowerShell family needs only looks_like until a cache is parsed,
    # and these pull in the XML parser
    from credguard.detect import azure, jsonsafe
    from credguard.detect.placeholder import is_secret

    if not data.startswith(VERSION) or len(data) < 8:
        raise Malformed("not an ADAL token cache (no version 3 header)")
    count = int.from_bytes(data[4:8], "little")
    if count > MAX_ITEMS:
        raise Malformed(f"not an ADAL token cache (more than {MAX_ITEMS} items)")
    cache, pos = Cache(items=count), 8
    for _ in range(count):
        key, pos = _string(data, pos)
        value, pos = _string(data, pos)
        parts = key.split(":::")
        if len(parts) != 4:
            raise Malformed("not an ADAL token cache (a key is not authority:::resource:::...)")
        if azure.is_authority(parts[0]):
            cache.authorities.add(azure.host_of(parts[0]))
        if azure.is_guid(parts[2]):
            cache.client_ids.add(parts[2].strip().lower())
        entry = jsonsafe.obj(jsonsafe.load(value.encode()))
        if not azure.is_authority(parts[0]):
            continue  # another identity provider's token: not an Azure credential
        cache.refresh_tokens += is_secret(entry.get("RefreshToken"))
        cache.access_tokens += is_secret(jsonsafe.obj(entry.get("Result")).get("AccessToken"))
    return cache
