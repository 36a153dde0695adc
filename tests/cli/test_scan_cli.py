"""``scan``, ``check``, ``protect`` and ``recover`` against the CLI contract (issue 15): exit codes,
messages, JSON documents that validate against docs/schemas, help, and nothing lost on an error.
Real files in the test's home; the real Secret Service where a vault is needed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import Home, Run, run_subprocess
from helpers.schemas import validate

from credguard.cli.scan_cmd import _Progress
from credguard.detect import kinds
from credguard.detect.kinds import KINDS
from credguard.scan.check import LINK_NOT_FOLLOWED

pytestmark = pytest.mark.timeout(120)
Cli = Callable[..., Run]


def help_of(*words: str) -> str:
    """``credguard WORDS --help`` as a real process (argparse exits, so not in-process)."""
    run = run_subprocess(*words, "--help")
    assert run.code == 0, run.err
    return " ".join(run.out.split())  # argparse wraps lines: compare word by word


def tree(root: Path) -> dict[str, bytes | str]:
    """Every file under ``root``: its bytes, or a link's target."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            found[str(path)] = os.readlink(path)
        elif path.is_file():
            found[str(path)] = path.read_bytes()
    return found


# -- plurals -------------------------------------------------------------------------------------


def test_one_file_in_one_directory(cli: Cli, home: Home) -> None:
    home.write("Documents/only/readme.txt", "hello")
    run = cli("scan", "--local", str(home.documents / "only"))
    assert run.code == 0
    assert "Scanned 1 file in 1 directory in " in run.out
    empty = home.documents / "empty"
    empty.mkdir()
    assert "Scanned 0 files in 1 directory in " in cli("scan", "--local", str(empty)).out
    home.write("Documents/two/a/x.txt", "x")
    home.write("Documents/two/b.txt", "y")
    assert "Scanned 2 files in 2 directories in " in cli(
        "scan", "--local", str(home.documents / "two")).out


def test_one_credential_file_found(cli: Cli, home: Home) -> None:
    home.write("Downloads/a.publishsettings", payloads.publish_profile().data)
    run = cli("scan", "--local", str(home.downloads))
    assert run.code == 1 and run.out.startswith("1 credential file found:\n")


def test_progress_counts_in_the_singular(capsys: pytest.CaptureFixture[str]) -> None:
    progress = _Progress()
    progress(1, 1)
    assert capsys.readouterr().err == "\rscanning… 1 file in 1 directory"
    progress.last = 0.0  # the next call is due at once
    progress(3, 2)
    assert capsys.readouterr().err == "\rscanning… 3 files in 2 directories"


# -- scan ----------------------------------------------------------------------------------------


def test_scan_json_and_every_error_path(cli: Cli, home: Home, tmp_path: Path) -> None:
    cred = home.write("Downloads/app.PublishSettings", payloads.publish_profile().data)
    link = home.downloads / "link.txt"
    link.symlink_to(cred)
    before = tree(home.root)
    run = cli("scan", "--local", "--json", str(tmp_path / "nope"), str(link))
    doc = validate(run.out, "scan")
    assert run.code == 4
    assert [(s["reason"], s["path"]) for s in doc["skipped"]] == [
        ("not-found", str(tmp_path / "nope")), ("symlink", str(link))]
    assert run.err == (
        f"credguard: error: {tmp_path / 'nope'}: not scanned: not-found (no such file or "
        f"directory)\ncredguard: error: {link}: not scanned: symlink (refusing to follow a "
        "symbolic link)\n")
    run = cli("scan", "--local", "--json", str(home.downloads), str(tmp_path / "nope"))
    assert run.code == 1  # findings win over a path that could not be scanned
    assert [f["kind"] for f in validate(run.out, "scan")["findings"]] == [kinds.PUBLISH_PROFILE]
    assert tree(home.root) == before  # scanning changes nothing


def test_scan_bad_config_is_3(cli: Cli, home: Home) -> None:
    home.config_file.parent.mkdir(parents=True)
    home.config_file.write_text("[scan]\nmax_file_size = \"lots\"\n")
    run = cli("scan", "--local")
    assert run.code == 3 and f"{home.config_file}:2" in run.err


def test_json_and_sarif_together_is_a_usage_error(cli: Cli) -> None:
    for command in ("scan", "check"):
        with pytest.raises(SystemExit) as exited:
            cli(command, "--json", "--sarif", "x")
        assert exited.value.code == 2


# -- check ---------------------------------------------------------------------------------------


def test_check_finds_a_credential_json(cli: Cli, home: Home) -> None:
    cred = home.write("repo/deploy/app.xml", payloads.publish_profile().data)
    run = cli("check", "--json", str(cred))
    assert run.code == 1
    (finding,) = validate(run.out, "check")["findings"]
    assert finding["path"] == str(cred) and finding["kind"] in KINDS


def test_check_a_missing_file_is_4(cli: Cli, home: Home) -> None:
    clean = home.write("repo/README.md", "# hello\n")
    missing = home.root / "repo" / "gone.publishsettings"
    run = cli("check", str(clean), str(missing))
    assert run.code == 4
    assert run.err == (f"credguard: error: {missing}: not checked: not-found "
                       "(no such file or directory)\n")
    assert f"not-found        {missing} (no such file or directory)" in run.out
    doc = validate(cli("check", "--json", str(missing)).out, "check")
    assert doc["skipped"] == [{"path": str(missing), "reason": "not-found",
                               "detail": "no such file or directory"}]
    assert clean.read_text() == "# hello\n"


def test_check_a_directory_is_4_and_not_walked(cli: Cli, home: Home) -> None:
    """A directory in a commit is a submodule, whose files are not part of it; pre-commit never
    passes one to a `types: [file]` hook: naming one is a mistake, said so."""
    data = payloads.publish_profile().data
    cred = home.write("repo/sub/app.publishsettings", data)
    run = cli("check", str(cred.parent))
    assert run.code == 4 and "app.publishsettings" not in run.out
    assert run.err == (f"credguard: error: {cred.parent}: not checked: not-regular (a "
                       "directory: check takes files (credguard scan DIR searches a "
                       "directory))\n")
    assert cred.read_bytes() == data
    run = cli("check", "--json", str(cred.parent))
    assert run.code == 4 and validate(run.out, "check")["findings"] == []


def test_check_a_special_file_is_4(cli: Cli, home: Home) -> None:
    fifo = home.root / "repo" / "pipe"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    run = cli("check", str(fifo))  # returns at once: a FIFO is never opened
    assert run.code == 4
    assert run.err == f"credguard: error: {fifo}: not checked: not-regular (not a regular file)\n"


def test_check_a_symlink_is_0_with_a_note(cli: Cli, home: Home) -> None:
    """A commit holds a link's text, not its target; the target, if committed, is passed to the
    hook as a file of its own. So a link never fails the check, and is never followed."""
    data = payloads.publish_profile().data
    cred = home.write("repo/app.publishsettings", data)
    link = home.root / "repo" / "link.xml"
    link.symlink_to(cred)
    run = cli("check", str(link))
    assert (run.code, run.out) == (0, "")
    assert run.err == (f"credguard: note: {link}: skipped: symlink ({LINK_NOT_FOLLOWED})\n")
    doc = validate(cli("check", "--json", str(link)).out, "check")
    assert doc["findings"] == [] and [s["reason"] for s in doc["skipped"]] == ["symlink"]
    assert cli("check", str(link), str(cred)).code == 1  # the target, passed itself, is found
    assert link.is_symlink() and cred.read_bytes() == data


def test_check_quiet_when_clean(cli: Cli, home: Home) -> None:
    clean = home.write("repo/README.md", "# hello\n")
    assert cli("check", str(clean)) == Run(0, "", "")


# -- protect and recover -------------------------------------------------------------------------


def test_protect_json_carries_id_and_the_deprecated_item_id(
    secret_service: object, cli: Cli, home: Home
) -> None:
    path = home.write("Downloads/old.publishsettings", payloads.publishsettings_v1().data)
    run = cli("protect", "--json", str(path))
    assert run.code == 0, run.err
    (result,) = validate(run.out, "protect")["results"]
    assert result["id"] and result["item_id"] == result["id"]
    assert result["revoke"] == ("Delete the management certificate from the subscription "
                                "(Azure portal, classic management certificates).")
    assert not path.exists()
    assert result["id"] in cli("vault", "list").out


def test_protect_human_revoke_advice_does_not_ask_to_delete_the_deleted_file(
    secret_service: object, cli: Cli, home: Home
) -> None:
    path = home.write("Downloads/old.publishsettings", payloads.publishsettings_v1().data)
    run = cli("protect", str(path))
    assert run.code == 0, run.err
    assert "deleted (overwrite attempted)" in run.out
    assert ("    revoke: Delete the management certificate from the subscription (Azure "
            "portal, classic management certificates).\n") in run.out
    assert "this file" not in run.out and not path.exists()


def test_protect_a_missing_path_is_4(secret_service: object, cli: Cli, home: Home) -> None:
    missing = home.downloads / "gone.publishsettings"
    run = cli("protect", "--json", str(missing))
    assert run.code == 4
    (result,) = validate(run.out, "protect")["results"]
    assert (result["protected"], result["reason"], result["id"]) == (False, "not-found", None)
    human = cli("protect", str(missing))
    assert human.code == 4 and f"{missing}: NOT protected (not-found)" in human.out


def test_protect_refused_keeps_the_file(secret_service: object, cli: Cli, home: Home) -> None:
    data = payloads.publish_profile().data
    path = home.write("Downloads/a.publishsettings", data)
    os.link(path, home.documents / "second-name")
    run = cli("protect", "--json", str(path))
    assert run.code == 4
    (result,) = validate(run.out, "protect")["results"]
    assert result["reason"] == "hard-links" and path.read_bytes() == data


def test_protect_without_a_keyring_is_5(cli: Cli, home: Home) -> None:
    data = payloads.publish_profile().data
    path = home.write("Downloads/a.publishsettings", data)
    run = cli("protect", str(path))
    assert run.code == 5 and "no usable OS keyring" in run.err
    assert path.read_bytes() == data


def test_scan_protect_json_actions_carry_id(secret_service: object, cli: Cli,
                                            home: Home) -> None:
    path = home.write("Downloads/old.publishsettings", payloads.publishsettings_v1().data)
    run = cli("scan", "--protect", "--json", str(home.downloads))
    assert run.code == 0, run.err
    (action,) = validate(run.out, "scan")["actions"]
    assert action["action"] == "protect" and action["id"] and action["item_id"] == action["id"]
    assert "this file" not in action["revoke"] and not path.exists()


def test_recover_json(cli: Cli) -> None:
    run = cli("recover", "--json")
    assert run.code == 0
    assert validate(run.out, "recover")["recovered"] == []
    assert cli("recover") == Run(0, "nothing to recover\n", "")


# -- help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["scan", "check", "protect", "recover"])
def test_json_help_names_the_schema(command: str) -> None:
    assert f"--json print one JSON document (schema: docs/schemas/{command}.schema.json)" in (
        help_of(command))


def test_recover_without_a_keyring_is_5_and_keeps_the_file(
    secret_service: object, home: Home
) -> None:
    """A protect a crash interrupted, then no keyring: recovery waits, nothing is deleted."""
    data = payloads.publish_profile().data
    path = home.write("Downloads/a.publishsettings", data)
    crashed = run_subprocess("protect", str(path),
                             env={**os.environ, "CREDGUARD_TEST_CRASH_AT": "after-intent"})
    assert crashed.code == 99, crashed.err
    no_bus = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    run = run_subprocess("recover", "--json", env=no_bus)
    assert (run.code, run.out) == (5, "")
    assert run.err.startswith("credguard: error: no usable OS keyring")
    assert path.read_bytes() == data
    run = run_subprocess("recover", "--json")
    assert run.code == 0, run.err
    assert validate(run.out, "recover")["recovered"] == [
        f"{path}: rolled back and protected again"]
    assert not path.exists()
