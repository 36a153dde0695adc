"""A real Xvfb for a test, and the process-group stop the tests' desktop programs share."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM then SIGKILL to ``proc``'s process group (started in its own session)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
            return


def x_lock_pid(number: int) -> int | None:
    """The pid in the X server's lock file for display ``number`` (the server writes it)."""
    try:
        return int(Path(f"/tmp/.X{number}-lock").read_text().strip())
    except (OSError, ValueError):
        return None


def x_accepts(number: int) -> bool:
    """Whether display ``number``'s Unix socket accepts a connection (closed at once; Xlib
    leaks its sockets when a connection fails, hence a plain one)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(f"/tmp/.X11-unix/X{number}")
        except OSError:
            return False
    return True


def start_xvfb(log: Path, numbers: Iterable[int], *, program: str = "Xvfb",
               env: Mapping[str, str] | None = None, extra: tuple[str, ...] = ()
               ) -> tuple[subprocess.Popen[bytes], str]:
    """A running Xvfb and its display, once a client can connect: the first of ``numbers``
    whose lock file Xvfb takes with its own pid (it exits at once if another server holds it),
    not ``-displayfd``: two of those starting at once (parallel runs) race."""
    for number in numbers:
        if Path(f"/tmp/.X{number}-lock").exists():
            continue
        with log.open("ab") as err:
            xvfb = subprocess.Popen(
                [program, f":{number}", "-nolisten", "tcp", "-screen", "0", "640x480x24",
                 *extra],
                stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 10
        while xvfb.poll() is None and time.monotonic() < deadline:
            if x_accepts(number) and x_lock_pid(number) == xvfb.pid:
                return xvfb, f":{number}"  # ours: not another run's server on the same number
            time.sleep(0.02)
        stop_group(xvfb)
    pytest.fail(f"Xvfb did not start: {log.read_text(errors='replace')}")
