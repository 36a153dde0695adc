"""How the daemon's control connections are made and who may use them, per operating system:
the one dispatcher of the concern (:func:`for_platform`).

- **POSIX** (:class:`UnixChannel`): a Unix socket in the user's own 0700 directory, 0600; the
  server checks each peer's uid before reading a byte (:mod:`credguard.daemon.server`), the
  client that the directory is the user's (:func:`credguard.control.check_control_dir`).
- **Windows** (:class:`LoopbackChannel`; CPython there has no ``AF_UNIX``): a TCP socket on
  ``127.0.0.1`` and a port the system picks, written with a 256-bit key to ``control.json`` in
  the user's control directory, which only the user can read (the profile's ACL). Every
  request carries an HMAC-SHA256 of itself under the key, with a fresh nonce and the time
  (another process, which cannot read the key, is refused; a request replayed, or older than
  :data:`MAX_SKEW` seconds, too); the daemon's first line proves it holds the key (an HMAC
  of the client's nonce), so a client never believes a port someone else took after the
  daemon died.

  Why not a named pipe (with an ACL admitting only the user)? Windows' ``selectors`` waits
  on sockets only: a pipe would need a second server built on overlapped I/O, none of which
  can run here, while this channel runs the same server and is tested on Linux for real
  (tests/platform). What it gives up: any local process can open a connection and be refused
  (as with the Unix socket's uid check, the server reads nothing from it but one line, within
  its deadline).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import time
from collections import OrderedDict
from pathlib import Path

from credguard import paths
from credguard.control.wire import PROTOCOL, ProtocolError, decode, encode
from credguard.errors import StateError

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    from typing import Any

ENDPOINT_NAME = "control.json"  # the loopback channel's port and key
MAX_SKEW = 60  # seconds a request's time may differ from the daemon's
_SEEN = 4096  # nonces remembered against replay (within MAX_SKEW of each other)
_KEY_BYTES = 32
_REQUEST_LABEL, _PROOF_LABEL = b"credguard-request\0", b"credguard-daemon\0"
LOOPBACK = "127.0.0.1"

# Lean for the client, which ``credguard exec`` and ``protect`` load on every run: what only
# the daemon's side or the loopback channel needs (logging, struct, threading, hmac and
# hashlib, which loads OpenSSL) is imported where it is used.


class Refused(Exception):
    """A request the channel does not admit (no valid authentication)."""


class UnixChannel:
    """A Unix socket; who connects is the peer's uid (checked by the server on accept)."""

    name = "unix"
    checks_peer = True

    def endpoint(self, socket_path: Path) -> Path:
        return socket_path

    def admit(self, line: bytes) -> tuple[bytes, bytes]:
        """The request line itself, and no proof line: the uid was checked on accept."""
        return line, b""

    def request_line(self, message: dict[str, Any], endpoint: Path) -> tuple[bytes, bytes]:
        return encode(message), b""

    def listen(self, endpoint: Path) -> socket.socket:
        """The socket at ``endpoint``, 0600, listening and non-blocking: a stale one of ours
        is replaced, anything else there refused (StateError)."""
        clear_stale(endpoint)
        return bind(endpoint)

    def connect(self, endpoint: Path, timeout: float) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(os.fspath(endpoint))
        except BaseException:
            sock.close()
            raise
        return sock


class LoopbackChannel:
    """127.0.0.1 with an HMAC key only the user can read (see the module's docstring)."""

    name = "loopback"
    checks_peer = False

    def __init__(self) -> None:
        import threading

        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()
        self._key: bytes | None = None

    def endpoint(self, socket_path: Path) -> Path:
        return socket_path.with_name(ENDPOINT_NAME)

    # -- the daemon's side -----------------------------------------------------------------

    def listen(self, endpoint: Path) -> socket.socket:
        """A listening socket on 127.0.0.1, its port and a new key written to ``endpoint``."""
        from credguard.fs.atomic import atomic_write

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((LOOPBACK, 0))
            sock.listen(16)
            sock.setblocking(False)
            key = os.urandom(_KEY_BYTES)
            record = {"v": 1, "port": sock.getsockname()[1], "key": key.hex()}
            atomic_write(endpoint, json.dumps(record).encode())
        except BaseException:
            sock.close()
            raise
        self._key = key
        return sock

    def admit(self, line: bytes) -> tuple[bytes, bytes]:
        """The request line without its authentication, and the proof line to send first;
        :class:`Refused` unless the request is authentic, fresh and new."""
        if self._key is None:
            raise Refused("no key")
        try:
            message = decode(line)
        except ProtocolError:
            raise Refused("malformed") from None
        if not isinstance(message, dict):
            raise Refused("malformed")
        auth = message.pop("auth", None)
        if not isinstance(auth, dict):
            raise Refused("no authentication")
        nonce, when, mac = auth.get("nonce"), auth.get("time"), auth.get("mac")
        if not (isinstance(nonce, str) and len(nonce) == 32 and isinstance(when, int)
                and isinstance(mac, str)):
            raise Refused("malformed authentication")
        try:
            raw = bytes.fromhex(nonce)
        except ValueError:
            raise Refused("malformed authentication") from None
        body = encode(message)
        import hmac

        if not hmac.compare_digest(mac, _mac(self._key, _REQUEST_LABEL, raw, when, body)):
            raise Refused("wrong key")
        now = time.time()
        if abs(now - when) > MAX_SKEW:
            raise Refused("stale")
        with self._lock:
            while self._seen and (len(self._seen) >= _SEEN
                                  or next(iter(self._seen.values())) < now - 2 * MAX_SKEW):
                self._seen.popitem(last=False)
            if raw in self._seen:
                raise Refused("replayed")
            self._seen[raw] = now
        proof = _mac(self._key, _PROOF_LABEL, raw, 0, b"")
        return body, encode({"v": PROTOCOL, "proof": proof})

    # -- the client's side -----------------------------------------------------------------

    def request_line(self, message: dict[str, Any], endpoint: Path) -> tuple[bytes, bytes]:
        """The authenticated request line and the proof line the daemon must answer first."""
        _port, key = read_endpoint(endpoint)
        raw, when = os.urandom(16), int(time.time())
        auth = {"nonce": raw.hex(), "time": when,
                "mac": _mac(key, _REQUEST_LABEL, raw, when, encode(message))}
        proof = encode({"v": PROTOCOL, "proof": _mac(key, _PROOF_LABEL, raw, 0, b"")})
        return encode({**message, "auth": auth}), proof

    def connect(self, endpoint: Path, timeout: float) -> socket.socket:
        port, _key = read_endpoint(endpoint)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect((LOOPBACK, port))
        except BaseException:
            sock.close()
            raise
        return sock


# -- the Unix socket (POSIX) ----------------------------------------------------------------

_UCRED = "=iII"  # Linux struct ucred: pid, uid, gid
_UCRED_SIZE = 12
_XUCRED_SIZE = 76  # macOS struct xucred: version, uid, ngroups, groups[16]


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end of ``conn``, or None when it cannot be known
    (an unsupported platform or a failed query): callers refuse such peers."""
    query = {"linux": _linux_peer_uid, "macos": _macos_peer_uid}.get(paths.platform_name())
    import struct

    try:
        return query(conn) if query is not None else None
    except (OSError, struct.error):
        return None


def _linux_peer_uid(conn: socket.socket) -> int:
    import struct

    data = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED_SIZE)
    _pid, uid, _gid = struct.unpack(_UCRED, data)
    return int(uid)


def _macos_peer_uid(conn: socket.socket) -> int | None:
    sol_local, local_peercred = 0, getattr(socket, "LOCAL_PEERCRED", 0x001)
    data = conn.getsockopt(sol_local, local_peercred, _XUCRED_SIZE)
    import struct

    version, uid = struct.unpack_from("=II", data)
    return int(uid) if version == 0 else None  # XUCRED_VERSION




def clear_stale(path: Path) -> None:
    """Remove a socket of ours left by a dead daemon; refuse anything else at ``path``."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.geteuid():
        raise StateError(f"refusing to replace {path}: it is not a socket of yours (remove it)")
    alive = True
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(os.fspath(path))
        except (ConnectionRefusedError, FileNotFoundError):
            alive = False  # nobody listens: stale
        except (TimeoutError, BlockingIOError):  # EAGAIN: Linux's answer to a full backlog
            pass  # somebody listens
        except OSError as exc:
            raise StateError(f"cannot probe control socket {path}: {exc.strerror}") from None
    if alive:
        raise StateError(f"another credguard daemon is running (it answers on {path})")
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    import logging

    logging.getLogger("credguard.daemon").info("removed stale control socket %s", path)


def bind(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o177)  # process-wide for a moment: the socket is born 0600
        try:
            sock.bind(os.fspath(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        sock.listen(16)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise StateError(f"cannot create control socket {path}: {exc.strerror or exc}") from None
    return sock


# -- the loopback channel's key --------------------------------------------------------------


def _mac(key: bytes, label: bytes, nonce: bytes, when: int, body: bytes) -> str:
    data = label + nonce + str(when).encode() + b"\0" + body
    import hashlib
    import hmac

    return hmac.new(key, data, hashlib.sha256).hexdigest()


def read_endpoint(endpoint: Path) -> tuple[int, bytes]:
    """The port and key in ``endpoint``: FileNotFoundError if there is none, StateError if it
    is not a small regular file of the expected form (never followed through a link)."""
    from credguard.fs.read import SkipReason, Unreadable, read_path

    try:
        data = read_path(endpoint, 4096).data
    except Unreadable as exc:
        if exc.reason == SkipReason.NOT_FOUND:
            raise FileNotFoundError(errno.ENOENT, "no control endpoint",
                                    os.fspath(endpoint)) from None
        raise StateError(f"refusing {endpoint}: {exc}") from None
    with contextlib.suppress(ValueError, TypeError, LookupError, RecursionError):
        record = json.loads(data)
        port, key = record["port"], bytes.fromhex(record["key"])
        if (record["v"] == 1 and type(port) is int and 0 < port < 65536  # not a bool
                and len(key) == _KEY_BYTES):
            return port, key
    raise StateError(f"refusing {endpoint}: not a credguard control endpoint (remove it)")


def for_platform() -> UnixChannel | LoopbackChannel:
    """The channel of this system: a Unix socket where there is ``AF_UNIX`` and not Windows."""
    if paths.native_platform() == "windows" or not hasattr(socket, "AF_UNIX"):
        return LoopbackChannel()
    return UnixChannel()
