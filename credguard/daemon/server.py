"""The daemon's control server: a channel only its owner can use (a Unix socket; on Windows
the loopback channel of :mod:`credguard.control.channel`).

The socket is ``control.sock`` in :func:`credguard.paths.control_dir` (the user's own, 0700;
without a runtime dir, the one :func:`credguard.control.daemon_socket_path` makes); it is 0600,
and each connection's peer uid is checked before a byte is read. One thread
("credguard-control") multiplexes all connections, so a client that idles holds up nobody (it
gets an error after ``timeout`` s), and answers the quick commands itself. A slow command
(``scan``) runs on a thread of its own ("credguard-control-scan"), at most
:data:`MAX_BACKGROUND` at once: one more is answered "busy" at once, never queued, so ``status``
always answers. A large result is streamed in parts (:func:`credguard.control.parts`).
Whatever a client sends or the handler raises becomes an error response, never a dead thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credguard import control, xdg
from credguard.control import channel
from credguard.control.channel import peer_uid as peer_uid  # the Unix socket's peer check
from credguard.errors import CredguardError, StateError

log = logging.getLogger("credguard.daemon")

Handler = Callable[[str, dict[str, Any]], dict[str, Any] | control.Streamed]

CONNECTION_TIMEOUT = 5.0  # seconds a client has to send its request line
WRITE_TIMEOUT = 1.0  # seconds to hand a response to the kernel
STREAM_TIMEOUT = 30.0  # seconds a slow command's client may leave one line unread
MAX_CONNECTIONS = 64  # open connections waiting for their request line
BACKGROUND = ("scan", "protect", "exec", "item")  # the commands that run off the server thread
MAX_BACKGROUND = 2  # of them at once; one more is answered "busy"
STOP_JOIN = 1.0  # seconds stop() waits for them (daemon threads: they never block an exit)
REFUSED = "permission denied: this control socket serves only its owner"
_LISTENER, _WAKE = "listener", "wake"


class _ClientGone(Exception):
    """The client stopped reading a streamed answer (it left, or sat STREAM_TIMEOUT)."""


def _stream(conn: socket.socket, reply: control.Streamed) -> object:
    """Send each part of ``reply``; its final value. Closes ``reply`` in any case."""
    try:
        while True:
            try:
                part = next(reply)
            except StopIteration as done:
                return done.value
            for line in control.part_lines(part):
                try:
                    conn.sendall(line)
                except OSError:
                    raise _ClientGone from None
    finally:
        reply.close()


def prepare_control_dir(directory: Path) -> None:
    """Create ``directory`` 0700 if it is missing, then :func:`control.check_control_dir`."""
    try:
        directory.mkdir(mode=0o700, parents=True)
        os.chmod(directory, 0o700)  # a strict umask may have narrowed it
    except FileExistsError:
        pass
    except OSError as exc:
        raise StateError(f"cannot create control directory {directory}: {exc.strerror}") from None
    control.check_control_dir(directory)


def _reply(conn: socket.socket, response: bytes) -> None:
    """Send ``response`` if the client still listens, then close the connection."""
    try:
        conn.settimeout(WRITE_TIMEOUT)
        conn.sendall(response)
    except OSError:
        pass  # the client left: nothing to tell it
    finally:
        conn.close()


@dataclass
class _Conn:
    sock: socket.socket
    deadline: float
    buf: bytearray = field(default_factory=bytearray)


class ControlServer:
    """Serves :mod:`credguard.control` requests on ``path`` (default: the control socket).

    ``handler(cmd, args)`` receives validated, normalised arguments (:func:`control.validate`)
    and returns a JSON-able dict, or for a large one a :data:`credguard.control.Streamed`
    generator. The commands in ``background`` run on threads of their own, at most
    ``max_background`` at once (the handler must be safe to call from several threads for
    them); the others on the server thread, one call at a time. A CredguardError it raises is
    sent as the error message; any other exception as ``internal error: <Name>``.
    """

    def __init__(
        self,
        handler: Handler,
        path: Path | None = None,
        *,
        timeout: float = CONNECTION_TIMEOUT,
        background: tuple[str, ...] = BACKGROUND,
        max_background: int = MAX_BACKGROUND,
    ) -> None:
        self.path = path if path is not None else control.daemon_socket_path()
        self._channel = channel.for_platform()
        self._endpoint = self._channel.endpoint(self.path)  # the socket, or the port's file
        self._handler = handler
        self._timeout = timeout
        self._background = background
        self._max_background = max_background
        self._slots = threading.BoundedSemaphore(max_background)
        self._workers: set[threading.Thread] = set()
        self._workers_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._inode: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Check the directory, take the socket (StateError if another daemon runs or the
        directory is unsafe), and serve in the background until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError("control server already started")
        prepare_control_dir(self.path.parent)
        if isinstance(self._channel, channel.LoopbackChannel) and control.is_running(self.path):
            raise StateError("another credguard daemon is running (it answers on the port in "
                             f"{self._endpoint})")
        sel: selectors.BaseSelector | None = None
        try:
            self._sock = self._channel.listen(self._endpoint)
            st = os.lstat(self._endpoint)
            self._inode = (st.st_dev, st.st_ino)
            self._wake = socket.socketpair()
            sel = selectors.DefaultSelector()  # not on the thread: EMFILE fails start() itself
            sel.register(self._sock, selectors.EVENT_READ, _LISTENER)
            sel.register(self._wake[0], selectors.EVENT_READ, _WAKE)
            thread = threading.Thread(target=self._serve, args=(sel,), name="credguard-control",
                                      daemon=True)
            thread.start()
            self._thread = thread
        except BaseException:
            if sel is not None:
                sel.close()
            self._close()
            raise
        what = "socket" if self._channel.checks_peer else "channel (loopback, keyed)"
        log.info("control %s listening on %s", what, self._endpoint)

    def stop(self) -> None:
        """Stop serving, join the thread, remove the socket; safe to call more than once.
        Not from a handler on the server thread (it cannot join itself). Slow commands still
        running get :data:`STOP_JOIN` seconds to finish; their threads never block an exit."""
        if self._thread is threading.current_thread():
            raise RuntimeError("ControlServer.stop() called from its own handler")
        thread, self._thread = self._thread, None
        if thread is not None:
            if self._wake is not None:
                with contextlib.suppress(OSError):
                    self._wake[1].send(b"x")
            thread.join()
        with self._workers_lock:
            workers = self._workers - {threading.current_thread()}
        deadline = time.monotonic() + STOP_JOIN
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._close()

    def _close(self) -> None:
        for sock in (self._sock, *(self._wake or ())):
            if sock is not None:
                sock.close()
        with contextlib.suppress(OSError):
            st = os.lstat(self._endpoint)
            if (st.st_dev, st.st_ino) == self._inode:
                self._endpoint.unlink()
        self._sock, self._wake, self._inode = None, None, None

    def _serve(self, sel: selectors.BaseSelector) -> None:
        try:
            while self._step(sel):
                pass
        finally:
            for key in list(sel.get_map().values()):
                if isinstance(key.data, _Conn):
                    key.data.sock.close()
            sel.close()

    def _step(self, sel: selectors.BaseSelector) -> bool:
        """One round of the loop: False when stop() woke it. Survives any exception."""
        try:
            for key, _events in sel.select(self._expire(sel)):
                if key.data == _WAKE:
                    return False
                if key.data == _LISTENER:
                    self._accept(sel)
                else:
                    self._receive(sel, key.data)
        except Exception:
            log.exception("control server error (still serving)")
            time.sleep(0.05)  # no busy loop if the failure persists
        return True

    def _accept(self, sel: selectors.BaseSelector) -> None:
        assert self._sock is not None
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # EMFILE, ECONNABORTED...: try again later
            log.warning("control socket accept failed: %s", exc.strerror)
            time.sleep(0.05)
            return
        if self._channel.checks_peer:
            uid = peer_uid(conn)  # first, before reading anything
            if uid is None or uid != xdg.euid():
                log.warning("refused a control connection from uid %s", uid)
                _reply(conn, control.error_line(REFUSED))
                return
        if len(sel.get_map()) - 2 >= MAX_CONNECTIONS:
            _reply(conn, control.error_line("busy: too many open control connections"))
            return
        conn.setblocking(False)
        sel.register(conn, selectors.EVENT_READ, _Conn(conn, time.monotonic() + self._timeout))

    def _receive(self, sel: selectors.BaseSelector, conn: _Conn) -> None:
        try:
            chunk = conn.sock.recv(control.MAX_REQUEST + 1 - len(conn.buf))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        end = chunk.find(b"\n")
        conn.buf += chunk if end < 0 else chunk[:end]
        if len(conn.buf) > control.MAX_REQUEST:
            self._finish(sel, conn, control.error_line("request too large"))
        elif end >= 0:
            sel.unregister(conn.sock)
            self._dispatch(conn.sock, bytes(conn.buf))
        elif not chunk:
            self._finish(
                sel, conn, control.error_line("incomplete request: no newline before the end")
            )

    def _expire(self, sel: selectors.BaseSelector) -> float | None:
        """Answer connections past their deadline; the seconds until the next deadline."""
        now, waiting = time.monotonic(), []
        for key in list(sel.get_map().values()):
            if not isinstance(key.data, _Conn):
                continue
            if key.data.deadline <= now:
                self._finish(sel, key.data, control.error_line("timed out waiting for the request"))
            else:
                waiting.append(key.data.deadline - now)
        return min(waiting, default=None)

    def _finish(self, sel: selectors.BaseSelector, conn: _Conn, response: bytes) -> None:
        sel.unregister(conn.sock)
        _reply(conn.sock, response)

    def _dispatch(self, sock: socket.socket, line: bytes) -> None:
        """Answer one request line: here, or on a thread of its own for a slow command."""
        try:
            line, proof = self._channel.admit(line)
        except channel.Refused as exc:
            log.warning("refused a control request: %s", exc)
            _reply(sock, control.error_line(REFUSED))
            return
        if proof:  # the loopback channel's: first, that this daemon holds the user's key
            try:
                sock.settimeout(WRITE_TIMEOUT)
                sock.sendall(proof)
            except OSError:
                sock.close()
                return
        try:
            cmd, args = control.parse_request(line)
        except control.ProtocolError as exc:
            _reply(sock, control.error_line(exc.message))
            return
        if cmd not in self._background:
            self._answer(sock, cmd, args, WRITE_TIMEOUT)
            return
        if not self._slots.acquire(blocking=False):
            _reply(sock, control.error_line(
                f"busy: {self._max_background} {cmd}s are running already "
                "(try again when one has finished)"))
            return
        worker = threading.Thread(target=self._answer_in_background, args=(sock, cmd, args),
                                  name=f"credguard-control-{cmd}", daemon=True)
        with self._workers_lock:
            self._workers.add(worker)
        try:
            worker.start()
        except RuntimeError:  # no thread to be had: say so rather than hang the client
            self._done(worker)
            _reply(sock, control.error_line(f"busy: cannot start a {cmd} now"))

    def _answer_in_background(self, sock: socket.socket, cmd: str, args: dict[str, Any]) -> None:
        try:
            self._answer(sock, cmd, args, STREAM_TIMEOUT)
        finally:
            self._done(threading.current_thread())

    def _done(self, worker: threading.Thread) -> None:
        with self._workers_lock:
            self._workers.discard(worker)
        self._slots.release()

    def _answer(self, sock: socket.socket, cmd: str, args: dict[str, Any],
                write_timeout: float) -> None:
        """Run the handler and send its answer (parts, then the final line), then close."""
        try:
            sock.settimeout(write_timeout)  # each line must leave within it
            sock.sendall(self._respond(sock, cmd, args))
        except (OSError, _ClientGone):
            pass  # the client left: nothing to tell it
        finally:
            sock.close()

    def _respond(self, sock: socket.socket, cmd: str, args: dict[str, Any]) -> bytes:
        """The final line; the parts of a streamed answer are sent on ``sock`` on the way."""
        try:
            reply = self._handler(cmd, args)
            result = _stream(sock, reply) if isinstance(reply, Generator) else reply
            if not isinstance(result, dict):
                raise TypeError(f"the {cmd} handler returned {type(result).__name__}")
            return control.ok_line(result)
        except _ClientGone:
            raise
        except CredguardError as exc:
            log.info("control %s refused: %s", cmd, exc.message)
            return control.error_line(exc.message)
        except BaseException as exc:  # the server thread must outlive any handler failure
            log.exception("control handler failed on %s", cmd)
            return control.error_line(f"internal error: {type(exc).__name__}")
