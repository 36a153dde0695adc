"""Where things are, per operating system: the one place that reads ``sys.platform`` (with
:mod:`credguard.xdg`, its lean half: the XDG directories as strings).

Every other module asks this one for directories (config, data, state, runtime), for the roots a
scan or the daemon covers, and for the platform name used by the other dispatchers.
"""

from __future__ import annotations

import os
import sys
from collections import namedtuple
from pathlib import Path

from credguard import xdg

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    from types import ModuleType
    from typing import NamedTuple

APP = xdg.APP


def _platformdirs() -> ModuleType:
    """platformdirs, imported when first needed: on Linux this module computes the user's XDG
    directories itself (:func:`_xdg_home`), so the commands that need nothing else (``check``,
    ``exec``) never load it (about 4 ms)."""
    import platformdirs

    return platformdirs


def _plain_xdg() -> bool:
    """Whether platformdirs would answer with its plain XDG rules here (:func:`credguard.xdg.
    plain_xdg`), which :func:`_xdg_home` applies without importing it."""
    return xdg.plain_xdg()


def _xdg_home(variable: str, default: str) -> Path:
    """What platformdirs' ``Unix`` class answers for ``user_*_dir(APP, appauthor=False)``
    (:func:`credguard.xdg.xdg_home`); tests/test_startup_paths.py compares the two."""
    return Path(xdg.xdg_home(variable, default))


def platform_name() -> str:
    """``linux``, ``macos``, ``windows`` or ``other``: the key every dispatcher selects on.

    ``CREDGUARD_PLATFORM`` overrides it, for rendering and selection tests of other systems.
    """
    forced = os.environ.get("CREDGUARD_PLATFORM")
    if forced in ("linux", "macos", "windows", "other"):
        return forced
    return native_platform()


def native_platform() -> str:
    """The system this process really runs on, whatever the environment says."""
    current: str = sys.platform  # a plain str, so type checkers keep every branch
    if current.startswith("linux"):
        return "linux"
    if current == "darwin":
        return "macos"
    if current in ("win32", "cygwin"):
        return "windows"
    return "other"


def home() -> Path:
    return Path.home()


def user_config_file() -> Path:
    """The user's TOML config; ``CREDGUARD_CONFIG`` points elsewhere."""
    direct = xdg.user_config_file()
    if direct is not None:
        return Path(direct)
    config_dir = _platformdirs().user_config_dir(APP, appauthor=False, roaming=True)
    return Path(config_dir) / "config.toml"


# The managed policy lives in a fixed place per system. Nothing in the environment moves it
# (not XDG_CONFIG_DIRS, %ProgramData%, platformdirs' overrides or CREDGUARD_PLATFORM): the
# environment is the user's, and a policy the user could move is a policy the user could hide.
# Tests repoint it by patching this mapping inside their own process.
MANAGED_POLICY_FILES: dict[str, Path] = {
    "linux": Path(xdg.LINUX_POLICY),
    "macos": Path("/Library/Application Support/credguard/policy.toml"),
    "windows": Path("C:\\ProgramData\\credguard\\policy.toml"),
    "other": Path(xdg.LINUX_POLICY),
}


def managed_policy_file() -> Path:
    """The machine-wide policy an administrator ships: :data:`MANAGED_POLICY_FILES` for the
    system this process runs on."""
    return MANAGED_POLICY_FILES[native_platform()]


def user_data_dir() -> Path:
    if _plain_xdg():
        return _xdg_home("XDG_DATA_HOME", ".local/share")
    return Path(_platformdirs().user_data_dir(APP, appauthor=False))


def user_state_dir() -> Path:
    if _plain_xdg():
        return Path(xdg.state_dir())
    return Path(_platformdirs().user_state_dir(APP, appauthor=False))


def journal_dir() -> Path:
    """Where the protect transactions' journal lives (:mod:`credguard.protect.journal`); here
    so that the check every command makes first (:func:`credguard.cli.common.interrupted`)
    need not import the journal's module."""
    return user_state_dir() / "journal"


def vault_dir() -> Path:
    return user_data_dir() / "vault"


def audit_dir() -> Path:
    """Where the audit log lives (what the tray's "Open log" shows)."""
    return user_state_dir() / "audit"


def azure_cli_dir() -> Path:
    override = os.environ.get("AZURE_CONFIG_DIR")
    return Path(override) if override else home() / ".azure"


def azure_powershell_dirs() -> list[Path]:
    """``~/.Azure`` plus the shared MSAL ``.IdentityService`` folders PowerShell uses."""
    h = home()
    dirs = [h / ".Azure", h / ".IdentityService"]
    if platform_name() == "windows":
        local = os.environ.get("LOCALAPPDATA")
        if local:
            dirs.append(Path(local) / ".IdentityService")
        appdata = os.environ.get("APPDATA")
        if appdata:
            dirs.append(Path(appdata) / "Windows Azure Powershell")
    else:
        dirs.append(h / ".local" / "share" / ".IdentityService")
    return dirs


def azd_dir() -> Path:
    override = os.environ.get("AZD_CONFIG_DIR")
    return Path(override) if override else home() / ".azd"


def trash_dirs() -> list[Path]:
    """The user's trash folders that hold deleted files (not their metadata)."""
    name = platform_name()
    if name == "macos":
        return [home() / ".Trash"]
    if name == "windows":
        return []  # the Recycle Bin is per-volume and SID-owned; not scanned yet
    data_home = os.environ.get("XDG_DATA_HOME") or str(home() / ".local" / "share")
    return [Path(data_home) / "Trash" / "files"]


def _user_dir(getter: str, fallback: str) -> Path:
    try:
        value = getattr(_platformdirs(), getter)()
    except Exception:  # platformdirs reads user-dirs.dirs; a broken file must not stop a scan
        value = ""
    return Path(value) if value else home() / fallback


def downloads_dir() -> Path:
    return _user_dir("user_downloads_dir", "Downloads")


def desktop_dir() -> Path:
    return _user_dir("user_desktop_dir", "Desktop")


def documents_dir() -> Path:
    return _user_dir("user_documents_dir", "Documents")


if TYPE_CHECKING:
    class Root(NamedTuple):
        """A place to scan or watch.

        ``recursive`` False means only the directory's own entries (the home directory).
        ``sniff`` True means small text/XML files are opened and sniffed for credential
        content, not only matched by name: download-like folders and paths the user names
        explicitly. ``explicit`` marks a path the user named: if it cannot be scanned, that is
        an error. (A named tuple, not a dataclass, and made without typing at run time: every
        command imports this module; a frozen dataclass costs about 0.5 ms to create, typing
        about 2 ms to import.)
        """

        path: Path
        label: str
        recursive: bool = True
        sniff: bool = False
        explicit: bool = False
else:
    Root = namedtuple("Root", ["path", "label", "recursive", "sniff", "explicit"],
                      defaults=(True, False, False))


def default_roots() -> list[Root]:
    """The roots ``credguard scan`` covers with no PATH, in a stable order."""
    roots = [
        Root(home(), "home", recursive=False, sniff=True),
        Root(downloads_dir(), "downloads", sniff=True),
        Root(desktop_dir(), "desktop", sniff=True),
        Root(documents_dir(), "documents"),
        Root(azure_cli_dir(), "azure-cli"),
        *(Root(p, "azure-powershell") for p in azure_powershell_dirs()),
        Root(azd_dir(), "azd"),
        *(Root(p, "trash", sniff=True) for p in trash_dirs()),
    ]
    seen: set[Path] = set()
    unique = []
    for root in roots:
        if root.path not in seen:
            seen.add(root.path)
            unique.append(root)
    return unique


def runtime_dir() -> Path | None:
    """The user runtime dir (``$XDG_RUNTIME_DIR`` on Linux), if the session has one."""
    value = os.environ.get("XDG_RUNTIME_DIR")
    return Path(value) if value and platform_name() == "linux" else None


if TYPE_CHECKING:
    class SharedDir(NamedTuple):
        """This user's place inside ``parent``, a directory every user may write (``/tmp``,
        ``/dev/shm``): another user can take any fixed name there first, so
        :mod:`credguard.fs.shared` uses ``parent/name`` only when it proves to be this user's
        own, and otherwise a fresh random name it writes in ``record``, in the user's own
        state dir, where every later process finds it."""

        parent: Path
        name: str
        record: Path
else:
    SharedDir = namedtuple("SharedDir", ["parent", "name", "record"])


def shared_dir(parent: Path, purpose: str) -> SharedDir:
    """The :class:`SharedDir` for ``purpose`` (``control``, ``ram``) in ``parent``: preferred
    name ``credguard-<uid>``, record ``<state dir>/runtime/<purpose>``."""
    return SharedDir(parent, f"{APP}-{xdg.euid()}", user_state_dir() / "runtime" / purpose)


def ram_dir_candidates() -> list[Path]:
    """Where a RAM file system may be found, best first (checked by
    :mod:`credguard.handoff.ramdir`; any but the runtime dir is a shared one, see
    :func:`shared_dir`).

    macOS and Windows have no per-user tmpfs; there the list is empty and callers refuse.
    """
    if platform_name() != "linux":
        return []
    runtime = runtime_dir()
    shm = Path("/dev/shm")  # noqa: S108 - a private dir inside it, verified (credguard.fs.shared)
    return [p for p in (runtime, shm) if p is not None]


def control_dir() -> Path | SharedDir:
    """Where the daemon's control socket lives: ``<runtime dir>/credguard`` when the session
    has a runtime dir (the platform's per-user runtime dir on macOS and Windows); else this
    user's :class:`SharedDir` in the temp dir, which callers find or make with
    :mod:`credguard.fs.shared`. Kept short: a Unix socket path is limited to about 100 bytes."""
    runtime = runtime_dir()
    if runtime is not None:
        return runtime / "credguard"
    if platform_name() in ("macos", "windows"):
        return Path(_platformdirs().user_runtime_dir(APP, appauthor=False))
    import tempfile

    return shared_dir(Path(tempfile.gettempdir()), "control")
