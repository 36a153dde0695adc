"""The vault store's promises under faults (issue 17), against the real Secret Service:

- ``add`` reads back, decrypts and compares every item it writes: an item changed on disk
  between the write and the read-back (damaged, removed, or replaced by an item of other
  content) is an error, leaves no item behind, and the protect transaction keeps the source;
- a key rotation killed at any step (``os._exit`` in a real ``python`` process, like a power
  cut) leaves every item readable, the keys still in use listed in ``vault.json`` (``key_id``
  and ``retiring``), and a rotation (or ``vault destroy``) that finishes the job: no key that
  ever encrypted an item is left in the keyring.

The planted bugs these tests catch are listed in ``docs/mutation.md``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import payloads
from helpers.crashes import DYING
from helpers.home import Home, run_subprocess
from helpers.secret_service import SecretService
from helpers.vaulted import (
    assert_no_journal_entry,
    assert_vault_holds,
    item_files,
    same_bytes,
    sha,
    vault_shas,
)

from credguard import config, paths
from credguard.errors import CredguardError, ExitCode, IntegrityError, NotFoundError, StateError
from credguard.protect.transaction import Protector
from credguard.vault import format as itemformat
from credguard.vault.access import open_vault
from credguard.vault.format import Record
from credguard.vault.store import Vault, read_state

pytestmark = pytest.mark.timeout(120)
KIND = "azure-publish-profile"


def record(data: bytes, name: str = "contoso.PublishSettings") -> Record:
    return Record.new(KIND, name, "/nowhere", data)


def vault() -> Vault:
    return open_vault(config.load())


# -- planted bug (c): the read-back after every write ----------------------------------------


def change(fault: str, item: Path, store: Vault) -> None:
    """Change the item just written at ``item``, as a failing disk or another process could."""
    if fault == "bit-flip":
        blob = bytearray(item.read_bytes())
        blob[len(blob) // 2] ^= 0x01
        item.write_bytes(bytes(blob))
    elif fault == "truncated":
        item.write_bytes(item.read_bytes()[:-16])
    elif fault == "removed":
        item.unlink()
    else:  # another item's content, properly encrypted under this item's id and the same key
        blob = item.read_bytes()
        key_id = itemformat.read_key_id(blob)
        other = record(payloads.publish_profile(app="fabrikam").data)
        item.write_bytes(itemformat.pack(other, store.keystore.get_key(key_id), key_id,
                                         item.name.removesuffix(".cgv")))


FAULTS = {"bit-flip": IntegrityError, "truncated": IntegrityError, "removed": StateError,
          "other-content": IntegrityError}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_add_fails_when_the_item_read_back_is_not_what_was_written(
    secret_service: SecretService, fault: str
) -> None:
    """Between the write and the read-back (``add``'s fault hook) the item is damaged,
    truncated, removed, or replaced by a valid item of other content: ``add`` raises, and no
    item is left. The vault still works afterwards."""
    store = vault()
    data = payloads.publish_profile().data
    changed: list[str] = []

    def hook(label: str) -> None:
        assert label == "after-item-write"
        [name] = item_files()
        change(fault, paths.vault_dir() / name, store)
        changed.append(name)

    with pytest.raises(FAULTS[fault]):
        store.add(record(data), step=hook)
    assert changed, "the item was written, then changed before its read-back"
    assert item_files() == [], "the failed item is removed"
    again = store.add(record(data))
    assert store.get(again).sha256 == sha(data)
    assert_vault_holds(data)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_vault_copy_that_fails_its_read_back_keeps_the_source(
    secret_service: SecretService, home: Home, fault: str
) -> None:
    """The same faults inside a protect transaction: the source is kept byte for byte, the
    outcome says the vault refused, and neither an item nor a journal entry is left. Without
    the read-back the source would be deleted with only a broken (or wrong) copy in the
    vault."""
    data = payloads.publish_profile().data
    path = home.write("Downloads/contoso.PublishSettings", data)
    store = vault()
    changed: list[str] = []

    def hook(label: str) -> None:
        if label == "after-item-write":
            [name] = item_files()
            change(fault, paths.vault_dir() / name, store)
            changed.append(name)

    outcome = Protector(config.load(), store, step=hook).protect(path)
    assert changed, "the item was written, then changed before its read-back"
    assert not outcome.protected and outcome.reason == "vault", outcome.reason
    assert same_bytes(path, data)
    assert_vault_holds()
    assert_no_journal_entry()


# -- a crash part-way through key rotation ---------------------------------------------------

# Rotate the vault's key in a real process that dies (os._exit: no cleanup, like a power cut)
# right after the Nth call of one of rotate_key's steps: storing the new key, writing
# vault.json, re-encrypting an item, deleting a retired key.
ROTATE = DYING + r"""
from credguard import config
from credguard.vault.access import open_vault
vault = open_vault(config.load())
vault.keystore.put_key = dying("put-key", vault.keystore.put_key)
vault.keystore.delete_key = dying("delete-key", vault.keystore.delete_key)
vault._write_state = dying("write-state", vault._write_state)
vault._write_item = dying("write-item", vault._write_item)
vault.rotate_key()
"""


def rotate_killed(at: str) -> None:
    point, _, nth = at.partition(":")
    script = f"point, nth = {point!r}, {int(nth)}\n" + ROTATE
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 99, f"the rotation was not killed at {at}: {proc.stderr}"


def keyring_keys(service: SecretService) -> set[str]:
    return {user.removeprefix("vault-key-") for user in service.items("credguard")}


def item_keys() -> dict[str, str]:
    """Each item file's key id, from its header."""
    return {name: itemformat.read_key_id((paths.vault_dir() / name).read_bytes())
            for name in item_files()}


def listed_keys() -> tuple[str, set[str]]:
    """``vault.json``'s current key id, and every key id it names (current and retiring)."""
    state = read_state(paths.vault_dir())
    assert state is not None and state.key_id is not None
    return state.key_id, {state.key_id, *state.retiring}


@pytest.mark.parametrize("crashes", [
    ["put-key:1"],  # the new key is stored; vault.json does not name it yet
    ["write-state:1"],  # vault.json names the new key and retires the old; no item rewritten
    ["write-item:2"],  # two of three items under the new key, one under the old
    ["delete-key:1"],  # every item rewritten, the old key deleted; vault.json still retires it
    ["write-item:1", "delete-key:1"],  # a second rotation, killed while retiring two keys
    ["write-item:3", "write-item:1", "write-state:1"],  # three killed rotations in a row
], ids=lambda c: "+".join(c))
@pytest.mark.parametrize("then", ["rotate", "destroy"])
def test_a_key_rotation_killed_part_way_leaves_the_vault_readable_and_finishable(
    secret_service: SecretService, home: Home, crashes: list[str], then: str
) -> None:
    """Rotations killed at the steps ``crashes`` name: afterwards every item decrypts to what
    was stored, every item's key is named by ``vault.json`` (as the current key or in
    ``retiring``) and is still in the keyring, and the next ``credguard vault rotate-key``
    finishes the job (one key, retiring nothing) — or ``vault destroy`` removes every key
    that ever encrypted an item."""
    datas = [payloads.publish_profile(app=f"app{i}").data for i in range(3)]
    store = vault()
    for i, data in enumerate(datas):
        store.add(record(data, f"p{i}.PublishSettings"))
    used = set(item_keys().values())
    for at in crashes:
        rotate_killed(at)
        assert sorted(vault_shas()) == sorted(sha(d) for d in datas), "an item is unreadable"
        verify = run_subprocess("vault", "verify", "--json")
        assert verify.code == 0, verify.out
        current, listed = listed_keys()
        by_items = set(item_keys().values())
        assert by_items <= listed, "an item's key is neither current nor retiring"
        needed = by_items | {current}  # a retiring key no item uses may be gone already
        assert needed <= keyring_keys(secret_service), "a key still in use was deleted"
        used |= listed | by_items
    if then == "rotate":
        run = run_subprocess("vault", "rotate-key")
        assert run.code == 0, run.err
        state = read_state(paths.vault_dir())
        assert state is not None and state.key_id is not None and state.retiring == []
        assert set(item_keys().values()) == {state.key_id}
        assert state.key_id in keyring_keys(secret_service)
        assert not used & keyring_keys(secret_service), "a retired key is still in the keyring"
        assert_vault_holds(*datas)
    else:
        run = run_subprocess("vault", "destroy", "--yes")
        assert run.code == 0, run.err
        assert not used & keyring_keys(secret_service), "destroy left a key in the keyring"
        assert item_files() == [] and not (paths.vault_dir() / "vault.json").exists()


def test_rotation_refuses_a_vault_with_a_damaged_item_and_changes_nothing(
    secret_service: SecretService,
) -> None:
    """An item that fails verification would be lost by a rotation (it cannot be re-encrypted,
    and its key is deleted): the rotation refuses before it makes a key or writes anything."""
    store = vault()
    ids = [store.add(record(payloads.publish_profile(app=f"app{i}").data)) for i in range(2)]
    damaged = paths.vault_dir() / f"{ids[0]}.cgv"
    blob = bytearray(damaged.read_bytes())
    blob[-1] ^= 0x01
    damaged.write_bytes(bytes(blob))
    before = (paths.vault_dir() / "vault.json").read_bytes(), keyring_keys(secret_service)
    files = {n: sha((paths.vault_dir() / n).read_bytes()) for n in item_files()}
    with pytest.raises(CredguardError) as refused:
        vault().rotate_key()
    assert isinstance(refused.value, IntegrityError) and ids[0] in refused.value.message
    assert refused.value.exit_code == ExitCode.INTEGRITY
    after = (paths.vault_dir() / "vault.json").read_bytes(), keyring_keys(secret_service)
    assert after == before
    assert {n: sha((paths.vault_dir() / n).read_bytes()) for n in item_files()} == files
    assert json.loads(after[0])["retiring"] == []


# -- what mutation testing found (docs/mutation.md) ------------------------------------------


def test_a_record_whose_checksum_does_not_match_its_data_is_refused(
    secret_service: SecretService, home: Home
) -> None:
    """Record's constructor checks this too; add() checks again, for a record changed after
    it was made (here by force: it is a frozen dataclass)."""
    bad = record(payloads.publish_profile().data)
    object.__setattr__(bad, "data", bad.data + b"\n")
    store = vault()
    with pytest.raises(IntegrityError) as info:
        store.add(bad)
    assert info.value.message == "record checksum does not match its data"
    assert store.ids() == []


def test_ensure_key_creates_the_key_once_and_returns_its_id(
    secret_service: SecretService, home: Home
) -> None:
    store = vault()
    key_id = store.ensure_key()
    assert isinstance(key_id, str) and key_id == vault().ensure_key()
    item = store.add(record(payloads.publish_profile().data))
    assert itemformat.read_key_id((paths.vault_dir() / f"{item}.cgv").read_bytes()) == key_id


def test_a_vault_directory_that_cannot_be_listed_is_an_error_naming_it(
    secret_service: SecretService, home: Home
) -> None:
    """EMFILE while listing (the soft open-file limit reached): the error names the vault
    directory, what failed and the errno."""
    import os
    import resource

    from credguard.vault.store import item_ids

    store = vault()
    store.add(record(payloads.publish_profile().data))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.open(os.devnull, os.O_RDONLY)  # the fd number the next open would get
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        with pytest.raises(StateError) as info:
            item_ids(paths.vault_dir())
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert info.value.message == (f"cannot list the items of the vault in {paths.vault_dir()}: "
                                  "Too many open files (EMFILE)")


def test_a_vault_directory_that_is_not_private_is_refused_with_the_fix(home: Home) -> None:
    from credguard.vault.store import check_private_dir

    where = paths.vault_dir()
    where.mkdir(parents=True)
    where.chmod(0o755)
    with pytest.raises(StateError) as info:
        check_private_dir(where)
    assert info.value.message == (
        f"refusing to use {where}: its mode is 0755, so other users may read or replace "
        f"vault files; fix it with: chmod 700 '{where}'")


def test_a_vault_path_that_cannot_be_examined_or_read_names_the_error(home: Home) -> None:
    """A file where a directory should be on the way (ENOTDIR), and a vault.json that is a
    directory (EISDIR): each error names the vault directory, what failed and the errno."""
    from credguard.vault.store import check_private_dir

    blocker = home.root / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(StateError) as info:
        check_private_dir(blocker / "vault")
    assert info.value.message == (f"cannot open the vault in {blocker / 'vault'}: "
                                  "Not a directory (ENOTDIR)")
    where = paths.vault_dir()
    (where / "vault.json").mkdir(parents=True)
    where.chmod(0o700)
    with pytest.raises(StateError) as info:
        read_state(where)
    assert info.value.message == (f"cannot read the state of the vault in {where}: "
                                  "Is a directory (EISDIR)")


@pytest.mark.parametrize("doc", [[], "vault", {"version": "1", "keystore": "keyring"},
                                 {"keystore": "keyring"},
                                 {"version": 1, "keystore": "floppy", "key_id": None},
                                 {"version": 1, "keystore": "keyring", "key_id": "zz"},
                                 {"version": 1, "keystore": "keyring", "retiring": "k"},
                                 {"version": 1, "keystore": "keyring", "retiring": ["zz"]},
                                 {"version": 2, "keystore": "keyring",
                                  "retiring_keystore": "floppy"}],
                         ids=["array", "string", "version-a-string", "no-version",
                              "unknown-keystore", "bad-key-id", "retiring-not-a-list",
                              "retiring-bad-key-id", "unknown-retiring-keystore"])
def test_a_vault_json_of_the_wrong_shape_is_damaged_not_a_crash(
    tmp_path: Path, doc: object
) -> None:
    (tmp_path / "vault.json").write_text(json.dumps(doc))
    with pytest.raises(StateError) as error:
        read_state(tmp_path)
    assert error.value.message == f"{tmp_path / 'vault.json'} is damaged"


def test_a_vault_json_without_optional_fields_reads_as_their_defaults(tmp_path: Path) -> None:
    """``retiring`` (no key being retired) and ``key_id`` (no key made yet) may be absent."""
    (tmp_path / "vault.json").write_text(json.dumps({"version": 1, "keystore": "keyring"}))
    state = read_state(tmp_path)
    assert state is not None
    assert (state.keystore, state.key_id, state.retiring) == ("keyring", None, [])


def test_a_key_rotation_whose_rewrite_fails_keeps_the_item(secret_service: object,
                                                           home: Home) -> None:
    """A rotation re-encrypts each item in place (temporary file, rename); the real ``credguard
    vault rotate-key`` gets EIO from the rename of the item's rewrite (strace fault injection;
    the first rename is ``vault.json``'s). The item is still there and reads back under its old
    key: a failed rewrite removes nothing (it once removed the item it was rewriting)."""
    data = payloads.publish_profile().data
    imported = run_subprocess("import", str(home.write("Downloads/a.PublishSettings", data)))
    assert imported.code == 0, imported.err
    before = item_files()
    proc = subprocess.run(
        ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=rename,renameat,renameat2",
         "-e", "inject=rename,renameat,renameat2:error=EIO:when=2",
         sys.executable, "-m", "credguard", "vault", "rotate-key"],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == ExitCode.STATE, (proc.returncode, proc.stderr)
    assert "Input/output error" in proc.stderr, proc.stderr
    assert item_files() == before
    assert vault_shas() == [sha(data)]
    verify = run_subprocess("vault", "verify")
    assert verify.code == 0, verify.out + verify.err


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_group_write_is_all_or_nothing(secret_service: SecretService, fault: str) -> None:
    """``add_many`` (the protect batch's one group commit): the last of three items is changed
    before the read-back, and none of the three is left; the vault still works afterwards."""
    store = vault()
    datas = [payloads.publish_profile().data for _ in range(3)]
    ids = [itemformat.new_item_id() for _ in datas]

    def hook(label: str) -> None:
        assert label == "after-item-write" and len(item_files()) == 3
        change(fault, paths.vault_dir() / f"{ids[-1]}.cgv", store)

    with pytest.raises(FAULTS[fault]):
        store.add_many([(record(d), i) for d, i in zip(datas, ids, strict=True)], step=hook)
    assert item_files() == []
    store.add_many([(record(d), i) for d, i in zip(datas, ids, strict=True)])
    assert_vault_holds(*datas)


def test_a_group_write_refuses_a_taken_or_repeated_id_before_writing(
        secret_service: SecretService) -> None:
    store = vault()
    taken = store.add(record(payloads.publish_profile().data))
    fresh, new_id = record(payloads.publish_profile().data), itemformat.new_item_id()
    cases: list[tuple[list[tuple[Record, str]], type[Exception], str]] = [
        ([(fresh, new_id), (fresh, taken)], StateError, "exists already"),
        ([(fresh, new_id), (fresh, new_id)], StateError, "twice"),
    ]
    for items, error, words in cases:
        with pytest.raises(error, match=words):
            store.add_many(items)
        assert item_files() == [f"{taken}.cgv"]


def test_an_item_that_is_not_there_is_not_found_not_a_broken_vault(
        secret_service: SecretService) -> None:
    """A well-formed id with no item file is NotFoundError (exit 9), not a file-system error
    of the vault (exit 7)."""
    store = vault()
    store.add(record(payloads.publish_profile().data))
    missing = itemformat.new_item_id()
    with pytest.raises(NotFoundError, match=f"no vault item {missing}"):
        store.get(missing)


def test_a_vault_item_that_cannot_be_examined_is_a_read_error_of_the_vault(
        secret_service: SecretService, home: Home) -> None:
    """The real ``credguard protect`` of content already in the vault checks that its item is
    still there; that stat gets EIO (strace fault injection on the item's path: its first
    stat is the read of the item while the vault's contents are listed, the second is the
    check): the file is kept, and the error names what failed (reading the vault) and where."""
    data = payloads.publish_profile().data
    imported = run_subprocess("import", "--json", str(home.write("Desktop/a.PublishSettings",
                                                                 data)))
    assert imported.code == 0, imported.err
    [item] = item_files()
    path = home.write("Downloads/a.PublishSettings", data)
    proc = subprocess.run(
        ["strace", "-f", "-qq", "-o", "/dev/null", "-P", str(paths.vault_dir() / item),
         "-e", "trace=newfstatat", "-e", "inject=newfstatat:error=EIO:when=2",
         sys.executable, "-m", "credguard", "protect", "--json", str(path)],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == ExitCode.STATE, (proc.returncode, proc.stdout, proc.stderr)
    assert f"cannot read the vault in {paths.vault_dir()}: Input/output error" in \
        proc.stdout + proc.stderr, (proc.stdout, proc.stderr)
    assert same_bytes(path, data)
