"""``credguard tray``: a tray icon showing the daemon's state, a client of its control socket.

The model (:func:`view_for`, :func:`icon_image`) needs no display and no pystray.
:class:`Tray` wraps a ``pystray.Icon``: a poller thread asks ``status`` and ``alerts`` every few
seconds and after each action; a worker thread runs the menu's control calls, so the GUI thread
never waits on the daemon. State changes are logged to ``credguard.tray.icon``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from credguard import control, paths
from credguard.errors import CredguardError
from credguard.policy import Mode

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger("credguard.tray.icon")
State = Literal["protecting", "attention", "paused", "not-running"]
Status = Mapping[str, Any] | CredguardError  # a status result, or what asking for it raised
Opener = Callable[[Path], None]  # shows a file or directory to the user
POLL_INTERVAL = 3.0  # seconds between status polls
STATUS_TIMEOUT = 3.0  # seconds for a status answer
ACTION_TIMEOUT = 10.0  # seconds for pause and resume
SCAN_TIMEOUT = 600.0  # seconds: the daemon scans every root before it answers
PAUSE_SECONDS = 3600
# fmt: off
COLOURS: dict[State, tuple[int, int, int]] = {"protecting": (46, 125, 50),
    "attention": (211, 47, 47), "paused": (245, 124, 0), "not-running": (117, 117, 117)}
_SHIELD = ((0.5, 0.04), (0.9, 0.16), (0.86, 0.56), (0.5, 0.96), (0.14, 0.56), (0.1, 0.16))
_MARKS: dict[State, tuple[tuple[tuple[float, float], ...], ...]] = {  # white strokes on it
    "protecting": (((0.3, 0.48), (0.45, 0.64), (0.7, 0.34)),),
    "attention": (((0.5, 0.24), (0.5, 0.56)), ((0.5, 0.66), (0.5, 0.74))),
    "paused": (((0.4, 0.3), (0.4, 0.66)), ((0.6, 0.3), (0.6, 0.66))),
    "not-running": (((0.34, 0.3), (0.66, 0.66)), ((0.66, 0.3), (0.34, 0.66))),
}
# fmt: on


@dataclass(frozen=True)
class TrayView:
    """What the tray shows: icon state, the status line, and which menu items are usable."""

    state: State
    line: str
    actions_enabled: bool  # "Scan now" (also a click on the icon), "Pause…" and "Resume"
    pause_visible: bool  # "Pause for 1 hour" is shown, else "Resume"
    recent: tuple[Recent, ...] = ()  # "Recently protected": each "Open for import", "Restore"


@dataclass(frozen=True)
class Recent:
    """A vault item a file was lately protected into (the daemon's ``recent`` command)."""

    item_id: str
    label: str  # its file's name and when, printable


RECENT_SHOWN = 5  # items the menu lists


def recent_items(reply: object) -> tuple[Recent, ...]:
    """The menu's recent items from a ``recent`` answer; whatever makes no sense is left out
    (an older daemon answers no ``items``)."""
    items = reply.get("items") if isinstance(reply, Mapping) else None
    found: list[Recent] = []
    for item in items if isinstance(items, list) else ():
        if len(found) == RECENT_SHOWN:
            break
        if not isinstance(item, Mapping):
            continue
        item_id, name, when = item.get("id"), item.get("name"), item.get("time")
        if isinstance(item_id, str) and len(item_id) == 32 and item_id.isalnum() \
                and isinstance(name, str) and name:
            at = _local_time(when)
            found.append(Recent(item_id, _printable(f"{name} ({at})" if at else name)))
    return tuple(found)


def _local_time(value: object) -> str:
    """An audit record's UTC time as local ``HH:MM`` (``Mon HH:MM`` if not today), or ""."""
    if not isinstance(value, str):
        return ""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return ""
    today = datetime.now().astimezone().date()
    return when.strftime("%H:%M" if when.date() == today else "%a %H:%M")


def _printable(text: object) -> str:
    shown = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    return shown if len(shown) <= 80 else shown[:79] + "…"  # a menu line, not a page


def view_for(status: Status, *, alerts: int = 0, busy: str = "",
             recent: tuple[Recent, ...] = ()) -> TrayView:
    """The view for a ``status`` result, or for the error asking for it raised: DaemonNotRunning
    is "not-running", any other error (no answer in time, unsafe control directory) "attention".
    Mode "paused" is "paused"; "alert-only" (no usable keyring), any mode but "protecting", or
    ``alerts`` > 0 is "attention"; else "protecting". ``busy`` ("Scanning…") replaces the line
    and disables the actions while one runs. ``recent`` is listed while the daemon answers."""
    if isinstance(status, control.DaemonNotRunning):
        return TrayView("not-running", "Daemon not running", False, True)
    if isinstance(status, CredguardError):
        line = _printable(f"Daemon not answering: {status.detail}")
        return TrayView("attention", line, False, True)
    state: State
    mode, reason = status.get("mode"), status.get("mode_reason") or ""
    if mode == Mode.PAUSED:
        state, line = "paused", "Paused: alerting only, nothing is protected"
    elif mode == Mode.ALERT_ONLY:
        state, line = "attention", f"Alert only: {reason or 'the keyring is unavailable'}"
    elif mode != Mode.PROTECTING:
        state, line = "attention", f"Mode {mode}: {reason}".rstrip(": ")
    elif alerts:
        state, line = "attention", f"{alerts} alert(s): open the log"
    else:
        state, line = "protecting", f"Protecting ({status.get('protected_count', 0)} protected)"
    return TrayView(state, _printable(busy or line), not busy, mode != Mode.PAUSED, recent)


class AlertCounter:
    """The daemon's count of recent ``alerted`` and ``failed`` audit records (its ``alerts``
    command) newer than the last :meth:`acknowledge` (the user opened the log). An answer that
    cannot be had, or makes no sense, counts as before."""

    def __init__(self) -> None:
        self.acknowledged: datetime | None = None
        self._count = 0

    def acknowledge(self) -> None:
        now = datetime.now(UTC)  # records carry milliseconds: one in this same one still counts
        self.acknowledged = now.replace(microsecond=now.microsecond // 1000 * 1000)

    def count(self) -> int:
        since = self.acknowledged.isoformat() if self.acknowledged is not None else None
        try:
            count = control.request("alerts", timeout=STATUS_TIMEOUT, since=since).get("count")
        except CredguardError as exc:
            log.warning("cannot ask the daemon for alerts: %s", exc.message)
            return self._count
        if type(count) is int and count >= 0:
            self._count = count
        else:
            log.warning("the daemon answered alerts with no count")
        return self._count


@functools.cache
def icon_image(state: State, size: int = 64) -> Image.Image:
    """The state's icon: a shield in the state's colour with a white mark (a tick, "!",
    pause bars or a cross), RGBA, transparent around it; drawn once per (state, size)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.polygon([(x * size, y * size) for x, y in _SHIELD], fill=(*COLOURS[state], 255))
    for stroke in _MARKS[state]:
        points = [(x * size, y * size) for x, y in stroke]
        draw.line(points, fill=(255, 255, 255, 255), width=max(2, size // 10), joint="curve")
    return image


def host_available() -> tuple[bool, str]:
    """``(ok, detail)`` for ``credguard doctor``: could ``credguard tray`` show its icon here?
    ImportError if pystray or Pillow is not installed. Linux: an XEmbed tray on $DISPLAY (gtk,
    xorg) or a StatusNotifierWatcher on the session bus (appindicator); others always have one."""
    missing = [name for name in ("pystray", "PIL") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"not installed: {', '.join(missing)}")
    if paths.platform_name() != "linux":
        return True, "the desktop's own notification area"
    found = []
    for what, probe in (("an XEmbed tray on $DISPLAY", _xembed), ("a D-Bus SNI host", _sni)):
        with contextlib.suppress(Exception):  # no display, no bus, refused: no host there
            found += [what] if probe() else []
    return bool(found), " and ".join(found) or "no system tray (XEmbed or StatusNotifierWatcher)"


def _xembed() -> bool:
    from Xlib import X, display  # type: ignore[import-untyped]  # pystray's own, on Linux

    with contextlib.closing(display.Display()) as conn:
        atom = conn.intern_atom(f"_NET_SYSTEM_TRAY_S{conn.get_default_screen()}")
        return bool(conn.get_selection_owner(atom) != X.NONE)


def _sni() -> bool:
    from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]  # keyring's
    from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped]

    with open_dbus_connection("SESSION") as conn:
        query = message_bus.NameHasOwner("org.kde.StatusNotifierWatcher")
        return bool(conn.send_and_get_reply(query, timeout=2.0).body[0])


class Tray:
    """The tray icon and menu. ``pystray`` is the imported module (the CLI imports it: a missing
    one is its error); ``opener(path)`` shows the audit log directory ("Open log"). :meth:`run`
    must run on the main thread; it returns when "Quit tray" or :meth:`stop` ends it."""

    def __init__(self, pystray: Any, opener: Opener, *, interval: float = POLL_INTERVAL) -> None:
        self.opener, self.interval, self.alerts = opener, interval, AlertCounter()
        self._status: Status = control.DaemonNotRunning("not asked")
        self._alert_count, self._busy = 0, ""
        self._recent: tuple[Recent, ...] = ()
        self.view = TrayView("not-running", "Asking the daemon…", False, True)
        self._lock = threading.Lock()
        self._stopping, self._wake = threading.Event(), threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="credguard-tray", daemon=True)
        self._worker: threading.Thread | None = None
        self._pystray, title = pystray, f"credguard: {self.view.line}"
        menu = pystray.Menu(lambda: tuple(self._menu_items()))  # rebuilt by update_menu()
        self.icon = pystray.Icon("credguard", icon_image(self.view.state), title, menu=menu)

    def _menu_items(self) -> Iterator[Any]:
        """The menu for the current view; "Scan now" is the default action (a click on the icon)."""
        item, separator, view = self._pystray.MenuItem, self._pystray.Menu.SEPARATOR, self.view
        yield item(view.line, None, enabled=False)
        yield separator
        yield item("Scan now", self._on_scan, default=True, enabled=view.actions_enabled)
        toggle = ("Resume", self._on_resume)
        if view.pause_visible:
            toggle = ("Pause for 1 hour", self._on_pause)
        yield item(*toggle, enabled=view.actions_enabled)
        if view.recent:
            menu = self._pystray.Menu
            entries = (item(r.label, menu(
                item("Open for import", self._on_item("open", r.item_id),
                     enabled=view.actions_enabled),
                item("Restore", self._on_item("restore", r.item_id),
                     enabled=view.actions_enabled))) for r in view.recent)
            yield item("Recently protected", menu(*entries))
        yield from (item("Open log", self._on_open_log), separator, item("Quit tray", self.stop))

    def run(self) -> None:
        """Show the icon and serve until stopped. Raises the backend's error if the icon cannot
        start (no display, no D-Bus session bus); one raised while closing is only logged."""
        self._poller.start()
        try:
            self.icon.run(self._setup)
        except Exception as exc:  # backend-specific types (GLib.Error...): not importable here
            if not self._stopping.is_set():
                self._stopping.set()  # pystray 0.19 then leaves its setup thread waiting for
                with contextlib.suppress(AttributeError):  # ever: release it (_setup does nothing)
                    self.icon._Icon__queue.put(False)
                raise
            log.warning("the tray backend failed while closing: %s", exc)
        finally:
            self._stopping.set()
            self._wake.set()
            for thread in (self._poller, self._worker):
                if thread is not None:  # a scan in flight is abandoned: the daemon finishes it
                    thread.join(timeout=2.0)
        log.info("tray stopped")

    def stop(self) -> None:
        """Quit the tray (thread-safe; the menu's "Quit tray")."""
        self._stopping.set()
        self.icon.stop()

    def _setup(self, icon: Any) -> None:
        icon.visible = not self._stopping.is_set()
        if not icon.visible:  # stopped before the icon was ready: stop() did nothing then
            icon.stop()

    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            self.refresh()
            self._wake.wait(self.interval)
            self._wake.clear()

    def refresh(self) -> None:
        """Poll status and alerts, update the icon; not while our scan holds the daemon's socket."""
        if self._busy.startswith("Scanning"):
            return
        try:
            self._status = control.request("status", timeout=STATUS_TIMEOUT)
        except CredguardError as exc:
            self._status = exc
        self._alert_count = 0 if isinstance(self._status, CredguardError) else self.alerts.count()
        self._recent = () if isinstance(self._status, CredguardError) else self._ask_recent()
        self._show()

    def _ask_recent(self) -> tuple[Recent, ...]:
        try:
            return recent_items(control.request("recent", timeout=STATUS_TIMEOUT))
        except CredguardError as exc:  # an older daemon: no recent menu
            log.debug("cannot ask the daemon for recent items: %s", exc.message)
            return ()

    def _show(self) -> None:
        """Recompute the view and, when it changed, the icon, its title and the menu."""
        with self._lock:
            old, new = self.view, view_for(self._status, alerts=self._alert_count, busy=self._busy,
                                           recent=self._recent)
            if new == old:
                return
            self.view = new
            log.info("state %s: %s", new.state, new.line)
            self.icon.icon = icon_image(new.state)  # cached: the same image for the same state
            self.icon.title = f"credguard: {new.line}"
            self.icon.update_menu()

    def _on_scan(self) -> None:
        if self.view.actions_enabled:
            self._submit("Scanning…", "scan")
        self._wake.set()  # a click on a "not running" icon checks again

    def _on_pause(self) -> None:
        self._submit("Pausing…", "pause", seconds=PAUSE_SECONDS)

    def _on_resume(self) -> None:
        self._submit("Resuming…", "resume")

    def _on_item(self, action: str, item_id: str) -> Callable[[], None]:
        """A recent item's "Open for import" or "Restore": the daemon does it and tells the
        user in a notification (where the copy is, or why not)."""
        busy = "Opening for import…" if action == "open" else "Restoring…"
        return lambda: self._submit(busy, "item", action=action, id=item_id)

    def _on_open_log(self) -> None:
        self.alerts.acknowledge()
        directory = paths.audit_dir()
        self.opener(directory if directory.is_dir() else directory.parent)
        self._wake.set()

    def _submit(self, busy: str, cmd: str, **args: Any) -> None:
        """Send ``cmd`` on a worker thread (called on the GUI thread, which never waits)."""
        if self._busy:
            return  # one action at a time; the menu shows it greyed out meanwhile
        self._busy = busy
        self._show()
        self._worker = threading.Thread(target=self._call, args=(cmd, args), daemon=True)
        self._worker.start()

    def _call(self, cmd: str, args: dict[str, Any]) -> None:
        try:
            control.request(cmd, timeout=SCAN_TIMEOUT if cmd == "scan" else ACTION_TIMEOUT, **args)
            log.info("%s: done", cmd)
        except CredguardError as exc:
            log.warning("%s failed: %s", cmd, exc.message)
        finally:
            self._busy = ""
            self._wake.set()
