"""``credguard ignore --list`` and ``--remove`` (issue 18: removing an entry re-arms
protection): the entry's table cut out of the user config with everything else kept as the
user wrote it, refused (nothing changed) when that cannot be done safely or the entry is the
managed policy's, and a running daemon protecting the file again at once."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, running_daemon, wait_for
from helpers.home import Home, Run, run_subprocess, sha
from helpers.secret_service import SecretService

from credguard.errors import ExitCode

Cli = Callable[..., Run]
FP1, FP2, FP3 = ("sha256:" + c * 64 for c in "abc")
USER_TEXT = ('# my notes\nversion = 1\n\n[scan]\nmax_file_size = "8 MiB"  # big files\n\n'
             f'[[ignore]]\nfingerprint = "{FP1}"\nreason = "lab"\n\n'
             '# keep this comment\n'
             f'[[ignore]]\nfingerprint = "{FP2}"\nreason = "demo"\n\n'
             '[notifications]\nenabled = false\n')


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_list_shows_each_entry_with_its_reason_and_place(home: Home, cli: Cli) -> None:
    assert cli("ignore", "--list").out == "the allowlist is empty\n"
    write(home.config_file, USER_TEXT)
    run = cli("ignore", "--list")
    assert run.code == 0, run.err
    assert run.out == (f'{FP1} "lab" # {home.config_file}:8\n'
                       f'{FP2} "demo" # {home.config_file}:13\n')


def test_remove_cuts_out_that_entry_and_keeps_the_rest_as_written(home: Home, cli: Cli) -> None:
    write(home.config_file, USER_TEXT)
    run = cli("ignore", "--remove", FP1)
    assert (run.code, run.err) == (0, "")
    assert run.out.startswith(f"{FP1} removed from the allowlist in {home.config_file}\n")
    assert home.config_file.read_text() == USER_TEXT.replace(
        f'\n[[ignore]]\nfingerprint = "{FP1}"\nreason = "lab"\n', "")
    assert cli("ignore", "--remove", FP2).code == 0
    assert home.config_file.read_text() == (  # the comment before a table is kept
        '# my notes\nversion = 1\n\n[scan]\nmax_file_size = "8 MiB"  # big files\n'
        '\n# keep this comment\n\n[notifications]\nenabled = false\n')
    assert home.config_file.stat().st_mode & 0o777 == 0o600
    assert cli("ignore", "--list").out == "the allowlist is empty\n"


def test_removing_what_is_not_there_is_not_found_and_changes_nothing(
        home: Home, cli: Cli) -> None:
    write(home.config_file, USER_TEXT)
    run = cli("ignore", "--remove", FP3)
    assert run.code == ExitCode.NOT_FOUND == 9
    assert run.err == (f"credguard: error: {FP3} is not in the allowlist of "
                       f"{home.config_file}; nothing was changed\n")
    assert home.config_file.read_text() == USER_TEXT


@pytest.mark.parametrize("text", [
    f'version = 1\nignore = [{{fingerprint = "{FP1}", reason = "inline"}}]\n',
    'version = 1\n[[ignore]]\nreason = "x"\n[ignore.extra]\n',  # not a config at all: 3
    f'version = 1\n[[ignore]]\nfingerprint = "{FP1}"\n[[ignore]]\nfingerprint = "{FP1}"\n',
])
def test_an_entry_that_cannot_be_cut_out_alone_is_refused_untouched(
        home: Home, cli: Cli, text: str) -> None:
    write(home.config_file, text)
    run = cli("ignore", "--remove", FP1)
    assert run.code == ExitCode.CONFIG == 3, run.err
    assert home.config_file.read_text() == text


def test_the_managed_policys_entry_is_the_administrators(
        home: Home, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from credguard import paths

    policy = write(home.policy_file, f'version = 1\n[[ignore]]\nfingerprint = "{FP1}"\n')
    monkeypatch.setitem(paths.MANAGED_POLICY_FILES, "linux", policy)
    run = cli("ignore", "--remove", FP1)
    assert run.code == ExitCode.CONFIG
    assert "allowlisted by the managed policy" in run.err and "not changed" in run.err
    assert not home.config_file.exists()
    assert policy.read_text() == f'version = 1\n[[ignore]]\nfingerprint = "{FP1}"\n'


@pytest.mark.parametrize(("args", "message"), [
    (("ignore", "--list", FP1), "--list takes no FINGERPRINT or --reason"),
    (("ignore", "--list", "--reason", "x"), "--list takes no FINGERPRINT or --reason"),
    (("ignore", "--remove"), "no FINGERPRINT given: credguard ignore FINGERPRINT (or --list)"),
    (("ignore",), "no FINGERPRINT given: credguard ignore FINGERPRINT (or --list)"),
    (("ignore", "--remove", FP1, "--reason", "x"), "--remove takes no --reason"),
])
def test_command_lines_it_cannot_carry_out_are_usage_errors(
        home: Home, cli: Cli, args: tuple[str, ...], message: str) -> None:
    write(home.config_file, USER_TEXT)
    run = cli(*args)
    assert (run.code, run.err) == (ExitCode.USAGE, f"credguard: error: {message}\n")
    assert home.config_file.read_text() == USER_TEXT


def test_list_and_remove_together_are_refused_by_the_parser(home: Home) -> None:
    run = run_subprocess("ignore", "--list", "--remove", FP1)
    assert run.code == ExitCode.USAGE
    assert "argument --remove: not allowed with argument --list" in run.err


@pytest.fixture
def daemon(secret_service: SecretService, home: Home, tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


@pytest.mark.timeout(120)
def test_removing_the_entry_rearms_protection_in_the_running_daemon(
        daemon: DaemonProcess, home: Home) -> None:
    payload = payloads.publish_profile("kept")
    fingerprint = f"sha256:{sha(payload.data)}"
    assert run_subprocess("ignore", fingerprint, "--reason", "mine", env=daemon.env).code == 0
    kept = home.write("Downloads/kept.PublishSettings", payload.data)
    wait_for(lambda: f"ignored azure-publish-profile {kept}" in daemon.stderr(), timeout=15)
    assert kept.exists()
    run = run_subprocess("ignore", "--remove", fingerprint, env=daemon.env)
    assert run.code == 0, run.err
    assert "the running daemon protects it again from now on" in run.out
    wait_for(lambda: not kept.exists(), timeout=30)  # the reload's scan protected it
