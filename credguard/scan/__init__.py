"""The directory walk behind ``credguard scan`` and the daemon's reconciliation scans.

The walk holds one directory descriptor per level and opens every child relative to its
parent with ``O_NOFOLLOW``, so a directory swapped for a symlink mid-walk cannot lead it out of
the root. It never descends into symlinks, ``.git`` internals, virtualenvs or ``node_modules``,
stays on one file system, and opens only candidate files: by name everywhere, and by content
(a small prefix first) in download-like folders and explicitly named paths.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from credguard import policy
from credguard.config import Config
from credguard.detect.registry import (
    ALL_FAMILIES,
    SNIFF_PREFIX,
    DetectFn,
    Finding,
    Malformed,
    by_name,
    detect_bytes,
    fingerprint,
    sniff_eligible,
    sniff_matches,
)
from credguard.fs import read, safe
from credguard.fs.read import FileData, SkipReason, Unreadable
from credguard.paths import Root, default_roots
from credguard.scan.result import ScanResult, Skipped

if TYPE_CHECKING:  # projects are looked up only once there is a finding
    from credguard.scan.project import Projects

__all__ = ["EXCLUDED", "OTHER_FS", "PRUNE", "ScanResult", "Scanner", "Skipped", "below",
           "configured_roots", "explicit_roots", "holding_root", "scan"]

PRUNE = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".tox", ".nox",
                   ".mypy_cache", ".ruff_cache", ".pytest_cache"})
MAX_DEPTH = 128
_USE_DIR_FD = safe.AT_SUPPORTED and os.scandir in os.supports_fd
OTHER_FS = safe.SkipReason.OTHER_FILESYSTEM
EXCLUDED = "excluded"


Progress = Callable[[int, int], None]


class Scanner:
    """Scans roots under one configuration; collects findings, ignored findings and skips."""

    def __init__(self, cfg: Config, progress: Progress | None = None,
                 projects: Projects | None = None) -> None:
        """``projects``: project lookups to share (the daemon's worker shares one per batch);
        by default this scan's own, made with its first finding."""
        self.cfg = cfg
        self.cap: int = cfg["scan.max_file_size"]
        self.sniff_cap: int = min(cfg["scan.sniff_max_size"], self.cap)
        self.one_fs: bool = cfg["scan.one_file_system"]
        patterns = cfg["scan.exclude"]
        self.exclude = (re.compile("|".join(fnmatch.translate(p) for p in patterns))
                        if patterns else None)
        self.progress = progress
        self.result = ScanResult()
        self._seen_dirs: set[tuple[int, int]] = set()
        self._root = ""  # the directory the current root's walk starts from
        self._seen_files: set[tuple[int, int]] = set()
        self._projects = projects
        self._placed = 0  # findings told whether they are part of a project (project.place)

    # -- entry points ---------------------------------------------------------------------

    def scan(self, roots: Iterable[Root]) -> ScanResult:
        started = time.monotonic()
        for root in roots:
            self._scan_root(root)
        self.place_findings()
        self.result.seconds += time.monotonic() - started
        return self.result

    def scan_beneath(self, root: Root, rel: str) -> ScanResult:
        """Scan the directory ``rel`` beneath ``root``, with that root's settings, reached from
        the root's own directory by :mod:`credguard.fs.safe`'s rules: no link on the way is
        followed and nothing off the root's file system is entered (others' directories are
        read), so a folder swapped for a link after an event named it is not entered."""
        base = os.path.abspath(root.path)
        full = os.path.join(base, rel)
        if not _USE_DIR_FD:
            return self.scan([Root(Path(full), root.label, root.recursive, root.sniff)])
        started = time.monotonic()
        self._root = base
        try:
            fd = _open_beneath(base, rel)
        except Unreadable as exc:
            if exc.reason != SkipReason.NOT_FOUND:
                self._skip(full, exc.reason, exc.detail)
        else:
            self._walk_from(fd, full, root)
        self.place_findings()
        self.result.seconds += time.monotonic() - started
        return self.result

    def place_findings(self) -> None:
        """Tell new findings whether they are part of a project (:mod:`.project`, loaded with
        the first finding: a scan or check that finds nothing does without it)."""
        if len(self.result.findings) > self._placed:
            if self._projects is None:
                from credguard.scan.project import Projects

                self._projects = Projects()
            self._placed = self._projects.place(self.result.findings, self._placed)

    def _scan_root(self, root: Root) -> None:
        path = Path(os.path.abspath(root.path))
        self._root = str(path)  # a file named as a root: _scan_named_file says its directory
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            if root.explicit:
                self._skip(str(path), SkipReason.NOT_FOUND, "no such file or directory", error=True)
            return
        except OSError as exc:
            self._skip(str(path), SkipReason.UNREADABLE, exc.strerror or "", error=root.explicit)
            return
        if stat.S_ISLNK(st.st_mode):
            self._skip(str(path), SkipReason.SYMLINK, "refusing to follow a symbolic link",
                       error=root.explicit)
        elif stat.S_ISREG(st.st_mode):
            self._scan_named_file(path, root)
        elif stat.S_ISDIR(st.st_mode):
            self._walk(path, root)
        else:
            self._skip(str(path), SkipReason.NOT_REGULAR, "not a regular file or directory",
                       error=root.explicit)

    def _scan_named_file(self, path: Path, root: Root) -> None:
        """A file named as a root: matched by name, else sniffed whatever its extension.

        ``explicit`` (``scan FILE``) reports every problem as an error and sniffs up to the full
        cap; otherwise (``check``, run on whatever a commit holds) large or odd files are passed
        over quietly, as a pre-commit hook must not block unrelated files. Content sniffing
        happens only for roots that sniff (the daemon's non-download roots match by name).
        """
        explicit = root.explicit
        self._root = str(path.parent)
        try:
            fd = read.open_dir(path.parent) if _USE_DIR_FD else None
        except Unreadable as exc:
            self.result.files += 1
            self._skip(str(path), exc.reason, exc.detail, error=explicit)
            return
        try:
            name = path.name if fd is not None else str(path)
            self._examine(fd, name, str(path), root.sniff, explicit)
        finally:
            if fd is not None:
                os.close(fd)

    def scan_entry(self, dir_fd: int, name: str, full: str, root: str,
                   sniff: bool) -> ScanResult:
        """Examine one file: ``name`` in the directory ``dir_fd``, which the caller opened
        beneath ``root`` by :mod:`credguard.fs.safe`'s rules (so no symlinked directory is read
        through); ``full`` is its path for reports. By name, else by content if ``sniff``; its
        findings carry ``root``, where acting on them walks from."""
        self._root = root
        self._examine(dir_fd, name, full, sniff, explicit=False)
        self.place_findings()
        return self.result

    def _examine(self, fd: int | None, name: str, full: str, sniff: bool,
                 explicit: bool) -> None:
        """One file chosen by its caller: matched by name, else sniffed if ``sniff``."""
        self.result.files += 1
        families = by_name(os.path.dirname(full), os.path.basename(full))
        if families:
            self._check(fd, name, full, families, explicit=True)
        elif sniff:
            self._sniff(fd, name, full, strict_cap=self.cap if explicit else None)

    # -- the walk ---------------------------------------------------------------------------

    def _walk(self, path: Path, root: Root) -> None:
        try:
            fd = read.open_dir(path)
        except Unreadable as exc:
            self._skip(str(path), exc.reason, exc.detail, error=root.explicit)
            return
        self._walk_from(fd, str(path), root)

    def _walk_from(self, fd: int, path: str, root: Root) -> None:
        """Walk the tree below directory ``fd`` (closed here), known as ``path``."""
        dev = os.fstat(fd).st_dev
        # Each frame: the directory's fd, its path, and the subdirectories still to enter.
        stack: list[tuple[int, str, Iterator[str]]] = []
        self._enter(fd, path, root, stack)
        while stack:
            parent_fd, parent_path, pending = stack[-1]
            name = next(pending, None)
            if name is None:
                os.close(parent_fd)
                stack.pop()
                continue
            child = os.path.join(parent_path, name)
            if len(stack) >= MAX_DEPTH:
                self._skip(child, SkipReason.TOO_DEEP, f"deeper than {MAX_DEPTH} levels")
                continue
            try:
                child_fd = (read.open_dir(name, parent_fd) if _USE_DIR_FD
                            else read.open_dir(child))
            except Unreadable as exc:
                if exc.reason != SkipReason.NOT_FOUND:  # vanished mid-walk: nothing to report
                    self._skip(child, exc.reason, exc.detail)
                continue
            if self.one_fs and os.fstat(child_fd).st_dev != dev:
                os.close(child_fd)
                self._skip(child, OTHER_FS, "a mount point; scan it explicitly to include it")
                continue
            self._enter(child_fd, child, root, stack)

    def _enter(self, fd: int, path: str, root: Root,
               stack: list[tuple[int, str, Iterator[str]]]) -> None:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) in self._seen_dirs:
            os.close(fd)
            return
        self._seen_dirs.add((st.st_dev, st.st_ino))
        self.result.dirs += 1
        subdirs = self._list(fd, path, root)
        if root.recursive:
            stack.append((fd, path, iter(subdirs)))
        else:
            os.close(fd)

    def _list(self, fd: int, path: str, root: Root) -> list[str]:
        """Examine one directory's files; return the subdirectories worth entering."""
        subdirs: list[str] = []
        exclude = self.exclude
        sniff = root.sniff
        dir_fd = fd if _USE_DIR_FD else None
        venv = False
        files = 0
        try:
            entries = list(os.scandir(fd if _USE_DIR_FD else path))
        except OSError as exc:
            self._skip(path, SkipReason.UNREADABLE, exc.strerror or "cannot list")
            return subdirs
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                low = name.lower()
                if name not in PRUNE and not low.endswith(".download"):
                    subdirs.append(name)
                continue
            files += 1
            if name == "pyvenv.cfg":
                venv = True
            families = by_name(path, name)
            if not families and not (sniff and sniff_eligible(name)):
                continue
            full = os.path.join(path, name)
            if exclude is not None and exclude.match(full):
                continue
            fname = name if dir_fd is not None else full
            if families:
                if entry.is_symlink():
                    self._skip(full, SkipReason.SYMLINK, "refusing to follow a symbolic link")
                elif not entry.is_file(follow_symlinks=False):
                    self._skip(full, SkipReason.NOT_REGULAR, "not a regular file")
                else:
                    self._check(dir_fd, fname, full, families)
            elif entry.is_file(follow_symlinks=False):
                self._sniff(dir_fd, fname, full, strict_cap=None)
        self.result.files += files
        if self.progress is not None:
            self.progress(self.result.files, self.result.dirs)
        if venv:
            return []
        if exclude is not None:
            subdirs = [d for d in subdirs if not exclude.match(os.path.join(path, d))]
        return subdirs

    # -- reading and judging one file -------------------------------------------------------

    def _check(self, dir_fd: int | None, name: str, full: str,
               families: tuple[DetectFn, ...], explicit: bool = False) -> None:
        try:
            data = read.read_at(name, dir_fd, self.cap)
        except Unreadable as exc:
            self._skip(full, exc.reason, exc.detail, error=explicit)
            return
        self._judge(data, full, families, strict=True)

    def _sniff(self, dir_fd: int | None, name: str, full: str,
               strict_cap: int | None) -> None:
        """Read a prefix; only if it carries a credential marker, read and judge the whole.

        ``strict_cap`` is set for explicitly named files: problems are reported, not ignored.
        """
        cap = strict_cap or self.sniff_cap
        try:
            fd, st = read.open_regular(name, dir_fd)
        except Unreadable as exc:
            if strict_cap is not None:
                self._skip(full, exc.reason, exc.detail, error=True)
            return
        try:
            if st.st_size == 0 or (st.st_size > cap and strict_cap is None):
                return
            head = read.read_fd(fd, st, cap, prefix=SNIFF_PREFIX)
            if not sniff_matches(head.data):
                return
            if not head.complete:
                os.lseek(fd, 0, os.SEEK_SET)
                head = read.read_fd(fd, st, cap)
        except Unreadable as exc:
            self._skip(full, exc.reason, exc.detail, error=strict_cap is not None)
            return
        finally:
            os.close(fd)
        self._judge(head, full, ALL_FAMILIES, strict=False)

    def _judge(self, data: FileData, full: str, families: tuple[DetectFn, ...],
               strict: bool) -> None:
        if (data.dev, data.ino) in self._seen_files:
            return
        self._seen_files.add((data.dev, data.ino))
        try:
            verdict = detect_bytes(data.data, PurePath(full), families, strict=strict)
        except Malformed as exc:
            self._skip(full, SkipReason.MALFORMED, str(exc))
            return
        if verdict is None:
            return
        finding = Finding(full, verdict.kind, fingerprint(data.data), verdict.details,
                          self._root)
        entry = self.cfg.ignored(finding.fingerprint)
        if entry is not None:
            self.result.ignored.append((finding, entry))
        else:
            self.result.findings.append(finding)

    def _skip(self, path: str, reason: str, detail: str = "", *, error: bool = False) -> None:
        item = Skipped(path, reason, detail)
        self.result.skipped.append(item)
        if error:
            self.result.errors.append(item)


def _open_beneath(base: str, rel: str) -> int:
    """Directory ``rel`` beneath ``base``, opened by fs/safe's rules except the one against
    directories other users can change (reading them is safe; acting there is refused)."""
    with safe.open_root(base, writers=False) as top:
        parent, name = safe.walk(top, rel, writers=False)
        with parent:
            fd = safe.open_dir(name, parent.fd)
    if os.fstat(fd).st_dev != top.dev:
        os.close(fd)
        raise Unreadable(OTHER_FS, "a mount point; scan it explicitly to include it")
    return fd


def below(root: str, path: str) -> str:
    """``path`` relative to ``root``, by name: what follows the root's path and a separator
    (``..`` and links are not resolved here: a walk refuses them)."""
    return path[len(os.path.abspath(root).rstrip(os.sep)) + 1:]


def holding_root(roots: Iterable[Root], path: str) -> Root | None:
    """The most specific of ``roots`` holding ``path`` by name (no link resolved): where a walk
    to it starts."""
    holding = [r for r in roots if policy.is_under(path, r.path)]
    return max(holding, key=lambda r: len(os.path.abspath(r.path)), default=None)


def explicit_roots(paths: Iterable[str], explicit: bool = True) -> list[Root]:
    """Roots for PATHs named on the command line: recursive and sniffed; with ``explicit``,
    a PATH that cannot be scanned is an error."""
    return [Root(Path(p), "explicit", recursive=True, sniff=True, explicit=explicit)
            for p in paths]


def configured_roots(cfg: Config) -> list[Root]:
    """The roots a scan with no PATH covers and the daemon watches: the default roots, then
    ``scan.extra_roots`` (labelled "extra"), in that order."""
    return default_roots() + [Root(Path(p), "extra") for p in cfg["scan.extra_roots"]]


def scan(roots: Iterable[Root], cfg: Config, progress: Progress | None = None) -> ScanResult:
    return Scanner(cfg, progress).scan(roots)
