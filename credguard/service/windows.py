"""The Windows logon task ``credguard``, registered with ``schtasks /Create /XML``.

The task runs with the user's interactive token (the Credential Manager needs the logon
session); its XML is kept under the user data dir, UTF-16 as Task Scheduler writes it.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

from credguard import __version__, paths
from credguard.service import base
from credguard.service.base import ServiceBackend, ServiceStatus, run_tool
from credguard.service.templates import TASK_XML

TASK = "credguard"
_STATE = [
    "powershell.exe",
    "-NoProfile",
    "-NonInteractive",
    "-Command",
    f"(Get-ScheduledTask -TaskName '{TASK}' -TaskPath '\\').State",
]


def user_id() -> str:
    """``DOMAIN\\user`` for the logon trigger and principal (just ``user`` if no domain)."""
    user = os.environ.get("USERNAME") or getpass.getuser()
    domain = os.environ.get("USERDOMAIN")
    return f"{domain}\\{user}" if domain else user


class WindowsBackend(ServiceBackend):
    """A hidden task that starts at logon and is restarted after a failure."""

    name = "task-scheduler"

    def usable(self) -> tuple[bool, str]:
        if shutil.which("schtasks") is None:
            return False, "schtasks not found: this is not Windows"
        return True, "reachable"

    def render(self, exe: list[str]) -> str:
        base.check_arguments(exe)
        arguments = subprocess.list2cmdline([*exe[1:], "daemon"])  # the MS C runtime's rules
        return base.fill(
            TASK_XML,
            {
                "version": __version__,
                "user_id": escape(user_id()),
                "command": escape(exe[0]),
                "arguments": escape(arguments),
            },
        )

    def definition_path(self) -> Path:
        return paths.user_data_dir() / "credguard-task.xml"

    def install(self, start: bool) -> str:
        self.require_usable()  # registering needs schtasks, with or without --no-start
        path = self.definition_path()
        base.write_atomic(path, self.render(base.daemon_command()).encode("utf-16"))
        run_tool(["schtasks", "/Create", "/TN", TASK, "/XML", str(path), "/F"])
        if not start:
            return (
                f"registered the task {TASK!r} ({path}); it starts at your next logon, or now "
                "with: credguard start"
            )
        run_tool(["schtasks", "/End", "/TN", TASK], check=False)  # restart: run the new version
        run_tool(["schtasks", "/Run", "/TN", TASK])
        return f"registered and started the task {TASK!r} ({path})"

    def uninstall(self) -> str:
        path = self.definition_path()
        registered = self._registered()
        if registered:
            run_tool(["schtasks", "/End", "/TN", TASK], check=False)
            run_tool(["schtasks", "/Delete", "/TN", TASK, "/F"])
        path.unlink(missing_ok=True)
        if not registered:
            return f"not installed (no task {TASK!r}); nothing to do"
        return f"stopped and deleted the task {TASK!r}"

    def status(self) -> ServiceStatus:
        reachable, why = self.usable()
        installed = reachable and self._registered()
        state = self._state() if installed else ""
        return ServiceStatus(
            backend=self.name,
            definition=str(self.definition_path()),
            installed=installed,
            enabled=installed and state != "Disabled",
            running=state == "Running",
            manager=why,
        )

    def start(self) -> None:
        run_tool(["schtasks", "/Run", "/TN", TASK])

    def stop(self) -> None:
        run_tool(["schtasks", "/End", "/TN", TASK], check=False)  # not running is fine

    def restart(self) -> None:
        self.stop()
        self.start()

    def unit_name(self) -> str:
        return f"scheduled task {TASK!r}"

    def _registered(self) -> bool:
        if shutil.which("schtasks") is None:
            return False
        return run_tool(["schtasks", "/Query", "/TN", TASK], check=False).returncode == 0

    @staticmethod
    def _state() -> str:
        """The task's state name (Ready, Running, Disabled…), which, unlike schtasks' own
        output, is not translated; empty when PowerShell cannot say."""
        try:
            proc = run_tool(_STATE, check=False)
        except base.ServiceError:
            return ""
        return proc.stdout.strip() if proc.returncode == 0 else ""
