"""Crash recovery's every branch (issue 17), against the real ``credguard`` killed at a step of
its transaction (the crash hook: ``os._exit``, like a power cut): an interrupted ``intent``
rolled back and protected afresh, a keyring that is locked or dies (the entry waits, and is
finished once the keyring is back), a vault copy that fails verification, a source replaced
after the crash, a deletion refused while finishing, another process's live transaction, and
damaged journal entries.

Every test checks what recovery left in the vault and in the journal as well as on disk, and
that it wrote one audit record for what it did. The planted bugs these tests catch are listed
in ``docs/mutation.md``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import payloads
from helpers.crashes import entries, recovered, stopped_protect
from helpers.home import Home, Run, run_subprocess
from helpers.secret_service import SecretService
from helpers.vaulted import (
    assert_no_journal_entry,
    assert_vault_holds,
    item_files,
    same_bytes,
    vault_shas,
)

from credguard import config, paths
from credguard.protect import journal
from credguard.protect.recovery import Recovery
from credguard.vault.access import open_vault
from credguard.vault.format import Record

pytestmark = pytest.mark.timeout(120)
FINISHED = "protected (finished after a crash)"
REDONE = "rolled back and protected again"
POSTPONED = "not finished yet ("


def with_target(home: Home) -> None:
    """An import target, so that the transaction journals ``verified`` before it runs."""
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text('[[targets]]\nname = "ok"\ncommand = ["true"]\n')


def crash_at(home: Home, step: str, data: bytes, env: dict[str, str] | None = None,
             name: str = "contoso.PublishSettings") -> tuple[Path, journal.Entry]:
    """``credguard protect`` of ``data`` in Downloads, crashed (``os._exit``) at ``step``:
    the file and the one journal entry it left."""
    path = home.write(f"Downloads/{name}", data)
    env = dict(os.environ) if env is None else env
    crashed = run_subprocess("protect", str(path), env={**env, "CREDGUARD_TEST_CRASH_AT": step})
    assert crashed.code == 99, crashed.err
    [entry] = entries()
    return path, entry


def recover(env: dict[str, str] | None = None) -> Run:
    run = run_subprocess("recover", env=dict(os.environ) if env is None else env)
    assert run.code == 0 and "internal error" not in run.err, run.err
    return run


def new_credential(app: str = "fabrikam") -> bytes:
    return payloads.publish_profile(app=app).data


# -- planted bug (f): an interrupted intent is rolled back and protected afresh --------------


@pytest.mark.parametrize("step", ["after-intent", "after-verify"])
def test_an_interrupted_intent_is_rolled_back_and_protected_afresh(
    secret_service: object, home: Home, step: str
) -> None:
    """Crashed before its vault copy was written or right after it was verified (the journal
    still says ``intent``): recovery forgets the entry and protects the file afresh, reusing
    the complete item the crashed transaction wrote (one item, not two)."""
    data = payloads.publish_profile().data
    path, entry = crash_at(home, step, data)
    assert entry.state == "intent"
    written = step == "after-verify"
    assert item_files() == ([f"{entry.item_id}.cgv"] if written else [])
    run = recover()
    assert f"{path}: {REDONE}" in run.out, run.out
    assert os.listdir(home.downloads) == [], "the source is deleted: it is in the vault now"
    assert_vault_holds(data)
    if written:
        assert item_files() == [f"{entry.item_id}.cgv"], "the crashed transaction's item reused"
    assert_no_journal_entry()
    assert recovered(path) == [REDONE]
    assert recover().out.strip() == "nothing to recover"


# -- planted bug (e): the keyring is unavailable during recovery ----------------------------


@pytest.mark.parametrize("step", ["after-targets", "after-verify", "after-intent"],
                         ids=["verified", "intent-item-written", "intent-nothing-written"])
def test_recovery_waits_for_a_locked_keyring_then_finishes(
    locked_secret_service: SecretService, home: Home, step: str
) -> None:
    """The keyring is locked when recovery runs (as after a login without the keyring's
    password): the entry must stay, untouched, through every attempt, and be finished by the
    first recovery after the keyring is unlocked. Dropping it would leave the leftover on
    disk for good: nothing would ever come back to it."""
    service = locked_secret_service
    service.unlock()
    if step == "after-targets":
        with_target(home)
    data = payloads.publish_profile().data
    path, entry = crash_at(home, step, data, service.env)
    items = item_files()
    service.lock()
    for _ in range(2):  # a second attempt must not drop it either
        run = recover(service.env)
        assert f"{path}: {POSTPONED}" in run.out and "locked" in run.out, run.out
        assert entries() == [entry], "the entry is kept as it was"
        assert same_bytes(path, data) and item_files() == items
    service.unlock()
    run = recover(service.env)
    done = FINISHED if step == "after-targets" else REDONE
    assert f"{path}: {done}" in run.out, run.out
    assert not path.exists()
    assert_vault_holds(data)
    assert_no_journal_entry()
    notes = recovered(path)
    assert len(notes) == 3 and all(n.startswith(POSTPONED) for n in notes[:2]), notes
    assert notes[2] == done


def test_recovery_with_the_keyring_daemon_killed_keeps_the_entry(
    killable_secret_service: SecretService, home: Home
) -> None:
    """Recovery opened the vault, then the keyring daemon died (SIGKILL): the ``verified``
    entry waits; once the daemon runs again, the next recovery finishes it."""
    service = killable_secret_service
    with_target(home)
    data = payloads.publish_profile().data
    path, entry = crash_at(home, "after-targets", data, service.env)
    assert entry.state == "verified"
    cfg = config.load()
    recovery = Recovery(cfg, open_vault(cfg))
    service.kill()
    [note] = recovery.run()
    assert note.startswith(f"{path}: {POSTPONED}"), note
    assert entries() == [entry] and same_bytes(path, data)
    service.start_daemon()
    assert Recovery(cfg, open_vault(cfg)).run() == [f"{path}: {FINISHED}"]
    assert not path.exists()
    assert_vault_holds(data)
    assert_no_journal_entry()


# -- the vault copy fails its verification ---------------------------------------------------


@pytest.mark.parametrize("fault", ["damaged", "removed", "other-content"])
def test_a_vault_copy_that_fails_verification_keeps_the_source(
    secret_service: object, home: Home, fault: str
) -> None:
    """A ``verified`` entry whose vault copy is no longer what was verified: the item file was
    damaged (one bit), removed, or the entry names an item of other content (its checksum is
    all that tells them apart). Recovery keeps the source, forgets the entry and says so; the
    deletion would otherwise destroy the only copy."""
    with_target(home)
    data = payloads.publish_profile().data
    path, entry = crash_at(home, "after-targets", data)
    item = paths.vault_dir() / f"{entry.item_id}.cgv"
    other = new_credential()
    if fault == "damaged":
        blob = bytearray(item.read_bytes())
        blob[len(blob) // 2] ^= 0x01
        item.write_bytes(bytes(blob))
    elif fault == "removed":
        item.unlink()
    else:
        cfg = config.load()
        other_id = open_vault(cfg).add(Record.new("azure-publish-profile", "other", "", other))
        [where] = journal.pending()
        doc = json.loads(where.read_text())
        where.write_text(json.dumps({**doc, "item_id": other_id}))
    run = recover()
    note = "the vault copy failed verification; the source is kept"
    assert f"{path}: {note}" in run.out, run.out
    assert same_bytes(path, data), "the source is kept byte for byte"
    assert_no_journal_entry()
    assert recovered(path) == [note]
    if fault == "damaged":
        assert item_files() == [item.name] and vault_shas() == [], "the damaged item stays"
    elif fault == "removed":
        assert_vault_holds()
    else:
        assert_vault_holds(data, other)


# -- the source was replaced after the crash -------------------------------------------------


@pytest.mark.parametrize("how", ["new-file", "in-place"])
@pytest.mark.parametrize("state", ["intent", "verified"])
def test_a_source_replaced_after_the_crash_is_never_deleted_unvaulted(
    secret_service: object, home: Home, tmp_path: Path, state: str, how: str
) -> None:
    """After the crash the user saves another credential under the same name: as a new file
    (renamed over the old one: another inode) or written into the same file. Whatever
    recovery does, the new content ends up on disk or in the vault, and the vaulted one stays
    in the vault: an ``intent`` entry protects what is there afresh (in place: the same
    file, now holding the new credential) or leaves a new file alone; a ``verified`` entry
    never deletes what it did not verify."""
    if state == "verified":
        with_target(home)
    data = payloads.publish_profile().data
    path, entry = crash_at(home, "after-targets" if state == "verified" else "after-verify",
                           data)
    assert entry.state == state
    newer = new_credential()
    if how == "new-file":
        (tmp_path / "newer").write_bytes(newer)
        os.replace(tmp_path / "newer", path)
        assert path.stat().st_ino != entry.ino
    else:
        with path.open("r+b") as f:
            f.truncate(0)
            f.write(newer)
        assert path.stat().st_ino == entry.ino
    run = recover()
    note = {
        ("intent", "new-file"): "rolled back; the source changed or is gone, so it was left "
                                "alone",
        ("intent", "in-place"): REDONE,
        ("verified", "new-file"): "already gone; the vault copy is kept",
        ("verified", "in-place"): "not deleted (not deleted: it changed since it was read",
    }[state, how]
    assert f"{path}: {note}" in run.out, run.out
    if note == REDONE:  # the new credential was protected: vaulted, then deleted
        assert not path.exists()
        assert_vault_holds(data, newer)
    else:
        assert same_bytes(path, newer), "the new credential is kept byte for byte"
        assert_vault_holds(data)
    assert_no_journal_entry()
    [audited] = recovered(path)
    assert audited.startswith(note)


# -- the deletion is refused while recovery finishes it --------------------------------------


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Files a test made immutable (``chattr +i``; the test home is on ext4): made mutable
    again afterwards."""
    made: list[Path] = []
    yield made
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=False)


@pytest.mark.parametrize("obstacle", ["hard-link", "immutable", "temporary-name-taken"])
@pytest.mark.parametrize("state", ["verified", "deleting"])
def test_a_deletion_refused_while_finishing_keeps_the_file(
    secret_service: object, home: Home, immutable: list[Path], state: str, obstacle: str
) -> None:
    """After the crash a second name appears for the file (a hard link), the file is made
    immutable, or another file takes the name the deletion renames to: finishing the
    deletion is refused before a byte is overwritten. The file (its other name, the other
    file) stay as they are, the vault copy stays, the entry is forgotten and the refusal
    reported."""
    if state == "verified":
        with_target(home)
    data = payloads.publish_profile().data
    path, entry = crash_at(home, "after-targets" if state == "verified" else "before-overwrite",
                           data)
    assert entry.state == state
    link = home.documents / "kept.PublishSettings"
    intruder = home.downloads / entry.shred_name
    other = new_credential()
    if obstacle == "hard-link":
        os.link(path, link)
        why = "it has other hard links"
    elif obstacle == "immutable":
        subprocess.run(["chattr", "+i", str(path)], check=True)
        immutable.append(path)
        why = "it or its directory cannot be changed"
    else:
        intruder.write_bytes(other)
        why = f"the temporary name {entry.shred_name!r} is taken" if state == "verified" \
            else "another file took the temporary name; it is kept"
    run = recover()
    begins = "not deleted (not deleted: " if state == "verified" else \
        "could not finish deleting (not deleted: "
    assert f"{path}: {begins}{why}" in run.out, run.out
    assert same_bytes(path, data)
    if obstacle == "hard-link":
        assert path.stat().st_nlink == 2 and same_bytes(link, data)
    left = [path.name]
    if obstacle == "temporary-name-taken":
        assert same_bytes(intruder, other), "the other file is kept byte for byte"
        left.append(intruder.name)
    assert sorted(os.listdir(home.downloads)) == sorted(left), "no probe left, nothing else"
    assert_vault_holds(data)
    assert_no_journal_entry()
    [audited] = recovered(path)
    assert audited.startswith(begins + why)


# -- another process's live transaction is left alone ----------------------------------------


def test_another_process_live_transaction_is_skipped(secret_service: object, home: Home) -> None:
    """A real ``credguard protect`` is stopped (SIGSTOP) right after verifying its vault copy:
    its journal entry says ``intent`` and it holds the entry's lock. ``credguard recover``
    and another ``credguard protect`` (which recovers first) must leave it alone; resumed,
    the transaction finishes by itself."""
    data = payloads.publish_profile().data
    path = home.write("Downloads/contoso.PublishSettings", data)
    proc = stopped_protect(path, "after-verify", dict(os.environ))
    try:
        [entry] = entries()
        assert entry.state == "intent"
        assert recover().out.strip() == "nothing to recover"
        other_data = new_credential()
        other = home.write("Desktop/other.PublishSettings", other_data)
        again = run_subprocess("protect", str(other), env=dict(os.environ))
        assert again.code == 0 and "recovered" not in again.err, again.err
        assert entries() == [entry] and same_bytes(path, data)
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # a failed check: end it, and close its pipes
            proc.kill()
            proc.communicate()
    [result] = json.loads(out)["results"]
    assert proc.returncode == 0 and result["protected"] is True, (result, err)
    assert not path.exists() and not other.exists()
    assert_vault_holds(data, other_data)
    assert_no_journal_entry()
    assert recovered(path) == []


# -- damaged journal entries -----------------------------------------------------------------


DAMAGE = {
    "not-json": b"{\"state\": \"deleting\", ",
    "not-an-object": b"\"deleting\"",
    "unknown-state": {"state": "finishing"},
    "missing-field": {"sha256": None},
    "wrong-type": {"passes": "3"},
    "bad-seed": {"seed": "not hex"},
    "short-seed": {"seed": "ab" * 15},  # hex, but not the 128 bits a deletion seeds with
    "name-not-a-string": {"name": 7},
    "name-leaves-its-directory": {"name": "../../.bashrc"},
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_entry_is_set_aside_and_the_next_is_recovered(
    secret_service: object, home: Home, damage: str
) -> None:
    """A damaged entry comes first in the journal, before the ``deleting`` entry of a real
    crash: it is set aside (``*.damaged``) and reported, and the real one is still finished —
    by this recovery, not never. A damaged entry is never acted on, and never read again."""
    data = payloads.publish_profile().data
    path, entry = crash_at(home, "before-overwrite", data)
    assert entry.state == "deleting"
    [real] = journal.pending()
    damaged = real.parent / "0000000000000000.json"
    change = DAMAGE[damage]
    if isinstance(change, bytes):
        damaged.write_bytes(change)
    else:
        doc = {**json.loads(real.read_text()), "txid": "0000000000000000", **change}
        damaged.write_text(json.dumps({k: v for k, v in doc.items() if v is not None}))
    assert journal.pending() == [damaged, real]
    run = recover()
    lines = run.out.splitlines()
    assert len(lines) == 2, run.out
    assert lines[0].startswith(f"{damaged}: set aside, not recovered (journal entry "), run.out
    assert lines[1] == f"{path}: deleted (overwrite attempted; finished after a crash)"
    assert os.listdir(home.downloads) == []
    assert_vault_holds(data)
    assert_no_journal_entry()
    assert damaged.with_suffix(".damaged").exists() and not damaged.exists()
    assert recover().out.strip() == "nothing to recover"
    assert damaged.with_suffix(".damaged").exists()
