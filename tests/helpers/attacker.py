"""Another local user, created for a test with ``useradd`` and removed afterwards, and the
attacks it runs as a real process with its own uid (CI runs as root, as these need)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# An interpreter every uid may run (the test's own may live under root's 0700 home).
PYTHON = "/usr/bin/python3"

# Swap a directory the attacker owns with a symlink to TARGET (renameat2 RENAME_EXCHANGE, as
# fast as it goes), rewriting a decoy publish-settings file (stdin) inside it between swaps.
EXCHANGE_LOOP = r"""
import ctypes, os, sys, time
base, target, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
decoy = sys.stdin.buffer.read()
real, link = os.path.join(base, "d"), os.path.join(base, "l")
rel = os.path.join("projects", "contoso", "contoso.publishsettings")
os.makedirs(os.path.dirname(os.path.join(real, rel)))
os.symlink(target, link)
libc = ctypes.CDLL(None, use_errno=True)
names = [real.encode(), link.encode()]
swaps, here = 0, real
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        with open(os.path.join(here, rel), "wb") as f:
            f.write(decoy)
    except OSError:
        pass
    if hasattr(libc, "renameat2"):
        rc = libc.renameat2(-100, names[0], -100, names[1], 2)
    else:  # x86_64 syscall number
        rc = libc.syscall(316, -100, names[0], -100, names[1], 2)
    if rc != 0:
        sys.exit(f"renameat2: errno {ctypes.get_errno()}")
    swaps += 1
    here = link if here == real else real
    time.sleep(0.002)
print(swaps)
"""


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int

    def run(self, script: str, *args: str, stdin: bytes = b"",
            timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        """Run a Python ``script`` as this user (``setpriv``: its uid and gid, no other
        groups); its result, never raising on failure."""
        become = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]
        return subprocess.run([*become, PYTHON, "-I", "-c", script, *args], input=stdin,
                              capture_output=True, timeout=timeout, check=False, cwd="/",
                              env={"PATH": "/usr/bin:/bin"})


@contextmanager
def other_user() -> Iterator[User]:
    """A fresh system user (no home, no login shell), deleted with its group afterwards."""
    name = f"cgatk{secrets.token_hex(4)}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                    "--shell", "/usr/sbin/nologin", "--user-group", name],
                   check=True, capture_output=True)
    try:
        import pwd

        entry = pwd.getpwnam(name)
        yield User(name, entry.pw_uid, entry.pw_gid)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


@contextmanager
def shared_sticky_dir() -> Iterator[Path]:
    """``/tmp/shared-<random>``, mode 1777 like ``/tmp``; removed afterwards (links unfollowed)."""
    path = Path(f"/tmp/shared-{secrets.token_hex(4)}")
    path.mkdir()
    path.chmod(0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_as(uid: int, gid: int, action: Callable[[], str]) -> str:
    """Run ``action`` in a forked child that dropped root to ``uid``/``gid`` (no supplementary
    groups); what it returned, or ``"error: <reason> <exception>"``."""
    assert threading.active_count() == 1, "forking with threads running is unsafe"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            out = action()
        except BaseException as exc:  # report everything; the child must not unwind pytest
            out = f"error: {getattr(exc, 'reason', '')} {exc!r}"
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        out = pipe.read().decode()
    os.waitpid(pid, 0)
    return out
