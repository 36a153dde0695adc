"""Classic Azure Service Management ``.publishsettings`` files (kind ``azure-publishsettings``).

Root ``PublishData`` with a ``PublishProfile`` for ``AzureServiceManagementAPI``. Schema 1 puts
one ``ManagementCertificate`` on the profile, shared by its ``Subscription`` children; schema 2
(``SchemaVersion="2.0"``) gives every subscription its own certificate and management URL. The
certificate is base64 of an unprotected PKCS#12: it is opened only to show its subject, expiry and
thumbprint; one that does not open (a password-protected PKCS#12) is still a finding. A value that
is not base64 of a DER structure (``[Redacted]``, a sentence, ``****``) is no certificate, and a
file holding only such values is no credential. A profile must be Azure's: its publish method is
``AzureServiceManagementAPI``, or, without one, its management URL is Azure's.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import PurePath
from typing import Any
from xml.etree.ElementTree import Element

from credguard.detect import azure, kinds, xmldoc, xmlsafe
from credguard.detect.base import Details, Detected

METHOD = "AzureServiceManagementAPI"
# Opening a PKCS#12 checks its RSA key: bound the work a file full of certificates can cause.
MAX_PARSED_CERTIFICATES = 16
_MAX_SUBJECT = 256


def detect(data: bytes, path: PurePath) -> Detected | None:
    """A finding when a management profile carries at least one non-empty certificate."""
    root = xmldoc.load(data, path, (".publishsettings",))
    if root is None or xmlsafe.local(root.tag) != "PublishData":
        return None
    schema = "1"
    subscriptions: list[dict[str, str | None]] = []
    certificates: list[str] = []
    for profile in xmldoc.children(root, "PublishProfile"):
        subs, certs = _profile(profile)
        if not certs:
            continue
        if profile.get("SchemaVersion", "").strip() == "2.0":
            schema = "2.0"
        subscriptions += subs
        certificates += certs
    certificates = list(dict.fromkeys(certificates))  # v2 repeats one certificate per subscription
    if not certificates:
        return None
    details: Details = {
        "schema_version": schema,
        "subscriptions": subscriptions,
        "certificates": [
            describe_certificate(cert) if i < MAX_PARSED_CERTIFICATES else {"parsed": False}
            for i, cert in enumerate(certificates)
        ],
    }
    return Detected(kinds.PUBLISHSETTINGS, details)


def _profile(profile: Element) -> tuple[list[dict[str, str | None]], list[str]]:
    """A management profile's subscriptions and non-empty certificates (none if not ASM)."""
    method = profile.get("PublishMethod")
    url = profile.get("Url")
    if method is not None and method.strip() != METHOD:
        return [], []
    subscriptions = xmldoc.children(profile, "Subscription")
    urls = [url, *(sub.get("ServiceManagementUrl") for sub in subscriptions)]
    if method is None and not any(azure.is_management(u) for u in urls):
        return [], []
    certs = [_cert_text(profile)]
    subs = []
    for sub in xmldoc.children(profile, "Subscription"):
        certs.append(_cert_text(sub))
        subs.append(
            {
                "id": (sub.get("Id") or "").strip() or None,
                "name": (sub.get("Name") or "").strip() or None,
                "management_url": xmldoc.clean_url(sub.get("ServiceManagementUrl") or url),
            }
        )
    return subs, [cert for cert in certs if is_der_base64(cert)]


def _cert_text(element: Element) -> str:
    """The element's certificate, whitespace removed (an attribute, or a child in odd files)."""
    raw = element.get("ManagementCertificate")
    if raw is None:
        raw = xmldoc.value(next(xmldoc.children(element, "ManagementCertificate"), None))
    return "".join(raw.split())


def is_der_base64(text: str) -> bool:
    """Whether ``text`` is base64 of one DER (or BER) structure: a SEQUENCE whose encoded length
    fits the decoded bytes. Anything else is no certificate."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) < 4 or raw[0] != 0x30:
        return False
    first = raw[1]
    if first == 0x80:  # BER indefinite length, as some Windows PKCS#12 encoders write
        return raw.endswith(b"\x00\x00")
    if first < 0x80:
        return 2 + first == len(raw)
    count = first & 0x7F
    if not 1 <= count <= 4 or len(raw) < 2 + count:
        return False
    return 2 + count + int.from_bytes(raw[2:2 + count], "big") == len(raw)


def describe_certificate(b64: str) -> dict[str, Any]:
    """Subject, expiry and thumbprint of a base64 PKCS#12, or ``{"parsed": False}``."""
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return {"parsed": False}
    # loaded here, when a certificate is met, not at start-up
    from credguard.detect import certificate

    return certificate.describe_pkcs12(raw, _MAX_SUBJECT)
