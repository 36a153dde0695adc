"""Which profile of an App Service publish profile ``exec`` hands over, and what it hands over
for attributes a profile lacks (:func:`credguard.handoff.environment.publish_profile_env`):
never the read-only disaster-recovery profile for ``--profile FTP``, the first profile with a
password by default, a clear error otherwise, and an empty value, never a made-up one, for what
the file does not say. Pure functions on generated XML: no secret is real."""

from __future__ import annotations

import pytest

from credguard.errors import InputError, UsageError
from credguard.handoff.environment import publish_profile_env

KEYS = ("CREDGUARD_PUBLISH_URL", "CREDGUARD_PUBLISH_USER", "CREDGUARD_PUBLISH_PASSWORD",
        "CREDGUARD_PUBLISH_METHOD", "CREDGUARD_SITE_URL")


def document(*profiles: dict[str, str]) -> bytes:
    inner = "".join("<publishProfile " + " ".join(f'{k}="{v}"' for k, v in p.items()) + " />"
                    for p in profiles)
    return f"<publishData>{inner}</publishData>".encode()


def profile(name: str, method: str, url: str, password: str) -> dict[str, str]:
    return {"profileName": name, "publishMethod": method, "publishUrl": url,
            "userName": f"user-{url}", "userPWD": password, "destinationAppUrl": f"site-{url}"}


READ_ONLY = profile("app - ReadOnly - FTP", "FTP", "ftps://dr.example/site", "pw-ro")
READ_ONLY_SPACED = profile("app - Read Only - FTP", "FTP", "ftps://dr2.example/site", "pw-ro2")
WRITABLE = profile("app - FTP", "FTP", "ftps://main.example/site", "pw-ftp")
DEPLOY = profile("app - Web Deploy", "MSDeploy", "app.scm.example:443", "pw-deploy")


@pytest.mark.parametrize("read_only", [READ_ONLY, READ_ONLY_SPACED,
                                       {**READ_ONLY, "profileName": "APP - READONLY - FTP"}])
def test_ftp_is_never_the_read_only_profile(read_only: dict[str, str]) -> None:
    env = publish_profile_env(document(read_only, WRITABLE, DEPLOY), "FTP")
    assert env["CREDGUARD_PUBLISH_URL"] == "ftps://main.example/site"
    assert env["CREDGUARD_PUBLISH_PASSWORD"] == "pw-ftp"
    with pytest.raises(UsageError, match=r"no FTP profile with a password \(it has: MSDeploy\)"):
        publish_profile_env(document(read_only, DEPLOY), "FTP")


def test_by_default_the_first_profile_with_a_password() -> None:
    env = publish_profile_env(document(profile("x", "MSDeploy", "a", ""), WRITABLE, DEPLOY), None)
    assert env == {"CREDGUARD_PUBLISH_URL": "ftps://main.example/site",
                   "CREDGUARD_PUBLISH_USER": "user-ftps://main.example/site",
                   "CREDGUARD_PUBLISH_PASSWORD": "pw-ftp", "CREDGUARD_PUBLISH_METHOD": "FTP",
                   "CREDGUARD_SITE_URL": "site-ftps://main.example/site"}


def test_no_profile_with_a_password_is_an_input_error() -> None:
    with pytest.raises(InputError) as caught:
        publish_profile_env(document(profile("x", "FTP", "a", "")), None)
    assert caught.value.message == "it holds no profile with a password"


def test_what_a_profile_does_not_say_is_empty() -> None:
    env = publish_profile_env(document({"publishMethod": "ZipDeploy", "userPWD": "pw"}), None)
    assert env == dict.fromkeys(KEYS, "") | {"CREDGUARD_PUBLISH_PASSWORD": "pw",
                                             "CREDGUARD_PUBLISH_METHOD": "ZipDeploy"}
    env = publish_profile_env(document({"userPWD": "pw"}), None)
    assert env == dict.fromkeys(KEYS, "") | {"CREDGUARD_PUBLISH_PASSWORD": "pw"}
