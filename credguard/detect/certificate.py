"""Classic Azure management certificates (unpassworded PKCS#12): their public facts for a
finding, and their PEM form for a child process. Parsing only; no encryption lives here (that is
:mod:`credguard.vault.crypto`'s alone)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from cryptography.exceptions import UnsupportedAlgorithm

if TYPE_CHECKING:  # PKCS#12 and PEM support load only when a certificate is met
    from cryptography.hazmat.primitives.serialization import pkcs12


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

    if not isinstance(p12_der, bytes):
        raise TypeError("p12_der must be bytes")
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
