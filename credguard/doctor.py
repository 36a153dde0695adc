"""``credguard doctor``: what credguard can and cannot do on this machine, and why.

Each check returns ``Check(name, ok, detail)``; ``essential`` checks (the keystore the vault
uses, the vault directory, a daemon that protects) decide the exit code, the others inform: the
first essential check that fails gives the code of what it found (:attr:`Check.code`).
Checks never raise. :func:`protection` is the one judgment of "protected or not" that both
``doctor`` and ``status`` print, so they never disagree; the roots the daemon cannot read are
the other (:func:`access_checks`, from the ``access`` that ``status`` shows per root).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credguard import paths
from credguard.config import Config
from credguard.errors import CredguardError, ExitCode
from credguard.policy import Mode


@dataclass(frozen=True)
class Check:
    """One line of doctor's report. ``code``: the exit code a failed essential check stands
    for (that of the error it met: 5 keystore, 7 unsafe or busy, 9 no daemon...)."""

    check: str
    ok: bool
    detail: str
    essential: bool = False
    code: int = field(default=ExitCode.OK, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "detail": self.detail,
                "essential": self.essential}


def exit_code(checks: list[Check]) -> int:
    """0 when every essential check passes, else the code of the first that fails (in report
    order: keystore, vault, daemon)."""
    failed = next((c for c in checks if c.essential and not c.ok), None)
    if failed is None:
        return ExitCode.OK
    return failed.code or ExitCode.INTERNAL  # a failed check without its code is a bug


@dataclass(frozen=True)
class Protection:
    """Whether a daemon protects this user's credentials now, and why (not), in one line;
    ``code`` is the exit code that "not protecting" stands for (:func:`protection`)."""

    protecting: bool
    reason: str
    code: int = ExitCode.OK


STATUS_TIMEOUT = 10.0  # seconds `credguard status` waits for the daemon's answer
DOCTOR_TIMEOUT = 5.0  # seconds doctor's daemon check waits (doctor checks more than that)


def daemon_status(timeout: float | None = None) -> dict[str, Any]:
    """The daemon's ``status`` answer, or ``{"running": False}`` when none runs; a daemon that
    does not answer within ``timeout`` (default :data:`STATUS_TIMEOUT`) raises its
    :class:`~credguard.control.DaemonError`."""
    from credguard import control

    try:
        return control.request("status", timeout=STATUS_TIMEOUT if timeout is None else timeout)
    except control.DaemonNotRunning:
        return {"running": False}


def protection(status: Mapping[str, Any]) -> Protection:
    """The one judgment, from a status answer: protecting only when a daemon runs in the
    ``protecting`` mode. Untrusted text (the mode reason) is returned as is: escape to print.
    Not protecting: no daemon is 9 (not found), alert-only 5 (it has no usable keystore),
    paused 1 (a finding: the user paused it)."""
    if not status.get("running"):
        return Protection(False, f"the credguard daemon is not running: nothing protects your "
                                 f"credentials; {start_hint()}", ExitCode.NOT_FOUND)
    mode = status.get("mode")
    if mode == Mode.PROTECTING:
        return Protection(True, f"the daemon protects (pid {status.get('pid')}, keystore "
                                f"{status.get('keystore')})")
    if mode == Mode.PAUSED:
        return Protection(False, "protection is paused: credentials are reported, not vaulted "
                                 "or deleted; run: credguard resume", ExitCode.FINDINGS)
    why = status.get("mode_reason") or "no usable keystore"
    return Protection(False, f"the daemon is in {mode} mode ({why}): credentials are reported, "
                             "not vaulted or deleted", ExitCode.KEYSTORE)


def start_command() -> str:
    """The command that starts the daemon: ``credguard start`` uses the installed service when
    its manager answers, else runs the daemon in the background (as ``install.sh`` does)."""
    return "credguard start"


def start_hint() -> str:
    """``start it with: credguard start``, and the per-user service when none is installed."""
    from credguard import service

    try:
        installed = service.backend().definition_path().is_file()
    except (CredguardError, OSError):
        installed = False
    if installed:
        return f"start it with: {start_command()}"
    return (f"start it with: {start_command()} (it runs in the background; to start it at "
            "each login install the per-user service: credguard service install)")


def ask_daemon() -> dict[str, Any] | CredguardError:
    """The daemon's status answer for doctor's checks, or why it gave none."""
    try:
        return daemon_status(timeout=DOCTOR_TIMEOUT)
    except CredguardError as exc:
        return exc


def daemon_checks(status: dict[str, Any] | CredguardError) -> Iterator[Check]:
    """The daemon: running and protecting (essential), then what it knows is left on disk."""
    if isinstance(status, CredguardError):
        yield Check("daemon", False, f"the daemon does not answer: {status.message}",
                    essential=True, code=status.exit_code)
        return
    verdict = protection(status)
    yield Check("daemon", verdict.protecting, verdict.reason, essential=True, code=verdict.code)
    count = status.get("at_risk_count") or 0
    if count:
        yield Check("at-risk", False, f"{count} credential file(s) left on disk; "
                                      "'credguard status' lists them and why")


def access_checks(roots: list[paths.Root],
                  status: dict[str, Any] | CredguardError) -> Iterator[Check]:
    """One failed "access" check per root that cannot be read, saying what to grant: as the
    running daemon found (on macOS the grant is its interpreter's, and a command run from a
    terminal has the terminal's), else as this process finds."""
    rows = status.get("roots") if isinstance(status, dict) else None
    if isinstance(rows, list) and all(isinstance(r, dict) and "access" in r for r in rows):
        who, refused = "the daemon", [str(r["access"]) for r in rows if r["access"]]
    else:  # no daemon answers, or one from before it said so
        from credguard.scan import access

        who, refused = "this process (no daemon says)", access.refused(roots)
    for advice in refused:
        yield Check("access", False, advice)
    if not refused:
        yield Check("access", True, f"{who} can read every root that exists")


def keystore_checks(cfg: Config) -> Iterator[Check]:
    from credguard.vault.access import advised, keystore_kind
    from credguard.vault.keystore import keyring_status
    from credguard.vault.store import check_private_dir, item_ids

    try:
        kind = keystore_kind(cfg)
    except CredguardError as exc:
        yield Check("vault", False, exc.message, essential=True, code=exc.exit_code)
        return
    status = keyring_status(cfg["vault.keyring_timeout"])
    reason = status.reason if status.usable else advised(status.reason)
    yield Check("keyring", status.usable, f"{status.name}: {reason}")
    if kind == "keyring":
        yield Check("keystore", status.usable, "the OS keyring (vault.keystore = "
                    f"{cfg['vault.keystore']!r}, {cfg.sources['vault.keystore']})",
                    essential=True, code=ExitCode.KEYSTORE)
    else:
        yield Check("keystore", True, "passphrase keystore (opted in); the OS keyring is unused")
    directory = paths.vault_dir()
    try:
        check_private_dir(directory)
        yield Check("vault", True, f"{directory} ({len(item_ids(directory))} item(s))",
                    essential=True)
    except CredguardError as exc:
        yield Check("vault", False, exc.message, essential=True, code=exc.exit_code)


def config_checks(cfg: Config) -> Iterator[Check]:
    """The managed policy, when there is one (where, what it locks), then each user value it
    keeps out and each other configuration warning: informative, never essential."""
    if cfg.policy_file.exists():
        locks = f"; locks {', '.join(sorted(cfg.locked))}" if cfg.locked else ""
        yield Check("policy", True, f"managed policy {cfg.policy_file}{locks}")
    for o in cfg.overridden:
        what = f"[[{o.key}]] {o.value!r}" if o.key in ("targets", "ignore") else o.key
        yield Check("ignored", False, f"{what} from {o.source}: {o.reason} ({o.by})")
    overridden = {o.message for o in cfg.overridden}
    for warning in cfg.warnings:
        if warning not in overridden:
            yield Check("config", False, warning)


# What is known not to work on the systems credguard is not yet tested on (issue 19), said by
# doctor there, as in the README's "Platforms". Linux has no line: it is the tested platform.
PLATFORM_LIMITS = {
    "macos": "macOS: never run on a Mac, checked only by a simulation on Linux (README, "
             "'Platforms'). Known limits: the Python that runs the daemon needs your consent "
             "for Downloads, Desktop and Documents and Full Disk Access for the Trash, else "
             "those folders are not protected (the 'access' line names them); no RAM file "
             "system, so 'exec' needs --no-file and 'open', 'seal', 'az' sessions and import "
             "targets refuse; notifications have no buttons: use the tray menu or the "
             "commands they name",
    "windows": "Windows: never run on Windows, checked only by a simulation on Linux (README, "
               "'Platforms'). Known limits: no RAM file system, so 'exec' needs --no-file and "
               "'open', 'seal', 'az' sessions and import targets refuse; ACLs are neither read "
               "nor changed (your profile's are trusted; 'harden' does nothing); the task "
               "ends the daemon with TerminateProcess and restarts it within a minute of a "
               "crash",
    "other": "this system is not tested: credguard is tested on Linux only",
}


def platform_check(name: str | None = None) -> Check | None:
    """A failed "platform" check naming what does not work on this system; None on Linux."""
    limits = PLATFORM_LIMITS.get(paths.platform_name() if name is None else name)
    return None if limits is None else Check("platform", False, limits)


def ram_check() -> Check:
    from credguard.handoff import ramdir

    try:
        base = ramdir.ram_base()
    except CredguardError as exc:
        return Check("ram-dir", False, exc.message)
    return Check("ram-dir", base is not None,
                 f"{base} (tmpfs)" if base else "no RAM file system: 'exec' needs --no-file")


def sealed_checks() -> Iterator[Check]:
    """Which Azure tool caches are sealed, and which sit in plaintext (one line per tool)."""
    from credguard.azcache.sealstore import Store
    from credguard.azcache.tools import TOOLS

    try:
        seals = Store().all()
    except CredguardError as exc:
        yield Check("sealed", False, exc.message)
        return
    for tool in TOOLS.values():
        root = tool.root()
        seal = next((s for s in seals if s.tool == tool.id and s.root == str(root)), None)
        if seal is not None:
            yield Check(f"sealed:{tool.id}", True,
                        f"sealed in the vault ({len(seal.files)} file(s), since "
                        f"{seal.sealed_at}); run it through `credguard "
                        f"{'az' if tool.id == 'azure-cli' else 'exec --' + tool.id + ' -- CMD'}`")
            continue
        try:
            plain = tool.secret_names(root)
        except OSError:
            plain = []
        if plain:
            yield Check(f"sealed:{tool.id}", True,
                        f"not sealed: {len(plain)} plaintext secret file(s) in {root} (optional: "
                        f"`credguard seal {tool.id}` keeps them encrypted)")


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def _count_dirs(root: Path, limit: int) -> int:
    """Directories a recursive inotify watch of ``root`` needs (stops counting at ``limit``)."""
    count = 0
    for _dirpath, dirnames, _files in os.walk(root):
        count += 1
        if count >= limit:
            break
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(_dirpath, d))]
    return count


def inotify_check(roots: list[paths.Root]) -> Check:
    """The kernel's watch limit against what the roots need (one watch per directory)."""
    watches = (_read_int("/proc/sys/fs/inotify/max_user_watches")
               if paths.platform_name() == "linux" else None)
    if watches is None:
        return Check("inotify", True, "no inotify here: the native watcher of this system is used")
    needed = sum(_count_dirs(r.path, watches) if r.recursive else 1
                 for r in roots if r.path.is_dir())
    queued = _read_int("/proc/sys/fs/inotify/max_queued_events")
    detail = (f"roots need ~{needed} watch(es) of max_user_watches {watches}; "
              f"max_queued_events {queued} (overflows are caught by rescans)")
    if needed > watches // 2:
        detail += ("; raise it: sudo sysctl fs.inotify.max_user_watches=524288 (roots beyond "
                   "the limit are polled)")
    return Check("inotify", needed <= watches // 2, detail)


def filesystem_checks(roots: list[paths.Root]) -> Iterator[Check]:
    """What deletion can promise on each root's file system."""
    from credguard.fs import facts

    seen: set[str] = set()
    for root in roots:
        if not root.path.is_dir():
            continue
        kind = facts.fs_type(root.path) or "unknown"
        limits = facts.deletion_limits(root.path)
        key = f"{kind}|{'|'.join(limits)}"
        if key in seen:
            continue
        seen.add(key)
        summary = "; ".join(limits[:2]) if limits else "no known limit"
        yield Check("filesystem", True, f"{root.path} ({kind}): {summary}")


def optional_checks() -> Iterator[Check]:
    """Notifications, tray and service: reported when those components are installed."""
    for name, probe in _OPTIONAL:
        try:
            yield probe()
        except ImportError:
            yield Check(name, False, "not available in this installation")
        except Exception as exc:  # a probe must never break doctor
            yield Check(name, False, f"could not check: {type(exc).__name__}")


def _service_check() -> Check:
    from credguard import service

    backend = service.backend()
    state = backend.status()
    ok = bool(state.get("installed"))
    detail = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in state.items()
                       if isinstance(v, bool))
    return Check("service", ok, f"{backend.name}: {detail}")


def _notification_check() -> Check:
    from credguard.notify import desktop

    ok, detail = desktop.server_available()
    return Check("notifications", ok, detail)


def _tray_check() -> Check:
    from credguard.tray import icon

    ok, detail = icon.host_available()
    return Check("tray", ok, detail)


_OPTIONAL: tuple[tuple[str, Callable[[], Check]], ...] = (
    ("notifications", _notification_check),
    ("tray", _tray_check),
    ("service", _service_check),
)


def run_checks(cfg: Config) -> list[Check]:
    from credguard.scan import configured_roots

    roots = configured_roots(cfg)
    platform = platform_check()
    status = ask_daemon()
    return [*([platform] if platform else []), *keystore_checks(cfg), *daemon_checks(status),
            *access_checks(roots, status), *config_checks(cfg), ram_check(),
            inotify_check(roots), *filesystem_checks(roots), *sealed_checks(),
            *optional_checks()]
