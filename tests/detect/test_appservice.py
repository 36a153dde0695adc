"""The App Service publish profile family: positive and negative tables, malformed input, and
no secret (nor user name) in any verdict."""

from __future__ import annotations

import json
from functools import partial

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
    data,
    length,
)

from credguard.detect import appservice, kinds

ALL_METHODS = ("MSDeploy", "FTP", "ZipDeploy", "ReadOnly - FTP")
PP_METHODS = ["FTP", "MSDeploy", "ZipDeploy"]

profile = builder(appservice.detect, kinds.PUBLISH_PROFILE, PP_PATH)

POSITIVE: dict[str, Case] = {
    "pp-portal": profile(
        payloads.publish_profile,
        apps=["contoso-app"],
        publish_methods=PP_METHODS,
        destination_app_urls=["http://contoso-app.azurewebsites.net"],
        has_database_passwords=False,
    ),
    "pp-bom": profile(partial(payloads.publish_profile, bom=True)),
    "pp-crlf-multiline": profile(partial(payloads.publish_profile, crlf=True, one_line=False)),
    "pp-no-declaration": profile(partial(payloads.publish_profile, declaration=False)),
    "pp-bom-crlf-no-declaration": profile(
        partial(payloads.publish_profile, bom=True, crlf=True, declaration=False)
    ),
    "pp-comment-secret": profile(partial(payloads.publish_profile, comment_secret=True)),
    "pp-all-methods": profile(
        partial(payloads.publish_profile, methods=ALL_METHODS),
        profiles=4,
        publish_hosts=length(3),
        publish_methods=PP_METHODS,
    ),
    **{
        f"pp-only-{m.replace(' ', '')}": profile(
            partial(payloads.publish_profile, app="fabrikam", methods=(m,)),
            apps=["fabrikam"],
            profiles=1,
        )
        for m in ALL_METHODS
    },
    "pp-db-password-only": profile(
        partial(payloads.publish_profile, user_password=False, db_password=True),
        has_database_passwords=True,
    ),
    "pp-db-and-user-password": profile(
        partial(payloads.publish_profile, db_password=True), has_database_passwords=True
    ),
}


def _db_without_password() -> bytes:
    payload = payloads.publish_profile(user_password=False, db_password=True)
    pwd = payload.secrets[0]
    return payload.data.replace(f"Password={pwd}".encode(), b"Integrated Security=True")


NEGATIVE: dict[str, Negative] = {
    "pp-no-passwords": (PP_PATH, data(payloads.publish_profile, user_password=False)),
    "pp-db-without-password": (PP_PATH, _db_without_password),
    "pp-given-classic-settings": (PS_PATH, data(payloads.publishsettings_v2)),
    **common_negatives(appservice.detect, {"appservice": PP_PATH}, xml=True),
}

MALFORMED: dict[str, Broken] = {
    "broken-publish-profile": (PP_PATH, lambda: payloads.publish_profile().data[:-40], NOT_XML),
}


def test_publish_profile_never_copies_user_names() -> None:
    payload = payloads.publish_profile(app="contoso-app", methods=ALL_METHODS)
    verdict = appservice.detect(payload.data, DOWNLOADS / "a.publishsettings")
    assert verdict is not None
    text = json.dumps(verdict.details) + repr(verdict.details)
    assert "$contoso-app" not in text and "userName" not in text and "control" not in text


def test_a_profile_s_urls_are_not_kept_in_urlsplit_s_cache() -> None:
    """The daemon outlives every file it deletes: the URLs read from one must not stay in the
    standard library's ``urlsplit`` cache (128 entries, Python 3.11+) after it is gone."""
    from urllib.parse import urlsplit

    urlsplit.cache_clear()
    payload = payloads.publish_profile(app="cache-probe", methods=ALL_METHODS)
    assert appservice.detect(payload.data, DOWNLOADS / "a.publishsettings") is not None
    assert urlsplit.cache_info().currsize == 0


class TestAppService(FamilyContract):
    detector = staticmethod(appservice.detect)
    positive, negative, malformed = POSITIVE, NEGATIVE, MALFORMED
