"""``credguard check FILE...``'s quick path: the pre-commit hook's common case, files that are
no credential, answered before argparse, the configuration or the scanner are loaded.

It answers only "clean" (print nothing, exit 0), and only when the full check would answer
exactly that: the command line is ``check`` and files, no option; nothing a crash left waits
(no ``*.json`` in the journal, no ``session-*`` or expired ``open-*`` in a RAM directory); the
configuration is known to load in silence (:mod:`credguard.cli.stamp`); and every file is a
regular file (a link is a note, anything else an error), no candidate by its name, and empty or
opening with bytes no credential document can start with (:mod:`credguard.detect.candidates`,
the rules the scanner uses). Anything else, any doubt, any error: False, and the full path
runs. It is the one that reports, so the quick path never changes what is reported, only how
soon "nothing" is.

Files are opened as the full check opens them: ``lstat`` first, the parent directory without
following a link in its last component, the file beneath it with ``O_NOFOLLOW|O_NONBLOCK``
(a FIFO or device is never opened: ``lstat`` said what it is), and only the file ``lstat`` saw.
Only ``os``, ``stat``, ``sys`` and lean credguard modules are imported.
"""

from __future__ import annotations

import os
import stat
import time

from credguard import xdg
from credguard.cli import stamp
from credguard.detect import candidates
from credguard.fs import at, flags

SHM = "/dev/shm"  # noqa: S108 - paths.ram_dir_candidates' shared tmpfs; only listed here
PLATFORM_OVERRIDE = "CREDGUARD_PLATFORM"  # moves the runtime dir: paths.platform_name's


def clean(words: list[str]) -> bool:
    """Whether the command line ``words`` is a ``check`` whose full run would print nothing
    and exit 0, as far as can be told without it (see the module's docstring)."""
    files = words[1:]
    if words[:1] != ["check"] or not files or any(w.startswith("-") for w in files):
        return False
    try:
        return (_usable() and not _leftovers() and stamp.known_quiet()
                and all(_clean_file(name) for name in files))
    except Exception:  # whatever it is, the full path meets it and says it
        return False


def _usable() -> bool:
    """Linux with plain XDG directories, where this module knows every place, and the open
    flags the rules need."""
    return (xdg.plain_xdg() and PLATFORM_OVERRIDE not in os.environ
            and bool(flags.NOFOLLOW and flags.DIRECTORY and flags.AT_SUPPORTED))


def _leftovers() -> bool:
    """Whether a crash may have left work (the full path recovers it, or says it waits): a
    ``.json`` name in the journal dir (:func:`credguard.cli.common._journal_waits`), or a
    ``session-*`` name in any directory :func:`credguard.handoff.ramdir.has_leftovers` may
    list (a superset: a name found in one it would not list only means the full path)."""
    if any(n.endswith(".json") for n in _names(os.path.join(xdg.state_dir(), "journal"))):
        return True
    mine = f"{xdg.APP}-{xdg.euid()}"  # paths.shared_dir's preferred name
    for place in (os.environ.get("XDG_RUNTIME_DIR"), SHM):
        if not place:
            continue
        dirs = [xdg.APP, *(e for e in _names(place) if e == mine or e.startswith(f"{mine}-"))]
        if any(_waits(n) for d in dirs for n in _names(os.path.join(place, d))):
            return True
    return False


def _waits(name: str) -> bool:
    """A RAM directory entry the full path deals with first: a sealed-cache session a killed
    credguard left, or an open copy whose time is up (:mod:`credguard.handoff.opened`: its
    expiry, in seconds, follows ``open-``), which it sweeps."""
    if name.startswith("session-"):
        return True
    expiry = name[len("open-"):].split("-", 1)[0] if name.startswith("open-") else ""
    return expiry.isdigit() and int(expiry) <= time.time()


def _names(directory: str) -> list[str]:
    """The entries of ``directory``; none when it does not exist (any other error is raised:
    the full path then looks)."""
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


def _clean_file(name: str) -> bool:
    """Whether the full check passes file ``name`` in silence, by the scanner's own rules."""
    full = os.path.abspath(name)
    seen = os.lstat(full)
    if not stat.S_ISREG(seen.st_mode):
        return False  # a link: a note; a directory, FIFO, device or socket: an error
    parent, base = os.path.split(full)
    if candidates.by_name(parent, base):
        return False
    parent_fd = at.open_dir(parent)
    try:
        fd = at.open(base, flags.READ, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino):
            return False
        want = min(candidates.SNIFF_PREFIX, st.st_size)  # the scanner's prefix (fs.read)
        head = stamp.read_up_to(fd, want)
    finally:
        os.close(fd)
    return len(head) == want and not candidates.sniff_matches(head)
