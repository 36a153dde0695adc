"""Naming a vault item on the command line: its id or a unique prefix of one. Its own module so
that ``credguard exec`` does not load every vault verb (:mod:`credguard.cli.vault_cmd`), and
the daemon resolves an id the way the command line does when it serves ``exec``."""

from __future__ import annotations

from credguard.errors import NotFoundError, UsageError

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    from credguard.vault.store import Vault

MIN_PREFIX = 6
ID_HELP = f"an item id, or a unique prefix of at least {MIN_PREFIX} characters of one"


def resolve_id(vault: Vault, text: str) -> str:
    """A full item id from an id or a unique prefix of at least :data:`MIN_PREFIX` characters;
    UsageError for a shorter or ambiguous prefix, NotFoundError when nothing matches."""
    ids = vault.ids()
    if text in ids:
        return text
    if len(text) < MIN_PREFIX:
        raise UsageError(f"prefix too short: give at least {MIN_PREFIX} characters of an item "
                         "id ('credguard vault list' shows them)")
    matches = [i for i in ids if i.startswith(text.lower())]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"{text!r} matches {len(matches)} items; give more characters")
    raise NotFoundError(f"no vault item {text!r} ('credguard vault list' shows the items)")
