"""``credguard restore ID [--to PATH] [--remove]``: a vaulted credential back as a file, where
it came from or at ``--to`` (:mod:`credguard.handoff.restore` writes it, allowlisted first:
``credguard ignore --remove FINGERPRINT`` re-arms protection). The item leaves the vault only
with ``--remove``, once the file is durable. Each restore is an audit record.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

from credguard.cli.common import load_config
from credguard.cli.display import display_path
from credguard.vault.itemid import ID_HELP, resolve_id

if TYPE_CHECKING:
    import argparse


def register(sub: Any) -> None:
    p = sub.add_parser(
        "restore", help="put a vaulted credential back as a file (and allowlist it)",
        description="Write vault item ID back where it came from, or to --to PATH: a new 0600 "
                    "file, never over an existing one or through a link, in a directory you "
                    "own. Its content is allowlisted first ('restored by the user'), so the "
                    "daemon leaves it; 'credguard ignore --remove FINGERPRINT' re-arms "
                    "protection. The item stays in the vault unless --remove. Exit 4: the file "
                    "exists or the directory is not yours; 9: no such item; 3: the managed "
                    "policy disables the allowlist.")
    p.add_argument("id", metavar="ID", help=ID_HELP)
    p.add_argument("--to", metavar="PATH",
                   help="write it here instead: a new file's path, or a directory of yours to "
                        "put it in under its original name")
    p.add_argument("--remove", action="store_true",
                   help="then remove the item from the vault")
    p.set_defaults(func=run_restore)


def run_restore(args: argparse.Namespace) -> int:
    from credguard.handoff import restore
    from credguard.vault.access import open_vault

    cfg = load_config()
    vault = open_vault(cfg)
    item_id = resolve_id(vault, args.id)
    record = vault.get(item_id)
    target = restore.target_for(record, args.to)
    fingerprint = restore.write_back(cfg, record, target, _reload, _warn)
    _audit(target, record.kind, fingerprint, item_id)
    print(f"restored {item_id} ({record.kind}) to {display_path(target)} (mode 0600)")
    print(f"allowlisted ({restore.RESTORED}); 'credguard ignore --remove {fingerprint}' re-arms "
          "protection")
    if args.remove:
        vault.remove(item_id)
        _audit(target, record.kind, fingerprint, item_id, "removed from the vault")
        print(f"removed {item_id} from the vault")
    return 0


def _warn(message: str) -> None:
    print(f"credguard: warning: {display_path(message)}", file=sys.stderr)


def _reload() -> None:
    from credguard.cli.daemon_cmd import reload_daemon
    from credguard.control import DaemonNotRunning

    with contextlib.suppress(DaemonNotRunning):
        reload_daemon()


def _audit(path: str, kind: str, fingerprint: str, item_id: str, detail: str = "") -> None:
    from credguard.cli.common import audit
    from credguard.handoff.restore import RESTORED

    extra = {"detail": detail} if detail else {}
    audit("restored", path=path, kind=kind, fingerprint=fingerprint, item_id=item_id,
          reason=RESTORED, **extra)
