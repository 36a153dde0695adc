"""The Visual Studio publish profile family (.pubxml, .pubxml.user): positive and negative
tables, malformed input, and no secret in any verdict."""

from __future__ import annotations

from functools import partial
from pathlib import PurePath

import pytest
from helpers import payloads
from helpers.detection import (
    DOWNLOADS,
    GUID,
    NOT_XML,
    PUBXML,
    PUBXML_USER,
    RENAMES,
    Broken,
    Case,
    Maker,
    Negative,
    builder,
    cases,
    check_found_by_content,
    check_malformed,
    check_picked_by_name,
    check_positive,
    check_truncated,
    common_negatives,
    const,
    data,
    rows,
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


@pytest.mark.parametrize("case", cases(POSITIVE))
def test_positive(case: Case) -> None:
    check_positive(case)


@pytest.mark.parametrize("case", cases(POSITIVE))
def test_registry_picks_the_family_by_name(case: Case) -> None:
    check_picked_by_name(case)


@pytest.mark.parametrize("case", cases(POSITIVE, sniffable_only=True))
@pytest.mark.parametrize("name", RENAMES)
def test_registry_finds_a_renamed_file_by_content(case: Case, name: str) -> None:
    check_found_by_content(case, name)


@pytest.mark.parametrize("case", cases(POSITIVE))
def test_truncated_payload_leaks_nothing(case: Case) -> None:
    check_truncated(case)


@pytest.mark.parametrize(("path", "make"), rows(NEGATIVE))
def test_negative(path: PurePath, make: Maker) -> None:
    assert vsprofile.detect(make(), path) is None


@pytest.mark.parametrize(("path", "make", "message"), rows(MALFORMED))
def test_malformed(path: PurePath, make: Maker, message: str) -> None:
    check_malformed(vsprofile.detect, path, make, message)
