"""Management certificates: PEM for a child process, public facts for a finding, and no data in
any error."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from helpers.payloads import pkcs12_cert

from credguard.detect import certificate


def test_non_bytes_is_type_error() -> None:
    with pytest.raises(TypeError):
        certificate.pkcs12_to_pem("abc")  # type: ignore[arg-type]


def test_pkcs12_to_pem_gives_key_and_certificate() -> None:
    pem = certificate.pkcs12_to_pem(pkcs12_cert(cn="credguard test"))
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pem.count(b"-----BEGIN CERTIFICATE-----") == 1
    key = load_pem_private_key(pem, None)
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.public_key() == key.public_key()
    assert "credguard test" in cert.subject.rfc4514_string()


@pytest.mark.parametrize("junk", [b"", b"not a certificate at all", bytes(range(256)) * 8])
def test_pkcs12_junk_raises_value_error_without_data(junk: bytes) -> None:
    with pytest.raises(ValueError) as exc:
        certificate.pkcs12_to_pem(junk)
    assert str(exc.value) == "certificate does not parse"
