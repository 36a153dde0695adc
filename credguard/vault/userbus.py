"""Finding the user's D-Bus session bus when ``DBUS_SESSION_BUS_ADDRESS`` is not set.

A daemon started before the desktop session (or by a service manager that passes no session
variables) has no ``DBUS_SESSION_BUS_ADDRESS``; the Secret Service that appears later is then
unreachable. libdbus and sd-bus fall back to the per-user bus ``$XDG_RUNTIME_DIR/bus``; jeepney
(under secretstorage and keyring) does not, so credguard does it here and exports the address
for them.

The vault key is sent to whatever Secret Service answers on that bus, so the bus is adopted only
when nobody else can have put it there: ``$XDG_RUNTIME_DIR`` is an absolute path to a real
directory this user owns that no group or other user may write, and ``bus`` in it is a socket
this user owns (neither is followed through a symlink). An address credguard adopted is checked
again on every call and dropped when it no longer passes; one set by the user's environment is
never touched.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from credguard import xdg
from credguard.paths import native_platform

__all__ = ["VARIABLE", "adopt_user_bus", "user_bus"]

VARIABLE = "DBUS_SESSION_BUS_ADDRESS"
_adopted: str | None = None  # the address this module exported, if any


def user_bus() -> tuple[str | None, str]:
    """``("unix:path=$XDG_RUNTIME_DIR/bus", "")`` when that socket may be used, else
    ``(None, why not)``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if not runtime or not os.path.isabs(runtime):
        return None, "XDG_RUNTIME_DIR is not set to an absolute path"
    uid = xdg.euid()
    why = _refusal(runtime, uid, stat.S_ISDIR, "directory")
    if why:
        return None, why
    if os.lstat(runtime).st_mode & 0o022:
        return None, f"not using the session bus in {runtime}: others may write that directory"
    path = os.path.join(runtime, "bus")
    why = _refusal(path, uid, stat.S_ISSOCK, "socket")
    if why:
        return None, why
    return f"unix:path={path}", ""


def _refusal(path: str, uid: int, is_kind: Callable[[int], bool], kind: str) -> str:
    """Why ``path`` is not a ``kind`` owned by ``uid`` (not followed if a symlink), or ""."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"no session bus: {path}: {exc.strerror}"
    if not is_kind(st.st_mode):
        return f"not using the session bus: {path} is not a {kind}"
    if st.st_uid != uid:
        return f"not using the session bus: {path} is owned by uid {st.st_uid}, not by this user"
    return ""


def adopt_user_bus() -> str:
    """Export the user's bus as ``DBUS_SESSION_BUS_ADDRESS`` if that variable is absent and the
    bus passes the checks above; "" when a bus address is set now, else why there is none.

    Called before each keyring lookup: a bus that appears later is found then, and one adopted
    earlier that no longer passes is withdrawn (fail closed: no bus, no keyring)."""
    global _adopted
    if native_platform() not in ("linux", "other"):
        return ""  # macOS and Windows keyrings need no session bus
    current = os.environ.get(VARIABLE, "")
    if current and current != _adopted:
        return ""  # the user's environment chose: never overridden
    address, why = user_bus()
    if address is None:
        if current:
            os.environ.pop(VARIABLE, None)
        _adopted = None
        return why
    os.environ[VARIABLE] = _adopted = address
    return ""
