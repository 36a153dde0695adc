"""Attacks on the real daemon: a watched folder swapped for a symlink, another user's directory
swaps in a shared root. The daemon acts only on what it can walk from a root; whatever else an
event names is reported, never touched."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import payloads
from helpers.attacker import EXCHANGE_LOOP, other_user, shared_sticky_dir
from helpers.daemon import DaemonProcess, audit_events, running_daemon, wait_for
from helpers.home import Home, run_subprocess
from helpers.secret_service import SecretService

pytestmark = pytest.mark.timeout(180)


def state_home(home: Home) -> Path:
    return home.root / ".local" / "state"


@pytest.fixture
def daemon(secret_service: SecretService, home: Home, tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


def swap_folder_for_link(home: Home, target: Path) -> Path:
    """The reproduction: rename a folder in Downloads d->e->d a few times, then d->e, move e
    out, and put a symlink to ``target`` where it was."""
    d, e = home.downloads / "d", home.downloads / "e"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "notes.txt").write_text("nothing here\n")
    time.sleep(1.5)  # the watch on d/sub is in place
    for _ in range(5):
        d.rename(e)
        e.rename(d)
    d.rename(e)
    e.rename(home.root / "moved-out")
    e.symlink_to(target)
    return e


def refused(home: Home, reason: str) -> set[str]:
    """The paths the daemon reported it would not examine, for ``reason``."""
    return {e["path"] for e in audit_events(state_home(home))
            if e["event"] == "failed" and e.get("reason") == reason}


def name_through_the_link(daemon: DaemonProcess, paths: set[str]) -> None:
    """Also name the paths through the link to the daemon (``credguard scan PATH`` follows a
    named path's parents, so it finds them): the same work items as watchdog's synthetic
    events, whether or not the race above made them."""
    assert run_subprocess("scan", *sorted(paths), env=daemon.env).code == 1


def test_folder_replaced_by_a_symlink_outside_every_root(daemon: DaemonProcess,
                                                         home: Home) -> None:
    kept = {name: payloads.publishsettings_v2().data
            for name in ("prod.publishsettings", "other.PublishSettings")}
    for name, data in kept.items():
        home.write(f"keep/sub/{name}", data)
    link = swap_folder_for_link(home, home.root / "keep")
    wanted = {str(link / "sub" / name) for name in kept}
    name_through_the_link(daemon, wanted)
    wait_for(lambda: refused(home, "symlink") >= wanted, timeout=15)
    time.sleep(1)  # whatever else the moves queued
    for name, data in kept.items():
        assert (home.root / "keep" / "sub" / name).read_bytes() == data
    events = audit_events(state_home(home))
    assert not [e for e in events if e["event"] in ("protected", "detected")]
    assert refused(home, "symlink") == wanted  # once per path


def test_folder_replaced_by_a_symlink_to_home(daemon: DaemonProcess, home: Home) -> None:
    cache = payloads.msal_cache().data
    settings = payloads.publishsettings_v2().data
    home.write(".azure/msal_token_cache.json", cache)
    home.write("src/app/prod.publishsettings", settings)
    time.sleep(2)  # the live cache is examined (and found private already)
    link = swap_folder_for_link(home, home.root)
    wanted = {str(link / ".azure" / "msal_token_cache.json"),
              str(link / "src" / "app" / "prod.publishsettings")}
    name_through_the_link(daemon, wanted)
    wait_for(lambda: refused(home, "symlink") >= wanted, timeout=15)
    time.sleep(1)
    assert (home.azure / "msal_token_cache.json").read_bytes() == cache
    assert (home.root / "src" / "app" / "prod.publishsettings").read_bytes() == settings
    events = audit_events(state_home(home))
    assert not [e for e in events if e["event"] == "protected"]
    below = str(link) + os.sep
    assert not [e for e in events if str(e.get("path", "")).startswith(below)
                and e["event"] != "failed"]


def test_another_user_cannot_steer_a_deletion(secret_service: SecretService, home: Home,
                                              tmp_path: Path) -> None:
    """A shared sticky extra root that protects everything (close to the README's example):
    another user swaps its own directory with a symlink to the victim's home, over and over,
    while rewriting a decoy of the victim's file in it."""
    data, decoy = payloads.publishsettings_v2().data, payloads.publishsettings_v2().data
    victim = home.write("projects/contoso/contoso.publishsettings", data)
    with shared_sticky_dir() as shared, other_user() as attacker:
        home.config_file.parent.mkdir(parents=True, exist_ok=True)
        home.config_file.write_text(f'[scan]\nextra_roots = ["{shared}"]\n\n'
                                    '[policy]\nazure-publishsettings = "protect"\n')
        daemon = DaemonProcess(dict(os.environ), tmp_path / "d.log").start()
        try:
            # protecting, so that a deletion would be attempted: a keyring slow to answer
            # under load leaves a daemon alert-only at first, which refuses nothing (it
            # deletes nothing either), and the keystore retrier brings it back
            wait_for(lambda: (daemon.status() or {}).get("mode") == "protecting", timeout=30)
            run = attacker.run(EXCHANGE_LOOP, str(shared / "a"), str(home.root), "5",
                               stdin=decoy)
            assert run.returncode == 0, run.stderr.decode()
            assert int(run.stdout) > 100  # swaps made

            def refusals() -> set[str]:
                return {e["reason"] for e in audit_events(state_home(home))
                        if e["event"] == "failed"
                        and str(e.get("path", "")).startswith(f"{shared}{os.sep}")}

            # the worker drains what the swaps queued (each swap put the path back by the
            # settle time); a queue overflow becomes a rescan, whose finding is refused too
            deadline = time.monotonic() + 30
            while not refusals() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)  # and whatever came after the first refusal
            assert victim.read_bytes() == data
            events = audit_events(state_home(home))
            assert not [e for e in events if e["event"] == "protected"]
            # refused at the attacker's directory: unsafe, or a link (or, mid-swap, no longer
            # a directory); never for another reason, and reported
            assert refusals(), (daemon.status(), [e["event"] for e in events])
            assert refusals() <= {"unsafe-directory", "symlink", "not-regular"}
        finally:
            daemon.stop()
