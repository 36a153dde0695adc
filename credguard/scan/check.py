"""``credguard check``: the files a commit would hold, as a git hook passes them.

Each PATH is judged as a commit holds it. A regular file is examined (by name, else by
content); large or odd files are passed over, listed as skipped, as a hook must not block a
commit for an unrelated file. A symbolic link is listed as skipped, never followed: a commit
holds only the link's text, and its target, if it is committed at all, is a file of its own
that the hook passes too. Anything else named (a path that does not exist, a directory, a
special file) is an error: pre-commit passes only files that exist (its ``types: [file]``
leaves out links and directories), so such a name is a mistake, never a silent pass.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from credguard.config import Config
from credguard.fs.read import SkipReason
from credguard.paths import Root
from credguard.scan import Scanner
from credguard.scan.result import ScanResult

__all__ = ["LINK_NOT_FOLLOWED", "check"]

LINK_NOT_FOLLOWED = ("not followed: a commit holds only the link; its target is checked when "
                     "it is committed itself")
DIRECTORY = "a directory: check takes files (credguard scan DIR searches a directory)"


class Checker(Scanner):
    """A scanner for named files, judged as a commit holds them."""

    def check(self, paths: Iterable[str]) -> ScanResult:
        started = time.monotonic()
        for name in paths:
            self._check_one(Path(os.path.abspath(name)))
        self.place_findings()
        self.result.seconds += time.monotonic() - started
        return self.result

    def _check_one(self, path: Path) -> None:
        full = str(path)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self._skip(full, SkipReason.NOT_FOUND, "no such file or directory", error=True)
            return
        except OSError as exc:
            self._skip(full, SkipReason.UNREADABLE, exc.strerror or "", error=True)
            return
        if stat.S_ISREG(st.st_mode):
            self._scan_named_file(path, Root(path, "check", recursive=False, sniff=True))
        elif stat.S_ISLNK(st.st_mode):
            self._skip(full, SkipReason.SYMLINK, LINK_NOT_FOLLOWED)
        elif stat.S_ISDIR(st.st_mode):
            self._skip(full, SkipReason.NOT_REGULAR, DIRECTORY, error=True)
        else:
            self._skip(full, SkipReason.NOT_REGULAR, "not a regular file", error=True)


def check(paths: Iterable[str], cfg: Config) -> ScanResult:
    """Check each of ``paths`` as a commit would hold it (see the module's docstring)."""
    return Checker(cfg).check(paths)
