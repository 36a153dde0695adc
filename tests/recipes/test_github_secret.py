"""docs/recipes.md, "GitHub Actions": the REAL ``gh`` (Debian's 2.23) sets the vaulted publish
profile as a repository's Actions secret, reading it from the RAM copy on its standard input.

gh talks to a local stand-in of the GitHub REST API (:class:`helpers.recipe_servers.GitHubApi`)
as to a GitHub Enterprise Server host on 127.0.0.1 (``GH_HOST``, ``GH_ENTERPRISE_TOKEN``,
the stand-in's self-signed certificate trusted through ``SSL_CERT_FILE``). gh encrypts the
value to the repository's public key, as for github.com; the stand-in holds the private key,
so the test opens what arrived and compares it with the profile.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import Home, Run
from helpers.recipe_servers import github_api, self_signed
from helpers.recipes import credguard_bin, recipe, run_recipe, sha, vaulted
from helpers.secret_service import SecretService

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("tmpfs_runtime")]
Cli = Callable[..., Run]
TITLE = "GitHub Actions: the profile as a repository secret"
SECRET = "AZURE_WEBAPP_PUBLISH_PROFILE"


def test_gh_sets_the_profile_as_an_actions_secret(
        secret_service: SecretService, cli: Cli, home: Home, tmp_path: Path) -> None:
    """The secret GitHub received opens to the profile (gh drops trailing newlines only);
    neither the profile nor its password was in any command line or in the output."""
    payload = payloads.publish_profile()
    item = vaulted(cli, home, payload)
    tls, token = self_signed(tmp_path / "tls"), secrets.token_urlsafe(24)
    with github_api(tls, token) as api:
        env = {**os.environ,
               "PATH": f"{credguard_bin(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}",
               "GH_HOST": api.host, "GH_ENTERPRISE_TOKEN": token, "SSL_CERT_FILE": str(tls.cert),
               "GH_CONFIG_DIR": str(tmp_path / "gh-config"), "GH_NO_UPDATE_NOTIFIER": "1",
               "GH_PROMPT_DISABLED": "1"}
        ran = run_recipe(recipe(TITLE), item, env, tmp_path, tmp_path / "trace")
    assert ran.code == 0, ran.err
    assert api.requests == ["GET /api/v3/repos/contoso/webapp/actions/secrets/public-key",
                            f"PUT /api/v3/repos/contoso/webapp/actions/secrets/{SECRET}"]
    assert sha(api.secret(SECRET)) == sha(payload.data.rstrip(b"\r\n"))
    assert ran.leaks(*payload.secrets, payload.data.decode()) == []
    assert ran.argv_words("gh")[:3] == ["gh", "secret", "set"]  # the real gh ran
