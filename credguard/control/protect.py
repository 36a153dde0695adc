"""The ``protect`` control command: ``credguard protect`` done by the running daemon.

The daemon already holds the vault key and has its code loaded, so a one-file ``protect`` costs
the command little more than a ``status``. It must do exactly what the command would have done
in its own process, so the command sends its *context*, a keyed digest of everything its
result depends on besides the files:

- where credguard's files are for it (configuration, managed policy, data, state, Trash), from
  its environment;
- its ``CREDGUARD_*`` environment, except the variables ``credguard exec`` hands a child
  (:data:`HANDED`) and the tests' hooks (``CREDGUARD_TEST_*``);
- the text of the configuration files as they are now.

The daemon computes the same digest with the same key from its own environment and the text
it parsed its configuration from (:attr:`credguard.config.Config.texts`), and protects only
when they are equal; otherwise it answers ``{"refused": reason}`` and the command protects in
its own process. Only a digest crosses the socket, never a variable's value (``CREDGUARD_*``
may hold a passphrase), and the key is new for every request, so the digest of one request
tells nothing about another. A configuration file that is a symbolic link, or cannot be read
plainly, has no context (:func:`context` is None): the command then never asks.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping

from credguard import paths
from credguard.control.wire import ProtocolError
from credguard.fs import at, flags

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    import hashlib
    from typing import Any

MAX_PATHS = 64  # paths in one request: one group commit (credguard.protect.transaction.BATCH)
MAX_CONFIG = 1 << 20  # bytes of a configuration file (credguard.config.files.MAX_SIZE)
KEY_HEX = 32  # hex digits of the digest's key
DIGEST_HEX = 64
# variables `credguard exec` sets for its child, which may itself run `credguard protect`
HANDED = ("CREDGUARD_FILE", "CREDGUARD_EXEC", "CREDGUARD_KIND", "CREDGUARD_CERT_PEM",
          "CREDGUARD_SITE_URL")
HANDED_PREFIXES = ("CREDGUARD_PUBLISH_", "CREDGUARD_TEST_")
ConfigTexts = Iterable[tuple[str, str | None]]  # (path, its text or None: no such file)


def protect_args(args: dict[str, Any]) -> dict[str, Any]:
    """``{"paths": [...], "context": {"key": hex, "digest": hex}}`` checked: 1 to
    :data:`MAX_PATHS` absolute path strings, and a context of the right shape. ProtocolError
    with a short fixed message otherwise."""
    if set(args) != {"paths", "context"}:
        raise ProtocolError("protect takes paths and context")
    named, ctx = args["paths"], args["context"]
    if not isinstance(named, list) or not 1 <= len(named) <= MAX_PATHS:
        raise ProtocolError(f"protect paths must be a list of 1 to {MAX_PATHS} absolute paths")
    for item in named:
        if not isinstance(item, str) or "\0" in item or not os.path.isabs(item):
            raise ProtocolError("protect paths must be absolute path strings")
    return {"paths": list(named), "context": context_arg("protect", ctx)}


def context_arg(cmd: str, ctx: object) -> dict[str, str]:
    """A request's context checked: a key and a digest in hex (ProtocolError otherwise)."""
    if (not isinstance(ctx, dict) or set(ctx) != {"key", "digest"}
            or not _hex(ctx["key"], KEY_HEX) or not _hex(ctx["digest"], DIGEST_HEX)):
        raise ProtocolError(f"{cmd} context must be a key and a digest in hex")
    return dict(ctx)


def _hex(value: object, length: int) -> bool:
    return (isinstance(value, str) and len(value) == length
            and all(ch in "0123456789abcdef" for ch in value))


def config_files() -> tuple[str, str]:
    """The managed policy's path and the user configuration's, as ``config.load`` reads them."""
    return str(paths.managed_policy_file()), str(paths.user_config_file())


def context() -> dict[str, str] | None:
    """This process's context: a new key and the digest under it (see the module's
    docstring); None when a configuration file cannot be read plainly (a link, not a regular
    file, too large, not UTF-8, unreadable): the caller protects in its own process."""
    try:
        texts = [(path, _plain_text(path)) for path in config_files()]
    except _NotPlain:
        return None
    key = os.urandom(KEY_HEX // 2).hex()
    return {"key": key, "digest": digest(key, texts, os.environ)}


class _NotPlain(Exception):
    """A configuration file that is anything but a plain, readable UTF-8 file."""


def _plain_text(path: str) -> str | None:
    """The file's text; None if there is no such file; :class:`_NotPlain` for anything but a
    plain, readable UTF-8 file of at most :data:`MAX_CONFIG` bytes (never a link followed,
    never a FIFO waited on)."""
    try:
        fd = at.open(path, flags.READ)
    except FileNotFoundError:
        return None
    except OSError:
        raise _NotPlain from None
    try:
        if not stat.S_ISREG(at.fstat(fd).st_mode):
            raise _NotPlain
        data = os.read(fd, MAX_CONFIG + 1)
        if len(data) > MAX_CONFIG:
            raise _NotPlain
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        raise _NotPlain from None
    finally:
        os.close(fd)


def digest(key: str, texts: ConfigTexts, environ: Mapping[str, str]) -> str:
    """The keyed digest (BLAKE2b) of the places credguard uses, the ``CREDGUARD_*``
    environment that configures it, and the configuration files' ``texts``."""
    import json

    blake2b = _blake2b()

    places = [str(paths.user_data_dir()), str(paths.user_state_dir()),
              [str(p) for p in paths.trash_dirs()]]
    env = sorted((name, value) for name, value in environ.items()
                 if name.startswith("CREDGUARD_") and name not in HANDED
                 and not name.startswith(HANDED_PREFIXES))
    doc = json.dumps([places, env, sorted(texts, key=lambda t: t[0])], ensure_ascii=True)
    mac = blake2b(doc.encode("ascii"), key=bytes.fromhex(key), digest_size=32)
    return mac.hexdigest()


def _blake2b() -> type[hashlib.blake2b]:
    """``hashlib.blake2b`` without importing :mod:`hashlib`, which loads OpenSSL (about 2 ms
    of every ``protect`` and ``exec`` that asks the daemon): CPython builds BLAKE2 into its
    ``_blake2`` module, which ``hashlib`` itself takes it from."""
    try:
        from _blake2 import blake2b
    except ImportError:  # pragma: no cover - an interpreter without it
        from hashlib import blake2b
    return blake2b
