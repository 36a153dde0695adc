"""The per-user service: one backend per OS service manager, chosen in one place.

``backend()`` picks systemd (Linux), launchd (macOS) or Task Scheduler (Windows) from
:func:`credguard.paths.platform_name`; each backend renders its template (see
:mod:`credguard.service.templates`) for :func:`daemon_command` and installs, removes or inspects
the service.
"""

from __future__ import annotations

from credguard import paths
from credguard.service.base import (
    ServiceBackend,
    ServiceError,
    ServiceStatus,
    ServiceUnavailable,
    daemon_command,
)

__all__ = [
    "ServiceBackend",
    "ServiceError",
    "ServiceStatus",
    "ServiceUnavailable",
    "backend",
    "daemon_command",
]


def backend() -> ServiceBackend:
    """The backend for this OS; a platform without one raises :class:`ServiceUnavailable`."""
    name = paths.platform_name()
    if name == "linux":
        from credguard.service.systemd import SystemdBackend

        return SystemdBackend()
    if name == "macos":
        from credguard.service.launchd import LaunchdBackend

        return LaunchdBackend()
    if name == "windows":
        from credguard.service.windows import WindowsBackend

        return WindowsBackend()
    raise ServiceUnavailable(
        f"no supported service manager on this platform ({name}); "
        "run 'credguard daemon' from your session's startup instead"
    )
