"""The daemon without a service manager: a detached ``credguard daemon`` process logging to
``daemon.log`` in the state dir, its pid in ``daemon.pid`` beside it (what ``install.sh``
does where no systemd user manager, launchd GUI session or Task Scheduler can be reached).

A daemon is only ever signalled after it proved to be this user's credguard daemon: it
answered ``status`` on the control socket (which lives in the user's own 0700 directory and
whose server checks the peer's uid), and the pid it gave is a live process of this uid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from credguard import control, paths
from credguard.errors import CredguardError, StateError, TargetError
from credguard.fs.atomic import atomic_write

READY_TIMEOUT = 30.0  # seconds for a new daemon to answer (keyring probes can be slow)
STOP_TIMEOUT = 20.0  # seconds for a daemon to finish after SIGTERM (its worker ends a step)
_LOG_TAIL = 5  # lines of daemon.log shown when a start fails


@dataclass(frozen=True)
class Running:
    """A daemon that answered ``status``: its pid, and whether it protects."""

    pid: int
    mode: str


def log_file() -> Path:
    return paths.user_state_dir() / "daemon.log"


def pid_file() -> Path:
    return paths.user_state_dir() / "daemon.pid"


def can_ask() -> bool:
    """Whether this Python can reach the control socket at all (no AF_UNIX: nothing to ask)."""
    return hasattr(socket, "AF_UNIX")


def running(timeout: float = 5.0) -> Running | None:
    """The daemon that answers on the control socket, however it was started, or None."""
    if not can_ask():
        return None
    try:
        status = control.request("status", timeout=timeout)
    except control.DaemonNotRunning:
        return None
    pid = status.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        raise StateError("the daemon answered status without a pid; stop it yourself")
    return Running(pid, str(status.get("mode", "")))


def start(exe: list[str]) -> int:
    """Start ``exe daemon`` detached and wait until it answers; its pid. A daemon that exits
    instead raises TargetError (it failed to start) with the end of its log; one that does not
    answer in time, StateError (busy)."""
    log = log_file()
    log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    windows = paths.platform_name() == "windows"
    try:
        proc = subprocess.Popen(
            [*exe, "daemon"],
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            close_fds=True,
            start_new_session=not windows,  # no SIGHUP when the terminal closes
            creationflags=_windows_flags() if windows else 0,  # outlive the console
        )
    finally:
        os.close(fd)
    atomic_write(pid_file(), f"{proc.pid}\n".encode(), 0o600)
    _wait_ready(proc)
    return proc.pid


def _windows_flags() -> int:
    flags = 0
    for name in ("DETACHED_PROCESS", "CREATE_NEW_PROCESS_GROUP", "CREATE_NO_WINDOW"):
        flags |= int(getattr(subprocess, name, 0))
    return flags


def _wait_ready(proc: subprocess.Popen[bytes]) -> None:
    if not can_ask():
        return
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pid_file().unlink(missing_ok=True)
            raise TargetError(
                f"the daemon exited at once (exit {proc.returncode}); the end of "
                f"{log_file()}:\n{_tail(log_file())}"
            )
        with contextlib.suppress(CredguardError):
            found = running(timeout=2.0)
            if found is not None and found.pid == proc.pid:
                return
        time.sleep(0.1)
    raise StateError(
        f"the daemon (pid {proc.pid}) did not answer within {READY_TIMEOUT:g} s; "
        f"see {log_file()} and 'credguard status'"
    )


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(f"  {line}" for line in lines[-_LOG_TAIL:]) or "(empty)"


def stop(found: Running, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the daemon ``found`` after checking its pid is a live process of this user's,
    and wait until it has gone; StateError if it is not ours or does not stop in time."""
    proc = _ours(found.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except psutil.TimeoutExpired:
        raise StateError(
            f"the daemon (pid {found.pid}) did not stop within {timeout:g} s after SIGTERM"
        ) from None
    except psutil.NoSuchProcess:
        pass
    forget(found.pid)


def forget(pid: int) -> None:
    """Remove ``daemon.pid`` when it names ``pid`` (or nothing readable)."""
    with contextlib.suppress(OSError, ValueError):
        if int(pid_file().read_text().strip() or "0") in (pid, 0):
            pid_file().unlink()


def _ours(pid: int) -> psutil.Process:
    try:
        proc = psutil.Process(pid)
        if hasattr(os, "getuid") and proc.uids().real != os.getuid():
            raise StateError(f"pid {pid} belongs to another user; not signalling it")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        raise StateError(f"the daemon's pid {pid} is not a process of yours") from None
    return proc
