"""``credguard restore ID [--to PATH] [--remove]``: a vaulted credential back as a file.

The user asked for the file itself (to import it into a tool whose dialog wants a file), so
it is written back where it came from, or at ``--to``, and its content is allowlisted first
("restored by the user"): the daemon leaves it, and ``credguard ignore --remove FINGERPRINT``
re-arms protection. The write never replaces anything: the file is created exclusively (an
existing name, a link, even a dangling one, or a FIFO there is refused), 0600, in a directory
opened without following a link and owned by the user; it is fsynced, and so is the directory,
before the item is removed from the vault (``--remove`` only). Whatever is refused leaves no
file and no allowlist entry behind.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from typing import TYPE_CHECKING, Any

from credguard.cli.common import load_config
from credguard.cli.display import display_path
from credguard.errors import CredguardError, InputError
from credguard.vault.itemid import ID_HELP, resolve_id

if TYPE_CHECKING:
    import argparse

    from credguard.config import Config
    from credguard.vault.format import Record

RESTORED = "restored by the user"


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
    from credguard.vault.access import open_vault

    cfg = load_config()
    vault = open_vault(cfg)
    item_id = resolve_id(vault, args.id)
    record = vault.get(item_id)
    target = _target(record, args.to)
    fingerprint = f"sha256:{record.sha256}"
    shown = display_path(target)
    parent_fd = _open_parent(target)
    try:
        name = os.path.basename(target)
        if _exists(name, parent_fd):
            raise InputError(f"{target} exists; restore never replaces a file: give another "
                             "path with --to")
        added = _allowlist(cfg, fingerprint)
        try:
            from credguard.fs.atomic import write_new_at

            write_new_at(parent_fd, name, record.data)
        except BaseException as exc:
            if added:
                _forget(fingerprint)
            if isinstance(exc, FileExistsError):
                raise InputError(f"{target} exists; restore never replaces a file: give "
                                 "another path with --to") from None
            if isinstance(exc, OSError):
                raise InputError(f"cannot write {target}: {exc.strerror}") from None
            raise
    finally:
        os.close(parent_fd)
    _audit(target, record.kind, fingerprint, item_id)
    print(f"restored {item_id} ({record.kind}) to {shown} (mode 0600)")
    print(f"allowlisted ({RESTORED}); 'credguard ignore --remove {fingerprint}' re-arms "
          "protection")
    if args.remove:
        vault.remove(item_id)
        _audit(target, record.kind, fingerprint, item_id, "removed from the vault")
        print(f"removed {item_id} from the vault")
    return 0


def _target(record: Record, to: str | None) -> str:
    """Where the file goes: ``to`` (into it, under the original name, when it is a real
    directory), else where the item came from."""
    if to is None:
        return os.path.join(record.directory, record.name)
    path = os.path.abspath(to)
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            return os.path.join(path, record.name)
    except OSError:
        pass
    return path


def _open_parent(target: str) -> int:
    """The directory ``target`` goes in, opened without following a link in its last
    component; InputError unless it is a directory of this user's."""
    from credguard.fs.flags import DIR

    parent = os.path.dirname(target)
    try:
        fd = os.open(parent, DIR)
    except FileNotFoundError:
        raise InputError(f"{parent} does not exist; nothing was written") from None
    except OSError as exc:
        raise InputError(f"{parent} is not a directory credguard can write in (a link, not a "
                         f"directory, or {exc.strerror}); nothing was written") from None
    st = os.fstat(fd)
    if st.st_uid != os.getuid():
        os.close(fd)
        raise InputError(f"{parent} belongs to uid {st.st_uid}, not to you; restore writes "
                         "only into your own directories; nothing was written")
    return fd


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def _allowlist(cfg: Config, fingerprint: str) -> bool:
    """Allowlist the content before it is written, so a running daemon leaves the file; True
    if this added the entry (it is removed again if the write fails)."""
    from credguard import config

    added = config.add_ignore(cfg, fingerprint, RESTORED)
    try:
        _reload()
    except BaseException:  # the daemon refused the configuration: it would protect the file
        if added:
            _forget(fingerprint)
        raise
    return added


def _forget(fingerprint: str) -> None:
    from credguard import config

    try:
        config.remove_ignore(config.load(), fingerprint)
        _reload()
    except CredguardError as exc:
        print(f"credguard: warning: the allowlist entry for {fingerprint} stays: "
              f"{display_path(exc.message)}", file=sys.stderr)


def _reload() -> None:
    from credguard.cli.daemon_cmd import reload_daemon
    from credguard.control import DaemonNotRunning

    with contextlib.suppress(DaemonNotRunning):
        reload_daemon()


def _audit(path: str, kind: str, fingerprint: str, item_id: str, detail: str = "") -> None:
    from credguard.cli.common import audit

    extra = {"detail": detail} if detail else {}
    audit("restored", path=path, kind=kind, fingerprint=fingerprint, item_id=item_id,
          reason=RESTORED, **extra)
