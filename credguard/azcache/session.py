"""Running a command against a sealed cache: ``credguard az`` and ``credguard exec --azure-*``.

A *session* is a 0700 directory on a RAM file system (never on disk: without one credguard
refuses) named ``session-<pid>-<random>`` next to ``credguard exec``'s directories:

- ``root/``: what the tool sees (``AZURE_CONFIG_DIR``/``AZD_CONFIG_DIR``/``HOME`` point here):
  the sealed secret files plus the real root's other files (:mod:`credguard.azcache.overlay`);
- ``base/``: the sealed files as handed out, the common ancestor for merging afterwards;
- ``session.json``: tool, real root, the copies' digests, and the pids (with start times) of
  credguard and of the command.

Afterwards the secret files the command left are merged by entry into whatever is sealed *now*
(another session may have committed meanwhile) and committed as a new bundle; changed non-secret
files go back to the real root; the session directory is deleted. A session whose credguard was
killed is finished by the next credguard command once its command has exited too: what the
command left is written back if it is complete (valid JSON), the rest is dropped.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from credguard.azcache import msalmerge, overlay
from credguard.azcache.seal import Sealer, merge_file, write_into
from credguard.azcache.sealstore import Store
from credguard.azcache.tools import Tool, by_id
from credguard.config import Config
from credguard.errors import CredguardError, NotFoundError, StateError
from credguard.fs.atomic import atomic_write, write_new
from credguard.fs.read import Unreadable, read_path
from credguard.handoff import child, environment, ramdir
from credguard.vault.store import Vault

__all__ = ["PREFIX", "recover_sessions", "run_sealed", "stale_sessions"]

PREFIX = "session-"
SESSION_VERSION = 1
Warn = Callable[[str], None]


def _warn(message: str) -> None:
    print(f"credguard: warning: {message}", file=sys.stderr)


def _start_time(pid: int) -> float | None:
    """When process ``pid`` started; None if it does not exist or has exited (a zombie)."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except (psutil.Error, OSError):
        return None


def _running(pid: object, started: object) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs (not a reused pid)."""
    if not isinstance(pid, int) or not isinstance(started, int | float):
        return False
    now = _start_time(pid)
    return now is not None and abs(now - started) < 0.05


def _meta_path(session: Path) -> Path:
    return session / "session.json"


def _write_meta(session: Path, meta: dict[str, Any]) -> None:
    atomic_write(_meta_path(session), json.dumps(meta).encode())


def _files_under(directory: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for current, dirnames, filenames in os.walk(directory, followlinks=False):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(current, d))]
        for name in filenames:
            path = Path(current, name)
            rel = path.relative_to(directory).as_posix()
            with contextlib.suppress(Unreadable):
                found[rel] = read_path(path, overlay.READ_CAP).data
    return found


# ---- running ---------------------------------------------------------------------------------


def run_sealed(cfg: Config, vault: Vault, tool: Tool, command: list[str],
               env: dict[str, str]) -> int:
    """Run ``command`` with ``tool`` pointed at a private RAM copy of its sealed cache; return
    the command's exit status. Refuses (before running anything) when the cache is not sealed
    or there is no RAM file system."""
    root = tool.root()
    sealer = Sealer(cfg, vault)
    base = ramdir.ram_base()
    if base is None:
        raise StateError(
            "no RAM file system for the private cache directory (no tmpfs user runtime dir or "
            f"shared-memory dir); credguard refuses to put the {tool.title} cache on disk")
    files = sealer.checkout(tool, root)  # plaintext that reappeared (`az login`) joins first
    if files is None:
        raise NotFoundError(f"the {tool.title} cache in {root} is not sealed: run "
                            f"`credguard seal {tool.id}` first")
    ramdir.sweep(base)
    session = base / f"{PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
    session.mkdir(mode=0o700)
    try:
        private = session / "root"
        private.mkdir(mode=0o700)
        for rel, data in files.items():
            target = session / "base" / rel
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_new(target, data)
        handed = {rel: tool.rewrite(rel, data, root, private) for rel, data in files.items()}
        meta: dict[str, Any] = {
            "version": SESSION_VERSION, "tool": tool.id, "root": os.fspath(root),
            "owner_pid": os.getpid(), "owner_started": _start_time(os.getpid()),
            "child_pid": None, "child_started": None, "copied": {}}
        _write_meta(session, meta)
        meta["copied"] = overlay.build(tool, root, private, handed)
        _write_meta(session, meta)
        child_env = environment.child_environment(env, environment.Handover())
        child_env.update(tool.child_env(private, env))

        def started(pid: int) -> None:
            meta["child_pid"], meta["child_started"] = pid, _start_time(pid)
            _write_meta(session, meta)

        return child.run(command, child_env, started)
    finally:
        _finish(cfg, vault, session, _warn)


def _finish(cfg: Config, vault: Vault, session: Path, warn: Warn) -> bool:
    """Write ``session`` back and delete it; if the vault cannot take the changes now, keep it
    (in RAM, 0700) for the next credguard command and say so. True if it is gone."""
    try:
        write_back(cfg, vault, session, warn)
    except (CredguardError, OSError) as exc:
        why = exc.message if isinstance(exc, CredguardError) else exc.strerror or str(exc)
        warn(f"could not write the changes back to the vault ({why}); they stay in "
             f"{session} (RAM, private) until the next credguard command")
        return False
    shutil.rmtree(session, ignore_errors=True)
    return True


# ---- writing back ----------------------------------------------------------------------------


def write_back(cfg: Config, vault: Vault, session: Path, warn: Warn) -> None:
    """Merge what the command left in ``session`` into the sealed cache; copy changed
    non-secret files back to the real root."""
    try:
        meta = json.loads(read_path(_meta_path(session), 1 << 20).data)
        tool = by_id(meta["tool"])
        root = Path(meta["root"])
        copied = dict(meta.get("copied") or {})
    except (Unreadable, ValueError, KeyError, TypeError, CredguardError):
        warn(f"{session}: no readable session record; nothing written back")
        return
    if meta.get("child_pid") is None:
        return  # the command never ran: nothing changed (a half-built copy is no deletion)
    private = session / "root"
    base = _files_under(session / "base")
    changes = overlay.collect(tool, private, copied, set(base))
    ours: dict[str, bytes] = {}
    for rel, data in changes.secrets.items():
        if rel.endswith(".json"):
            try:
                msalmerge.loads(data, rel)
            except msalmerge.MergeError:
                warn(f"{rel} was left incomplete (not valid JSON; was the command "
                     "interrupted?): the sealed copy is kept")
                if rel in base:
                    ours[rel] = base[rel]
                continue
        ours[rel] = tool.rewrite(rel, data, private, root)
    for rel in changes.unreadable:
        warn(f"{rel} could not be read back; not written back")
        if rel in base:
            ours[rel] = base[rel]
    _commit_secrets(cfg, vault, tool, root, base, ours, warn)
    for rel, (data, mode) in sorted(changes.files.items()):
        try:
            write_into(root, rel, data, mode)
        except (OSError, CredguardError) as exc:
            warn(f"{root / rel} not updated: {getattr(exc, 'message', None) or exc}")


def _commit_secrets(cfg: Config, vault: Vault, tool: Tool, root: Path, base: dict[str, bytes],
                    ours: dict[str, bytes], warn: Warn) -> None:
    store = Store()
    sealer = Sealer(cfg, vault, store)
    with store.locked():
        seal = sealer.finish_unseal_if_needed(tool, root)
        if seal is None:
            _into_plaintext(tool, root, base, ours, warn)
            return
        theirs = sealer.sealed_files(tool, seal)
        merged = _merge_all(base, ours, theirs, warn)
        if merged != theirs:
            sealer.commit(tool, root, seal, merged)


def _merge_all(base: dict[str, bytes], ours: dict[str, bytes], theirs: dict[str, bytes],
               warn: Warn) -> dict[str, bytes]:
    merged = dict(theirs)
    for rel in sorted(set(base) | set(ours)):
        b, o, t = base.get(rel), ours.get(rel), theirs.get(rel)
        if o is None:  # the command deleted it (e.g. a logout)
            if t is not None and (b is None or t == b):
                merged.pop(rel, None)
            continue
        if t is None:
            if b is None or o != b:  # new, or changed here after another session removed it
                merged[rel] = o
            continue
        try:
            merged[rel], conflicts = merge_file(rel, b, o, t)
        except msalmerge.MergeError as exc:
            warn(f"{rel}: {exc}; the sealed copy is kept")
            continue
        for conflict in conflicts:
            warn(conflict)
    return merged


def _into_plaintext(tool: Tool, root: Path, base: dict[str, bytes], ours: dict[str, bytes],
                    warn: Warn) -> None:
    """The cache was unsealed while the command ran: merge into the plaintext files."""
    warn(f"the {tool.title} cache was unsealed while the command ran; its changes go to the "
         "plaintext files")
    for rel, data in sorted(ours.items()):
        if base.get(rel) == data:
            continue
        try:
            current: bytes | None = read_path(root / rel, overlay.READ_CAP).data
        except Unreadable:
            current = None
        merged = data if current is None else merge_file(rel, base.get(rel), data, current)[0]
        write_into(root, rel, merged, 0o600)


# ---- sessions a killed credguard left --------------------------------------------------------


def stale_sessions(base: Path | None = None) -> list[Path]:
    """Session directories whose credguard and command have both exited."""
    base = base if base is not None else ramdir.ram_base(create=False)
    if base is None:
        return []
    stale = []
    for entry in sorted(base.glob(f"{PREFIX}*")):
        if entry.is_symlink() or not entry.is_dir():
            continue
        try:
            meta = json.loads(read_path(_meta_path(entry), 1 << 20).data)
        except (Unreadable, ValueError):
            meta = {}
        pid_text = entry.name[len(PREFIX):].split("-", 1)[0]
        owner = int(pid_text) if pid_text.isdigit() else None
        if not isinstance(meta, dict):
            meta = {}
        if _running(meta.get("owner_pid", owner), meta.get("owner_started")) or (
            not meta and owner is not None and ramdir.alive(owner)
        ):
            continue
        if _running(meta.get("child_pid"), meta.get("child_started")):
            continue  # the command still runs: finish when it has exited
        stale.append(entry)
    return stale


def recover_sessions(cfg: Config, vault: Vault, base: Path | None = None,
                     warn: Warn = _warn) -> list[str]:
    """Write back and remove the sessions a killed credguard left; notes for the user."""
    notes = []
    for session in stale_sessions(base):
        if _finish(cfg, vault, session, warn):
            notes.append(f"{session.name}: finished a session a stopped credguard left "
                         "(changes written back, private copy deleted)")
    return notes

