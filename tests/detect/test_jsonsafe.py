"""The JSON loader's nesting bound, seen through a detector: too deep is Malformed, at the limit
is fine."""

from __future__ import annotations

from pathlib import PurePath

import pytest
from helpers.detection import AZURE, MSAL_PATH, Broken, Maker, check_malformed, rows

from credguard.detect import azcli, jsonsafe


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


MALFORMED: dict[str, Broken] = {
    "nested-100000": (MSAL_PATH, lambda: _nested(100_000), "deep"),
    "nested-65": (MSAL_PATH, lambda: _nested(jsonsafe.MAX_DEPTH + 1), "deep"),
}


@pytest.mark.parametrize(("path", "make", "message"), rows(MALFORMED))
def test_malformed(path: PurePath, make: Maker, message: str) -> None:
    check_malformed(azcli.detect, path, make, message)


def test_nesting_at_the_limit_is_accepted() -> None:
    assert azcli.detect(_nested(jsonsafe.MAX_DEPTH), AZURE / "msal_token_cache.json") is None
