"""What a user (or another program) does to a file while credguard protects it, for the
property-based test of the protect transaction: rewrite it in place (the same inode, even the
same size and mtime), patch one block, save over it atomically (a new inode), rename its
directory, swap its directory for a symlink (the directory moved within the root, or out of
it), put the directory back.

A :class:`World` applies these to a directory tree and tracks where the file's directory is
now and every content the file held, so a test can check afterwards that none was destroyed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from helpers import payloads

NAME = "x.PublishSettings"  # the protected file, in directory DIR beneath the root
DIR = "d"
HOME = f"root/{DIR}"  # where the file's directory starts, relative to the world's base
BLOCK = 4096
OpKind = Literal["rewrite", "patch", "replace", "rename", "swap", "evict", "restore"]
IN_PLACE: frozenset[str] = frozenset({"rewrite", "patch"})  # the same inode, written to
TARGETS = ("outside", "outside/sub", "other")  # where a swapped-in symlink points
_TEMPLATE = payloads.publish_profile().data
_PASSWORD = re.compile(rb'userPWD="([^"]+)"')


def credential(seed: int, size: int = 0) -> bytes:
    """A publish profile whose password depends on ``seed``, padded to ``size`` bytes."""
    password = hashlib.sha256(b"%d" % seed).hexdigest()[:60].encode()
    data = _PASSWORD.sub(b'userPWD="' + password + b'"', _TEMPLATE)
    return data + b" " * max(0, size - len(data))


def base_size() -> int:
    return len(credential(0))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Op:
    """One thing done to the file or its directory; ``seed`` picks the new content (or the
    block patched), ``same`` keeps the size and mtime, ``target`` is where a symlink points."""

    kind: OpKind
    seed: int = 0
    same: bool = False
    target: str = TARGETS[0]


def _regular(path: Path) -> tuple[os.stat_result, bytes] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return st, b"".join(chunks)
    finally:
        os.close(fd)


@dataclass
class World:
    """``base/root``, the tree ``base/outside`` beside it, where the file's directory is now
    (``cur``, relative to ``base``), and each content the file held: sha256 -> True while
    only credguard may have destroyed it (False once the user replaced it themselves)."""

    base: Path
    cur: str = HOME
    moves: int = 0
    contents: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def create(cls, base: Path, data: bytes) -> World:
        """The file holding ``data``, a bystander credential of the same name in ``root/other``,
        and the outside tree (credentials of that name too)."""
        world = cls(base)
        for where, content in ((DIR, data), ("other", credential(-1))):
            (world.root / where).mkdir(parents=True)
            world._write(world.root / where / NAME, content)
        for where in ("", "sub"):
            (world.outside / where).mkdir(parents=True, exist_ok=True)
            (world.outside / where / NAME).write_bytes(credential(-2))
        return world

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def outside(self) -> Path:
        return self.base / "outside"

    @property
    def file(self) -> Path:
        return self.base / self.cur / NAME

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "base": str(self.base)})

    @classmethod
    def from_json(cls, text: str) -> World:
        doc = json.loads(text)
        return cls(Path(doc.pop("base")), **doc)

    def _write(self, path: Path, data: bytes, keep: os.stat_result | None = None) -> None:
        """Write ``data`` in place (``O_TRUNC``, like ``cp``), keeping ``keep``'s times."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, data)
            if keep is not None:
                os.utime(fd, ns=(keep.st_atime_ns, keep.st_mtime_ns))
        finally:
            os.close(fd)
        self.contents[sha(data)] = True

    def _replaced(self, old: tuple[os.stat_result, bytes] | None) -> None:
        if old is not None and sha(old[1]) in self.contents:
            self.contents[sha(old[1])] = False  # the user's own doing

    def apply(self, op: Op) -> None:
        getattr(self, f"_{op.kind}")(op)

    def _rewrite(self, op: Op) -> None:
        old = _regular(self.file)
        same = op.same and old is not None and old[0].st_size >= base_size()
        size = old[0].st_size if same and old else base_size() + op.seed % 5000
        self._replaced(old)
        self._write(self.file, credential(op.seed, size), old[0] if same and old else None)

    def _patch(self, op: Op) -> None:
        old = _regular(self.file)
        if old is None or not old[1]:
            return
        st, data = old
        offset = (op.seed % -(-len(data) // BLOCK)) * BLOCK + op.seed % 97
        patch = (b"#patched %d#" % op.seed)[:max(0, len(data) - offset)]
        if not patch or data[offset:offset + len(patch)] == patch:
            return
        self._replaced(old)
        self._write(self.file, data[:offset] + patch + data[offset + len(patch):], st)

    def _replace(self, op: Op) -> None:
        self._replaced(_regular(self.file))
        temp = self.file.with_name(".saving")
        self._write(temp, credential(op.seed, base_size() + op.seed % 5000))
        os.rename(temp, self.file)

    def _move(self, to: str) -> None:
        new = f"{to}/m{self.moves}"
        os.rename(self.base / self.cur, self.base / new)
        self.cur, self.moves = new, self.moves + 1

    def _link(self, target: Path) -> None:
        link = self.root / DIR
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)

    def _rename(self, _op: Op) -> None:
        self._move("root")

    def _swap(self, op: Op) -> None:
        """The directory moves aside within the root; a symlink to ``op.target`` takes its name."""
        if self.cur == HOME:
            self._move("root")
        self._link(self.root / "other" if op.target == "other" else self.base / op.target)

    def _evict(self, _op: Op) -> None:
        """The directory moves out of the root; a symlink to it takes its name."""
        self._move("outside")
        self._link(self.base / self.cur)

    def _restore(self, _op: Op) -> None:
        link = self.root / DIR
        if link.is_symlink():
            link.unlink()
        if self.cur != HOME:
            os.rename(self.base / self.cur, link)
            self.cur = HOME


def disk_shas(root: Path) -> set[str]:
    """The sha256 of every regular file beneath ``root`` (symlinks are not followed)."""
    found = set()
    for top, _dirs, files in os.walk(root):
        for name in files:
            got = _regular(Path(top, name))
            if got is not None:
                found.add(sha(got[1]))
    return found


def tree(root: Path) -> list[tuple[str, str]]:
    """Everything beneath ``root``: (relative path, file sha256 / symlink target / "dir")."""
    listing = []
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(top, name)
            if path.is_symlink():
                what = "-> " + os.readlink(path)
            elif path.is_dir():
                what = "dir"
            else:
                what = sha(path.read_bytes())
            listing.append((str(path.relative_to(root)), what))
    return sorted(listing)
