"""The launchd agent: ``~/Library/LaunchAgents/com.credguard.daemon.plist`` in ``gui/UID``.

It must live in the user's GUI domain: only there can the daemon reach the login keychain.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from xml.sax.saxutils import escape

from credguard import __version__, paths
from credguard.service import base
from credguard.service.base import ServiceBackend, ServiceStatus, run_tool
from credguard.service.templates import LAUNCHD_PLIST

LABEL = "com.credguard.daemon"
_BOOTSTRAP_TRIES = 3  # bootout finishes asynchronously; an immediate bootstrap can fail with EIO


def log_file() -> Path:
    """Where launchd sends the daemon's output."""
    return paths.home() / "Library" / "Logs" / "credguard" / "daemon.log"


class LaunchdBackend(ServiceBackend):
    """A per-user launch agent, kept alive after failures only."""

    name = "launchd"

    @property
    def domain(self) -> str:
        return f"gui/{os.getuid()}"

    @property
    def target(self) -> str:
        return f"{self.domain}/{LABEL}"

    def usable(self) -> tuple[bool, str]:
        if shutil.which("launchctl") is None:
            return False, "launchctl not found: this is not macOS"
        try:
            proc = run_tool(["launchctl", "print", self.domain], check=False)
        except base.ServiceError as exc:
            return False, exc.message
        if proc.returncode != 0:
            return False, (
                f"no GUI login session for this user ({self.domain}: {base.last_line(proc)})"
            )
        return True, "reachable"

    def render(self, exe: list[str]) -> str:
        base.check_arguments(exe)
        arguments = "\n".join(f"\t\t<string>{escape(word)}</string>" for word in [*exe, "daemon"])
        return base.fill(
            LAUNCHD_PLIST,
            {
                "version": __version__,
                "program_arguments": arguments,
                "log_file": escape(str(log_file())),
            },
        )

    def definition_path(self) -> Path:
        return paths.home() / "Library" / "LaunchAgents" / f"{LABEL}.plist"

    def install(self, start: bool) -> str:
        if start:
            self.require_usable()
        log_file().parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.definition_path()
        base.write_atomic(path, self.render(base.daemon_command()).encode())
        if not start:
            return f"wrote {path}; it starts at your next login, or now with: credguard start"
        run_tool(["launchctl", "bootout", self.target], check=False)  # reload a new definition
        run_tool(["launchctl", "enable", self.target])
        self._bootstrap(path)
        return f"installed and (re)started {path} ({self.target})"

    def _bootstrap(self, path: Path) -> None:
        for attempt in range(1, _BOOTSTRAP_TRIES + 1):
            try:
                run_tool(
                    ["launchctl", "bootstrap", self.domain, str(path)], timeout=base.START_TIMEOUT
                )
                return
            except base.ServiceError:
                if attempt == _BOOTSTRAP_TRIES:
                    raise
                time.sleep(1.0)

    def uninstall(self) -> str:
        path = self.definition_path()
        if shutil.which("launchctl") is not None:
            run_tool(["launchctl", "bootout", self.target], check=False)  # not loaded is fine
        if not path.exists():
            return f"not installed ({path} does not exist); nothing to do"
        path.unlink()
        return f"stopped and removed {path}"

    def status(self) -> ServiceStatus:
        reachable, why = self.usable()
        loaded = running = False
        if reachable:
            proc = run_tool(["launchctl", "print", self.target], check=False)
            loaded = proc.returncode == 0
            running = loaded and "state = running" in proc.stdout
        installed = self.definition_path().is_file()
        return ServiceStatus(
            backend=self.name,
            definition=str(self.definition_path()),
            installed=installed,
            enabled=installed and not self._disabled(),
            running=running,
            manager=why,
        )

    def start(self) -> None:
        if self._loaded():
            run_tool(["launchctl", "kickstart", self.target], timeout=base.START_TIMEOUT)
        else:
            self._bootstrap(self.definition_path())

    def stop(self) -> None:
        # bootout, not kill: KeepAlive would start a killed agent again
        if self._loaded():
            run_tool(["launchctl", "bootout", self.target], timeout=base.START_TIMEOUT)

    def restart(self) -> None:
        if self._loaded():
            run_tool(["launchctl", "kickstart", "-k", self.target], timeout=base.START_TIMEOUT)
        else:
            self._bootstrap(self.definition_path())

    def unit_name(self) -> str:
        return f"launchd agent {self.target}"

    def _loaded(self) -> bool:
        return run_tool(["launchctl", "print", self.target], check=False).returncode == 0

    def _disabled(self) -> bool:
        """Whether ``launchctl disable`` (or the user) turned the agent off."""
        if shutil.which("launchctl") is None:
            return False
        proc = run_tool(["launchctl", "print-disabled", self.domain], check=False)
        for line in proc.stdout.splitlines():
            if f'"{LABEL}"' in line:
                return line.rstrip().endswith(("true", "disabled"))
        return False
