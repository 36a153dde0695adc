"""The loopback control channel (Windows' channel, :mod:`credguard.control.channel`), run here
for real: a real server on 127.0.0.1 and real clients, with the channel chosen as Windows
chooses it. Every request needs the user's key; a replayed, stale or forged one is refused,
and a client never believes a process that cannot prove it holds the key."""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from credguard import control
from credguard.control import DaemonError, DaemonNotRunning, channel
from credguard.control.wire import PROTOCOL, decode, encode
from credguard.daemon import server as server_mod
from credguard.daemon.server import ControlServer
from credguard.errors import StateError

pytestmark = pytest.mark.timeout(60)

STATUS = {"v": PROTOCOL, "cmd": "status", "args": {}}


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The channel Windows gets (``for_platform`` says loopback where there is no AF_UNIX)."""
    monkeypatch.setattr(channel, "for_platform", channel.LoopbackChannel)


@pytest.fixture
def served(loopback: None, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[tuple[ControlServer, Path]]:
    directory = tmp_path_factory.mktemp("ctl")
    directory.chmod(0o700)
    srv = ControlServer(lambda cmd, args: {"cmd": cmd}, directory / "control.sock",
                        timeout=1.0)
    srv.start()
    yield srv, directory / "control.sock"
    srv.stop()


def _port(endpoint: Path) -> int:
    return int(json.loads(endpoint.read_bytes())["port"])


def _exchange(port: int, data: bytes) -> list[Any]:
    """Send ``data`` on a new connection; every line the server answers, decoded."""
    with socket.create_connection((channel.LOOPBACK, port), timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    return [decode(line) for line in got.splitlines()]


def test_a_request_with_the_key_is_answered(served: tuple[ControlServer, Path]) -> None:
    _srv, path = served
    endpoint = path.with_name(channel.ENDPOINT_NAME)
    assert not path.exists() and endpoint.is_file()
    assert endpoint.stat().st_mode & 0o777 == 0o600
    assert control.request("status", path=path) == {"cmd": "status"}
    assert control.is_running(path)


def test_the_endpoint_goes_with_the_server(loopback: None,
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("ctl")
    directory.chmod(0o700)
    srv = ControlServer(lambda cmd, args: {}, directory / "control.sock")
    srv.start()
    endpoint = directory / channel.ENDPOINT_NAME
    assert endpoint.exists()
    srv.stop()
    assert not endpoint.exists()
    with pytest.raises(DaemonNotRunning):
        control.request("status", path=directory / "control.sock")


@pytest.mark.parametrize("forge", ["no-auth", "wrong-key", "bad-mac", "stale", "malformed",
                                   "short-nonce", "not-json"])
def test_a_request_without_the_key_is_refused(served: tuple[ControlServer, Path],
                                              forge: str) -> None:
    _srv, path = served
    endpoint = path.with_name(channel.ENDPOINT_NAME)
    link = channel.LoopbackChannel()
    line, _proof = link.request_line(STATUS, endpoint)
    message = json.loads(line)
    if forge == "no-auth":
        del message["auth"]
    elif forge == "wrong-key":
        other = endpoint.with_name("other.json")
        other.write_text(json.dumps({"v": 1, "port": 1, "key": os.urandom(32).hex()}))
        message = json.loads(link.request_line(STATUS, other)[0])
    elif forge == "bad-mac":
        message["args"] = {"x": 1}  # the MAC covers the request: changing it breaks it
    elif forge == "stale":
        raw, when = os.urandom(16), int(time.time()) - 2 * channel.MAX_SKEW
        key = channel.read_endpoint(endpoint)[1]
        message["auth"] = {"nonce": raw.hex(), "time": when, "mac": channel._mac(
            key, channel._REQUEST_LABEL, raw, when, encode(STATUS))}
    elif forge == "malformed":
        message["auth"] = {"nonce": 5, "time": "now", "mac": None}
    elif forge == "short-nonce":
        message["auth"]["nonce"] = "00"
    data = b"{not json\n" if forge == "not-json" else encode(message)
    answer = _exchange(_port(endpoint), data)
    assert answer == [{"v": PROTOCOL, "ok": False, "error": server_mod.REFUSED}]


def test_a_replayed_request_is_refused(served: tuple[ControlServer, Path]) -> None:
    _srv, path = served
    endpoint = path.with_name(channel.ENDPOINT_NAME)
    line, proof = channel.LoopbackChannel().request_line(STATUS, endpoint)
    first = _exchange(_port(endpoint), line)
    assert first[0] == decode(proof) and first[1]["ok"] is True
    assert _exchange(_port(endpoint), line) == [
        {"v": PROTOCOL, "ok": False, "error": server_mod.REFUSED}]


def test_an_impostor_on_the_port_is_not_believed(loopback: None,
                                                  tmp_path_factory: pytest.TempPathFactory,
                                                  ) -> None:
    """The daemon died; another process took the port in the endpoint file and answers like
    a daemon would. Without the key it cannot prove itself: the client says so and reads
    nothing it sent."""
    directory = tmp_path_factory.mktemp("ctl")
    directory.chmod(0o700)
    listener = socket.create_server((channel.LOOPBACK, 0))
    endpoint = directory / channel.ENDPOINT_NAME
    endpoint.write_text(json.dumps({"v": 1, "port": listener.getsockname()[1],
                                    "key": os.urandom(32).hex()}))
    endpoint.chmod(0o600)

    def impostor() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(encode({"v": PROTOCOL, "proof": "0" * 64})
                         + encode({"v": PROTOCOL, "ok": True, "result": {"running": True}}))

    thread = threading.Thread(target=impostor, daemon=True)
    thread.start()
    try:
        with pytest.raises(DaemonError, match="not your credguard daemon"):
            control.request("status", path=directory / "control.sock")
    finally:
        thread.join(5)
        listener.close()


def test_an_endpoint_that_is_a_link_or_garbage_is_refused(
        loopback: None, tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("ctl")
    directory.chmod(0o700)
    endpoint = directory / channel.ENDPOINT_NAME
    real = directory / "elsewhere.json"
    real.write_text(json.dumps({"v": 1, "port": 1, "key": os.urandom(32).hex()}))
    endpoint.symlink_to(real)
    with pytest.raises(StateError):
        control.request("status", path=directory / "control.sock")
    endpoint.unlink()
    endpoint.write_text('{"v": 1, "port": 0, "key": "00"}')
    with pytest.raises(StateError, match="not a credguard control endpoint"):
        control.request("status", path=directory / "control.sock")


def test_a_second_server_is_refused_while_the_first_answers(
        served: tuple[ControlServer, Path]) -> None:
    _srv, path = served
    with pytest.raises(StateError, match="another credguard daemon is running"):
        ControlServer(lambda cmd, args: {}, path).start()


# -- the pieces, in-process -------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "", "{not json", "5", '"x"', "[]", "{}", '{"v": 1, "port": 1}',
    '{"v": 1, "key": "00"}', '{"v": 1, "port": 1, "key": 5}', '{"v": 1, "port": 1, "key": "zz"}',
    '{"v": 1, "port": 1, "key": "00"}',  # a key of the wrong length
    '{"port": 1, "key": "KEY"}', '{"v": 2, "port": 1, "key": "KEY"}',
    '{"v": 1, "port": 0, "key": "KEY"}', '{"v": 1, "port": 65536, "key": "KEY"}',
    '{"v": 1, "port": true, "key": "KEY"}', '{"v": 1, "port": "1", "key": "KEY"}',
    "[" * 3000 + "]" * 3000,
])
def test_an_endpoint_of_another_form_is_refused(tmp_path: Path, text: str) -> None:
    endpoint = tmp_path / channel.ENDPOINT_NAME
    endpoint.write_text(text.replace("KEY", "ab" * 32)[:4096])
    with pytest.raises(StateError, match="not a credguard control endpoint"):
        channel.read_endpoint(endpoint)


def test_an_endpoint_is_read_within_its_bounds(tmp_path: Path) -> None:
    endpoint = tmp_path / channel.ENDPOINT_NAME
    key = os.urandom(32)
    endpoint.write_text(json.dumps({"v": 1, "port": 65535, "key": key.hex()}))
    assert channel.read_endpoint(endpoint) == (65535, key)
    endpoint.write_text(json.dumps({"v": 1, "port": 1, "key": key.hex()}).ljust(4097))
    with pytest.raises(StateError, match="too-large"):
        channel.read_endpoint(endpoint)
    endpoint.unlink()
    with pytest.raises(FileNotFoundError) as missing:
        channel.read_endpoint(endpoint)
    assert (missing.value.errno, missing.value.filename) == (errno.ENOENT, str(endpoint))
    endpoint.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StateError, match=f"refusing {endpoint}: symlink"):
        channel.read_endpoint(endpoint)


def test_the_mac_is_a_fixed_function_of_its_inputs() -> None:
    """The wire format's MAC (a known answer: both ends of two versions must agree)."""
    mac = channel._mac(b"k" * 32, b"credguard-request\0", b"n" * 16, 1700000000, b'{"x":1}\n')
    assert mac == hmac.new(b"k" * 32, b"credguard-request\0" + b"n" * 16 + b"1700000000\0"
                           + b'{"x":1}\n', hashlib.sha256).hexdigest()


def _keyed(monkeypatch: pytest.MonkeyPatch, now: list[float]) -> tuple[channel.LoopbackChannel,
                                                                       bytes]:
    link = channel.LoopbackChannel()
    key = os.urandom(32)
    link._key = key
    monkeypatch.setattr(channel.time, "time", lambda: now[0])
    return link, key


def _signed(key: bytes, when: int, nonce: bytes | None = None) -> bytes:
    raw = nonce or os.urandom(16)
    mac = channel._mac(key, channel._REQUEST_LABEL, raw, when, encode(STATUS))
    return encode({**STATUS, "auth": {"nonce": raw.hex(), "time": when, "mac": mac}})


def test_a_request_at_the_edge_of_the_skew_is_admitted(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0 + channel.MAX_SKEW]
    link, key = _keyed(monkeypatch, now)
    body, proof = link.admit(_signed(key, 1000))  # exactly MAX_SKEW old
    assert body == encode(STATUS) and decode(proof)["proof"]
    now[0] += 0.5
    with pytest.raises(channel.Refused, match=r"^stale$"):
        link.admit(_signed(key, 1000))
    with pytest.raises(channel.Refused, match=r"^stale$"):
        link.admit(_signed(key, 1000 + 2 * channel.MAX_SKEW + 1))  # from the future


def test_the_replay_memory_forgets_by_age_and_by_count(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    link, key = _keyed(monkeypatch, now)
    link.admit(_signed(key, 0))
    now[0] = 2 * channel.MAX_SKEW  # the first is exactly as old as is remembered: kept
    link.admit(_signed(key, int(now[0])))
    assert len(link._seen) == 2
    now[0] += 1  # now older than that: forgotten; the second (age 1) is not
    link.admit(_signed(key, int(now[0])))
    assert len(link._seen) == 2
    monkeypatch.setattr(channel, "_SEEN", 3)
    nonces = [os.urandom(16) for _ in range(4)]
    for nonce in nonces:
        link.admit(_signed(key, int(now[0]), nonce))
    assert list(link._seen) == nonces[1:]  # the oldest went first
    with pytest.raises(channel.Refused, match=r"^replayed$"):
        link.admit(_signed(key, int(now[0]), nonces[-1]))


@pytest.mark.parametrize(("forge", "reason"), [
    ("not-json", "malformed"), ("a-list", "malformed"), ("no-auth", "no authentication"),
    ("nonce-not-str", "malformed authentication"), ("time-not-int", "malformed authentication"),
    ("mac-not-str", "malformed authentication"), ("short-nonce", "malformed authentication"),
    ("nonce-not-hex", "malformed authentication"), ("wrong-mac", "wrong key"),
])
def test_each_refusal_says_why(monkeypatch: pytest.MonkeyPatch, forge: str,
                               reason: str) -> None:
    link, key = _keyed(monkeypatch, [1000.0])
    message = json.loads(_signed(key, 1000))
    auth = message["auth"]
    if forge == "no-auth":
        del message["auth"]
    elif forge == "nonce-not-str":
        auth["nonce"] = 5
    elif forge == "time-not-int":
        auth["time"] = "1000"
    elif forge == "mac-not-str":
        auth["mac"] = None
    elif forge == "short-nonce":
        auth["nonce"] = "00"
    elif forge == "nonce-not-hex":
        auth["nonce"] = "zz" * 16
    elif forge == "wrong-mac":
        auth["mac"] = "0" * 64
    line = {"not-json": b"{", "a-list": b"[1]"}.get(forge) or encode(message)
    with pytest.raises(channel.Refused, match=f"^{reason}$"):
        link.admit(line)
    assert not link._seen  # nothing refused is remembered


def test_a_server_without_a_key_admits_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    link = channel.LoopbackChannel()
    with pytest.raises(channel.Refused, match=r"^no key$"):
        link.admit(_signed(os.urandom(32), int(time.time())))


def test_the_refusal_is_logged_with_its_reason(served: tuple[ControlServer, Path],
                                               caplog: pytest.LogCaptureFixture) -> None:
    _srv, path = served
    endpoint = path.with_name(channel.ENDPOINT_NAME)
    caplog.set_level("WARNING", logger="credguard.daemon")
    _exchange(_port(endpoint), encode(STATUS))
    assert "refused a control request: no authentication" in [
        r.getMessage() for r in caplog.records]


def test_windows_gets_the_loopback_channel_even_where_there_is_af_unix(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows 10's AF_UNIX is not CPython's there; the platform decides first."""
    assert isinstance(channel.for_platform(), channel.UnixChannel)
    monkeypatch.setattr(channel.paths, "native_platform", lambda: "windows")
    assert isinstance(channel.for_platform(), channel.LoopbackChannel)


class _MacSocket:
    """A socket as macOS answers ``getsockopt(SOL_LOCAL, LOCAL_PEERCRED)`` (a stand-in: that
    call cannot run on Linux; the simulated macOS of tests/platform answers it for the real
    daemon): the ``struct xucred`` it is given, and the arguments it was asked with."""

    def __init__(self, xucred: bytes) -> None:
        self.xucred, self.asked = xucred, []  # type: ignore[var-annotated]

    def getsockopt(self, level: int, option: int, size: int) -> bytes:
        self.asked.append((level, option, size))
        return self.xucred


@pytest.mark.parametrize(("version", "uid", "expected"), [
    (0, 501, 501), (1, 501, None),
    (0, 4294967294, 4294967294),  # macOS' nobody (-2): uid_t is unsigned
])
def test_macos_peer_credentials_are_read_from_xucred(version: int, uid: int,
                                                     expected: int | None) -> None:
    import struct

    mac = _MacSocket(struct.pack("=IIh16I", version, uid, 1, 20, *([0] * 15)).ljust(76, b"\0"))
    assert channel._macos_peer_uid(mac) == expected  # type: ignore[arg-type]
    assert mac.asked == [(0, 0x001, 76)]  # SOL_LOCAL, LOCAL_PEERCRED, sizeof(struct xucred)


def test_the_loopback_channel_says_where_it_listens(
        loopback: None, tmp_path_factory: pytest.TempPathFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path_factory.mktemp("ctl")
    directory.chmod(0o700)
    caplog.set_level("INFO", logger="credguard.daemon")
    srv = ControlServer(lambda cmd, args: {}, directory / "control.sock")
    srv.start()
    srv.stop()
    endpoint = directory / channel.ENDPOINT_NAME
    assert f"control channel (loopback, keyed) listening on {endpoint}" in [
        r.getMessage() for r in caplog.records]


def test_a_control_directory_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateError) as error:
        server_mod.prepare_control_dir(blocker / "ctl")
    assert error.value.message == (f"cannot create control directory {blocker / 'ctl'}: "
                                   "Not a directory")
