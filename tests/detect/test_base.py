"""The promise of :class:`~credguard.detect.base.Malformed`: its message never quotes the
content, for XML and JSON families alike."""

from __future__ import annotations

import pytest
from helpers import payloads
from helpers.detection import AZURE, DOWNLOADS, assert_no_secret

from credguard.detect import appservice, azcli
from credguard.detect.base import Malformed


def test_malformed_messages_never_quote_the_content() -> None:
    payload = payloads.publish_profile(db_password=True)
    broken = payload.data.replace(b"<databases />", b"<databases>", 1)
    with pytest.raises(Malformed) as info:
        appservice.detect(broken, DOWNLOADS / "a.publishsettings")
    assert_no_secret(payload.secrets, info.value)
    payload = payloads.sp_entries()
    with pytest.raises(Malformed) as info:
        azcli.detect(
            payload.data.replace(b'"client_secret"', b"client_secret"),
            AZURE / "service_principal_entries.json",
        )
    assert_no_secret(payload.secrets, info.value)
