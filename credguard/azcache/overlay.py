"""The private directory a sealed tool runs against, and what the tool changed in it.

:func:`build` fills a fresh private directory (on a RAM file system: the caller's job) with the
sealed secret files and makes the rest of the real root visible: regular files of the tool's
own directories are *copied* (so a rewrite by the tool, in place or by rename, is seen and
written back), everything else is a symbolic link to the real entry (logs, extensions, and for
PowerShell's overlay home the rest of the home directory). A name that is secret is never
linked: a plaintext copy that reappeared in the real root is not handed to the tool.

:func:`collect` walks the private directory afterwards without following a link: secret files go
back to the vault (the caller merges them), changed or new non-secret files back to the real root.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from dataclasses import dataclass, field
from pathlib import Path

from credguard.azcache.tools import LOCK_SUFFIX, Tool
from credguard.fs.atomic import write_new
from credguard.fs.read import Unreadable, read_path

__all__ = ["COPY_CAP", "Changes", "build", "collect", "digest"]

COPY_CAP = 1 << 20  # larger files in the tool's own dirs are linked, not copied
READ_CAP = 256 << 20  # a file the tool wrote that is larger is reported, not written back


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ancestors(rel: str) -> list[str]:
    out = [""]
    parts = [p for p in rel.split("/") if p]
    for i in range(1, len(parts) + 1):
        out.append("/".join(parts[:i]))
    return out


def build(tool: Tool, real_root: Path, private_root: Path,
          secrets: dict[str, bytes]) -> dict[str, str]:
    """Fill ``private_root`` (an existing empty 0700 dir); returns {rel: sha256} of the copies."""
    needed: set[str] = set()
    for rel in (*tool.own_dirs, *tool.secret_dirs()):  # never a link: a secret may appear
        needed.update(_ancestors(rel))
    for rel in secrets:
        needed.update(_ancestors(posixpath.dirname(rel)))
    copied: dict[str, str] = {}

    def fill(rel_dir: str) -> None:
        private = private_root / rel_dir if rel_dir else private_root
        if rel_dir:
            private.mkdir(mode=0o700, exist_ok=True)
        real = real_root / rel_dir if rel_dir else real_root
        try:
            real_is_dir = stat.S_ISDIR(os.lstat(real).st_mode)
        except OSError:
            real_is_dir = False
        entries = sorted(os.scandir(real), key=lambda e: e.name) if real_is_dir else []
        made: set[str] = set()
        for entry in entries:
            rel = posixpath.join(rel_dir, entry.name) if rel_dir else entry.name
            if tool.is_secret(rel) or rel in secrets or entry.name.endswith(LOCK_SUFFIX):
                continue  # never link a secret; the tool makes its own lock files
            if rel in needed and entry.is_dir(follow_symlinks=False):
                fill(rel)
                made.add(rel)
                continue
            if rel_dir in tool.own_dirs and entry.is_file(follow_symlinks=False):
                try:
                    data = read_path(Path(entry.path), COPY_CAP).data
                    mode = stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode)
                except (Unreadable, OSError):
                    pass  # too large or unreadable: linked below
                else:
                    path = write_new(private / entry.name, data)
                    os.chmod(path, mode & 0o700 | 0o600)
                    copied[rel] = digest(data)
                    continue
            os.symlink(entry.path, private / entry.name)
        for sub in sorted(needed):
            if sub and posixpath.dirname(sub) == rel_dir and sub not in made:
                fill(sub)

    fill("")
    for rel, data in sorted(secrets.items()):
        target = private_root / rel
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_new(target, data)
    return copied


@dataclass
class Changes:
    """What the tool left in its private directory."""

    secrets: dict[str, bytes] = field(default_factory=dict)  # every secret file, by rel
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # changed non-secret
    unreadable: list[str] = field(default_factory=list)  # rel names that could not be read


def collect(tool: Tool, private_root: Path, copied: dict[str, str],
            sealed_names: set[str]) -> Changes:
    """Walk ``private_root`` (never following a link) and sort what is there."""
    changes = Changes()
    for directory, dirnames, filenames in os.walk(private_root, followlinks=False):
        rel_dir = os.path.relpath(directory, private_root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(directory, d))]
        for name in filenames:
            rel = posixpath.join(rel_dir, name) if rel_dir else name
            if name.endswith(LOCK_SUFFIX):
                continue
            path = Path(directory, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue  # our links to the real root, or anything odd the tool made
            secret = tool.is_secret(rel) or rel in sealed_names
            try:
                data = read_path(path, READ_CAP).data
            except Unreadable:
                changes.unreadable.append(rel)
                continue
            if secret:
                changes.secrets[rel] = data
            elif copied.get(rel) != digest(data):
                changes.files[rel] = (data, stat.S_IMODE(st.st_mode))
    return changes
