"""The ``protect`` command's side of asking the daemon (credguard.cli.protect_daemon): which
answers it takes, which it treats as "nothing was done there" (silent), and which as a failure
(a warning, crash recovery, then the work done here).

A real daemon answers only well (tests/daemon/test_protect_via_daemon.py); the answers of an
older daemon, or broken ones, come from a stand-in: a thread that answers one fixed line on a
real Unix socket where the daemon's would be.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.home import Home
from helpers.standin import line

from credguard import control
from credguard.cli.protect_daemon import through_daemon


def test_an_older_daemon_that_does_not_know_protect_is_passed_over_silently(
        stand_in: list[bytes], capsys: pytest.CaptureFixture[str]) -> None:
    stand_in.append(line({"ok": False, "error": "unknown command (expected one of: status)"}))
    asked = through_daemon([["/x/a.PublishSettings"]])
    assert (asked.done, asked.results) == (0, [])
    assert capsys.readouterr().err == ""


def test_a_busy_daemon_is_passed_over_silently(
        stand_in: list[bytes], capsys: pytest.CaptureFixture[str]) -> None:
    stand_in.append(line({"ok": False, "error": "busy: 2 protects are running already"}))
    assert through_daemon([["/x/a.PublishSettings"]]).done == 0
    assert capsys.readouterr().err == ""


def test_a_refusal_is_silent_and_leaves_the_rest_here(
        stand_in: list[bytes], capsys: pytest.CaptureFixture[str]) -> None:
    stand_in.append(line({"ok": True, "result": {"refused": "the daemon is paused"}}))
    assert through_daemon([["/x/a"], ["/x/b"]]).done == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("result", [
    {"results": [], "warnings": []},  # one result per path, or it is broken
    {"results": [{"path": "/x/a"}], "warnings": []},
    {"results": [{"path": "/x/a", "protected": True, "reason": None, "error": None, "id": "i",
                  "already_in_vault": False, "deletion": None, "targets": [],
                  "revoke": "r"}], "warnings": []},
    {"results": "no", "warnings": []},
    {"warnings": ["w"]},
])
def test_a_malformed_answer_is_a_failure_warned_of_and_done_here(
        stand_in: list[bytes], capsys: pytest.CaptureFixture[str],
        result: dict[str, object]) -> None:
    stand_in.append(line({"ok": True, "result": result}))
    assert through_daemon([["/x/a"]]).done == 0
    assert "the daemon did not protect (malformed protect response); protecting here" in \
        capsys.readouterr().err


def test_a_daemon_error_is_a_failure_warned_of_and_done_here(
        stand_in: list[bytes], capsys: pytest.CaptureFixture[str]) -> None:
    stand_in.append(line({"ok": False, "error": "internal error: OSError"}))
    assert through_daemon([["/x/a"]]).done == 0
    assert "the daemon did not protect (credguard daemon: internal error: OSError)" in \
        capsys.readouterr().err


def test_the_daemons_results_and_warnings_are_taken_batch_by_batch(
        stand_in: list[bytes], capsys: pytest.CaptureFixture[str]) -> None:
    doc = {"path": "/x/a", "protected": False, "reason": "not-found", "error": "no such file",
           "id": None, "already_in_vault": False, "deletion": None, "targets": [],
           "revoke": None}
    stand_in.append(line({"ok": True, "result": {"results": [doc], "warnings": ["careful"]}}))
    stand_in.append(line({"ok": True, "result": {"results": [doc], "warnings": ["careful"]}}))
    asked = through_daemon([["/x/a"], ["/x/a"]])
    assert (asked.done, asked.results, asked.warned) == (2, [doc, doc], True)
    assert capsys.readouterr().err == "credguard: warning: careful\n"  # once, not per batch


def test_fault_injection_keeps_the_work_in_this_process(
        stand_in: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDGUARD_TEST_CRASH_AT", "after-intent")
    stand_in.append(line({"ok": True, "result": {"refused": "never asked"}}))
    assert through_daemon([["/x/a"]]).done == 0
    assert stand_in  # the answer was never taken: nobody connected


def test_a_path_too_long_to_send_is_done_here(stand_in: list[bytes]) -> None:
    long = "/" + "d/" * (control.MAX_REQUEST // 2) + "a"
    assert through_daemon([[long]]).done == 0
    assert os.path.isabs(long)


def test_no_daemon_means_here_silently(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    assert through_daemon([["/x/a"]]).done == 0
    assert capsys.readouterr().err == ""
    assert not Path(control.daemon_socket_path()).exists()
