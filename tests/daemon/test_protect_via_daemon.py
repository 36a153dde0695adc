"""``credguard protect`` asks the running daemon (issue 16, row 5), and nothing else changes.

The daemon protects when it would do exactly what the command would: the same results, output
and exit code as the command in its own process (compared here on the same kinds of input),
else the command does it itself — silently when the daemon refused before doing anything (another
environment, import targets, paused), with a warning and crash recovery first when the daemon
died in the middle of the request. Every test runs the real daemon with a real gnome-keyring on a
private bus; the files live outside the folders it watches, so only the request touches them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, running_daemon, wait_for
from helpers.home import Home, Run, run_subprocess, sha, vault_shas
from helpers.secret_service import SecretService

from credguard import paths
from credguard.errors import ExitCode

pytestmark = pytest.mark.timeout(180)
ASKED = "protect request:"
REFUSED = "protect request refused:"


def drop(folder: Path) -> dict[str, Path]:
    """A mix of inputs: three credentials (one named in bytes that are no UTF-8), one file
    that is none, one that is not there, a symbolic link to a credential and a FIFO, each
    generated afresh (new secrets)."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {"a": folder / "a.PublishSettings", "b": folder / "b.publishsettings",
            "plain": folder / "notes.txt", "missing": folder / "gone.PublishSettings",
            "link": folder / "link.PublishSettings", "fifo": folder / "pipe.PublishSettings"}
    made["a"].write_bytes(payloads.publish_profile("a").data)
    made["odd"] = Path(os.fsdecode(os.fsencode(folder) + b"/odd-\xff-\xe9.PublishSettings"))
    made["odd"].write_bytes(payloads.publish_profile("odd").data)  # a name that is no UTF-8
    made["b"].write_bytes(payloads.publishsettings_v2().data)
    made["plain"].write_text("nothing secret here\n")
    target = folder / "target.txt"
    target.write_bytes(payloads.publish_profile("t").data)
    made["link"].symlink_to(target)
    os.mkfifo(made["fifo"])
    return made


def protect(env: dict[str, str], *named: Path | str, json_out: bool = True) -> Run:
    return run_subprocess("protect", *(["--json"] if json_out else []), *map(str, named),
                          env=env, timeout=120)


def normalised(run: Run) -> tuple[int, str, str]:
    """The run with the random item ids (new per credential) blanked."""
    blank = re.sub(r"\b[0-9a-f]{12,}\b", "ID", run.out)
    return run.code, blank, run.err


@pytest.fixture
def daemon(secret_service: SecretService, home: Home, tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


def test_the_daemon_protects_with_the_same_results_output_and_exit_code(
        secret_service: SecretService, home: Home, tmp_path: Path) -> None:
    env = dict(os.environ)
    work = tmp_path / "work"
    order = ("a", "plain", "odd", "missing", "link", "fifo", "b", "a")  # "a" twice: 2 batches
    for json_out in (True, False):
        made = drop(work)
        here = protect(env, *(made[k] for k in order), json_out=json_out)
        assert not made["a"].exists() and not made["b"].exists()
        daemon = DaemonProcess(env, tmp_path / f"daemon-{json_out}.log").start()
        try:
            for leftover in work.iterdir():
                leftover.unlink()
            made = drop(work)
            asked = protect(env, *(made[k] for k in order), json_out=json_out)
        finally:
            assert daemon.stop() == 0
        assert daemon.stderr().count(ASKED) == 2, daemon.stderr()  # two batches, both there
        assert normalised(asked) == normalised(here)
        assert asked.code == ExitCode.INPUT  # not every path was a credential
        for leftover in work.iterdir():
            leftover.unlink()
    assert "NOT protected (not-credential)" in here.out  # the last round printed text
    assert sorted(set(vault_shas(env))) == vault_shas(env)  # no item twice


def test_json_results_through_the_daemon_are_those_of_the_schema(
        daemon: DaemonProcess, tmp_path: Path) -> None:
    made = drop(tmp_path / "work")
    data = made["a"].read_bytes()
    run = protect(daemon.env, made["a"], made["plain"])
    assert ASKED in daemon.stderr()
    doc = json.loads(run.out)
    assert [r["protected"] for r in doc["results"]] == [True, False]
    assert doc["results"][0]["path"] == str(made["a"])
    assert doc["results"][1]["reason"] == "not-credential"
    assert sha(data) in vault_shas(daemon.env)
    assert run.code == ExitCode.INPUT


def test_a_relative_path_is_taken_from_the_commands_directory(
        daemon: DaemonProcess, tmp_path: Path) -> None:
    made = drop(tmp_path / "work")
    run = run_subprocess("protect", "--json", "a.PublishSettings", env=daemon.env,
                         cwd=str(tmp_path / "work"))
    assert run.code == 0, run.err
    assert json.loads(run.out)["results"][0]["path"] == str(made["a"])
    assert not made["a"].exists()
    assert ASKED in daemon.stderr()


def test_another_environment_is_refused_and_protected_here(
        daemon: DaemonProcess, tmp_path: Path) -> None:
    made = drop(tmp_path / "work")
    env = {**daemon.env, "CREDGUARD_SCAN_MAX_FILE_SIZE": "4MiB"}
    run = protect(env, made["a"])
    assert run.code == 0, run.err
    assert not made["a"].exists()
    log = daemon.stderr()
    assert f"{REFUSED} another configuration or environment" in log
    assert ASKED not in log.replace(REFUSED, "")
    assert run.err == ""  # a refusal is silent: nothing was done there


def test_what_exec_hands_a_child_does_not_count_as_another_environment(
        daemon: DaemonProcess, tmp_path: Path) -> None:
    made = drop(tmp_path / "work")
    env = {**daemon.env, "CREDGUARD_FILE": "/x", "CREDGUARD_PUBLISH_USER": "u",
           "CREDGUARD_TEST_UNRELATED": "1"}
    assert protect(env, made["a"]).code == 0
    assert ASKED in daemon.stderr().replace(REFUSED, "")


def test_a_configuration_the_daemon_refused_is_never_its_to_protect_with(
        daemon: DaemonProcess, home: Home, tmp_path: Path) -> None:
    """A bad edit: the daemon keeps running on the configuration it had, the command would
    fail on the new one. The daemon refuses the request, and the command fails as it would
    without a daemon, the file kept. Once the file is good again the daemon protects."""
    made = drop(tmp_path / "work")
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text("[scan]\nno_such_key = 1\n")
    wait_for(lambda: "reload refused" in daemon.stderr())
    run = protect(daemon.env, made["a"])
    assert run.code == ExitCode.CONFIG, run.err
    assert "no_such_key" in run.err
    assert made["a"].exists()
    assert f"{REFUSED} another configuration or environment" in daemon.stderr()
    home.config_file.write_text("[notifications]\nenabled = false\n")
    assert run_subprocess("reload", env=daemon.env).code == 0  # answered once applied
    assert protect(daemon.env, made["a"]).code == 0
    assert not made["a"].exists()
    assert ASKED in daemon.stderr().replace(REFUSED, "")


def test_a_configuration_behind_a_link_is_never_sent(
        daemon: DaemonProcess, home: Home, tmp_path: Path) -> None:
    """A link's target may change without the daemon knowing: the command does it itself."""
    made = drop(tmp_path / "work")
    real = tmp_path / "real.toml"
    real.write_text("[notifications]\nenabled = true\n")
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.symlink_to(real)
    wait_for(lambda: "reloaded" in daemon.stderr() or daemon.status() is not None)
    run = protect(daemon.env, made["a"])
    assert run.code == 0 and not made["a"].exists()
    assert "protect request" not in daemon.stderr()


def test_a_paused_daemon_refuses_and_the_command_protects(
        daemon: DaemonProcess, tmp_path: Path) -> None:
    made = drop(tmp_path / "work")
    assert run_subprocess("pause", "10m", env=daemon.env).code == 0
    run = protect(daemon.env, made["a"])
    assert run.code == 0 and not made["a"].exists()
    assert f"{REFUSED} the daemon is paused" in daemon.stderr()


def test_import_targets_run_in_the_commands_own_environment(
        secret_service: SecretService, home: Home, tmp_path: Path) -> None:
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text('[[targets]]\nname = "ok"\ncommand = ["true"]\n')
    daemon = DaemonProcess(dict(os.environ), tmp_path / "daemon.log").start()
    try:
        made = drop(tmp_path / "work")
        run = protect(daemon.env, made["a"], json_out=False)
    finally:
        assert daemon.stop() == 0
    assert run.code == 0, run.err
    assert "import target ok:" in run.out
    assert f"{REFUSED} import targets are configured" in daemon.stderr()


@pytest.mark.parametrize("step", ["after-item-write", "after-verify", "after-rename"])
def test_a_daemon_killed_during_the_request_loses_nothing(
        secret_service: SecretService, home: Home, tmp_path: Path, step: str) -> None:
    """The daemon exits hard at a step of the request's transaction. The command warns,
    finishes what the daemon left (crash recovery, which names the file on stderr), and
    protects the rest itself, which finds the file gone: the credential is in the vault once,
    no plaintext or temporary name is left, and the result says what the command saw."""
    env = dict(os.environ)
    daemon = DaemonProcess({**env, "CREDGUARD_TEST_CRASH_AT": step},
                           tmp_path / "daemon.log").start()
    made = drop(tmp_path / "work")
    data = made["a"].read_bytes()
    run = protect(env, made["a"])
    assert daemon.proc is not None and daemon.proc.wait(30) == 99
    daemon.stop()
    assert "the daemon did not protect" in run.err
    assert list(made["a"].parent.glob(".credguard-*")) == []
    assert not made["a"].exists()
    assert vault_shas(env).count(sha(data)) == 1
    assert not list((paths.user_state_dir() / "journal").glob("*.json"))
    assert f"credguard: recovered: {made['a']}: " in run.err
    result = json.loads(run.out)["results"][0]
    assert (result["protected"], result["reason"]) == (False, "not-found")
    assert run.code == ExitCode.INPUT


def test_requests_and_a_burst_in_the_watched_folder_share_the_vault_safely(
        daemon: DaemonProcess, home: Home, tmp_path: Path) -> None:
    """The worker's group commits and the requests' take turns (one lock): every credential
    ends up in the vault exactly once."""
    import threading

    burst = {f"d{i}.PublishSettings": payloads.publish_profile(f"d{i}").data for i in range(40)}
    work = tmp_path / "work"
    work.mkdir()
    named = []
    for i in range(12):
        named.append(work / f"w{i}.PublishSettings")
        named[-1].write_bytes(payloads.publish_profile(f"w{i}").data)
    expected = sorted([sha(d) for d in burst.values()] + [sha(p.read_bytes()) for p in named])
    runs: list[Run] = []
    requests = [threading.Thread(target=lambda part=part: runs.append(protect(daemon.env, *part)))
                for part in (named[:6], named[6:])]
    staging = tmp_path / "staging"
    staging.mkdir()
    for name, data in burst.items():
        (staging / name).write_bytes(data)
    for thread in requests:
        thread.start()
    for name in burst:
        os.rename(staging / name, home.downloads / name)
    for thread in requests:
        thread.join(120)
    assert [r.code for r in runs] == [0, 0], [r.err for r in runs]
    wait_for(lambda: not any(home.downloads.iterdir()), timeout=60, every=0.2)
    assert vault_shas(daemon.env) == expected
    assert daemon.stderr().count(ASKED) == 2
