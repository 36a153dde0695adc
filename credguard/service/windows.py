"""The Windows logon task ``credguard``, registered with ``schtasks /Create /XML``.

The task runs with the user's interactive token (the Credential Manager needs the logon
session); its XML is kept under the user data dir, UTF-16 as Task Scheduler writes it. Its
logon trigger repeats every minute and a running daemon is left alone (``IgnoreNew``), so a
daemon that crashed is restarted within a minute; hence :meth:`WindowsBackend.stop` disables the
task, and :meth:`WindowsBackend.start` enables it again.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from pathlib import Path, PureWindowsPath
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
# console program -> its GUI-subsystem twin in the same folder (no console window at logon)
_WINDOWLESS = {"credguard.exe": "credguardw.exe", "python.exe": "pythonw.exe"}


def user_id() -> str:
    """``DOMAIN\\user`` for the logon trigger and principal (just ``user`` if no domain)."""
    user = os.environ.get("USERNAME") or getpass.getuser()
    domain = os.environ.get("USERDOMAIN")
    return f"{domain}\\{user}" if domain else user


def windowless(exe: list[str]) -> list[str]:
    """``exe`` through its GUI-subsystem twin, so that no console window opens at logon (closing
    it would end the daemon): ``credguardw.exe`` (the gui-scripts entry point pip installs beside
    ``credguard.exe``) or ``pythonw.exe`` beside ``python.exe``; any other command unchanged."""
    name = PureWindowsPath(exe[0]).name
    twin = _WINDOWLESS.get(name.lower())
    return [exe[0][: -len(name)] + twin, *exe[1:]] if twin else list(exe)


class WindowsBackend(ServiceBackend):
    """A hidden, windowless task that starts at logon and is started again within a minute
    whenever it is not running (a crash included) until ``credguard stop`` disables it."""

    name = "task-scheduler"

    def usable(self) -> tuple[bool, str]:
        if shutil.which("schtasks") is None:
            return False, "schtasks not found: this is not Windows"
        return True, "reachable"

    def render(self, exe: list[str]) -> str:
        base.check_arguments(exe)
        exe = windowless(exe)
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
        exe = base.daemon_command()
        launcher = Path(windowless(exe)[0])
        if not launcher.is_file():  # the task would fail at every logon, silently
            raise base.ServiceError(
                f"{launcher} is missing, so the task could not start the daemon; install "
                "credguard again (pip creates it beside credguard.exe). Nothing was changed."
            )
        path = self.definition_path()
        # Python's utf-16 codec writes a BOM, as the XML declaration's encoding="UTF-16" needs
        base.write_atomic(path, self.render(exe).encode("utf-16"))
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
            self.stop()  # disabled first: the repeating trigger must not start it once more
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
        """Enable the task (``stop`` disabled it) and run it now."""
        run_tool(["schtasks", "/Change", "/TN", TASK, "/ENABLE"])
        run_tool(["schtasks", "/Run", "/TN", TASK])

    def stop(self) -> None:
        """Disable the task, then end the daemon: enabled, its every-minute trigger would start
        it again. Unlike systemd and launchd it then stays stopped at the next logon too, until
        ``credguard start`` (or ``service install``) enables it."""
        run_tool(["schtasks", "/Change", "/TN", TASK, "/DISABLE"])
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
