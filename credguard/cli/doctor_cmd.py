"""``credguard doctor``: what credguard can and cannot do on this machine, and why."""

from __future__ import annotations

import argparse
import json
from typing import Any

from credguard.cli.common import load_config
from credguard.errors import CredguardError, ExitCode


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check the keystore, vault and RAM directory")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_doctor)


def _checks() -> tuple[list[dict[str, Any]], bool]:
    from credguard import paths, ramdir
    from credguard.vault.access import keystore_kind
    from credguard.vault.keystore import keyring_status
    from credguard.vault.store import check_private_dir, item_ids

    cfg = load_config()
    checks: list[dict[str, Any]] = []
    healthy = True

    def add(name: str, ok: bool, detail: str) -> None:
        checks.append({"check": name, "ok": ok, "detail": detail})

    try:
        kind = keystore_kind(cfg)
    except CredguardError as exc:
        add("vault", False, exc.message)
        return checks, False
    status = keyring_status(cfg["vault.keyring_timeout"])
    add("keyring", status.usable, f"{status.name}: {status.reason}")
    if kind == "keyring":
        healthy = status.usable
        add("keystore", status.usable, "the OS keyring (vault.keystore = "
            f"{cfg['vault.keystore']!r}, {cfg.sources['vault.keystore']})")
    else:
        add("keystore", True, "passphrase keystore (opted in); the OS keyring is not used")
    directory = paths.vault_dir()
    try:
        check_private_dir(directory)
        count = len(item_ids(directory))
        add("vault", True, f"{directory} ({count} item(s))")
    except CredguardError as exc:
        healthy = False
        add("vault", False, exc.message)
    try:
        base = ramdir.ram_base()
    except CredguardError as exc:
        add("ram-dir", False, exc.message)
    else:
        add("ram-dir", base is not None,
            f"{base} (tmpfs)" if base else "no RAM file system: 'exec' needs --no-file")
    return checks, healthy


def run_doctor(args: argparse.Namespace) -> int:
    checks, healthy = _checks()
    if args.json:
        print(json.dumps({"version": 1, "healthy": healthy, "checks": checks}, indent=2))
    else:
        for c in checks:
            mark = "ok " if c["ok"] else "!! "
            print(f"{mark} {c['check']:9} {c['detail']}")
    return ExitCode.OK if healthy else ExitCode.KEYSTORE
