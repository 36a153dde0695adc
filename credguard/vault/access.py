"""Opening the vault the configuration describes: the one place that picks a keystore.

The OS keyring is the default; the passphrase keystore is used only when the configuration asks
for it or the vault was created with it. A vault is never switched between keystores silently.
"""

from __future__ import annotations

import getpass
import os
import sys

from credguard import paths
from credguard.config import Config
from credguard.errors import KeystoreError, StateError
from credguard.vault.keystore import open_keystore
from credguard.vault.store import Vault, check_private_dir, read_state
from credguard.vault.userbus import adopt_user_bus

PASSPHRASE_ENV = "CREDGUARD_PASSPHRASE"  # noqa: S105 - a variable name, not a secret


def passphrase_source() -> bytes:
    """The vault passphrase from ``CREDGUARD_PASSPHRASE`` or, on a terminal, a prompt."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value.encode()
    if not sys.stdin.isatty():
        raise KeystoreError(f"the vault uses the passphrase keystore: set {PASSPHRASE_ENV} or "
                            "run credguard on a terminal to be asked")
    entered = getpass.getpass("credguard vault passphrase: ")
    if not entered:
        raise KeystoreError("no passphrase entered")
    return entered.encode()


def keystore_kind(cfg: Config) -> str:
    """Which keystore this vault uses: what it was created with, else the configured one."""
    directory = paths.vault_dir()
    check_private_dir(directory)
    state = read_state(directory)
    configured: str = cfg["vault.keystore"]
    if state is None:
        return "keyring" if configured == "auto" else configured
    if configured not in ("auto", state.keystore):
        raise StateError(
            f"the vault in {directory} keeps its key in the {state.keystore} keystore, but "
            f"vault.keystore = {configured!r} ({cfg.sources['vault.keystore']}); credguard "
            "does not move keys between keystores by itself")
    return state.keystore


def open_vault(cfg: Config) -> Vault:
    kind = keystore_kind(cfg)
    directory = paths.vault_dir()
    try:
        keystore = open_keystore(kind, directory, timeout=cfg["vault.keyring_timeout"],
                                 passphrase=passphrase_source)
    except KeystoreError as exc:
        no_bus = adopt_user_bus() if kind == "keyring" else ""
        if no_bus:  # say why the user's session bus was not tried
            raise KeystoreError(f"{exc.message} ({no_bus})") from exc
        raise
    return Vault(directory, keystore, kind)
