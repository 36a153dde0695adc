"""The directory walk behind ``credguard scan`` (and, later, the daemon's reconciliation).

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
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from credguard.config import Config, IgnoreEntry
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

PRUNE = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".tox", ".nox",
                   ".mypy_cache", ".ruff_cache", ".pytest_cache"})
MAX_DEPTH = 128
_USE_DIR_FD = safe.AT_SUPPORTED and os.scandir in os.supports_fd
OTHER_FS = safe.SkipReason.OTHER_FILESYSTEM
EXCLUDED = "excluded"


@dataclass(frozen=True)
class Skipped:
    """A path that was not examined, and why (never silently dropped)."""

    path: str
    reason: str
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"path": self.path, "reason": self.reason}
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    ignored: list[tuple[Finding, IgnoreEntry]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[Skipped] = field(default_factory=list)  # explicit paths that could not be scanned
    files: int = 0
    dirs: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "findings": [f.to_json() for f in self.findings],
            "ignored": [{**f.to_json(), "reason": e.reason} for f, e in self.ignored],
            "skipped": [s.to_json() for s in self.skipped],
            "stats": {"files": self.files, "dirs": self.dirs, "seconds": round(self.seconds, 3)},
        }


    @classmethod
    def from_json(cls, doc: dict[str, Any], errors: list[dict[str, str]]) -> ScanResult:
        """Rebuild a result sent by the daemon (``to_json`` plus the explicit-path errors)."""
        def finding(f: dict[str, Any]) -> Finding:
            return Finding(f["path"], f["kind"], f["fingerprint"], f["details"])

        stats = doc["stats"]
        return cls(
            findings=[finding(f) for f in doc["findings"]],
            ignored=[(finding(f), IgnoreEntry(f["fingerprint"], f["reason"], "daemon"))
                     for f in doc["ignored"]],
            skipped=[Skipped(s["path"], s["reason"], s.get("detail", "")) for s in doc["skipped"]],
            errors=[Skipped(s["path"], s["reason"], s.get("detail", "")) for s in errors],
            files=stats["files"], dirs=stats["dirs"], seconds=stats["seconds"])


Progress = Callable[[int, int], None]


class Scanner:
    """Scans roots under one configuration; collects findings, ignored findings and skips."""

    def __init__(self, cfg: Config, progress: Progress | None = None) -> None:
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
        self._seen_files: set[tuple[int, int]] = set()

    # -- entry points ---------------------------------------------------------------------

    def scan(self, roots: Iterable[Root]) -> ScanResult:
        started = time.monotonic()
        for root in roots:
            self._scan_root(root)
        self.result.seconds = time.monotonic() - started
        return self.result

    def _scan_root(self, root: Root) -> None:
        path = Path(os.path.abspath(root.path))
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
        self.result.files += 1
        families = by_name(path.parent, path.name)
        try:
            fd = read.open_dir(path.parent) if _USE_DIR_FD else None
        except Unreadable as exc:
            self._skip(str(path), exc.reason, exc.detail, error=explicit)
            return
        try:
            name = path.name if fd is not None else str(path)
            if families:
                self._check(fd, name, str(path), families, explicit=True)
            elif root.sniff:
                self._sniff(fd, name, str(path), strict_cap=self.cap if explicit else None)
        finally:
            if fd is not None:
                os.close(fd)

    # -- the walk ---------------------------------------------------------------------------

    def _walk(self, path: Path, root: Root) -> None:
        try:
            fd = read.open_dir(path)
        except Unreadable as exc:
            self._skip(str(path), exc.reason, exc.detail, error=root.explicit)
            return
        dev = os.fstat(fd).st_dev
        # Each frame: the directory's fd, its path, and the subdirectories still to enter.
        stack: list[tuple[int, str, Iterator[str]]] = []
        self._enter(fd, str(path), root, stack)
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
        finding = Finding(full, verdict.kind, fingerprint(data.data), verdict.details)
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
