"""What the vault and the journal hold right now, for tests that must prove a refusal or a
failure stored nothing (or exactly what it should) and left nothing behind. Checks compare
SHA-256 digests and file names only, so a failing assertion never prints credential bytes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from credguard import paths
from credguard.vault.store import ITEM_SUFFIX
from helpers.crashes import entries, vault_contents


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def item_files() -> list[str]:
    """The item files in the vault directory, whatever their state (none: no vault yet)."""
    vault = paths.vault_dir()
    if not vault.exists():
        return []
    return sorted(n for n in os.listdir(vault) if n.endswith(ITEM_SUFFIX))


def vault_shas() -> list[str]:
    """The SHA-256 of every item that decrypts, computed from its bytes, sorted."""
    return sorted(vault_contents())


def assert_vault_holds(*datas: bytes) -> None:
    """The vault holds exactly ``datas``, one item each, and no other item file (not even one
    that no longer decrypts)."""
    expected = sorted({sha(d) for d in datas})
    assert vault_shas() == expected, "the vault does not hold exactly what it should"
    assert len(item_files()) == len(expected), "an item file too many (or too few)"


def assert_no_journal_entry() -> None:
    assert entries() == [], "a journal entry was left behind"


def same_bytes(path: Path, data: bytes) -> bool:
    """``path`` holds exactly ``data`` (compared by digest: no bytes in a failure message)."""
    return sha(path.read_bytes()) == sha(data)
