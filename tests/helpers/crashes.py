"""Crashing credguard for real and reading what the crash left: a SIGKILL injected by strace at
the Nth call of a system call, the journal entries left behind, the audit records recovery
wrote, the vault's decrypted contents, and a fresh ext4 file system (which reuses a freed inode
number at once, as the issue's "new download on the same inode" needs)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from credguard import config, paths
from credguard.audit.log import AuditLog
from credguard.protect import journal
from credguard.vault.access import open_vault
from credguard.vault.format import Record

# The head of a script run as a real process that dies (os._exit(99): no cleanup, like a power
# cut) right after the Nth call of the step named ``point``: wrap each step with
# ``dying(name, real)``. The script's own argv parsing sets ``point`` and ``nth`` first.
DYING = r"""
import os, sys
calls = {}

def dying(name, real):
    def call(*args, **kwargs):
        result = real(*args, **kwargs)
        calls[name] = calls.get(name, 0) + 1
        if name == point and calls[name] == nth:
            sys.stdout.flush()
            os._exit(99)
        return result
    return call
"""


def stopped_protect(path: Path, step: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """A real ``credguard protect --json PATH`` that stops itself (SIGSTOP) at ``step``
    (``CREDGUARD_TEST_STOP_AT``), returned once the kernel shows it stopped. The caller
    SIGCONTs (or kills) it and reaps it."""
    from helpers.daemon import wait_for

    proc = subprocess.Popen([sys.executable, "-m", "credguard", "protect", "--json", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**env, "CREDGUARD_TEST_STOP_AT": step})
    stat = Path(f"/proc/{proc.pid}/stat")
    wait_for(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "T")
    return proc


def run_killed(args: list[str], env: dict[str, str], syscall: str = "pwrite64",
               nth: int = 1) -> subprocess.CompletedProcess[str]:
    """``python -m credguard ARGS`` under strace, SIGKILLed on entering its ``nth`` ``syscall``
    (the call is not made). The test checks that it really died there."""
    strace = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}",
              "-e", f"inject={syscall}:signal=SIGKILL:when={nth}"]
    return subprocess.run([*strace, sys.executable, "-m", "credguard", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def entries() -> list[journal.Entry]:
    """The journal entries on disk (what recovery would act on)."""
    return [journal.read(p) for p in journal.pending()]


def recovered(path: Path) -> list[str]:
    """The details of the audit records "recovered" about ``path``, oldest first."""
    return [str(r.get("detail")) for r in AuditLog().records()
            if r.get("event") == "recovered" and r.get("path") == str(path)]


def vault_contents() -> dict[str, bytes]:
    """Every vault item, decrypted, by the SHA-256 of its bytes (computed here, not read from
    the record)."""
    vault = open_vault(config.load())
    return {hashlib.sha256(r.data).hexdigest(): r.data for _, r in vault.records()
            if isinstance(r, Record)}


def journal_dir_names() -> list[str]:
    """What the journal directory holds (entries, locks, set-aside entries)."""
    where = paths.user_state_dir() / "journal"
    return sorted(os.listdir(where)) if where.exists() else []


@contextmanager
def ext4(where: Path, size: str = "16M") -> Iterator[Path]:
    """A new, empty ext4 file system mounted on ``where`` (an image beside it, loop-mounted);
    unmounted afterwards. Needs root, as CI runs."""
    image = where.with_suffix(".img")
    subprocess.run(["truncate", "-s", size, str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    where.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(where)], check=True)
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], check=False).returncode:
            subprocess.run(["umount", "-l", str(where)], check=False)
        image.unlink()
