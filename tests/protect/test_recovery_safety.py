"""Crash recovery and the protect transaction never destroy what is not in the vault (issue 12,
items 1, 5 and 9): the real ``credguard protect`` SIGKILLed by strace as its overwrite starts or
part-way through it, then new content under the same name or inode, unexpected errors, a hard
link made during the deletion, concurrent transactions of one content, and ``vault rm``."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.crashes import entries, ext4, recovered, run_killed, vault_contents
from helpers.home import Home, Run, run_subprocess, sha

from credguard import config
from credguard.fs import facts
from credguard.protect import deletion
from credguard.protect.overwrite import CHUNK
from credguard.protect.shred import Verify
from credguard.protect.transaction import Protector
from credguard.vault.access import open_vault

pytestmark = pytest.mark.timeout(180)
Cli = Callable[..., Run]
KEPT = "its content is not the content that was vaulted: it is kept"
READ_ONLY = (("status",), ("vault", "list"), ("scan",), ("log",))


def passes(home: Home, n: int) -> None:
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text(f"[protect]\npasses = {n}\n")


def killed_mid_overwrite(home: Home, data: bytes, nth: int = 1) -> Path:
    """``credguard protect`` of ``data`` in Downloads, SIGKILLed on entering its ``nth``
    overwrite write: the journal says ``deleting``, the file is still in place."""
    path = home.write("Downloads/contoso.PublishSettings", data)
    run = run_killed(["protect", str(path)], dict(os.environ), "pwrite64", nth)
    assert run.returncode == -signal.SIGKILL, run.stderr
    [entry] = entries()
    assert entry.state == "deleting" and entry.path == str(path)
    assert vault_contents() == {sha(data): data}, "the vault copy is written before the kill"
    return path


def read_only_commands_leave(path: Path, content: bytes) -> None:
    """Commands that may not delete leave the file and the journal entry alone, and say that
    a transaction waits for recovery."""
    for args in READ_ONLY:
        run = run_subprocess(*args, env=dict(os.environ))
        assert "waits for recovery" in run.err, (args, run.err)
        assert "recovered" not in run.err, (args, run.err)
        assert path.read_bytes() == content, f"credguard {' '.join(args)} changed the file"
        assert len(entries()) == 1


def new_credential(size: int) -> payloads.Payload:
    """Another credential (new secrets), padded to ``size`` bytes."""
    new = payloads.publish_profile(app="fabrikam")
    assert len(new.data) <= size
    return payloads.Payload(new.data + b" " * (size - len(new.data)), new.secrets)


# -- item 1: the new content is kept --------------------------------------------------------


@pytest.mark.parametrize("recovering", ["recover", "protect-other"])
def test_new_credential_copied_onto_a_half_deleted_file_is_kept(
    secret_service: object, home: Home, tmp_path: Path, recovering: str
) -> None:
    """Killed as the overwrite starts; the user ``cp``s a new credential onto the same name
    (``cp`` keeps the inode). Nothing deletes it: not the read-only commands, not recovery."""
    old = payloads.publish_profile().data + b" " * 6000
    path = killed_mid_overwrite(home, old)
    ino = path.stat().st_ino
    payload = new_credential(len(old))  # the same size as well: only the content differs
    new = payload.data
    (tmp_path / "new.PublishSettings").write_bytes(new)
    subprocess.run(["cp", str(tmp_path / "new.PublishSettings"), str(path)], check=True)
    assert path.stat().st_ino == ino
    read_only_commands_leave(path, new)
    if recovering == "recover":
        run = run_subprocess("recover", env=dict(os.environ))
        assert run.code == 0 and f"{path}: could not finish deleting" in run.out, run.out
        assert KEPT in run.out
    else:
        other = home.write("Downloads/other.PublishSettings", payloads.publish_profile().data)
        run = run_subprocess("protect", str(other), env=dict(os.environ))
        assert run.code == 0 and not other.exists(), run.out + run.err
        assert f"recovered: {path}: could not finish deleting" in run.err and KEPT in run.err
    assert path.read_bytes() == new, "the new credential is kept byte for byte"
    assert [KEPT in d for d in recovered(path)] == [True], "one audit record says it was kept"
    assert entries() == []
    assert sha(old) in vault_contents(), "the vaulted credential is still in the vault"
    for secret in payload.secrets:
        assert secret not in run.out + run.err + "".join(recovered(path))


def test_new_file_on_the_reused_inode_after_the_unlink_is_kept(
    secret_service: object, home: Home, tmp_path: Path
) -> None:
    """Killed right after the unlink; the next download of that name gets the freed inode
    number back (ext4 reuses it at once). Recovery must not take it for the file it deleted."""
    with ext4(tmp_path / "disk") as disk:
        downloads = disk / "Downloads"
        downloads.mkdir()
        old = payloads.publish_profile().data + b" " * 5000
        path = downloads / "contoso.PublishSettings"
        path.write_bytes(old)
        path.chmod(0o600)
        crashed = run_subprocess("protect", str(path),
                                 env={**os.environ, "CREDGUARD_TEST_CRASH_AT": "after-unlink"})
        assert crashed.code == 99, crashed.err
        [entry] = entries()
        assert entry.state == "deleting" and not path.exists()
        new = new_credential(len(old)).data
        for _ in range(50):  # ext4 gives the freed inode number back at once: bounded anyway
            path.write_bytes(new)
            if path.stat().st_ino == entry.ino:
                break
            path.unlink()
        else:
            pytest.fail("the file system did not give the freed inode number back")
        assert (path.stat().st_dev, path.stat().st_ino) == (entry.dev, entry.ino)
        read_only_commands_leave(path, new)
        run = run_subprocess("recover", env=dict(os.environ))
        assert run.code == 0 and f"{path}: could not finish deleting" in run.out, run.out
        assert path.read_bytes() == new
        assert [KEPT in d for d in recovered(path)] == [True]
        assert entries() == [] and sha(old) in vault_contents()


@pytest.mark.parametrize("nth", [2, 4], ids=["pass1-half", "pass2-half"])
def test_recovery_finishes_what_its_own_overwrite_left(
    secret_service: object, home: Home, nth: int
) -> None:
    """Killed part-way through the overwrite of a file of two overwrite chunks, three passes:
    in pass 1 (one chunk noise, one still the credential) or in pass 2 (pass 2 noise, then
    pass 1 noise). That is all our own doing: recovery finishes the deletion."""
    passes(home, 3)
    data = payloads.publish_profile().data + b" " * (CHUNK + 50_000)
    path = killed_mid_overwrite(home, data, nth)
    now = path.read_bytes()
    assert now[:CHUNK] != data[:CHUNK], "the first chunk was overwritten before the kill"
    assert (now[CHUNK:] == data[CHUNK:]) == (nth == 2), "the second: only in pass 2"
    run = run_subprocess("recover", env=dict(os.environ))
    assert run.code == 0, run.err
    assert f"{path}: deleted (overwrite attempted; finished after a crash)" in run.out, run.out
    assert os.listdir(home.downloads) == [], "nothing left: no file, no temporary name"
    assert entries() == []
    assert vault_contents() == {sha(data): data}, "the vault copy is intact"
    assert [d.startswith("deleted") for d in recovered(path)] == [True]


def test_a_block_the_user_rewrote_after_the_crash_is_kept(
    secret_service: object, home: Home
) -> None:
    """As above (killed in pass 2), then the user rewrites one 4 KiB block in place: the file
    is no longer only what our overwrite made of the credential. Recovery keeps it."""
    passes(home, 3)
    data = payloads.publish_profile().data + b" " * (CHUNK + 50_000)
    path = killed_mid_overwrite(home, data, 4)
    with path.open("r+b") as f:
        f.seek(CHUNK + 8192)
        f.write(b"user edit " * 409 + b"......")  # one whole block, not noise, not the original
    edited = path.read_bytes()
    read_only_commands_leave(path, edited)
    run = run_subprocess("recover", env=dict(os.environ))
    assert run.code == 0 and f"{path}: could not finish deleting" in run.out, run.out
    assert path.read_bytes() == edited
    assert entries() == [] and sha(data) in vault_contents()


# -- item 5: an unexpected error is no crash --------------------------------------------------


@pytest.mark.parametrize("broken", ["fd_path", "is_mount_point"])
def test_an_unexpected_error_before_the_overwrite_leaves_no_entry(
    secret_service: object, cli: Cli, home: Home, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    """An OSError(EINVAL) inside the deletion's precheck, with the journal at ``deleting``:
    nothing was changed, so nothing may be "finished after a crash" later."""
    data = payloads.publish_profile().data
    path = home.write("Downloads/contoso.PublishSettings", data)
    states: list[str] = []

    def fails(*_args: object) -> object:
        states.extend(e.state for e in entries())
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    with monkeypatch.context() as patch:
        patch.setattr(facts, broken, fails)
        run = cli("protect", str(path))
    assert states == ["deleting"], "the error came while the journal said deleting"
    assert run.code != 0 and "internal error: OSError" in run.err, run.err
    assert entries() == []
    assert path.read_bytes() == data
    assert vault_contents() == {sha(data): data}
    other = home.write("Desktop/other.PublishSettings", payloads.publish_profile().data)
    after = cli("protect", str(other))
    assert after.code == 0 and "recovered" not in after.err, after.err
    assert path.read_bytes() == data


def test_an_unexpected_error_during_the_overwrite_is_finished_by_recovery(
    secret_service: object, cli: Cli, home: Home
) -> None:
    """A bug raised after the overwrite began leaves plaintext partly overwritten: the entry
    stays, and recovery finishes the deletion (the file is what our overwrite made of it)."""
    data = payloads.publish_profile().data + b" " * (CHUNK + 1000)
    path = home.write("Downloads/contoso.PublishSettings", data)

    def bug(label: str) -> None:
        if label == "mid-overwrite":
            raise RuntimeError("a bug")

    cfg = config.load()
    with pytest.raises(RuntimeError):
        Protector(cfg, open_vault(cfg), step=bug).protect(path)
    assert [e.state for e in entries()] == ["deleting"]
    assert path.read_bytes()[CHUNK:] == data[CHUNK:], "plaintext is still there"
    run = cli("recover")
    assert f"{path}: deleted (overwrite attempted; finished after a crash)" in run.out, run.out
    assert os.listdir(home.downloads) == [] and entries() == []
    assert vault_contents() == {sha(data): data}


def test_a_name_swapped_twice_during_the_deletion_is_never_finished_over(
    secret_service: object, cli: Cli, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the deletion renames the (overwritten) file away, the name holds an intruder (a new
    download), and another file takes the name before the intruder can be renamed back: the
    intruder is left under the temporary name and the deletion refused. Nothing crashed, so
    no entry may stay, and no recovery may later "finish" the deletion over the intruder."""
    data = payloads.publish_profile().data
    path = home.write("Downloads/contoso.PublishSettings", data)
    intruder, newer = new_credential(len(data) + 10).data, new_credential(len(data) + 20).data
    real, raced = os.rename, [False]

    def racing(src: str, dst: str, **fds: int) -> None:
        if src == path.name and dst.startswith(".credguard-") and not raced[0]:
            raced[0] = True
            real(path, home.downloads / "moved-away")  # the user moved our file away ...
            path.write_bytes(intruder)                  # ... a new download took its name
            real(src, dst, **fds)
            path.write_bytes(newer)                     # ... and another one, at once
            return
        real(src, dst, **fds)

    monkeypatch.setattr(os, "rename", racing)
    code = cli("protect", "--json", str(path))
    monkeypatch.setattr(os, "rename", real)
    assert raced[0], "the deletion got as far as its rename"
    [result] = json.loads(code.out)["results"]
    assert result["reason"] == "changed" and "that file was left as" in result["error"], result
    assert entries() == [], "a refused deletion leaves no entry"
    assert cli("recover").out.strip() == "nothing to recover"
    kept = {sha(p.read_bytes()) for p in home.downloads.iterdir()}
    assert {sha(intruder), sha(newer)} <= kept, "the intruder and the newer file are kept"
    assert vault_contents() == {sha(data): data}


# -- item 9 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("during", ["verify", "mount-lookup"])
def test_a_hard_link_made_during_the_deletion_is_refused(
    secret_service: object, cli: Cli, home: Home, monkeypatch: pytest.MonkeyPatch, during: str
) -> None:
    """A second name made while the deletion runs (while the content is verified, or while
    the mount is looked up) is seen before the first byte is overwritten."""
    data = payloads.publish_profile().data
    path = home.write("Downloads/contoso.PublishSettings", data)
    link = home.write("Documents/keep/link.PublishSettings", b"").parent / "same.PublishSettings"
    verified: list[bool] = []
    real_matches, real_mount_of = deletion.matches, facts.mount_of

    def matches(sha256: str) -> Verify:
        check = real_matches(sha256)

        def checked(fd: int, size: int) -> bool:
            verified.append(check(fd, size))
            if during == "verify":
                os.link(path, link)
            return verified[-1]
        return checked

    def mount_of(where: object) -> object:
        deleting = [e.state for e in entries()] == ["deleting"]
        if during == "mount-lookup" and deleting and not link.exists():
            os.link(path, link)
        return real_mount_of(where)  # type: ignore[arg-type]

    monkeypatch.setattr(deletion, "matches", matches)
    monkeypatch.setattr(facts, "mount_of", mount_of)
    run = cli("protect", "--json", str(path))
    [result] = json.loads(run.out)["results"]
    assert link.exists()
    if during == "verify":
        assert verified == [True], "the link came while the content was checked"
    assert result["reason"] == "hard-links" and result["protected"] is False, result
    assert path.read_bytes() == data and link.read_bytes() == data, "both names intact"
    assert path.stat().st_nlink == 2
    assert entries() == [] and vault_contents() == {sha(data): data}


def test_intent_rollback_keeps_an_item_another_protect_relies_on(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path
) -> None:
    """Protect of A crashes after writing its vault item (journal: intent). The daemon (its
    start-up recovery long done) protects B, of the same content, relying on that item, and
    deletes B. The user then saves another credential over A. Rolling A back must not remove
    the item: it is B's only copy."""
    data = payloads.publish_profile().data
    a = home.write("Downloads/a.PublishSettings", data)
    b = home.write("Desktop/b.PublishSettings", data)
    crashed = run_subprocess("protect", str(a),
                             env={**os.environ, "CREDGUARD_TEST_CRASH_AT": "after-verify"})
    assert crashed.code == 99, crashed.err
    [entry] = entries()
    assert entry.state == "intent" and not entry.existing
    cfg = config.load()
    outcome = Protector(cfg, open_vault(cfg)).protect(b)
    assert outcome.protected and outcome.already_in_vault and outcome.item_id == entry.item_id
    newer = new_credential(len(data) + 100).data
    (tmp_path / "newer.PublishSettings").write_bytes(newer)
    shutil.copyfile(tmp_path / "newer.PublishSettings", a)  # in place, like cp
    run = cli("recover")
    assert f"{a}: rolled back and protected again" in run.out, run.out
    assert open_vault(config.load()).get(entry.item_id).data == data, "B's item is kept"
    assert vault_contents() == {sha(data): data, sha(newer): newer}
    assert not a.exists() and not b.exists() and entries() == []


def test_a_protector_stores_afresh_what_was_removed_from_the_vault(
    secret_service: object, cli: Cli, home: Home
) -> None:
    """The daemon's Protector remembers which content is in the vault; after ``vault rm`` in
    another process, the same content must be stored afresh and deleted, not refused."""
    cfg = config.load()
    protector = Protector(cfg, open_vault(cfg))
    data = payloads.publish_profile().data
    first = protector.protect(home.write("Downloads/a.PublishSettings", data))
    assert first.protected and first.item_id
    assert cli("vault", "rm", "--yes", first.item_id).code == 0
    assert vault_contents() == {}
    again = protector.protect(home.write("Downloads/b.PublishSettings", data))
    assert again.protected, again.error
    assert not again.already_in_vault and again.item_id != first.item_id
    assert vault_contents() == {sha(data): data}
    assert os.listdir(home.downloads) == []
