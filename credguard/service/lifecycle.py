"""``credguard start|stop|restart``: the installed service when its manager can be reached, the
background process (:mod:`credguard.service.background`) otherwise; each returns an
:class:`Outcome` saying what was done, to which pid, through what.

``stop`` stops whatever daemon of this user's runs: the service's, and a background one
(started by ``credguard start`` or ``install.sh`` where no manager answered) too, since both
cannot run at once (the daemon's lock) and a user who says stop means it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from credguard.errors import CredguardError
from credguard.service import background
from credguard.service.base import ServiceBackend, ServiceUnavailable, daemon_command

BACKGROUND = "a background process"
JSON_VERSION = 1  # the shape of :meth:`Outcome.to_json`
_SERVICE_ANSWER = 15.0  # seconds for a started service's daemon to answer (launchd, schtasks)


@dataclass(frozen=True)
class Outcome:
    """What a lifecycle command did: ``action`` is started, restarted, stopped, running (it
    ran already) or absent (nothing to stop); ``via`` the service or :data:`BACKGROUND`."""

    action: str
    via: str
    pid: int | None = None
    previous_pid: int | None = None
    log: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``start``/``stop``/``restart --json`` document (schema version
        :data:`JSON_VERSION`)."""
        return {"version": JSON_VERSION, **asdict(self)}

    def line(self) -> str:
        """One calm line for the user."""
        pid = f"pid {self.pid}" if self.pid else "pid not known yet: see credguard status"
        if self.action == "absent":
            return "the daemon is not running; nothing to stop"
        if self.action == "running":
            return f"the daemon is already running ({pid}, {self.via})"
        if self.action == "stopped":
            return f"stopped the daemon ({pid}, {self.via})"
        was = f", was {self.previous_pid}" if self.previous_pid else ""
        return f"{self.action} the daemon ({pid}{was}) as {self.via}"


def managed() -> tuple[ServiceBackend | None, str]:
    """The installed service whose manager answers now, or None and why it is not used."""
    from credguard import service

    try:
        svc = service.backend()
        status = svc.status()
    except ServiceUnavailable as exc:
        return None, exc.message
    if not status["installed"]:
        return None, ("no per-user service is installed; to start the daemon at each login: "
                      "credguard service install")
    if status["manager"] != "reachable":
        return None, (f"the {svc.name} service is installed for your next login; "
                      f"{status['manager']}")
    return svc, "reachable"


def start() -> Outcome:
    found = background.running()
    svc, why = managed()
    via = svc.unit_name() if svc else BACKGROUND
    if found is not None:
        return Outcome("running", via if svc and _is_service(svc) else BACKGROUND, found.pid)
    if svc is not None:
        svc.start()
        return Outcome("started", via, _answering_pid())
    pid = background.start(daemon_command())
    return Outcome("started", BACKGROUND, pid, log=str(background.log_file()), note=why)


def stop() -> Outcome:
    svc, _ = managed()
    found = background.running()
    if svc is not None and _is_service(svc):
        svc.stop()
        after = background.running()
        if after is None:
            return Outcome("stopped", svc.unit_name(), found.pid if found else None)
        found = after  # a background daemon, running beside the stopped service's nothing
    if found is None:
        if svc is not None:  # not running now, but its manager may start it again (Windows'
            svc.stop()       # task does every minute after a crash): stopping stops that too
        return Outcome("absent", svc.unit_name() if svc else BACKGROUND)
    background.stop(found)
    return Outcome("stopped", BACKGROUND, found.pid)


def restart() -> Outcome:
    svc, why = managed()
    found = background.running()
    previous = found.pid if found else None
    if svc is not None:
        if found is not None and not _is_service(svc):
            background.stop(found)  # a background daemon holds the lock the service needs
        svc.restart()
        return Outcome("restarted", svc.unit_name(), _answering_pid(), previous)
    if found is not None:
        background.stop(found)
    pid = background.start(daemon_command())
    action = "restarted" if previous else "started"
    return Outcome(action, BACKGROUND, pid, previous, str(background.log_file()), why)


def _is_service(svc: ServiceBackend) -> bool:
    """Whether the service manager runs the daemon (not a background process)."""
    try:
        return svc.status()["running"]
    except CredguardError:
        return False


def _answering_pid() -> int | None:
    """The pid of the daemon the service manager just started, once it answers."""
    deadline = time.monotonic() + _SERVICE_ANSWER
    while time.monotonic() < deadline:
        try:
            found = background.running(timeout=2.0)
        except CredguardError:
            found = None
        if found is not None:
            return found.pid
        if not background.can_ask():
            return None
        time.sleep(0.2)
    return None
