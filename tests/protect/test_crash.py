"""Crash safety: a hard exit at every step of the protect transaction, and SIGKILL at random
moments, followed by recovery — zero lost and zero leftover credentials every time."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import Home, run_subprocess, sha, vault_shas

from credguard import paths

pytestmark = pytest.mark.timeout(300)

STEPS = [
    "after-intent",
    "after-item-write",
    "after-verify",
    "after-targets",
    "before-overwrite",
    "mid-overwrite",
    "after-overwrite",
    "after-rename",
    "after-truncate",
    "after-unlink",
    "after-done",
]


def assert_clean(directory: Path, expected: list[str], env: dict[str, str]) -> None:
    shas = vault_shas(env)
    assert shas == sorted(expected), "each credential exactly once in the vault"
    assert os.listdir(directory) == [], "no plaintext leftover, no half-deleted random name"
    assert not list((paths.user_state_dir() / "journal").glob("*.json"))


@pytest.mark.parametrize("step", STEPS)
def test_hard_exit_at_every_step(
    secret_service: object, home: Home, step: str, tmp_path: Path
) -> None:
    env = dict(os.environ)
    if step == "after-targets":  # only reached when an import target is configured
        home.config_file.parent.mkdir(parents=True, exist_ok=True)
        home.config_file.write_text('[[targets]]\nname = "ok"\ncommand = ["true"]\n')
    data = payloads.publish_profile().data + b" " * 200_000  # several overwrite chunks
    path = home.write("Downloads/a.PublishSettings", data)
    crashed = run_subprocess("protect", str(path), env={**env, "CREDGUARD_TEST_CRASH_AT": step})
    assert crashed.code == 99, (step, crashed.err)
    assert_clean(home.downloads, [sha(data)], env)


@pytest.mark.slow
def test_sigkill_at_random_moments(secret_service: object, home: Home) -> None:
    work = home.downloads / "batch"
    datas = [payloads.publish_profile().data for _ in range(40)]
    for i, data in enumerate(datas):
        home.write(f"Downloads/batch/p{i:02}.PublishSettings", data)
    env = dict(os.environ)
    rng = random.Random(2026)
    for _ in range(4):
        remaining = sorted(str(p) for p in work.iterdir() if not p.name.startswith("."))
        if not remaining:
            break
        proc = subprocess.Popen(
            [sys.executable, "-m", "credguard", "protect", *remaining],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        time.sleep(rng.uniform(0.15, 0.6))
        proc.kill()
        proc.wait(timeout=30)
        vault_shas(env)  # recovery
    remaining = sorted(str(p) for p in work.iterdir())
    if remaining:
        finish = run_subprocess("protect", *remaining, env=env, timeout=120)
        assert finish.code == 0, finish.out
    assert_clean(work, [sha(d) for d in datas], env)


def test_the_journal_is_where_the_readme_says(home: Home) -> None:
    """~/.local/state/credguard/journal/ (README, protect step 2): tests that check "no entry is
    left" look there, so a journal elsewhere would make them pass without looking."""
    from credguard.protect import journal

    assert journal.journal_dir() == home.root / ".local" / "state" / "credguard" / "journal"


def test_a_deletion_is_seeded_with_128_random_bits() -> None:
    """Recovery recognises the overwrite bytes by their seed; a journal entry with a seed of
    another length is damaged (and set aside), so the seed's length is part of the format."""
    from credguard.protect import journal

    seeds = {journal.new_seed() for _ in range(64)}
    assert len(seeds) == 64
    assert all(len(s) == 32 and bytes.fromhex(s) for s in seeds)
