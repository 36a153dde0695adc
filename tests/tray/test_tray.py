"""``credguard tray``: its state model, its menu logic, and the real icon on a real X display.

Three layers, fastest first:

* the model (no display, no pystray backend): ``view_for`` for each status, ``AlertCounter``
  asking the control socket about a real audit log (the real daemon too), the drawn icons,
  ``open_path`` with stand-in viewers on PATH;
* :class:`Tray` in-process with a recording pystray Icon (pystray's own Menu/MenuItem, a
  backend that draws nothing) against a real control socket served by ``ControlServer`` with a
  recording handler. The daemon is stood in here to hold a scan open on purpose, so the tests
  can show the GUI thread never waits for it, and to switch modes instantly;
* the real thing: ``python -m credguard tray`` with ``PYSTRAY_BACKEND=gtk`` on a real Xvfb with
  a real tray host (trayer) and a real notification server (dunst or notification-daemon) on a
  private D-Bus session bus, driven with xdotool and checked with ``import`` screenshots,
  against the real daemon (``secret_service`` fixture). These skip only when one of those
  programs is missing, and the reason names it (``./tests/run`` installs them as root).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, running_daemon, wait_for
from helpers.home import Home, run_subprocess
from helpers.secret_service import SecretService, SessionBus
from helpers.xserver import start_xvfb, stop_group
from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
from PIL import Image

from credguard import control
from credguard.audit.log import AuditLog
from credguard.cli import tray_cmd
from credguard.daemon.alerts import RecentAlerts
from credguard.daemon.server import ControlServer
from credguard.errors import CredguardError, ExitCode, StateError
from credguard.tray import icon as tray

pytestmark = pytest.mark.timeout(120)
PROTECTING = {"running": True, "mode": "protecting", "mode_reason": "", "protected_count": 2}


def state_home(home: Home) -> Path:
    return home.root / ".local" / "state"


# -- the model ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "alerts", "state", "line", "pause_visible"),
    [
        (PROTECTING, 0, "protecting", "Protecting (2 protected)", True),
        (PROTECTING, 3, "attention", "3 alert(s): open the log", True),
        ({**PROTECTING, "mode": "paused"}, 0, "paused", "Paused: alerting only", False),
        ({**PROTECTING, "mode": "paused"}, 2, "paused", "Paused: alerting only", False),
        (
            {**PROTECTING, "mode": "alert-only", "mode_reason": "keyring locked"},
            0,
            "attention",
            "Alert only: keyring locked",
            True,
        ),
        ({**PROTECTING, "mode": "alert-only"}, 0, "attention", "Alert only: the keyring", True),
        ({**PROTECTING, "mode": "degraded"}, 0, "attention", "Mode degraded", True),
    ],
)
def test_a_status_gives_state_line_and_menu(
    status: dict[str, Any], alerts: int, state: str, line: str, pause_visible: bool
) -> None:
    view = tray.view_for(status, alerts=alerts)
    assert view.state == state and view.line.startswith(line)
    assert view.actions_enabled and view.pause_visible is pause_visible


def test_no_daemon_is_not_running_with_actions_disabled() -> None:
    view = tray.view_for(control.DaemonNotRunning("no control socket at /x"))
    assert view == tray.TrayView("not-running", "Daemon not running", False, True)


def test_a_daemon_that_does_not_answer_needs_attention() -> None:
    for error in (control.DaemonError("no answer within 3 s"), StateError("unsafe directory")):
        view = tray.view_for(error)
        assert view.state == "attention" and view.line.startswith("Daemon not answering: ")
        assert not view.actions_enabled


def test_an_action_in_flight_shows_and_greys_out_the_actions() -> None:
    view = tray.view_for(PROTECTING, busy="Scanning…")
    assert (view.state, view.line, view.actions_enabled) == ("protecting", "Scanning…", False)


def test_the_status_line_is_short_and_printable() -> None:
    status = {**PROTECTING, "mode": "alert-only", "mode_reason": "bad\x1b[31m" + "x" * 200}
    line = tray.view_for(status).line
    assert len(line) == 80 and line.endswith("…") and "\x1b" not in line


def test_alerts_and_failures_count_until_the_log_is_opened(fake_daemon: FakeDaemon) -> None:
    audit = fake_daemon.alerts.audit
    counter = tray.AlertCounter()
    assert counter.count() == 0  # no log yet
    audit.append("protected", path="/a", kind="publish-settings")
    audit.append("alerted", path="/b", kind="publish-settings", action="alert")
    audit.append("failed", path="/c", kind="pfx", reason="locked")
    assert counter.count() == 2
    time.sleep(0.002)  # records carry milliseconds: one in the same one as the click counts
    counter.acknowledge()
    assert counter.count() == 0
    audit.append("alerted", path="/d", kind="pfx", action="alert")
    assert counter.count() == 1
    assert RecentAlerts(audit, window=timedelta(0)).count() == 0  # older than the window


def test_the_audit_log_is_read_again_only_when_it_changed(
    fake_daemon: FakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    audit = fake_daemon.alerts.audit
    audit.append("alerted", path="/b", kind="pfx", action="alert")
    reads = []
    real = audit.records
    monkeypatch.setattr(audit, "records", lambda since: reads.append(since) or real(since))
    counter = tray.AlertCounter()
    assert [counter.count() for _ in range(5)] == [1] * 5 and len(reads) == 1
    audit.append("alerted", path="/c", kind="pfx", action="alert")
    assert counter.count() == 2 and len(reads) == 2


def test_an_alert_count_that_cannot_be_had_counts_as_before(
    fake_daemon: FakeDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    counter = tray.AlertCounter()
    fake_daemon.alerts.audit.append("failed", path="/c", kind="pfx", reason="locked")
    assert counter.count() == 1
    fake_daemon.alerts_reply = control.DaemonError("unknown command")  # an older daemon
    assert counter.count() == 1 and "cannot ask the daemon for alerts" in caplog.text
    fake_daemon.alerts_reply = {}
    assert counter.count() == 1 and "no count" in caplog.text


@pytest.fixture
def real_daemon(secret_service: SecretService, tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


def test_the_daemon_counts_recent_alerts_for_the_tray(real_daemon: DaemonProcess) -> None:
    assert control.request("alerts") == {"count": 0}
    AuditLog().append("alerted", path="/x.pfx", kind="pfx", action="alert")
    AuditLog().append("protected", path="/y.pfx", kind="pfx")
    assert control.request("alerts") == {"count": 1}
    later = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    assert control.request("alerts", since=later) == {"count": 0}


def test_each_state_has_its_own_shield() -> None:
    images = {state: tray.icon_image(state) for state in tray.COLOURS}
    for state, image in images.items():
        assert image.mode == "RGBA" and image.size == (64, 64)
        assert image.getpixel((0, 63)) == (0, 0, 0, 0)  # transparent around the shield
        assert image.getpixel((32, 54)) == (*tray.COLOURS[state], 255)  # below the mark
        assert (255, 255, 255, 255) in {c for _, c in image.getcolors(1 << 16) or ()}  # the mark
        assert tray.icon_image(state) is image  # drawn once
    assert len({image.tobytes() for image in images.values()}) == 4


def fake_program(bin_dir: Path, name: str, record: Path) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / name
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> "{record}"\n')
    script.chmod(0o755)


@pytest.mark.parametrize(("platform", "program"), [("linux", "xdg-open"), ("macos", "open")])
def test_open_log_uses_the_desktop_viewer(
    platform: str, program: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "opened.txt"
    fake_program(tmp_path / "bin", program, record)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("CREDGUARD_PLATFORM", platform)
    tray_cmd.open_path(tmp_path / "audit dir")
    wait_for(lambda: record.exists() and record.read_text() == f"{tmp_path / 'audit dir'}\n")
    wait_for(lambda: all(t.name != "credguard-open" for t in threading.enumerate()))  # reaped


def test_open_log_on_windows_uses_startfile(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[object] = []
    monkeypatch.setenv("CREDGUARD_PLATFORM", "windows")
    monkeypatch.setattr(os, "startfile", opened.append, raising=False)
    tray_cmd.open_path(Path("C:/audit"))
    assert opened == [Path("C:/audit")]


def test_a_missing_viewer_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CREDGUARD_PLATFORM", "linux")
    tray_cmd.open_path(tmp_path)
    assert "cannot open" in caplog.text


def test_without_pystray_the_error_says_what_to_install(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pystray", None)  # import pystray -> ModuleNotFoundError
    run = cli("tray")
    assert run.code == ExitCode.TARGET == 8
    assert "pip install 'credguard[tray]'" in run.err
    with pytest.raises(ImportError, match="pystray"):
        tray.host_available()  # doctor: "not available in this installation"


def test_without_a_display_the_error_names_the_system_packages() -> None:
    run = run_subprocess("tray")  # conftest removed DISPLAY: no backend can start
    assert run.code == ExitCode.TARGET
    assert "no usable tray backend" in run.err and "libgirepository1.0-dev" in run.err


@pytest.mark.parametrize("value", ["0", "nan", "7200"])
def test_a_bad_interval_is_refused(cli: Any, value: str) -> None:
    run = cli("tray", "--interval", value)
    assert run.code == ExitCode.USAGE and "--interval" in run.err


def test_no_tray_host_without_a_display_or_bus() -> None:
    ok, detail = tray.host_available()
    assert not ok and "no system tray" in detail


def test_other_systems_always_have_a_tray(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDGUARD_PLATFORM", "macos")
    assert tray.host_available()[0] is True


# -- the Tray in-process, a recording icon, a stand-in daemon --------------------------------


class FakeDaemon:
    """The control handler: records commands, switches modes, and can hold a scan open; it
    answers ``alerts`` as the daemon does, from the real audit log, unless ``alerts_reply``
    says otherwise (an error to raise, or a result)."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.mode = "protecting"
        self.scan_gate = threading.Event()
        self.scan_gate.set()
        self.alerts = RecentAlerts(AuditLog())
        self.alerts_reply: dict[str, Any] | CredguardError | None = None
        self.recent: object = None  # the `recent` answer's items (None: an older daemon)
        self.items: list[dict[str, Any]] = []  # the `item` commands' arguments

    def __call__(self, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        self.commands.append(cmd)
        if cmd == "recent" and self.recent is not None:
            return {"items": self.recent}
        if cmd == "item":
            self.items.append(args)
            return {"action": args["action"], "path": "/x"}
        if cmd == "alerts":
            reply = self.alerts_reply
            if isinstance(reply, CredguardError):
                raise reply
            return reply if reply is not None else {"count": self.alerts.count(args["since"])}
        if cmd == "scan":
            self.scan_gate.wait(10)
        self.mode = {"pause": "paused", "resume": "protecting"}.get(cmd, self.mode)
        return {**PROTECTING, "mode": self.mode}


@pytest.fixture
def fake_pystray(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """pystray's own Menu and MenuItem, and an Icon whose backend only records what it is told
    (the "dummy" backend is selected so importing pystray needs no display)."""
    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")
    base = importlib.import_module("pystray._base")

    class RecordingIcon(base.Icon):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.images: list[Any] = []
            self.menus: list[list[tuple[str, bool]]] = []
            self._ended = threading.Event()

        def _show(self) -> None: ...
        def _hide(self) -> None: ...
        def _update_title(self) -> None: ...

        def _update_icon(self) -> None:
            self.images.append(self.icon)

        def _update_menu(self) -> None:
            self.menus.append([(str(i), i.enabled) for i in self.menu or ()])

        def _run(self) -> None:
            self._mark_ready()
            self._ended.wait(30)

        def _stop(self) -> None:
            self._ended.set()

        def click(self, label: str | None = None) -> None:
            """A left click (the default action) or a menu item, as the GUI thread does."""
            if label is None:
                self()  # what the backends call on a click
                return
            next(i for i in self.menu if str(i) == label)(self)
            self.update_menu()

    return SimpleNamespace(Icon=RecordingIcon, Menu=base.Menu, MenuItem=base.MenuItem)


@pytest.fixture
def fake_daemon() -> Iterator[FakeDaemon]:
    handler = FakeDaemon()
    server = ControlServer(handler, timeout=1.0)
    server.start()
    yield handler
    handler.scan_gate.set()
    server.stop()


@contextlib.contextmanager
def running_tray(pystray: SimpleNamespace, opened: list[Path]) -> Iterator[tray.Tray]:
    icon = tray.Tray(pystray, opened.append, interval=0.05)
    runner = threading.Thread(target=icon.run, name="test-tray-main")
    runner.start()
    try:
        yield icon
    finally:
        icon.stop()
        runner.join(10)
        assert not runner.is_alive()


def labels(icon: tray.Tray) -> list[tuple[str, bool]]:
    return icon.icon.menus[-1]  # type: ignore[no-any-return]


def test_a_click_scans_on_a_worker_thread_and_never_blocks(
    fake_pystray: SimpleNamespace, fake_daemon: FakeDaemon
) -> None:
    with running_tray(fake_pystray, []) as icon:
        wait_for(lambda: icon.view.state == "protecting")
        assert labels(icon) == [
            ("Protecting (2 protected)", False), ("- - - -", True), ("Scan now", True),
            ("Pause for 1 hour", True), ("Open log", True), ("- - - -", True),
            ("Quit tray", True),
        ]  # fmt: skip
        fake_daemon.scan_gate.clear()  # the daemon takes its time over this scan
        started = time.monotonic()
        icon.icon.click()
        assert time.monotonic() - started < 0.5
        wait_for(lambda: "scan" in fake_daemon.commands)
        assert icon.view.line == "Scanning…" and not icon.view.actions_enabled
        assert ("Scan now", False) in labels(icon)
        icon.icon.click()  # a second click while it runs does nothing
        fake_daemon.scan_gate.set()
        wait_for(lambda: icon.view.actions_enabled)
        assert fake_daemon.commands.count("scan") == 1


def test_pause_and_resume_from_the_menu(
    fake_pystray: SimpleNamespace, fake_daemon: FakeDaemon
) -> None:
    with running_tray(fake_pystray, []) as icon:
        wait_for(lambda: icon.view.state == "protecting")
        icon.icon.click("Pause for 1 hour")
        wait_for(lambda: icon.view.state == "paused")
        assert ("Resume", True) in labels(icon) and ("Pause for 1 hour", True) not in labels(icon)
        assert icon.icon.images[-1] is tray.icon_image("paused")
        icon.icon.click("Resume")
        wait_for(lambda: icon.view.state == "protecting")
    assert fake_daemon.commands.count("pause") == fake_daemon.commands.count("resume") == 1


def test_alerts_show_until_the_log_is_opened(
    fake_pystray: SimpleNamespace, fake_daemon: FakeDaemon, home: Home
) -> None:
    opened: list[Path] = []
    with running_tray(fake_pystray, opened) as icon:
        wait_for(lambda: icon.view.state == "protecting")
        AuditLog().append("alerted", path="/x.pfx", kind="pfx", action="alert")
        wait_for(lambda: icon.view.state == "attention")
        assert icon.view.line == "1 alert(s): open the log"
        icon.icon.click("Open log")
        wait_for(lambda: icon.view.state == "protecting")
    assert opened == [state_home(home) / "credguard" / "audit"]


def test_the_recent_menu_opens_and_restores_through_the_daemon(
    fake_pystray: SimpleNamespace, fake_daemon: FakeDaemon
) -> None:
    """Each recently protected item offers "Open for import" and "Restore", which the daemon
    does (and tells in a notification); an answer that makes no sense is left out."""
    ids = ["ab" * 16, "cd" * 16]
    now = datetime.now(UTC)
    fake_daemon.recent = [
        {"id": ids[0], "name": "contoso.PublishSettings", "time": now.isoformat()},
        {"id": ids[1], "name": "old\nname.pfx", "time": (now - timedelta(days=3)).isoformat()},
        {"id": "../etc", "name": "bad id"}, {"name": "no id"}, "not an object",
    ]
    with running_tray(fake_pystray, []) as icon:
        wait_for(lambda: icon.view.recent)
        menu = wait_for(lambda: [i.text for i in icon.icon.menu][:6] == [
            "Protecting (2 protected)", "- - - -", "Scan now", "Pause for 1 hour",
            "Recently protected", "Open log"] and icon.icon.menu)
        recent = next(i for i in menu if i.text == "Recently protected").submenu
        first, second = recent.items
        local = now.astimezone()
        assert first.text == f"contoso.PublishSettings ({local:%H:%M})"
        older = (now - timedelta(days=3)).astimezone()
        assert second.text == f"old?name.pfx ({older:%a %H:%M})"
        assert [i.text for i in first.submenu] == ["Open for import", "Restore"]
        first.submenu.items[0](icon.icon)
        wait_for(lambda: fake_daemon.items)
        wait_for(lambda: icon.view.actions_enabled)
        second.submenu.items[1](icon.icon)
        wait_for(lambda: len(fake_daemon.items) == 2)
    assert fake_daemon.items == [{"action": "open", "id": ids[0]},
                                 {"action": "restore", "id": ids[1]}]


def test_an_older_daemon_gives_no_recent_menu(
    fake_pystray: SimpleNamespace, fake_daemon: FakeDaemon
) -> None:
    with running_tray(fake_pystray, []) as icon:
        wait_for(lambda: icon.view.state == "protecting")
        wait_for(lambda: "recent" in fake_daemon.commands)
        assert icon.view.recent == () and "Recently protected" not in dict(labels(icon))


def test_the_daemon_is_picked_up_when_it_starts_and_lost_when_it_stops(
    fake_pystray: SimpleNamespace,
) -> None:
    with running_tray(fake_pystray, []) as icon:
        wait_for(lambda: icon.view.line == "Daemon not running")
        assert {("Scan now", False), ("Pause for 1 hour", False), ("Open log", True)} <= set(
            labels(icon)
        )
        icon.icon.click()  # a click on a "not running" icon only checks again
        server = ControlServer(FakeDaemon(), timeout=1.0)
        server.start()
        try:
            wait_for(lambda: icon.view.state == "protecting")
        finally:
            server.stop()
        wait_for(lambda: icon.view.state == "not-running")


# -- the real icon: Xvfb + trayer + a notification server, the real daemon -------------------

DESKTOP_PROGRAMS = {"Xvfb": "xvfb", "trayer": "trayer", "xdotool": "xdotool",
                    "import": "imagemagick", "dbus-daemon": "dbus-daemon"}  # fmt: skip
NOTIFICATION_SERVERS = ("dunst", "/usr/lib/notification-daemon/notification-daemon")
TRAYER = ["--edge", "top", "--align", "left", "--widthtype", "pixel", "--width", "200",
          "--heighttype", "pixel", "--height", "32", "--SetDockType", "false",
          "--SetPartialStrut", "false", "--transparent", "false"]  # fmt: skip
STRIP = (0, 0, 200, 32)  # where trayer shows the icons


def missing_programs() -> list[str]:
    missing = [f"{p} ({pkg})" for p, pkg in DESKTOP_PROGRAMS.items() if not shutil.which(p)]
    if not any(shutil.which(server) for server in NOTIFICATION_SERVERS):
        missing.append("dunst or notification-daemon")
    return missing


@dataclass
class Desktop:
    """A virtual X display with a system tray and a notification server on its own bus."""

    display: str
    bus: SessionBus
    shots: Path

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, "DISPLAY": self.display, "DBUS_SESSION_BUS_ADDRESS": self.bus.address,
                "PYSTRAY_BACKEND": "gtk", "GDK_BACKEND": "x11", "NO_AT_BRIDGE": "1"}  # fmt: skip

    def run(self, *args: str) -> str:
        env = {"PATH": os.environ["PATH"], "DISPLAY": self.display, "HOME": str(self.shots)}
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=20, check=True)
        return done.stdout

    def screenshot(self, path: Path) -> Image.Image:
        self.run("import", "-window", "root", str(path))
        with Image.open(path) as image:
            return image.convert("RGB")

    def find(self, colour: tuple[int, int, int], path: Path) -> tuple[int, int] | None:
        """The centre of the pixels of ``colour`` in trayer's strip, from a new screenshot."""
        image = self.screenshot(path)
        x0, y0, x1, y1 = STRIP
        hits = [(x, y) for x in range(x0, x1) for y in range(y0, y1)
                if near(image.getpixel((x, y)), colour)]  # fmt: skip
        if len(hits) < 9:
            return None
        xs, ys = [x for x, _ in hits], [y for _, y in hits]
        return (min(xs) + max(xs)) // 2, (min(ys) + max(ys)) // 2

    def click(self, x: int, y: int, button: int = 1) -> None:
        # no --sync: it waits for a pointer motion that never comes when already there
        self.run("xdotool", "mousemove", str(x), str(y), "click", str(button))

    def menu(self, x: int, y: int, *keys: str) -> None:
        """Open the icon's menu (right click) once no menu shows, wait until it is drawn below
        the icon, then press ``keys``."""
        shot = self.shots / "menu.png"

        def menu_shown() -> bool:
            image = self.screenshot(shot)
            return bool(image.getpixel((x + 30, 50)) != image.getpixel((600, 400)))

        wait_for(lambda: not menu_shown(), timeout=10)
        self.click(x, y, 3)
        wait_for(menu_shown, timeout=10)
        self.run("xdotool", "key", "--delay", "100", *keys)


def near(pixel: Any, colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def start_x(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The desktop's Xvfb, on the first free display from 90 (the clipboard tests' start at
    300)."""
    return start_xvfb(root / "xvfb.log", range(90, 190), extra=("-noreset",))


def tray_host_ready(display: str) -> bool:
    """Whether trayer owns the system tray selection; False while the display is not reachable
    yet (retried by wait_for, which fails the test in the end)."""
    from Xlib import X  # type: ignore[import-untyped]
    from Xlib import display as xdisplay

    try:
        with contextlib.closing(xdisplay.Display(display)) as conn:
            atom = conn.intern_atom("_NET_SYSTEM_TRAY_S0")
            return bool(conn.get_selection_owner(atom) != X.NONE)
    except Exception:  # Xlib's own errors, or OSError
        return False


@pytest.fixture(scope="module")
def desktop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desktop]:
    missing = missing_programs()
    if missing:
        pytest.skip(f"the tray tests need a virtual desktop; missing: {', '.join(missing)}")
    root = tmp_path_factory.mktemp("desktop")
    procs: list[subprocess.Popen[bytes]] = []
    bus = SessionBus(root / "bus")
    try:
        xvfb, display = start_x(root)
        procs.append(xvfb)
        bus.start()
        env = {**bus.daemon_env, "DISPLAY": display}
        server = next(s for s in NOTIFICATION_SERVERS if shutil.which(s))
        for argv in (["trayer", *TRAYER], [server]):
            with (root / f"{Path(argv[0]).name}.log").open("wb") as log:
                procs.append(subprocess.Popen(argv, env=env, stdout=log, stderr=log,
                                              start_new_session=True))  # fmt: skip

        def trayer_owns_the_tray() -> bool:
            for proc in procs:
                if proc.poll() is not None:
                    logs = "".join(p.read_text(errors="replace") for p in root.glob("*.log"))
                    pytest.fail(f"{proc.args[0]} exited with {proc.returncode}:\n{logs}")
            return tray_host_ready(display)

        wait_for(trayer_owns_the_tray, timeout=20)
        notifications = message_bus.NameHasOwner("org.freedesktop.Notifications")
        wait_for(lambda: bus.call(notifications)[0], timeout=20)
        yield Desktop(display, bus, root)
    finally:
        for proc in reversed(procs):
            stop_group(proc)
        bus.stop()


class TrayProcess:
    """``python -m credguard tray`` on the desktop; its stderr (the state log) in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "credguard", "tray", "--interval", "0.3"],
                env=env, stdout=out, stderr=out, start_new_session=True,
            )  # fmt: skip

    def states(self) -> list[str]:
        text = self.log.read_text(errors="replace")
        return re.findall(r"credguard\.tray\.icon: state (\S+):", text)

    def wait_state(self, state: str, seen: int = 0) -> int:
        """Wait for ``state`` among the state lines after the first ``seen``; their count."""

        def reached() -> int:
            if self.proc.poll() is not None:
                pytest.fail(f"the tray exited with {self.proc.returncode}:\n{self.output()}")
            states = self.states()
            return len(states) if state in states[seen:] else 0

        reached.__name__ = f"tray state {state}"
        return int(wait_for(reached, timeout=20))

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def quit(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)

    def kill(self) -> None:
        stop_group(self.proc)


@pytest.fixture
def tray_process(desktop: Desktop, tmp_path: Path) -> Iterator[Any]:
    started: list[TrayProcess] = []

    def start(env: dict[str, str] | None = None) -> TrayProcess:
        started.append(TrayProcess(desktop.env(env or dict(os.environ)), tmp_path / "tray.log"))
        return started[-1]

    yield start
    for proc in started:
        proc.kill()


def icon_at(desktop: Desktop, state: str, shot: Path) -> tuple[int, int]:
    """Where the icon in ``state``'s colour is, once it shows; ``shot`` keeps the screenshot."""

    def shown() -> tuple[int, int] | None:
        return desktop.find(tray.COLOURS[state], shot)  # type: ignore[index]

    shown.__name__ = f"a {state} icon in the tray (see {shot})"
    return wait_for(shown, timeout=20)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_the_icon_shows_and_a_click_scans(
    secret_service: SecretService, desktop: Desktop, tray_process: Any, home: Home, tmp_path: Path
) -> None:
    daemon = DaemonProcess(dict(os.environ), tmp_path / "daemon.log").start()
    try:
        process = tray_process()
        process.wait_state("protecting")
        x, y = icon_at(desktop, "protecting", tmp_path / "protecting.png")
        assert not [e for e in audit_events(state_home(home)) if e["event"] == "scanned"
                    and e.get("reason") == "requested"]  # fmt: skip
        desktop.click(x, y)  # left click: the default action, "Scan now"
        wait_for(lambda: any(e["event"] == "scanned" and e.get("reason") == "requested"
                             for e in audit_events(state_home(home))))  # fmt: skip
        wait_for(lambda: "INFO credguard.tray.icon: scan: done" in process.output())
        assert process.quit() == 0
        assert "tray stopped" in process.output()
    finally:
        daemon.stop()


@pytest.mark.slow
def test_not_running_until_the_daemon_starts_and_again_when_it_stops(
    secret_service: SecretService, desktop: Desktop, tray_process: Any, tmp_path: Path
) -> None:
    process = tray_process()
    seen = process.wait_state("not-running")
    icon_at(desktop, "not-running", tmp_path / "not-running.png")
    daemon = DaemonProcess(dict(os.environ), tmp_path / "daemon.log").start()
    try:
        seen = process.wait_state("protecting", seen)
        icon_at(desktop, "protecting", tmp_path / "protecting.png")
        daemon.stop()
        seen = process.wait_state("not-running", seen)
        daemon.start()  # restarted: picked up again
        process.wait_state("protecting", seen)
    finally:
        daemon.stop()
    assert process.quit() == 0


@pytest.mark.slow
def test_the_menu_opens_the_log_pauses_resumes_and_quits(
    secret_service: SecretService, desktop: Desktop, tray_process: Any, home: Home, tmp_path: Path
) -> None:
    record = tmp_path / "opened.txt"
    fake_program(tmp_path / "bin", "xdg-open", record)  # the viewer is stood in: no GUI app
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    daemon = DaemonProcess(dict(os.environ), tmp_path / "daemon.log").start()
    try:
        process = tray_process(env)
        seen = process.wait_state("protecting")
        AuditLog().append("alerted", path="/x.pfx", kind="pfx", action="alert")
        seen = process.wait_state("attention", seen)
        x, y = icon_at(desktop, "attention", tmp_path / "attention.png")
        desktop.menu(x, y, "Down", "Down", "Down", "Return")  # Scan now, Pause, Open log
        wait_for(lambda: record.exists())
        assert record.read_text() == f"{state_home(home) / 'credguard' / 'audit'}\n"
        seen = process.wait_state("protecting", seen)  # opening the log acknowledged it
        desktop.menu(x, y, "Down", "Down", "Return")  # Pause for 1 hour
        seen = process.wait_state("paused", seen)
        icon_at(desktop, "paused", tmp_path / "paused.png")
        assert (daemon.status() or {}).get("mode") == "paused"
        desktop.menu(x, y, "Down", "Down", "Return")  # Resume, in the same place
        process.wait_state("protecting", seen)
        assert (daemon.status() or {}).get("mode") == "protecting"
        desktop.menu(x, y, "Up", "Return")  # Quit tray, the last item
        assert process.proc.wait(15) == 0
        assert "tray stopped" in process.output()
    finally:
        daemon.stop()


@pytest.mark.slow
@pytest.mark.usefixtures("tmpfs_runtime")
def test_the_recent_menu_opens_a_protected_file_for_import(
    secret_service: SecretService, desktop: Desktop, tray_process: Any, home: Home, tmp_path: Path
) -> None:
    """The real menu: a file the daemon protected is under "Recently protected"; its "Open
    for import" has the daemon write the RAM-only copy."""
    daemon = DaemonProcess(dict(os.environ), tmp_path / "daemon.log").start()
    try:
        data = payloads.publish_profile("tray").data
        (home.downloads / "tray.PublishSettings").write_bytes(data)
        wait_for(lambda: [e for e in audit_events(state_home(home)) if e["event"] == "protected"])
        process = tray_process()
        process.wait_state("protecting")
        x, y = icon_at(desktop, "protecting", tmp_path / "protecting.png")
        # Scan now, Pause, Recently protected; into it, into its first item: Open for import
        desktop.menu(x, y, "Down", "Down", "Down", "Right", "Right", "Return")
        opened = wait_for(lambda: [e for e in audit_events(state_home(home))
                                   if e["event"] == "opened"])
        assert opened[0]["reason"] == "tray"
        wait_for(lambda: "INFO credguard.tray.icon: item: done" in process.output())
        copies = list((Path(os.environ["XDG_RUNTIME_DIR"])).glob("**/tray.PublishSettings"))
        assert [c.read_bytes() for c in copies] == [data]
        assert process.quit() == 0
    finally:
        daemon.stop()


def test_doctor_finds_the_tray_host(desktop: Desktop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", desktop.display)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desktop.bus.address)
    ok, detail = tray.host_available()
    assert ok and "XEmbed" in detail


@pytest.mark.slow
def test_quitting_without_a_notification_server_still_exits_cleanly(
    desktop: Desktop, tray_process: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """pystray's gtk backend closes its notification on the way out and raises when no server
    is on the bus: the tray logs that and still exits 0. (The bus in a short directory: this
    test's long name in a pytest-xdist tmp_path makes its socket's name too long.)"""
    bare = SessionBus(tmp_path_factory.mktemp("bare-bus"))
    bare.start()
    try:
        env = {**desktop.env(dict(os.environ)), "DBUS_SESSION_BUS_ADDRESS": bare.address}
        process = TrayProcess(env, tmp_path / "tray.log")
        try:
            process.wait_state("not-running")
            icon_at(desktop, "not-running", tmp_path / "not-running.png")
            assert process.quit() == 0
            assert "failed while closing" in process.output()
            assert "tray stopped" in process.output()
        finally:
            process.kill()
    finally:
        bare.stop()


def test_a_backend_that_cannot_start_is_an_error_not_a_hang(
    desktop: Desktop, tmp_path: Path
) -> None:
    env = {**desktop.env(dict(os.environ)), "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent"}
    run = subprocess.run([sys.executable, "-m", "credguard", "tray"], env=env,
                         capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert run.returncode == ExitCode.TARGET
    assert "the tray icon could not start" in run.stderr
