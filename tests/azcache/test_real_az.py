"""The real Azure CLI (azure-cli 2.91.0, installed by ./tests/run) works here, offline, under
the suite's isolation: the ground the ``credguard az`` tests stand on."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers.home import Home

# What az 2.91.0 does with its config dir ($AZURE_CONFIG_DIR, default ~/.azure), found by running
# it and reading azure/cli/core/ (_profile.py, util.py, _session.py, auth/identity.py,
# auth/persistence.py), knack/config.py and msal_extensions:
# - Token cache encryption: core.encrypt_token_cache (env AZURE_CORE_ENCRYPT_TOKEN_CACHE wins over
#   the config file) defaults to true on Windows only. True on Linux: the payload goes to libsecret
#   (schema "my_schema_name", attributes my_attr1=foo, my_attr2=bar: the same for both stores) and
#   msal_token_cache.bin / service_principal_entries.bin are only touched as change signals (no
#   .sig); that needs PyGObject, which a pip-installed az lacks, so az then fails. Plaintext (the
#   Linux default): msal_token_cache.json, service_principal_entries.json.
# - Both are rewritten in place, os.open(O_RDWR|O_CREAT|O_TRUNC, 0o600): an existing file keeps
#   its mode and inode, symlinks are followed; under <file>.lockfile (created O_EXCL, flock'ed,
#   holding "PID argv0", unlinked afterwards). Reads take no lock. `az account clear` unlinks both
#   (.json and .bin); `az logout` and `az account clear` also delete accessTokens.json (ADAL, else
#   unused). aksServicePrincipal.json / acsServicePrincipal.json are not used by 2.91 at all.
# - azureProfile.json (and az.json, az.sess, the index files) is rewritten in place with
#   open("w", encoding="utf-8-sig"): a UTF-8 BOM, mode from the umask, symlinks followed; read as
#   utf-8-sig, so a file with or without BOM works. `config` is rewritten in place by configparser,
#   then chmod 0600 (following symlinks).
# - A hand-built azureProfile.json with a subscription and no token cache is enough for
#   `az account list`/`show`/`set`. `az login --service-principal` cannot work offline (its token
#   POST to login.microsoftonline.com fails) and writes service_principal_entries.json only after a
#   successful login. MSAL's tenant discovery (GET .../v2.0/.well-known/openid-configuration) is
#   cached 24 h in msal_http_cache.bin (a pickle): with it seeded and
#   AZURE_CORE_INSTANCE_DISCOVERY=false, `az account get-access-token` (served from the cache),
#   `az logout` and `az account clear` run offline; without, they fail after having already
#   emptied the user's tokens (logout) or the subscriptions (clear).
# A fresh config dir after `az version` with telemetry off holds FRESH_DIR below (commands/ has
# one log per command). With telemetry on, az also spawns a detached uploader that tries the
# network and adds telemetry/, telemetry.txt, logs/ and ~/.cache/Microsoft/DeveloperTools/deviceid:
# helpers.home.AZ_OFFLINE_ENV turns it off.

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]
FRESH_DIR = {
    "az.json",
    "az.sess",
    "azureProfile.json",
    "commandIndex.json",
    "commands",
    "config",
    "extensionHelpIndex.json",
    "extensionIndex.json",
    "helpIndex.json",
    "versionCheck.json",
}


def az(env: dict[str, str], config_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``az ARGS`` from PATH with ``AZURE_CONFIG_DIR=config_dir``, its output captured."""
    return subprocess.run(
        ["az", *args],
        env={**env, "AZURE_CONFIG_DIR": str(config_dir)},
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_version_offline(az_path_env: dict[str, str], home: Home, tmp_path: Path) -> None:
    before = tree(home.root)
    run = az(az_path_env, tmp_path / "azure", "version")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["azure-cli"] == "2.91.0"
    assert {p.name for p in (tmp_path / "azure").iterdir()} == FRESH_DIR
    assert tree(home.root) == before  # nothing outside AZURE_CONFIG_DIR, no telemetry


def test_account_list_empty(az_path_env: dict[str, str], tmp_path: Path) -> None:
    run = az(az_path_env, tmp_path / "azure", "account", "list")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == []
    assert "az login" in run.stderr


def test_config_round_trip(az_path_env: dict[str, str], tmp_path: Path) -> None:
    config_dir = tmp_path / "azure"
    assert az(az_path_env, config_dir, "config", "set", "core.output=table").returncode == 0
    run = az(az_path_env, config_dir, "config", "get", "core.output", "-o", "json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["value"] == "table"
    assert "output = table" in (config_dir / "config").read_text()
    assert (config_dir / "config").stat().st_mode & 0o777 == 0o600
