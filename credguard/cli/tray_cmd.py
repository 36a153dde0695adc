"""``credguard tray``: a tray icon for the daemon (the optional extra ``credguard[tray]``).

Missing pystray/Pillow, or no usable pystray backend (no display, no PyGObject on Linux), is a
TargetError (exit code 8, "failed to start") whose message says what to install.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

from credguard import paths
from credguard.errors import ExitCode, TargetError, UsageError

INSTALL = "pip install 'credguard[tray]'"
LINUX_PACKAGES = (
    "on Linux the gtk and appindicator backends also need PyGObject, built against system "
    "libraries: on Debian 12 apt-get install libgirepository1.0-dev libcairo2-dev pkg-config "
    "gcc python3-dev gir1.2-gtk-3.0 (plus gir1.2-ayatanaappindicator3-0.1 for appindicator), "
    "then pip install 'PyGObject<3.51'; and a graphical session with a system tray and a D-Bus "
    "session bus"
)
_MAX_INTERVAL = 3600.0
log = logging.getLogger("credguard.tray.icon")


def register(sub: Any) -> None:
    t = sub.add_parser(
        "tray",
        help="show a tray icon for the daemon (needs credguard[tray])",
        description="A tray icon showing whether the daemon protects, needs attention, is "
        "paused or is not running, with Scan now, Pause for 1 hour / Resume, Open log and "
        "Quit tray. A click on the icon scans. It talks to the daemon over its control socket "
        "and keeps going while the daemon stops and starts.",
        epilog=f"Install: {INSTALL}; {LINUX_PACKAGES}. PYSTRAY_BACKEND (gtk, appindicator, "
        "xorg) forces a pystray backend.",
    )
    t.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help=f"seconds between status checks, 0.1 to {_MAX_INTERVAL:g} (default 3)",
    )
    t.set_defaults(func=run_tray)  # fmt: skip


def load_pystray() -> Any:
    """The imported ``pystray`` module (it picks its backend on import); TargetError naming the
    packages to install when it, Pillow, or every backend it could use is missing."""
    try:
        importlib.import_module("PIL.Image")
        import pystray
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in ("pystray", "PIL"):
            raise TargetError(f"the tray needs pystray and Pillow: {INSTALL} ({exc})") from None
        raise TargetError(f"no usable tray backend ({exc}): {LINUX_PACKAGES}") from None
    except Exception as exc:  # ImportError, or Xlib's own error when there is no display
        raise TargetError(f"no usable tray backend ({exc}): {LINUX_PACKAGES}") from None
    return pystray


def open_path(target: Path) -> None:
    """Show ``target`` in the desktop's own viewer, without a terminal: ``xdg-open`` (Linux and
    others), ``open`` (macOS), ``os.startfile`` (Windows). Failures are logged, never raised."""
    try:
        if paths.platform_name() == "windows":
            os.startfile(target)  # type: ignore[attr-defined,unused-ignore]  # noqa: S606
            return
        argv = ["open" if paths.platform_name() == "macos" else "xdg-open", os.fspath(target)]
        null = subprocess.DEVNULL
        child = subprocess.Popen(argv, stdin=null, stdout=null, stderr=null, start_new_session=True)
        reaper = threading.Thread(target=_reap, args=(child, argv[0]), name="credguard-open")
        reaper.daemon = True
        reaper.start()
    except OSError as exc:
        log.warning("cannot open %s: %s", target, exc.strerror or exc)


def _reap(child: subprocess.Popen[bytes], name: str) -> None:
    if child.wait():
        log.warning("%s exited with %s", name, child.returncode)


def run_tray(args: argparse.Namespace) -> int:
    import signal
    import sys

    from credguard.textsafe import log_to
    from credguard.tray.icon import POLL_INTERVAL, Tray

    interval = POLL_INTERVAL if args.interval is None else args.interval
    if not 0.1 <= interval <= _MAX_INTERVAL:  # NaN fails too
        raise UsageError(f"--interval must be between 0.1 and {_MAX_INTERVAL:g} seconds")
    pystray = load_pystray()
    log_to(sys.stderr)  # timestamped lines, untrusted text escaped
    tray = Tray(pystray, open_path, interval=interval)
    signal.signal(signal.SIGTERM, lambda *_: tray.stop())
    try:
        tray.run()
    except Exception as exc:  # the backend's own type (GLib.Error...): it failed to start
        raise TargetError(f"the tray icon could not start ({exc}): {LINUX_PACKAGES}") from None
    return ExitCode.OK
