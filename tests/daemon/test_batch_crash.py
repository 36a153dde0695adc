"""The daemon's group commit killed at its steps (issue 16).

Credentials found in ~/Downloads by the start-up scan are all due at once, and protected as
one batch. The real daemon exits hard (``os._exit``, no clean-up, like a power cut) at a step of
that batch; a restarted daemon recovers and finishes: each credential exactly once in the vault, no
plaintext and no half-deleted temporary name left, no journal entry, and every file audited —
``protected`` by the batch, or ``recovered`` by the restart when the crash came after its
deletion and before its record (a record is never lost: the batch's records are written before
its journal entries are forgotten).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, wait_for
from helpers.home import Home, sha, vault_shas
from helpers.secret_service import SecretService

from credguard import paths

pytestmark = pytest.mark.timeout(180)
# (step, which time it is reached): per-batch steps once; per-file steps mid-batch
STEPS = [("after-intent", 1), ("after-item-write", 1), ("after-verify", 1),
         ("mid-overwrite", 3), ("after-rename", 2), ("after-unlink", 4), ("after-done", 1)]
BURST = 6


@pytest.mark.parametrize(("step", "nth"), STEPS, ids=[s for s, _ in STEPS])
def test_a_daemon_killed_at_a_step_of_a_batch_loses_nothing(
        secret_service: SecretService, home: Home, tmp_path: Path, step: str,
        nth: int) -> None:
    env = dict(os.environ)
    datas = {f"b{i}.PublishSettings": payloads.publish_profile().data for i in range(BURST)}
    for name, data in datas.items():
        home.write(f"Downloads/{name}", data)
    crashing = DaemonProcess({**env, "CREDGUARD_TEST_CRASH_AT": f"{step}:{nth}"},
                             tmp_path / "d1.log").start(wait=False)
    assert crashing.proc is not None and crashing.proc.wait(60) == 99, crashing.stderr()
    crashing.stop()
    if step == "after-intent":  # one batch: every intent journaled before anything is vaulted
        assert len(list((paths.user_state_dir() / "journal").glob("*.json"))) == BURST
    restarted = DaemonProcess(env, tmp_path / "d2.log").start()
    try:
        wait_for(lambda: not any(home.downloads.iterdir()), timeout=60, every=0.2)
        assert vault_shas(env) == sorted(sha(d) for d in datas.values())
        assert not list((paths.user_state_dir() / "journal").glob("*.json"))
        events = audit_events(home.root / ".local" / "state")
        for name in datas:
            where = str(home.downloads / name)
            told = [e["event"] for e in events
                    if e.get("path") == where and e["event"] in ("protected", "recovered")]
            assert told, (name, [e for e in events if e.get("path") == where])
    finally:
        assert restarted.stop() == 0
