"""Running the real ``credguard daemon`` process in tests, and waiting on what it does."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def wait_for(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {check.__name__}")
        time.sleep(every)


class DaemonProcess:
    """``python -m credguard daemon`` with the test's environment; stderr kept for asserts."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> DaemonProcess:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "credguard", "daemon"],
            env=self.env,
            stdout=self._log,
            stderr=self._log,
        )
        if wait:
            wait_for(self.ready, timeout=30)
        return self

    def status(self) -> dict[str, Any] | None:
        run = subprocess.run(
            [sys.executable, "-m", "credguard", "status", "--json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if run.returncode != 0:
            return None
        doc: dict[str, Any] = json.loads(run.stdout)
        return doc

    def ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"daemon exited with {self.proc.returncode}:\n{self.stderr()}")
        status = self.status()
        return bool(status and status.get("last_scan"))

    def stderr(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()


def audit_events(state_home: Path) -> list[dict[str, Any]]:
    path = state_home / "credguard" / "audit" / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def running_daemon(env: dict[str, str], tmp_path: Path) -> Iterator[DaemonProcess]:
    daemon = DaemonProcess(env, tmp_path / "daemon.log").start()
    try:
        yield daemon
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.stop()
