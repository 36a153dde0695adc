"""``seal``, ``unseal`` and ``az`` against the CLI contract (issue 15): exit codes, messages,
JSON documents that validate against docs/schemas, ``az``'s own help without az, and nothing
lost on an error. Real files, the real Secret Service; az's real runs are in
tests/azcache/test_azcache_real_az.py."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import msalcache
from helpers.home import Home, Run, run_subprocess
from helpers.schemas import validate

from credguard.azcache.sealstore import Store

pytestmark = pytest.mark.timeout(120)
Cli = Callable[..., Run]


@pytest.fixture
def no_az(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """PATH without az on it (an empty directory only); the environment, as a dict too."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return dict(os.environ)


def one_line(text: str) -> str:
    return " ".join(text.split())  # argparse wraps lines: compare word by word


# -- az's help -----------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_az_help_is_credguards_and_needs_no_az(no_az: dict[str, str], flag: str) -> None:
    run = run_subprocess("az", flag, env=no_az)
    assert run.code == 0, run.err
    assert run.out.startswith("usage: credguard az [-h] [--] [AZ ARGUMENTS...]\n")
    text = one_line(run.out)
    assert "private RAM copy of the sealed Azure CLI cache" in text
    assert "a `--` is dropped, so `credguard az -- --help` is az's own help" in text
    assert "AZ ARGUMENTS passed to az unchanged" in text
    assert run.err == ""
    debug = run_subprocess("--debug", "az", flag, env=no_az)
    assert (debug.code, debug.out) == (0, run.out)


def test_az_without_az_is_8(no_az: dict[str, str], cli: Cli) -> None:
    for args in (("az", "account", "show"), ("az", "--", "--help"), ("az", "vm", "--help")):
        run = cli(*args)
        assert (run.code, run.out) == (8, ""), args
        assert run.err == "credguard: error: az was not found on PATH (install the Azure CLI)\n"


def test_az_of_a_cache_that_is_not_sealed_is_9(
    secret_service: object, cli: Cli, home: Home, real_az: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "az-bin"
    bin_dir.mkdir()
    (bin_dir / "az").symlink_to(real_az)
    monkeypatch.setenv("PATH", str(bin_dir))
    cache = home.write(".azure/msal_token_cache.json", msalcache.state_with(msalcache.new_user()))
    before = cache.read_bytes()
    run = cli("az", "account", "list")
    assert (run.code, run.out) == (9, "")
    assert run.err == (f"credguard: error: the Azure CLI cache in {home.azure} is not sealed: "
                       "run `credguard seal azure-cli` first\n")
    assert cache.read_bytes() == before and Store().all() == []


# -- unseal --------------------------------------------------------------------------------------


@pytest.mark.parametrize("tool, root", [("azure-cli", ".azure"), ("azd", ".azd"),
                                        ("azure-powershell", "")])
def test_unseal_what_is_not_sealed_is_9(
    secret_service: object, cli: Cli, home: Home, tool: str, root: str
) -> None:
    title = {"azure-cli": "Azure CLI", "azd": "Azure Developer CLI",
             "azure-powershell": "Azure PowerShell"}[tool]
    where = home.root / root if root else home.root
    run = cli("unseal", tool)
    assert (run.code, run.out) == (9, "")
    assert run.err == (f"credguard: error: the {title} cache in {where} is not sealed: nothing "
                       "to unseal\n")
    assert Store().all() == []


def test_unseal_without_a_keyring_is_5(cli: Cli) -> None:
    run = cli("unseal", "azure-cli")
    assert run.code == 5 and "no usable OS keyring" in run.err


def test_an_unknown_tool_is_a_usage_error(cli: Cli) -> None:
    for verb in ("seal", "unseal"):
        with pytest.raises(SystemExit) as exited:
            cli(verb, "azure-portal")
        assert exited.value.code == 2


# -- sealing nothing: both tools alike -----------------------------------------------------------


def test_seal_azd_without_its_directory_seals_it_empty(
    secret_service: object, cli: Cli, home: Home
) -> None:
    """Nothing there yet is no error: the seal makes the first login through credguard go
    straight into the vault (tests/azcache: test_seal_before_logging_in). The directory a
    login needs is made, private."""
    azd = home.root / ".azd"
    run = cli("seal", "azd", "--json")
    assert run.code == 0, run.err
    doc = validate(run.out, "seal")
    assert (doc["action"], doc["files"], doc["created_root"], doc["root"]) == (
        "sealed", [], True, str(azd))
    assert doc["id"] and doc["item_id"] == doc["id"]
    assert stat.S_IMODE(azd.stat().st_mode) == 0o700 and list(azd.iterdir()) == []
    assert [s.tool for s in Store().all()] == ["azd"]
    again = cli("seal", "azd")
    assert again == Run(0, f"the Azure Developer CLI cache in {azd} is sealed; nothing new to "
                           "seal\n", "")


def test_seal_azd_without_its_directory_human(secret_service: object, cli: Cli,
                                              home: Home) -> None:
    azd = home.root / ".azd"
    run = cli("seal", "azd")
    assert run.code == 0, run.err
    item = Store().all()[0].item_id
    assert run.out == (
        f"made {azd} (0700) and sealed the Azure Developer CLI cache in {azd} with no secret "
        f"file in it yet (vault item {item}): a login through `credguard exec --azd -- CMD` "
        "goes straight into the vault, never onto the disk\n")


def test_seal_powershell_with_nothing_there_seals_it_empty(
    secret_service: object, cli: Cli, home: Home
) -> None:
    run = cli("seal", "azure-powershell", "--json")
    assert run.code == 0, run.err
    doc = validate(run.out, "seal")
    assert (doc["action"], doc["files"], doc["created_root"]) == ("sealed", [], False)
    human = cli("unseal", "azure-powershell")
    assert human == Run(0, f"unsealed the Azure PowerShell cache in {home.root}: 0 files "
                           "written back (0600)\n", "")


def test_seal_where_the_parent_is_missing_is_4(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mistyped AZD_CONFIG_DIR makes no tree of directories."""
    wanted = tmp_path / "typo" / "azd"
    monkeypatch.setenv("AZD_CONFIG_DIR", str(wanted))
    run = cli("seal", "azd")
    assert (run.code, run.out) == (4, "")
    assert run.err == (f"credguard: error: {wanted.parent} does not exist: {wanted} not made, "
                       "nothing was sealed\n")
    assert not wanted.parent.exists() and Store().all() == []


def test_seal_a_root_that_is_a_file_is_4(secret_service: object, cli: Cli, home: Home) -> None:
    azd = home.write(".azd", b"not a directory")
    run = cli("seal", "azd")
    assert run.code == 4 and "is not a directory" in run.err
    assert azd.read_bytes() == b"not a directory" and Store().all() == []


# -- seal/unseal documents -----------------------------------------------------------------------


def test_seal_and_unseal_json_validate(secret_service: object, cli: Cli, home: Home) -> None:
    cache = msalcache.state_with(msalcache.new_user())
    home.write(".azure/msal_token_cache.json", cache)
    run = cli("seal", "azure-cli", "--json")
    assert run.code == 0, run.err
    sealed = validate(run.out, "seal")
    assert sealed["files"] == ["msal_token_cache.json"] == sealed["deleted"]
    assert sealed["id"] == sealed["item_id"] and sealed["created_root"] is False
    again = validate(cli("seal", "azure-cli", "--json").out, "seal")
    assert again["action"] == "unchanged" and again["id"] == sealed["id"]
    run = cli("unseal", "azure-cli", "--json")
    assert run.code == 0, run.err
    unsealed = validate(run.out, "unseal")
    assert unsealed["action"] == "unsealed" and unsealed["files"] == ["msal_token_cache.json"]
    assert (home.azure / "msal_token_cache.json").read_bytes() == cache


def test_seal_human_counts_in_the_singular(secret_service: object, cli: Cli,
                                           home: Home) -> None:
    home.write(".azure/msal_token_cache.json", msalcache.state_with(msalcache.new_user()))
    run = cli("seal", "azure-cli")
    assert run.code == 0, run.err
    assert f"sealed the Azure CLI cache in {home.azure} (1 secret file, vault item " in run.out
    assert "  run the tool through `credguard az ARGS` from now on\n" in run.out
    assert f"in {home.azure}: 1 file written back (0600)\n" in cli("unseal", "azure-cli").out


def test_seal_help() -> None:
    for verb in ("seal", "unseal"):
        run = run_subprocess(verb, "--help")
        text = one_line(run.out)
        assert run.code == 0 and f"the tool whose cache to {verb}: azure-cli, " in text
        assert f"--json print one JSON document (schema: docs/schemas/{verb}.schema.json)" in text


def test_seal_json_keeps_no_secret(secret_service: object, cli: Cli, home: Home) -> None:
    cache = msalcache.state_with(msalcache.new_user())
    home.write(".azure/msal_token_cache.json", cache)
    run = cli("seal", "azure-cli", "--json")
    for secret in msalcache.secrets_of(cache):
        assert secret not in run.out + run.err
    assert json.loads(run.out)["version"] == 1
