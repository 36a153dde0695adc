"""The daemon-facing commands against the CLI contract (issue 15): ``status``, ``pause``,
``resume``, ``reload``, ``doctor``, ``service status`` and ``tray``.

Each error path is checked for its exit code, its message and that nothing changed; each
``--json`` document is validated against its schema in ``docs/schemas``. The daemon is the real
``credguard daemon`` process (helpers.daemon) with the real Secret Service on a private bus; the
commands run in-process (the ``cli`` fixture) and talk to it over its real control socket.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.daemon import DaemonProcess, audit_events, running_daemon
from helpers.home import Home, Run
from helpers.schemas import SCHEMAS, validate
from helpers.secret_service import SecretService, SessionBus

from credguard import control, paths
from credguard.cli import build_parser
from credguard.daemon import server as server_mod
from credguard.errors import ExitCode

pytestmark = pytest.mark.timeout(120)
Cli = Callable[..., Run]
MINE = ("daemon", "status", "pause", "resume", "reload", "start", "stop", "restart", "service",
        "tray", "config", "ignore", "doctor")
NOT_RUNNING = "credguard: error: credguard daemon is not running (no control socket at "
START = "; start it with: credguard start\n"


@pytest.fixture
def daemon(secret_service: SecretService, home: Home, tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


def snapshot(root: Path) -> dict[Path, bytes | None]:
    return {p: (p.read_bytes() if p.is_file() else None) for p in root.rglob("*")}


def events(home: Home, name: str) -> list[dict[str, object]]:
    return [e for e in audit_events(home.root / ".local" / "state") if e["event"] == name]


def mode(cli: Cli) -> str:
    run = cli("status", "--json")
    assert run.code == 0, run.err
    return str(validate(run.out, "status")["mode"])


# -- help ----------------------------------------------------------------------------------


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
          ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {c.dest: (c.help or "").strip() for c in action._choices_actions}
            for name, child in action.choices.items():
                if path or name in MINE:
                    assert summaries.get(name), f"credguard {' '.join((*path, name))}: no summary"
                    yield from _walk(child, (*path, name))


def test_every_flag_and_verb_of_the_daemon_commands_has_help() -> None:
    walked = list(_walk(build_parser()))
    assert {path[0] for path, _ in walked if path} == set(MINE)
    for path, parser in walked:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert (action.help or "").strip(), f"credguard {' '.join(path)} {action.dest}"
            if "--json" in action.option_strings:
                name = "-".join(path)
                assert action.help == (f"print one JSON document (schema: "
                                       f"docs/schemas/{name}.schema.json)")
                assert (SCHEMAS / f"{name}.schema.json").is_file()


# -- no daemon: 9, and nothing changes -----------------------------------------------------


@pytest.mark.parametrize("argv", [("pause",), ("pause", "1h"), ("pause", "--json"),
                                  ("resume",), ("resume", "--json"),
                                  ("reload",), ("reload", "--json")])
def test_without_a_daemon_the_commands_that_ask_it_exit_9(
    cli: Cli, home: Home, argv: tuple[str, ...]
) -> None:
    before = snapshot(home.root)
    run = cli(*argv)
    assert run.code == ExitCode.NOT_FOUND == 9
    assert run.out == ""
    assert run.err.startswith(NOT_RUNNING) and run.err.endswith(START)
    assert snapshot(home.root) == before


def test_status_without_a_daemon_exits_9_and_says_how_to_start_it(
    cli: Cli, home: Home
) -> None:
    before = snapshot(home.root)
    run = cli("status", "--json")
    assert run.code == ExitCode.NOT_FOUND and run.err == ""
    doc = validate(run.out, "status")
    assert (doc["running"], doc["protecting"], doc["start"]) == (False, False, "credguard start")
    assert "not running" in doc["protection"] and doc["sealed"] == []
    text = cli("status")
    assert text.code == ExitCode.NOT_FOUND and text.err == ""
    assert text.out.startswith("credguard daemon: not running")
    assert "start it with: credguard start" in text.out
    assert snapshot(home.root) == before


def test_status_lists_sealed_caches_by_id(
    secret_service: SecretService, cli: Cli, home: Home
) -> None:
    from helpers import msalcache

    home.write(".azure/msal_token_cache.json", msalcache.state_with(msalcache.new_user()))
    sealed = cli("seal", "azure-cli")
    assert sealed.code == 0, sealed.err
    run = cli("status", "--json")
    assert run.code == ExitCode.NOT_FOUND
    [seal] = validate(run.out, "status")["sealed"]
    assert (seal["tool"], seal["root"], seal["state"]) == ("azure-cli", str(home.azure), "sealed")
    assert seal["id"] == seal["item_id"] and seal["files"] == ["msal_token_cache.json"]
    (paths.user_state_dir() / "sealed.json").write_text("{")  # damaged: said, not fatal
    damaged = cli("status", "--json")
    assert damaged.code == ExitCode.NOT_FOUND
    [entry] = validate(damaged.out, "status")["sealed"]
    assert set(entry) == {"error"}


def test_doctor_without_a_daemon_exits_9(secret_service: SecretService, cli: Cli) -> None:
    run = cli("doctor", "--json")
    assert run.code == ExitCode.NOT_FOUND
    doc = validate(run.out, "doctor")
    assert (doc["healthy"], doc["protecting"]) == (False, False)
    failed = [c["check"] for c in doc["checks"] if c["essential"] and not c["ok"]]
    assert failed == ["daemon"] and "not running" in doc["protection"]
    text = cli("doctor")
    assert text.code == ExitCode.NOT_FOUND
    assert any(line.split()[:2] == ["!!", "daemon"] for line in text.out.splitlines())


def test_doctor_without_a_keyring_exits_5(no_secret_service: SessionBus, cli: Cli) -> None:
    run = cli("doctor", "--json")
    assert run.code == ExitCode.KEYSTORE
    doc = validate(run.out, "doctor")
    failed = [c["check"] for c in doc["checks"] if c["essential"] and not c["ok"]]
    assert failed == ["keystore", "daemon"]  # the first decides


def test_doctor_with_an_unsafe_vault_dir_exits_7_and_changes_nothing(
    secret_service: SecretService, cli: Cli
) -> None:
    vault = paths.vault_dir()
    vault.mkdir(parents=True, mode=0o700)
    vault.chmod(0o755)
    run = cli("doctor", "--json")
    assert run.code == ExitCode.STATE
    check = next(c for c in validate(run.out, "doctor")["checks"] if c["check"] == "vault")
    assert not check["ok"] and f"chmod 700 '{vault}'" in check["detail"]
    assert vault.stat().st_mode & 0o777 == 0o755  # doctor reports, never repairs


def test_a_daemon_that_does_not_answer_is_busy_7(secret_service: SecretService, cli: Cli,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket that takes connections and never answers (a stuck daemon); the waits are
    shortened from doctor's 5 s and status's 10 s."""
    from credguard import doctor

    monkeypatch.setattr(doctor, "DOCTOR_TIMEOUT", 1.0)
    monkeypatch.setattr(doctor, "STATUS_TIMEOUT", 2.0)
    assert (doctor.DOCTOR_TIMEOUT, doctor.STATUS_TIMEOUT) != (5.0, 10.0)
    where = paths.control_dir()
    assert isinstance(where, Path)  # the test's private XDG_RUNTIME_DIR
    server_mod.prepare_control_dir(where)
    path = control.socket_path()
    assert path is not None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(str(path))
        silent.listen(8)
        doctor = cli("doctor", "--json")
        assert doctor.code == ExitCode.STATE
        check = next(c for c in validate(doctor.out, "doctor")["checks"]
                     if c["check"] == "daemon")
        assert check["detail"] == ("the daemon does not answer: credguard daemon: no answer "
                                   "within 1 s")
        status = cli("status", "--json")
        assert status.code == ExitCode.STATE and status.out == ""
        assert status.err == "credguard: error: credguard daemon: no answer within 2 s\n"


def test_a_daemon_too_old_to_say_the_reload_outcome_is_an_error_without_a_document(
    cli: Cli,
) -> None:
    """The real control server with a stand-in handler answering as a daemon from before
    reload waited for its outcome (no such daemon can be started here)."""
    server = server_mod.ControlServer(lambda cmd, args: {"reloading": True}, timeout=2.0)
    server.start()
    try:
        for argv in (("reload",), ("reload", "--json")):
            run = cli(*argv)
            assert run.code == ExitCode.STATE and run.out == ""
            assert run.err == ("credguard: error: credguard daemon: this daemon does not say "
                               "whether it accepted the configuration: restart it, then see "
                               "'credguard status'\n")
    finally:
        server.stop()


# -- a running daemon ------------------------------------------------------------------------


NOT_A_DURATION = ("not a duration", "(e.g. 90s, 30m, 1h, 2d)")
TOO_LONG = ("too long a pause", "(at most 7d)")
BAD_DURATIONS = {
    "5x": NOT_A_DURATION, "0": NOT_A_DURATION, "0m": NOT_A_DURATION, "-1": NOT_A_DURATION,
    "1.5h": NOT_A_DURATION, "1 h x": NOT_A_DURATION, "": NOT_A_DURATION,
    "8d": TOO_LONG, "604801": TOO_LONG, "9" * 30 + "d": TOO_LONG,
}


def test_a_bad_duration_is_a_usage_error_and_pauses_nothing(
    daemon: DaemonProcess, home: Home, cli: Cli
) -> None:
    for text, (what, hint) in BAD_DURATIONS.items():
        for argv in (("pause", text), ("pause", text, "--json")):
            run = cli(*argv)
            assert run.code == ExitCode.USAGE == 2, text
            assert run.out == ""
            assert run.err == (f"credguard: error: {what}: {text!r} {hint}; protection was not "
                               "paused\n")
    assert mode(cli) == "protecting" and not events(home, "paused")
    assert cli("pause", "604800").code == 0  # 7d exactly is allowed
    assert mode(cli) == "paused"


def test_json_documents_of_a_running_daemon(daemon: DaemonProcess, cli: Cli) -> None:
    status = cli("status", "--json")
    assert status.code == 0, status.err
    doc = validate(status.out, "status")
    assert doc["running"] and doc["protecting"] and doc["pid"] == daemon.proc.pid  # type: ignore[union-attr]

    before = dt.datetime.now().astimezone()
    paused = cli("pause", "30m", "--json")
    assert paused.code == 0, paused.err
    doc = validate(paused.out, "pause")
    assert (doc["mode"], doc["seconds"]) == ("paused", 1800)
    until = dt.datetime.fromisoformat(doc["until"])
    assert until.tzinfo is not None
    assert math.isclose((until - before).total_seconds(), 1800, abs_tol=5)
    assert mode(cli) == "paused"

    resumed = cli("resume", "--json")
    assert resumed.code == 0, resumed.err
    assert validate(resumed.out, "resume") == {"version": 1, "mode": "protecting",
                                               "was": "paused"}
    forever = cli("pause", "--json")
    assert validate(forever.out, "pause") == {"version": 1, "mode": "paused", "seconds": None,
                                              "until": None}
    doctor = cli("doctor", "--json")
    assert doctor.code == ExitCode.FINDINGS  # paused: a finding, not an error
    doc = validate(doctor.out, "doctor")
    assert not doc["protecting"] and "paused" in doc["protection"]
    assert validate(cli("resume", "--json").out, "resume")["was"] == "paused"
    again = cli("resume", "--json")
    assert validate(again.out, "resume") == {"version": 1, "mode": "protecting",
                                             "was": "protecting"}

    reloaded = cli("reload", "--json")
    assert reloaded.code == 0, reloaded.err
    doc = validate(reloaded.out, "reload")
    assert doc["reloaded"] is True and doc["config_error"] is None
    assert isinstance(doc["files"], list)
    doctor = cli("doctor", "--json")
    assert doctor.code == 0, doctor.out
    assert validate(doctor.out, "doctor")["healthy"] is True


def test_a_refused_reload_prints_its_document_exits_3_and_keeps_the_old_config(
    daemon: DaemonProcess, home: Home, cli: Cli
) -> None:
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text('version = 1\n[policy]\nazure-publish-profil = "alert"\n')
    run = cli("reload", "--json")
    assert run.code == ExitCode.CONFIG
    doc = validate(run.out, "reload")
    assert doc["reloaded"] is False and doc["files"] == []
    assert f"{home.config_file}:3" in doc["config_error"]["error"]
    assert run.err.startswith("credguard: error: reload refused: the daemon keeps its running "
                              "configuration: ")
    status = validate(cli("status", "--json").out, "status")
    assert status["mode"] == "protecting" and status["config_error"] is not None


# -- service status, tray --------------------------------------------------------------------


def test_service_status_json_and_exit_9_while_the_service_does_not_run(
    cli: Cli, home: Home
) -> None:
    run = cli("service", "status", "--json")
    assert run.code == ExitCode.NOT_FOUND and run.err == ""
    doc = validate(run.out, "service-status")
    assert (doc["installed"], doc["running"], doc["responding"]) == (False, False, False)
    assert cli("service", "install", "--no-start").code == 0
    installed = cli("service", "status", "--json")
    assert installed.code == ExitCode.NOT_FOUND
    doc = validate(installed.out, "service-status")
    assert (doc["installed"], doc["enabled"], doc["running"]) == (True, True, False)


@pytest.mark.parametrize("value", ["0", "0.05", "3601", "nan", "inf", "-1"])
def test_a_bad_tray_interval_is_a_usage_error(cli: Cli, value: str) -> None:
    run = cli("tray", "--interval", value)
    assert run.code == ExitCode.USAGE and run.out == ""
    assert run.err == ("credguard: error: --interval must be between 0.1 and 3600 "
                       "seconds\n")
