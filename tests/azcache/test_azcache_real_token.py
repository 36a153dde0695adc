"""The REAL Azure CLI (azure-cli 2.91.0 from ./tests/run) reads and edits the SEALED MSAL token
cache through ``credguard az``, fully offline.

az serves a cached access token without the network once MSAL's discovery answers are in
``msal_http_cache.bin`` (az keeps them there for 24 h): the tenant's and "organizations"'
OpenID configuration, and the instance metadata ``az logout`` looks up. No network exists here,
so those answers are made by msal itself at run time from a stand-in for login.microsoftonline.com
(:class:`_Entra`, the only fake); everything else is real: az, msal's token cache, the keyring.
Every az run goes through a proxy address that refuses connections, so any network attempt fails
the test instead of depending on the machine being offline."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msal
import pytest
from helpers import azlogin, msalcache
from helpers.home import TESTS, Home

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ARM_SCOPE = ["https://management.core.windows.net//.default"]  # Profile._arm_scope, AzureCloud
SECRETS = ("msal_token_cache.json", "service_principal_entries.json")
# run by `credguard exec --azure-cli`: who is in the sealed cache (account ids only, no secrets)
READ_SEALED = (
    "import json, os; from helpers import msalcache;"
    "p = os.environ['AZURE_CONFIG_DIR'] + '/msal_token_cache.json';"
    "c = msalcache.cache_of(open(p, 'rb').read() if os.path.exists(p) else None);"
    "rts = c.search(msalcache.CT.REFRESH_TOKEN);"
    "print(json.dumps({'accounts': sorted(msalcache.accounts(c)),"
    " 'refresh_tokens': sorted(r['home_account_id'] for r in rts)}))"
)


def sha(text: str) -> str:
    """What the assertions compare: a failing one prints digests, never a token."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, repr=False)
class Tokens:
    access: str
    refresh: str

    def __repr__(self) -> str:  # what `pytest -l` shows: digests only
        return f"Tokens(sha256:{sha(self.access)[:12]}, sha256:{sha(self.refresh)[:12]})"


def az_login(cache: msal.SerializableTokenCache, user: msalcache.User) -> Tokens:
    """What az's own interactive login stores: az's client id, the ARM scope, the tenant."""
    return Tokens(*azlogin.sign_in(cache, user, ARM_SCOPE))


@dataclass
class AzHome:
    env: dict[str, str]
    root: Path
    user: msalcache.User
    tokens: Tokens
    bystander: msalcache.User  # in the cache, not in the profile: az logout must keep it
    bystander_tokens: Tokens
    subscription_id: str

    def secrets(self) -> tuple[str, ...]:
        return (self.tokens.access, self.tokens.refresh,
                self.bystander_tokens.access, self.bystander_tokens.refresh)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=90,
                          check=False)


def credguard(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run(env, sys.executable, "-m", "credguard", *args)


@pytest.fixture
def refused_proxy() -> Iterator[str]:
    """A proxy URL whose port is bound but not listening: every connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def logged_in(secret_service: object, home: Home, az_path_env: dict[str, str],
              refused_proxy: str) -> AzHome:
    """~/.azure laid out by real az, then holding what `az login` leaves: a profile naming the
    user's subscription, the MSAL cache (plus a bystander account) and the discovery cache."""
    env = {k: v for k, v in az_path_env.items() if k.lower() != "no_proxy"}
    env.update(HTTPS_PROXY=refused_proxy, HTTP_PROXY=refused_proxy)
    root = home.azure
    assert run(env, "az", "version").returncode == 0  # az lays out its config dir
    user, bystander = msalcache.new_user(), msalcache.new_user()
    cache = msal.SerializableTokenCache()
    tokens, bystander_tokens = az_login(cache, user), az_login(cache, bystander)
    subscription = {"id": str(uuid.uuid4()), "name": "Token subscription", "state": "Enabled",
                    "isDefault": True, "user": {"name": user.username, "type": "user"},
                    "tenantId": user.tenant, "environmentName": "AzureCloud"}
    (root / "azureProfile.json").write_text(json.dumps(
        {"installationId": str(uuid.uuid4()), "subscriptions": [subscription]}))
    home.write(".azure/msal_token_cache.json", cache.serialize())
    home.write(".azure/msal_http_cache.bin", azlogin.msal_http_cache(user.tenant))
    return AzHome(env, root, user, tokens, bystander, bystander_tokens, str(subscription["id"]))


def get_access_token(env: dict[str, str], *via: str) -> tuple[str, dict[str, object]]:
    """Run `az account get-access-token` (through ``via``): the token's digest, and the rest of
    what az printed; the token itself never reaches the test's frame."""
    proc = run(env, *via, "az", "account", "get-access-token", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    return sha(out.pop("accessToken")), out


def get_no_access_token(env: dict[str, str], *via: str) -> str:
    """Run `az account get-access-token` (through ``via``) expecting a failure; its stderr."""
    proc = run(env, *via, "az", "account", "get-access-token", "-o", "json")
    printed_a_token = "accessToken" in proc.stdout
    assert proc.returncode != 0 and not printed_a_token
    return proc.stderr


def seal(az_home: AzHome) -> None:
    sealed = credguard(az_home.env, "seal", "azure-cli")
    assert sealed.returncode == 0, sealed.stderr
    assert_nothing_in_plaintext(az_home)


def assert_nothing_in_plaintext(az_home: AzHome) -> None:
    """No secret file in ~/.azure, and no file there holds any token this test made."""
    assert not any((az_home.root / name).exists() for name in SECRETS)
    leaked = []
    for path in az_home.root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(s.encode() in data for s in az_home.secrets()):
                leaked.append(str(path.relative_to(az_home.root)))
    assert leaked == []


def sealed_cache(az_home: AzHome) -> dict[str, list[str]]:
    env = {**az_home.env, "PYTHONPATH": str(TESTS)}
    proc = credguard(env, "exec", "--azure-cli", "--", sys.executable, "-c", READ_SEALED)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, list[str]] = json.loads(proc.stdout)
    return out


CREDGUARD = (sys.executable, "-m", "credguard")


def test_az_serves_the_sealed_access_token(logged_in: AzHome) -> None:
    """The token az prints through credguard is the one in the sealed cache: az found its
    account, scope and client id there and needed no network."""
    want = sha(logged_in.tokens.access)
    plain, _ = get_access_token(logged_in.env)
    assert plain == want  # the set-up is right: plain az serves it from the plaintext cache
    seal(logged_in)
    assert "does not exist in MSAL token cache" in get_no_access_token(logged_in.env)
    through, rest = get_access_token(logged_in.env, *CREDGUARD)
    assert through == want
    assert rest["subscription"] == logged_in.subscription_id
    assert rest["tenant"] == logged_in.user.tenant
    assert_nothing_in_plaintext(logged_in)


@pytest.mark.parametrize("command", [("logout",), ("account", "clear")])
def test_az_logout_edits_the_sealed_cache(logged_in: AzHome, command: tuple[str, ...]) -> None:
    """az signs the user out of the SEALED cache: their refresh token is gone from the vault,
    the profile written back names no subscription, and nothing reaches ~/.azure in plaintext.
    `az logout` keeps the bystander; `az account clear` deletes az's whole token cache file."""
    seal(logged_in)
    user, bystander = logged_in.user.home_account_id, logged_in.bystander.home_account_id
    both = sorted([user, bystander])
    assert sealed_cache(logged_in) == {"accounts": both, "refresh_tokens": both}
    out = credguard(logged_in.env, "az", *command)
    assert out.returncode == 0, out.stderr
    left = [] if command == ("account", "clear") else [bystander]
    assert sealed_cache(logged_in) == {"accounts": left, "refresh_tokens": left}
    profile = json.loads((logged_in.root / "azureProfile.json").read_text("utf-8-sig"))
    assert profile["subscriptions"] == []
    assert_nothing_in_plaintext(logged_in)
    assert "az login" in get_no_access_token(logged_in.env, *CREDGUARD)
    shm = Path("/dev/shm") / f"credguard-{os.getuid()}"
    assert not list(shm.glob("session-*"))
