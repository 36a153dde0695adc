"""``config show`` and ``ignore`` against the CLI contract (issue 15): exit codes, messages,
nothing changed on a refusal, and ``config show --json`` validated against its schema. Real
files in the test's private home; the CLI runs in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.home import Home, Run
from helpers.schemas import validate

from credguard.errors import ExitCode

Cli = Callable[..., Run]
FP = "sha256:" + "ab" * 32
USER_TEXT = '# my notes\nversion = 1\n[scan]\nmax_file_size = "8 MiB"\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("fingerprint", [
    "sha256:xyz", "ab" * 32, "sha256:" + "AB" * 32, "sha256:" + "ab" * 31, "md5:abc", "",
    "sha256:" + "ab" * 32 + "\n[[ignore]]",
])
@pytest.mark.parametrize("existing", [True, False])
def test_a_malformed_fingerprint_is_a_usage_error_and_changes_nothing(
    home: Home, cli: Cli, fingerprint: str, existing: bool
) -> None:
    if existing:
        write(home.config_file, USER_TEXT)
    run = cli("ignore", fingerprint, "--reason", "lab")
    assert run.code == ExitCode.USAGE == 2
    assert run.out == ""
    assert run.err.startswith("credguard: error: not a fingerprint: ")
    assert run.err.endswith("(expected sha256:<64 hex digits>, as scan prints it); the "
                            "allowlist was not changed\n")
    assert "\n" not in run.err[:-1]  # the newline in the argument is escaped, not printed
    if existing:
        assert home.config_file.read_text() == USER_TEXT
    else:
        assert not home.config_file.parent.exists()


def test_a_malformed_fingerprint_is_reported_before_a_broken_config(
    home: Home, cli: Cli
) -> None:
    write(home.config_file, "[scan\n")
    run = cli("ignore", "sha256:xyz")
    assert run.code == ExitCode.USAGE and "not a fingerprint" in run.err
    assert home.config_file.read_text() == "[scan\n"


def test_ignore_with_a_broken_config_is_a_config_error_and_changes_nothing(
    home: Home, cli: Cli
) -> None:
    write(home.config_file, "[scan]\nbogus = 1\n")
    run = cli("ignore", FP)
    assert run.code == ExitCode.CONFIG and run.out == ""
    assert f"{home.config_file}:2" in run.err and "bogus" in run.err
    assert home.config_file.read_text() == "[scan]\nbogus = 1\n"


@pytest.mark.parametrize(("policy", "words"), [
    ("[scan]\nallow_ignore = false\n", "the managed policy disables the allowlist"),
    ('locked = ["ignore"]\n', "the managed policy locks the allowlist"),
])
def test_ignore_refused_by_the_managed_policy_is_a_config_error_and_changes_nothing(
    home: Home, cli: Cli, policy: str, words: str
) -> None:
    write(home.policy_file, policy)
    write(home.config_file, USER_TEXT)
    run = cli("ignore", FP)
    assert run.code == ExitCode.CONFIG and run.out == ""
    assert run.err.startswith(f"credguard: error: {words}")
    assert run.err.endswith("; the allowlist was not changed\n")
    assert home.config_file.read_text() == USER_TEXT


def test_ignore_without_a_daemon_adds_the_entry_and_exits_0(home: Home, cli: Cli) -> None:
    run = cli("ignore", FP, "--reason", "lab")
    assert run.code == 0, run.err
    assert run.out == (f"{FP} added to the allowlist in {home.config_file}\n"
                       "the daemon is not running: it reads the allowlist when it starts\n")
    shown = validate(cli("config", "show", "--json").out, "config-show")
    assert shown["ignore"] == [{"fingerprint": FP, "reason": "lab",
                                "source": f"{home.config_file}:5"}]


def test_config_show_json_validates_with_every_table(
    home: Home, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(home.policy_file,
          'locked = ["scan.exclude"]\n[scan]\nmax_file_size = "4 MiB"\nexclude = []\n')
    write(home.config_file,
          '[scan]\nmax_file_size = "1 MiB"\nexclude = ["*"]\n\n'
          f'[[ignore]]\nfingerprint = "{FP}"\nreason = "lab"\n\n'
          '[[targets]]\nname = "mine"\nkinds = ["azure-publish-profile"]\n'
          'command = ["/bin/true"]\n')
    monkeypatch.setenv("CREDGUARD_SCAN_ONE_FILE_SYSTEM", "false")
    run = cli("config", "show", "--json")
    assert run.code == 0, run.err
    doc = validate(run.out, "config-show")
    assert doc["files"] == {"user_config": str(home.config_file),
                            "managed_policy": str(home.policy_file)}
    assert doc["settings"]["scan.one_file_system"] == {
        "value": False, "source": "env CREDGUARD_SCAN_ONE_FILE_SYSTEM"}
    assert "scan.exclude" in doc["locked"]
    assert {o["key"] for o in doc["overridden"]} == {"scan.exclude", "scan.max_file_size"}
    assert [t["name"] for t in doc["targets"]] == ["mine"]
    assert [e["fingerprint"] for e in doc["ignore"]] == [FP]
    assert len(doc["warnings"]) == 2


def test_config_show_with_an_invalid_source_exits_3(
    home: Home, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(home.config_file, "version = 1\n[scan]\nmax_file_size = -1\n")
    for argv in (("config", "show"), ("config", "show", "--json")):
        run = cli(*argv)
        assert run.code == ExitCode.CONFIG and run.out == ""
        assert f"{home.config_file}:3" in run.err
    monkeypatch.setenv("CREDGUARD_SCAN_MAX_FILE_SIZE", "lots")
    home.config_file.unlink()
    run = cli("config", "show", "--json")
    assert run.code == ExitCode.CONFIG and "CREDGUARD_SCAN_MAX_FILE_SIZE" in run.err
