"""Group commit (issue 16): several files protected as one batch keep every guarantee of a
transaction of their own — intent and vault copy durable and verified before the first byte is
overwritten, nothing lost and nothing left at a crash at any step — while a batch syncs the
journal, the vault and each directory once per stage instead of once per file.

Real files, a real gnome-keyring, real processes killed at each step; strace counts the fsyncs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import Home, run_subprocess, sha, vault_shas

from credguard import config, paths
from credguard.cli.protect_cmd import batches
from credguard.protect import journal
from credguard.protect.transaction import BATCH, Protector
from credguard.vault.access import open_vault

pytestmark = pytest.mark.timeout(300)

# (step, which time it is reached) for a batch of three: per-batch steps once, per-file steps
# the second time, so the first file is past it and the third not there yet
BATCH_STEPS = [
    ("after-intent", 1), ("after-item-write", 1), ("after-verify", 1),
    ("before-overwrite", 2), ("mid-overwrite", 2), ("after-overwrite", 2),
    ("after-rename", 2), ("after-truncate", 2), ("after-unlink", 2), ("after-done", 1),
]


def protector() -> Protector:
    cfg = config.load()
    return Protector(cfg, open_vault(cfg), step=lambda label: None)


def journal_names() -> list[str]:
    folder = paths.user_state_dir() / "journal"
    return sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []


def three(home: Home) -> dict[Path, bytes]:
    """Three credentials in two folders, one large enough for several overwrite chunks."""
    datas = [payloads.publish_profile().data + b" " * 200_000,
             payloads.publish_profile().data, payloads.publishsettings_v2().data]
    names = ["Downloads/a.PublishSettings", "Downloads/b.PublishSettings",
             "Desktop/c.publishsettings"]
    return {home.write(name, data): data for name, data in zip(names, datas, strict=True)}


def test_a_batch_protects_each_file_and_forgets_its_entries_only_after_the_caller(
        secret_service: object, home: Home) -> None:
    files = three(home)
    with protector().protect_batch([(p, None) for p in files]) as outcomes:
        assert [o.protected for o in outcomes] == [True, True, True]
        assert not any(p.exists() for p in files)
        # what the caller records here (the daemon's audit records) is on disk before the
        # journal forgets: a crash now leaves recovery to finish and report every file
        left = [journal.read(journal.journal_dir() / n) for n in journal_names()]
        assert sorted(e.state for e in left) == ["deleting"] * 3
        assert {e.path for e in left} == {str(p) for p in files}
    assert journal_names() == []
    assert sorted({o.item_id for o in outcomes}) == sorted(o.item_id for o in outcomes)
    assert vault_shas(dict(os.environ)) == sorted(sha(d) for d in files.values())


def test_the_same_content_twice_in_a_batch_is_one_vault_item(secret_service: object,
                                                               home: Home) -> None:
    data = payloads.publish_profile().data
    first, second = home.write("Downloads/a.PublishSettings", data), \
        home.write("Desktop/a copy.PublishSettings", data)
    with protector().protect_batch([(first, None), (second, None)]) as (one, two):
        pass
    assert one.protected and two.protected
    assert one.item_id == two.item_id and not one.already_in_vault and two.already_in_vault
    assert not first.exists() and not second.exists()
    assert vault_shas(dict(os.environ)) == [sha(data)]


def test_a_refused_file_in_a_batch_stops_only_itself(secret_service: object,
                                                     home: Home) -> None:
    files = three(home)
    link = home.downloads / "link.PublishSettings"
    link.symlink_to(next(iter(files)))
    fifo = home.downloads / "fifo.PublishSettings"
    os.mkfifo(fifo)
    requests = [(link, None), *((p, None) for p in files), (fifo, None),
                (home.downloads / "gone.PublishSettings", None)]
    with protector().protect_batch(requests) as outcomes:
        pass
    assert [o.protected for o in outcomes] == [False, True, True, True, False, False]
    assert [o.reason for o in outcomes if not o.protected] == ["symlink", "not-regular",
                                                                "not-found"]
    assert link.is_symlink() and fifo.exists()
    assert journal_names() == []
    assert vault_shas(dict(os.environ)) == sorted(sha(d) for d in files.values())


def test_a_file_changed_after_its_vault_copy_is_kept_and_the_others_go(
        secret_service: object, home: Home) -> None:
    """The content check before the overwrite is per file: one changed in the batch's window
    (between the vault copies and the deletions) is kept, and its vault copy too."""
    files = three(home)
    changed, new = next(iter(files)), b"the user's own edit, not what was vaulted\n"
    prot = protector()

    def edit(label: str) -> None:
        if label == "after-verify":
            with open(changed, "r+b") as f:  # same inode, same size and mtime given back
                st = os.fstat(f.fileno())
                f.write(new)
            os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns))

    prot.step = edit
    with prot.protect_batch([(p, None) for p in files]) as outcomes:
        pass
    assert [o.protected for o in outcomes] == [False, True, True]
    assert outcomes[0].reason == "content" and outcomes[0].item_id
    assert changed.read_bytes().startswith(new)
    assert journal_names() == []


@pytest.mark.parametrize(("step", "nth"), BATCH_STEPS, ids=[s for s, _ in BATCH_STEPS])
def test_a_hard_exit_at_every_step_of_a_batch(secret_service: object, home: Home, step: str,
                                              nth: int) -> None:
    files = three(home)
    env = dict(os.environ)
    crashed = run_subprocess("protect", *map(str, files),
                             env={**env, "CREDGUARD_TEST_CRASH_AT": f"{step}:{nth}"})
    assert crashed.code == 99, (step, crashed.err)
    assert vault_shas(env) == sorted(sha(d) for d in files.values()), "each once in the vault"
    for folder in (home.downloads, home.root / "Desktop"):
        assert os.listdir(folder) == [], "no plaintext leftover, no half-deleted random name"
    assert journal_names() == []


def test_the_command_protects_in_groups_and_a_repeated_path_meets_what_the_first_left(
        secret_service: object, home: Home) -> None:
    assert [len(b) for b in batches([f"f{i}" for i in range(BATCH * 2 + 1)])] == \
        [BATCH, BATCH, 1]
    assert batches(["a", "b", "./a", "c"]) == [["a", "b"], ["./a", "c"]]
    path = home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)
    run = run_subprocess("protect", "--json", str(path), str(path), env=dict(os.environ))
    results = __import__("json").loads(run.out)["results"]
    assert [r["protected"] for r in results] == [True, False]
    assert results[1]["reason"] == "not-found"


def test_a_batch_syncs_far_less_than_a_transaction_per_file(secret_service: object,
                                                            home: Home, tmp_path: Path) -> None:
    """strace (``-y``: each descriptor's path) counts the fsyncs of one ``credguard protect`` of
    8 files: a transaction per file made 11 each (88). The group commit syncs each file once
    for each journal state it writes (intent, deleting), its vault item, its overwrite and its
    truncation; each directory once per stage."""
    files = [home.write(f"Downloads/p{i}.PublishSettings", payloads.publish_profile().data)
             for i in range(8)]
    trace = tmp_path / "trace"
    proc = subprocess.run(["strace", "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o",
                           str(trace), sys.executable, "-m", "credguard", "protect",
                           *map(str, files)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    synced = [m[1] for m in re.finditer(r"fsync\(\d+<([^>]*)>\) = 0", trace.read_text())]
    state, vault = paths.user_state_dir() / "journal", paths.vault_dir()

    def count(pattern: str) -> int:
        return sum(bool(re.fullmatch(pattern, p)) for p in synced)

    assert count(re.escape(str(state)) + r"/\.[0-9a-f]{16}\.json\.[0-9a-f]+\.tmp") == 16
    assert count(re.escape(str(state))) == 3  # intents, deletings, forgetting
    assert count(re.escape(str(vault)) + r"/\.[0-9a-f]+\.cgv\.[0-9a-f]+\.tmp") == 8
    assert count(re.escape(str(home.downloads)) + r"/p\d\.PublishSettings") == 8  # overwrite
    assert count(re.escape(str(home.downloads)) + r"/\.credguard-[0-9a-f]+") == 8  # truncation
    assert count(re.escape(str(home.downloads))) == 2  # renames, unlinks
    assert len(synced) <= 5 * 8 + 3 + 2 + 3, synced  # the vault dir, vault.json: a few more
