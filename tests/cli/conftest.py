"""Fixtures of the command-line tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from helpers.home import Home

from credguard import control


@pytest.fixture
def stand_in(home: Home) -> Iterator[list[bytes]]:
    """A stand-in for the daemon's control socket, for the clients' tests (a real daemon
    answers only well; this gives the answers of an older daemon, or broken ones): a thread on
    a real Unix socket where the daemon's would be. Answers each connection with the next line
    of the list it yields, after reading the request line (a connection past the list's end
    gets no answer)."""
    answers: list[bytes] = []
    where = control.daemon_socket_path()
    where.parent.mkdir(mode=0o700, exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(where))
    server.listen(4)
    server.settimeout(0.05)  # accept wakes to see stop
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                if answers:
                    conn.sendall(answers.pop(0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield answers
    stop.set()
    thread.join(5)
    server.close()
