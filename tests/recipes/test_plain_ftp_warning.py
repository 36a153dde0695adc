"""``credguard exec`` warns when the publish profile it hands over is plain FTP (issue 18, item
5): the password of an ``ftp://`` profile would cross the network unencrypted, and App Service
takes FTPS on the same host (docs/recipes.md, "FTPS with lftp").

The warning names the host and nothing else of the URL; an ``ftps://`` profile, and any other
method, gets none. It is part of the handover, so the command prints the same line whether it
read the vault itself or the running daemon planned the handover; no password is ever in it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess
from helpers.home import Home, Run, run_subprocess
from helpers.recipes import vaulted
from helpers.secret_service import SecretService

from credguard.handoff.environment import plain_ftp_warning

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("tmpfs_runtime")]
Cli = Callable[..., Run]
FTP_HOST = "waws-prod-am2-123.ftp.azurewebsites.windows.net"
WARNING = (f"credguard: warning: this publish profile offers only plain FTP (ftp://{FTP_HOST}): "
           "the password would cross the network unencrypted; use FTPS "
           f"(ftps://{FTP_HOST}), which App Service accepts on the same host\n")


def env_of(method: str, url: str) -> dict[str, str]:
    return {"CREDGUARD_PUBLISH_METHOD": method, "CREDGUARD_PUBLISH_URL": url,
            "CREDGUARD_PUBLISH_USER": "app\\$app", "CREDGUARD_PUBLISH_PASSWORD": "pw-x1"}


@pytest.mark.parametrize(("method", "url", "host"), [
    ("FTP", f"ftp://{FTP_HOST}/site/wwwroot", FTP_HOST),
    ("FTP", f"FTP://{FTP_HOST}/site/wwwroot", FTP_HOST),  # a scheme is not case sensitive
    ("FTP", f"ftp://{FTP_HOST}", FTP_HOST),  # no path
    ("FTP", "ftp://127.0.0.1:2121/site", "127.0.0.1:2121"),
    ("FTP", "ftp://[::1]:21/", "[::1]:21"),
    # user information in the URL is never shown, even with a "/" in it
    ("FTP", f"ftp://app:pw-x1@{FTP_HOST}/site", FTP_HOST),
    ("FTP", f"ftp://app:p/w-x1@{FTP_HOST}/site", FTP_HOST),
    # what is not a host name character is shown as "?" (the same line on both exec paths)
    ("FTP", "ftp://h\x1b[31mst\u202e/site", "h?[31mst?"),
    ("FTP", f"ftp://{'a' * 250}/site", "a" * 200),  # and no more than 200 of them
])
def test_a_plain_ftp_profile_warns_naming_the_host_only(method: str, url: str, host: str) -> None:
    warning = plain_ftp_warning(env_of(method, url))
    assert warning == (f"this publish profile offers only plain FTP (ftp://{host}): the password "
                       f"would cross the network unencrypted; use FTPS (ftps://{host}), which "
                       "App Service accepts on the same host")
    assert "pw-x1" not in warning and "app:" not in warning


@pytest.mark.parametrize(("method", "url"), [
    ("FTP", f"ftps://{FTP_HOST}/site/wwwroot"),
    ("FTP", f"FTPS://{FTP_HOST}/site/wwwroot"),
    ("FTP", ""),
    ("FTP", "ftp:/not-a-url"),
    ("MSDeploy", "ftp://not-ftp-but-says-so/"),  # only the FTP method is an FTP upload
    ("ZipDeploy", "contoso-app.scm.azurewebsites.net:443"),
])
def test_any_other_profile_does_not_warn(method: str, url: str) -> None:
    assert plain_ftp_warning(env_of(method, url)) == ""


def test_missing_variables_do_not_warn() -> None:
    assert plain_ftp_warning({}) == ""
    assert plain_ftp_warning({"CREDGUARD_PUBLISH_URL": f"ftp://{FTP_HOST}/"}) == ""


def _exec(env: dict[str, str], item: str, *options: str) -> Run:
    child = [sys.executable, "-c", "import os; print(os.environ['CREDGUARD_PUBLISH_METHOD'])"]
    return run_subprocess("exec", item, *options, "--", *child, env=env)


def test_exec_prints_the_warning_with_the_daemon_and_without(
        secret_service: SecretService, cli: Cli, home: Home, tmp_path: Path) -> None:
    """A plain FTP profile warns when it is handed over (``--profile FTP``, and by default when
    it is the first with a password; ``--no-file`` too), an FTPS one does not; the command's
    output is the same whether the daemon planned the handover or not; the child runs as ever
    and no password shows."""
    plain = payloads.publish_profile(urls={"FTP": f"ftp://{FTP_HOST}/site/wwwroot"})
    only_plain = payloads.publish_profile(
        "solo", methods=("FTP",), urls={"FTP": f"ftp://{FTP_HOST}/site/wwwroot"})
    ftps = payloads.publish_profile("secure")
    ids = {name: vaulted(cli, home, payload, f"{name}.PublishSettings")
           for name, payload in (("plain", plain), ("only_plain", only_plain), ("ftps", ftps))}
    cases = [(ids["plain"], "--profile", "FTP"), (ids["plain"], "--no-file", "--profile", "FTP"),
             (ids["only_plain"],), (ids["plain"],), (ids["ftps"], "--profile", "FTP")]
    env = dict(os.environ)
    here = [_exec(env, *case) for case in cases]
    daemon = DaemonProcess(env, tmp_path / "daemon.log").start()
    try:
        asked = [_exec(env, *case) for case in cases]
    finally:
        assert daemon.stop() == 0
    assert daemon.stderr().count("handed over") == len(cases)  # the daemon did plan them
    assert [(r.code, r.out, r.err) for r in asked] == [(r.code, r.out, r.err) for r in here]
    assert [(r.code, r.out, r.err) for r in here] == [
        (0, "FTP\n", WARNING), (0, "FTP\n", WARNING), (0, "FTP\n", WARNING),
        (0, "MSDeploy\n", ""),  # the default profile of the full file is Web Deploy
        (0, "FTP\n", "")]
    secrets = [s for p in (plain, only_plain, ftps) for s in p.secrets]
    shown = [r.out + r.err for r in here + asked]
    assert not any(s in text for s in secrets for text in shown), "a password was printed"
