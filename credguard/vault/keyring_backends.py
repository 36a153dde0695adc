"""Which keyring backend credguard will use, and why it refuses the others.

The OS keyring is reached through the ``keyring`` library, but only its recommended OS backends
are accepted: Secret Service (``SecretService`` or ``libsecret``), macOS Keychain, Windows
Credential Locker and KWallet. ``fail``, ``null`` and every ``keyrings.alt`` backend (plaintext,
base64 or "encrypted" files) are refused with advice; nothing falls back silently. Backends are
judged by module/class name and priority; an explicit choice (``PYTHON_KEYRING_BACKEND`` or
keyring's ``keyringrc.cfg``) that is refused by name is never even imported.

The backend is resolved afresh on each :func:`resolve` (explicit ``PYTHON_KEYRING_BACKEND``, then
``keyringrc.cfg``, then the best viable backend), not through ``keyring.get_keyring()``, whose
process-wide cache would keep a backend chosen before the keyring daemon started. On Linux with
neither explicit choice, a running Secret Service is used through
:mod:`credguard.vault.secretservice` (keyring-compatible items) without importing ``keyring`` at
all; only when there is none does the full discovery run, to name what is wrong.

Every keyring operation, including resolving the backend (which talks to D-Bus on Linux), runs in
a daemon worker thread (:func:`run_with_timeout`) and is abandoned after ``timeout`` seconds: a
locked keyring that shows a GUI unlock prompt must not hang credguard. An abandoned call is left
to finish (or not) on its own. The ``keyring`` import is lazy: a scan never pays for it, and
nor does ``exec`` with a running Secret Service (nor for configparser or traceback).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol, TypeVar

from credguard.errors import KeystoreError
from credguard.vault.userbus import adopt_user_bus

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

__all__ = [
    "NO_KEYRING_ADVICE",
    "Choice",
    "PasswordBackend",
    "detail",
    "resolve",
    "run_with_timeout",
]

NO_KEYRING_ADVICE = (
    "start a Secret Service such as gnome-keyring (apt-get install gnome-keyring) in your "
    "desktop session, or opt in to the passphrase keystore with "
    '`vault.keystore = "passphrase"`'
)
_ENV = "PYTHON_KEYRING_BACKEND"
_MAX_DETAIL = 300
_THREAD_NAME = "credguard-keyring"
_AUTO = "auto-detected"

# Accepted backends, by "module.Class", with the label doctor/status shows.
_ACCEPTED: dict[str, str] = {
    "credguard.vault.secretservice.SecretServiceKeyring": "SecretService",
    "keyring.backends.SecretService.Keyring": "SecretService",
    "keyring.backends.libsecret.Keyring": "libsecret",
    "keyring.backends.macOS.Keyring": "macOS Keychain",
    "keyring.backends.Windows.WinVaultKeyring": "Windows Credential Locker",
    "keyring.backends.kwallet.DBusKeyring": "KWallet",
    "keyring.backends.kwallet.DBusKeyringKWallet4": "KWallet 4",
}
_FAIL = "keyring.backends.fail.Keyring"
_NULL = "keyring.backends.null.Keyring"
_CHAINER = "keyring.backends.chainer.ChainerBackend"

T = TypeVar("T")


class PasswordBackend(Protocol):
    """What the keystore needs of a backend: keyring's three password calls."""

    def get_password(self, service: str, username: str) -> str | None: ...
    def set_password(self, service: str, username: str, password: str) -> None: ...
    def delete_password(self, service: str, username: str) -> None: ...


# ---- running keyring calls under a timeout ---------------------------------------------------


def run_with_timeout(fn: Callable[[], T], timeout: float, what: str) -> T:
    """``fn()`` in a daemon worker thread; :class:`KeystoreError` if it takes over ``timeout``.

    Exceptions from ``fn`` are re-raised here unchanged (the callers map them).
    """
    result: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # re-raised in the calling thread
            _clear_locals(exc)
            failure.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=work, name=f"{_THREAD_NAME}-{what}", daemon=True)
    worker.start()
    if not done.wait(timeout):
        raise KeystoreError(
            f"the OS keyring did not answer within {timeout:g} s "
            "(is it locked and waiting for a password prompt?)"
        )
    worker.join()
    if failure:
        raise failure[0]
    return result[0]


def _clear_locals(exc: BaseException) -> None:
    """Drop the local variables of the finished frames in ``exc``'s tracebacks (and causes').

    They can hold the key being stored; the error (kept as a ``__cause__``) should not keep it
    alive. (The D-Bus connection keyring's SecretService backend leaves open on its locked and
    init-error paths sits in a reference cycle: only the garbage collector closes it.)
    """
    import traceback  # only on a failure

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        current = current.__cause__ or current.__context__


def detail(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """A short, single-line description of ``exc`` with any of ``secrets`` blanked out."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 3] + "..."
    return text


# ---- judging a backend -----------------------------------------------------------------------


class Choice(NamedTuple):
    """The backend ``keyring`` would use, where that choice came from, and our verdict."""

    backend: PasswordBackend | None  # what was chosen (None: keyring could not even load one)
    source: str  # "PYTHON_KEYRING_BACKEND", "keyringrc.cfg (path)" or "auto-detected"
    usable: PasswordBackend | None  # the accepted OS backend to talk to, or None
    reason: str  # why it was refused; "" when usable
    label: str  # for messages: "SecretService (credguard.vault.secretservice.SecretServiceKeyring)"


def _qualname(obj: object) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _priority(backend: object) -> float | None:
    """The backend class's priority, or None if it cannot say (it is then not viable)."""
    try:
        value = getattr(type(backend), "priority")  # noqa: B009  (a classproperty that may raise)
    except Exception:
        return None
    return float(value) if isinstance(value, int | float) else None


def _label(backend: object) -> str:
    return _label_for(_qualname(backend))


def _label_for(qualname: str) -> str:
    short = _ACCEPTED.get(qualname) or qualname.rpartition(".")[2] or qualname or "(empty name)"
    return f"{short} ({qualname})"


def _chosen(source: str) -> str:
    return "" if source == _AUTO else f" (chosen by {source})"


def _refusal_by_name(qualname: str, source: str) -> str | None:
    """Why the backend class ``qualname`` is refused by its name alone, or None."""
    module, _, name = qualname.rpartition(".")
    chosen = _chosen(source)
    if qualname == _FAIL:
        return f"no usable OS keyring{chosen}: {NO_KEYRING_ADVICE}"
    if qualname == _NULL:
        return (
            f"refused: {qualname}{chosen} stores nothing (the keyring library is disabled); "
            f"{NO_KEYRING_ADVICE}"
        )
    if module == "keyrings.alt" or module.startswith("keyrings.alt."):
        what = (
            "a plaintext file"
            if "plaintext" in name.lower()
            else "a file, not in an OS keyring (keyrings.alt: plaintext, base64 or "
            "weakly encrypted)"
        )
        return f"refused: {qualname}{chosen} stores secrets in {what}; {NO_KEYRING_ADVICE}"
    if qualname not in _ACCEPTED:
        return (
            f"refused: {qualname or '(empty name)'}{chosen} is not an OS keyring credguard "
            "accepts (Secret Service, macOS Keychain, Windows Credential Locker, KWallet); "
            f"{NO_KEYRING_ADVICE}"
        )
    return None


def _refusal(backend: object, source: str) -> str | None:
    """Why ``backend`` is refused (by name, then by priority), or None if it is accepted."""
    qualname = _qualname(backend)
    reason = _refusal_by_name(qualname, source)
    if reason is not None:
        return reason
    priority = _priority(backend)
    if priority is None or priority < 1:
        return (
            f"refused: {qualname}{_chosen(source)} is not recommended here "
            f"(priority {priority}); {NO_KEYRING_ADVICE}"
        )
    return None


def _viable_backends() -> list[KeyringBackend]:
    """Every viable backend except the chainer, judged now (not from keyring's cached list)."""
    from keyring.backend import KeyringBackend, get_all_keyring

    get_all_keyring()  # loads third-party plugins once; its own result is cached, so unused
    found: list[KeyringBackend] = []
    for cls in KeyringBackend.get_viable_backends():
        if _qualname(cls) == _CHAINER:
            continue
        try:
            found.append(cls())
        except TypeError:  # needs constructor arguments, as keyring itself skips them
            continue
    return found


def _best_of(candidates: list[KeyringBackend], source: str) -> Choice:
    """Among viable backends, the best accepted one; else the best one, refused."""
    accepted = [b for b in candidates if _refusal(b, source) is None]
    if accepted:
        best = max(accepted, key=lambda b: _priority(b) or 0.0)
        return Choice(best, source, best, "", _label(best))
    # keyring itself would use the others (through its chainer), else its fail backend: name that
    others = [b for b in candidates if (_priority(b) or 0.0) > 0]
    if others:
        worst = max(others, key=lambda b: _priority(b) or 0.0)
    else:
        from keyring.backends import fail

        worst = fail.Keyring()  # type: ignore[no-untyped-call]
    return Choice(worst, source, None, _refusal(worst, source) or "", _label(worst))


def _judge(backend: KeyringBackend, source: str) -> Choice:
    """An explicitly chosen backend, judged; the chainer stands for the OS keyring it chains."""
    if _qualname(backend) != _CHAINER:
        reason = _refusal(backend, source)
        usable = backend if reason is None else None
        return Choice(backend, source, usable, reason or "", _label(backend))
    choice = _best_of(_viable_backends(), source)
    if choice.usable is not None:
        return choice
    why = (
        f"refused: {_CHAINER} (chosen by {source}) chains no OS keyring credguard accepts; "
        f"{NO_KEYRING_ADVICE}"
    )
    return Choice(backend, source, None, why, _label(backend))


# ---- choosing the backend --------------------------------------------------------------------


def _configured_name(path: Path) -> str | None:
    """The ``default-keyring`` that keyring's config file names, if any (read, not loaded)."""
    import configparser  # only when the Secret Service is not used directly

    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
        return parser.get("backend", "default-keyring").strip()
    except (OSError, UnicodeError, configparser.Error):
        return None


def _explicit(
    name: str | None, source: str, load: Callable[[], KeyringBackend | None]
) -> Choice | None:
    """The backend ``source`` names, judged; None if it names none.

    A choice refused by name is refused before ``load`` imports its module (no keyrings.alt).
    """
    if name is not None and name != _CHAINER:
        reason = _refusal_by_name(name, source)
        if reason is not None:
            return Choice(None, source, None, reason, _label_for(name))
    try:
        backend = load()
    except Exception as exc:  # RuntimeError (not viable), ImportError, AttributeError...
        reason = (
            f"not usable: {name or 'the backend'} (named by {source}) cannot be used: {detail(exc)}"
        )
        return Choice(None, source, None, reason, _label_for(name or "unknown"))
    return None if backend is None else _judge(backend, source)


def _choose() -> Choice:
    """What the keyring library would use now, judged. May raise (run it under a timeout)."""
    from keyring import core
    from keyring.util import platform_

    forced = os.environ.get(_ENV)
    if forced is not None:
        name = forced.strip()
        choice = _explicit(name, _ENV, lambda: core.load_keyring(name))
    else:
        config_path = Path(platform_.config_root()) / "keyringrc.cfg"
        source = f"keyringrc.cfg {config_path}"
        choice = _explicit(_configured_name(config_path), source, core.load_config)
    if choice is not None:
        return choice
    native = _native()
    if native is not None:
        return Choice(native, _AUTO, native, "", _label(native))
    return _best_of(_viable_backends(), _AUTO)


_NATIVE = {
    "linux": ("keyring.backends.SecretService", "Keyring"),
    "macos": ("keyring.backends.macOS", "Keyring"),
    "windows": ("keyring.backends.Windows", "WinVaultKeyring"),
}


def _native() -> KeyringBackend | None:
    """This platform's own keyring when it is usable right now, else None.

    Tried before keyring's full discovery, which imports and probes every backend (macOS's
    alone costs ~25 ms to import on Linux): the OS keyring is what credguard wants anyway.
    """
    import importlib

    from credguard.paths import platform_name

    spec = _NATIVE.get(platform_name())
    if spec is None:
        return None
    try:
        cls = getattr(importlib.import_module(spec[0]), spec[1])
        if (cls.priority or 0) <= 0:
            return None
        backend: KeyringBackend = cls()
    except Exception:  # not viable here (no bus, no service): fall back to full discovery
        return None
    return backend


def _direct_secret_service() -> bool:
    """True when the Secret Service may be used without ``keyring``: Linux, and neither
    ``PYTHON_KEYRING_BACKEND`` nor a keyring config file (``keyringrc.cfg`` where keyring looks
    for it on Linux) makes an explicit choice, which only keyring itself can honour exactly."""
    from credguard.paths import platform_name

    if platform_name() != "linux" or _ENV in os.environ:
        return False
    root = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return not (Path(root) / "python_keyring" / "keyringrc.cfg").exists()


def _direct() -> PasswordBackend | None:
    """The Secret Service through secretstorage when one is running, else None."""
    from credguard.vault.secretservice import SecretServiceKeyring, available

    return SecretServiceKeyring() if available() == "" else None


def resolve(timeout: float) -> Choice:
    """The backend to use, judged, within ``timeout`` (:class:`KeystoreError` if it takes over)."""
    adopt_user_bus()  # no DBUS_SESSION_BUS_ADDRESS: the user's own bus, if it may be used
    if _direct_secret_service():
        import credguard.vault.secretservice  # noqa: F401  (imported here, not in the worker)

        direct = run_with_timeout(_direct, timeout, "resolve")
        if direct is not None:
            return Choice(direct, _AUTO, direct, "", _label(direct))
    import keyring.core  # noqa: F401  (import here, in the calling thread, not in the worker)

    try:
        return run_with_timeout(_choose, timeout, "resolve")
    except KeystoreError:
        raise
    except Exception as exc:
        reason = f"not usable: the OS keyring could not be set up: {detail(exc)}"
        return Choice(None, _AUTO, None, reason, "unknown backend")
