"""The opt-in passphrase keystore for headless machines (never chosen silently).

Each vault key is random (as with the keyring) and stored WRAPPED: AES-256-GCM under a key
encryption key KEK = scrypt(passphrase, salt, n, r, p), associated data
``b"credguard-passphrase-wrap" + key id``. A ``check`` entry (the empty string sealed under the KEK
with its own associated data) tells a wrong passphrase from a damaged entry, even before the first
key exists. The file (0600, replaced atomically)::

    {"version": 1, "kdf": "scrypt", "salt": b64, "n": int, "r": int, "p": int,
     "check": {"nonce": b64, "wrapped": b64},
     "keys": {"<key id>": {"nonce": b64, "wrapped": b64}}}

Promises: the passphrase callable is asked at most once per instance (again only after it proved
wrong), and only when a key must be wrapped or unwrapped; a new keystore asks the
``new_passphrase`` callable instead and refuses a weak passphrase (:func:`check_new_passphrase`,
rule :data:`PASSPHRASE_RULE`) before it writes anything; the KEK is derived once per instance for
a given salt and parameters; ``delete_key`` needs no passphrase (crypto-erase). ``put_key`` and
``delete_key`` read, modify and replace the file: concurrent writers must hold the vault lock.
Every failure is a :class:`~credguard.errors.KeystoreError` naming the file, never a secret.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import string
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credguard.errors import KeystoreError, check_version
from credguard.fs import safe
from credguard.fs.atomic import atomic_write
from credguard.vault import crypto
from credguard.vault.format import is_key_id

FILE_VERSION = 1
KDF = "scrypt"
WRAP_AAD = b"credguard-passphrase-wrap"
CHECK_AAD = b"credguard-passphrase-check"
MIN_SCRYPT_N = 2**10  # a file asking for less is refused as damaged (a downgrade attempt)
MIN_SALT_SIZE = 16
MAX_FILE_SIZE = 1 << 20
MIN_PASSPHRASE_CHARS = 12
MIN_DISTINCT_CHARS = 5
PASSPHRASE_RULE = (f"a new vault passphrase needs at least {MIN_PASSPHRASE_CHARS} characters, "
                   f"at least {MIN_DISTINCT_CHARS} different ones, not only digits, and must "
                   "not be a common password with digits or symbols added")
# Common passwords, lower case, as what is left once digits, symbols and spaces are stripped
# from both ends and the usual look-alikes undone ("P@ssw0rd1234!" -> "password"): a short
# list of the worst, not a dictionary.
_LOOKALIKES = str.maketrans("@0134$57!", "aoieassti")
_COMMON = frozenset({
    "password", "passwort", "passphrase", "qwerty", "qwertz", "azerty",
    "qwertyuiop", "asdfghjkl", "asdf", "zxcvbnm", "letmein", "iloveyou", "welcome", "admin",
    "administrator", "root", "changeme", "secret", "credguard", "azure", "microsoft", "monkey",
    "dragon", "football", "baseball", "sunshine", "princess", "trustno", "master", "login",
    "default", "test", "abc", "abcdef", "abcdefgh", "abcdefghijkl", "",
})
_STRIP = string.digits + string.punctuation + string.whitespace


@dataclass(frozen=True)
class _Params:
    salt: bytes
    n: int
    r: int
    p: int


@dataclass(frozen=True)
class _Sealed:
    nonce: bytes
    wrapped: bytes


@dataclass
class _File:
    params: _Params
    check: _Sealed
    keys: dict[str, _Sealed] = field(default_factory=dict)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("not base64")
    return base64.b64decode(value, validate=True)


def _int(doc: Mapping[str, Any], name: str) -> int:
    value = doc.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} is not an integer")
    return value


def _sealed(value: object, size: int) -> _Sealed:
    if not isinstance(value, dict):
        raise ValueError("sealed entry is not an object")
    sealed = _Sealed(_unb64(value.get("nonce")), _unb64(value.get("wrapped")))
    if len(sealed.nonce) != crypto.NONCE_SIZE or len(sealed.wrapped) != size + crypto.TAG_SIZE:
        raise ValueError("sealed entry has the wrong size")
    return sealed


def passphrase_weakness(passphrase: bytes) -> str:
    """Why ``passphrase`` is too weak for a new vault (:data:`PASSPHRASE_RULE`); "" if it is
    not. The answer never quotes the passphrase or its length."""
    text = passphrase.decode("utf-8", "surrogateescape")
    if len(text) < MIN_PASSPHRASE_CHARS:
        return "it is too short"
    if len(set(text)) < MIN_DISTINCT_CHARS:
        return "it has too few different characters"
    if text.isdigit():
        return "it is only digits"
    if text.lower().strip(_STRIP).translate(_LOOKALIKES) in _COMMON:
        return "it is a common password"
    return ""


def check_new_passphrase(passphrase: bytes) -> None:
    """KeystoreError unless ``passphrase`` may protect a new passphrase keystore."""
    why = passphrase_weakness(passphrase)
    if why:
        raise KeystoreError(f"passphrase refused: {why}; {PASSPHRASE_RULE}")


def _check_params(params: _Params) -> None:
    if len(params.salt) < MIN_SALT_SIZE:
        raise ValueError("salt too short")
    crypto.check_scrypt_params(params.n, params.r, params.p)
    if params.n < MIN_SCRYPT_N:
        raise ValueError(f"scrypt n below {MIN_SCRYPT_N}")


def _decode(doc: object) -> _File:
    """The file's contents, checked; ValueError if anything is malformed."""
    if not isinstance(doc, dict):
        raise ValueError("not an object")
    if doc.get("kdf") != KDF:
        raise ValueError("unknown kdf")
    params = _Params(_unb64(doc.get("salt")), _int(doc, "n"), _int(doc, "r"), _int(doc, "p"))
    _check_params(params)
    keys = doc.get("keys")
    if not isinstance(keys, dict) or not all(is_key_id(k) for k in keys):
        raise ValueError("bad keys")
    wrapped = {k: _sealed(v, crypto.KEY_SIZE) for k, v in keys.items()}
    return _File(params, _sealed(doc.get("check"), 0), wrapped)


def _parse(raw: bytes, what: str) -> _File:
    """Checked contents of the file ``what``; KeystoreError if a newer credguard wrote it,
    ValueError/TypeError/RecursionError if it is malformed."""
    doc = json.loads(raw.decode("utf-8"))
    version = doc.get("version") if isinstance(doc, dict) else None
    if check_version(version, FILE_VERSION, what, KeystoreError) != FILE_VERSION:
        raise ValueError("unknown version")
    return _decode(doc)


def _encode(contents: _File) -> bytes:
    def sealed(s: _Sealed) -> dict[str, str]:
        return {"nonce": _b64(s.nonce), "wrapped": _b64(s.wrapped)}

    p = contents.params
    doc = {
        "version": FILE_VERSION,
        "kdf": KDF,
        "salt": _b64(p.salt),
        "n": p.n,
        "r": p.r,
        "p": p.p,
        "check": sealed(contents.check),
        "keys": {k: sealed(v) for k, v in sorted(contents.keys.items())},
    }
    return (json.dumps(doc, indent=2) + "\n").encode("ascii")


def _read_bounded(path: Path) -> bytes | None:
    """The file's bytes, None if it does not exist; OSError for anything else."""
    try:
        fd = os.open(path, safe.READ)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file")
        data = f.read(MAX_FILE_SIZE + 1)
    if len(data) > MAX_FILE_SIZE:
        raise OSError(f"larger than {MAX_FILE_SIZE} bytes")
    return data


class PassphraseKeystore:
    """Vault keys wrapped under a passphrase-derived key, in one JSON file at ``path``.

    ``scrypt_params`` (``{"n", "r", "p"}``) apply only when this instance creates the file;
    an existing file's own parameters always win. Defaults: :data:`crypto.SCRYPT_DEFAULTS`.
    ``new_passphrase`` is asked instead of ``passphrase`` when the file is created (a prompt
    that asks twice, say); default: ``passphrase``.
    """

    def __init__(
        self,
        path: Path,
        passphrase: Callable[[], bytes],
        *,
        scrypt_params: Mapping[str, int] | None = None,
        new_passphrase: Callable[[], bytes] | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = f"passphrase (scrypt, {self.path})"
        params = dict(scrypt_params if scrypt_params is not None else crypto.SCRYPT_DEFAULTS)
        self._new_params = (params["n"], params["r"], params["p"])
        _check_params(_Params(b"\0" * MIN_SALT_SIZE, *self._new_params))
        self._ask = passphrase
        self._ask_new = new_passphrase or passphrase
        self._passphrase: bytes | None = None
        self._kek: tuple[_Params, bytes] | None = None
        self._lock = threading.RLock()

    # ---- the Keystore protocol ----------------------------------------------------------------

    def get_key(self, key_id: str) -> bytes:
        """The key stored as ``key_id``; KeystoreError if absent, unreadable or locked."""
        _check_key_id(key_id)
        with self._lock:
            contents = self._load()
            if contents is None or key_id not in contents.keys:
                raise KeystoreError(
                    f"vault key {key_id} is not in the passphrase keystore {self.path}"
                )
            kek = self._unlock(contents)
            sealed = contents.keys[key_id]
            try:
                return crypto.decrypt(kek, sealed.nonce, sealed.wrapped, WRAP_AAD + key_id.encode())
            except crypto.VaultIntegrityError:
                raise self._damaged(f"key {key_id} failed its integrity check") from None

    def put_key(self, key_id: str, key: bytes) -> None:
        """Store ``key`` as ``key_id``, once: KeystoreError if ``key_id`` already exists."""
        _check_key_id(key_id)
        if not isinstance(key, bytes) or len(key) != crypto.KEY_SIZE:
            raise ValueError(f"key must be {crypto.KEY_SIZE} bytes")
        with self._lock:
            contents = self._load()
            if contents is not None and key_id in contents.keys:
                raise KeystoreError(
                    f"vault key {key_id} already exists in {self.path}; keys are written once"
                )
            if contents is None:
                contents = self._create()
            kek = self._unlock(contents)
            nonce, wrapped = crypto.encrypt(kek, key, WRAP_AAD + key_id.encode())
            contents.keys[key_id] = _Sealed(nonce, wrapped)
            self._store(contents)

    def delete_key(self, key_id: str) -> None:
        """Forget ``key_id`` (no passphrase needed); a missing key or file is not an error."""
        _check_key_id(key_id)
        with self._lock:
            contents = self._load()
            if contents is None or key_id not in contents.keys:
                return
            del contents.keys[key_id]
            self._store(contents)

    # ---- internals ----------------------------------------------------------------------------

    def _damaged(self, why: str) -> KeystoreError:
        return KeystoreError(f"the passphrase keystore {self.path} is damaged: {why}")

    def _load(self) -> _File | None:
        try:
            raw = _read_bounded(self.path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise KeystoreError(
                f"cannot read the passphrase keystore {self.path}: {reason}"
            ) from None
        if raw is None:
            return None
        try:
            return _parse(raw, f"the passphrase keystore {self.path}")
        except (ValueError, TypeError, RecursionError):
            raise self._damaged("not a valid credguard passphrase keystore") from None

    def _store(self, contents: _File) -> None:
        try:
            atomic_write(self.path, _encode(contents), strict=True)  # keys: durable or an error
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise KeystoreError(
                f"cannot write the passphrase keystore {self.path}: {reason}"
            ) from None

    def _create(self) -> _File:
        """Fresh contents: new salt, this instance's parameters, a check sealed under the KEK;
        KeystoreError for a weak passphrase (asked afresh next time)."""
        if self._passphrase is None:
            self._passphrase = _entered(self._ask_new)
        try:
            check_new_passphrase(self._passphrase)
        except KeystoreError:
            self._passphrase = None
            raise
        params = _Params(crypto.new_salt(), *self._new_params)
        kek = self._derive(params)
        nonce, wrapped = crypto.encrypt(kek, b"", CHECK_AAD)
        self._kek = (params, kek)
        return _File(params, _Sealed(nonce, wrapped))

    def _unlock(self, contents: _File) -> bytes:
        """The KEK for ``contents``, verified against its check entry; cached once verified."""
        if self._kek is not None and self._kek[0] == contents.params:
            return self._kek[1]
        kek = self._derive(contents.params)
        try:
            crypto.decrypt(kek, contents.check.nonce, contents.check.wrapped, CHECK_AAD)
        except crypto.VaultIntegrityError:
            self._passphrase = None  # let a later call ask again
            raise KeystoreError("wrong passphrase for the vault") from None
        self._kek = (contents.params, kek)
        return kek

    def _derive(self, params: _Params) -> bytes:
        if self._passphrase is None:
            self._passphrase = _entered(self._ask)
        return crypto.derive_key(self._passphrase, params.salt, params.n, params.r, params.p)


def _entered(source: Callable[[], bytes]) -> bytes:
    entered = source()
    if not isinstance(entered, bytes):
        raise TypeError("the passphrase source must return bytes")
    if not entered:
        raise KeystoreError("an empty passphrase is refused")
    return entered


def _check_key_id(key_id: str) -> None:
    if not is_key_id(key_id):
        raise ValueError("key id must be 16 lowercase hex characters")
