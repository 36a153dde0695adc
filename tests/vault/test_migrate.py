"""``credguard vault migrate --to keyring|passphrase`` (issue 15) against the real Secret Service:

- a keyring vault moves to the passphrase keystore and back, every item re-encrypted under a new
  key in the target keystore and the old keys deleted from the source;
- a move killed at every step (``os._exit`` in a real ``python`` process, like a power cut, as
  ``test_store_core`` kills rotations) leaves every item readable, ``vault.json`` naming every
  key an item uses, and the same command (or ``vault destroy``) finishes the job;
- the keystore dead end is gone: with no keyring, the advice names ``vault migrate`` when a
  keyring vault exists; a configuration naming the other keystore says how to move;
- a weak passphrase is refused for a new passphrase vault, and ``vault destroy`` removes the
  passphrase keystore's file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.crashes import DYING
from helpers.home import Home, Run, run_subprocess
from helpers.schemas import validate
from helpers.secret_service import SecretService
from helpers.vaulted import assert_vault_holds, item_files, sha

from credguard import paths
from credguard.vault import format as itemformat
from credguard.vault.access import MIGRATE_ADVICE
from credguard.vault.keystore import NO_KEYRING_ADVICE
from credguard.vault.passphrase import PASSPHRASE_RULE
from credguard.vault.store import read_state

pytestmark = pytest.mark.timeout(300)
Cli = Callable[..., Run]
PASSPHRASE = "correct horse battery staple"
OTHER = {"keyring": "passphrase", "passphrase": "keyring"}


@pytest.fixture
def passphrase(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CREDGUARD_PASSPHRASE", PASSPHRASE)
    return PASSPHRASE


def configure(home: Home, keystore: str | None) -> None:
    """``vault.keystore = keystore`` in the user's config (None: no config, i.e. "auto")."""
    if keystore is None:
        home.config_file.unlink(missing_ok=True)
        return
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text(f'[vault]\nkeystore = "{keystore}"\n')


def passphrase_file() -> Path:
    return paths.vault_dir() / "passphrase-keystore.json"


def passphrase_keys() -> set[str]:
    """The key ids the passphrase keystore's file holds (none: no file)."""
    if not passphrase_file().exists():
        return set()
    return set(json.loads(passphrase_file().read_text())["keys"])


def keyring_keys(service: SecretService) -> set[str]:
    return {user.removeprefix("vault-key-") for user in service.items("credguard")}


def keys_in(keystore: str, service: SecretService) -> set[str]:
    return keyring_keys(service) if keystore == "keyring" else passphrase_keys()


def item_keys() -> set[str]:
    return {itemformat.read_key_id((paths.vault_dir() / n).read_bytes()) for n in item_files()}


def vault_json() -> dict[str, object]:
    doc: dict[str, object] = json.loads((paths.vault_dir() / "vault.json").read_text())
    return doc


SECRETS: list[str] = []  # every secret the payloads of the running test embed


def make_vault(cli: Cli, home: Home, keystore: str, count: int = 3) -> list[bytes]:
    """A vault in ``keystore`` holding ``count`` publish profiles; the config left at auto.
    Their secrets are in :data:`SECRETS`."""
    configure(home, keystore)
    made = [payloads.publish_profile(app=f"app{i}") for i in range(count)]
    SECRETS[:] = [secret for payload in made for secret in payload.secrets]
    for i, payload in enumerate(made):
        run = cli("import", str(home.write(f"Downloads/p{i}.PublishSettings", payload.data)))
        assert run.code == 0, run.err
    configure(home, None)
    assert read_state(paths.vault_dir()).keystore == keystore  # type: ignore[union-attr]
    return [payload.data for payload in made]


def assert_moved(target: str, service: SecretService, datas: list[bytes]) -> None:
    """The move to ``target`` is complete: vault.json (version 1) names only the target and
    one key, every item is under that key, the key is in the target, and the source keystore
    holds no key (the passphrase keystore's file is gone)."""
    state = read_state(paths.vault_dir())
    assert state is not None and state.key_id is not None
    assert (state.keystore, state.retiring, state.moving_from) == (target, [], None)
    assert vault_json()["version"] == 1
    assert item_keys() == {state.key_id}
    assert state.key_id in keys_in(target, service)
    assert keys_in(OTHER[target], service) == set()
    if target == "keyring":
        assert not passphrase_file().exists()
    else:  # a file a killed move left was replaced, not added to
        assert passphrase_keys() == {state.key_id}
    assert_vault_holds(*datas)


@pytest.mark.parametrize("start", ["keyring", "passphrase"])
def test_a_vault_moves_to_the_other_keystore_and_back(
    secret_service: SecretService, cli: Cli, home: Home, passphrase: str, start: str
) -> None:
    datas = make_vault(cli, home, start)
    target = OTHER[start]
    old_keys = keys_in(start, secret_service)
    run = cli("vault", "migrate", "--to", target, "--json")
    assert run.code == 0, run.err
    doc = validate(run.out, "vault-migrate")
    assert (doc["from"], doc["to"], doc["action"], doc["items"]) == (start, target, "moved", 3)
    assert_moved(target, secret_service, datas)
    assert doc["key_id"] == read_state(paths.vault_dir()).key_id  # type: ignore[union-attr]
    assert not old_keys & keys_in(target, secret_service)  # a new key, not the old one moved
    again = cli("vault", "migrate", "--to", target)
    assert again.code == 0 and "already keeps its keys in" in again.out, again.err
    back = cli("vault", "migrate", "--to", start)
    assert back.code == 0, back.err
    assert back.out.startswith("moved the vault's keys from ")
    assert_moved(start, secret_service, datas)
    assert SECRETS
    for secret in SECRETS:  # no secret in any output
        assert secret not in run.out + run.err + back.out + back.err


def test_following_the_old_advice_is_no_dead_end_any_more(
    secret_service: SecretService, cli: Cli, home: Home, passphrase: str
) -> None:
    """The issue's dead end: a keyring vault, then vault.keystore = "passphrase" in the
    config. Every command now says how to move the keys (exit 3), and the move works."""
    datas = make_vault(cli, home, "keyring")
    configure(home, "passphrase")
    before = vault_json()
    run = cli("vault", "list")
    assert run.code == 3, run.err
    assert "does not move keys between keystores by itself" in run.err
    assert "run `credguard vault migrate --to passphrase` to move them" in run.err
    assert vault_json() == before
    moved = cli("vault", "migrate", "--to", "passphrase")
    assert moved.code == 0, moved.err
    assert_moved("passphrase", secret_service, datas)
    assert cli("vault", "list").code == 0
    configure(home, "keyring")  # the config now names the other keystore: a note says so
    back = cli("vault", "migrate", "--to", "passphrase")
    assert back.code == 0 and "nothing to do" in back.out
    assert ('vault.keystore = \'keyring\'' in back.err and 'set it to "passphrase" or "auto"'
            in back.err), back.err


def plant_keyring_vault() -> None:
    """A keyring vault's ``vault.json`` as credguard writes it (the vault was made where a
    keyring ran; this test has none, so the file is written here)."""
    where = paths.vault_dir()
    where.mkdir(parents=True, mode=0o700)
    (where / "vault.json").write_text(json.dumps(
        {"version": 1, "keystore": "keyring", "key_id": "0123456789abcdef", "retiring": []}))


def test_without_a_keyring_the_advice_fits_the_vault(
    no_secret_service: object, cli: Cli, home: Home, passphrase: str
) -> None:
    """No keyring and no vault: opting in to the passphrase keystore is the advice. No keyring
    and a keyring vault: the advice is `credguard vault migrate --to passphrase` (which needs
    the keyring once), and following it without a keyring fails closed, changing nothing."""
    path = home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)
    fresh = cli("import", str(path))
    assert fresh.code == 5 and NO_KEYRING_ADVICE in fresh.err and "migrate" not in fresh.err
    plant_keyring_vault()
    before = vault_json()
    for args in (("import", str(path)), ("vault", "list"), ("vault", "migrate", "--to",
                                                               "passphrase")):
        run = cli(*args)
        assert run.code == 5, (args, run.err)
        assert MIGRATE_ADVICE in run.err and NO_KEYRING_ADVICE not in run.err, run.err
    doctor = cli("doctor")
    assert doctor.code == 5 and MIGRATE_ADVICE in doctor.out, doctor.out
    assert NO_KEYRING_ADVICE not in doctor.out
    assert vault_json() == before and item_files() == [] and not passphrase_file().exists()


# -- a move killed part-way ------------------------------------------------------------------

# Move the vault's keys in a real process that dies (os._exit: no cleanup, like a power cut)
# right after the Nth call of one of the move's steps: storing the new key, writing
# vault.json, re-encrypting an item, deleting an old key.
MIGRATE = DYING + r"""
from credguard import config
from credguard.vault.access import open_vault, stored_kind
from credguard.vault.keystore import KeyringKeystore
from credguard.vault.migrate import migrate
from credguard.vault.passphrase import PassphraseKeystore
from credguard.vault.store import Vault
target = sys.argv[1]
for cls in (KeyringKeystore, PassphraseKeystore):
    cls.put_key = dying("put-key", cls.put_key)
    cls.delete_key = dying("delete-key", cls.delete_key)
Vault._write_state = dying("write-state", Vault._write_state)
Vault._write_item = dying("write-item", Vault._write_item)
cfg = config.load()
migrate(open_vault(cfg, stored_kind(cfg)), target)
"""


def migrate_killed(target: str, at: str) -> None:
    point, _, nth = at.partition(":")
    script = f"point, nth = {point!r}, {int(nth)}\n" + MIGRATE
    proc = subprocess.run([sys.executable, "-c", script, target],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 99, f"the move was not killed at {at}: {proc.stderr}"


STEPS = [
    "put-key:1",  # the new key is in the target; vault.json does not name it yet
    "write-state:1",  # vault.json names the target and the new key; no item rewritten
    "write-item:1",  # one of three items under the new key
    "write-item:3",  # every item rewritten; the old key still in the source
    "delete-key:1",  # the old key deleted; vault.json still names the source
    "write-state:2",  # vault.json final (a passphrase keystore left behind is removed after)
]


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("start", ["keyring", "passphrase"])
@pytest.mark.parametrize("then", ["migrate", "destroy"])
def test_a_move_killed_at_any_step_leaves_the_vault_readable_and_finishable(
    secret_service: SecretService, cli: Cli, home: Home, passphrase: str, start: str,
    step: str, then: str
) -> None:
    """Killed at ``step``: every item still decrypts (``vault verify`` in a new process),
    every key an item uses is named by ``vault.json`` and still in the keystore it names;
    ``vault.json`` is version 2 exactly while it names two keystores. Then the same
    ``vault migrate`` finishes the move — or ``vault destroy`` removes every key that ever
    encrypted an item, from both keystores, and the passphrase keystore's file. (A key made
    by a move killed before ``vault.json`` named it encrypted nothing; in the OS keyring it
    stays, as a killed rotation's does.)"""
    target = OTHER[start]
    datas = make_vault(cli, home, start)
    used = item_keys()
    migrate_killed(target, step)
    verify = run_subprocess("vault", "verify", "--json")
    assert verify.code == 0, verify.err
    assert all(i["ok"] for i in validate(verify.out, "vault-verify")["items"])
    assert_vault_holds(*datas)
    state = read_state(paths.vault_dir())
    assert state is not None and state.key_id is not None
    where = {state.key_id: state.keystore,
             **dict.fromkeys(state.retiring, state.moving_from or state.keystore)}
    for key_id in item_keys():
        assert key_id in where, "an item's key is not named by vault.json"
        assert key_id in keys_in(where[key_id], secret_service), "a key in use is gone"
    assert vault_json()["version"] == (2 if state.moving_from else 1)
    used |= set(where)
    if then == "migrate":
        run = run_subprocess("vault", "migrate", "--to", target)
        assert run.code == 0, run.err
        assert_moved(target, secret_service, datas)
        assert not (used - {read_state(paths.vault_dir()).key_id}  # type: ignore[union-attr]
                    ) & (keyring_keys(secret_service) | passphrase_keys())
    else:
        run = run_subprocess("vault", "destroy", "--yes")
        assert run.code == 0, run.err
        assert not used & keyring_keys(secret_service), "destroy left a key in the keyring"
        assert not passphrase_file().exists()
        assert item_files() == [] and not (paths.vault_dir() / "vault.json").exists()


def test_an_unfinished_move_must_be_finished_first(
    secret_service: SecretService, cli: Cli, home: Home, passphrase: str
) -> None:
    """While a move to the passphrase keystore is unfinished, rotating the key or moving to
    the keyring is refused (exit 7) with the command that finishes it, changing nothing."""
    datas = make_vault(cli, home, "keyring")
    migrate_killed("passphrase", "write-item:1")
    before = vault_json(), {n: sha((paths.vault_dir() / n).read_bytes()) for n in item_files()}
    for args in (("vault", "rotate-key"), ("vault", "migrate", "--to", "keyring")):
        run = cli(*args)
        assert run.code == 7, (args, run.err)
        assert ("a move of the vault's keys to the passphrase keystore is unfinished" in run.err
                and "credguard vault migrate --to passphrase" in run.err), run.err
        assert before == (vault_json(), {n: sha((paths.vault_dir() / n).read_bytes())
                                         for n in item_files()})
    finished = cli("vault", "migrate", "--to", "passphrase", "--json")
    assert finished.code == 0, finished.err
    assert validate(finished.out, "vault-migrate")["action"] == "resumed"
    assert_moved("passphrase", secret_service, datas)


def test_a_move_refuses_a_damaged_item_and_changes_nothing(
    secret_service: SecretService, cli: Cli, home: Home, passphrase: str
) -> None:
    make_vault(cli, home, "keyring", count=2)
    damaged = paths.vault_dir() / item_files()[0]
    blob = bytearray(damaged.read_bytes())
    blob[-1] ^= 0x01
    damaged.write_bytes(bytes(blob))
    before = vault_json(), keyring_keys(secret_service)
    run = cli("vault", "migrate", "--to", "passphrase")
    assert run.code == 6, run.err
    assert "1 item(s) fail verification" in run.err and damaged.stem in run.err
    assert (vault_json(), keyring_keys(secret_service)) == before
    assert not passphrase_file().exists()


def test_an_empty_vault_moves_only_its_choice(
    secret_service: SecretService, cli: Cli, home: Home, passphrase: str
) -> None:
    run = cli("vault", "migrate", "--to", "passphrase", "--json")
    assert run.code == 0, run.err
    doc = validate(run.out, "vault-migrate")
    assert (doc["action"], doc["key_id"], doc["items"]) == ("moved", None, 0)
    assert vault_json() == {"version": 1, "keystore": "passphrase", "key_id": None,
                            "retiring": []}
    item = cli("import", str(home.write("Downloads/a.PublishSettings",
                                        payloads.publish_profile().data)))
    assert item.code == 0, item.err
    assert keyring_keys(secret_service) == set() and len(passphrase_keys()) == 1


# -- passphrases --------------------------------------------------------------------------------


@pytest.mark.parametrize(("weak", "why"), [
    ("short", "it is too short"),
    ("aaaaaaaaaaaaaaaa", "it has too few different characters"),
    ("123456789012345", "it is only digits"),
    ("Password1234!", "it is a common password"),
    ("qwertyuiop123", "it is a common password"),
])
def test_a_weak_passphrase_is_refused_for_a_new_vault(
    no_secret_service: object, cli: Cli, home: Home, monkeypatch: pytest.MonkeyPatch,
    weak: str, why: str
) -> None:
    """The issue's `short` and its kin: refused (exit 5) before anything is written; the
    message gives the rule and never the passphrase."""
    path = home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)
    before = path.read_bytes()
    configure(home, "passphrase")
    monkeypatch.setenv("CREDGUARD_PASSPHRASE", weak)
    run = cli("import", str(path))
    assert run.code == 5
    assert run.err == f"credguard: error: passphrase refused: {why}; {PASSPHRASE_RULE}\n"
    assert not passphrase_file().exists() and item_files() == []
    assert path.read_bytes() == before


def test_a_weak_passphrase_is_refused_for_a_move_and_nothing_changes(
    secret_service: SecretService, cli: Cli, home: Home, monkeypatch: pytest.MonkeyPatch,
    passphrase: str
) -> None:
    datas = make_vault(cli, home, "keyring")
    before = vault_json(), keyring_keys(secret_service)
    monkeypatch.setenv("CREDGUARD_PASSPHRASE", "short")
    run = cli("vault", "migrate", "--to", "passphrase")
    assert run.code == 5 and "passphrase refused: it is too short" in run.err, run.err
    assert (vault_json(), keyring_keys(secret_service)) == before
    assert not passphrase_file().exists()
    assert_vault_holds(*datas)


def test_an_existing_passphrase_vault_still_opens_with_its_passphrase(
    no_secret_service: object, cli: Cli, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule is for new vaults: a vault made with a weak passphrase before it (made here
    with the rule switched off, in this process only) still opens and takes new items."""
    configure(home, "passphrase")
    monkeypatch.setenv("CREDGUARD_PASSPHRASE", "short")
    first = home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)
    with monkeypatch.context() as before_the_rule:
        before_the_rule.setattr("credguard.vault.passphrase.check_new_passphrase",
                                lambda _passphrase: None)
        assert cli("import", str(first)).code == 0
    second = home.write("Downloads/b.PublishSettings", payloads.publish_profile().data)
    run = cli("import", str(second))
    assert run.code == 0, run.err
    assert_vault_holds(first.read_bytes(), second.read_bytes())


def test_destroy_removes_the_passphrase_keystore(
    no_secret_service: object, cli: Cli, home: Home, passphrase: str
) -> None:
    make_vault(cli, home, "passphrase", count=1)
    assert passphrase_file().exists()
    run = cli("vault", "destroy", "--yes")
    assert run.code == 0, run.err
    assert not passphrase_file().exists()
    assert sorted(p.name for p in paths.vault_dir().iterdir()) == [".lock"]
