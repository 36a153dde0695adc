"""What every service backend shares: the interface, the daemon command, template filling,
atomic writes and running the service manager's tools with timeouts.

A backend never lets a tool's failure escape as anything but a :class:`ServiceError`, whose
message names the command and its complaint.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict

from credguard import paths
from credguard.errors import TargetError
from credguard.fs.atomic import atomic_write

TOOL_TIMEOUT = 30.0  # seconds for a query or a quick change
START_TIMEOUT = 90.0  # seconds for a (re)start: systemd waits for READY=1 (TimeoutStartSec=60)
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class ServiceError(TargetError):
    """A service manager's tool failed, timed out or is missing."""


class ServiceUnavailable(TargetError):
    """No service manager can be reached for this user (so nothing was changed): like a tool
    that fails, exit code 8."""


class ServiceStatus(TypedDict):
    """What ``credguard service status`` reports."""

    backend: str
    definition: str
    installed: bool
    enabled: bool
    running: bool
    manager: str  # "reachable" or why it is not


class ServiceBackend(ABC):
    """One OS service manager: renders, installs, removes and inspects the credguard service."""

    name: str

    @abstractmethod
    def usable(self) -> tuple[bool, str]:
        """Whether the service manager can be reached now, and a reason when it cannot."""

    @abstractmethod
    def render(self, exe: list[str]) -> str:
        """The service definition that runs ``exe + ["daemon"]``, as text."""

    @abstractmethod
    def definition_path(self) -> Path:
        """Where the rendered definition is written for this user."""

    @abstractmethod
    def install(self, start: bool) -> str:
        """Write, register and enable the service (and (re)start it when ``start``); running it
        twice gives the same result. Returns a line for the user. Without a reachable manager,
        ``start`` raises :class:`ServiceUnavailable` before anything is changed."""

    @abstractmethod
    def uninstall(self) -> str:
        """Stop, unregister and delete the service; fine when it is not installed."""

    @abstractmethod
    def status(self) -> ServiceStatus:
        """Installed, enabled and running, as the service manager sees it."""

    @abstractmethod
    def start(self) -> None:
        """Start the installed service now (fine when it runs already)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the service now; it stays installed and starts again at the next login."""

    @abstractmethod
    def restart(self) -> None:
        """Stop the service if it runs, then start it."""

    @abstractmethod
    def unit_name(self) -> str:
        """How the user names this service to the manager (``credguard.service``, a label)."""

    def require_usable(self) -> None:
        """Raise :func:`unavailable` unless the service manager can be reached."""
        ok, why = self.usable()
        if not ok:
            raise unavailable(why)


def unavailable(why: str) -> ServiceUnavailable:
    """The error for a start that cannot happen, pointing at ``--no-start``."""
    return ServiceUnavailable(
        f"{why}. Nothing was changed. To install the service without starting it "
        "(it starts at your next login), run: credguard service install --no-start"
    )


def daemon_command() -> list[str]:
    """The absolute command that runs this credguard: its console script next to the running
    interpreter (or in the scheme's scripts directory), else ``python -m credguard``."""
    exe = Path(sys.executable).absolute()  # not resolve(): a venv's python is a symlink
    name = "credguard.exe" if paths.platform_name() == "windows" else "credguard"
    for folder in (exe.parent, Path(sysconfig.get_path("scripts"))):
        script = folder.absolute() / name
        if script.is_file() and os.access(script, os.X_OK):
            return [str(script)]
    return [str(exe), "-m", "credguard"]


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace each ``{name}`` in ``template``; an unknown name is a bug and raises KeyError."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def check_arguments(exe: list[str]) -> None:
    """Refuse command words no definition format can carry (control characters, NUL)."""
    for word in exe:
        if not word or any(ord(c) < 32 for c in word):
            raise ServiceError(f"cannot put {word!r} in a service definition")


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace a service definition durably (:func:`~credguard.fs.atomic.atomic_write`), world
    readable as service definitions conventionally are (less if the umask says so)."""
    atomic_write(path, data, mode)


def run_tool(
    argv: list[str],
    timeout: float = TOOL_TIMEOUT,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a service-manager tool; a missing tool, a timeout or (with ``check``) a non-zero
    exit becomes a :class:`ServiceError` naming the command and its last line of output."""
    shown = " ".join(argv)
    full_env = {**os.environ, **env} if env else None
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env=full_env,
        )
    except FileNotFoundError:
        raise ServiceError(f"'{argv[0]}' not found (needed for: {shown})") from None
    except subprocess.TimeoutExpired:
        raise ServiceError(f"'{shown}' did not finish within {timeout:g} s") from None
    if check and proc.returncode != 0:
        raise ServiceError(f"'{shown}' failed (exit {proc.returncode}): {last_line(proc)}")
    return proc


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The tool's last non-empty line of stderr (or stdout): its complaint, for a message."""
    for stream in (proc.stderr, proc.stdout):
        lines = [line.strip() for line in (stream or "").splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return "no output"
