"""docs/recipes.md, "Azure Key Vault": the REAL Azure CLI (2.91.0, ./tests/run's) stores the
vaulted publish profile as a Key Vault secret, reading it from the RAM copy ``--file`` names.

az runs offline. Its sign-in is an MSAL cache as ``az login`` leaves it, holding an access token
for Key Vault (:func:`helpers.recipes.az_signed_in`, the way
tests/azcache/test_azcache_real_token.py signs az in). It reaches
``contoso-vault.vault.azure.net`` through ``HTTPS_PROXY``, a local proxy that tunnels that one
name to a local stand-in of Key Vault's secrets API and refuses every other host
(:func:`helpers.recipe_servers.connect_proxy`, :class:`helpers.recipe_servers.KeyVault`); the
stand-in's certificate, issued to that name, is trusted through ``REQUESTS_CA_BUNDLE``. TLS,
the challenge, the bearer token and the request are az's own.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import Home, Run
from helpers.recipe_servers import connect_proxy, key_vault, self_signed
from helpers.recipes import az_signed_in, credguard_bin, recipe, run_recipe, sha, vaulted
from helpers.secret_service import SecretService

from credguard.fs.facts import fs_type
from credguard.handoff.ramdir import RAM_FS

pytestmark = pytest.mark.timeout(180)
Cli = Callable[..., Run]
TITLE = "Azure Key Vault"
VAULT_HOST = "contoso-vault.vault.azure.net"


def test_az_stores_the_profile_as_a_key_vault_secret(
        secret_service: SecretService, cli: Cli, home: Home, tmpfs_runtime: Path,
        az_path_env: dict[str, str], tmp_path: Path) -> None:
    """Key Vault stored the profile's text under the recipe's name (with az's file-encoding
    tag), after challenging az once and taking its token; az read it from the RAM copy on the
    tmpfs and printed nothing; neither the profile nor its password was in a command line.
    (``tmpfs_runtime`` comes before ``az_path_env``, which copies the environment.)"""
    payload = payloads.publish_profile()
    item = vaulted(cli, home, payload)
    sign_in = az_signed_in(home.azure)
    tls = self_signed(tmp_path / "tls", VAULT_HOST)
    with key_vault(tls, sign_in.access_token, sign_in.tenant) as vault, \
            connect_proxy({VAULT_HOST: vault.port}) as proxy:
        env = {k: v for k, v in az_path_env.items() if k.lower() != "no_proxy"}
        env.update(HTTPS_PROXY=proxy.url, HTTP_PROXY=proxy.url,
                   REQUESTS_CA_BUNDLE=str(tls.cert),
                   PATH=f"{credguard_bin(tmp_path / 'bin')}{os.pathsep}{env['PATH']}")
        ran = run_recipe(recipe(TITLE), item, env, tmp_path, tmp_path / "trace", timeout=150)
    assert ran.code == 0, ran.err
    assert ran.out == ""  # --output none: az did not print the stored value back
    assert list(vault.stored) == ["webapp-publish-profile"]
    value, tags = vault.stored["webapp-publish-profile"]
    assert sha(value) == sha(payload.data.decode())
    assert tags == {"file-encoding": "utf-8"}
    assert vault.challenged == 1 and len(vault.requests) == 2  # the challenge, then the secret
    assert f"{VAULT_HOST}:443" in proxy.asked
    assert ran.leaks(*payload.secrets, payload.data.decode()) == []
    words = ran.argv_words("az")
    assert words[:4] == ["az", "keyvault", "secret", "set"]
    ram_copy = Path(words[words.index("--file") + 1])
    assert ram_copy.is_relative_to(tmpfs_runtime) and fs_type(tmpfs_runtime) in RAM_FS
    assert re.fullmatch(r"[\w.-]+\.PublishSettings", ram_copy.name)
    assert not ram_copy.exists()  # removed when az exited
