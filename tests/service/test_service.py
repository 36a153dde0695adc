"""The per-user service: rendered definitions checked by the real tools (``systemd-analyze``,
``plistlib``, defusedxml), and ``credguard service`` against a real systemd unit directory.

No systemd user manager runs here (nor in CI), so install/uninstall are exercised the way a
machine without one sees them: ``--no-start`` works on the unit files (``systemctl`` client
side), and starting is refused before anything is written. ``launchctl`` and ``schtasks`` do
not exist here: their backends are checked for rendering and for refusing cleanly.
"""

from __future__ import annotations

import configparser
import json
import os
import plistlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from defusedxml import ElementTree
from helpers.home import REPO, Home, Run, systemd_verify

from credguard import service
from credguard.errors import ExitCode
from credguard.service import base, templates
from credguard.service.launchd import LaunchdBackend
from credguard.service.systemd import SystemdBackend
from credguard.service.windows import WindowsBackend

pytestmark = pytest.mark.timeout(60)
Cli = Callable[..., Run]
TASK_NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}


def unit_path(home: Home) -> Path:
    return home.root / ".config" / "systemd" / "user" / "credguard.service"


def wants_link(home: Home) -> Path:
    return unit_path(home).parent / "default.target.wants" / "credguard.service"


def snapshot(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    yield lambda name: monkeypatch.setenv("CREDGUARD_PLATFORM", name)


# -- templates and the command ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(templates.TEMPLATES))
def test_embedded_templates_match_top_level_service_dir(name: str) -> None:
    assert (REPO / "service" / name).read_text() == templates.TEMPLATES[name], (
        f"service/{name} and credguard/service/templates.py differ: edit both"
    )


def test_daemon_command_is_the_absolute_console_script() -> None:
    exe = base.daemon_command()
    assert exe == [str(Path(sys.executable).absolute().parent / "credguard")]
    assert os.access(exe[0], os.X_OK)


def test_daemon_command_falls_back_to_python_m(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python3"))
    monkeypatch.setattr("sysconfig.get_path", lambda _: str(tmp_path / "scripts"))
    assert base.daemon_command() == [str(tmp_path / "bin" / "python3"), "-m", "credguard"]


def test_a_word_with_a_newline_is_refused() -> None:
    with pytest.raises(service.ServiceError):
        SystemdBackend().render(["/opt/cred\nguard"])


@pytest.mark.parametrize(
    ("name", "cls"),
    [("linux", SystemdBackend), ("macos", LaunchdBackend), ("windows", WindowsBackend)],
)
def test_backend_follows_the_platform(
    platform: Callable[[str], None], name: str, cls: type[service.ServiceBackend]
) -> None:
    platform(name)
    assert type(service.backend()) is cls


def test_other_platforms_have_no_backend(platform: Callable[[str], None], cli: Cli) -> None:
    platform("other")
    with pytest.raises(service.ServiceUnavailable):
        service.backend()
    run = cli("service", "install", "--no-start")
    assert run.code == ExitCode.TARGET
    assert "no supported service manager" in run.err


# -- systemd ----------------------------------------------------------------------------------


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = tmp_path / "credguard.service"
    unit.write_text(SystemdBackend().render(base.daemon_command()))
    proc = systemd_verify(unit)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_systemd_quoting_survives_odd_paths(tmp_path: Path) -> None:
    odd = tmp_path / "my tools 100% $HOME ;x &<y>"
    odd.mkdir()
    (odd / "credguard").symlink_to(base.daemon_command()[0])
    unit = tmp_path / "credguard.service"
    unit.write_text(SystemdBackend().render([str(odd / "credguard")]))
    proc = systemd_verify(unit)
    assert (proc.returncode, proc.stderr) == (0, "")
    odd_missing = SystemdBackend().render([str(tmp_path / "no such dir" / "credguard")])
    unit.write_text(odd_missing)  # the check is real: a wrong path is reported
    assert "no such dir" in systemd_verify(unit).stderr


@pytest.mark.parametrize("char", ['"', "'", "\\"])
def test_systemd_refuses_a_program_path_it_cannot_run(char: str) -> None:
    with pytest.raises(service.ServiceError, match="quotes or backslashes"):
        SystemdBackend().render([f"/opt/a{char}b/credguard"])


def test_systemd_unit_settings() -> None:
    exe = base.daemon_command()
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(SystemdBackend().render(exe))
    svc = parser["Service"]
    assert svc["Type"] == "notify"
    assert svc["ExecStart"] == f"{exe[0]} daemon"
    assert svc["Restart"] == "on-failure"
    assert str(ExitCode.CONFIG) in svc["RestartPreventExitStatus"].split()
    assert svc["NoNewPrivileges"] == "yes"
    assert svc["UMask"] == "0077"
    assert "PrivateTmp" not in svc and "ProtectHome" not in svc
    assert parser["Unit"]["StartLimitBurst"] == "5"
    assert parser["Install"]["WantedBy"] == "default.target"


def test_install_no_start_writes_and_enables_the_unit(home: Home, cli: Cli) -> None:
    run = cli("service", "install", "--no-start")
    assert run.code == 0, run.err
    assert "credguard start" in run.out and "systemctl --user" not in run.out  # unreachable here
    assert unit_path(home).read_text() == SystemdBackend().render(base.daemon_command())
    assert wants_link(home).is_symlink() and wants_link(home).resolve() == unit_path(home)
    proc = systemd_verify(unit_path(home))
    assert (proc.returncode, proc.stderr) == (0, "")
    status = cli("service", "status", "--json")
    assert status.code == ExitCode.NOT_FOUND  # not running
    state = json.loads(status.out)
    assert (state["installed"], state["enabled"], state["running"]) == (True, True, False)
    assert state["backend"] == "systemd" and state["responding"] is False
    assert state["definition"] == str(unit_path(home))


def test_install_is_idempotent(home: Home, cli: Cli) -> None:
    assert cli("service", "install", "--no-start").code == 0
    first = unit_path(home).read_bytes()
    before = snapshot(home.root)
    assert cli("service", "install", "--no-start").code == 0
    assert unit_path(home).read_bytes() == first
    assert snapshot(home.root) == before  # no temp files, no second link


def test_uninstall_removes_unit_and_link_and_is_idempotent(home: Home, cli: Cli) -> None:
    assert cli("service", "install", "--no-start").code == 0
    run = cli("service", "uninstall")
    assert run.code == 0, run.err
    assert not unit_path(home).exists() and not wants_link(home).is_symlink()
    again = cli("service", "uninstall")
    assert again.code == 0 and "not installed" in again.out
    state = json.loads(cli("service", "status", "--json").out)
    assert (state["installed"], state["enabled"], state["running"]) == (False, False, False)


def test_install_without_a_user_manager_fails_cleanly(home: Home, cli: Cli) -> None:
    before = snapshot(home.root)
    run = cli("service", "install")
    assert run.code == ExitCode.TARGET
    assert "no systemd user manager is reachable" in run.err
    assert "credguard service install --no-start" in run.err
    assert snapshot(home.root) == before


def test_install_without_systemctl_makes_the_enable_link(
    home: Home, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    run = cli("service", "install", "--no-start")
    assert run.code == 0, run.err
    assert "systemctl not found" in run.out
    assert wants_link(home).resolve() == unit_path(home)
    assert cli("service", "uninstall").code == 0
    assert not unit_path(home).exists() and not wants_link(home).is_symlink()


def test_status_in_words(cli: Cli) -> None:
    run = cli("service", "status")
    assert run.code == ExitCode.NOT_FOUND
    assert run.out.startswith(
        "credguard service (systemd): not installed, not enabled, not running"
    )


# -- launchd ----------------------------------------------------------------------------------


def test_plist_round_trips_with_the_expected_keys(
    home: Home, cli: Cli, platform: Callable[[str], None]
) -> None:
    platform("macos")
    run = cli("service", "install", "--print")
    assert run.code == 0, run.err
    plist = plistlib.loads(run.out.encode())
    assert plist["Label"] == "com.credguard.daemon"
    assert plist["ProgramArguments"] == [*base.daemon_command(), "daemon"]
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["ProcessType"] == "Background"
    log = str(home.root / "Library" / "Logs" / "credguard" / "daemon.log")
    assert plist["StandardOutPath"] == plist["StandardErrorPath"] == log
    assert plist["ThrottleInterval"] == 30 and plist["Umask"] == 0o077


def test_plist_escapes_xml(platform: Callable[[str], None]) -> None:
    exe = ["/Users/a&b/<weird> 'dir'/credguard"]
    plist = plistlib.loads(LaunchdBackend().render(exe).encode())
    assert plist["ProgramArguments"] == [*exe, "daemon"]


def test_launchd_no_start_writes_the_agent(
    home: Home, cli: Cli, platform: Callable[[str], None]
) -> None:
    platform("macos")
    refused = cli("service", "install")  # no launchctl here: refused before any change
    assert refused.code == ExitCode.TARGET and "--no-start" in refused.err
    assert not (home.root / "Library").exists()
    assert cli("service", "install", "--no-start").code == 0
    agent = home.root / "Library" / "LaunchAgents" / "com.credguard.daemon.plist"
    assert plistlib.loads(agent.read_bytes())["Label"] == "com.credguard.daemon"
    assert (home.root / "Library" / "Logs" / "credguard").is_dir()
    state = json.loads(cli("service", "status", "--json").out)
    assert (state["installed"], state["running"]) == (True, False)
    assert cli("service", "uninstall").code == 0 and not agent.exists()


# -- Windows ----------------------------------------------------------------------------------


def parse_task(text: str) -> Element:
    return ElementTree.fromstring(text.encode("utf-16"))  # as written to disk for schtasks


def test_task_xml_names_the_command(
    cli: Cli, platform: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    platform("windows")
    monkeypatch.setenv("USERDOMAIN", "CONTOSO")
    monkeypatch.setenv("USERNAME", "ana")
    run = cli("service", "install", "--print")
    assert run.code == 0, run.err
    task = parse_task(run.out)
    exe = base.daemon_command()  # no credguard.exe here: [python, -m, credguard]
    assert task.findtext("t:Actions/t:Exec/t:Command", namespaces=TASK_NS) == exe[0]
    assert task.findtext("t:Actions/t:Exec/t:Arguments", namespaces=TASK_NS) == (
        subprocess.list2cmdline([*exe[1:], "daemon"])
    )
    trigger = "t:Triggers/t:LogonTrigger/t:UserId"
    assert task.findtext(trigger, namespaces=TASK_NS) == "CONTOSO\\ana"
    # started again every minute while the user is logged on: a crashed daemon comes back
    repetition = task.find("t:Triggers/t:LogonTrigger/t:Repetition", TASK_NS)
    assert repetition is not None
    assert repetition.findtext("t:Interval", namespaces=TASK_NS) == "PT1M"
    assert repetition.find("t:Duration", TASK_NS) is None  # no duration: indefinitely
    settings = task.find("t:Settings", TASK_NS)
    assert settings is not None
    assert settings.findtext("t:RestartOnFailure/t:Interval", namespaces=TASK_NS) == "PT1M"
    assert settings.findtext("t:RestartOnFailure/t:Count", namespaces=TASK_NS) == "3"
    assert settings.findtext("t:MultipleInstancesPolicy", namespaces=TASK_NS) == "IgnoreNew"
    assert settings.findtext("t:ExecutionTimeLimit", namespaces=TASK_NS) == "PT0S"
    assert settings.findtext("t:Hidden", namespaces=TASK_NS) == "true"


def test_task_xml_escapes_xml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USERDOMAIN", "R&D")
    monkeypatch.setenv("USERNAME", "<ana>")
    exe = ["C:\\Program Files\\a&b <c>\\python.exe", "-m", "credguard"]
    task = parse_task(WindowsBackend().render(exe))
    command = "C:\\Program Files\\a&b <c>\\pythonw.exe"  # the windowless twin
    assert task.findtext("t:Actions/t:Exec/t:Command", namespaces=TASK_NS) == command
    assert task.findtext("t:Principals/t:Principal/t:UserId", namespaces=TASK_NS) == ("R&D\\<ana>")


@pytest.mark.parametrize(("exe", "command"), [
    (["C:\\Users\\ana\\venv\\Scripts\\credguard.exe"],
     "C:\\Users\\ana\\venv\\Scripts\\credguardw.exe"),
    (["C:\\Python312\\python.exe", "-m", "credguard"], "C:\\Python312\\pythonw.exe"),
    (["D:\\tools\\other.exe"], "D:\\tools\\other.exe"),
])
def test_task_runs_the_windowless_launcher(exe: list[str], command: str) -> None:
    """No console window at logon (closing it would end the daemon): the GUI-subsystem twin."""
    task = parse_task(WindowsBackend().render(exe))
    assert task.findtext("t:Actions/t:Exec/t:Command", namespaces=TASK_NS) == command
    assert task.findtext("t:Actions/t:Exec/t:Arguments", namespaces=TASK_NS) == (
        subprocess.list2cmdline([*exe[1:], "daemon"])
    )


@pytest.fixture
def schtasks(home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             platform: Callable[[str], None]) -> Path:
    """A stand-in ``schtasks`` on PATH that records its arguments, one call a line, and
    succeeds: Task Scheduler cannot run here, so only the commands the backend gives are
    checked. (``powershell.exe``, for the task's state, is missing: its state is unknown.)"""
    platform("windows")
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    calls = tmp_path / "schtasks.calls"
    script = bin_dir / "schtasks"
    script.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return calls


def calls_of(calls: Path) -> list[str]:
    return calls.read_text().splitlines() if calls.exists() else []


def test_windows_stop_disables_the_task_before_ending_it(schtasks: Path) -> None:
    """Its trigger repeats every minute: an enabled task would start the daemon again."""
    backend = WindowsBackend()
    backend.stop()
    assert calls_of(schtasks) == ["/Change /TN credguard /DISABLE", "/End /TN credguard"]
    backend.start()
    assert calls_of(schtasks)[2:] == ["/Change /TN credguard /ENABLE", "/Run /TN credguard"]


def test_windows_uninstall_disables_ends_and_deletes(schtasks: Path) -> None:
    assert "deleted" in WindowsBackend().uninstall()
    assert calls_of(schtasks) == ["/Query /TN credguard", "/Change /TN credguard /DISABLE",
                                  "/End /TN credguard", "/Delete /TN credguard /F"]


def test_windows_install_writes_utf16_and_registers(schtasks: Path) -> None:
    backend = WindowsBackend()
    assert "registered the task" in backend.install(start=False)
    data = backend.definition_path().read_bytes()
    assert data.startswith(b"\xff\xfe")  # a BOM: the file is what encoding="UTF-16" says
    assert data.decode("utf-16").startswith('<?xml version="1.0" encoding="UTF-16"?>')
    path = backend.definition_path()
    assert calls_of(schtasks) == [f"/Create /TN credguard /XML {path} /F"]


def test_windows_install_refuses_without_the_windowless_launcher(
    schtasks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """credguard.exe without credguardw.exe beside it: the task could never start the daemon."""
    scripts = tmp_path / "Scripts"
    scripts.mkdir()
    (scripts / "credguard.exe").write_bytes(b"")
    monkeypatch.setattr(base, "daemon_command", lambda: [str(scripts / "credguard.exe")])
    backend = WindowsBackend()
    with pytest.raises(base.ServiceError, match=r"credguardw\.exe is missing"):
        backend.install(start=False)
    assert calls_of(schtasks) == [] and not backend.definition_path().exists()
    (scripts / "credguardw.exe").write_bytes(b"")
    backend.install(start=False)
    assert str(scripts / "credguardw.exe") in backend.definition_path().read_bytes().decode(
        "utf-16")


def test_windows_install_needs_schtasks(
    home: Home, cli: Cli, platform: Callable[[str], None]
) -> None:
    platform("windows")
    before = snapshot(home.root)
    run = cli("service", "install", "--no-start")
    assert run.code == ExitCode.TARGET and "schtasks not found" in run.err
    assert snapshot(home.root) == before


# -- --print ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["linux", "macos", "windows"])
def test_print_renders_and_touches_nothing(
    home: Home, cli: Cli, name: str, platform: Callable[[str], None]
) -> None:
    platform(name)
    before = snapshot(home.root)
    run = cli("service", "install", "--print")
    assert run.code == 0, run.err
    assert run.out == service.backend().render(base.daemon_command())
    assert snapshot(home.root) == before
