"""Hostile file names on the terminal (issue 14): every text the CLI prints shows them escaped,
so no name can forge a line, move the cursor or reverse what follows; JSON and SARIF keep the
exact names. Real files in the test's home; recovery after a real crash of ``credguard
protect``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlparse

import pytest
from helpers import payloads
from helpers.crashes import entries
from helpers.home import Home, Run, run_subprocess
from helpers.hostile import FORGED_LINE, FORGING, NAMES, SHOWN, unsafe

from credguard.audit.log import AuditLog
from credguard.textsafe import escape

pytestmark = pytest.mark.timeout(120)
Cli = Callable[..., Run]


def plant(home: Home) -> list[Path]:
    """The hostile names as real publish profiles in Downloads, and a FIFO and a symlink under
    the forging name (the scan skips them, with their names)."""
    paths = [home.write(f"Downloads/{name}", payloads.publish_profile().data) for name in NAMES]
    os.mkfifo(home.downloads / f"fifo-{FORGING}")
    (home.downloads / f"link-{FORGING}").symlink_to("/etc/passwd")
    return paths


def assert_safe(run: Run) -> None:
    assert not unsafe(run.out, multiline=True) and not unsafe(run.err, multiline=True)
    assert not FORGED_LINE.search(run.out + run.err)


def test_scan_shows_names_escaped(cli: Cli, home: Home) -> None:
    plant(home)
    run = cli("scan", "--local", str(home.downloads))
    assert run.code == 1
    assert_safe(run)
    for shown in SHOWN:
        assert f"  {home.downloads}/{shown}\n" in run.out
    assert f"{home.downloads}/fifo-{SHOWN[0]} (not a regular file)\n" in run.out
    assert f"{home.downloads}/link-{SHOWN[0]} (refusing to follow a symbolic link)\n" in run.out


def test_scan_json_keeps_the_exact_names(cli: Cli, home: Home) -> None:
    paths = plant(home)
    doc = json.loads(cli("scan", "--local", "--json", str(home.downloads)).out)
    assert sorted(f["path"] for f in doc["findings"]) == sorted(map(str, paths))
    assert {s["path"] for s in doc["skipped"]} == {
        f"{home.downloads}/fifo-{FORGING}", f"{home.downloads}/link-{FORGING}"}


def test_sarif_keeps_exact_locations_and_escapes_its_messages(cli: Cli, home: Home) -> None:
    paths = plant(home)
    run = cli("scan", "--local", "--sarif", str(home.downloads))
    (sarif_run,) = json.loads(run.out)["runs"]
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in sarif_run["results"]]  # fmt: skip
    assert sorted(unquote_to_bytes(urlparse(u).path) for u in uris) == sorted(
        os.fsencode(p) for p in paths)
    notes = sarif_run["invocations"][0]["toolExecutionNotifications"]
    texts = [n["message"]["text"] for n in notes] + [
        r["message"]["text"] for r in sarif_run["results"]]
    assert len(notes) == 2 and not [t for t in texts if unsafe(t)]


def test_details_read_from_a_file_are_escaped(cli: Cli, home: Home) -> None:
    """What a detector read from the file (here the app's name) is untrusted text too."""
    home.write("Downloads/x.publishsettings",
               payloads.publish_profile(app="contoso\u202eppa-lanretni").data)  # fmt: skip
    run = cli("scan", "--local", str(home.downloads))
    assert_safe(run)
    assert "apps=contoso\\u202eppa-lanretni" in run.out


def test_an_error_naming_a_hostile_path_is_escaped(cli: Cli, home: Home) -> None:
    missing = str(home.downloads / FORGING)
    for args in (("scan", "--local", missing), ("protect", missing), ("check", missing)):
        assert_safe(cli(*args))


def test_log_shows_names_escaped(cli: Cli, home: Home) -> None:
    log = AuditLog()
    for name in NAMES:
        log.append("protected", path=str(home.downloads / name), paths=[name], kind="k")
    run = cli("log")
    assert run.code == 0
    assert_safe(run)
    assert len(run.out.splitlines()) == len(NAMES)
    for name in NAMES:
        assert escape(str(home.downloads / name)) in run.out


# -- recovery after a real crash --------------------------------------------------------------


def crashed_protect(home: Home, name: str = FORGING) -> Path:
    """``credguard protect`` of a hostile name, killed right after it journaled its intent."""
    path = home.write(f"Downloads/{name}", payloads.publish_profile().data)
    env = {**os.environ, "CREDGUARD_TEST_CRASH_AT": "after-intent"}
    crashed = run_subprocess("protect", str(path), env=env)
    assert crashed.code == 99, crashed.err
    assert [e.path for e in entries()] == [str(path)]
    return path


@pytest.mark.parametrize("name", NAMES)
def test_recover_shows_the_name_escaped(secret_service: object, home: Home, name: str) -> None:
    path = crashed_protect(home, name)
    run = run_subprocess("recover")
    assert run.code == 0, run.err
    assert_safe(run)
    assert run.out == f"{escape(str(path))}: rolled back and protected again\n"
    assert not os.path.lexists(path)


def test_recover_json_keeps_the_exact_name(secret_service: object, home: Home) -> None:
    path = crashed_protect(home)
    run = run_subprocess("recover", "--json")
    assert json.loads(run.out)["recovered"] == [f"{path}: rolled back and protected again"]


def test_the_recovery_note_before_a_command_is_escaped(
    secret_service: object, home: Home
) -> None:
    """A command that may delete finishes the crashed transaction first, and says so."""
    path = crashed_protect(home)
    other = home.write("Downloads/other.publishsettings", payloads.publish_profile().data)
    run = run_subprocess("protect", str(other))
    assert run.code == 0, run.err
    assert_safe(run)
    assert f"credguard: recovered: {escape(str(path))}: rolled back" in run.err


def test_scan_protect_actions_are_escaped(secret_service: object, home: Home) -> None:
    paths = plant(home)
    run = run_subprocess("scan", "--protect", str(home.downloads))
    assert_safe(run)
    for path in paths:
        assert f"  {escape(str(path))}: protected\n" in run.out
        assert not os.path.lexists(path)
