"""The systemd user unit: ``~/.config/systemd/user/credguard.service`` via ``systemctl --user``.

Without a reachable user manager (no systemd, a container, an SSH session without lingering),
``install --no-start`` still writes and enables the unit: ``systemctl`` then works on the files
directly (``SYSTEMCTL_INSTALL_CLIENT_SIDE=1``), so the daemon starts at the next login.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from credguard import __version__, paths
from credguard.service import base
from credguard.service.base import ServiceBackend, ServiceStatus, run_tool
from credguard.service.templates import SYSTEMD_UNIT

UNIT = "credguard.service"
_CLIENT_SIDE = {"SYSTEMCTL_INSTALL_CLIENT_SIDE": "1"}  # enable/disable on files, no manager
_NEEDS_QUOTES = frozenset(" \t\"';")
_UNRUNNABLE = frozenset("\"'\\")  # systemd: "Executable name contains special characters"


def quote(word: str, program: bool = False) -> str:
    """One ExecStart word, escaped for systemd: ``%`` doubled, backslashes and quotes escaped,
    ``$`` doubled in arguments (systemd expands variables there, not in the program path), and
    the word quoted when it holds spaces, quotes or ``;``."""
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if not program:
        escaped = escaped.replace("$", "$$")
    return f'"{escaped}"' if _NEEDS_QUOTES.intersection(word) else escaped


def exec_line(exe: list[str]) -> str:
    """``exe`` as the start of an ExecStart line; systemd refuses a program path with quotes
    or backslashes whatever the escaping, so such a path is refused here, with the reason."""
    if _UNRUNNABLE.intersection(exe[0]):
        raise base.ServiceError(
            f"systemd cannot run a program whose path contains quotes or backslashes: "
            f"{exe[0]!r}; install credguard under a plainer path"
        )
    return " ".join([quote(exe[0], program=True), *(quote(word) for word in exe[1:])])


def user_unit_dir() -> Path:
    """``$XDG_CONFIG_HOME/systemd/user``: the per-user unit directory systemd reads."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(paths.home() / ".config")
    return Path(config) / "systemd" / "user"


class SystemdBackend(ServiceBackend):
    """A ``Type=notify`` user unit, enabled for ``default.target``."""

    name = "systemd"

    def usable(self) -> tuple[bool, str]:
        if shutil.which("systemctl") is None:
            return False, "systemctl not found: this system does not use systemd"
        try:
            proc = run_tool(["systemctl", "--user", "show-environment"], check=False)
        except base.ServiceError as exc:
            return False, f"no systemd user manager is reachable ({exc.message})"
        if proc.returncode != 0:
            return False, f"no systemd user manager is reachable ({base.last_line(proc)})"
        return True, "reachable"

    def render(self, exe: list[str]) -> str:
        base.check_arguments(exe)
        command = exec_line(exe)
        return base.fill(
            SYSTEMD_UNIT,
            {
                "version": __version__,
                "exec_start": f"{command} daemon",
                "exec_reload": f"{command} reload",
            },
        )

    def definition_path(self) -> Path:
        return user_unit_dir() / UNIT

    def install(self, start: bool) -> str:
        reachable, why = self.usable()
        if start and not reachable:
            raise base.unavailable(why)
        text = self.render(base.daemon_command())
        base.write_atomic(self.definition_path(), text.encode())
        where = f"{self.definition_path()}"
        if not reachable:
            self._enable_offline()
            return (
                f"wrote and enabled {where}; it starts at your next login with a systemd user "
                f"manager (now: {why}). Start it now with: credguard start"
            )
        self._systemctl("daemon-reload")
        self._systemctl("enable", UNIT)
        if not start:
            return f"installed and enabled {where}; start it with: credguard start"
        self._systemctl("restart", UNIT, timeout=base.START_TIMEOUT)
        return f"installed, enabled and (re)started {where}"

    def uninstall(self) -> str:
        path = self.definition_path()
        reachable, _ = self.usable()
        installed = path.exists()
        if installed and reachable:
            self._systemctl("disable", "--now", UNIT, timeout=base.START_TIMEOUT)
        elif installed:
            self._enable_offline("disable")
        if installed:
            path.unlink()
        self._wants_link().unlink(missing_ok=True)  # a link left by a unit deleted by hand
        if reachable:
            run_tool(["systemctl", "--user", "reset-failed", UNIT], check=False)
            self._systemctl("daemon-reload")
        if not installed:
            return f"not installed ({path} does not exist); nothing to do"
        return f"stopped, disabled and removed {path}"

    def status(self) -> ServiceStatus:
        reachable, why = self.usable()
        running = False
        if reachable:
            proc = run_tool(["systemctl", "--user", "is-active", UNIT], check=False)
            running = proc.stdout.strip() in ("active", "reloading")
        return ServiceStatus(
            backend=self.name,
            definition=str(self.definition_path()),
            installed=self.definition_path().is_file(),
            enabled=self._wants_link().is_symlink(),
            running=running,
            manager=why,
        )

    def start(self) -> None:
        self._systemctl("start", UNIT, timeout=base.START_TIMEOUT)  # Type=notify: up and ready

    def stop(self) -> None:
        self._systemctl("stop", UNIT, timeout=base.START_TIMEOUT)

    def restart(self) -> None:
        self._systemctl("restart", UNIT, timeout=base.START_TIMEOUT)

    def unit_name(self) -> str:
        return f"systemd user unit {UNIT}"

    def _wants_link(self) -> Path:
        """The link ``enable`` makes for ``WantedBy=default.target``: enabled means it exists."""
        return user_unit_dir() / "default.target.wants" / UNIT

    def _enable_offline(self, verb: str = "enable") -> None:
        """``enable``/``disable`` on the unit files alone, for when no manager answers."""
        if shutil.which("systemctl") is not None:
            run_tool(["systemctl", "--user", verb, UNIT], env=_CLIENT_SIDE)
            return
        link = self._wants_link()  # no systemctl at all: the link enable would make
        link.unlink(missing_ok=True)
        if verb == "enable":
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(Path("..") / UNIT)

    @staticmethod
    def _systemctl(*args: str, timeout: float = base.TOOL_TIMEOUT) -> None:
        run_tool(["systemctl", "--user", *args], timeout=timeout)
