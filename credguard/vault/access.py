"""Opening the vault the configuration describes: the one place that picks a keystore.

The OS keyring is the default; the passphrase keystore is used only when the configuration asks
for it or the vault was created with it. A vault is never switched between keystores silently:
only ``credguard vault migrate`` moves its keys (:mod:`credguard.vault.migrate`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from credguard import paths
from credguard.errors import ConfigError, CredguardError, KeystoreError
from credguard.vault.keystore import NO_KEYRING_ADVICE, Keystore, open_keystore
from credguard.vault.store import Vault, check_private_dir, item_ids, read_state
from credguard.vault.userbus import adopt_user_bus

if TYPE_CHECKING:
    from credguard.config import Config

PASSPHRASE_ENV = "CREDGUARD_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
MIGRATE_ADVICE = (
    "start a Secret Service such as gnome-keyring (apt-get install gnome-keyring) in your "
    "desktop session, or move this vault to the passphrase keystore with `credguard vault "
    "migrate --to passphrase` (run it once where the keyring is available: it reads the "
    "vault's key from there)"
)


def passphrase_source() -> bytes:
    """The vault passphrase from ``CREDGUARD_PASSPHRASE`` or, on a terminal, a prompt."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value.encode()
    if not sys.stdin.isatty():
        raise KeystoreError(f"the vault uses the passphrase keystore: set {PASSPHRASE_ENV} or "
                            "run credguard on a terminal to be asked")
    import getpass  # only for a prompt

    entered = getpass.getpass("credguard vault passphrase: ")
    if not entered:
        raise KeystoreError("no passphrase entered")
    return entered.encode()


def new_passphrase_source() -> bytes:
    """The passphrase for a new passphrase keystore: ``CREDGUARD_PASSPHRASE``, or asked twice
    on a terminal. (The keystore itself refuses a weak one, whichever the source.)"""
    if os.environ.get(PASSPHRASE_ENV) or not sys.stdin.isatty():
        return passphrase_source()
    import getpass

    from credguard.vault.passphrase import PASSPHRASE_RULE  # the passphrase keystore's module

    print(f"credguard: choose the vault passphrase: {PASSPHRASE_RULE}", file=sys.stderr)
    first = getpass.getpass("new vault passphrase: ")
    if not first:
        raise KeystoreError("no passphrase entered")
    if getpass.getpass("the same passphrase again: ") != first:
        raise KeystoreError("the two passphrases differ; nothing was changed")
    return first.encode()


def keystore_kind(cfg: Config) -> str:
    """Which keystore this vault uses: what it was created with, else the configured one.
    ConfigError if the configuration names the other keystore than the vault uses."""
    directory = paths.vault_dir()
    check_private_dir(directory)
    state = read_state(directory)
    configured: str = cfg["vault.keystore"]
    if state is None:
        return "keyring" if configured == "auto" else configured
    if configured not in ("auto", state.keystore):
        raise ConfigError(
            f"the vault in {directory} keeps its key in the {state.keystore} keystore, but "
            f"vault.keystore = {configured!r} ({cfg.sources['vault.keystore']}); credguard "
            "does not move keys between keystores by itself: run `credguard vault migrate "
            f"--to {configured}` to move them, or set vault.keystore = \"{state.keystore}\" "
            "(or \"auto\")")
    return state.keystore


def keyring_vault_exists() -> bool:
    """Whether a vault whose keys are in the OS keyring exists already (no keyring call)."""
    directory = paths.vault_dir()
    try:
        state = read_state(directory)
        return state is not None and state.keystore == "keyring" and (
            state.key_id is not None or bool(item_ids(directory)))
    except CredguardError:  # only advice depends on it; the real error is raised anyway
        return False


def advised(message: str) -> str:
    """``message``, or, when it suggests opting in to the passphrase keystore while a keyring
    vault exists (whose keys that option alone would not move), the same message suggesting
    ``credguard vault migrate --to passphrase`` instead."""
    if NO_KEYRING_ADVICE not in message or not keyring_vault_exists():
        return message
    return message.replace(NO_KEYRING_ADVICE, MIGRATE_ADVICE)


def with_advice(exc: KeystoreError) -> KeystoreError:
    """``exc`` itself, or the same error with :func:`advised`'s advice."""
    message = advised(exc.message)
    return exc if message == exc.message else KeystoreError(message)


def opener(cfg: Config) -> Callable[[str], Keystore]:
    """Opens a keystore of this vault by kind (``"keyring"`` or ``"passphrase"``)."""
    directory = paths.vault_dir()

    def open_kind(kind: str) -> Keystore:
        try:
            return open_keystore(kind, directory, timeout=cfg["vault.keyring_timeout"],
                                 passphrase=passphrase_source,
                                 new_passphrase=new_passphrase_source)
        except KeystoreError as exc:
            no_bus = adopt_user_bus() if kind == "keyring" else ""
            advised = with_advice(exc)
            if no_bus:  # say why the user's session bus was not tried
                raise KeystoreError(f"{advised.message} ({no_bus})") from exc
            if advised is not exc:
                raise advised from exc
            raise

    return open_kind


def open_vault(cfg: Config, kind: str | None = None) -> Vault:
    """The vault, its keystore opened; ``kind`` (for ``vault migrate`` only) opens it with
    that keystore without comparing it with the configuration."""
    kind = kind or keystore_kind(cfg)
    open_kind = opener(cfg)
    return Vault(paths.vault_dir(), open_kind(kind), kind, open_kind)


def stored_kind(cfg: Config) -> str:
    """The keystore the vault's own state names (the configured one for a vault never
    written to), whatever the configuration says: where ``vault migrate`` starts from."""
    directory = paths.vault_dir()
    check_private_dir(directory)
    state = read_state(directory)
    if state is not None:
        return state.keystore
    configured: str = cfg["vault.keystore"]
    return "keyring" if configured == "auto" else configured
