"""Where vault keys live: the :class:`Keystore` protocol, the OS-keyring keystore, the dispatcher.

:class:`KeyringKeystore` keeps keys in the OS keyring, using only the backend
:mod:`credguard.vault.keyring_backends` accepts (resolved afresh for each instance): the Secret
Service directly on Linux (:mod:`credguard.vault.secretservice`), else a ``keyring`` backend. It
runs every keyring call under a timeout so a locked keyring cannot hang credguard. The imports
are lazy: a scan never pays for them.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from credguard.errors import KeystoreError
from credguard.vault.keyring_backends import (
    NO_KEYRING_ADVICE,
    PasswordBackend,
    detail,
    resolve,
    run_with_timeout,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "KEY_SIZE",
    "NO_KEYRING_ADVICE",
    "PASSPHRASE_FILE",
    "SERVICE",
    "BackendStatus",
    "KeyringKeystore",
    "Keystore",
    "keyring_status",
    "open_keystore",
    "username_for",
    "validate_key_id",
]

SERVICE = "credguard"
PASSPHRASE_FILE = "passphrase-keystore.json"  # noqa: S105 - a file name in the vault dir
KEY_SIZE = 32
UNLOCKED_TIMEOUT = 2.0  # seconds for KeyringKeystore.unlocked_now
DEFAULT_TIMEOUT = 10.0
PROBE_USERNAME = "probe"
_KEY_ID_RE = re.compile(r"[0-9a-f]{16}")

T = TypeVar("T")


class Keystore(Protocol):
    """Somewhere to keep 32-byte vault keys, each under a 16-hex-char key id."""

    name: str
    """Shown by ``credguard doctor`` and ``status``: which keystore and backend is in use."""

    def get_key(self, key_id: str) -> bytes:
        """The key; :class:`KeystoreError` if missing, locked, unavailable or timed out."""
        ...

    def put_key(self, key_id: str, key: bytes) -> None:
        """Store ``key`` once: :class:`KeystoreError` if ``key_id`` exists already."""
        ...

    def delete_key(self, key_id: str) -> None:
        """Forget the key (crypto-erase); a missing key is not an error."""
        ...


def validate_key_id(key_id: object) -> str:
    """``key_id`` itself if it is 16 lowercase hex characters, else ValueError (a caller bug)."""
    if not isinstance(key_id, str) or _KEY_ID_RE.fullmatch(key_id) is None:
        raise ValueError("a vault key id must be 16 lowercase hex characters")
    return key_id


def username_for(key_id: str) -> str:
    """The keyring username a vault key is stored under (service :data:`SERVICE`)."""
    return f"vault-key-{validate_key_id(key_id)}"


# ---- the keystore ----------------------------------------------------------------------------


class KeyringKeystore:
    """Vault keys in the OS keyring: base64 under service ``credguard``, user ``vault-key-<id>``.

    Construction resolves the backend (under ``timeout``) and raises :class:`KeystoreError` if
    it is refused or cannot be set up. Each later call runs under ``timeout`` too.
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not 0 < timeout < math.inf:
            raise ValueError("timeout must be a positive number of seconds")
        timeout = float(timeout)
        choice = resolve(timeout)
        if choice.usable is None:
            raise KeystoreError(choice.reason)
        self._setup(choice.usable, choice.label, timeout)

    @classmethod
    def _for(cls, backend: PasswordBackend, label: str, timeout: float) -> KeyringKeystore:
        """An instance around an already resolved, accepted backend."""
        store = cls.__new__(cls)
        store._setup(backend, label, timeout)
        return store

    def _setup(self, backend: PasswordBackend, label: str, timeout: float) -> None:
        self.timeout = timeout
        self.backend = backend
        self.label = label
        self.name = f"OS keyring: {label}"

    # ---- the Keystore protocol ----

    def get_key(self, key_id: str) -> bytes:
        """The key stored as ``key_id``; KeystoreError if missing, damaged or unreachable."""
        user = username_for(key_id)
        value = self._get(user)
        if value is None:
            raise KeystoreError(
                f"vault key {key_id} is not in the OS keyring ({self.label}): it was deleted, "
                "or this vault was created by another user or on another machine"
            )
        return self._decode(value)

    def put_key(self, key_id: str, key: bytes) -> None:
        """Store ``key`` once: refuse an existing ``key_id``, then write and read it back.

        If the write times out it may still land later (the call is abandoned, not cancelled):
        callers use a fresh key id for a new attempt, never the same one.
        """
        user = username_for(key_id)
        if not isinstance(key, bytes) or len(key) != KEY_SIZE:
            raise ValueError(f"a vault key must be {KEY_SIZE} bytes")
        if self._get(user) is not None:
            raise KeystoreError(
                f"vault key {key_id} already exists in the OS keyring ({self.label}); "
                "credguard never overwrites a vault key"
            )
        encoded = base64.b64encode(key).decode("ascii")
        self._call("set", lambda: self.backend.set_password(SERVICE, user, encoded), (encoded,))
        stored = self._get(user, (encoded,))
        if stored != encoded:
            raise KeystoreError(
                f"the OS keyring ({self.label}) did not keep vault key {key_id}: reading it "
                "back gave " + ("nothing" if stored is None else "a different value")
            )

    def delete_key(self, key_id: str) -> None:
        """Forget ``key_id`` (crypto-erase); a key that is not there is not an error."""
        user = username_for(key_id)
        if self._get(user) is None:
            return
        try:
            self._call("delete", lambda: self.backend.delete_password(SERVICE, user))
        except KeystoreError as exc:
            # Backends report "not found" as an error: a concurrent delete is fine.
            if _is(exc.__cause__, "PasswordDeleteError", "NotFound") and self._get(user) is None:
                return
            raise

    # ---- helpers ----

    def unlocked_now(self) -> bool:
        """Whether the keyring would give its keys right now without asking the user. Only a
        Secret Service backend can tell without a prompt (its default collection is
        unlocked); every other backend, an error or a timeout answers False."""
        ask = getattr(self.backend, "unlocked_now", None)
        if ask is None:
            return False
        try:
            return bool(run_with_timeout(ask, min(self.timeout, UNLOCKED_TIMEOUT), "ask"))
        except Exception:
            return False

    def probe(self) -> None:
        """Read a key that never exists: KeystoreError if the keyring is locked or unavailable."""
        self._get(PROBE_USERNAME)

    def _get(self, user: str, secrets: tuple[str, ...] = ()) -> str | None:
        return self._call("get", lambda: self.backend.get_password(SERVICE, user), secrets)

    def _decode(self, value: str) -> bytes:
        try:
            key = base64.b64decode(value.encode("ascii"), validate=True)
        except (UnicodeError, binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_SIZE:
            raise KeystoreError("the vault key in the keyring is damaged")
        return key

    def _call(self, what: str, fn: Callable[[], T], secrets: tuple[str, ...] = ()) -> T:
        """Run one keyring call under the timeout, mapping every failure to KeystoreError."""
        try:
            return run_with_timeout(fn, self.timeout, what)
        except KeystoreError:
            raise
        except Exception as exc:
            raise KeystoreError(_failure(exc, f"the OS keyring ({self.label})", secrets)) from exc


def _is(exc: BaseException | None, keyring_name: str, direct_name: str = "") -> bool:
    """Whether ``exc`` is ``keyring.errors.<keyring_name>`` or
    ``credguard.vault.secretservice.<direct_name>`` — without importing either module (keyring
    is not loaded at all when the Secret Service is reached directly)."""
    import sys

    keyring_errors = sys.modules.get("keyring.errors")
    direct = sys.modules.get("credguard.vault.secretservice")
    classes = tuple(
        cls
        for cls in (
            getattr(keyring_errors, keyring_name, None),
            getattr(direct, direct_name, None) if direct_name else None,
        )
        if isinstance(cls, type)
    )
    return bool(classes) and isinstance(exc, classes)


def _failure(exc: Exception, where: str, secrets: tuple[str, ...]) -> str:
    """What went wrong in a keyring call on ``where``, without any of ``secrets``."""
    if _is(exc, "KeyringLocked", "Locked"):
        return (
            f"{where} is locked: unlock it (log in to your desktop session, or open your "
            "keyring manager) and try again"
        )
    if _is(exc, "NoKeyringError"):
        return f"no usable OS keyring: {NO_KEYRING_ADVICE}"
    why = detail(exc, secrets)
    if _is(exc, "InitError", "Unavailable"):
        return f"{where} could not be opened: {why} (is the keyring daemon running and unlocked?)"
    if _is(exc, "PasswordSetError"):
        return f"{where} refused to store the vault key: {why}"
    if _is(exc, "PasswordDeleteError", "NotFound"):
        return f"{where} refused to delete the vault key: {why}"
    if _is(exc, "KeyringError"):
        return f"{where} failed: {why}"
    if isinstance(exc, RuntimeError):
        return f"{where} is not available: {why}"
    # e.g. secretstorage/D-Bus errors the backend lets through
    return f"{where} failed: {type(exc).__name__}: {why}"


# ---- doctor/status ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendStatus:
    """What ``credguard doctor`` says about the OS keyring."""

    name: str  # e.g. "SecretService (credguard.vault.secretservice.SecretServiceKeyring)"
    usable: bool
    reason: str  # "usable, unlocked", "not usable: locked ...", "refused: ..."

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def keyring_status(timeout: float = DEFAULT_TIMEOUT) -> BackendStatus:
    """Which OS keyring backend is in use and whether it works now (one probe read)."""
    try:
        choice = resolve(timeout)
    except KeystoreError as exc:
        return BackendStatus("unknown backend", False, f"not usable: {exc.message}")
    if choice.usable is None:
        return BackendStatus(choice.label, False, choice.reason)
    try:
        KeyringKeystore._for(choice.usable, choice.label, float(timeout)).probe()
    except KeystoreError as exc:
        if _is(exc.__cause__, "KeyringLocked", "Locked"):
            return BackendStatus(
                choice.label, False, "not usable: locked (unlock it in your desktop session)"
            )
        return BackendStatus(choice.label, False, f"not usable: {exc.message}")
    return BackendStatus(choice.label, True, "usable, unlocked")


# ---- the dispatcher --------------------------------------------------------------------------


def open_keystore(
    kind: str,
    vault_dir: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    passphrase: Callable[[], bytes] | None = None,
    new_passphrase: Callable[[], bytes] | None = None,
) -> Keystore:
    """The keystore ``kind`` names: ``"keyring"`` or ``"passphrase"`` (never chosen here).
    ``new_passphrase`` is asked instead of ``passphrase`` when the passphrase keystore is
    created (default: ``passphrase``)."""
    if kind == "keyring":
        return KeyringKeystore(timeout)
    if kind == "passphrase":
        if passphrase is None:
            raise ValueError("the passphrase keystore needs a passphrase source")
        from credguard.vault.passphrase import PassphraseKeystore

        return PassphraseKeystore(Path(vault_dir) / PASSPHRASE_FILE, passphrase,
                                  new_passphrase=new_passphrase)
    raise ValueError(f"unknown keystore kind {kind!r} (expected 'keyring' or 'passphrase')")
