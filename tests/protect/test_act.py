"""The policy step both drivers share (``protect/act.py``), through ``scan --protect`` and the
Actor itself: sealed caches, alert-only mode, pause and a forced protect, on real files with the
real Secret Service (or a real bus without one)."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import msalcache, payloads
from helpers.home import Home, Run

from credguard import config, paths
from credguard.azcache.plaintext import sealed_cache
from credguard.azcache.sealstore import Store, unpack_bundle
from credguard.detect.base import Finding
from credguard.errors import ExitCode
from credguard.policy import Mode
from credguard.protect.act import Actor, Result
from credguard.protect.transaction import Protector
from credguard.scan import explicit_roots, scan
from credguard.vault.access import open_vault

pytestmark = pytest.mark.timeout(120)
Cli = Callable[..., Run]


def sealed_accounts() -> set[str]:
    """The accounts in the sealed Azure CLI token cache, read through credguard's vault."""
    [seal] = Store().all()
    bundle = open_vault(config.load()).get(seal.item_id).data
    return msalcache.accounts(unpack_bundle(bundle, "azure-cli")["msal_token_cache.json"])


def actions(run: Run) -> dict[str, dict[str, object]]:
    return {Path(str(a["path"])).name: a for a in json.loads(run.out)["actions"]}


@pytest.mark.parametrize("on_plaintext", ["reseal", "alert"])
def test_scan_protect_reseals_a_sealed_cache_in_plaintext(
    secret_service: object, cli: Cli, home: Home, on_plaintext: str
) -> None:
    """A plain `az login` after sealing: scan --protect re-seals the new cache (or only alerts,
    as configured), as the daemon does — never hardens it in place or protects it as a file."""
    first, newcomer = msalcache.new_user(), msalcache.new_user()
    cache = home.write(".azure/msal_token_cache.json", msalcache.state_with(first))
    assert cli("seal", "azure-cli").code == 0 and not cache.exists()
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text(f'[seal]\non_plaintext = "{on_plaintext}"\n')
    cache = home.write(".azure/msal_token_cache.json", msalcache.state_with(newcomer), 0o644)
    run = cli("scan", "--protect", "--json")
    action = actions(run)["msal_token_cache.json"]
    if on_plaintext == "reseal":
        assert run.code == ExitCode.OK, run.err
        assert action["action"] == "reseal" and action["protected"] is True
        assert "re-sealed into the sealed azure-cli cache" in str(action["result"])
        assert not cache.exists()
        assert sealed_accounts() == {first.home_account_id, newcomer.home_account_id}
    else:
        assert run.code == ExitCode.FINDINGS
        assert action["action"] == "alert" and action["reason"] == "sealed-cache-in-plaintext"
        assert cache.exists() and stat.S_IMODE(cache.stat().st_mode) == 0o644  # not hardened
        assert sealed_accounts() == {first.home_account_id}
    for secret in msalcache.secrets_of(msalcache.state_with(newcomer)):
        assert secret not in run.out + run.err


@pytest.mark.parametrize("keyring", ["no_secret_service", "locked_secret_service"])
def test_scan_protect_without_a_keyring_reports_everything_in_alert_only_mode(
    request: pytest.FixtureRequest, cli: Cli, home: Home, keyring: str
) -> None:
    """No usable keyring: every finding is still reported, nothing is written or deleted (the
    live cache is still hardened: that needs no vault), and the exit code is the keystore's."""
    request.getfixturevalue(keyring)
    downloads = [home.write(f"Downloads/{n}.PublishSettings", payloads.publish_profile().data)
                 for n in ("a", "b")]
    cache = home.write(".azure/msal_token_cache.json", payloads.msal_cache().data, mode=0o644)
    run = cli("scan", "--protect", "--json")
    assert run.code == ExitCode.KEYSTORE
    assert "alert-only" in run.err
    found = actions(run)
    assert len(json.loads(run.out)["findings"]) == 3 and len(found) == 3
    for path in downloads:
        action = found[path.name]
        assert action["action"] == "protect" and action["protected"] is False
        assert action["reason"] == "alert-only" and path.exists()
    assert str(found["msal_token_cache.json"]["result"]).startswith("hardened")
    assert cache.exists() and stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert not list(paths.vault_dir().glob("*.cgv"))
    assert not list((paths.user_state_dir() / "journal").glob("*.json"))
    human = cli("scan", "--protect")
    assert human.code == ExitCode.KEYSTORE and "alert-only mode: left in place" in human.out


def finding_at(path: Path) -> Finding:
    [finding] = scan(explicit_roots([str(path)]), config.load()).findings
    return finding


def never_opened() -> Protector:
    """Stands in for the vault opener where the mode forbids opening the vault at all: no
    real part can show that nothing was attempted."""
    raise AssertionError("the vault must not be opened in this mode")


@pytest.mark.parametrize("mode", [Mode.PAUSED, Mode.ALERT_ONLY])
def test_a_mode_that_forbids_writes_leaves_the_finding_waiting(home: Home, mode: Mode) -> None:
    path = home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)
    outcome = Actor(config.load(), never_opened, sealed_cache).act(finding_at(path), mode)
    assert outcome.result is Result.WAITING and outcome.reason == mode
    assert outcome.action == "protect" and path.exists()


def test_a_forced_protect_overrides_the_policy(secret_service: object, home: Home) -> None:
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text('[policy]\nazure-publish-profile = "alert"\n')
    path = home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)
    cfg = config.load()
    actor = Actor(cfg, lambda: Protector(cfg, open_vault(cfg)), sealed_cache)
    finding = finding_at(path)
    assert actor.act(finding, Mode.PROTECTING).result is Result.ALERTED and path.exists()
    outcome = actor.act(finding, Mode.PROTECTING, forced=True)
    assert outcome.result is Result.PROTECTED and outcome.item_id and not path.exists()
