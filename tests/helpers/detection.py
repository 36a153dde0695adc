"""What the detector tests share: where the credential files live, table builders, and the checks
every family passes (details without secrets, registry routing, truncation, malformed input)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, ClassVar

import pytest

from credguard.detect import registry
from credguard.detect.base import Detected, DetectFn, Hostile, Malformed
from helpers import payloads
from helpers.payloads import Payload

HOME = PurePath("/home/dev")
DOWNLOADS = HOME / "Downloads"
AZURE = HOME / ".azure"
PS = HOME / ".Azure"
AZD = HOME / ".azd" / "auth"
PS_PATH = DOWNLOADS / "Fake-Dev-1-2-2026-credentials.publishsettings"
PP_PATH = DOWNLOADS / "contoso-app.PublishSettings"
PUBXML = HOME / "src/Properties/PublishProfiles/prod.pubxml"
PUBXML_USER = HOME / "src/Properties/PublishProfiles/prod.pubxml.user"
MSAL_PATH = AZURE / "msal_token_cache.json"
ADAL_PATH = AZURE / "accessTokens.json"
SP_PATH = AZURE / "service_principal_entries.json"
PROFILE_PATH = AZURE / "azureProfile.json"
CONTEXT_PATH = PS / "AzureRmContext.json"
IDENTITY_PATH = HOME / ".IdentityService" / "msal.cache"
AZD_CACHE_PATH = AZD / "msal" / "cache.json"
AZD_CRED_PATH = AZD / "credt.c.json"

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NOT_JSON, NOT_XML = "not valid JSON", "not well-formed XML"
XML_MENTIONS = (
    b"<doc><p>PublishData, publishData, ManagementCertificate, userPWD, "
    b"EncryptedPassword, RefreshToken</p></doc>"
)
RENAMES = ["renamed.txt", "download"]  # neutral names a credential file may be saved under

Maker = Callable[[], bytes]
Negative = tuple[PurePath, Maker]  # a file a family must not report
Broken = tuple[PurePath, Maker, str]  # a file a family must refuse, and the message it gives


def assert_no_secret(secrets: tuple[str, ...], *texts: object) -> None:
    """None of ``secrets`` appears in any text (details as JSON and repr, messages...)."""
    rendered = [json.dumps(t) if isinstance(t, dict) else str(t) for t in texts]
    rendered += [repr(t) for t in texts]
    for secret in secrets:
        assert secret, "an empty secret would match anything"
        for text in rendered:
            assert secret not in text


def length(n: int) -> Callable[[Any], bool]:
    return lambda value: len(value) == n


def data(factory: Callable[..., Payload], **kwargs: Any) -> Maker:
    """A bytes maker from a payload factory and its arguments."""
    return lambda: factory(**kwargs).data


def const(raw: bytes) -> Maker:
    return lambda: raw


def encoded(factory: Callable[[], Payload], encoding: str) -> Callable[[], Payload]:
    """The same payload re-encoded (``utf-8-sig`` adds a BOM; ``utf-16`` as Windows tools may)."""

    def make() -> Payload:
        payload = factory()
        return Payload(payload.data.decode("utf-8").encode(encoding), payload.secrets)

    return make


@dataclass(frozen=True)
class Case:
    """One positive payload: where it lives, who judges it, and what the details must say."""

    family: DetectFn
    path: PurePath
    make: Callable[[], Payload]
    kind: str
    expect: dict[str, Any] = field(default_factory=dict)  # value, or predicate on the value
    sniffable: bool = True  # found by content alone under a neutral name, as the same kind


def builder(family: DetectFn, kind: str, default: PurePath) -> Callable[..., Case]:
    """A per-family Case maker: ``(factory, path=default, *, sniffable=True, **expect)``."""

    def build(
        make: Callable[[], Payload],
        path: PurePath = default,
        *,
        sniffable: bool = True,
        **expect: Any,
    ) -> Case:
        return Case(family, path, make, kind, expect, sniffable)

    return build


def cases(table: Mapping[str, Case], *, sniffable_only: bool = False) -> list[Any]:
    """A table of positive cases as pytest params named by their keys."""
    return [pytest.param(c, id=n) for n, c in table.items() if c.sniffable or not sniffable_only]


def rows(table: Mapping[str, tuple[Any, ...]]) -> list[Any]:
    """A table of argument tuples as pytest params named by their keys."""
    return [pytest.param(*v, id=k) for k, v in table.items()]


def common_negatives(
    family: DetectFn, named: Mapping[str, PurePath], *, xml: bool
) -> dict[str, Negative]:
    """What no family reports: its own file names when empty or blank, a mere mention of the
    marker words (as prose and as XML), and a credential document of the other format."""
    mod = family.__module__.rsplit(".", 1)[-1]
    table: dict[str, Negative] = {}
    for name, path in named.items():
        table[f"empty-{name}"] = (path, const(b""))
        table[f"blank-{name}"] = (path, const(b" \r\n\t"))
    table[f"mentions-only-{mod}"] = (DOWNLOADS / "readme.txt", payloads.mentions_only)
    table[f"mentions-in-xml-{mod}"] = (DOWNLOADS / "notes.xml", const(XML_MENTIONS))
    if xml:
        table[f"json-given-to-{mod}"] = (DOWNLOADS / "x.json", data(payloads.msal_cache))
    else:
        table[f"xml-given-to-{mod}"] = (DOWNLOADS / "x", data(payloads.publish_profile))
    return table


def check_details(
    case: Case, verdict: Detected | None, payload: Payload, *, expect: bool = True
) -> Detected:
    """The verdict has the case's kind (and expected details), and no secret in its details."""
    assert verdict is not None
    assert verdict.kind == case.kind
    for key, want in case.expect.items() if expect else ():
        got = verdict.details[key]
        assert want(got) if callable(want) else got == want, (key, got)
    assert_no_secret(payload.secrets, verdict.details)
    return verdict


def check_positive(case: Case) -> None:
    """The family reports the case with the expected details."""
    payload = case.make()
    check_details(case, case.family(payload.data, case.path), payload)


def check_picked_by_name(case: Case) -> None:
    """The registry hands the case's file name to its family and returns the family's verdict."""
    payload = case.make()
    families = registry.by_name(case.path.parent, case.path.name)
    assert case.family in families
    verdict = registry.detect_bytes(payload.data, case.path, families)
    assert verdict == case.family(payload.data, case.path)


def check_found_by_content(case: Case, name: str) -> None:
    """The registry's sniffing finds the case saved under a neutral ``name``, as the same kind."""
    payload = case.make()
    verdict = registry.detect_bytes(payload.data, DOWNLOADS / name, strict=False)
    check_details(case, verdict, payload, expect=False)  # details may differ (file_type)


def check_truncated(case: Case) -> None:
    """Half a credential file: a verdict, nothing or Malformed, never a secret in any of them."""
    payload = case.make()
    for cut in (len(payload.data) // 2, len(payload.data) - 3):
        try:
            verdict = case.family(payload.data[:cut], case.path)
        except Malformed as exc:
            assert_no_secret(payload.secrets, exc, exc.args)
        else:
            assert_no_secret(payload.secrets, verdict.details if verdict else {})


def check_malformed(family: DetectFn, path: PurePath, make: Maker, message: str) -> None:
    """The family refuses the bytes as Malformed (not Hostile) with ``message``."""
    with pytest.raises(Malformed, match=message) as info:
        family(make(), path)
    assert not isinstance(info.value, Hostile)


class FamilyContract:
    """The tests every detector family passes. A test module subclasses it and names its
    detector and tables; the tables parametrize the inherited tests."""

    detector: ClassVar[DetectFn]
    positive: ClassVar[Mapping[str, Case]]
    negative: ClassVar[Mapping[str, Negative]]
    malformed: ClassVar[Mapping[str, Broken]]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        names = metafunc.fixturenames
        if "case" in names:
            sniffable_only = "renamed" in names
            metafunc.parametrize("case", cases(self.positive, sniffable_only=sniffable_only))
        if "renamed" in names:
            metafunc.parametrize("renamed", RENAMES)
        if "message" in names:
            metafunc.parametrize(("path", "make", "message"), rows(self.malformed))
        elif "make" in names:
            metafunc.parametrize(("path", "make"), rows(self.negative))

    def test_positive(self, case: Case) -> None:
        check_positive(case)

    def test_registry_picks_the_family_by_name(self, case: Case) -> None:
        check_picked_by_name(case)

    def test_registry_finds_a_renamed_file_by_content(self, case: Case, renamed: str) -> None:
        check_found_by_content(case, renamed)

    def test_truncated_payload_leaks_nothing(self, case: Case) -> None:
        check_truncated(case)

    def test_negative(self, path: PurePath, make: Maker) -> None:
        assert type(self).detector(make(), path) is None

    def test_malformed(self, path: PurePath, make: Maker, message: str) -> None:
        check_malformed(type(self).detector, path, make, message)
