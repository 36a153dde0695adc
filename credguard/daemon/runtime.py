"""``credguard daemon``: one instance per user, wiring watcher, queue, worker, reconciliation
scans, the control socket and the audit log, with systemd-friendly start, reload and stop.

Threads: the watcher's (events in), the worker (due paths in batches, one group commit each),
the reconciler (scans on start, on a jittered timer, after an overflow, on request), the
keystore retrier (alert-only mode), and the control server. The main thread waits for signals.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import threading
import time
from types import FrameType
from typing import Any

from credguard import config, paths
from credguard.audit.log import AuditLog
from credguard.audit.record import Event
from credguard.control import Streamed
from credguard.daemon.alerts import ProtectedCount, RecentAlerts, RecentProtected
from credguard.daemon.commands import exec_reply, opened_reply, protect_reply, scan_reply
from credguard.daemon.configfiles import ConfigWatch
from credguard.daemon.expiry import OpenCopies
from credguard.daemon.keyring_watch import KeystoreRetrier
from credguard.daemon.reconcile import Reconciler, limit_malloc_arenas, release_memory
from credguard.daemon.server import ControlServer
from credguard.daemon.watcher import Watcher
from credguard.daemon.worker import Worker
from credguard.daemon.workqueue import WorkQueue
from credguard.detect.base import Finding
from credguard.errors import ConfigError, CredguardError, StateError
from credguard.fs import lock
from credguard.handoff import opened
from credguard.notify.desktop import Notifier
from credguard.notify.messages import KEEP, OPEN, RESTORE, Note
from credguard.policy import Action, Mode
from credguard.protect import targets
from credguard.protect.transaction import Protector
from credguard.scan import Scanner, configured_roots, explicit_roots, project
from credguard.vault.access import open_vault
from credguard.vault.store import Vault

log = logging.getLogger("credguard.daemon")
STOP_BUDGET = 4.0  # seconds: SIGTERM must end the process within 5 s
SETTLE = 1.0  # seconds after the last created/modified event (longer than a writer's pauses)


def sd_notify(message: str) -> None:
    """Tell systemd (``Type=notify``) about readiness/stopping, when it is listening."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    family = getattr(socket, "AF_UNIX", None)  # systemd's: Linux
    if family is None:
        return
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)
    except OSError as exc:
        log.warning("could not notify systemd: %s", exc.strerror)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Daemon:
    def __init__(self, cfg: config.Config) -> None:
        self.cfg = cfg
        self.roots = configured_roots(cfg)
        self.queue = WorkQueue()
        self.log = AuditLog()
        self.alerts = RecentAlerts(self.log)
        self.recent = RecentProtected(self.log)
        self.protected = ProtectedCount(self.log)
        self.mode = Mode.PROTECTING
        self.mode_reason = ""
        self.since = now_iso()
        self.vault: Vault | None = None
        self._protector: Protector | None = None
        self._protecting = threading.Lock()  # one group commit at a time: worker or request
        self._paused_until: float | None = None
        self._before_pause = Mode.PROTECTING
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._reload_lock = threading.Lock()  # SIGHUP, file changes, requests: one at a time
        self.config_watch = ConfigWatch((cfg.user_file, cfg.policy_file))
        self.config_error: dict[str, str] | None = None  # the last refusal, until a good reload
        self.open_copies = OpenCopies(
            lambda path, item_id: self.audit("expired", path=path, item_id=item_id,
                                             reason="daemon"), self._stop)
        self.keystore_retrier = KeystoreRetrier(
            self._open_keystore, lambda: self.mode is Mode.ALERT_ONLY, self._stop)
        self.worker = Worker(self, self.queue)
        self.notifier = Notifier(cfg["notifications.enabled"], self.notification_action)
        self.reconciler = Reconciler(self, self.queue)
        self.watcher = self._new_watcher()
        self.server = ControlServer(self.handle)
        self._threads: list[threading.Thread] = []

    # -- what the worker and the reconciler use (daemon.ports) ---------------------------

    def audit(self, event: Event, **fields: Any) -> None:
        try:
            self.log.append(event, **fields)
        except (OSError, ValueError, CredguardError) as exc:  # never stops protection
            log.error("audit log write failed: %s", exc)

    def audit_many(self, records: list[tuple[Event, dict[str, Any], str]]) -> None:
        """Several records written together (one fsync): a worker batch's, each with the time
        it happened."""
        try:
            self.log.append_many([(e, f) for e, f, _ in records], [t for _, _, t in records])
        except (OSError, ValueError, CredguardError) as exc:  # never stops protection
            log.error("audit log write failed: %s", exc)

    def notify(self, event: str, finding: Finding, fields: dict[str, Any]) -> None:
        """Logs the event on stderr and hands it to the desktop notifications; no secrets."""
        log.info("%s %s %s", event, finding.kind, finding.path)
        self.notifier.event(event, finding.kind, finding.path, finding.fingerprint,
                            {**fields, "project": project.describe(finding.details)})

    def settled(self, examined: int) -> None:
        """A burst is over (the queue quiet after ``examined`` items): its memory goes back."""
        release_memory()
        log.info("queue drained after %d item(s); memory handed back", examined)

    def notification_action(self, action: str, note: Note) -> None:
        """A notification's button: "protect" protects that file now, "ignore" (on an alert) and
        "keep" (in its grace period) allowlist it;
        on a protected file, "open" opens its vault item for import, "restore" restores it."""
        if action == Action.PROTECT:
            self.worker.force(note.path, note.fingerprint)
        elif action in (Action.IGNORE, KEEP):
            reason = "kept from a notification" if action == KEEP else "ignored from a notification"
            try:
                config.add_ignore(self.cfg, note.fingerprint, reason=reason)
            except CredguardError as exc:
                log.error("could not ignore %s: %s", note.path, exc.message)
                return
            self.reload("notification")
            if action == KEEP:  # examined again now, not at its deadline: it is allowlisted
                self.queue.put(note.path, "kept", sooner=True)
        elif action in (OPEN, RESTORE) and note.item_id:
            with contextlib.suppress(CredguardError):  # told in a notification already
                self.item_action(action, note.item_id, "notification", note.path)

    def item_action(self, action: str, item_id: str, via: str, path: str = "") -> dict[str, Any]:
        """"Open for import" or "Restore" vault item ``item_id`` (:mod:`.importstep`), pressed
        on a notification or in the tray (``via``): audited, told in a notification, answered
        ``{"action", "path", ...}``; a refusal is told too, and raised. ``path``: where the
        item's file was, for the refusal's text."""
        from credguard.daemon import importstep  # loaded when first asked: a lean daemon
        from credguard.handoff.restore import RESTORED, fingerprint_of

        what = "open it for import" if action == OPEN else "restore it"
        try:
            if action == OPEN:
                done = importstep.open_copy(self.vault, item_id, self.open_copies)
            else:
                done = importstep.restore_file(self.cfg, self.vault, item_id,
                                               self._apply_allowlist)
        except CredguardError as exc:
            log.warning("could not %s (vault item %s): %s", what, item_id, exc.message)
            path = path or self.recent.path_of(item_id)
            self.notifier.event("refused", "", path, "", {"reason": what, "detail": exc.message})
            raise
        record, fingerprint = done.record, fingerprint_of(done.record)
        if done.copy is not None:
            copy = done.copy
            self.audit("opened", path=str(copy.directory), item_id=item_id,
                       duration=opened.DEFAULT_SECONDS, reason=via)
            until = time.strftime("%H:%M", time.localtime(copy.expires))
            detail = (f"A RAM-only copy for {opened.DEFAULT_SECONDS // 60} min: removed at "
                      f"{until}, or sooner by 'credguard close {item_id[:8]}'."
                      + (" Its path is on the clipboard." if done.clipboard else ""))
            self.notifier.event("opened", record.kind, done.path, fingerprint,
                                {"detail": detail, "item_id": item_id})
            return {"action": action, "path": done.path, "expires": copy.expires,
                    "clipboard": done.clipboard}
        self.audit("restored", path=done.path, kind=record.kind, fingerprint=fingerprint,
                   item_id=item_id, reason=RESTORED, detail=f"from the {via}")
        self.notifier.event("restored", record.kind, done.path, fingerprint, {"item_id": item_id})
        return {"action": action, "path": done.path, "fingerprint": fingerprint}

    def _apply_allowlist(self) -> None:
        """A restore's allowlist entry, in force before its file is written (or ConfigError)."""
        result = self.reload("restore")
        if not result.get("reloaded"):
            error = (result.get("config_error") or {}).get("error", "no reason given")
            raise ConfigError(f"the configuration was refused, so the file would be protected "
                              f"again: {error}")

    def protector(self) -> Protector:
        if self._protector is None:
            if self.vault is None:
                self.vault = open_vault(self.cfg)
            self._protector = Protector(self.cfg, self.vault, one_at_a_time=self._protecting)
        return self._protector

    def keystore_lost(self, reason: str) -> None:
        if self.mode is Mode.PROTECTING:
            self._set_mode(Mode.ALERT_ONLY, reason)
        elif self.mode is Mode.ALERT_ONLY and reason != self.mode_reason:
            self.mode_reason = reason  # still alert-only, for a new reason: status says which
            log.info("still alert-only: %s", reason)

    def _set_mode(self, mode: Mode, reason: str = "") -> None:
        self.mode, self.mode_reason = mode, reason
        log.warning("mode %s%s", mode, f": {reason}" if reason else "")
        self.audit("mode", mode=mode, reason=reason)
        self.notifier.mode(mode, reason)
        if mode is Mode.ALERT_ONLY:  # also after a pause that began in alert-only mode
            self.keystore_retrier.wake()

    # -- start-up -------------------------------------------------------------------------

    def _new_watcher(self) -> Watcher:
        self._watched = list(self.roots)
        return Watcher(self.roots, self._candidate, self._rescan, settle=SETTLE)

    def _candidate(self, path: str, reason: str) -> None:
        if not self.queue.put(path, reason):
            self.reconciler.request(None, "queue-full")

    def _rescan(self, root: str | None, reason: str) -> None:
        self.reconciler.request(root, reason)

    def _open_keystore(self) -> bool:
        """Open the vault and make sure its key is there; True when protecting. Alert-only
        until then: nothing falls back to plaintext, and a locked keyring is no keystore.
        Leaving alert-only, the findings that waited are queued again and the roots rescanned
        (a finding the worker was still deciding on as the mode changed is found again)."""
        try:
            vault = open_vault(self.cfg)
            vault.ensure_key()
        except CredguardError as exc:
            self.vault = None
            self.keystore_lost(exc.message)
            return False
        self.vault, self._protector = vault, None
        if self.mode is Mode.ALERT_ONLY:
            self._set_mode(Mode.PROTECTING)
            self.worker.requeue_waiting()
            self.reconciler.request(None, "keystore-available")
        return True

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=f"credguard-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def start(self) -> None:
        self.server.start()  # fails if another daemon answers on the socket
        self.audit("started", pid=os.getpid(), version=_version())
        # The notifier connects on its first notification: an idle daemon loads no D-Bus code.
        self._open_keystore()
        self._spawn("worker", self.worker.run)
        self._spawn("keystore", self.keystore_retrier.run)
        self._spawn("open-copies", self.open_copies.run)
        self.reconciler.start()
        self.watcher.start()
        self.reconciler.request(None, "start")
        sd_notify("READY=1")
        log.info("started: mode %s, watching %d root(s)", self.mode, len(self.roots))

    # -- control --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        keystore = self.vault.keystore.name if self.vault is not None else self.mode_reason
        protected, oldest = self.protected.count()
        return {
            "running": True,
            "pid": os.getpid(),
            "since": self.since,
            "mode": self.current_mode(),
            "mode_reason": self.mode_reason,
            "keystore": keystore,
            "roots": self.watcher.status(),
            "queue": len(self.queue),
            "last_scan": self.reconciler.last,
            "protected_count": protected,  # from the audit log: survives restarts
            "protected_since": oldest,  # the audit log's oldest kept record
            "protected_this_run": self.worker.protected_count,
            **self.worker.at_risk.snapshot(),  # at_risk, at_risk_count, at_risk_shown_max
            "config_error": self.config_error,  # a refused reload: the old config is in force
        }

    def current_mode(self) -> Mode:
        if self._paused_until is not None:
            if time.monotonic() < self._paused_until:
                return Mode.PAUSED
            self.resume()
        return self.mode

    def pause(self, seconds: float | None) -> None:
        self._paused_until = time.monotonic() + seconds if seconds else float("inf")
        self._before_pause = self.mode
        self._set_mode(Mode.PAUSED)

    def resume(self) -> None:
        if self._paused_until is None:
            return
        self._paused_until = None
        self._set_mode(self._before_pause)
        self.worker.requeue_waiting()
        self.reconciler.request(None, "resumed")

    def handle(self, cmd: str, args: dict[str, Any]) -> dict[str, Any] | Streamed:
        if cmd == "scan":  # on a scan thread of the control server's (server.BACKGROUND)
            return self.scan_now(args.get("paths"))
        mode = self.current_mode()  # expire a timed pause
        if cmd == "protect":  # on a thread of its own too
            return protect_reply(self.cfg, mode, self.protector, self.keystore_lost, args)
        if cmd == "exec":  # likewise
            return exec_reply(self.cfg, mode, self.vault, self.keystore_lost, args)
        if cmd == "opened":  # `credguard open` hands over its copy's timer
            return opened_reply(self.cfg, self.open_copies, args)
        if cmd == "status":
            return self.status()
        if cmd == "pause":
            self.pause(args.get("seconds"))
            self.audit("paused", duration=args.get("seconds"))
            return {"mode": Mode.PAUSED}
        if cmd == "resume":
            self.resume()
            self.audit("resumed")
            return {"mode": self.mode}
        if cmd == "reload":  # answered once applied or refused: the client waits for that
            return self.reload("request")
        if cmd == "alerts":  # the tray's icon
            return {"count": self.alerts.count(args.get("since"))}
        if cmd == "recent":  # the tray's recent menu
            vault = self.vault
            return {"items": self.recent.items(vault.has if vault else lambda _: True)}
        if cmd == "item":  # the recent menu's "Open for import" and "Restore"
            return self.item_action(args["action"], args["id"], "tray")
        raise StateError(f"unknown command {cmd}")  # validated by the server already

    def scan_now(self, wanted: list[str] | None) -> Streamed:
        """"scan now" (a control request, run off the server thread): scanned here and now,
        findings queued for action, then the result streamed in parts (any size)."""
        roots = explicit_roots(wanted) if wanted else list(self.roots)
        result = Scanner(self.cfg).scan(roots)
        for finding in result.findings:
            self.worker.submit(finding, "scan")
        self.audit(
            "scanned",
            files=result.files,
            dirs=result.dirs,
            count=len(result.findings),
            reason="requested",
        )
        return scan_reply(result)

    # -- main loop, reload, stop ----------------------------------------------------------

    def reload(self, trigger: str) -> dict[str, Any]:
        """Re-read the configuration, on any thread; a bad one is refused and the running one
        kept (the refusal shown in ``status`` until a good reload). The main loop re-watches."""
        with self._reload_lock:
            self.config_watch.mark()  # a change from here on is seen again
            try:
                cfg = config.load()
            except CredguardError as exc:
                return self._refuse(exc.message, trigger)
            self.cfg = cfg
            self._protector = None
            self.notifier.enabled = cfg["notifications.enabled"]
            self.roots = configured_roots(cfg)
            self.config_error = None
            self.audit("reloaded", reason=trigger)
        self.reconciler.request(None, "reload")
        return {"reloaded": True, "files": [str(p) for p in self.config_watch.files]}

    def _refuse(self, message: str, trigger: str) -> dict[str, Any]:
        log.error("reload refused, keeping the running configuration: %s", message)
        self.config_error = {"error": message, "time": now_iso(), "trigger": trigger}
        self.audit("reload-refused", reason=trigger, detail=message[:4000])
        return {"reloaded": False, "config_error": self.config_error}

    def _rewatch(self) -> None:
        """Watch the roots a reload changed (on the main thread: a new watch may take a while)."""
        if self.roots != self._watched:
            self.watcher.stop()
            self.watcher = self._new_watcher()
            self.watcher.start()

    def run_forever(self) -> None:
        while not self._stop.is_set():
            if self._reload.wait(1.0) and not self._stop.is_set():
                self._reload.clear()
                self.reload("signal")
            elif self.config_watch.changed() and not self._stop.is_set():
                self.reload("file-change")
            self._rewatch()
            self.current_mode()

    def request_stop(self, *_: object) -> None:
        self._stop.set()
        self._reload.set()  # wake the main loop

    def request_reload(self, _sig: int, _frame: FrameType | None) -> None:
        self._reload.set()

    def stop(self) -> None:
        sd_notify("STOPPING=1")
        deadline = time.monotonic() + STOP_BUDGET
        targets.stop_all()  # a running import target's group is ended; its source is kept
        self.watcher.stop()
        self.reconciler.stop()
        self.queue.close()  # the worker finishes its current transaction, then returns
        self.keystore_retrier.wake()
        self.open_copies.wake()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.notifier.close()
        self.server.stop()
        self.audit("stopped", pid=os.getpid())


def _version() -> str:
    from credguard import __version__

    return __version__


def single_instance() -> int:
    """Hold the per-user daemon lock (released when the process dies), or refuse."""
    directory = paths.user_state_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = lock.try_exclusive(directory / "daemon.lock")
    if fd is None:
        raise StateError(
            "another credguard daemon is already running for this user (see 'credguard status')"
        )
    return fd


def run(cfg: config.Config) -> int:
    """The ``credguard daemon`` command: runs until SIGTERM/SIGINT (and Ctrl+Break on
    Windows); SIGHUP reloads where there is one (everywhere: the control command ``reload``).
    Windows' Task Scheduler ends a task with TerminateProcess, which no handler sees: like a
    SIGKILL, the journal makes that safe (:mod:`credguard.protect.recovery`)."""
    lock_fd = single_instance()
    limit_malloc_arenas()
    daemon = Daemon(cfg)
    stops = [getattr(signal, name, None) for name in ("SIGTERM", "SIGINT", "SIGBREAK")]
    for stop in stops:
        if stop is not None:
            signal.signal(stop, daemon.request_stop)
    reload = getattr(signal, "SIGHUP", None)  # POSIX only
    if reload is not None:
        signal.signal(reload, daemon.request_reload)
    try:
        daemon.start()
        daemon.run_forever()
    finally:
        daemon.stop()
        os.close(lock_fd)
    return 0
