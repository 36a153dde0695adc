"""Every error path issue 15 lists, and one for each code of the exit-code table, walked
through the real ``python -m credguard`` in one place: the code is the table's, the message
says what went wrong, and nothing was changed. (Each command's own tests go deeper; this file
is the table's check.)"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import Home, Run, run_subprocess
from helpers.vaulted import item_files

from credguard import paths
from credguard.errors import ExitCode

pytestmark = pytest.mark.timeout(120)
Cli = Callable[..., Run]


@pytest.fixture
def item(secret_service: object, cli: Cli, home: Home) -> str:
    """One vault item, imported (the source kept): its id."""
    path = home.write("Downloads/contoso.PublishSettings", payloads.publish_profile().data)
    run = cli("import", "--keep", "--json", str(path))
    assert run.code == 0, run.err
    return str(json.loads(run.out)["imported"][0]["id"])


def _state(home: Home) -> list[str]:
    """What a failed command must not have changed: the vault's item files, the allowlist
    and the config."""
    config = home.root / ".config" / "credguard"
    return item_files() + sorted(str(p.relative_to(home.root)) + ":" + p.read_text()
                                 for p in config.rglob("*") if p.is_file())


ARGPARSE = ("a bad log --since", "an unknown flag")
USAGE_CASES = {
    "exec ID with no command": (("exec", "{item}"), "no command"),
    "--azure-cli together with an ID": (("exec", "--azure-cli", "{item}", "--", "true"),
                                        "--azure-cli"),
    "import --force bogus": (("import", "--force", "bogus", "{file}"), "unknown kind 'bogus'"),
    "pause 5x": (("pause", "5x"), "not a duration: '5x'"),
    "vault rm without --yes and no terminal": (("vault", "rm", "{item}"), "--yes"),
    "export to a file that exists": (("vault", "export", "{item}", "--out", "{file}"),
                                     "exists"),
    "export to a directory": (("vault", "export", "{item}", "--out", "{dir}"), "directory"),
    "a malformed fingerprint in ignore": (("ignore", "sha256:nothex"), "not a fingerprint"),
    "a bad log --since": (("log", "--since", "yesterdayish"), "--since"),
    "an id prefix too short": (("vault", "show", "a71"), "prefix too short"),
    "an unknown flag": (("scan", "--no-such-flag"), "unrecognized arguments"),
}


@pytest.mark.parametrize("case", USAGE_CASES)
def test_a_usage_mistake_is_2_and_changes_nothing(
    case: str, item: str, cli: Cli, home: Home
) -> None:
    args, said = USAGE_CASES[case]
    file = home.root / "Downloads" / "contoso.PublishSettings"
    before, data = _state(home), file.read_bytes()
    words = [a.format(item=item, file=file, dir=home.downloads) for a in args]
    # argparse's own errors end the process (SystemExit): those run as a real process
    run = run_subprocess(*words) if case in ARGPARSE else cli(*words)
    assert run.code == ExitCode.USAGE, (case, run.code, run.err)
    assert said in run.err, (case, run.err)
    assert "internal error" not in run.err
    assert _state(home) == before and file.read_bytes() == data


NOT_FOUND_CASES = {
    "an unknown vault id": ("vault", "show", "0123456789abcdef0123"),
    "an unknown vault id to exec": ("exec", "0123456789abcdef0123", "--", "true"),
    "status without a daemon": ("status",),
    "pause without a daemon": ("pause", "10m"),
    "reload without a daemon": ("reload",),
    "unseal a cache that is not sealed": ("unseal", "azure-cli"),
    "exec --azure-cli on a cache that is not sealed": ("exec", "--azure-cli", "--", "true"),
}


@pytest.mark.parametrize("case", NOT_FOUND_CASES)
def test_what_is_not_in_credguards_state_is_9(
    case: str, item: str, cli: Cli, home: Home
) -> None:
    before = _state(home)
    run = cli(*NOT_FOUND_CASES[case])
    assert run.code == ExitCode.NOT_FOUND, (case, run.code, run.out, run.err)
    assert "internal error" not in run.err
    assert _state(home) == before


def test_each_remaining_code_means_what_the_table_says(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path
) -> None:
    """1 findings, 3 configuration, 4 a path not acted on, 6 integrity, 7 unsafe state;
    5 and 8 are below (they need the keyring gone, or a target)."""
    home.write("Downloads/contoso.PublishSettings", payloads.publish_profile().data)
    assert cli("scan", str(home.downloads)).code == ExitCode.FINDINGS
    assert cli("scan", str(home.root / "missing")).code == ExitCode.INPUT
    assert cli("check", str(home.root / "missing")).code == ExitCode.INPUT
    config = home.root / ".config" / "credguard" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[scan\n")
    assert cli("scan", str(home.downloads)).code == ExitCode.CONFIG
    config.unlink()
    run = cli("import", "--keep", str(home.downloads / "contoso.PublishSettings"))
    assert run.code == 0, run.err
    [name] = item_files()
    blob = paths.vault_dir() / name
    damaged = bytearray(blob.read_bytes())
    damaged[-1] ^= 1
    blob.write_bytes(bytes(damaged))
    assert cli("vault", "verify").code == ExitCode.INTEGRITY
    os.chmod(paths.vault_dir(), 0o755)  # noqa: S103 (the unsafe state under test)
    run = cli("vault", "list")
    assert run.code == ExitCode.STATE and "chmod 700" in run.err, run.err


def test_no_keyring_is_5(no_secret_service: object, cli: Cli, home: Home) -> None:
    path = home.write("Downloads/contoso.PublishSettings", payloads.publish_profile().data)
    run = cli("import", "--keep", str(path))
    assert run.code == ExitCode.KEYSTORE, run.err
    assert item_files() == []


def test_a_child_that_cannot_start_is_8(item: str, cli: Cli) -> None:
    run = cli("exec", item, "--", "/nonexistent/deploy")
    assert run.code == ExitCode.TARGET, run.err
