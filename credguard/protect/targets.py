"""Import targets: configured commands that receive a credential the way ``exec`` hands it over.

The vault is always the first target (the protect transaction writes it); these run after it,
each with ``{file}`` in its command replaced by a RAM-only copy and the ``CREDGUARD_*``
variables set. Exit 0 means imported; anything else keeps the source and is reported. A
target's own output goes to credguard's stderr so it can never corrupt ``--json`` output.

Each target runs in a session and process group of its own; when it exits, times out or is
interrupted by :func:`stop_all` (the daemon stopping), its whole group is ended (SIGTERM, then
SIGKILL after :data:`GRACE`) before its RAM copy is removed, so nothing of it outlives the run.
A target that starts a new session of its own escapes this, as it escapes any process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from credguard.config import Target
from credguard.errors import CredguardError
from credguard.handoff import environment, ramdir
from credguard.vault.format import Record

_STDERR_FD = 2  # the process's real stderr, even when sys.stderr is replaced
TIMEOUT = 300.0  # seconds; a hung uploader must not hold a transaction (and its file) forever
GRACE = 1.0  # seconds between SIGTERM and SIGKILL to a target's group (within the daemon's 5 s)
_POLL = 0.05  # seconds between checks of a running target
INTERRUPTED = "interrupted: credguard is stopping"
_STOP = threading.Event()


def stop_all() -> None:
    """Interrupt the targets running in this process and refuse new ones: for a process that
    is shutting down (the daemon's stop). Safe from any thread; returns at once."""
    _STOP.set()


@dataclass(frozen=True)
class TargetResult:
    name: str
    ok: bool
    detail: str  # "exit 0", "exit 3", "timed out after 300 s", "command not found"

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def applicable(targets: tuple[Target, ...], kind: str) -> list[Target]:
    return [t for t in targets if kind in t.kinds]


def _run_one(target: Target, record: Record, item_id: str) -> TargetResult:
    if _STOP.is_set():
        return TargetResult(target.name, False, INTERRUPTED)
    try:
        with ramdir.private_ram_dir() as ram:
            given = environment.prepare(record, item_id, ram.path, None)
            file = given.env.get("CREDGUARD_FILE", "")
            argv = [part.replace("{file}", file) for part in target.command]
            env = environment.child_environment(os.environ, given)
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=_STDERR_FD,
                                    start_new_session=True, pass_fds=(ram.lock_fd,))
            try:
                why = _wait(proc)
            finally:
                _end_group(proc)
    except FileNotFoundError:
        return TargetResult(target.name, False, f"command not found: {target.command[0]}")
    except OSError as exc:
        return TargetResult(target.name, False, f"cannot start: {exc.strerror}")
    except CredguardError as exc:
        return TargetResult(target.name, False, exc.message)
    if why is not None:
        return TargetResult(target.name, False, why)
    return TargetResult(target.name, proc.returncode == 0, f"exit {proc.returncode}")


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the target's leader has exited, without reaping it: while it is unreaped its pid
    cannot be reused, so signalling its group can never reach a stranger."""
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _wait(proc: subprocess.Popen[bytes]) -> str | None:
    """Wait for the target to exit by itself (None), or say why it must be stopped."""
    deadline = time.monotonic() + TIMEOUT
    while not _exited(proc):
        if _STOP.wait(_POLL):
            return INTERRUPTED
        if time.monotonic() >= deadline:
            return f"timed out after {TIMEOUT:.0f} s"
    return None


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """End whatever is left of the target's process group (SIGTERM, SIGKILL after GRACE),
    then reap the leader."""
    if _signal_group(proc.pid, signal.SIGTERM):
        deadline = time.monotonic() + GRACE
        while not _exited(proc) and time.monotonic() < deadline:
            time.sleep(_POLL)
        _signal_group(proc.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    proc.wait()


def _signal_group(pgid: int, sig: int) -> bool:
    """Signal the group; False when nothing in it could be signalled (gone, or not ours)."""
    killpg = getattr(os, "killpg", None)  # POSIX: targets need a RAM dir, which Windows lacks
    if killpg is None:
        return False
    try:
        killpg(pgid, sig)
    except OSError:
        return False
    return True


def run_targets(targets: tuple[Target, ...], record: Record, item_id: str) -> list[TargetResult]:
    """Run every target that applies to the record's kind, in order; all are attempted."""
    return [_run_one(t, record, item_id) for t in applicable(targets, record.kind)]
