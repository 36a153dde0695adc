"""Property (issue 12): whatever crash, in-place rewrite, rename or symlink swap happens around a
protect transaction and its recovery, every credential byte-string that existed under the root
is afterwards still on disk (beneath the root, or wherever the user moved it) or in the vault
(decrypted and compared), and nothing outside the root changed: not by the transaction, and
not by recovery, even when the user moved the file's directory out of the root and left a
symlink to it in its place.

How a crash is made. The transaction runs in a child forked from the test process (imports and
the vault key are already there: an example costs milliseconds, not an interpreter start), and
the crash is ``os._exit(99)`` in that child: at a step of the transaction, or inside one of its
overwrite writes once some blocks of it are written (a torn write, as a SIGKILL part-way through
a ``pwrite`` leaves). Raising an exception in-process instead would run every ``except`` and
``finally`` on the way out — the transaction forgets its journal entry on an exception before
the overwrite, for one — so recovery would be tested against a state no real crash leaves, and
a cleanup handler could hide a bug. ``os._exit`` runs none of them, and the kernel releases the
transaction's journal lock as it does for a killed process.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.tamper import BLOCK, HOME, IN_PLACE, TARGETS, Op, World, credential, disk_shas, tree
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from credguard import config
from credguard.config import Config
from credguard.protect import journal
from credguard.protect.recovery import Recovery
from credguard.protect.transaction import Protector
from credguard.vault.access import open_vault
from credguard.vault.format import Record
from credguard.vault.store import Vault

pytestmark = pytest.mark.timeout(300)
STEPS = ("after-intent", "after-item-write", "after-verify", "before-overwrite",
         "mid-overwrite", "after-overwrite", "after-rename", "after-truncate", "after-unlink",
         "after-done")
# An in-place write here, by a process that goes on, is overwritten by design: nothing can
# stop a write that lands between the last content check and the overwrite. With a crash at
# that very step, it comes after the crash, and recovery must keep it.
WINDOW = frozenset({"before-overwrite", "mid-overwrite", "after-overwrite"})
Send = Callable[[str, str], None]


@dataclass(frozen=True)
class Crash:
    """Where a child dies: at ``step``, or in its ``write``-th overwrite write (counting from
    1) once ``blocks`` 4 KiB blocks of it are written."""

    step: str = ""
    write: int = 0
    blocks: int = 0


@dataclass(frozen=True)
class Scenario:
    """One example. Only ``after`` may move the directory out of the root: a transaction that
    goes on deletes in the directory it opened, wherever that is moved meanwhile."""

    seed: int  # the credential's content
    pad: int  # bytes of padding: from one to six 4 KiB blocks in all
    passes: int
    crash: Crash | None
    during: tuple[tuple[str, Op], ...]  # done at a step of the transaction, by another process
    after: tuple[Op, ...]  # done after the transaction ended or crashed, before recovery
    recovery_crash: Crash | None  # recovery crashes too, before a last one runs


KINDS = ("rewrite", "patch", "replace", "rename", "swap", "restore")


def ops(*more: str) -> st.SearchStrategy[Op]:
    return st.builds(Op, kind=st.sampled_from(KINDS + more), seed=st.integers(0, 10**6),
                     same=st.booleans(), target=st.sampled_from(TARGETS))


def torn(writes: int) -> st.SearchStrategy[Crash]:
    return st.builds(Crash, write=st.integers(1, writes), blocks=st.integers(0, 6))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    passes = draw(st.integers(1, 3))
    crash = draw(st.none() | st.builds(Crash, step=st.sampled_from(STEPS)) | torn(passes))
    during = draw(st.lists(st.tuples(st.sampled_from(STEPS), ops()), max_size=3))
    kept = tuple((at, op) for at, op in during if not (
        op.kind in IN_PLACE and at in WINDOW and (crash is None or crash.step != at)))
    return Scenario(draw(st.integers(0, 10**6)), draw(st.integers(0, 5 * BLOCK)), passes, crash,
                    kept, tuple(draw(st.lists(ops("rewrite", "patch", "evict"), max_size=3))),
                    draw(st.none() | torn(passes)))


def in_child(body: Callable[[Send], None]) -> tuple[int, dict[str, str]]:
    """Run ``body(send)`` in a forked child: its exit code and the last line it sent under each
    tag. An exception in the child is a bug: it exits 3, its traceback on stderr."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        code = 0
        try:
            os.close(read)
            body(lambda tag, line: _send(write, tag, line))
        except BaseException:
            traceback.print_exc()
            code = 3
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        lines = pipe.read().decode().splitlines()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), dict(line.split(" ", 1) for line in lines)


def _send(fd: int, tag: str, line: str) -> None:
    os.write(fd, f"{tag} {line}\n".encode())


def tear_writes(crash: Crash) -> None:
    """In a child: die in the ``crash.write``-th ``os.pwrite`` (the overwrite's only writer)
    after ``crash.blocks`` blocks of it."""
    real, count = os.pwrite, [0]

    def pwrite(fd: int, data: bytes, offset: int) -> int:
        count[0] += 1
        if count[0] == crash.write:
            if crash.blocks:
                real(fd, data[:crash.blocks * BLOCK], offset)
            os._exit(99)
        return real(fd, data, offset)

    setattr(os, "pwrite", pwrite)  # noqa: B010 - the child's own os module, on purpose


def transact(world: World, s: Scenario, cfg: Config, vault: Vault) -> Callable[[Send], None]:
    """The body of the transaction's child: protect the file, with the scenario's crash and
    the other process's doings at the steps it names."""
    def body(send: Send) -> None:
        def step(label: str) -> None:
            for at, op in s.during:
                if at == label:
                    world.apply(op)
                    send("world", world.to_json())
            if s.crash is not None and s.crash.step == label:
                os._exit(99)

        if s.crash is not None and s.crash.write:
            tear_writes(s.crash)
        outcome = Protector(cfg, vault, step=step).protect(world.file, world.root)
        send("outcome", json.dumps({"protected": outcome.protected}))
    return body


def recover(cfg: Config, vault: Vault, crash: Crash | None) -> None:
    """Recovery, first crashing part-way through (in a child) if the scenario says so."""
    if crash is not None:
        def body(_send: Send) -> None:
            tear_writes(crash)
            Recovery(cfg, vault).run()
        code, _ = in_child(body)
        assert code in (0, 99), "recovery failed with an exception (see stderr)"
    for note in Recovery(cfg, vault).run():  # what recovery did: --hypothesis-show-statistics
        event("recovery: " + note.split(": ", 1)[1].split(" (")[0])
    assert journal.pending() == [], "recovery left a journal entry"
    assert not list(journal.journal_dir().glob("*.damaged"))


def vaulted(vault: Vault) -> set[str]:
    """The sha256 of every item's decrypted bytes."""
    return {hashlib.sha256(r.data).hexdigest() for _, r in vault.records()
            if isinstance(r, Record)}


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(s=scenarios())
def test_no_credential_is_ever_lost(secret_service: object, tmp_path: Path, s: Scenario) -> None:
    """Protect (crashing, tampered with), tamper, recover (maybe crashing first): no content
    lost, nothing outside the root changed, no journal entry left; untouched, all done."""
    cfg = config.load({"protect.passes": s.passes})
    vault = open_vault(cfg)
    for item in vault.ids():  # each example starts from an empty vault and journal
        vault.remove(item)
    shutil.rmtree(journal.journal_dir(), ignore_errors=True)
    base = tmp_path / "example"
    shutil.rmtree(base, ignore_errors=True)
    data = credential(s.seed, len(credential(0)) + s.pad)
    world = World.create(base, data)
    outside = tree(world.outside)
    code, sent = in_child(transact(world, s, cfg, vault))
    assert code in (0, 99), "the transaction failed with an exception (see stderr)"
    event(f"transaction: {'crashed' if code else json.loads(sent['outcome'])}")
    touched = "world" in sent
    if not touched:  # every crash point is on the path of an undisturbed transaction
        assert code == (0 if s.crash is None else 99), "a crash point was never reached"
    world = World.from_json(sent["world"]) if touched else world
    if code == 0:  # it ended, protected or refused: it must have forgotten its entry
        assert journal.pending() == [], "a transaction that ended left its journal entry"
        assert touched or json.loads(sent["outcome"])["protected"], "an untouched file is protected"
    assert tree(world.outside) == outside, "the transaction changed something outside the root"
    for op in s.after:
        world.apply(op)
    outside = tree(world.outside)  # as the user left it
    recover(cfg, vault, s.recovery_crash)

    assert tree(world.outside) == outside, "recovery changed something outside the root"
    present = disk_shas(world.root) | disk_shas(world.outside) | vaulted(vault)
    lost = [h for h, ours in world.contents.items() if ours and h not in present]
    assert not lost, f"{len(lost)} credential(s) neither on disk nor in the vault"
    if not touched and not s.after:  # nothing interfered: all is done, nothing left over
        assert os.listdir(world.base / HOME) == []
        assert hashlib.sha256(data).hexdigest() in vaulted(vault)
