"""Scans off the control server's thread, bounded, and results of any size streamed in parts.

First a real server on a real socket with a handler whose scans wait until released (a scan
cannot be held still at will otherwise); then the real daemon with real ``credguard scan``
processes over a tree of symbolic links named ``*.publishsettings``, each one a skip.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import attacker
from helpers.daemon import DaemonProcess, running_daemon, wait_for
from helpers.home import Home, run_subprocess
from helpers.secret_service import SecretService

from credguard import control
from credguard.control import DaemonError, Part
from credguard.daemon import server as server_mod
from credguard.daemon.server import ControlServer
from credguard.errors import ExitCode

pytestmark = pytest.mark.timeout(120)

BUSY = "busy: 2 scans are running already"


class HeldScans:
    """A handler whose scans wait until ``release`` is set; other commands answer at once."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()
        self.threads: set[str] = set()

    def __call__(self, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        if cmd == "scan":
            self.threads.add(threading.current_thread().name)
            self.entered.release()
            assert self.release.wait(30)
            return {"scanned": args["paths"]}
        return {"cmd": cmd}


@contextmanager
def serving(handler: server_mod.Handler) -> Iterator[ControlServer]:
    srv = ControlServer(handler, timeout=2.0)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``call`` on a thread; its result (or exception) lands in the returned list."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except Exception as exc:
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_status_answers_while_two_scans_run_and_a_third_is_busy() -> None:
    handler = HeldScans()
    with serving(handler):
        scans = [in_thread(functools.partial(control.request, "scan", timeout=30, paths=[path]))
                 for path in ("/s0", "/s1")]
        for _ in scans:
            assert handler.entered.acquire(timeout=10)
        for _ in range(5):
            started = time.monotonic()
            assert control.request("status", timeout=2) == {"cmd": "status"}
            assert time.monotonic() - started < 1
        with pytest.raises(DaemonError, match=BUSY) as info:
            control.request("scan", timeout=5)
        assert info.value.exit_code == ExitCode.STATE
        assert str(info.value).endswith(f"{BUSY} (try again when one has finished)")
        assert control.request("pause", timeout=2) == {"cmd": "pause"}
        handler.release.set()
        for thread, _ in scans:
            thread.join(10)
        assert [out for _, out in scans] == [[{"scanned": ["/s0"]}], [{"scanned": ["/s1"]}]]
        assert control.request("scan", timeout=5) == {"scanned": None}  # the slots are free
    assert handler.threads == {"credguard-control-scan"}


def _skips(count: int) -> Iterator[dict[str, str]]:
    return ({"path": f"/t/{i:06d}.publishsettings", "reason": "symlink"} for i in range(count))


def streamed(cmd: str, args: dict[str, Any]) -> control.Streamed:
    yield from control.parts(("scan", "skipped"), _skips(100_000))
    yield from control.parts(("errors",), [{"path": "/gone", "reason": "not-found"}])
    return {"scan": {"version": 1, "skipped": [], "stats": {"files": 0}}, "errors": []}


def raw_lines(path: Path, cmd: str) -> list[bytes]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(path))
        sock.sendall(control.encode({"v": control.PROTOCOL, "cmd": cmd, "args": {}}))
        data = b""
        while chunk := sock.recv(1 << 16):
            data += chunk
    return data.split(b"\n")[:-1]


def test_a_result_of_any_size_is_streamed_in_parts_and_arrives_whole() -> None:
    with serving(streamed) as srv:
        result = control.request("scan", timeout=30)
        lines = raw_lines(srv.path, "scan")
    assert result["scan"]["skipped"] == list(_skips(100_000))
    assert result["errors"] == [{"path": "/gone", "reason": "not-found"}]
    assert result["scan"]["stats"] == {"files": 0}
    assert len(lines) == 100_000 // control.PART_ITEMS + 2
    assert max(len(line) for line in lines) < control.PART_BYTES
    assert json.loads(lines[0])["part"]["at"] == ["scan", "skipped"]
    assert json.loads(lines[-1])["ok"] is True


def test_a_long_part_is_split_into_lines_the_client_accepts() -> None:
    items = [f"{i}" * 300_000 for i in range(10)]
    lines = list(control.part_lines(Part(("big",), items)))
    assert len(lines) > 1 and all(len(line) < control.PART_BYTES for line in lines)

    def handler(cmd: str, args: dict[str, Any]) -> control.Streamed:
        yield Part(("big",), items)
        return {}

    with serving(handler):
        assert control.request("scan", timeout=30) == {"big": items}


def test_an_error_after_parts_voids_them_and_closes_the_stream() -> None:
    closed = threading.Event()

    def handler(cmd: str, args: dict[str, Any]) -> control.Streamed:
        try:
            yield Part(("scan", "skipped"), [{"path": "/a"}])
            raise ValueError("the secret value")
        finally:
            closed.set()

    with serving(handler):
        with pytest.raises(DaemonError, match=r"^credguard daemon: internal error: ValueError$"):
            control.request("scan", timeout=10)
        assert closed.is_set()


def test_a_client_that_leaves_mid_stream_frees_its_slot() -> None:
    closed = threading.Semaphore(0)

    def endless(cmd: str, args: dict[str, Any]) -> control.Streamed | dict[str, Any]:
        if args["paths"] is None:
            return {"done": True}

        def reply() -> control.Streamed:
            try:
                while True:
                    yield Part(("scan", "skipped"), list(_skips(control.PART_ITEMS)))
            finally:
                closed.release()

        return reply()

    with serving(endless) as srv:
        for _ in range(3):  # more than the slots: each one was given back
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(str(srv.path))
                request = {"v": control.PROTOCOL, "cmd": "scan", "args": {"paths": ["/x"]}}
                sock.sendall(control.encode(request))
                assert b'"part"' in sock.recv(1 << 16)
            assert closed.acquire(timeout=10)
        wait_for(lambda: control.request("scan", timeout=5) == {"done": True}, timeout=10)


class OneReply:
    """A listener on the control socket that answers one request with ``reply``."""

    def __init__(self, reply: bytes) -> None:
        path = control.socket_path()
        assert path is not None
        server_mod.prepare_control_dir(path.parent)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.thread = threading.Thread(target=self._serve, args=(reply,))
        self.thread.start()

    def _serve(self, reply: bytes) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(reply)

    def close(self) -> None:
        self.thread.join(10)
        self.sock.close()


def _part(part: object, final: object = None) -> bytes:
    final = {"v": 2, "ok": True, "result": final if final is not None else {"x": 1}}
    return control.encode({"v": 2, "part": part}) + control.encode(final)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (_part({"at": ["a", "b"], "items": [1]}), {"x": 1, "a": {"b": [1]}}),
        (_part({"at": ["x"], "items": [1]}), "malformed response"),  # x is not a list
        (_part({"at": ["x", "y"], "items": [1]}), "malformed response"),  # nor a dict
        (_part({"at": [], "items": [1]}), "malformed response"),
        (_part({"at": ["a"] * 5, "items": [1]}), "malformed response"),
        (_part({"at": [1], "items": [1]}), "malformed response"),
        (_part({"at": "a", "items": [1]}), "malformed response"),
        (_part({"at": ["a"], "items": {}}), "malformed response"),
        (_part({"at": ["a"], "items": [], "more": 1}), "malformed response"),
        (_part([1]), "malformed response"),
        (control.encode({"v": 1, "part": {"at": ["a"], "items": []}}), "another protocol"),
        (control.encode({"v": 2, "part": {"at": ["a"], "items": []}}), "closed without"),
    ],
    ids=["placed", "onto-non-list", "through-non-dict", "empty-at", "deep-at", "int-key",
         "string-at", "dict-items", "extra-key", "list-part", "version-1", "no-final-line"],
)
def test_the_client_checks_each_part(reply: bytes, expected: object) -> None:
    fake = OneReply(reply)
    try:
        if isinstance(expected, dict):
            assert control.request("status", timeout=5) == expected
        else:
            with pytest.raises(DaemonError, match=str(expected)):
                control.request("status", timeout=5)
    finally:
        fake.close()


# -- the real daemon ---------------------------------------------------------------------------


@pytest.fixture
def daemon(secret_service: SecretService, home: Home, tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


def symlink_tree(directory: Path, count: int) -> list[str]:
    """``count`` symbolic links named ``*.publishsettings`` (long names: the old one-line
    answer for 100k of them passed its 16 MiB bound); their paths, sorted."""
    directory.mkdir()
    names = [f"{i:06d}-{'x' * 60}.publishsettings" for i in range(count)]
    for name in names:
        os.symlink("/nonexistent", directory / name)
    return sorted(str(directory / name) for name in names)


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@contextmanager
def two_scans_held(daemon: DaemonProcess, tree: Path, out: Path) -> Iterator[list[Any]]:
    """Two real ``credguard scan TREE --json`` in flight in the daemon, held there: each
    client is stopped (SIGSTOP) once the daemon runs both scan threads, so each thread waits
    to stream a result far larger than a socket buffer. Continued and awaited on exit."""
    assert daemon.proc is not None
    pid = daemon.proc.pid
    base = threads(pid)
    for _ in range(4):  # the idle daemon's own threads, a transient one not counted
        time.sleep(0.05)
        base = min(base, threads(pid))
    procs = []
    for i in range(2):
        with (out / f"scan{i}.json").open("wb") as stdout, \
             (out / f"scan{i}.err").open("wb") as stderr:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "credguard", "scan", str(tree), "--json"],
                env=daemon.env, stdout=stdout, stderr=stderr))
    try:
        wait_for(lambda: threads(pid) >= base + 2, timeout=30, every=0.01)
        for proc in procs:
            proc.send_signal(signal.SIGSTOP)
        yield procs
        assert threads(pid) >= base + 2  # still in flight after everything asked meanwhile
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGCONT)
        for proc in procs:
            proc.wait(60)


def check_scan_output(out: Path, i: int, expected: list[str]) -> None:
    doc = json.loads((out / f"scan{i}.json").read_text())
    assert sorted(s["path"] for s in doc["skipped"]) == expected
    assert {s["reason"] for s in doc["skipped"]} == {"symlink"}
    assert doc["findings"] == [] and doc["stats"]["files"] == len(expected)


def test_status_answers_while_two_real_scans_are_in_flight(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    expected = symlink_tree(tmp_path / "tree", 100_000)
    with two_scans_held(daemon, tmp_path / "tree", tmp_path) as procs:
        for _ in range(3):
            started = time.monotonic()
            status = run_subprocess("status", "--json", env=daemon.env)
            assert status.code == 0, status.err
            assert json.loads(status.out)["running"] is True
            assert time.monotonic() - started < 10  # the client's own timeout for status
        third = run_subprocess("scan", str(tmp_path / "tree"), "--json", env=daemon.env)
        assert third.code == ExitCode.STATE
        assert BUSY in third.err and "credguard scan --local" in third.err
    for i, proc in enumerate(procs):
        assert proc.returncode == 0, (tmp_path / f"scan{i}.err").read_text()
        check_scan_output(tmp_path, i, expected)


@pytest.mark.security
def test_another_uid_is_refused_by_the_real_daemon_while_scans_run(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to run a client as another user")
    expected = symlink_tree(tmp_path / "tree", 30_000)
    sock = control.socket_path()
    assert sock is not None
    script = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "s.settimeout(10)\n"
        "s.connect(sys.argv[1])\n"
        "try:\n"
        "    s.sendall(b'{\"v\": 2, \"cmd\": \"scan\", \"args\": {}}\\n')\n"
        "except BrokenPipeError:\n"  # refused before a byte is read: the server may close first
        "    pass\n"
        "data = b''\n"
        "while not data.endswith(b'\\n'):\n"
        "    chunk = s.recv(65536)\n"
        "    if not chunk: break\n"
        "    data += chunk\n"
        "sys.stdout.write(data.decode())\n"
    )
    with two_scans_held(daemon, tmp_path / "tree", tmp_path) as procs, \
         attacker.other_user() as user:
        opened = [sock.parent.parent, sock.parent]
        for directory in opened:
            directory.chmod(0o711)  # test only: let the other user reach the socket
        sock.chmod(0o666)
        try:
            run = user.run(script, str(sock))
        finally:
            sock.chmod(0o600)
            for directory in opened:
                directory.chmod(0o700)
        assert run.returncode == 0, run.stderr
        reply = json.loads(run.stdout)
        assert reply == {"v": 2, "ok": False, "error": server_mod.REFUSED}  # not "busy"
    assert f"refused a control connection from uid {user.uid}" in daemon.stderr()
    for i, proc in enumerate(procs):
        assert proc.returncode == 0, (tmp_path / f"scan{i}.err").read_text()
        check_scan_output(tmp_path, i, expected)
