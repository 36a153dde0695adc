"""The versioned vault item format: one file per credential, named by its item id.

Item bytes (all offsets fixed, 25-byte header)::

    0   4   MAGIC  b"\\x89CGV"  (a high-bit byte first: text-mode mangling and `file` both notice)
    4   1   VERSION (1)
    5   8   key id, raw (shown everywhere else as 16 lowercase hex characters)
    13  12  nonce
    25  ..  AES-256-GCM ciphertext + 16-byte tag of the record

Associated data = the 25-byte header + the item id as 32 ASCII hex characters (both fixed
length, so the concatenation is unambiguous): an item cannot be moved to another file name, given
another key id, or have its version byte changed without failing authentication.

Record plaintext: 4-byte big-endian length N, N bytes of ASCII JSON metadata
``{"v": 1, "kind", "name", "directory", "sha256", "imported_at", "details"}`` (sorted keys, no
spaces, non-ASCII escaped so surrogate-escaped file names survive), then the original file bytes.

Promises: any damage, tampering, wrong key or wrong item id raises the one opaque
:class:`~credguard.vault.crypto.VaultIntegrityError`; a newer format or record version raises
:class:`NewerFormatError`; misuse (bad key, bad ids, bad record fields) raises TypeError/ValueError.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

from credguard.errors import IntegrityError, check_version
from credguard.vault import crypto
from credguard.vault.crypto import VaultIntegrityError

MAGIC = b"\x89CGV"
VERSION = 1
RECORD_VERSION = 1
KEY_ID_SIZE = 8
ITEM_ID_SIZE = 16
HEADER_SIZE = len(MAGIC) + 1 + KEY_ID_SIZE + crypto.NONCE_SIZE

_LENGTH = struct.Struct(">I")
_KEY_ID_RE = re.compile(r"[0-9a-f]{16}")
_ITEM_ID_RE = re.compile(r"[0-9a-f]{32}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_META_KEYS = frozenset({"v", "kind", "name", "directory", "sha256", "imported_at", "details"})
_ITEM = "this vault item"


class NewerFormatError(IntegrityError):
    """The item (or its record) carries a version this credguard does not know."""


def new_item_id() -> str:
    """A random 128-bit item id: 32 lowercase hex characters."""
    return secrets.token_hex(ITEM_ID_SIZE)


def new_key_id() -> str:
    """A random 64-bit key id: 16 lowercase hex characters."""
    return secrets.token_hex(KEY_ID_SIZE)


def is_item_id(s: object) -> bool:
    """True if ``s`` is exactly 32 lowercase hex characters."""
    return isinstance(s, str) and _ITEM_ID_RE.fullmatch(s) is not None


def is_key_id(s: object) -> bool:
    """True if ``s`` is exactly 16 lowercase hex characters."""
    return isinstance(s, str) and _KEY_ID_RE.fullmatch(s) is not None


def utc_now() -> str:
    """The current time as ISO 8601 UTC with seconds, e.g. ``2024-05-01T12:00:00+00:00``."""
    import datetime as dt  # only when an item is written: reading one (exec) never needs it

    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Record:
    """One vaulted file: non-secret metadata plus the original bytes.

    Construction checks types and that ``sha256 == sha256_hex(data)``. ``data`` is the secret and
    is never shown by ``repr``; ``details`` must be JSON-able and hold no secret.
    """

    kind: str
    name: str
    directory: str
    sha256: str
    imported_at: str
    details: dict[str, Any]
    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for attr in ("kind", "name", "directory", "sha256", "imported_at"):
            if not isinstance(getattr(self, attr), str):
                raise TypeError(f"Record.{attr} must be str")
        if not isinstance(self.details, dict):
            raise TypeError("Record.details must be a dict")
        if not isinstance(self.data, bytes):
            raise TypeError("Record.data must be bytes")
        if self.sha256 != crypto.sha256_hex(self.data):
            raise ValueError("Record.sha256 does not match its data")

    @classmethod
    def new(
        cls,
        kind: str,
        name: str,
        directory: str,
        data: bytes,
        details: dict[str, Any] | None = None,
        imported_at: str | None = None,
    ) -> Record:
        """A record for ``data``, its sha256 computed and ``imported_at`` defaulting to now."""
        return cls(
            kind=kind,
            name=name,
            directory=directory,
            sha256=crypto.sha256_hex(data),
            imported_at=utc_now() if imported_at is None else imported_at,
            details={} if details is None else details,
            data=data,
        )

    def meta(self) -> dict[str, Any]:
        """The JSON-able metadata (a deep copy), without ``data`` and without the record version."""
        return {
            "kind": self.kind,
            "name": self.name,
            "directory": self.directory,
            "sha256": self.sha256,
            "imported_at": self.imported_at,
            "details": copy.deepcopy(self.details),
        }


def _header(key_id: str, nonce: bytes) -> bytes:
    # encrypt() checks the nonce's type and length before anything is returned
    return MAGIC + bytes([VERSION]) + bytes.fromhex(key_id) + nonce


def _aad(header: bytes, item_id: str) -> bytes:
    return header + item_id.encode("ascii")


def _check_ids(item_id: str, key_id: str | None = None) -> None:
    if not is_item_id(item_id):
        raise ValueError("item id must be 32 lowercase hex characters")
    if key_id is not None and not is_key_id(key_id):
        raise ValueError("key id must be 16 lowercase hex characters")


def _encode_record(record: Record) -> bytes:
    meta = {"v": RECORD_VERSION, **record.meta()}
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    blob = text.encode("ascii")
    return _LENGTH.pack(len(blob)) + blob + record.data


def pack(
    record: Record, key: bytes, key_id: str, item_id: str, *, nonce: bytes | None = None
) -> bytes:
    """Serialise and encrypt ``record`` as item ``item_id`` under ``key`` (named ``key_id``).

    ``nonce`` is for known-answer tests only; production callers leave it random.
    """
    if not isinstance(record, Record):
        raise TypeError("record must be a Record")
    _check_ids(item_id, key_id)
    if nonce is None:
        nonce = crypto.new_nonce()
    header = _header(key_id, nonce)
    _, ciphertext = crypto.encrypt(key, _encode_record(record), _aad(header, item_id), nonce=nonce)
    return header + ciphertext


def _parse_header(blob: bytes) -> tuple[str, bytes]:
    """(key id, nonce) from a checked header; the version is checked before the length."""
    if not isinstance(blob, bytes):
        raise TypeError("blob must be bytes")
    if len(blob) < len(MAGIC) + 1 or blob[: len(MAGIC)] != MAGIC:
        raise VaultIntegrityError()
    version = check_version(blob[len(MAGIC)], VERSION, _ITEM, NewerFormatError)
    if version != VERSION or len(blob) < HEADER_SIZE:
        raise VaultIntegrityError()
    start = len(MAGIC) + 1
    key_id = blob[start : start + KEY_ID_SIZE].hex()
    return key_id, blob[start + KEY_ID_SIZE : HEADER_SIZE]


def read_key_id(blob: bytes) -> str:
    """The key id an item was written with, from its header alone (nothing is authenticated)."""
    return _parse_header(blob)[0]


def _decode_meta(plaintext: bytes) -> tuple[dict[str, Any], bytes]:
    if len(plaintext) < _LENGTH.size:
        raise VaultIntegrityError()
    (length,) = _LENGTH.unpack_from(plaintext)
    end = _LENGTH.size + length
    if end > len(plaintext):
        raise VaultIntegrityError()
    try:
        meta = json.loads(plaintext[_LENGTH.size : end].decode("ascii"))
    except (ValueError, RecursionError):
        raise VaultIntegrityError() from None
    if not isinstance(meta, dict):
        raise VaultIntegrityError()
    return meta, plaintext[end:]


def _decode_record(plaintext: bytes) -> Record:
    meta, data = _decode_meta(plaintext)
    try:
        version = check_version(meta.get("v"), RECORD_VERSION, _ITEM, NewerFormatError)
    except ValueError:
        raise VaultIntegrityError() from None
    if version != RECORD_VERSION or set(meta) != _META_KEYS:
        raise VaultIntegrityError()
    if not isinstance(meta["sha256"], str) or _SHA256_RE.fullmatch(meta["sha256"]) is None:
        raise VaultIntegrityError()
    del meta["v"]
    try:
        return Record(**meta, data=data)
    except (TypeError, ValueError):
        raise VaultIntegrityError() from None


def unpack(blob: bytes, key: bytes, item_id: str) -> Record:
    """Authenticate and decode item ``item_id``; see the module docstring for what is refused."""
    _check_ids(item_id)
    _, nonce = _parse_header(blob)
    header = blob[:HEADER_SIZE]
    plaintext = crypto.decrypt(key, nonce, blob[HEADER_SIZE:], _aad(header, item_id))
    return _decode_record(plaintext)
