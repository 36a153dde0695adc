"""``credguard import`` and ``credguard vault ...`` as a user meets them (issue 15): exit codes
with one meaning each, the messages, the listing and details as a person reads them, JSON that
validates against its schema, and prompts answered on a real pseudo-terminal. Every refusal
checks that nothing was lost or changed."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import Home, Run, run_subprocess
from helpers.schemas import validate
from helpers.secret_service import SecretService
from helpers.vaulted import assert_vault_holds, item_files, sha

from credguard import config, paths
from credguard.detect import kinds
from credguard.detect.kinds import KINDS
from credguard.vault.access import open_vault
from credguard.vault.format import Record
from credguard.vault.passphrase import PASSPHRASE_RULE

pytestmark = pytest.mark.timeout(120)
Cli = Callable[..., Run]
PASSPHRASE = "correct horse battery staple"


def on_terminal(*args: str, answers: Sequence[str] = ()) -> Run:
    """``python -m credguard ARGS`` on a new pseudo-terminal (its controlling terminal, its
    stdin, stdout and stderr), typing each of ``answers`` when the output so far ends in a
    prompt (``: ``). ``out`` is everything the terminal showed."""
    master, slave = os.openpty()
    proc = subprocess.Popen(["setsid", "-w", "-c", sys.executable, "-m", "credguard", *args],
                            stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    shown, answered_at, pending = b"", 0, list(answers)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 0.2)[0]:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the last process using the terminal has exited
                break
            if not chunk:
                break
            shown += chunk
            if pending and len(shown) > answered_at and shown.endswith(b": "):
                os.write(master, pending.pop(0).encode() + b"\n")
                answered_at = len(shown)
        else:
            proc.kill()
            pytest.fail(f"credguard on a terminal did not finish: {shown!r}")
    finally:
        os.close(master)
    assert not pending, f"not asked for every answer: {shown!r}"
    return Run(proc.wait(timeout=30), shown.decode(errors="replace").replace("\r\n", "\n"), "")


def import_one(cli: Cli, path: Path, *extra: str) -> str:
    run = cli("import", "--json", str(path), *extra)
    assert run.code == 0, run.err
    return str(validate(run.out, "import")["imported"][0]["id"])


def listing(cli: Cli) -> list[dict[str, object]]:
    run = cli("vault", "list", "--json")
    assert run.code == 0, run.err
    items: list[dict[str, object]] = validate(run.out, "vault-list")["items"]
    return items


def add(record: Record, item_id: str | None = None) -> str:
    """Store ``record`` as it is (an item an older credguard may have stored)."""
    return open_vault(config.load()).add(record, item_id)


@pytest.fixture
def profile(home: Home) -> tuple[Path, payloads.Payload]:
    payload = payloads.publish_profile()
    return home.write("Downloads/contoso.PublishSettings", payload.data), payload


# -- import ------------------------------------------------------------------------------------


def test_an_unknown_force_kind_is_a_usage_error(home: Home) -> None:
    """Refused before the vault is even opened (no keyring needed for a typo)."""
    path = home.write("Documents/notes.txt", "just notes")
    run = run_subprocess("import", "--force", "bogus", str(path))
    assert run.code == 2
    assert run.err == (f"credguard: error: unknown kind 'bogus'; kinds: "
                       f"{', '.join(KINDS)}\n")
    assert not paths.vault_dir().exists() and path.read_text() == "just notes"


@pytest.mark.parametrize(("kind", "why"), [
    (kinds.PUBLISH_PROFILE, "not well-formed XML at line 1, column 0; --force "
                            "azure-publish-profile needs an App Service publish profile (XML) "
                            "with a password"),
    (kinds.PUBLISHSETTINGS, "not well-formed XML at line 1, column 0; --force "
                            "azure-publishsettings needs a publish settings file (well-formed "
                            "XML)"),
])
def test_force_refuses_a_kind_credguard_could_not_read_back(
    secret_service: SecretService, cli: Cli, home: Home, kind: str, why: str
) -> None:
    """The issue's exec crash began here: `import --force azure-publish-profile` stored a plain
    file that exec could not parse. Now the import refuses it (exit 4) and stores nothing."""
    path = home.write("Documents/notes.txt", "just notes")
    run = cli("import", "--force", kind, str(path))
    assert run.code == 4
    assert run.err == f"credguard: error: {path}: not imported as {kind}: {why}\n"
    assert listing(cli) == [] and item_files() == []
    assert path.read_text() == "just notes"
    as_json = cli("import", "--json", "--force", kind, str(path))
    assert as_json.code == 4
    assert validate(as_json.out, "import")["errors"] == [
        {"path": str(path), "error": f"{path}: not imported as {kind}: {why}"}]


def test_force_of_a_publish_profile_without_a_password_is_refused(
    secret_service: SecretService, cli: Cli, home: Home
) -> None:
    path = home.write("Documents/p.xml", payloads.publish_profile(user_password=False).data)
    run = cli("import", "--force", kinds.PUBLISH_PROFILE, str(path))
    assert run.code == 4
    assert "not imported as azure-publish-profile: it holds no profile with a password" in run.err
    assert item_files() == []


def test_force_on_content_already_in_the_vault_reports_the_stored_kind(
    secret_service: SecretService, cli: Cli, profile: tuple[Path, payloads.Payload]
) -> None:
    path, payload = profile
    item = import_one(cli, path)
    run = cli("import", "--json", "--force", kinds.PUBLISHSETTINGS, str(path))
    assert run.code == 0, run.err
    assert validate(run.out, "import")["imported"] == [
        {"path": str(path), "id": item, "kind": kinds.PUBLISH_PROFILE,
         "sha256": sha(payload.data), "already_in_vault": True}]
    human = cli("import", "--force", kinds.PUBLISHSETTINGS, str(path))
    assert human.out == (f"{path}: already in the vault as {item} ({kinds.PUBLISH_PROFILE}); "
                         "source kept\n")
    assert [i["kind"] for i in listing(cli)] == [kinds.PUBLISH_PROFILE]


# -- ids ---------------------------------------------------------------------------------------

SAME_PREFIX = ("abcdef01" + "0" * 24, "abcdef02" + "0" * 24)


@pytest.mark.parametrize("verb", [("show",), ("rm", "--yes"), ("export", "--out", "OUT")])
def test_ids_short_ambiguous_and_unknown(
    secret_service: SecretService, cli: Cli, home: Home, verb: tuple[str, ...]
) -> None:
    """A prefix under 6 characters or matching two items is a usage error (2); an id nothing
    matches is "not found" (9). Nothing is removed or written."""
    datas = [payloads.publish_profile(app=f"app{i}").data for i in range(2)]
    for item_id, data in zip(SAME_PREFIX, datas, strict=True):
        add(Record.new(kinds.PUBLISH_PROFILE, "p.PublishSettings", "/nowhere", data), item_id)
    out = home.root / "out.xml"
    args = [str(out) if a == "OUT" else a for a in verb[1:]]
    cases = [
        ("abcde", 2, "prefix too short: give at least 6 characters of an item id "
                     "('credguard vault list' shows them)"),
        ("a71", 2, "prefix too short: give at least 6 characters of an item id "
                   "('credguard vault list' shows them)"),
        ("abcdef0", 2, "'abcdef0' matches 2 items; give more characters"),
        ("0123456789", 9, "no vault item '0123456789' ('credguard vault list' shows the items)"),
    ]
    for text, code, message in cases:
        run = cli("vault", verb[0], text, *args)
        assert (run.code, run.err) == (code, f"credguard: error: {message}\n"), text
        assert_vault_holds(*datas)
        assert not out.exists()
    assert cli("vault", verb[0], "ABCDEF01", *args).code == 0  # a unique prefix, any case


# -- list and show -----------------------------------------------------------------------------


def test_list_has_a_header_sorts_by_time_and_by_choice(
    secret_service: SecretService, cli: Cli, home: Home
) -> None:
    rows = [  # (name, kind, imported_at), stored in no particular order
        ("b.json", kinds.AZD_CACHE, "2024-03-01T00:00:00+00:00"),
        ("c.PublishSettings", kinds.PUBLISH_PROFILE, "2024-01-01T00:00:00+00:00"),
        ("a.json", kinds.CLI_TOKEN_CACHE, "2024-02-01T00:00:00+00:00"),
    ]
    ids = {name: add(Record.new(kind, name, "/src", f"data {name}".encode(), {"n": 1}, when))
           for name, kind, when in rows}
    run = cli("vault", "list")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].split() == ["ID", "KIND", "IMPORTED", "SOURCE"]
    assert [line.split()[0] for line in lines[1:]] == [ids[n] for n in ("c.PublishSettings",
                                                                         "a.json", "b.json")]
    assert lines[1].split()[1:] == [kinds.PUBLISH_PROFILE, "2024-01-01T00:00:00+00:00",
                                    "/src/c.PublishSettings"]
    starts = {line.index(line.split()[1]) for line in lines}  # the columns line up
    assert len(starts) == 1, run.out
    orders = {"time": ["c.PublishSettings", "a.json", "b.json"],
              "name": ["a.json", "b.json", "c.PublishSettings"],
              "kind": ["b.json", "a.json", "c.PublishSettings"]}  # azd < azure-cli < azure-pub
    for sort, names in orders.items():
        shown = cli("vault", "list", "--sort", sort)
        assert [line.split()[0] for line in shown.out.splitlines()[1:]] == [ids[n] for n in names]
        as_json = validate(cli("vault", "list", "--json", "--sort", sort).out, "vault-list")
        assert [i["name"] for i in as_json["items"]] == names
    bad = run_subprocess("vault", "list", "--sort", "size")
    assert bad.code == 2 and "invalid choice: 'size'" in bad.err


def test_an_empty_vault_lists_as_empty(secret_service: SecretService, cli: Cli) -> None:
    run = cli("vault", "list")
    assert (run.code, run.out) == (0, "The vault is empty.\n")
    assert validate(cli("vault", "list", "--json").out, "vault-list") == {"version": 1,
                                                                          "items": []}


def test_show_prints_aligned_fields_not_a_json_blob(
    secret_service: SecretService, cli: Cli, profile: tuple[Path, payloads.Payload]
) -> None:
    path, payload = profile
    item = import_one(cli, path)
    run = cli("vault", "show", item)
    assert run.code == 0, run.err
    fields = {}
    columns = set()
    for line in run.out.splitlines():
        label, _, value = line.partition("  ")
        value = value.lstrip(" ")
        fields[label.strip()] = value
        columns.add(len(line) - len(value))
    assert len(columns) == 1, run.out  # every value starts in the same column
    assert "{" not in run.out and "[" not in run.out
    assert fields["id"] == item and fields["kind"] == kinds.PUBLISH_PROFILE
    assert fields["name"] == "contoso.PublishSettings" and fields["source"] == str(path)
    assert fields["sha256"] == sha(payload.data)
    assert fields["apps"] == "contoso-app"
    assert fields["publish methods"] == "FTP, MSDeploy, ZipDeploy"
    doc = validate(cli("vault", "show", item, "--json").out, "vault-show")
    assert doc["version"] == 1 and doc["details"]["apps"] == ["contoso-app"]
    for secret in payload.secrets:
        assert secret not in run.out + json.dumps(doc)


def test_verify_json_validates(
    secret_service: SecretService, cli: Cli, profile: tuple[Path, payloads.Payload]
) -> None:
    item = import_one(cli, profile[0])
    run = cli("vault", "verify", "--json")
    assert run.code == 0, run.err
    assert validate(run.out, "vault-verify") == {
        "version": 1, "items": [{"id": item, "ok": True, "error": ""}]}


# -- export ------------------------------------------------------------------------------------


def test_export_to_standard_output(
    secret_service: SecretService, cli: Cli, profile: tuple[Path, payloads.Payload]
) -> None:
    item = import_one(cli, profile[0])
    proc = subprocess.run([sys.executable, "-m", "credguard", "vault", "export", item, "--out",
                           "-"], capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout == profile[1].data
    assert proc.stderr.decode() == f"exported {item} ({kinds.PUBLISH_PROFILE}) to standard output\n"
    assert not Path("-").exists()


def test_export_to_a_terminal_is_refused(
    secret_service: SecretService, cli: Cli, profile: tuple[Path, payloads.Payload]
) -> None:
    item = import_one(cli, profile[0])
    run = on_terminal("vault", "export", item, "--out", "-")
    assert run.code == 2
    assert run.out == ("credguard: error: refusing to write a credential to a terminal: "
                       "redirect standard output (credguard vault export ID --out - > FILE) or "
                       "give --out FILE\n")
    for secret in profile[1].secrets:
        assert secret not in run.out


def test_export_never_writes_over_a_file_or_into_a_directory(
    secret_service: SecretService, cli: Cli, home: Home, profile: tuple[Path, payloads.Payload]
) -> None:
    item = import_one(cli, profile[0])
    existing = home.write("Documents/kept.txt", "mine")
    run = cli("vault", "export", item, "--out", str(existing))
    assert run.code == 2
    assert run.err == (f"credguard: error: {existing} exists; export never overwrites a file: "
                       "give a new file name\n")
    assert existing.read_text() == "mine"
    before = sorted(os.listdir(home.documents))
    run = cli("vault", "export", item, "--out", str(home.documents))
    assert run.code == 2
    assert run.err == (f"credguard: error: {home.documents} is a directory: give the name of a "
                       "new file to create\n")
    assert sorted(os.listdir(home.documents)) == before


# -- rm ----------------------------------------------------------------------------------------


def test_rm_without_yes_and_no_terminal_is_a_usage_error(
    secret_service: SecretService, cli: Cli, profile: tuple[Path, payloads.Payload]
) -> None:
    item = import_one(cli, profile[0])
    run = cli("vault", "rm", item)
    assert run.code == 2
    assert run.err == ("credguard: error: refusing without --yes (no terminal to ask on); "
                       "nothing was changed\n")
    assert_vault_holds(profile[1].data)


@pytest.mark.parametrize(("answer", "removed"), [("y", True), ("Y", True), ("yes", True),
                                                 ("n", False), ("", False)])
def test_rm_asks_on_a_terminal(
    secret_service: SecretService, cli: Cli, profile: tuple[Path, payloads.Payload],
    answer: str, removed: bool
) -> None:
    item = import_one(cli, profile[0])
    run = on_terminal("vault", "rm", item, answers=[answer])
    assert ("Delete contoso.PublishSettings (azure-publish-profile) from the vault? If it is "
            "the only copy, the credential is gone.\nType 'yes' to continue: ") in run.out
    if removed:
        assert run.code == 0 and run.out.endswith(f"removed {item}\n"), run.out
        assert item_files() == []
    else:
        assert run.code == 2 and run.out.endswith(
            "credguard: error: cancelled; nothing was changed\n"), run.out
        assert_vault_holds(profile[1].data)


def test_rm_of_a_sealed_cache_points_to_unseal(
    secret_service: SecretService, cli: Cli, home: Home
) -> None:
    home.write(".azure/msal_token_cache.json", payloads.msal_cache().data)
    sealed = cli("seal", "azure-cli", "--json")
    assert sealed.code == 0, sealed.err
    item = json.loads(sealed.out)["item_id"]
    run = cli("vault", "rm", item, "--yes")
    assert run.code == 2
    assert run.err == (f"credguard: error: {item} holds the sealed azure-cli cache of "
                       f"{home.azure}: `credguard unseal azure-cli` gives it back\n")
    assert item_files() == [f"{item}.cgv"]


# -- a new passphrase, asked on a terminal ------------------------------------------------------


def test_a_new_passphrase_is_asked_twice_on_a_terminal(
    secret_service: SecretService, cli: Cli, profile: tuple[Path, payloads.Payload],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moving to the passphrase keystore on a terminal: the rule is shown, the passphrase is
    asked twice (never echoed); two different ones, or a weak one, change nothing."""
    import_one(cli, profile[0])
    before = (paths.vault_dir() / "vault.json").read_bytes()
    differ = on_terminal("vault", "migrate", "--to", "passphrase",
                         answers=[PASSPHRASE, PASSPHRASE + "!"])
    assert differ.code == 5, differ.out
    assert f"credguard: choose the vault passphrase: {PASSPHRASE_RULE}\n" in differ.out
    assert "new vault passphrase: " in differ.out and "the same passphrase again: " in differ.out
    assert differ.out.endswith("credguard: error: the two passphrases differ; nothing was "
                               "changed\n")
    weak = on_terminal("vault", "migrate", "--to", "passphrase", answers=["short", "short"])
    assert weak.code == 5 and "passphrase refused: it is too short" in weak.out, weak.out
    assert (paths.vault_dir() / "vault.json").read_bytes() == before
    assert not (paths.vault_dir() / "passphrase-keystore.json").exists()
    moved = on_terminal("vault", "migrate", "--to", "passphrase",
                        answers=[PASSPHRASE, PASSPHRASE])
    assert moved.code == 0 and "moved the vault's keys from the OS keyring to the passphrase " \
                               "keystore: 1 item(s)" in moved.out, moved.out
    for run in (differ, weak, moved):
        assert PASSPHRASE not in run.out and "short\n" not in run.out  # never echoed
    shown = on_terminal("vault", "list", answers=[PASSPHRASE])
    assert shown.code == 0 and "credguard vault passphrase: " in shown.out, shown.out
    monkeypatch.setenv("CREDGUARD_PASSPHRASE", PASSPHRASE)
    assert_vault_holds(profile[1].data)


def test_the_help_states_the_passphrase_rule() -> None:
    from credguard.vault.passphrase import MIN_DISTINCT_CHARS, MIN_PASSPHRASE_CHARS

    text = " ".join(run_subprocess("vault", "migrate", "--help").out.split())
    assert (f"a weak one is refused (at least {MIN_PASSPHRASE_CHARS} characters, "
            f"{MIN_DISTINCT_CHARS} different ones, not only digits, not a common password)"
            ) in text
