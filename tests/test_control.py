"""The control socket: protocol, client and a real server on a real Unix socket (in the test's
private XDG_RUNTIME_DIR), including garbage from clients and a second user knocking."""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from credguard import control, paths
from credguard.control import DaemonError, DaemonNotRunning, ProtocolError
from credguard.daemon import server as server_mod
from credguard.daemon.server import ControlServer
from credguard.errors import CredguardError, ExitCode, StateError

pytestmark = pytest.mark.timeout(60)

OTHER_UID = 4242
V = control.PROTOCOL


class Recorder:
    """A handler that records its calls (and the thread they ran on) and echoes them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.threads: set[str] = set()
        self.behaviour: Callable[[str], Any] | None = None

    def __call__(self, cmd: str, args: dict[str, Any]) -> Any:
        self.calls.append((cmd, args))
        self.threads.add(threading.current_thread().name)
        if self.behaviour is not None:
            return self.behaviour(cmd)
        return {"cmd": cmd, "echo": args}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(recorder: Recorder) -> Iterator[ControlServer]:
    srv = ControlServer(recorder, timeout=1.0)
    srv.start()
    yield srv
    srv.stop()


def _read_reply(sock: socket.socket) -> bytes:
    data = b""
    try:
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass  # the server closed with our unread bytes queued; its reply came first
    return data


def raw(data: bytes, *, shut_write: bool = True) -> dict[str, Any]:
    """Send raw bytes on a fresh connection; the server's (JSON) reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(15)
        sock.connect(str(control.socket_path()))
        try:
            sock.sendall(data)
            if shut_write:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before we finished: the reply is still queued for us
        reply = json.loads(_read_reply(sock))
    assert isinstance(reply, dict)
    return reply


def line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def assert_alive(recorder: Recorder) -> None:
    before = len(recorder.calls)
    assert control.request("status", timeout=5) == {"cmd": "status", "echo": {}}
    assert len(recorder.calls) == before + 1


# -- round trips -----------------------------------------------------------------------------


def test_each_command_round_trips(server: ControlServer, recorder: Recorder) -> None:
    assert control.request("status") == {"cmd": "status", "echo": {}}
    assert control.request("scan")["echo"] == {"paths": None}
    assert control.request("scan", paths=[Path("/a b"), "/c/\u00e9", "/d/\udcff"])["echo"] == {
        "paths": ["/a b", "/c/\u00e9", "/d/\udcff"]  # undecodable names survive the wire
    }
    assert control.request("pause")["echo"] == {"seconds": None}
    assert control.request("pause", seconds=90)["echo"] == {"seconds": 90}
    assert control.request("pause", seconds=1.5)["echo"] == {"seconds": 1.5}
    assert control.request("resume") == {"cmd": "resume", "echo": {}}
    assert control.request("reload") == {"cmd": "reload", "echo": {}}
    assert [c for c, _ in recorder.calls] == [
        "status", "scan", "scan", "pause", "pause", "pause", "resume", "reload",
    ]  # fmt: skip
    assert recorder.threads == {"credguard-control", "credguard-control-scan"}
    assert control.is_running()


def test_constants_and_socket_path() -> None:
    assert control.PROTOCOL == 2
    assert control.COMMANDS == ("status", "scan", "pause", "resume", "reload", "alerts",
                                "protect", "exec", "opened", "recent", "item")
    assert control.MAX_REQUEST == 64 * 1024
    assert control.socket_path() == paths.control_dir() / "control.sock"
    assert str(control.socket_path()).startswith(os.environ["XDG_RUNTIME_DIR"])


def test_alerts_takes_an_aware_time(server: ControlServer, recorder: Recorder) -> None:
    """``since`` reaches the handler as an aware datetime; without it, None."""
    recorder.behaviour = lambda cmd: {"count": 3}
    assert control.request("alerts") == {"count": 3}
    assert control.request("alerts", since="2026-12-01T10:00:00.123+01:00") == {"count": 3}
    since = datetime(2026, 12, 1, 10, 0, 0, 123000, tzinfo=timezone(timedelta(hours=1)))
    assert recorder.calls == [("alerts", {"since": None}), ("alerts", {"since": since})]


def test_client_validates_before_connecting() -> None:
    with pytest.raises(ProtocolError, match="between 1 and 604800") as info:
        control.request("pause", seconds=-1)  # no daemon runs: validation comes first
    assert info.value.exit_code == ExitCode.USAGE
    with pytest.raises(ProtocolError, match="unknown command"):
        control.request("shutdown")
    with pytest.raises(ProtocolError, match="unknown argument"):
        control.request("scan", where="/x")


# -- no daemon, stale sockets, single instance -----------------------------------------------


def _stale_socket(path: Path) -> None:
    server_mod.prepare_control_dir(path.parent)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))  # closed without unlink: what a SIGKILLed daemon leaves


@pytest.mark.parametrize("with_dir", [False, True])
def test_not_running_without_socket(with_dir: bool) -> None:
    if with_dir:
        server_mod.prepare_control_dir(paths.control_dir())
    with pytest.raises(DaemonNotRunning) as info:
        control.request("status")
    assert info.value.exit_code == ExitCode.NOT_FOUND
    assert info.value.message == (
        f"credguard daemon is not running (no control socket at {control.socket_path()}); "
        "start it with: credguard start"
    )
    assert not control.is_running()


def test_not_running_with_stale_socket() -> None:
    _stale_socket(control.socket_path())
    with pytest.raises(DaemonNotRunning, match="nobody answers on"):
        control.request("status")
    assert not control.is_running()


def test_stale_socket_is_removed_at_start(recorder: Recorder,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="credguard")
    path = control.socket_path()
    _stale_socket(path)
    keep = path.with_name("stale-ref")
    os.link(path, keep)  # keeps the stale inode allocated, so a new socket gets another one
    stale_inode = path.lstat().st_ino
    srv = ControlServer(recorder)
    srv.start()
    try:
        assert path.lstat().st_ino != stale_inode
        assert_alive(recorder)
    finally:
        srv.stop()
    assert not path.exists()  # stop() removes its socket
    srv.stop()  # idempotent
    assert f"removed stale control socket {path}" in [r.getMessage() for r in caplog.records]


def test_second_server_is_refused_while_the_first_runs(
    server: ControlServer, recorder: Recorder
) -> None:
    second = ControlServer(Recorder())
    with pytest.raises(StateError, match="another credguard daemon is running"):
        second.start()
    assert_alive(recorder)  # the refused start did not touch the first one's socket
    server.stop()
    second.start()
    try:
        assert control.request("status")["cmd"] == "status"
    finally:
        second.stop()


def test_a_foreign_listener_is_not_replaced(recorder: Recorder) -> None:
    path = control.socket_path()
    server_mod.prepare_control_dir(path.parent)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(str(path))
        other.listen(1)
        with pytest.raises(StateError, match="another credguard daemon is running"):
            ControlServer(recorder).start()
        assert stat.S_ISSOCK(path.lstat().st_mode)


def test_a_non_socket_at_the_path_is_refused(recorder: Recorder) -> None:
    path = control.socket_path()
    server_mod.prepare_control_dir(path.parent)
    path.write_text("not a socket")
    with pytest.raises(StateError, match="not a socket of yours"):
        ControlServer(recorder).start()
    assert path.read_text() == "not a socket"


# -- modes and unsafe directories ------------------------------------------------------------


def test_directory_and_socket_modes(server: ControlServer) -> None:
    assert stat.S_IMODE(server.path.parent.stat().st_mode) == 0o700
    st = server.path.lstat()
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()


def test_modes_hold_under_a_permissive_umask(recorder: Recorder) -> None:
    old = os.umask(0)
    try:
        srv = ControlServer(recorder)
        srv.start()
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(srv.path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(srv.path.lstat().st_mode) == 0o600
    finally:
        srv.stop()


def _unsafe_dir(kind: str, directory: Path, tmp_path: Path) -> str:
    if kind == "0755":
        directory.mkdir(mode=0o700)
        directory.chmod(0o755)
        return "chmod 700"
    if kind == "symlink":
        real = tmp_path / "real-control"
        real.mkdir(mode=0o700)
        directory.symlink_to(real)
        return "symbolic link"
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    directory.mkdir(mode=0o700)
    os.chown(directory, OTHER_UID, OTHER_UID)
    return f"belongs to uid {OTHER_UID}"


@pytest.mark.security
@pytest.mark.parametrize("kind", ["0755", "symlink", "other-owner"])
def test_an_unsafe_control_dir_is_refused(kind: str, recorder: Recorder, tmp_path: Path) -> None:
    directory = paths.control_dir()
    fix = _unsafe_dir(kind, directory, tmp_path)
    with pytest.raises(StateError, match=fix) as info:
        ControlServer(recorder).start()
    assert info.value.exit_code == ExitCode.STATE
    assert not os.path.lexists(directory / "control.sock")
    with pytest.raises(StateError, match=fix):  # the client will not talk there either
        control.request("status")


def test_client_refuses_a_socket_in_an_opened_dir(
    server: ControlServer, recorder: Recorder
) -> None:
    server.path.parent.chmod(0o755)
    try:
        with pytest.raises(StateError, match="chmod 700"):
            control.request("status")
        assert not control.is_running()
    finally:
        server.path.parent.chmod(0o700)
    assert_alive(recorder)


# -- garbage ----------------------------------------------------------------------------------

_REQ = {"v": V, "cmd": "pause", "args": {}}
_ALERTS = {"v": V, "cmd": "alerts"}
GARBAGE: list[tuple[str, bytes, str]] = [
    ("random bytes", random.Random(7).randbytes(4096) + b"\n", ""),
    ("non-json", b"hello there\n", "malformed request"),
    ("empty line", b"\n", "malformed request"),
    ("json array", b"[1, 2]\n", "must be a JSON object"),
    ("json string", b'"status"\n', "must be a JSON object"),
    ("half utf-8", b'{"v": 2, "cmd": "stat\xc3"}\n', "malformed request"),
    ("latin-1", b'{"v": 2, "cmd": "\xe9"}\n', "malformed request"),
    ("NaN", b'{"v": 2, "cmd": "pause", "args": {"seconds": NaN}}\n', "malformed request"),
    ("deep nesting", b"[" * 30000 + b"]" * 30000 + b"\n", "malformed request"),
    (
        "5000-digit int",
        b'{"v": 2, "cmd": "pause", "args": {"seconds": ' + b"9" * 5000 + b"}}\n",
        "malformed request",
    ),
    ("no newline", b'{"v": 2, "cmd": "status"}', "incomplete request"),
    ("older version", line({"v": 1, "cmd": "status"}), "protocol version"),
    ("version true", line({"v": True, "cmd": "status"}), "protocol version"),
    ("no version", line({"cmd": "status"}), "protocol version"),
    ("unknown cmd", line({"v": V, "cmd": "shutdown"}), "unknown command"),
    ("cmd list", line({"v": V, "cmd": ["status"]}), "unknown command"),
    ("extra field", line({"v": V, "cmd": "status", "x": 1}), "unknown request field"),
    ("args array", line({"v": V, "cmd": "status", "args": [1]}), "args must be"),
    ("status args", line({"v": V, "cmd": "status", "args": {"x": 1}}), "takes no arguments"),
    ("pause -1", line({**_REQ, "args": {"seconds": -1}}), "between 1 and 604800"),
    ("pause 0.5", line({**_REQ, "args": {"seconds": 0.5}}), "between 1 and 604800"),
    ("pause 1e12", line({**_REQ, "args": {"seconds": 1e12}}), "between 1 and 604800"),
    ("pause 10**400", line({**_REQ, "args": {"seconds": 10**400}}), "between 1 and 604800"),
    ("pause 'x'", line({**_REQ, "args": {"seconds": "x"}}), "must be a number"),
    ("pause true", line({**_REQ, "args": {"seconds": True}}), "must be a number"),
    ("pause key", line({**_REQ, "args": {"secs": 5}}), "unknown argument for pause"),
    ("scan relative", line({"v": V, "cmd": "scan", "args": {"paths": ["rel/x"]}}), "absolute"),
    ("scan str", line({"v": V, "cmd": "scan", "args": {"paths": "/etc"}}), "non-empty list"),
    ("scan empty", line({"v": V, "cmd": "scan", "args": {"paths": []}}), "non-empty list"),
    ("scan NUL", line({"v": V, "cmd": "scan", "args": {"paths": ["/a\0b"]}}), "absolute"),
    ("scan int", line({"v": V, "cmd": "scan", "args": {"paths": [1]}}), "absolute"),
    ("scan 1001", line({"v": V, "cmd": "scan", "args": {"paths": ["/x"] * 1001}}), "too many"),
    ("alerts naive", line({**_ALERTS, "args": {"since": "2026-12-01T10:00:00"}}), "UTC offset"),
    ("alerts date", line({**_ALERTS, "args": {"since": "yesterday"}}), "UTC offset"),
    ("alerts number", line({**_ALERTS, "args": {"since": 1764583200}}), "UTC offset"),
    ("alerts long", line({**_ALERTS, "args": {"since": "2026-12-01" + " " * 60}}), "UTC offset"),
    ("alerts key", line({**_ALERTS, "args": {"from": "x"}}), "unknown argument for alerts"),
]


@pytest.mark.parametrize(
    ("payload", "expected"), [g[1:] for g in GARBAGE], ids=[g[0] for g in GARBAGE]
)
def test_garbage_gets_a_clean_error(
    server: ControlServer, recorder: Recorder, payload: bytes, expected: str
) -> None:
    reply = raw(payload)
    assert reply["v"] == V
    assert reply["ok"] is False
    assert expected in reply["error"]
    assert len(reply["error"]) < 200
    assert recorder.calls == []  # nothing invalid reaches the handler
    assert_alive(recorder)


def test_errors_never_echo_the_request(server: ControlServer, recorder: Recorder) -> None:
    marker = "SEKRET-MARKER"
    for payload in (
        line({"v": V, "cmd": marker}),
        line({"v": V, "cmd": "pause", "args": {marker: 1}}),
        line({"v": V, "cmd": "pause", "args": {"seconds": marker}}),
        line({"v": V, "cmd": "scan", "args": {"paths": [marker]}}),
        line({"v": marker, "cmd": "status"}),
        line({"v": V, "cmd": "status", marker: 1}),
        f"{marker} not json\n".encode(),
    ):
        reply = raw(payload)
        assert reply["ok"] is False
        assert marker not in json.dumps(reply)
    assert_alive(recorder)


def test_the_size_limit_is_exact(server: ControlServer, recorder: Recorder) -> None:
    request = b'{"v": 2, "cmd": "status"}'
    padded = request + b" " * (control.MAX_REQUEST - len(request))
    assert raw(padded + b"\n")["ok"] is True
    assert raw(padded + b" \n") == {"v": V, "ok": False, "error": "request too large"}


def test_a_10_mib_line_is_refused_and_the_server_survives(
    server: ControlServer, recorder: Recorder
) -> None:
    started = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(15)
        sock.connect(str(server.path))
        sent = 0
        try:
            for _ in range(160):  # 10 MiB, no newline
                sock.sendall(b"x" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = json.loads(_read_reply(sock))
    assert reply == {"v": V, "ok": False, "error": "request too large"}
    assert sent < 10 * 1024 * 1024  # the server stopped reading early and hung up
    assert time.monotonic() - started < 10
    assert_alive(recorder)


def test_close_without_newline(server: ControlServer, recorder: Recorder) -> None:
    for payload in (b"", b'{"v": 2, "cmd": "sta'):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(server.path))
            sock.sendall(payload)
    assert_alive(recorder)


def test_idle_clients_do_not_block_others(server: ControlServer, recorder: Recorder) -> None:
    idle = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(10)]
    try:
        for sock in idle:
            sock.settimeout(10)
            sock.connect(str(server.path))
        started = time.monotonic()
        assert_alive(recorder)
        assert time.monotonic() - started < 0.5
        for sock in idle:  # each idler is answered after the server's timeout (1 s here)
            reply = json.loads(_read_reply(sock))
            assert reply["error"] == "timed out waiting for the request"
    finally:
        for sock in idle:
            sock.close()
    assert_alive(recorder)


def test_too_many_open_connections(
    server: ControlServer, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_mod, "MAX_CONNECTIONS", 3)
    idle = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(3)]
    try:
        for sock in idle:
            sock.connect(str(server.path))
        time.sleep(0.2)  # let the server accept them
        with pytest.raises(DaemonError, match="busy"):
            control.request("status")
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    assert_alive(recorder)


# -- handler failures --------------------------------------------------------------------------


def _raise(exc: BaseException) -> Callable[[str], Any]:
    def behave(cmd: str) -> Any:
        raise exc

    return behave


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        (_raise(ValueError("the secret value")), "internal error: ValueError"),
        (_raise(KeyError("k")), "internal error: KeyError"),
        (lambda cmd: ["not", "a", "dict"], "internal error: TypeError"),
        (lambda cmd: {"x": object()}, "internal error: TypeError"),
        (lambda cmd: {"x": float("nan")}, "internal error: ValueError"),
    ],
)
def test_handler_failure_is_an_error_response(
    server: ControlServer,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
    behaviour: Callable[[str], Any],
    error: str,
) -> None:
    recorder.behaviour = behaviour
    with pytest.raises(DaemonError) as info:
        control.request("reload")
    assert info.value.message == f"credguard daemon: {error}"
    assert "secret" not in info.value.message
    failures = [r for r in caplog.records if r.name == "credguard.daemon" and r.exc_info]
    assert failures and failures[0].levelno == logging.ERROR
    recorder.behaviour = None
    assert_alive(recorder)


def test_handler_credguard_error_is_passed_on(server: ControlServer, recorder: Recorder) -> None:
    recorder.behaviour = _raise(StateError("vault is busy"))
    with pytest.raises(DaemonError, match=r"^credguard daemon: vault is busy$") as info:
        control.request("scan")
    assert info.value.exit_code == ExitCode.STATE
    recorder.behaviour = None
    assert_alive(recorder)


def test_stop_from_the_handler_is_refused(server: ControlServer, recorder: Recorder) -> None:
    recorder.behaviour = lambda cmd: server.stop()
    with pytest.raises(DaemonError, match="internal error: RuntimeError"):
        control.request("reload")
    recorder.behaviour = None
    assert_alive(recorder)


def test_unknown_platform_peers_are_refused(
    server: ControlServer, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDGUARD_PLATFORM", "other")  # no peer-credential query: fail closed
    with pytest.raises(DaemonError, match="serves only its owner"):
        control.request("status", path=server.path)
    assert recorder.calls == []
    monkeypatch.delenv("CREDGUARD_PLATFORM")
    assert_alive(recorder)


def test_the_server_thread_is_joined_on_stop(recorder: Recorder) -> None:
    srv = ControlServer(recorder)
    srv.start()
    assert "credguard-control" in {t.name for t in threading.enumerate()}
    with pytest.raises(RuntimeError):
        srv.start()
    srv.stop()
    assert "credguard-control" not in {t.name for t in threading.enumerate()}


# -- the client against a misbehaving daemon --------------------------------------------------


class FakeDaemon:
    """A listener on the control socket that answers one connection with ``reply`` (or
    nothing, holding the connection until closed)."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.done = threading.Event()
        path = control.socket_path()
        server_mod.prepare_control_dir(path.parent)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.recv(65536)
            if self.reply is not None:
                conn.sendall(self.reply)
            else:
                self.done.wait(10)

    def close(self) -> None:
        self.done.set()
        self.thread.join()
        self.sock.close()


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"garbage\n", "malformed response"),
        (b"[]\n", "malformed response"),
        (b'{"v": 2, "ok": true, "result": [1]}\n', "malformed response"),
        (b'{"v": 1, "ok": true, "result": {}}\n', "another protocol version"),
        (b'{"v": 2, "ok": false, "error": "red \\u001b[31m alert"}\n', "red ?[31m alert"),
        (b'{"v": 2, "ok": true, "result"', "closed without an answer"),
        (None, "no answer within 0.5 s"),
    ],
)
def test_client_handles_a_misbehaving_daemon(reply: bytes | None, message: str) -> None:
    fake = FakeDaemon(reply)
    try:
        started = time.monotonic()
        with pytest.raises(DaemonError) as info:
            control.request("status", timeout=0.5)
        assert message in info.value.message
        assert time.monotonic() - started < 3
    finally:
        fake.close()


# -- another user ------------------------------------------------------------------------------

CHILD = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print(json.dumps({"errno": exc.errno}))
    sys.exit(0)
try:
    s.sendall(b'{"v": 1, "cmd": "status", "args": {}}\n')
except OSError:
    pass
data = b""
try:
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except OSError:
    pass
print(json.dumps({"errno": 0, "reply": data.decode("utf-8", "replace")}))
"""


def _as_other_user(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, user=OTHER_UID, group=OTHER_UID, extra_groups=[], cwd="/",
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def _other_user_python() -> str:
    """An interpreter uid 4242 can run: the venv's lives under /root (0700) in CI."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a client as another user")
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            if _as_other_user([python, "-I", "-c", "pass"]).returncode == 0:
                return python
        except OSError:
            continue
    pytest.skip("no Python interpreter that uid 4242 can run")


def connect_as_other_user(path: Path) -> dict[str, Any]:
    proc = _as_other_user([_other_user_python(), "-I", "-c", CHILD, str(path)])
    assert proc.returncode == 0, proc.stderr
    outcome = json.loads(proc.stdout)
    assert isinstance(outcome, dict)
    return outcome


@pytest.mark.security
def test_another_user_is_stopped_by_the_0700_directory(
    server: ControlServer, recorder: Recorder
) -> None:
    runtime = server.path.parent.parent
    runtime.chmod(0o711)  # only the control dir's own 0700 stands in the way
    assert connect_as_other_user(server.path) == {"errno": errno.EACCES}
    assert recorder.calls == []
    assert_alive(recorder)


@pytest.mark.security
def test_another_user_is_refused_by_peer_uid(
    server: ControlServer, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    runtime, directory = server.path.parent.parent, server.path.parent
    runtime.chmod(0o711)
    directory.chmod(0o711)  # test only: let the connection reach the server
    server.path.chmod(0o666)
    try:
        outcome = connect_as_other_user(server.path)
    finally:
        directory.chmod(0o700)
        server.path.chmod(0o600)
    assert outcome["errno"] == 0
    assert json.loads(outcome["reply"]) == {"v": V, "ok": False, "error": server_mod.REFUSED}
    assert recorder.calls == []
    assert any(f"uid {OTHER_UID}" in r.getMessage() for r in caplog.records)
    assert_alive(recorder)


def test_errors_are_credguard_errors() -> None:
    for cls in (ProtocolError, DaemonError, DaemonNotRunning):
        assert issubclass(cls, CredguardError)
