"""Plaintext that reappeared in a sealed cache (a plain ``az login``): which seal it belongs to.

:func:`sealed_cache` is what both drivers hand to :class:`credguard.protect.act.Actor`, which
decides whether such a file is re-sealed or only alerted (``seal.on_plaintext``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from credguard.azcache.seal import Result, Sealer
from credguard.azcache.sealstore import Store
from credguard.azcache.tools import TOOLS, Tool
from credguard.config import Config
from credguard.errors import CredguardError
from credguard.policy import is_under
from credguard.vault.store import Vault


@dataclass(frozen=True)
class SealedCache:
    """The sealed cache of ``tool`` at ``root``."""

    tool: Tool
    root: Path

    def absorb(self, cfg: Config, vault: Vault) -> Result | None:
        """Re-seal the plaintext into the sealed files (merging by entry); None if the cache
        was unsealed meanwhile."""
        return Sealer(cfg, vault).absorb(self.tool, self.root)


def sealed_cache(path: str) -> SealedCache | None:
    """The sealed tool cache ``path`` is a plaintext secret file of, if any."""
    try:
        seals = Store().all()
    except CredguardError:
        return None
    for seal in seals:
        tool = TOOLS.get(seal.tool)
        if tool is None or not is_under(path, Path(seal.root)):
            continue
        rel = os.path.relpath(path, seal.root).replace(os.sep, "/")
        if tool.is_secret(rel) or rel in seal.files:
            return SealedCache(tool, Path(seal.root))
    return None
