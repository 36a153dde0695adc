"""Management certificates: PEM for a child process, public facts for a finding (matching the
certificate), no data in any error, and cryptography loaded only when a certificate is met."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12
from helpers import payloads
from helpers.detection import PS_PATH
from helpers.home import REPO
from helpers.payloads import pkcs12_cert

from credguard.detect import certificate, publishsettings


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


def test_certificate_details_match_the_certificate() -> None:
    payload = payloads.publishsettings_v1()
    verdict = publishsettings.detect(payload.data, PS_PATH)
    assert verdict is not None
    _key, cert, _extra = pkcs12.load_key_and_certificates(
        base64.b64decode(payload.secrets[0]), None
    )
    assert cert is not None
    [described] = verdict.details["certificates"]
    assert described == {
        "parsed": True,
        "subject": "CN=Windows Azure Tools",
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "thumbprint": cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303
    }


def test_pkcs12_cert_opens_without_password() -> None:
    _key, cert, _ = pkcs12.load_key_and_certificates(pkcs12_cert(cn="X", days=2), None)
    assert cert is not None and cert.subject.rfc4514_string() == "CN=X"


def test_certificate_parsing_is_lazy() -> None:
    """Importing the detectors must not import cryptography (scan start-up time)."""
    code = "import sys, credguard.detect; print('cryptography' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "False"
