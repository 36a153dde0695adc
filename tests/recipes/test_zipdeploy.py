"""docs/recipes.md, "ZipDeploy with curl" and "dotnet publish": a vaulted publish profile's
ZipDeploy (and Web Deploy) user and password reach the deploying tool through its environment
or standard input, never a command line.

- curl is the REAL one (Debian's), posting to a local HTTPS stand-in of Kudu's
  ``/api/zipdeploy`` (:class:`helpers.recipe_servers.Kudu`) that checks the basic
  authentication; its certificate is trusted through ``CURL_CA_BUNDLE``.
- dotnet is a STAND-IN (tests/helpers/standin_dotnet.py says why: the .NET SDK cannot be
  installed here): it reads the properties as MSBuild would and, for ZipDeploy, posts to the
  same Kudu stand-in as the SDK's ZipDeploy task.

strace records every command line; the first test's negative twin shows the check catches the
``curl -u`` form the recipe avoids.
"""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import HELPERS, Home, Run
from helpers.recipe_servers import Kudu, kudu, self_signed
from helpers.recipes import EXAMPLE_ID, Ran, credguard_bin, recipe, run_recipe, sha, vaulted
from helpers.secret_service import SecretService

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("tmpfs_runtime")]
Cli = Callable[..., Run]
CURL = "ZipDeploy with curl"
DOTNET = "dotnet publish (ZipDeploy or MSDeploy)"
# the guide's old example: curl -u puts USER:PASSWORD in curl's command line
CURL_U = (f"credguard exec {EXAMPLE_ID} --profile ZipDeploy -- sh -c 'curl -u "
          "\"$CREDGUARD_PUBLISH_USER:$CREDGUARD_PUBLISH_PASSWORD\" --fail --silent "
          "--data-binary @app.zip \"https://$CREDGUARD_PUBLISH_URL/api/zipdeploy\"'")


def app_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:  # a fixed time: the same bytes on every call
        archive.writestr(zipfile.ZipInfo("index.html", (2026, 1, 1, 0, 0, 0)),
                         "<h1>contoso</h1>\n")
    return out.getvalue()


def deploy(cli: Cli, home: Home, tmp_path: Path, script: str, *path: Path,
           **extra_env: str) -> tuple[Kudu, payloads.Payload, Ran]:
    """Vault a profile whose ZipDeploy URL is a Kudu stand-in's that takes its user and
    password, and run ``script`` (a recipe) in a directory holding ``app.zip``, with ``path``
    in front of PATH: the stand-in, the profile and the run."""
    tls = self_signed(tmp_path / "tls")
    with kudu(tls, "", "") as server:
        payload = payloads.publish_profile(urls={"ZipDeploy": f"127.0.0.1:{server.port}"})
        server.user, server.password = "$contoso-app", payload.secrets[0]
        (tmp_path / "app.zip").write_bytes(app_zip())
        front = [str(credguard_bin(tmp_path / "bin")), *map(str, path)]
        env = {**os.environ, **extra_env, "CURL_CA_BUNDLE": str(tls.cert),
               "SSL_CERT_FILE": str(tls.cert),
               "PATH": os.pathsep.join([*front, os.environ["PATH"]])}
        ran = run_recipe(script, vaulted(cli, home, payload), env, tmp_path, tmp_path / "trace")
    return server, payload, ran


def test_curl_zipdeploys_with_the_password_on_its_stdin_only(
        secret_service: SecretService, cli: Cli, home: Home, tmp_path: Path) -> None:
    """Kudu received the zip with the profile's user and password; the password was in no
    command line (strace saw curl's) and nothing was printed."""
    server, payload, ran = deploy(cli, home, tmp_path, recipe(CURL))
    assert ran.code == 0, ran.err
    assert (ran.out, ran.err) == ("", "")
    assert [sha(z) for z in server.deployed] == [sha(app_zip())] and server.refused == 0
    assert ran.leaks(*payload.secrets) == []
    assert ran.argv_words("curl")[:3] == ["curl", "--config", "-"]  # the real curl ran


def test_curl_u_would_put_the_password_in_a_command_line(
        secret_service: SecretService, cli: Cli, home: Home, tmp_path: Path) -> None:
    """The form the recipe avoids deploys just as well, and the check that passes the recipe
    finds the password in curl's command line: it can fail."""
    server, payload, ran = deploy(cli, home, tmp_path, CURL_U)
    assert ran.code == 0, ran.err
    assert len(server.deployed) == 1
    assert ran.leaks(*payload.secrets) == ["a command line"]


def test_kudu_refuses_a_wrong_password(
        secret_service: SecretService, cli: Cli, home: Home, tmp_path: Path) -> None:
    """The stand-in checks what it is given: a profile with another password deploys nothing
    and curl fails (``--fail``)."""
    tls = self_signed(tmp_path / "tls")
    with kudu(tls, "$contoso-app", "not-the-profile-password") as server:
        payload = payloads.publish_profile(urls={"ZipDeploy": f"127.0.0.1:{server.port}"})
        (tmp_path / "app.zip").write_bytes(app_zip())
        env = {**os.environ, "CURL_CA_BUNDLE": str(tls.cert),
               "PATH": f"{credguard_bin(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}"}
        ran = run_recipe(recipe(CURL), vaulted(cli, home, payload), env, tmp_path,
                         tmp_path / "trace")
    assert ran.code == 22, ran.err  # curl: HTTP error
    assert server.deployed == [] and server.refused == 1
    assert ran.leaks(*payload.secrets) == []


def dotnet_bin(where: Path) -> Path:
    """A directory holding a ``dotnet`` that runs the stand-in with this test's Python."""
    where.mkdir(parents=True, exist_ok=True)
    launcher = where / "dotnet"
    launcher.write_text(f"#!{sys.executable}\nimport runpy\n"
                        f"runpy.run_path({str(HELPERS / 'standin_dotnet.py')!r}, "
                        "run_name='__main__')\n")
    launcher.chmod(0o755)
    return where


def test_dotnet_zipdeploy_gets_the_user_and_password_from_its_environment(
        secret_service: SecretService, cli: Cli, home: Home, tmp_path: Path) -> None:
    """STAND-IN dotnet: its environment held the profile's user and password (Kudu took
    them), its command line the method and the publish URL, and no command line held the
    password."""
    record = tmp_path / "dotnet.json"
    server, payload, ran = deploy(cli, home, tmp_path, recipe(DOTNET),
                                  dotnet_bin(tmp_path / "dotnet-bin"),
                                  DOTNET_STANDIN_RECORD=str(record))
    assert ran.code == 0, ran.err
    got = json.loads(record.read_text())
    assert got["problem"] == "" and got["secrets_in_argv"] == []
    assert got["password_sha256"] == sha(payload.secrets[0])
    assert got["username_sha256"] == sha("$contoso-app")
    assert got["properties"] == {"publishurl": f"https://127.0.0.1:{server.port}",
                                 "webpublishmethod": "ZipDeploy"}
    assert len(server.deployed) == 1 and server.refused == 0
    assert ran.leaks(*payload.secrets) == []
    assert ran.argv_words("dotnet")[:2] == ["dotnet", "publish"]


def test_dotnet_msdeploy_gets_the_user_and_password_from_its_environment(
        secret_service: SecretService, cli: Cli, home: Home, tmp_path: Path) -> None:
    """STAND-IN dotnet, Web Deploy: the profile's MSDeploy URL and the site in its command
    line, its user and password in the environment only (nothing is deployed: Web Deploy's
    protocol is not imitated)."""
    payload = payloads.publish_profile()
    record = tmp_path / "dotnet.json"
    front = [credguard_bin(tmp_path / "bin"), dotnet_bin(tmp_path / "dotnet-bin")]
    env = {**os.environ, "DOTNET_STANDIN_RECORD": str(record),
           "PATH": os.pathsep.join([*map(str, front), os.environ["PATH"]])}
    ran = run_recipe(recipe(DOTNET, 1), vaulted(cli, home, payload), env, tmp_path,
                     tmp_path / "trace")
    assert ran.code == 0, ran.err
    got = json.loads(record.read_text())
    assert got["problem"] == "" and got["secrets_in_argv"] == []
    assert got["password_sha256"] == sha(payload.secrets[0])
    assert got["username_sha256"] == sha("$contoso-app")
    assert got["properties"] == {"deployiisapppath": "contoso-app",
                                 "msdeploypublishmethod": "WMSVC",
                                 "msdeployserviceurl": "contoso-app.scm.azurewebsites.net:443",
                                 "webpublishmethod": "MSDeploy"}
    assert ran.leaks(*payload.secrets) == []
