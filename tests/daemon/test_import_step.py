"""The import step from the daemon (issue 18, item 3): a protected file's notification offers
"Open for import" and "Restore", and the tray's recent menu the same two (the ``recent`` and
``item`` control commands). Against the real daemon process, a real gnome-keyring, a real tmpfs
as the RAM directory and the recording notification server on the same private bus (the one
fake: a real server cannot be driven without X, see ``helpers/notification_server.py``).

One daemon walks through several steps per test: each daemon start costs about a second.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, running_daemon, wait_for
from helpers.home import Home, Run, run_subprocess, sha
from helpers.secret_service import SecretService

from credguard import config, control
from credguard.daemon import importstep
from credguard.daemon.expiry import OpenCopies
from credguard.errors import ConfigError, CredguardError, InputError, KeystoreError, StateError
from credguard.handoff import opened, ramdir
from credguard.notify import messages
from credguard.vault.access import open_vault
from credguard.vault.secretservice import SecretServiceKeyring
from credguard.vault.store import Vault

if TYPE_CHECKING:  # imported by pytest_plugins, for its fixtures
    from helpers.notification_server import NotifyCall, RealServer, RecordingServer

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("tmpfs_runtime")]
BUTTONS = {"open": "Open for import", "restore": "Restore"}
Cli = Callable[..., Run]


def download(home: Home, name: str, data: bytes) -> Path:
    """Chrome-style: write NAME.crdownload, then rename it to NAME."""
    partial = home.downloads / f"{name}.crdownload"
    partial.write_bytes(data)
    return partial.rename(home.downloads / name)


def events(home: Home, *names: str) -> list[dict[str, object]]:
    return [e for e in audit_events(home.root / ".local" / "state") if e["event"] in names]


@pytest.fixture
def daemon(secret_service: SecretService, notification_server: RecordingServer,
           tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


def protected(server: RecordingServer, home: Home, name: str, data: bytes,
              count: int) -> tuple[NotifyCall, str]:
    """Download ``name``; the daemon's notification (the ``count``-th) and the item id."""
    path = download(home, name, data)
    call = server.wait_calls(count)[count - 1]
    assert call.summary == "Credential file protected" and not path.exists()
    record = wait_for(lambda: [e for e in events(home, "protected") if e["path"] == str(path)])
    return call, str(record[0]["item_id"])


def notice(server: RecordingServer, count: int) -> NotifyCall:
    return server.wait_calls(count)[count - 1]


def test_open_for_import_from_the_notification_and_the_tray(
        daemon: DaemonProcess, notification_server: RecordingServer, home: Home,
        tmpfs_runtime: Path) -> None:
    payload = payloads.publish_profile("import-step")
    call, item_id = protected(notification_server, home, "contoso.PublishSettings",
                              payload.data, 1)
    assert call.buttons == BUTTONS
    minutes = opened.DEFAULT_SECONDS // 60
    assert f"Open for import: a RAM-only copy for {minutes} min." in call.body
    assert "this file" not in call.body  # never "then delete this file": it is gone already

    before = time.time()
    notification_server.press(call.id, "open")
    ready = notice(notification_server, 2)
    assert ready.summary == "Ready for import: contoso.PublishSettings"
    copy = Path(ready.body.splitlines()[0])
    assert copy.name == "contoso.PublishSettings" and copy.read_bytes() == payload.data
    assert copy.is_relative_to(tmpfs_runtime)  # the RAM directory, never a disk
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
    found = opened.parse(copy.parent.name, copy.parent.parent)
    assert found is not None and found.item_id == item_id
    assert before + opened.DEFAULT_SECONDS - 2 <= found.expires <= time.time() + \
        opened.DEFAULT_SECONDS + 1
    assert f"for {minutes} min: removed at" in ready.body
    assert f"'credguard close {item_id[:8]}'" in ready.body
    (record,) = events(home, "opened")
    assert record["item_id"] == item_id and record["reason"] == "notification"
    assert record["duration"] == opened.DEFAULT_SECONDS

    # the tray's recent menu: the same item, and the same action through the `item` command
    recent = control.request("recent")["items"]
    assert [(r["id"], r["name"], r["kind"]) for r in recent] == [
        (item_id, "contoso.PublishSettings", "azure-publish-profile")]
    answer = control.request("item", action="open", id=item_id)
    second = Path(answer["path"])
    assert second != copy and second.read_bytes() == payload.data
    assert notice(notification_server, 3).summary == "Ready for import: contoso.PublishSettings"
    assert [e["reason"] for e in events(home, "opened")] == ["notification", "tray"]

    # `credguard close` removes both copies sooner; nothing of the secret was told anywhere
    assert run_subprocess("close", item_id[:8]).code == 0
    assert not copy.exists() and not second.exists()
    seen = repr(notification_server.calls) + daemon.stderr() + json.dumps(events(home))
    assert not [s for s in payload.secrets if s in seen]


def test_restore_from_the_notification_and_the_tray(
        daemon: DaemonProcess, notification_server: RecordingServer, home: Home) -> None:
    payload = payloads.publish_profile("restored")
    call, item_id = protected(notification_server, home, "app.PublishSettings", payload.data, 1)
    path = home.downloads / "app.PublishSettings"
    notification_server.press(call.id, "restore")
    told = notice(notification_server, 2)
    assert told.summary == "Credential file restored"
    assert "app.PublishSettings (in ~/Downloads)" in told.body and "allowlisted" in told.body
    assert path.read_bytes() == payload.data and stat.S_IMODE(path.stat().st_mode) == 0o600
    fingerprint = f"sha256:{sha(payload.data)}"
    assert {e.fingerprint: e.reason for e in config.load().ignores} == {
        fingerprint: "restored by the user"}
    (record,) = events(home, "restored")
    assert (record["path"], record["item_id"], record["fingerprint"]) == (
        str(path), item_id, fingerprint)
    assert record["detail"] == "from the notification"
    # the daemon leaves it: it sees the file, and the allowlist
    wait_for(lambda: [e for e in events(home, "ignored") if e["path"] == str(path)],
             timeout=15)
    assert path.read_bytes() == payload.data

    # again, from the tray: the file is there, so nothing is written, and the user is told
    with pytest.raises(CredguardError, match="exists; restore never replaces a file"):
        control.request("item", action="restore", id=item_id)
    refused = notice(notification_server, 3)
    assert refused.summary == "Could not restore it" and refused.urgency == 2
    assert "app.PublishSettings (in ~/Downloads)" in refused.body
    assert "Nothing was written." in refused.body
    assert path.read_bytes() == payload.data and len(events(home, "restored")) == 1

    # a file that vanished from the vault meanwhile
    run_subprocess("vault", "rm", item_id, "--yes")
    with pytest.raises(CredguardError, match=item_id):
        control.request("item", action="open", id=item_id)
    assert notice(notification_server, 4).summary == "Could not open it for import"
    assert control.request("recent")["items"] == []  # no longer offered


def test_a_locked_keyring_opens_and_restores_nothing(
        daemon: DaemonProcess, notification_server: RecordingServer, home: Home,
        secret_service: SecretService) -> None:
    """The daemon keeps the key it fetched; it gives a credential back only while the keyring
    would give it to the user without asking, as for exec."""
    payload = payloads.publish_profile("locked")
    call, item_id = protected(notification_server, home, "locked.PublishSettings",
                              payload.data, 1)
    secret_service.lock()
    try:
        notification_server.press(call.id, "restore")
        refused = notice(notification_server, 2)
        assert refused.summary == "Could not restore it" and "keyring is locked" in refused.body
        with pytest.raises(CredguardError, match="keyring is locked"):
            control.request("item", action="open", id=item_id)
        assert notice(notification_server, 3).summary == "Could not open it for import"
    finally:
        secret_service.unlock()
    assert not (home.downloads / "locked.PublishSettings").exists()
    assert not events(home, "restored", "opened") and not config.load().ignores
    answer = control.request("item", action="open", id=item_id)  # unlocked: it works again
    assert Path(answer["path"]).read_bytes() == payload.data


def test_open_for_import_pressed_on_a_real_notification_server(
        secret_service: SecretService, real_notification_server: RealServer, home: Home,
        tmpfs_runtime: Path, tmp_path: Path) -> None:
    """dunst shows the protected file's notification with its two buttons; "Open for import",
    pressed there (its action menu), reaches the daemon through dunst's own ActionInvoked."""
    daemon = DaemonProcess(dict(os.environ), tmp_path / "daemon.log").start()
    try:
        payload = payloads.publish_profile("dunst")
        download(home, "dunst.PublishSettings", payload.data)
        wait_for(lambda: "Credential file protected" in real_notification_server.monitor_text(),
                 timeout=15)
        menu = real_notification_server.press("open")
        assert "#Open for import (Credential file protected)" in menu
        assert "#Restore (Credential file protected)" in menu
        (record,) = wait_for(lambda: events(home, "opened"), timeout=15)
        assert record["reason"] == "notification"
        copies = list(tmpfs_runtime.glob("**/dunst.PublishSettings"))
        assert [c.read_bytes() for c in copies] == [payload.data]
        wait_for(lambda: "Ready for import: dunst.PublishSettings"
                 in real_notification_server.monitor_text(), timeout=15)
    finally:
        daemon.stop()
    assert not [s for s in payload.secrets if s in real_notification_server.monitor_text()]


@pytest.mark.parametrize("args", [
    {"action": "open"}, {"id": "a" * 32}, {"action": "delete", "id": "a" * 32},
    {"action": "open", "id": "A" * 32}, {"action": "open", "id": "a" * 31},
    {"action": "open", "id": "../" + "a" * 29}, {"action": "open", "id": "a" * 32, "x": 1},
    {"action": "open", "id": 7},
])
def test_item_requests_are_checked(args: dict[str, object]) -> None:
    with pytest.raises(control.ProtocolError):
        control.validate({"v": control.PROTOCOL, "cmd": "item", "args": args})


def test_the_notification_says_the_default_open_time() -> None:
    """notify sits beside handoff (no import between them): the constant is kept in step."""
    assert messages.OPEN_MINUTES * 60 == opened.DEFAULT_SECONDS


# -- the daemon's import step in-process: the same real vault, keyring and tmpfs ------------------


@pytest.fixture
def protected_item(secret_service: SecretService, home: Home, cli: Cli
                   ) -> Iterator[tuple[Vault, str, Path, bytes]]:
    """A publish profile protected from Downloads: the vault, its id, where it was, its bytes."""
    payload = payloads.publish_profile("in-process")
    path = home.write("Downloads/inproc.PublishSettings", payload.data)
    run = cli("protect", "--json", str(path))
    assert run.code == 0, run.err
    vault = open_vault(config.load())
    yield vault, str(json.loads(run.out)["results"][0]["id"]), path, payload.data
    backend = getattr(vault.keystore, "backend", None)
    if isinstance(backend, SecretServiceKeyring):  # the connection unlocked_now kept
        backend.close()


def test_open_copy_writes_the_item_to_ram_and_wakes_the_timer(
        protected_item: tuple[Vault, str, Path, bytes], tmpfs_runtime: Path) -> None:
    vault, item_id, _, data = protected_item
    copies = OpenCopies(lambda *_: None, threading.Event())
    done = importstep.open_copy(vault, item_id, copies)
    assert copies._wake.is_set()  # the daemon's timer looks again, for this copy's expiry
    path = Path(done.path)
    assert path.name == "inproc.PublishSettings" and path.read_bytes() == data
    assert path.is_relative_to(tmpfs_runtime) and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert done.copy is not None and done.copy.item_id == item_id and done.fingerprint == ""
    assert done.copy.expires - time.time() == pytest.approx(opened.DEFAULT_SECONDS, abs=5)
    assert done.record.sha256 == sha(data)


def test_open_copy_refuses_without_ram(protected_item: tuple[Vault, str, Path, bytes],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    vault, item_id, _, _ = protected_item
    monkeypatch.setattr(ramdir, "ram_base", lambda create: None)
    with pytest.raises(StateError, match="RAM"):
        importstep.open_copy(vault, item_id, OpenCopies(lambda *_: None, threading.Event()))


def test_restore_file_allowlists_before_it_writes(
        protected_item: tuple[Vault, str, Path, bytes]) -> None:
    vault, item_id, path, data = protected_item
    seen: list[bool] = []
    fingerprint = f"sha256:{sha(data)}"

    def reload() -> None:  # the daemon applies the entry: the file is not there yet
        seen.append(config.load().ignored(fingerprint) is not None and not path.exists())

    done = importstep.restore_file(config.load(), vault, item_id, reload)
    assert seen == [True]
    assert (done.path, done.fingerprint, done.copy) == (str(path), fingerprint, None)
    assert path.read_bytes() == data and stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(InputError, match="move it away first, or: credguard restore ID --to"):
        importstep.restore_file(config.load(), vault, item_id, reload)
    assert path.read_bytes() == data


def test_a_refused_reload_leaves_no_file_and_no_entry(
        protected_item: tuple[Vault, str, Path, bytes]) -> None:
    vault, item_id, path, _ = protected_item

    def refused() -> None:
        raise ConfigError("the daemon refused the configuration")

    with pytest.raises(ConfigError):
        importstep.restore_file(config.load(), vault, item_id, refused)
    assert not path.exists() and not config.load().ignores


def test_nothing_is_given_back_without_a_key_or_while_locked(
        protected_item: tuple[Vault, str, Path, bytes], secret_service: SecretService) -> None:
    vault, item_id, path, _ = protected_item
    with pytest.raises(StateError, match="holds no vault key"):
        importstep.restore_file(config.load(), None, item_id, lambda: None)
    assert importstep.check_unlocked(vault) is vault
    secret_service.lock()
    try:
        with pytest.raises(KeystoreError, match="keyring is locked"):
            importstep.restore_file(config.load(), vault, item_id, lambda: None)
        with pytest.raises(KeystoreError, match="keyring is locked"):
            importstep.open_copy(vault, item_id, OpenCopies(lambda *_: None, threading.Event()))
    finally:
        secret_service.unlock()
    assert not path.exists() and not config.load().ignores
