"""``credguard az`` with the REAL Azure CLI (azure-cli 2.91.0 from ./tests/run), offline, against
a sealed cache built by real az plus a real msal token cache."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from helpers import msalcache
from helpers.home import TESTS, Home

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
SECRETS = ("msal_token_cache.json", "service_principal_entries.json")


def credguard(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "credguard", *args], env=env,
                          capture_output=True, text=True, timeout=90, check=False)


def az(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["az", *args], env=env, capture_output=True, text=True, timeout=90,
                          check=False)


@pytest.fixture
def sealed_az(secret_service: object, home: Home, az_path_env: dict[str, str]
              ) -> tuple[dict[str, str], Path, dict[str, object]]:
    """~/.azure made by real az, with a subscription and a logged-in user, then sealed."""
    env = az_path_env
    root = home.root / ".azure"
    assert az(env, "version").returncode == 0  # az lays out its config dir
    user = msalcache.new_user()
    subscription = {"id": str(uuid.uuid4()), "name": "Sealed subscription", "state": "Enabled",
                    "isDefault": True, "user": {"name": user.username, "type": "user"},
                    "tenantId": user.tenant, "environmentName": "AzureCloud"}
    (root / "azureProfile.json").write_text(json.dumps(
        {"installationId": str(uuid.uuid4()), "subscriptions": [subscription]}))
    (root / "msal_token_cache.json").write_bytes(msalcache.state_with(user))
    (root / "msal_token_cache.json").chmod(0o600)
    sealed = credguard(env, "seal", "azure-cli")
    assert sealed.returncode == 0, sealed.stderr
    assert not (root / "msal_token_cache.json").exists()
    return env, root, subscription


def test_account_list_reads_the_sealed_profile(
    sealed_az: tuple[dict[str, str], Path, dict[str, object]]
) -> None:
    env, root, subscription = sealed_az
    run = credguard(env, "az", "account", "list", "--output", "json")
    assert run.returncode == 0, run.stderr
    listed = json.loads(run.stdout)  # az's stdout, unchanged: pure JSON
    assert [s["id"] for s in listed] == [subscription["id"]]
    assert run.stderr == ""
    assert not any((root / name).exists() for name in SECRETS)
    assert not list(root.glob("*.lockfile"))


def test_config_set_survives(sealed_az: tuple[dict[str, str], Path, dict[str, object]]) -> None:
    env, root, _ = sealed_az
    run = credguard(env, "az", "config", "set", "core.output=table")
    assert run.returncode == 0, run.stderr
    assert "output = table" in (root / "config").read_text()
    got = credguard(env, "az", "config", "get", "core.output", "--output", "json")
    assert got.returncode == 0 and json.loads(got.stdout)["value"] == "table"
    plain = az(env, "config", "get", "core.output", "-o", "json")  # plain az sees it too
    assert json.loads(plain.stdout)["value"] == "table"


def test_exit_status_passes_through(
    sealed_az: tuple[dict[str, str], Path, dict[str, object]]
) -> None:
    env, _, _ = sealed_az
    plain = az(env, "account", "show", "--subscription", str(uuid.uuid4()))
    run = credguard(env, "az", "account", "show", "--subscription", str(uuid.uuid4()))
    assert plain.returncode != 0 and run.returncode == plain.returncode
    assert "credguard" not in run.stderr


def test_the_sealed_cache_is_what_az_reads(
    sealed_az: tuple[dict[str, str], Path, dict[str, object]]
) -> None:
    """az, run through credguard, loads the MSAL cache credguard put in its private dir: its
    account list comes from the token cache when the profile names a user in it."""
    env, root, _ = sealed_az
    code = (
        "import os, json; d = os.environ['AZURE_CONFIG_DIR'];"
        "print(json.dumps(sorted(os.listdir(d))))"
    )
    run = credguard(env, "exec", "--azure-cli", "--", sys.executable, "-c", code)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert "msal_token_cache.json" in seen and "azureProfile.json" in seen
    assert not (root / "msal_token_cache.json").exists()


def test_help_is_credguards_and_after_a_dash_dash_azs(
    sealed_az: tuple[dict[str, str], Path, dict[str, object]]
) -> None:
    """`credguard az --help` (or -h) is credguard's help even with az there; `credguard az --
    --help` is az's own, run against the sealed cache; a --help after a command is az's."""
    env, root, _ = sealed_az
    for flag in ("--help", "-h"):
        own = credguard(env, "az", flag)
        assert own.returncode == 0 and own.stdout.startswith("usage: credguard az [-h] [--]")
    theirs = credguard(env, "az", "--", "--help")  # (a first run also prints az's welcome)
    assert theirs.returncode == 0, theirs.stderr
    assert "\nGroup\n    az\n" in theirs.stdout and "credguard" not in theirs.stdout
    group = credguard(env, "az", "account", "--help")
    assert group.returncode == 0 and "\nGroup\n    az account " in group.stdout
    assert not any((root / name).exists() for name in SECRETS)


def test_not_on_path(secret_service: object, home: Home, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    run = credguard(env, "az", "version")
    assert run.returncode == 8 and "az was not found on PATH" in run.stderr


@pytest.mark.parametrize("after", [0.0, 0.1, 0.2, 0.4])
def test_az_killed_at_any_moment(
    sealed_az: tuple[dict[str, str], Path, dict[str, object]], after: float
) -> None:
    """SIGKILL the real az at a moment in its run: credguard returns 137 (or 0 if az was done),
    the sealed cache stays readable and complete, nothing is left in plaintext or in RAM."""
    import signal
    import time

    import psutil

    env, root, _ = sealed_az
    with subprocess.Popen([sys.executable, "-m", "credguard", "az", "account", "list"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        deadline = time.monotonic() + 30
        children: list[psutil.Process] = []
        while not children and proc.poll() is None:
            assert time.monotonic() < deadline
            children = psutil.Process(proc.pid).children()
            time.sleep(0.01)
        time.sleep(after)
        for az_proc in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                az_proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 128 + signal.SIGKILL), err
    listed = credguard(env, "az", "account", "list", "-o", "json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1, listed.stderr
    code = ("import os, sys; from helpers import msalcache; d = os.environ['AZURE_CONFIG_DIR'];"
            "print(len(msalcache.accounts(open(d + '/msal_token_cache.json', 'rb').read())))")
    cache = credguard({**env, "PYTHONPATH": str(TESTS)}, "exec", "--azure-cli", "--",
                      sys.executable, "-c", code)
    assert cache.returncode == 0 and cache.stdout.strip() == "1", cache.stderr  # still complete
    assert not any((root / name).exists() for name in SECRETS)
    shm = Path("/dev/shm") / f"credguard-{os.getuid()}"
    assert not list(shm.glob("session-*"))
