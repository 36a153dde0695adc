"""``credguard exec`` as a user meets it (issue 15): command lines it cannot carry out are usage
errors (2), what it names and cannot find is "not found" (9), an item its kind's handover cannot
read is a clear error (4) and never an internal error (70); the help says the default profile.
Each refusal checks that no child ran and the vault still holds its items."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import Home, Run, run_subprocess
from helpers.schemas import validate
from helpers.secret_service import SecretService
from helpers.vaulted import assert_vault_holds

from credguard import config
from credguard.detect import kinds
from credguard.vault.access import open_vault
from credguard.vault.format import Record

pytestmark = pytest.mark.timeout(120)
Cli = Callable[..., Run]
PY = sys.executable


def imported(cli: Cli, home: Home, payload: payloads.Payload, name: str) -> str:
    run = cli("import", "--json", str(home.write(f"Downloads/{name}", payload.data)))
    assert run.code == 0, run.err
    return str(validate(run.out, "import")["imported"][0]["id"])


def touching(marker: Path) -> list[str]:
    """A child that leaves ``marker`` behind: proof that it ran."""
    return [PY, "-c", f"open({str(marker)!r}, 'w').close()"]


@pytest.mark.parametrize(("args", "message"), [
    (("exec", "0123456789abcdef"), "no command given: credguard exec ID -- CMD [ARGS...]"),
    (("exec", "0123456789abcdef", "--"), "no command given: credguard exec ID -- CMD [ARGS...]"),
    (("exec", "--", "true"), "no item ID given: credguard exec ID -- CMD [ARGS...]"),
    (("exec", "--azure-cli", "0123456789abcdef", "--", "true"),
     "--azure-cli takes no item ID, --profile or --no-file"),
    (("exec", "--azd", "--profile", "FTP", "--", "true"),
     "--azd takes no item ID, --profile or --no-file"),
    (("exec", "--azure-powershell", "--no-file", "--", "true"),
     "--azure-powershell takes no item ID, --profile or --no-file"),
])
def test_command_lines_exec_cannot_carry_out_are_usage_errors(
    cli: Cli, args: tuple[str, ...], message: str
) -> None:
    """Refused before any keyring or vault is touched."""
    run = cli(*args)
    assert (run.code, run.err, run.out) == (2, f"credguard: error: {message}\n", "")


def test_ids_exec_cannot_find(secret_service: SecretService, cli: Cli, home: Home,
                              tmp_path: Path) -> None:
    payload = payloads.msal_cache()
    imported(cli, home, payload, "msal_token_cache.json")
    marker = tmp_path / "ran"
    unknown = cli("exec", "0123456789abcdef", "--", *touching(marker))
    assert unknown.code == 9
    assert unknown.err == ("credguard: error: no vault item '0123456789abcdef' ('credguard "
                           "vault list' shows the items)\n")
    short = cli("exec", "a71", "--", *touching(marker))
    assert short.code == 2 and "prefix too short: give at least 6 characters" in short.err
    assert not marker.exists()
    assert_vault_holds(payload.data)


def test_a_sealed_cache_that_is_not_sealed_is_not_found(
    secret_service: SecretService, cli: Cli, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    run = cli("exec", "--azure-cli", "--", *touching(marker))
    assert run.code == 9
    assert "cache in" in run.err and "is not sealed: run `credguard seal azure-cli` first" \
        in run.err
    assert not marker.exists()


def test_the_issues_exec_crash_cannot_happen_any_more(
    secret_service: SecretService, cli: Cli, home: Home, tmp_path: Path
) -> None:
    """`import --force azure-publish-profile` on a plain file, then `exec ID -- true`, gave
    "internal error: Malformed" (70). The import now refuses the file; and an item an older
    credguard stored that way is a clear error naming the item and the way out (4)."""
    plain = home.write("Documents/notes.txt", "just notes")
    refused = cli("import", "--force", kinds.PUBLISH_PROFILE, str(plain))
    assert refused.code == 4 and "not imported as azure-publish-profile" in refused.err
    marker = tmp_path / "ran"
    for kind, needs in ((kinds.PUBLISH_PROFILE,
                         "an App Service publish profile (XML) with a password"),
                        (kinds.PUBLISHSETTINGS, "a publish settings file (well-formed XML)")):
        item = open_vault(config.load()).add(
            Record.new(kind, "notes.txt", str(plain.parent), plain.read_bytes()))
        for extra in ((), ("--no-file",)):
            run = cli("exec", item, *extra, "--", *touching(marker))
            assert run.code == 4, run.err
            assert run.err == (
                f"credguard: error: vault item {item} is filed as {kind}, but it is not "
                f"{needs} (not well-formed XML at line 1, column 0); it was imported with "
                f"--force under the wrong kind: `credguard vault export {item} --out FILE` "
                "gives its bytes back\n")
            assert not marker.exists()
        exported = home.root / f"{kind}.txt"
        assert cli("vault", "export", item, "--out", str(exported)).code == 0
        assert exported.read_text() == "just notes"  # the way out works


def test_profile_options_the_item_cannot_honour_are_usage_errors(
    secret_service: SecretService, cli: Cli, home: Home, tmp_path: Path
) -> None:
    only_deploy = payloads.publish_profile(methods=("MSDeploy",))
    item = imported(cli, home, only_deploy, "a.PublishSettings")
    marker = tmp_path / "ran"
    run = cli("exec", item, "--profile", "FTP", "--", *touching(marker))
    assert run.code == 2
    assert run.err == ("credguard: error: the publish profile has no FTP profile with a "
                       "password (it has: MSDeploy)\n")
    assert not marker.exists()


def test_the_default_profile_is_the_one_the_help_names(
    secret_service: SecretService, cli: Cli, home: Home
) -> None:
    """Help and behaviour agree: without --profile, the first profile in the file that has a
    password (here ZipDeploy, listed before MSDeploy)."""
    help_text = " ".join(run_subprocess("exec", "--help").out.split())
    assert ("--profile {MSDeploy,FTP,ZipDeploy} which profile of an App Service publish profile "
            "to hand over (default: the first profile in the file that has a password)"
            ) in help_text
    item = imported(cli, home, payloads.publish_profile(methods=("ZipDeploy", "MSDeploy")),
                    "z.PublishSettings")
    code = "import os; print(os.environ['CREDGUARD_PUBLISH_METHOD'])"
    run = run_subprocess("exec", item, "--no-file", "--", PY, "-c", code)
    assert run.code == 0 and run.out == "ZipDeploy\n", run.err


def test_every_exec_argument_has_help() -> None:
    run = run_subprocess("exec", "--help")
    assert run.code == 0
    text = " ".join(run.out.split())
    for expected in ("ID an item id, or a unique prefix of at least 6 characters of one",
                     "--azure-cli run CMD against the sealed azure-cli cache",
                     "--no-file variables only"):
        assert expected in text, text
