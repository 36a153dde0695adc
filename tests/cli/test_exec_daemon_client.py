"""The ``exec`` command's side of asking the daemon (credguard.cli.exec_daemon): which answers
it takes, which it treats as "nothing was done there" (silent), which as a failure (a warning,
then the vault read here), and that an error the daemon relays is the command's own.

A real daemon answers only well (tests/daemon/test_exec_via_daemon.py); the other answers come
from the ``stand_in`` socket (tests/conftest.py).
"""

from __future__ import annotations

import pytest
from helpers.home import Home
from helpers.standin import line

from credguard.cli.exec_daemon import through_daemon
from credguard.errors import ExitCode, NotFoundError, UsageError

HANDOVER = {"env": {"CREDGUARD_KIND": "k"}, "warnings": ["w"],
            "files": [["CREDGUARD_FILE", "a.PublishSettings", "aGk="]]}
FAILED = "credguard: warning: the daemon did not hand over the credential"


def ask() -> object:
    return through_daemon("0123456789abcdef", None, True)


def test_a_handover_is_taken_and_the_configurations_warnings_printed(
        stand_in: list[bytes], capsys: pytest.CaptureFixture[str]) -> None:
    stand_in.append(line({"ok": True, "result": {"handover": HANDOVER, "warnings": ["cfg"]}}))
    got = through_daemon("0123456789abcdef", None, True)
    assert got is not None
    assert (got.env, got.files, got.warnings) == (
        {"CREDGUARD_KIND": "k"}, [("CREDGUARD_FILE", "a.PublishSettings", b"hi")], ["w"])
    assert capsys.readouterr().err == "credguard: warning: cfg\n"


@pytest.mark.parametrize("reply", [
    {"ok": False, "error": "unknown command (expected one of: status, scan)"},  # older
    {"ok": False, "error": "busy: 2 requests are running already"},
    {"ok": True, "result": {"refused": "the keyring is locked"}},
])
def test_nothing_done_there_is_silent(stand_in: list[bytes], reply: dict[str, object],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    stand_in.append(line(reply))
    assert ask() is None
    assert capsys.readouterr().err == ""


def test_no_daemon_is_silent(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    assert ask() is None
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("result", [
    {"handover": HANDOVER},  # no warnings
    {"handover": HANDOVER, "warnings": "w"},
    {"handover": {**HANDOVER, "env": {"PATH": "/evil"}}, "warnings": []},
    {"handover": {**HANDOVER, "files": [["CREDGUARD_FILE", "../x", "aGk="]]}, "warnings": []},
    {"warnings": []},  # neither a handover nor a failure
    {"failed": {"code": ExitCode.INTERNAL, "message": "boom"}, "warnings": []},
    {"failed": {"code": True, "message": "boom"}, "warnings": []},
    {"failed": {"code": ExitCode.USAGE}, "warnings": []},
    {"failed": "no", "warnings": []},
])
def test_a_malformed_answer_is_warned_of_and_read_here(
        stand_in: list[bytes], result: dict[str, object],
        capsys: pytest.CaptureFixture[str]) -> None:
    stand_in.append(line({"ok": True, "result": result}))
    assert ask() is None
    err = capsys.readouterr().err
    assert err.startswith(FAILED) and err.endswith("reading the vault here\n")
    assert "/evil" not in err


def test_a_daemon_error_is_warned_of_and_read_here(
        stand_in: list[bytes], capsys: pytest.CaptureFixture[str]) -> None:
    stand_in.append(line({"ok": False, "error": "internal error: OSError"}))
    assert ask() is None
    assert f"{FAILED} (credguard daemon: internal error: OSError)" in capsys.readouterr().err


def test_a_silent_daemon_is_warned_of_and_read_here(
        stand_in: list[bytes], capsys: pytest.CaptureFixture[str]) -> None:
    """The connection closes without an answer (a daemon that died mid-request)."""
    assert ask() is None
    assert f"{FAILED} (credguard daemon: the connection closed without an answer)" in \
        capsys.readouterr().err


@pytest.mark.parametrize(("code", "error"), [(ExitCode.USAGE, UsageError),
                                             (ExitCode.NOT_FOUND, NotFoundError)])
def test_a_relayed_error_is_the_commands_own_after_the_warnings(
        stand_in: list[bytes], capsys: pytest.CaptureFixture[str], code: int,
        error: type[Exception]) -> None:
    stand_in.append(line({"ok": True, "result": {
        "failed": {"code": code, "message": "no vault item 'x'"}, "warnings": ["cfg"]}}))
    with pytest.raises(error) as raised:
        ask()
    assert str(raised.value) == "no vault item 'x'"
    assert capsys.readouterr().err == "credguard: warning: cfg\n"
