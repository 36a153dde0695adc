"""A keyring that appears after the daemon started: found on the user's own bus, used within the
back-off, and the files that waited in alert-only mode are protected then (issue 14).

The daemon runs with no ``DBUS_SESSION_BUS_ADDRESS`` at all. The bus is a real ``dbus-daemon``
listening at ``$XDG_RUNTIME_DIR/bus`` with a real gnome-keyring on it (the fixtures' own
classes, listening at that path); another user's bus is a real one run under a second uid.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import payloads
from helpers.attacker import User, other_user, shared_sticky_dir
from helpers.daemon import DaemonProcess, audit_events, wait_for
from helpers.home import Home, sha, vault_shas
from helpers.secret_service import SecretService

from credguard.daemon.keyring_watch import delays
from credguard.vault import userbus

pytestmark = pytest.mark.timeout(90)


class UserBusKeyring(SecretService):
    """The fixtures' real bus + gnome-keyring, listening at ``socket`` (``unix:path=``) instead
    of in a directory of its own; with ``user``, both run as that user (``setpriv``)."""

    def __init__(self, root: Path, socket: Path, user: User | None = None) -> None:
        super().__init__(root)
        config = self._config.read_text().replace(f"unix:dir={root / 'sockets'}",
                                                   f"unix:path={socket}")
        if user is not None:  # an attacker's bus lets every uid connect
            config = config.replace('<allow own="*"/>', '<allow own="*"/>\n    <allow user="*"/>')
            self._dbus_daemon = _as(user, self._dbus_daemon, root)
            self._gnome_keyring = _as(user, self._gnome_keyring, root)
        self._config.write_text(config)
        if user is not None:
            for path in (root, *root.rglob("*")):
                os.chown(path, user.uid, user.gid)


def _as(user: User, program: str, root: Path) -> str:
    """A wrapper that runs ``program`` as ``user`` (its uid and gid, no other groups)."""
    wrapper = root.parent / f"as-{user.name}-{Path(program).name}"
    wrapper.write_text(f'#!/bin/sh\nexec setpriv --reuid={user.uid} --regid={user.gid} '
                       f'--clear-groups {program} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def runtime_dir() -> Path:
    return Path(os.environ["XDG_RUNTIME_DIR"])


def alerted(home: Home) -> bool:
    events = audit_events(home.root / ".local" / "state")
    return any(e["event"] == "alerted" for e in events)


def drop(home: Home) -> tuple[Path, bytes]:
    """A publish profile downloaded the way browsers do (written aside, renamed)."""
    data = payloads.publish_profile().data
    partial = home.downloads / "contoso.PublishSettings.crdownload"
    partial.write_bytes(data)
    final = home.downloads / "contoso.PublishSettings"
    partial.rename(final)
    return final, data


@pytest.fixture
def daemon(home: Home, tmp_path: Path) -> Iterator[DaemonProcess]:
    """The real daemon, started with no session bus address and nothing at the user bus."""
    env = dict(os.environ)
    assert "DBUS_SESSION_BUS_ADDRESS" not in env and not (runtime_dir() / "bus").exists()
    daemon = DaemonProcess(env, tmp_path / "daemon.log").start()
    try:
        yield daemon
    finally:
        daemon.stop()


def mode(daemon: DaemonProcess) -> tuple[str, str]:
    status = daemon.status()
    assert status is not None
    return status["mode"], status["mode_reason"]


def test_a_keyring_that_comes_up_later_protects_the_file_that_waited(
    daemon: DaemonProcess, home: Home, tmp_path: Path
) -> None:
    assert mode(daemon)[0] == "alert-only" and "no session bus" in mode(daemon)[1]
    path, data = drop(home)
    wait_for(lambda: alerted(home))
    assert path.exists()  # alert-only: kept
    service = UserBusKeyring(tmp_path / "bus", runtime_dir() / "bus")
    service.start()  # bus, then gnome-keyring unlocked on it
    try:
        wait_for(lambda: not path.exists(), timeout=40, every=0.2)  # within the back-off
        assert mode(daemon) == ("protecting", "")
        assert len(service.items()) == 1  # the vault key, in the keyring on the user's bus
        assert vault_shas(daemon.env) == [sha(data)]  # the CLI finds that bus the same way
    finally:
        daemon.stop()
        service.stop()


def test_a_locked_keyring_on_the_user_bus_stays_alert_only(
    home: Home, tmp_path: Path
) -> None:
    service = UserBusKeyring(tmp_path / "bus", runtime_dir() / "bus")
    service.start()  # creates the login keyring
    try:
        service.stop_daemon()
        service.start_daemon(unlock=False)  # as after a login without the keyring's password
        assert service.is_locked() is True
        daemon = DaemonProcess(dict(os.environ), tmp_path / "daemon.log").start()
        try:
            path, _ = drop(home)
            wait_for(lambda: alerted(home))
            current, reason = mode(daemon)
            assert current == "alert-only" and "locked" in reason
            time.sleep(2.5)  # past the first retry (2 s after start)
            assert path.exists() and mode(daemon)[0] == "alert-only"  # a retry changed nothing
            assert service.items() == {}
        finally:
            daemon.stop()
    finally:
        service.stop()


@pytest.mark.security
def test_a_bus_socket_of_another_user_is_not_used(
    daemon: DaemonProcess, home: Home, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to create a second user")
    with other_user() as user, shared_sticky_dir() as shared:
        # its own real bus and unlocked keyring, made where it may write, then its socket is
        # put at $XDG_RUNTIME_DIR/bus (rename keeps the owner; the bus still answers there)
        socket = shared / "bus"
        service = UserBusKeyring(shared / "atk", socket, user)
        service.start()
        try:
            placed = runtime_dir() / "bus"
            socket.rename(placed)
            assert os.lstat(placed).st_uid == user.uid and stat.S_ISSOCK(os.lstat(placed).st_mode)
            service.address = f"unix:path={placed}"
            assert service.has_secret_service()  # it would work, if it were used
            wait_for(lambda: f"owned by uid {user.uid}" in mode(daemon)[1], timeout=20)
            path, _ = drop(home)
            wait_for(lambda: alerted(home))
            assert path.exists() and mode(daemon)[0] == "alert-only"
            assert service.items() == {}  # no vault key went to the other user's keyring
        finally:
            service.stop()


# ---- the parts, in this process -------------------------------------------------------------


def test_back_off_doubles_from_2_s_to_60_s() -> None:
    schedule = delays()
    assert [next(schedule) for _ in range(8)] == [2, 4, 8, 16, 32, 60, 60, 60]


@pytest.fixture
def no_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This process without a bus address; the module's memory of one it set is undone."""
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setattr(userbus, "_adopted", None)
    yield runtime_dir()
    if os.environ.get("DBUS_SESSION_BUS_ADDRESS") is not None:
        monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")


@contextmanager
def listening(path: Path) -> Iterator[None]:
    """A unix socket this user owns, bound at ``path`` (what a bus daemon's looks like)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        yield


def test_the_user_bus_is_adopted_checked_again_and_dropped(no_bus: Path) -> None:
    assert "no session bus" in userbus.adopt_user_bus()
    with listening(no_bus / "bus"):
        assert userbus.adopt_user_bus() == ""
        assert os.environ["DBUS_SESSION_BUS_ADDRESS"] == f"unix:path={no_bus / 'bus'}"
        no_bus.chmod(0o770)  # a group may now swap it: withdrawn
        assert "others may write" in userbus.adopt_user_bus()
        assert "DBUS_SESSION_BUS_ADDRESS" not in os.environ
        no_bus.chmod(0o700)


def test_an_address_from_the_environment_is_never_replaced(
    no_bus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/elsewhere")
    with listening(no_bus / "bus"):
        assert userbus.adopt_user_bus() == ""
    assert os.environ["DBUS_SESSION_BUS_ADDRESS"] == "unix:path=/elsewhere"


def test_a_symlink_or_a_file_at_the_bus_path_is_refused(no_bus: Path, tmp_path: Path) -> None:
    with listening(tmp_path / "real-bus"):
        (no_bus / "bus").symlink_to(tmp_path / "real-bus")
        assert "is not a socket" in userbus.adopt_user_bus()
    (no_bus / "bus").unlink()
    (no_bus / "bus").write_bytes(b"")
    assert "is not a socket" in userbus.adopt_user_bus()
    assert "DBUS_SESSION_BUS_ADDRESS" not in os.environ
