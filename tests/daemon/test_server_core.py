"""The control server's own guarantees, each pinned by a test that fails without it (found by
mutation testing, docs/mutation.md): stop() is bounded and complete, a client that stops
reading cannot hold the server or a scan slot, too many idle connections get a clear answer,
a failing accept() neither kills nor spins the server, a refused uid is logged."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import attacker
from helpers.daemon import wait_for

from credguard import control
from credguard.control import Part
from credguard.daemon import server as server_mod
from credguard.daemon.server import ControlServer

pytestmark = pytest.mark.timeout(60)


@contextmanager
def serving(handler: server_mod.Handler, **kwargs: Any) -> Iterator[ControlServer]:
    srv = ControlServer(handler, timeout=2.0, **kwargs)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def raw_request(srv: ControlServer, cmd: str, **args: Any) -> socket.socket:
    """A connected client that has sent its request and reads nothing yet."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(srv.path))
    sock.sendall(control.encode({"v": control.PROTOCOL, "cmd": cmd, "args": args}))
    return sock


def test_stop_from_its_own_handler_is_refused_with_a_message() -> None:
    said: list[str] = []
    box: list[ControlServer] = []

    def handler(cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            box[0].stop()
        except RuntimeError as exc:
            said.append(str(exc))
        return {}

    with serving(handler) as srv:
        box.append(srv)
        control.request("status", timeout=5)
    assert said == ["ControlServer.stop() called from its own handler"]


def test_stop_waits_for_a_finishing_scan_but_not_past_its_bound() -> None:
    """A scan that ends within STOP_JOIN is waited for; two that never end cost STOP_JOIN in
    all, not per scan, and never an unbounded wait."""
    quick_done = threading.Event()
    hold = threading.Event()

    def handler(cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        if args["paths"] == ["/quick"]:
            time.sleep(0.4)
            quick_done.set()
        elif cmd == "scan":
            hold.wait(30)
        return {}

    srv = ControlServer(handler, timeout=2.0)
    srv.start()
    clients = [raw_request(srv, "scan", paths=["/quick"])]
    wait_for(lambda: len(srv._workers) == 1, timeout=5)
    srv.stop()
    assert quick_done.is_set(), "stop() returned before a scan that was about to finish"
    for c in clients:
        c.close()

    srv = ControlServer(handler, timeout=2.0)
    srv.start()
    clients = [raw_request(srv, "scan", paths=["/slow"]) for _ in range(2)]
    wait_for(lambda: len(srv._workers) == 2, timeout=5)
    held = list(srv._workers)
    started = time.monotonic()
    srv.stop()
    took = time.monotonic() - started
    hold.set()
    for c in clients:
        c.close()
    for worker in held:
        worker.join(10)
    assert server_mod.STOP_JOIN - 0.2 <= took < server_mod.STOP_JOIN + 0.8, took


def test_finished_scans_leave_no_thread_behind() -> None:
    with serving(lambda cmd, args: {"scanned": True}) as srv:
        for _ in range(5):
            assert control.request("scan", timeout=5, path=srv.path) == {"scanned": True}
        wait_for(lambda: not srv._workers, timeout=5)


def test_a_client_that_does_not_read_its_answer_cannot_hold_the_server() -> None:
    """A reply of many megabytes to a client that never reads: the server gives up after
    WRITE_TIMEOUT and answers the next client."""
    big = {"blob": "x" * (8 << 20)}

    def handler(cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        return big if cmd == "config" else {"ok": True}

    with serving(handler) as srv:
        stuck = raw_request(srv, "config")
        time.sleep(0.2)
        started = time.monotonic()
        assert control.request("status", timeout=10, path=srv.path) == {"ok": True}
        assert time.monotonic() - started < server_mod.WRITE_TIMEOUT + 3
        stuck.close()


def test_a_scan_client_that_stops_reading_gives_its_slot_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server_mod, "STREAM_TIMEOUT", 0.5)
    closed = threading.Semaphore(0)

    def endless(cmd: str, args: dict[str, Any]) -> control.Streamed | dict[str, Any]:
        if args["paths"] is None:
            return {"done": True}

        def reply() -> control.Streamed:
            try:
                while True:
                    yield Part(("scan", "skipped"),
                               [{"path": "/x" * 200, "reason": "symlink", "detail": ""}]
                               * control.PART_ITEMS)
            finally:
                closed.release()

        return reply()

    with serving(endless) as srv:
        idle = [raw_request(srv, "scan", paths=["/x"]) for _ in range(2)]  # never read
        for _ in range(2):
            assert closed.acquire(timeout=10), "a slot held by a client that stopped reading"
        assert control.request("scan", timeout=5, path=srv.path) == {"done": True}
        for c in idle:
            c.close()


def test_too_many_idle_connections_get_a_clear_answer() -> None:
    with serving(lambda cmd, args: {"ok": True}) as srv:
        idle = []
        for _ in range(server_mod.MAX_CONNECTIONS):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(srv.path))
            idle.append(sock)
        time.sleep(0.3)  # accepted, each waiting for its request line
        with pytest.raises(control.DaemonError) as info:
            control.request("status", timeout=5, path=srv.path)
        assert str(info.value) == "credguard daemon: busy: too many open control connections"
        for sock in idle:
            sock.close()
        def answers() -> bool:
            try:
                return control.request("status", timeout=2, path=srv.path) == {"ok": True}
            except control.DaemonError:
                return False  # the closed connections not yet reaped

        wait_for(answers, timeout=10)


_EMFILE = """
import json, logging, os, resource, socket, sys, time
from pathlib import Path
from credguard import control
from credguard.daemon.server import ControlServer

records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
logging.getLogger("credguard").addHandler(Keep())
srv = ControlServer(lambda cmd, args: {"ok": True}, Path(sys.argv[1]), timeout=2.0)
srv.start()
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
lowest_free = os.open(os.devnull, os.O_RDONLY)
os.close(lowest_free)
resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
client.connect(sys.argv[1])
time.sleep(0.5)
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
seen = list(records)
client.close()
answer = control.request("status", timeout=5, path=srv.path)
srv.stop()
print(json.dumps({"records": seen, "answer": answer}))
"""


def test_a_failing_accept_is_logged_and_the_server_lives_on(tmp_path: Path) -> None:
    """EMFILE (the open-file limit reached) on accept: a warning naming the error, a short
    pause between tries (no busy loop), and the next client is served once descriptors are
    free again. In a process of its own: the limit is process-wide."""
    where = tmp_path / "ctl"
    where.mkdir(mode=0o700)
    done = subprocess.run([sys.executable, "-c", _EMFILE, str(where / "s.sock")],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    failed = [r for r in out["records"] if "accept failed" in r]
    assert failed and set(failed) == {"control socket accept failed: Too many open files"}
    assert not [r for r in out["records"] if "control server error" in r]  # handled in place
    assert len(failed) <= 20, f"{len(failed)} failed accepts in 0.5 s: a busy loop"
    assert len(failed) >= 2, "not tried again within 0.5 s: the pause is too long"
    assert out["answer"] == {"ok": True}


_CONNECT = """
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
try:
    sock.sendall(sys.argv[2].encode())
except BrokenPipeError:  # refused and closed before the line went out: the answer is queued
    pass
print(sock.recv(4096).decode())
"""


@pytest.mark.security
def test_another_uid_is_refused_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A real second uid that can reach the socket file (a shared sticky dir, the socket
    opened to everyone) is refused by its peer credentials, and the refusal is logged."""
    caplog.set_level(logging.WARNING, logger="credguard")
    with attacker.other_user() as user:
        where = Path(tempfile.mkdtemp(prefix="cg-ctl-"))
        where.chmod(0o700)
        path = where / "control.sock"
        with serving(lambda cmd, args: {"ok": True}, path=path) as srv:
            where.chmod(0o755)  # opened after the server's own check: reachable by anyone
            srv.path.chmod(0o666)
            line = control.encode({"v": control.PROTOCOL, "cmd": "status", "args": {}})
            done = user.run(_CONNECT, str(path), line.decode())
            assert done.returncode == 0, done.stderr
            assert server_mod.REFUSED in done.stdout.decode()
            assert f"refused a control connection from uid {user.uid}" in [
                r.getMessage() for r in caplog.records]


# -- what is left of the loop's own handling (mutation survivors) ------------------------------


def test_peer_credentials_are_asked_the_platform_s_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatcher picks the query by platform name; anything else is unknown (refused).
    Only its choice here: the macOS query itself runs in the conformance suite's simulated
    macOS (tests/platform)."""
    from credguard.control import channel

    asked: list[str] = []
    monkeypatch.setattr(channel, "_macos_peer_uid", lambda conn: asked.append("macos") or 501)
    left, right = socket.socketpair()
    try:
        assert server_mod.peer_uid(left) == os.geteuid()  # linux: the real SO_PEERCRED
        for name, uid in (("macos", 501), ("windows", None)):
            monkeypatch.setattr(channel.paths, "platform_name", lambda name=name: name)
            assert server_mod.peer_uid(left) == uid, name
    finally:
        left.close()
        right.close()
    assert asked == ["macos"]


def test_a_socket_path_that_cannot_be_bound_is_named_with_the_reason(tmp_path: Path) -> None:
    where = tmp_path / ("d" * 120)
    where.mkdir(mode=0o700)
    srv = ControlServer(lambda cmd, args: {}, where / "control.sock", timeout=2.0)
    with pytest.raises(server_mod.StateError) as error:
        srv.start()
    assert error.value.message == (f"cannot create control socket {where / 'control.sock'}: "
                                   "AF_UNIX path too long")


def test_an_error_in_the_loop_is_logged_and_serving_goes_on(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception inside the loop (here: answering a malformed request fails
    once, injected, as no real input makes it fail) is logged with its traceback, the loop
    pauses briefly, and the next client is served."""
    real = server_mod._reply
    failed: list[bool] = []

    def once(conn: socket.socket, response: bytes) -> None:
        if not failed:
            failed.append(True)
            conn.close()
            raise RuntimeError("injected")
        real(conn, response)

    monkeypatch.setattr(server_mod, "_reply", once)
    caplog.set_level(logging.ERROR, logger="credguard")
    with serving(lambda cmd, args: {"ok": True}) as srv:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(srv.path))
        sock.sendall(b"not json\n")
        sock.recv(4096)
        sock.close()
        wait_for(lambda: bool(failed), timeout=5)
        assert control.request("status", timeout=5, path=srv.path) == {"ok": True}
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage() == "control server error (still serving)"
    assert record.exc_info is not None and str(record.exc_info[1]) == "injected"


def test_a_worker_thread_that_cannot_start_is_answered_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No thread to be had (RuntimeError from start(), injected: as root no thread limit
    applies): the client is told, and the slot is given back."""
    real_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if self.name == "credguard-control-scan":
            raise RuntimeError("can't start new thread")
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    with serving(lambda cmd, args: {"ok": True}) as srv:
        for _ in range(3):  # more than the slots: each was given back
            with pytest.raises(control.DaemonError) as info:
                control.request("scan", timeout=5, path=srv.path)
            assert str(info.value).endswith("busy: cannot start a scan now")


def test_a_handler_that_returns_no_dict_is_an_internal_error_named_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="credguard")
    not_a_dict: Any = lambda cmd, args: [1, 2]  # noqa: E731
    with serving(not_a_dict) as srv, pytest.raises(control.DaemonError) as info:
        control.request("status", timeout=5, path=srv.path)
    assert str(info.value).endswith("internal error: TypeError")
    [record] = [r for r in caplog.records if r.getMessage() == "control handler failed on status"]
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "the status handler returned list"


def test_a_refusal_is_answered_and_logged_with_its_command(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handler(cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        raise server_mod.StateError("not now")

    caplog.set_level(logging.INFO, logger="credguard")
    with serving(handler) as srv, pytest.raises(control.DaemonError) as info:
        control.request("pause", timeout=5, path=srv.path)
    assert str(info.value).endswith("not now")
    assert "control pause refused: not now" in [r.getMessage() for r in caplog.records]


def test_stop_before_start_and_a_second_start_are_harmless_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="credguard")
    where = tmp_path / "ctl"
    where.mkdir(mode=0o700)
    srv = ControlServer(lambda cmd, args: {"ok": True}, where / "s.sock", timeout=2.0)
    srv.stop()  # nothing to stop: no error
    srv.start()
    assert f"control socket listening on {where / 's.sock'}" in [
        r.getMessage() for r in caplog.records]
    try:
        with pytest.raises(RuntimeError) as error:
            srv.start()
        assert str(error.value) == "control server already started"
    finally:
        srv.stop()
    srv.stop()
    assert not (where / "s.sock").exists()


def test_a_socket_whose_listener_is_swamped_counts_as_a_running_daemon(tmp_path: Path) -> None:
    """Somebody listens on the path with a full backlog: connecting blocks. The probe gives up
    after its timeout and refuses to replace the socket (never waits forever, never removes a
    live one)."""
    where = tmp_path / "ctl"
    where.mkdir(mode=0o700)
    path = where / "s.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(0)
    waiting = []
    try:
        while True:  # fill the backlog until a further connect would block
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.setblocking(False)
            waiting.append(client)
            try:
                client.connect(str(path))
            except BlockingIOError:
                break
        started = time.monotonic()
        with pytest.raises(server_mod.StateError) as error:
            ControlServer(lambda cmd, args: {}, path, timeout=2.0).start()
        assert time.monotonic() - started < 10
        assert error.value.message == f"another credguard daemon is running (it answers on {path})"
        assert path.exists()
    finally:
        for client in waiting:
            client.close()
        listener.close()


def test_a_socket_that_cannot_be_probed_is_refused_with_the_reason(tmp_path: Path) -> None:
    """A datagram socket of ours at the path: connecting a stream to it fails with EPROTOTYPE,
    neither "refused" (stale) nor "answers" (running): refused, named, left in place."""
    where = tmp_path / "ctl"
    where.mkdir(mode=0o700)
    path = where / "s.sock"
    odd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    odd.bind(str(path))
    try:
        with pytest.raises(server_mod.StateError) as error:
            ControlServer(lambda cmd, args: {}, path, timeout=2.0).start()
        assert error.value.message == (f"cannot probe control socket {path}: "
                                       "Protocol wrong type for socket")
        assert path.exists()
    finally:
        odd.close()


def test_a_server_never_keeps_its_process_alive(tmp_path: Path) -> None:
    """The serving thread is a daemon thread: a process that ends without stop() (a crash
    path, a forgotten stop) still exits instead of hanging on it."""
    where = tmp_path / "ctl"
    where.mkdir(mode=0o700)
    code = ("import sys; from pathlib import Path; "
            "from credguard.daemon.server import ControlServer; "
            "ControlServer(lambda c, a: {}, Path(sys.argv[1]), timeout=2.0).start(); "
            "print('serving')")
    done = subprocess.run([sys.executable, "-c", code, str(where / "s.sock")],
                          capture_output=True, text=True, timeout=20, check=False)
    assert (done.returncode, done.stdout) == (0, "serving\n"), done.stderr


def test_the_socket_is_born_private_not_narrowed_afterwards(tmp_path: Path) -> None:
    """bind() runs under umask 0177, so the socket file never exists with more than 0600 (the
    chmod after it is only a second word): checked on the real system calls (strace)."""
    where = tmp_path / "ctl"
    where.mkdir(mode=0o700)
    trace = tmp_path / "trace"
    code = ("import sys; from pathlib import Path; "
            "from credguard.daemon.server import ControlServer; "
            "s = ControlServer(lambda c, a: {}, Path(sys.argv[1]), timeout=2.0); s.start(); "
            "s.stop()")
    subprocess.run(["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=umask,bind",
                    sys.executable, "-c", code, str(where / "s.sock")],
                   check=True, capture_output=True, timeout=30)
    calls = [line.split(None, 1)[1] for line in trace.read_text().splitlines()
             if "umask(" in line or f'"{where}' in line]
    bind = next(i for i, call in enumerate(calls) if call.startswith("bind("))
    assert calls[bind - 1].startswith("umask(0177)"), calls
    assert calls[bind + 1].startswith("umask("), calls  # put back right after


def test_a_stale_socket_that_vanishes_while_being_removed_is_no_crash(tmp_path: Path) -> None:
    """Another process removes the stale socket first (the kernel answers our unlink with
    ENOENT, injected by strace): that is what was wanted, so it is no error of its own; the
    bind then meets whatever is at the path and says so."""
    where = tmp_path / "ctl"
    where.mkdir(mode=0o700)
    path = where / "s.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # nobody listens: stale
    code = ("import sys; from pathlib import Path; from credguard.errors import StateError; "
            "from credguard.daemon.server import ControlServer\n"
            "try:\n"
            "    ControlServer(lambda c, a: {}, Path(sys.argv[1]), timeout=2.0).start()\n"
            "except StateError as exc:\n"
            "    print(exc.message)\n")
    done = subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", "-P", str(path),
                           "-e", "trace=unlink,unlinkat", "-e",
                           "inject=unlink,unlinkat:error=ENOENT:when=1",
                           sys.executable, "-c", code, str(path)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"cannot create control socket {path}: Address already in use\n"
