"""Hostile XML (billion laughs, XXE, internal entities) is refused by every XML family, directly
and through the registry, quickly and without reading or quoting anything."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path, PurePath

import pytest
from helpers import payloads
from helpers.detection import DOWNLOADS, HOME, assert_no_secret

from credguard.detect import appservice, publishsettings, registry, vsprofile
from credguard.detect.base import DetectFn, Hostile

XML_CASES = [
    pytest.param(fn, path, id=fn.__module__.rsplit(".", 1)[-1])
    for fn, path in (
        (publishsettings.detect, DOWNLOADS / "laughs.publishsettings"),
        (appservice.detect, DOWNLOADS / "laughs.publishsettings"),
        (vsprofile.detect, HOME / "p/laughs.pubxml"),
    )
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("family", "path"), XML_CASES)
def test_billion_laughs_is_refused_quickly(family: DetectFn, path: PurePath) -> None:
    start = time.monotonic()
    with pytest.raises(Hostile):
        family(payloads.billion_laughs(), path)
    with pytest.raises(Hostile):  # also when only sniffed: hostile XML is always reported
        registry.detect_bytes(payloads.billion_laughs(), DOWNLOADS / "laughs.txt", strict=False)
    assert time.monotonic() - start < 2


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("family", "path"), XML_CASES)
def test_xxe_is_refused_and_never_read(family: DetectFn, path: PurePath, tmp_path: Path) -> None:
    marker = "XXE-MARKER-" + base64.b32encode(os.urandom(10)).decode()
    target = tmp_path / "target.txt"
    target.write_text(marker)
    data = payloads.xxe(target)
    with pytest.raises(Hostile) as info:
        family(data, path)
    with pytest.raises(Hostile) as via_registry:
        registry.detect_bytes(data, path, registry.by_name(path.parent, path.name))
    assert_no_secret(
        (marker,),
        info.value,
        info.value.args,
        via_registry.value,
        info.value.__context__,
        info.value.__cause__,
    )


def test_internal_entity_in_publish_profile_is_hostile() -> None:
    data = (
        b'<?xml version="1.0"?><!DOCTYPE publishData [<!ENTITY p "x">]>'
        b'<publishData><publishProfile userPWD="&p;" /></publishData>'
    )
    with pytest.raises(Hostile):
        appservice.detect(data, DOWNLOADS / "a.publishsettings")
