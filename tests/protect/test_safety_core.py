"""The protect transaction's refusals and failures (issue 17): a file it must not take is
refused before anything is vaulted, and a step that fails keeps the source and says so.

Each test checks the vault as well as the file: the old refusal tests only looked at the
reason and at the file, so a refusal that came too late (after the vault copy was written)
went unnoticed. The planted bugs these tests catch are listed in ``docs/mutation.md``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.attacker import other_user, shared_sticky_dir
from helpers.crashes import entries, stopped_protect
from helpers.home import Home, Run
from helpers.schemas import validate
from helpers.secret_service import SecretService
from helpers.vaulted import (
    assert_no_journal_entry,
    assert_vault_holds,
    item_files,
    same_bytes,
)

from credguard.errors import ExitCode

pytestmark = pytest.mark.timeout(120)
Cli = Callable[..., Run]


def protect_json(cli: Cli, path: Path) -> tuple[int, dict[str, object]]:
    run = cli("protect", "--json", str(path))
    [result] = validate(run.out, "protect")["results"]
    assert result["id"] == result["item_id"]  # item_id: the deprecated alias, for one version
    return run.code, result


def assert_refused_untouched(code: int, result: dict[str, object], reason: str, path: Path,
                             data: bytes) -> None:
    """Refused for ``reason`` before the transaction began: the file as it was, nothing in the
    vault (not even an item file that no longer decrypts), no journal entry."""
    assert code == ExitCode.INPUT, result
    assert result["reason"] == reason and result["protected"] is False, result
    assert result["item_id"] is None, "refused only after a vault item was chosen"
    assert same_bytes(path, data), "the refused file was changed"
    assert_vault_holds()
    assert_no_journal_entry()


# -- planted bugs (a) and (b): the refusals come before anything is vaulted ------------------


def test_a_hard_linked_file_is_refused_before_anything_is_vaulted(
    secret_service: object, cli: Cli, home: Home
) -> None:
    """Planted bug (a): without the transaction's hard-link check, the file would be vaulted
    and only the deletion would refuse it (a copy in the vault of a file the user still has
    under another name, which protect reports as refused)."""
    data = payloads.publish_profile().data
    path = home.write("Downloads/contoso.PublishSettings", data)
    link = home.documents / "kept.PublishSettings"
    os.link(path, link)
    code, result = protect_json(cli, path)
    assert_refused_untouched(code, result, "hard-links", path, data)
    assert path.stat().st_nlink == 2 and same_bytes(link, data)


def test_another_users_file_is_refused_before_anything_is_vaulted(
    secret_service: object, cli: Cli
) -> None:
    """Planted bug (b): a real second user saves a credential in a shared sticky directory
    (like ``/tmp``); protecting it must not copy another user's file into our vault."""
    data = payloads.publish_profile().data
    with other_user() as user, shared_sticky_dir() as shared:
        path = shared / "contoso.PublishSettings"
        made = user.run("import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read())",
                        str(path), stdin=data)
        assert made.returncode == 0, made.stderr.decode()
        assert path.stat().st_uid == user.uid != os.getuid()
        code, result = protect_json(cli, path)
        assert_refused_untouched(code, result, "other-owner", path, data)
        assert path.stat().st_uid == user.uid


# -- every other refusal before the transaction stores nothing either ------------------------


@pytest.mark.parametrize("case", ["malformed", "hostile-xml", "not-credential", "symlink",
                                  "fifo", "symlinked-parent", "too-large", "other-filesystem"])
def test_a_refused_file_leaves_the_vault_empty(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path, case: str
) -> None:
    """A malformed credential (a publish profile cut short), hostile XML, a file that is no
    credential, a symlink, a FIFO, a symlinked directory on the way, a file over the size cap,
    a file of another file system bind-mounted onto a name in Downloads: each is refused with
    its own reason, left as it was, and nothing reaches the vault."""
    data = payloads.publish_profile().data
    reason = {"hostile-xml": "malformed", "fifo": "not-regular", "symlinked-parent": "symlink",
              "other-filesystem": "other-filesystem"}.get(case, case)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    mounts: list[Path] = []
    if case == "malformed":
        data = data[: len(data) // 2]
    elif case == "hostile-xml":
        data = payloads.billion_laughs()
    elif case == "not-credential":
        data = b"<publishData>just notes</publishData>\n"
    elif case == "too-large":
        home.config_file.parent.mkdir(parents=True, exist_ok=True)
        home.config_file.write_text(f"[scan]\nmax_file_size = {len(data) - 1}\n")
    name = "notes.txt" if case == "not-credential" else "contoso.PublishSettings"
    path = home.downloads / name
    checked = path
    if case == "symlink":
        checked = elsewhere / name
        checked.write_bytes(data)
        path.symlink_to(checked)
    elif case == "fifo":
        os.mkfifo(path)
    elif case == "symlinked-parent":
        (elsewhere / name).write_bytes(data)
        (home.downloads / "link").symlink_to(elsewhere)
        path = checked = home.downloads / "link" / name
    elif case == "other-filesystem":  # a tmpfs file bind-mounted onto the name
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "cg-other", str(elsewhere)],
                       check=True)
        mounts.append(elsewhere)
        (elsewhere / name).write_bytes(data)
        path.touch()
        subprocess.run(["mount", "--bind", str(elsewhere / name), str(path)], check=True)
        mounts.insert(0, path)
        assert path.stat().st_dev != home.downloads.stat().st_dev
    else:
        path.write_bytes(data)
    try:
        code, result = protect_json(cli, path)
        if case == "fifo":
            assert code == ExitCode.INPUT and result["reason"] == reason, result
            assert path.is_fifo()
            assert_vault_holds()
            assert_no_journal_entry()
        else:
            assert_refused_untouched(code, result, reason, checked, data)
        if case == "not-credential":
            assert result["error"] == "not a detected credential", result
    finally:
        for mount in mounts:
            subprocess.run(["umount", "-l", str(mount)], check=False)


# -- planted bug (d): a deletion that fails part-way is no protection ------------------------


@pytest.mark.parametrize(("syscall", "on", "nth", "stage"), [
    ("fsync", "file", 1, "overwrite failed (Input/output error); the file is still in place"),
    ("renameat", "dir", 1, "overwritten, but could not be renamed (Input/output error)"),
    ("unlinkat", "dir", 3, "overwritten and emptied, but could not be removed (Input/output "
                           "error); it is left as '.credguard-"),
], ids=["overwrite", "rename", "unlink"])
def test_a_deletion_that_fails_part_way_is_reported_not_protected(
    secret_service: object, home: Home, syscall: str, on: str, nth: int, stage: str
) -> None:
    """Planted bug (d): the real ``credguard protect`` gets EIO from the kernel (strace fault
    injection) after the overwrite began: while syncing the overwrite, renaming the file away,
    or unlinking it (the 3rd unlinkat in the directory: the first two remove the directory
    probe). It must say the file is not deleted and where it was left, not "protected"."""
    data = payloads.publish_profile().data + b" " * 9000
    path = home.write("Downloads/contoso.PublishSettings", data)
    target = path if on == "file" else home.downloads
    proc = subprocess.run(
        ["strace", "-f", "-qq", "-o", "/dev/null", "-P", str(target), "-e", f"trace={syscall}",
         "-e", f"inject={syscall}:error=EIO:when={nth}",
         sys.executable, "-m", "credguard", "protect", "--json", str(path)],
        capture_output=True, text=True, timeout=60, check=False)
    assert "internal error" not in proc.stderr, proc.stderr
    [result] = validate(proc.stdout, "protect")["results"]
    assert result["id"] == result["item_id"] and result["id"] is not None, result
    assert proc.returncode == ExitCode.INPUT, result
    assert result["protected"] is False and result["reason"] == "io-error", result
    deletion = result["deletion"]
    assert isinstance(deletion, dict) and deletion["deleted"] is False, result
    error = str(result["error"])
    assert error.startswith(stage) and error.endswith("; the vault copy is kept"), error
    left = sorted(os.listdir(home.downloads))
    if syscall == "unlinkat":  # renamed away and emptied: only the temporary name is left
        [temporary] = left
        assert temporary.startswith(".credguard-") and temporary in error
        assert (home.downloads / temporary).stat().st_size == 0
    else:  # still under its name, the overwrite begun: no longer the credential's bytes
        assert left == [path.name] and not same_bytes(path, data)
    assert_vault_holds(data)
    assert_no_journal_entry()


# -- the keyring dies mid-transaction ---------------------------------------------------------


def test_a_keyring_killed_between_intent_and_vault_copy_keeps_the_source(
    killable_secret_service: SecretService, home: Home
) -> None:
    """The real ``credguard protect`` is stopped right after journaling its intent (its
    keystore already opened), the keyring daemon is SIGKILLed, and the command resumes: it
    cannot make the vault key, so it fails with the keyring error (exit 5: the daemon goes on
    in alert-only mode on this error, never on a vault refusal), keeps the source, leaves no
    journal entry and nothing in the vault. With the keyring back, the same file is
    protected."""
    service = killable_secret_service
    data = payloads.publish_profile().data
    path = home.write("Downloads/contoso.PublishSettings", data)
    proc = stopped_protect(path, "after-intent", service.env)
    try:
        assert [e.state for e in entries()] == ["intent"]
        service.kill()
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # a failed check: end it, and close its pipes
            proc.kill()
            proc.communicate()
    assert proc.returncode == ExitCode.KEYSTORE, (out, err)
    assert "keyring" in err and "internal error" not in err, err
    assert same_bytes(path, data)
    assert_no_journal_entry()
    assert item_files() == []
    service.start_daemon()
    assert_vault_holds()
    again = subprocess.run([sys.executable, "-m", "credguard", "protect", str(path)],
                           capture_output=True, text=True, timeout=60, env=service.env,
                           check=False)
    assert again.returncode == 0 and not path.exists(), again.stderr
    assert_vault_holds(data)


# -- intake: found by mutation testing (docs/mutation.md) ------------------------------------


def test_read_in_reads_the_name_in_the_walked_directory_not_the_path(
    home: Home, tmp_path: Path
) -> None:
    """The path only names the file: the bytes come from the directory the walk opened. A
    read by the whole path would follow whatever the path's directories are by then (a
    directory swapped for a link after the walk)."""
    from credguard.fs import read
    from credguard.protect.intake import read_in

    walked, swapped = tmp_path / "walked", tmp_path / "swapped"
    walked.mkdir()
    swapped.mkdir()
    ours = payloads.publish_profile(app="ours").data
    (walked / "x.PublishSettings").write_bytes(ours)
    (swapped / "x.PublishSettings").write_bytes(payloads.publish_profile(app="theirs").data)
    dir_fd = read.open_dir(walked)
    try:
        got = read_in(dir_fd, swapped / "x.PublishSettings", 1 << 20)
    finally:
        os.close(dir_fd)
    assert got.record.data == ours


def test_import_names_what_it_could_not_do(secret_service: object, cli: Cli, home: Home) -> None:
    """Exact messages: an unknown --force kind lists the kinds; an unreadable file says why."""
    from credguard.detect.kinds import KINDS

    path = home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)
    run = cli("import", "--force", "bogus", str(path))
    assert run.code != 0
    assert f"unknown kind 'bogus'; kinds: {', '.join(KINDS)}" in run.err
    fifo = home.downloads / "b.PublishSettings"
    os.mkfifo(fifo)
    run = cli("import", str(fifo))
    assert run.code != 0
    assert f"{fifo}: not read (not-regular: " in run.err


def test_import_copy_vaults_once_per_content_and_leaves_the_file(
    secret_service: object, home: Home, tmp_path: Path
) -> None:
    """The daemon's ``import`` action: a copy in the vault, the file untouched; the same content
    again gives the same item; a walk from the root never passes a link; a non-credential and
    a FIFO are InputErrors naming why."""
    from credguard import config
    from credguard.errors import InputError
    from credguard.protect.transaction import Protector
    from credguard.vault.access import open_vault

    cfg = config.load()
    protector = Protector(cfg, open_vault(cfg))
    data = payloads.publish_profile().data
    path = home.write("Downloads/sub/a.PublishSettings", data)
    item = protector.import_copy(path, home.downloads)
    assert path.read_bytes() == data
    again = home.write("Downloads/b.PublishSettings", data)
    assert Protector(cfg, open_vault(cfg)).import_copy(again) == item
    assert_vault_holds(data)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "c.PublishSettings").write_bytes(payloads.publish_profile(app="c").data)
    (home.downloads / "link").symlink_to(elsewhere)
    with pytest.raises(InputError) as info:
        protector.import_copy(home.downloads / "link" / "c.PublishSettings", home.downloads)
    assert info.value.message.startswith(
        f"{home.downloads / 'link' / 'c.PublishSettings'}: not imported (symlink: ")
    notes = home.write("Downloads/notes.txt", "just notes")
    with pytest.raises(InputError, match=r"notes.txt: not imported \(not-credential: "):
        protector.import_copy(notes)
    assert_vault_holds(data)


# -- the vault's state file: durable before anything relies on it ----------------------------


def test_a_vault_state_whose_directory_sync_fails_keeps_the_source(
    secret_service: object, home: Home
) -> None:
    """The first protect of a new vault writes ``vault.json`` (naming its new key) and syncs
    the vault directory; the real ``credguard protect`` gets EIO from that sync (strace fault
    injection). The rename may not be durable, so nothing may rely on it: the command fails
    with the state error, keeps the source, and writes no item. (A non-strict sync would
    ignore the error and go on to vault the file and delete the source.)"""
    from credguard import paths

    data = payloads.publish_profile().data
    path = home.write("Downloads/contoso.PublishSettings", data)
    vault = paths.vault_dir()
    assert not vault.exists()
    proc = subprocess.run(
        ["strace", "-f", "-qq", "-o", "/dev/null", "-P", str(vault), "-e", "trace=fsync",
         "-e", "inject=fsync:error=EIO:when=1",
         sys.executable, "-m", "credguard", "protect", "--json", str(path)],
        capture_output=True, text=True, timeout=60, check=False)
    assert "internal error" not in proc.stderr, proc.stderr
    [result] = json.loads(proc.stdout)["results"]
    assert proc.returncode == ExitCode.STATE, (proc.returncode, result)
    assert result["protected"] is False, result
    assert "save the state of" in str(result["error"]), result
    assert "Input/output error" in str(result["error"]), result
    assert same_bytes(path, data)
    assert item_files() == []
    assert_no_journal_entry()
