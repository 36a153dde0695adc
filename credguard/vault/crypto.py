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
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:  # PKCS#12, PEM and scrypt are loaded only when used (exec/passphrase paths)
    from cryptography.hazmat.primitives.serialization import pkcs12

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


def _load_pkcs12(p12_der: bytes) -> pkcs12.PKCS12KeyAndCertificates:
    """Try no password, then the empty password (tools disagree on how to encode "none")."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    for password in (None, b""):
        try:
            return pkcs12.load_pkcs12(p12_der, password)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
    raise ValueError("certificate does not parse")


def pkcs12_to_pem(p12_der: bytes) -> bytes:
    """The private key (unencrypted PKCS#8) then the certificate and any chain, as PEM.

    For classic Azure management certificates (unpassworded PKCS#12). The result is a secret:
    write it only to RAM-backed, private files. Failures raise ValueError without any data.
    """
    from cryptography.hazmat.primitives import serialization

    _check_bytes("p12_der", p12_der)
    bundle = _load_pkcs12(p12_der)
    if bundle.key is None or bundle.cert is None:
        raise ValueError("certificate does not parse")
    key_pem = bundle.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    certs = [bundle.cert, *bundle.additional_certs]
    return key_pem + b"".join(c.certificate.public_bytes(serialization.Encoding.PEM) for c in certs)


def describe_pkcs12(p12_der: bytes, max_subject: int = 256) -> dict[str, object]:
    """Public facts about a PKCS#12's certificate — subject, expiry, and the SHA-1 thumbprint
    Azure shows — or ``{"parsed": False}`` when it does not open. Never anything of the key.

    For detection of classic publish settings, whose certificates are untrusted input: any
    parser failure is "did not parse", never an exception.
    """
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        bundle = _load_pkcs12(p12_der)
        chosen = bundle.cert or (bundle.additional_certs[0] if bundle.additional_certs else None)
        if chosen is None:
            return {"parsed": False}
        cert = chosen.certificate
        der = cert.public_bytes(Encoding.DER)
        return {
            "parsed": True,
            "subject": cert.subject.rfc4514_string()[:max_subject],
            "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "thumbprint": hashlib.sha1(der, usedforsecurity=False).hexdigest().upper(),
        }
    except Exception:  # untrusted bytes: whatever the parser raises means "did not parse"
        return {"parsed": False}
