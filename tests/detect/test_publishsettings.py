"""The classic publish settings family (schema 1 and 2.0): positive and negative tables,
malformed input, and no secret in any verdict."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from helpers import payloads
from helpers.detection import (
    DOWNLOADS,
    NOT_XML,
    PP_PATH,
    PS_PATH,
    Broken,
    Case,
    FamilyContract,
    Negative,
    builder,
    common_negatives,
    const,
    data,
    length,
)

from credguard.detect import kinds, publishsettings

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
CHINA = "https://management.core.chinacloudapi.cn/"


def all_parsed(value: list[dict[str, Any]]) -> bool:
    return bool(value) and all(
        c["parsed"] and c["subject"] == "CN=Windows Azure Tools" and ISO_UTC.match(c["not_after"])
        for c in value
    )


settings = builder(publishsettings.detect, kinds.PUBLISHSETTINGS, PS_PATH)

POSITIVE: dict[str, Case] = {
    "ps-v1": settings(
        payloads.publishsettings_v1,
        schema_version="1",
        subscriptions=length(1),
        certificates=all_parsed,
    ),
    "ps-v1-three-subscriptions": settings(
        partial(payloads.publishsettings_v1, n_subs=3),
        subscriptions=length(3),
        certificates=length(1),
    ),
    "ps-v2": settings(
        payloads.publishsettings_v2,
        schema_version="2.0",
        subscriptions=length(2),
        certificates=all_parsed,
    ),
    "ps-v1-cert-unparsable": settings(
        partial(payloads.publishsettings_v1, cert_ok=False), certificates=[{"parsed": False}]
    ),
    "ps-v2-cert-unparsable": settings(
        partial(payloads.publishsettings_v2, cert_ok=False), certificates=[{"parsed": False}] * 2
    ),
    "ps-v1-no-publish-method": settings(partial(payloads.publishsettings_v1, method=None)),
    "ps-v2-china-cloud": settings(
        partial(payloads.publishsettings_v2, endpoint=CHINA),
        DOWNLOADS / "x.PUBLISHSETTINGS",
        subscriptions=lambda subs: {s["management_url"] for s in subs} == {CHINA},
    ),
}

NEGATIVE: dict[str, Negative] = {
    "ps-empty-certificate-v1": (PS_PATH, data(payloads.publishsettings_v1, empty_cert=True)),
    "ps-empty-certificate-v2": (PS_PATH, data(payloads.publishsettings_v2, empty_cert=True)),
    "ps-other-publish-method": (PS_PATH, data(payloads.publishsettings_v1, method="MSDeploy")),
    "ps-wrong-case-root": (
        PS_PATH,
        lambda: payloads.publishsettings_v1().data.replace(b"PublishData", b"publishData"),
    ),
    "ps-given-app-service-profile": (PP_PATH, data(payloads.publish_profile)),
    **common_negatives(publishsettings.detect, {"publishsettings": PS_PATH}, xml=True),
}

MALFORMED: dict[str, Broken] = {
    "prose-named-publishsettings": (PS_PATH, payloads.mentions_only, NOT_XML),
    "broken-publishsettings": (PS_PATH, const(b"<PublishData><PublishProfile"), NOT_XML),
}


class TestPublishSettings(FamilyContract):
    detector = staticmethod(publishsettings.detect)
    positive, negative, malformed = POSITIVE, NEGATIVE, MALFORMED
