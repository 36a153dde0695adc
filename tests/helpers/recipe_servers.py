"""Local servers for the recipes' real clients (tests/recipes): stand-ins of the GitHub REST
API's Actions secrets endpoints, Kudu's ZipDeploy endpoint and Key Vault's secrets API, a real
FTPS server (pyftpdlib), and an HTTPS proxy that leads one public host name to a local
stand-in.

Each binds 127.0.0.1 on a port the system picks, serves TLS with a self-signed certificate
made now (:func:`self_signed`; a client trusts it through ``SSL_CERT_FILE`` or its own CA
option), runs in a thread, and is shut down when its ``with`` block ends. What a server
received is kept for the test to compare (by digest where it is a secret), never logged.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import logging
import secrets
import ssl
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["FtpsServer", "GitHubApi", "KeyVault", "Kudu", "Proxy", "TlsFiles", "connect_proxy",
           "ftps_server", "github_api", "key_vault", "kudu", "self_signed"]

HOST = "127.0.0.1"


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate for 127.0.0.1 and localhost (PEM; also the CA a client is
    told to trust) and its key."""

    cert: Path
    key: Path


def self_signed(where: Path, *names: str) -> TlsFiles:
    """A fresh P-256 key and a one-day self-signed CA certificate for 127.0.0.1, localhost
    and ``names`` (host names a proxy leads to it), written into ``where``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "credguard recipe test server")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address(HOST)),
            *(x509.DNSName(n) for n in ("localhost", *names))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    where.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(where / "server.crt", where / "server.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    files.key.chmod(0o600)
    return files


# ---- HTTPS ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Hands each request to the server's ``app`` (a :class:`GitHubApi` or :class:`Kudu`)."""

    protocol_version = "HTTP/1.1"
    timeout = 10  # a connection left open ends in time for server_close() to join its thread
    server: _HttpsServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no log lines
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        app = self.server.app
        with app.lock:
            app.requests.append(f"{self.command} {self.path}")
            status, reply = app.answer(self.command, self.path, self.headers, body)
        data = json.dumps(reply).encode() if reply is not None else b""
        self.send_response(status)
        for name, value in app.headers(status).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _serve


class _HttpsServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins each connection's thread: none outlives a test
    app: _App


@dataclass
class _App:
    requests: list[str] = field(default_factory=list, init=False)
    lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    port: int = field(default=0, init=False)

    def answer(self, method: str, path: str, headers: Any, body: bytes
               ) -> tuple[int, dict[str, Any] | None]:
        """The status and JSON body (None: none) of a request."""
        raise NotImplementedError

    def headers(self, status: int) -> dict[str, str]:
        """Headers to send beside an answer of ``status``."""
        return {}


@contextmanager
def _https(app: _App, tls: TlsFiles) -> Iterator[None]:
    server = _HttpsServer((HOST, 0), _Handler)
    server.app = app
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert, tls.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    app.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class GitHubApi(_App):
    """The GitHub REST API as ``gh secret set`` uses it on a GitHub Enterprise Server host
    (``https://HOST/api/v3/``): the repository's Actions public key, and secrets stored
    encrypted to it. Like GitHub, it stores the sealed box as sent; unlike GitHub it holds
    the private key, so :meth:`secret` opens the box: the test compares what arrived.

    Every request must carry ``Authorization: token TOKEN`` (401 otherwise)."""

    token: str = ""
    repo: str = "contoso/webapp"
    received: dict[str, bytes] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        from nacl.public import PrivateKey

        self._key = PrivateKey.generate()
        self.key_id = str(secrets.randbelow(10**18))

    @property
    def host(self) -> str:
        return f"{HOST}:{self.port}"

    def answer(self, method: str, path: str, headers: Any, body: bytes
               ) -> tuple[int, dict[str, Any] | None]:
        if headers.get("Authorization") != f"token {self.token}":
            return 401, {"message": "Bad credentials"}
        base = f"/api/v3/repos/{self.repo}/actions/secrets/"
        if method == "GET" and path == base + "public-key":
            key = base64.b64encode(bytes(self._key.public_key)).decode()
            return 200, {"key_id": self.key_id, "key": key}
        name = path[len(base):] if path.startswith(base) else ""
        if method == "PUT" and name and "/" not in name:
            doc = json.loads(body)
            if doc.get("key_id") != self.key_id:
                return 422, {"message": "wrong key_id"}
            self.received[name] = base64.b64decode(doc["encrypted_value"])
            return 201, {}  # GitHub's body is empty; gh 2.23 parses it as JSON all the same
        return 404, {"message": "Not Found"}

    def secret(self, name: str) -> bytes:
        """The secret ``name`` as it arrived, opened with the repository's private key."""
        from nacl.public import SealedBox

        return SealedBox(self._key).decrypt(self.received[name])


@contextmanager
def github_api(tls: TlsFiles, token: str) -> Iterator[GitHubApi]:
    app = GitHubApi(token=token)
    with _https(app, tls):
        yield app


@dataclass
class Kudu(_App):
    """Kudu's ``POST /api/zipdeploy`` on an App Service's SCM host: HTTP Basic authentication
    with the publish profile's user and password (401 otherwise); the zip it received is
    kept (``deployed``). A wrong password is counted, not kept."""

    user: str = ""
    password: str = ""
    deployed: list[bytes] = field(default_factory=list, init=False, repr=False)
    refused: int = field(default=0, init=False)

    def answer(self, method: str, path: str, headers: Any, body: bytes
               ) -> tuple[int, dict[str, Any] | None]:
        expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if not secrets.compare_digest(headers.get("Authorization", ""), f"Basic {expected}"):
            self.refused += 1
            return 401, None
        if method == "POST" and path.split("?")[0] == "/api/zipdeploy":
            self.deployed.append(body)
            return 200, None
        return 404, None

    def headers(self, status: int) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="site"'} if status == 401 else {}


@contextmanager
def kudu(tls: TlsFiles, user: str, password: str) -> Iterator[Kudu]:
    app = Kudu(user=user, password=password)
    with _https(app, tls):
        yield app


# ---- FTPS ----------------------------------------------------------------------------------


@dataclass
class FtpsServer:
    """A real FTP server (pyftpdlib) that requires TLS on the control and the data
    connection (explicit FTPS, ``AUTH TLS``, as App Service's FTPS endpoint), with one user
    whose home is ``root``. ``logins`` counts the successful logins, ``failed`` the refused
    ones."""

    port: int
    root: Path
    logins: int = 0
    failed: int = 0


@contextmanager
def ftps_server(tls: TlsFiles, root: Path, user: str, password: str) -> Iterator[FtpsServer]:
    with warnings.catch_warnings():  # pyftpdlib 2 is built on asyncore/asynchat (3.12 drops them)
        warnings.filterwarnings("ignore", r"The asyn(core|chat) module is deprecated",
                                DeprecationWarning)
        from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer
        from pyftpdlib.handlers import TLS_FTPHandler
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import FTPServer

    root.mkdir(parents=True, exist_ok=True)
    state = FtpsServer(0, root)

    class Authorizer(DummyAuthorizer):  # type: ignore[misc]  # pyftpdlib has no type hints
        def validate_authentication(self, username: str, password: str, handler: Any) -> None:
            try:
                super().validate_authentication(username, password, handler)
            except AuthenticationFailed:
                state.failed += 1
                raise
            state.logins += 1

    authorizer = Authorizer()
    authorizer.add_user(user, password, str(root), perm="elradfmwMT")

    class Handler(TLS_FTPHandler):  # type: ignore[misc]
        certfile = str(tls.cert)
        keyfile = str(tls.key)
        tls_control_required = True
        tls_data_required = True
        auth_failed_timeout = 0.0  # a wrong password answers at once (no 3 s penalty)

        def log(self, msg: str, logfun: Any = None) -> None:  # quiet: no log lines
            pass

        def logline(self, msg: str, logfun: Any = None) -> None:
            pass

        def logerror(self, msg: str) -> None:
            pass

    Handler.authorizer = authorizer
    # pyftpdlib configures logging to stderr unless its logger has a handler: it gets one
    # that drops everything (a server line could show a login)
    quiet = logging.getLogger("pyftpdlib")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    server = FTPServer((HOST, 0), Handler, ioloop=IOLoop())  # not the process-wide one
    state.port = server.address[1]
    stop = threading.Event()

    def serve() -> None:  # serve_forever() would log a start line each round
        while not stop.is_set():
            server.ioloop.loop(timeout=0.05, blocking=False)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(5)
        server.close_all()


# ---- Azure Key Vault -----------------------------------------------------------------------


@dataclass
class KeyVault(_App):
    """Key Vault's ``PUT /secrets/NAME`` (any vault, any api-version) as the real az sends it:
    a first request without a token gets Key Vault's challenge (``WWW-Authenticate: Bearer
    authorization=..., resource="https://vault.azure.net"``), the next must carry ``Bearer
    TOKEN`` (401 otherwise). ``stored`` keeps each secret's value and tags by name; the reply
    echoes the value back as Key Vault does (az prints it unless told ``--output none``)."""

    token: str = ""
    tenant: str = ""
    stored: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict, init=False,
                                                          repr=False)
    challenged: int = field(default=0, init=False)

    def answer(self, method: str, path: str, headers: Any, body: bytes
               ) -> tuple[int, dict[str, Any] | None]:
        auth = headers.get("Authorization", "")
        if not auth:
            self.challenged += 1
            return 401, {"error": {"code": "Unauthorized", "message": "challenge"}}
        if not secrets.compare_digest(auth, f"Bearer {self.token}"):
            return 401, {"error": {"code": "Unauthorized", "message": "bad token"}}
        name = path.split("?")[0].removeprefix("/secrets/")
        if method != "PUT" or not name or "/" in name:
            return 404, {"error": {"code": "NotFound", "message": "no such operation"}}
        doc = json.loads(body)
        self.stored[name] = (doc["value"], dict(doc.get("tags") or {}))
        host = headers.get("Host", "vault")
        return 200, {"value": doc["value"], "tags": doc.get("tags") or {},
                     "id": f"https://{host}/secrets/{name}/{secrets.token_hex(16)}",
                     "attributes": {"enabled": True, "created": 0, "updated": 0,
                                    "recoveryLevel": "Recoverable+Purgeable"}}

    def headers(self, status: int) -> dict[str, str]:
        if status != 401:
            return {}
        return {"WWW-Authenticate": f'Bearer authorization="https://login.microsoftonline.com/'
                                    f'{self.tenant}", resource="https://vault.azure.net"'}


@contextmanager
def key_vault(tls: TlsFiles, token: str, tenant: str) -> Iterator[KeyVault]:
    app = KeyVault(token=token, tenant=tenant)
    with _https(app, tls):
        yield app


@dataclass
class Proxy:
    """What an HTTPS proxy was asked for: ``host:port`` of each CONNECT, tunnelled or not."""

    url: str
    asked: list[str] = field(default_factory=list)


@contextmanager
def connect_proxy(routes: dict[str, int]) -> Iterator[Proxy]:
    """An HTTP proxy on 127.0.0.1 that tunnels ``CONNECT host:443`` for the hosts ``routes``
    names to their local port and answers 403 to everything else: a client told
    ``HTTPS_PROXY`` reaches a named public host's stand-in (TLS end to end, the certificate
    checked for the public name), and nothing beyond this machine."""
    import selectors
    import socket

    listener = socket.create_server((HOST, 0))
    listener.settimeout(0.05)
    proxy = Proxy(f"http://{HOST}:{listener.getsockname()[1]}")
    stop = threading.Event()
    tunnels: list[threading.Thread] = []

    def pipe(client: socket.socket) -> None:
        with client:
            client.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            words = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            target = words[1] if len(words) == 3 and words[0] == "CONNECT" else "?"
            proxy.asked.append(target)
            host, _, port = target.rpartition(":")
            if port != "443" or host not in routes:
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            with socket.create_connection((HOST, routes[host]), timeout=10) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                with selectors.DefaultSelector() as sel:
                    sel.register(client, selectors.EVENT_READ, upstream)
                    sel.register(upstream, selectors.EVENT_READ, client)
                    while not stop.is_set():
                        for key, _ in sel.select(0.05):
                            data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                            if not data:
                                return
                            key.data.sendall(data)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=pipe, args=(client,), daemon=True)
            tunnels.append(thread)
            thread.start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        stop.set()
        thread.join(5)
        for tunnel in tunnels:
            tunnel.join(5)
        listener.close()
