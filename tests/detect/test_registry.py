"""The registry on its own: nothing found in mere mentions, and Malformed only for a file whose
name promised a format. Each family's module checks that the registry routes its positive cases,
by name and by content."""

from __future__ import annotations

import pytest
from helpers import payloads
from helpers.detection import AZURE, DOWNLOADS, PROFILE_PATH, XML_MENTIONS

from credguard.detect import registry
from credguard.detect.base import Malformed


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize(
    "data",
    [b"", payloads.mentions_only(), XML_MENTIONS],
    ids=["empty", "mentions-only", "mentions-in-xml"],
)
def test_registry_negative(data: bytes, strict: bool) -> None:
    for name in ("readme.txt", "notes", "notes.xml"):
        assert registry.detect_bytes(data, DOWNLOADS / name, strict=strict) is None


def test_registry_modern_azure_profile_is_not_a_finding() -> None:
    families = registry.by_name(AZURE, "azureProfile.json")
    assert (
        registry.detect_bytes(payloads.modern_azure_profile().data, PROFILE_PATH, families) is None
    )


def test_registry_raises_malformed_for_a_named_file_only() -> None:
    path = AZURE / "msal_token_cache.json"
    with pytest.raises(Malformed, match="not valid JSON"):
        registry.detect_bytes(b"{oops", path, registry.by_name(AZURE, path.name))
    assert registry.detect_bytes(b"{oops", DOWNLOADS / "x.json", strict=False) is None
