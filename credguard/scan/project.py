"""Whether a finding is part of someone's work, and whether git would commit it.

A file is in a *project* when a directory above it — below the home directory (up to ``/`` for
a file outside the home) — holds ``.git`` (a directory; a file or a link, as
worktrees, submodules and some tools make it), or a ``*.sln``, ``*.csproj``, ``*.vbproj`` or
``*.fsproj``; or when it is under ``~/source/repos`` or ``~/Documents/Visual Studio*``. The
home directory itself is nobody's project: a dotfiles repository there would otherwise make
every download a project file that is never protected. Such a
file belongs to the user's tools: the policy's ``project`` location hardens it by default and
never deletes it (:mod:`credguard.policy`). The finding says so in ``details["project"]``:
``{"root", "marker", "git_would_commit"}``.

Hostile trees are expected. The directories are opened from the home (or ``/``) one component
at a time without following a link (:mod:`credguard.fs.safe`), looked at with ``fstatat`` and a
listing that stops after :data:`MAX_ENTRIES` entries (a marker beyond them is not seen), and
nothing but small regular files is ever read (``O_NOFOLLOW|O_NONBLOCK``, :data:`IGNORE_CAP`).
What each directory holds is cached for the life of a :class:`Projects` (one scan).

*Would git commit it* is git's answer for a file that is not yet tracked, computed without
running git (a repository's own configuration can make git run commands): the work tree's
``.gitignore`` files from its root down to the file, ``.git/info/exclude`` (when ``.git`` is a
directory) and the user's global excludes file, ``$XDG_CONFIG_HOME/git/ignore`` (or
``~/.config/git/ignore``), matched as :mod:`credguard.scan.gitignore` says. Not read: a
``core.excludesFile`` set in a git config (no config is parsed), the index (a file that is
already tracked is committed even if ignored: that is not seen), ``.git`` files' and links'
real git directories. ``None`` when it cannot be known: an ignore file that cannot be read
safely (not a regular file, too large), a directory on the way that could not be opened, or
patterns too costly to decide.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from credguard import paths, policy
from credguard.detect.base import Finding
from credguard.fs import at, read
from credguard.fs.read import SkipReason, Unreadable
from credguard.fs.safe import AT_SUPPORTED
from credguard.scan import gitignore

KEY = "project"  # the finding's details key
GIT = "git"
VISUAL_STUDIO_DIR = "visual-studio-dir"
WOULD_COMMIT = "git would commit it"
MARKERS = {".sln": "sln", ".csproj": "csproj", ".vbproj": "vbproj", ".fsproj": "fsproj"}
MAX_ENTRIES = 4096  # entries listed per directory when looking for a project file
MAX_LEVELS = 256  # directories examined above a file, at most
IGNORE_CAP = 256 * 1024  # bytes of one ignore file; a larger one makes the answer unknown
_ABSENT: tuple[bytes | None, bool] = (None, True)  # (content, could be read as git would)
_UNKNOWN: tuple[bytes | None, bool] = (None, False)
_Where = int | str  # a directory: its descriptor, or its path where there is no dir_fd


@dataclass(frozen=True)
class Project:
    """The project a file is part of: its top directory, what made it one, and whether git
    would commit the file (None: not a git work tree, or not known)."""

    root: str
    marker: str  # GIT, a MARKERS value, or VISUAL_STUDIO_DIR
    git_would_commit: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {"root": self.root, "marker": self.marker,
                "git_would_commit": self.git_would_commit}


def of(details: Mapping[str, Any]) -> Project | None:
    """The project a finding's details name (also details sent back by the daemon)."""
    value = details.get(KEY)
    if not isinstance(value, Mapping):
        return None
    would = value.get("git_would_commit")
    return Project(str(value.get("root", "")), str(value.get("marker", "")),
                   would if isinstance(would, bool) else None)


def describe(details: Mapping[str, Any]) -> str:
    """One line for the user: ``inside a git work tree; git would commit it``; "" if no
    project."""
    found = of(details)
    if found is None:
        return ""
    if found.marker != GIT:
        what = ("a Visual Studio folder" if found.marker == VISUAL_STUDIO_DIR
                else f"a project folder (.{found.marker})")
        return f"inside {what}"
    commit = {True: WOULD_COMMIT, False: "git ignores it",
              None: "whether git would commit it is unknown"}[found.git_would_commit]
    return f"inside a git work tree; {commit}"


@dataclass(frozen=True)
class _Dir:
    """What one directory holds, as far as projects go."""

    git: str  # "dir", "other" (a .git file or link) or ""
    marker: str  # a MARKERS value or ""
    ignore: tuple[bytes | None, bool]  # its .gitignore
    exclude: tuple[bytes | None, bool]  # its .git/info/exclude (a .git directory only)


class Projects:
    """Finds the project of files; remembers each directory it looked at (one scan)."""

    def __init__(self) -> None:
        self._dirs: dict[str, _Dir] = {}
        self._chains: dict[str, tuple[list[tuple[str, _Dir]], bool]] = {}
        self._global: tuple[bytes | None, bool] | None = None

    def place(self, findings: list[Finding], start: int = 0) -> int:
        """Tell ``findings[start:]`` (in place) whether they are part of a project; returns
        where the next call starts. The scanner calls it for every finding: the one place the
        scan's report and the policy step (``protect.act``) learn it."""
        for i in range(start, len(findings)):
            findings[i] = self.annotate(findings[i])
        return len(findings)

    def annotate(self, finding: Finding) -> Finding:
        """``finding`` with ``details["project"]`` set to its project (removed if none)."""
        found = self.find(finding.path)
        details = {k: v for k, v in finding.details.items() if k != KEY}
        if found is not None:
            details[KEY] = found.to_json()
        elif KEY not in finding.details:
            return finding
        return replace(finding, details=details)

    def find(self, path: str) -> Project | None:
        full = os.path.abspath(path)
        parent = os.path.dirname(full)
        home = os.path.abspath(paths.home())
        bound = home if policy.is_under(parent, Path(home)) else os.sep
        chain, complete = self._chain(bound, parent)
        first = 1 if bound == home else 0  # the home's own markers: a dotfiles repo, not a project
        for depth in range(len(chain) - 1, first - 1, -1):
            if chain[depth][1].git:
                return Project(chain[depth][0], GIT,
                               self._would_commit(chain[depth:], full, complete))
        for where, facts in reversed(chain[first:]):
            if facts.marker:
                return Project(where, facts.marker)
        studio = _visual_studio_dir(full)
        return Project(studio, VISUAL_STUDIO_DIR) if studio else None

    # -- the directories above a file ------------------------------------------------------

    def _chain(self, bound: str, parent: str) -> tuple[list[tuple[str, _Dir]], bool]:
        """(path, facts) of ``bound`` and each directory down to ``parent``; False when the
        walk stopped before ``parent`` (a link or something unreadable on the way)."""
        cached = self._chains.get(parent)
        if cached is None:
            cached = self._chains[parent] = self._walk(bound, parent)
        return cached

    def _walk(self, bound: str, parent: str) -> tuple[list[tuple[str, _Dir]], bool]:
        rel = os.path.relpath(parent, bound)
        names = [] if rel == os.curdir else rel.split(os.sep)
        if len(names) > MAX_LEVELS or os.pardir in names:
            return [], False
        chain: list[tuple[str, _Dir]] = []
        where: _Where = bound
        try:
            # the bound is the home or "/": its own path is trusted ("." opens it even when
            # the home is reached through a link); below it no link is followed
            if AT_SUPPORTED:
                where = read.open_dir(os.path.join(bound, os.curdir))
            current = bound
            for name in [None, *names]:
                if name is not None:
                    child = _enter(where, name)
                    if isinstance(where, int):
                        os.close(where)
                    where = child
                    current = os.path.join(current, name)
                facts = self._dirs.get(current)
                if facts is None:
                    facts = self._dirs[current] = _examine(where)
                chain.append((current, facts))
        except Unreadable:
            return chain, False
        finally:
            if isinstance(where, int):
                os.close(where)
        return chain, True

    # -- would git commit it -----------------------------------------------------------------

    def _would_commit(self, chain: list[tuple[str, _Dir]], full: str,
                      complete: bool) -> bool | None:
        """Git's answer for ``full`` in the work tree ``chain[0]`` (its directories down to
        the file's); None when it cannot be known."""
        root, top = chain[0]
        parts = [os.fsencode(p) for p in os.path.relpath(full, root).split(os.sep)]
        if b".git" in parts[:-1] or parts[-1] == b".git":
            return False  # git never adds anything inside a .git directory
        if not complete:
            return None
        outer: list[gitignore.Pattern] = []
        for content, ok in (self._global_excludes(), top.exclude):
            if not ok:
                return None
            outer += gitignore.parse(content or b"")
        rules = []
        for depth, (_, facts) in enumerate(chain):
            content, ok = facts.ignore
            if not ok:
                return None
            base = b"".join(part + b"/" for part in parts[:depth])
            rules.append(gitignore.parse(content, base) if content else [])
        try:
            return not gitignore.ignored(parts, rules, outer)
        except (gitignore.TooComplex, RecursionError):
            return None

    def _global_excludes(self) -> tuple[bytes | None, bool]:
        """The user's global excludes file, where git looks for it when no
        ``core.excludesFile`` is set. It is the user's own configuration: a link there (a
        dotfiles repository) is followed, but only a small regular file is read."""
        if self._global is None:
            config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(paths.home(), ".config")
            target = Path(os.path.realpath(os.path.join(config, "git", "ignore")))
            self._global = _read(str(target.parent), target.name, in_tree=False,
                                 by_path=True)
        return self._global


def _enter(where: _Where, name: str) -> _Where:
    """The subdirectory ``name`` of ``where``, never through a link."""
    if isinstance(where, int):
        return read.open_dir(name, where)
    full = os.path.join(where, name)
    if not stat.S_ISDIR(_lstat(full).st_mode):
        raise Unreadable(SkipReason.NOT_REGULAR, "not a directory")
    return full


def _lstat(path: str) -> os.stat_result:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        raise Unreadable(SkipReason.NOT_FOUND, "no such file") from None
    except OSError:
        raise Unreadable(SkipReason.UNREADABLE, "cannot examine it") from None


def _examine(where: _Where) -> _Dir:
    """What the directory ``where`` holds: ``.git``, a project file, its ignore files."""
    git = ""
    try:
        mode = (at.stat(".git", dir_fd=where) if isinstance(where, int)
                else os.lstat(os.path.join(where, ".git"))).st_mode
    except OSError:
        mode = 0
    if stat.S_ISDIR(mode):
        git = "dir"
    elif stat.S_ISREG(mode) or stat.S_ISLNK(mode):
        git = "other"
    exclude = _ABSENT
    if git == "dir":
        exclude = _read_below(where, (".git", "info"), "exclude")
    return _Dir(git, _marker(where), _read(where, ".gitignore"), exclude)


def _marker(where: _Where) -> str:
    """The project file this directory holds (the first few thousand entries are looked at)."""
    found: set[str] = set()
    try:
        with os.scandir(where) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_ENTRIES:
                    break
                suffix = os.path.splitext(entry.name)[1].lower()
                if suffix in MARKERS and not entry.is_dir(follow_symlinks=False):
                    found.add(MARKERS[suffix])
    except OSError:
        return ""
    return next((m for m in MARKERS.values() if m in found), "")


def _read(where: _Where, name: str, *, in_tree: bool = True,
          by_path: bool = False) -> tuple[bytes | None, bool]:
    """An ignore file as git reads it: an absent one is no patterns, and so is a link in the
    work tree (``in_tree``: git does not follow it there); anything else that cannot be read
    safely is unknown. ``by_path``: ``where`` is a path whose own links may be followed."""
    try:
        if isinstance(where, int):
            data = read.read_at(name, where, IGNORE_CAP)
        elif by_path:
            data = read.read_path(Path(where, name), IGNORE_CAP)
        else:
            data = read.read_at(os.path.join(where, name), None, IGNORE_CAP)
    except Unreadable as exc:
        absent = {SkipReason.NOT_FOUND, *((SkipReason.SYMLINK,) if in_tree else ())}
        return _ABSENT if exc.reason in absent else _UNKNOWN
    return data.data, True


def _read_below(where: _Where, dirs: tuple[str, ...], name: str) -> tuple[bytes | None, bool]:
    """``dirs/name`` below ``where`` (``.git/info/exclude``), no link followed: git would
    follow one there, so a link makes the answer unknown."""
    opened: list[int] = []
    current = where
    try:
        for part in dirs:
            if isinstance(current, int):
                current = read.open_dir(part, current)
                opened.append(current)
            else:
                current = os.path.join(current, part)
                mode = _lstat(current).st_mode
                if stat.S_ISLNK(mode):
                    return _UNKNOWN
                if not stat.S_ISDIR(mode):
                    return _ABSENT
        return _read(current, name, in_tree=False)
    except Unreadable as exc:
        return _ABSENT if exc.reason in (SkipReason.NOT_FOUND, SkipReason.NOT_REGULAR) \
            else _UNKNOWN
    finally:
        for held in opened:
            os.close(held)


def _visual_studio_dir(full: str) -> str:
    """``~/source/repos`` or ``~/Documents/Visual Studio*`` if ``full`` is under one."""
    home = paths.home()
    repos = home / "source" / "repos"
    if policy.is_under(full, repos):
        return os.path.abspath(repos)
    for docs in dict.fromkeys((paths.documents_dir(), home / "Documents")):
        top = os.path.abspath(docs)
        if policy.is_under(full, docs) and full != top:
            first = full[len(top.rstrip(os.sep)) + 1:].split(os.sep, 1)
            if len(first) == 2 and first[0].startswith("Visual Studio"):
                return os.path.join(top, first[0])
    return ""
