"""Which caches are sealed (``sealed.json`` in the state dir) and the sealed bundle's format.

A sealed cache is ONE vault item, a *bundle* of the tool's secret files, so a write-back after
``credguard az`` replaces all of them at once (a new item, then the record, then the old item
goes). ``sealed.json`` holds no secret: per (tool, root) the item id, the relative file names,
when it was sealed, and two tiny journals that make every change crash-safe:

- ``pending``: item ids being written (an id is recorded *before* its item is written; a crash
  leaves an item nobody refers to, which the next change removes);
- ``superseded``: item ids replaced by a commit, removed right after it (or by the next change);
- ``state``: ``"sealed"``, or ``"unsealing"`` while files are being put back (any later command
  finishes the unseal).

Both files are versioned; a newer version is refused, never rewritten.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credguard import paths
from credguard.errors import IntegrityError, StateError, check_version
from credguard.fs import lock
from credguard.fs.atomic import atomic_write, private_dir
from credguard.fs.read import read_path
from credguard.fs.safe import SkipReason, Unreadable

__all__ = ["BUNDLE_FORMAT", "Seal", "Store", "pack_bundle", "unpack_bundle"]

STORE_VERSION = 1
BUNDLE_FORMAT = "credguard-sealed-cache"
BUNDLE_VERSION = 1
_MAX_STATE = 4 << 20


@dataclass
class Seal:
    """One sealed cache: ``tool`` at ``root``, kept as vault item ``item_id``."""

    tool: str
    root: str
    item_id: str
    files: list[str]
    sealed_at: str
    updated_at: str = ""
    state: str = "sealed"  # or "unsealing"
    pending: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.tool}:{self.root}"

    def public(self) -> dict[str, Any]:
        """What ``status``/``doctor`` show: no journals."""
        return {"tool": self.tool, "root": self.root, "id": self.item_id,
                "item_id": self.item_id,  # deprecated alias of "id", kept for one version
                "files": list(self.files), "sealed_at": self.sealed_at,
                "updated_at": self.updated_at or self.sealed_at, "state": self.state}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Store:
    """``sealed.json``; change it only inside :meth:`locked`."""

    def __init__(self, directory: Path | None = None) -> None:
        self.dir = directory or paths.user_state_dir()
        self.path = self.dir / "sealed.json"
        self.lock_path = self.dir / "sealed.lock"

    @contextlib.contextmanager
    def locked(self, timeout: float = 60.0) -> Iterator[None]:
        private_dir(self.dir)
        with lock.exclusive(self.lock_path, timeout, what="the sealed caches"):
            yield

    def all(self) -> list[Seal]:
        try:
            raw = read_path(self.path, _MAX_STATE).data
        except Unreadable as exc:
            if exc.reason == SkipReason.NOT_FOUND:
                return []
            raise StateError(f"cannot read {self.path}: {exc.reason} {exc.detail}") from None
        try:
            doc = json.loads(raw)
            check_version(doc["version"], STORE_VERSION, str(self.path), StateError)
            return [Seal(**entry) for entry in doc["seals"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"{self.path} is damaged ({type(exc).__name__}); the sealed "
                                 "caches are still in the vault (credguard vault list)") from None

    def get(self, tool: str, root: Path | str) -> Seal | None:
        key = f"{tool}:{os.fspath(root)}"
        return next((s for s in self.all() if s.key == key), None)

    def put(self, seal: Seal) -> None:
        seals = [s for s in self.all() if s.key != seal.key] + [seal]
        self._write(seals)

    def delete(self, seal: Seal) -> None:
        self._write([s for s in self.all() if s.key != seal.key])

    def _write(self, seals: list[Seal]) -> None:
        doc = {"version": STORE_VERSION, "seals": [asdict(s) for s in seals]}
        atomic_write(self.path, json.dumps(doc, indent=1, sort_keys=True).encode())


# ---- the bundle ------------------------------------------------------------------------------


def pack_bundle(tool: str, files: dict[str, bytes]) -> bytes:
    """The vault item's plaintext: every secret file of one cache, by relative name."""
    doc = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "tool": tool,
           "files": {rel: base64.b64encode(data).decode("ascii")
                     for rel, data in sorted(files.items())}}
    return json.dumps(doc, sort_keys=True).encode()


def unpack_bundle(data: bytes, tool: str) -> dict[str, bytes]:
    """The files of a bundle; IntegrityError if it is not one (for ``tool``)."""
    try:
        doc = json.loads(data)
        if doc.get("format") != BUNDLE_FORMAT or doc.get("tool") != tool:
            raise ValueError("not a sealed cache of this tool")
        check_version(doc.get("version"), BUNDLE_VERSION, f"the sealed {tool} cache in the vault")
        files = doc["files"]
        if not isinstance(files, dict):
            raise TypeError("files")
        if not all(_safe_rel(rel) for rel in files):
            raise ValueError("a file name leaves the cache directory")
        return {rel: base64.b64decode(text, validate=True) for rel, text in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise IntegrityError(f"the sealed {tool} cache in the vault is not readable: "
                             f"{type(exc).__name__}") from None


def _safe_rel(rel: object) -> bool:
    """A relative name that stays inside the root: no absolute path, no ``..``, no empties."""
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel or "\0" in rel:
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))

