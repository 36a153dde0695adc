"""The one module in credguard that touches cryptographic primitives: a small, hard-to-misuse recipe
layer in the spirit of pyca/cryptography's Fernet.

Promises:

* Misuse fails at once and precisely: a non-``bytes`` argument raises :class:`TypeError`, a key or
  nonce of the wrong length (or impossible scrypt parameters) raises :class:`ValueError`. These
  are programming errors, never reports about data.
* Every failure to authenticate data (wrong key, flipped bit, truncation, wrong associated data)
  raises the same :class:`VaultIntegrityError`, whose message is fixed and carries no data, so
  nothing can be learned from which check failed and no secret can leak through a message.
* Nonces are 96 random bits per encryption. The ``nonce`` argument of :func:`encrypt` exists only
  so known-answer tests can reproduce bytes exactly, and so a format that authenticates its own
  nonce (``format.pack`` puts it in the associated data) can pass a fresh :func:`new_nonce`.
  Anything else risks nonce reuse, which breaks GCM.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from credguard.errors import IntegrityError

KEY_SIZE = 32  # AES-256
NONCE_SIZE = 12  # 96-bit GCM nonce
TAG_SIZE = 16  # GCM authentication tag appended to every ciphertext
SALT_SIZE = 16  # scrypt salt made by new_salt()

# scrypt cost for real use: 128 * n * r bytes = 128 MiB, about 0.25 s on a 2-core CI machine.
SCRYPT_DEFAULTS: dict[str, int] = {"n": 2**17, "r": 8, "p": 1}
SCRYPT_MAX_MEMORY = 2**30  # 128 * n * r above 1 GiB is refused (a hostile parameter file)
SCRYPT_MAX_P = 16

INTEGRITY_MESSAGE = "vault data failed its integrity check"


class VaultIntegrityError(IntegrityError):
    """Data failed authentication or is not vault data. The message is fixed and names nothing."""

    template = INTEGRITY_MESSAGE

    def __init__(self) -> None:
        super().__init__()


def _check_bytes(name: str, value: object) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


def _check_length(name: str, value: bytes, size: int) -> None:
    _check_bytes(name, value)
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, not {len(value)}")


def new_key() -> bytes:
    """A fresh random AES-256 key from the OS CSPRNG."""
    return os.urandom(KEY_SIZE)


def new_nonce() -> bytes:
    """A fresh random 96-bit nonce (for formats that must put the nonce in associated data)."""
    return os.urandom(NONCE_SIZE)


def new_salt() -> bytes:
    """A fresh random scrypt salt from the OS CSPRNG."""
    return os.urandom(SALT_SIZE)


def encrypt(
    key: bytes, plaintext: bytes, aad: bytes, *, nonce: bytes | None = None
) -> tuple[bytes, bytes]:
    """AES-256-GCM: return ``(nonce, ciphertext + 16-byte tag)`` binding ``aad``.

    The nonce is random unless injected. Inject a fixed one ONLY in known-answer tests (or a
    fresh :func:`new_nonce` that must be known in advance): reusing a nonce under the same key
    destroys GCM's confidentiality and authenticity.
    """
    _check_length("key", key, KEY_SIZE)
    _check_bytes("plaintext", plaintext)
    _check_bytes("aad", aad)
    if nonce is None:
        nonce = new_nonce()
    _check_length("nonce", nonce, NONCE_SIZE)
    return nonce, AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """Authenticate and decrypt; any failure raises :class:`VaultIntegrityError`."""
    _check_length("key", key, KEY_SIZE)
    _check_length("nonce", nonce, NONCE_SIZE)
    _check_bytes("ciphertext", ciphertext)
    _check_bytes("aad", aad)
    if len(ciphertext) < TAG_SIZE:
        raise VaultIntegrityError()
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise VaultIntegrityError() from None


def check_scrypt_params(n: int, r: int, p: int) -> None:
    """Raise ValueError unless n is a power of two >= 2 and the cost stays within bounds."""
    for name, value in (("n", n), ("r", r), ("p", p)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"scrypt {name} must be an int")
    if n < 2 or n & (n - 1):
        raise ValueError("scrypt n must be a power of two >= 2")
    if r < 1 or 128 * n * r > SCRYPT_MAX_MEMORY:
        raise ValueError("scrypt n * r exceeds the memory bound")
    if not 1 <= p <= SCRYPT_MAX_P:
        raise ValueError(f"scrypt p must be between 1 and {SCRYPT_MAX_P}")


def derive_key(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    """A 32-byte key from ``passphrase`` with scrypt(salt, n, r, p); deterministic."""
    _check_bytes("passphrase", passphrase)
    _check_bytes("salt", salt)
    if not salt:
        raise ValueError("salt must not be empty")
    check_scrypt_params(n, r, p)
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=KEY_SIZE, n=n, r=r, p=p).derive(passphrase)


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    _check_bytes("data", data)
    return hashlib.sha256(data).hexdigest()
