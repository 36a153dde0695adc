"""Import targets: configured commands that receive a credential the way ``exec`` hands it over.

The vault is always the first target (the protect transaction writes it); these run after it,
each with ``{file}`` in its command replaced by a RAM-only copy and the ``CREDGUARD_*``
variables set. Exit 0 means imported; anything else keeps the source and is reported. A
target's own output goes to credguard's stderr so it can never corrupt ``--json`` output.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from credguard.config import Target
from credguard.errors import CredguardError
from credguard.handoff import environment, ramdir
from credguard.vault.format import Record

_STDERR_FD = 2  # the process's real stderr, even when sys.stderr is replaced
TIMEOUT = 300.0  # seconds; a hung uploader must not hold a transaction (and its file) forever


@dataclass(frozen=True)
class TargetResult:
    name: str
    ok: bool
    detail: str  # "exit 0", "exit 3", "timed out after 300 s", "command not found"

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def applicable(targets: tuple[Target, ...], kind: str) -> list[Target]:
    return [t for t in targets if kind in t.kinds]


def _run_one(target: Target, record: Record, item_id: str) -> TargetResult:
    try:
        with ramdir.private_ram_dir() as ram:
            given = environment.prepare(record, item_id, ram, None)
            file = given.env.get("CREDGUARD_FILE", "")
            argv = [part.replace("{file}", file) for part in target.command]
            env = environment.child_environment(os.environ, given)
            proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=_STDERR_FD,
                                  timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return TargetResult(target.name, False, f"timed out after {TIMEOUT:.0f} s")
    except FileNotFoundError:
        return TargetResult(target.name, False, f"command not found: {target.command[0]}")
    except OSError as exc:
        return TargetResult(target.name, False, f"cannot start: {exc.strerror}")
    except CredguardError as exc:
        return TargetResult(target.name, False, exc.message)
    return TargetResult(target.name, proc.returncode == 0, f"exit {proc.returncode}")


def run_targets(targets: tuple[Target, ...], record: Record, item_id: str) -> list[TargetResult]:
    """Run every target that applies to the record's kind, in order; all are attempted."""
    return [_run_one(t, record, item_id) for t in applicable(targets, record.kind)]
