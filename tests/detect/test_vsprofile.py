"""The Visual Studio publish profile family (.pubxml, .pubxml.user): positive and negative
tables, malformed input, and no secret in any verdict."""

from __future__ import annotations

from functools import partial

from helpers import payloads
from helpers.detection import (
    DOWNLOADS,
    GUID,
    NOT_XML,
    PUBXML,
    PUBXML_USER,
    Broken,
    Case,
    FamilyContract,
    Negative,
    builder,
    common_negatives,
    const,
    data,
)

from credguard.detect import kinds, vsprofile

CSPROJ = (
    b'<Project Sdk="Microsoft.NET.Sdk"><PropertyGroup><TargetFramework>net8.0'
    b"</TargetFramework><Password>hunter2</Password></PropertyGroup></Project>"
)

vs = builder(vsprofile.detect, kinds.VS_PUBLISH_SECRET, PUBXML)

POSITIVE: dict[str, Case] = {
    "vs-pubxml-password": vs(
        payloads.pubxml,
        file_type="pubxml",
        publish_method="MSDeploy",
        site_name="contoso-app",
        service_url="contoso-app.scm.azurewebsites.net:443",
        subscription_id=GUID.match,
        has_plaintext_password=True,
        has_encrypted_password=False,
    ),
    "vs-pubxml-namespace": vs(
        partial(payloads.pubxml, namespace=True), has_plaintext_password=True
    ),
    "vs-pubxml-connection-string": vs(
        partial(payloads.pubxml, password=False, connection_strings=True),
        has_plaintext_password=False,
        connection_string_names=["DefaultConnection-Web.config Connection String"],
    ),
    "vs-pubxml-user-encrypted": vs(
        payloads.pubxml_user,
        PUBXML_USER,
        file_type="pubxml.user",
        has_encrypted_password=True,
        connection_string_names=[],
    ),
    "vs-pubxml-user-no-namespace": vs(
        partial(payloads.pubxml_user, namespace=False), PUBXML_USER, has_encrypted_password=True
    ),
    # No publish marker: only its name makes it a publish profile, so it is not sniffed.
    "vs-pubxml-user-connection-strings-only": vs(
        partial(payloads.pubxml_user, encrypted=False, connection_strings=True),
        PUBXML_USER,
        sniffable=False,
        has_encrypted_password=False,
        connection_string_names=["DefaultConnection"],
    ),
}

NEGATIVE: dict[str, Negative] = {
    "vs-pubxml-no-password": (PUBXML, data(payloads.pubxml, password=False)),
    "vs-pubxml-user-empty": (PUBXML_USER, data(payloads.pubxml_user, encrypted=False)),
    "vs-csproj-password-renamed": (DOWNLOADS / "build.xml", const(CSPROJ)),
    **common_negatives(vsprofile.detect, {"pubxml": PUBXML, "pubxml-user": PUBXML_USER}, xml=True),
}

MALFORMED: dict[str, Broken] = {
    "json-named-pubxml": (PUBXML, const(b"{}"), NOT_XML),
}


class TestVsProfile(FamilyContract):
    detector = staticmethod(vsprofile.detect)
    positive, negative, malformed = POSITIVE, NEGATIVE, MALFORMED
