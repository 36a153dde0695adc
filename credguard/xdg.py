"""The user's XDG base directories as plain strings, from the environment alone: the lean half of
:mod:`credguard.paths`, which builds its answers from these on Linux, and what ``credguard
check``'s quick path (:mod:`credguard.cli.quick`) uses before pathlib or platformdirs are loaded.
It imports only ``os`` and ``sys``.
"""

from __future__ import annotations

import os
import sys

APP = "credguard"
CONFIG_OVERRIDE = "CREDGUARD_CONFIG"  # names the user's config file instead of the XDG place
# The managed policy's fixed place on Linux (and other Unixes): the default XDG system config
# dir, which no variable moves (paths.MANAGED_POLICY_FILES says why).
LINUX_POLICY = "/etc/xdg/credguard/policy.toml"


def plain_xdg() -> bool:
    """Whether platformdirs would answer with its plain XDG rules here (its ``Unix`` class: Linux,
    not an Android app), which :func:`xdg_home` applies without importing it. macOS, Windows,
    the BSDs and anything Android-like still ask platformdirs itself."""
    android = hasattr(sys, "getandroidapilevel") or (
        os.environ.get("ANDROID_DATA") == "/data" and os.environ.get("ANDROID_ROOT") == "/system")
    return sys.platform.startswith("linux") and not android


def xdg_home(variable: str, default: str) -> str:
    """``$variable/credguard`` when it is an absolute path (the XDG spec ignores a relative one),
    else ``~/default/credguard`` with platformdirs' home: ``$HOME`` when absolute, else the
    password database's. Exactly what platformdirs' ``Unix`` class answers for
    ``user_*_dir(APP, appauthor=False)`` (tests/test_startup_paths.py compares the two), as a
    string that may still hold a doubled or trailing separator ``Path`` would drop."""
    value = os.environ.get(variable, "")
    if os.path.isabs(value):
        return os.path.join(value, APP)
    home_dir = os.environ.get("HOME", "")
    if not os.path.isabs(home_dir):
        try:
            import pwd  # POSIX; only asked where platformdirs' Unix rules hold (plain_xdg)
        except ImportError:
            return os.path.join(os.path.expanduser("~"), default, APP)
        home_dir = pwd.getpwuid(euid()).pw_dir
    return os.path.join(home_dir, default, APP)


def user_config_file() -> str | None:
    """The user's TOML config: ``$CREDGUARD_CONFIG`` when set, else the XDG place when
    :func:`plain_xdg`; None when only platformdirs knows."""
    override = os.environ.get(CONFIG_OVERRIDE)
    if override:
        return override
    if plain_xdg():
        return os.path.join(xdg_home("XDG_CONFIG_HOME", ".config"), "config.toml")
    return None


def state_dir() -> str:
    """The user's state dir (:func:`plain_xdg` only)."""
    return xdg_home("XDG_STATE_HOME", ".local/state")


def euid() -> int:
    """The effective uid: POSIX's; on Windows 0, the uid its ``stat`` gives every file."""
    geteuid = getattr(os, "geteuid", None)
    return geteuid() if geteuid is not None else 0
