"""A vaulted credential back as a file (``credguard restore``, the "Restore" button of a
notification and of the tray's recent menu): the one way credguard writes a credential file to
disk on the user's request.

The user asked for the file itself, so its content is allowlisted first ("restored by the
user") and the running daemon re-reads its configuration before a byte is written: it leaves
the file. The write never replaces anything: the file is created exclusively (an existing name,
a link, even a dangling one, or a FIFO there is refused), 0600, in a directory opened without
following a link and owned by the user; it is fsynced, and so is the directory. Whatever is
refused leaves no file and no allowlist entry behind. Who asked (the command line, the daemon)
says how the configuration is re-read and where a warning goes; auditing is theirs too.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING

from credguard.errors import CredguardError, InputError
from credguard.fs import at

if TYPE_CHECKING:
    from credguard.config import Config
    from credguard.vault.format import Record

__all__ = ["RESTORED", "fingerprint_of", "target_for", "write_back"]

RESTORED = "restored by the user"
Reload = Callable[[], None]  # makes a running daemon apply the allowlist; raises if it refuses
Warn = Callable[[str], None]


def fingerprint_of(record: Record) -> str:
    return f"sha256:{record.sha256}"


def target_for(record: Record, to: str | None = None) -> str:
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


def write_back(cfg: Config, record: Record, target: str, reload: Reload, warn: Warn,
               elsewhere: str = "give another path with --to") -> str:
    """Allowlist ``record``'s content, have it applied (``reload``), then write the content as
    the new file ``target``: its fingerprint. InputError (nothing written, no entry left) when
    the file exists or the directory is not the user's; what ``reload`` raises (the entry
    removed again) when a running daemon refuses the configuration. An entry that cannot be
    removed again is ``warn``-ed about, never raised over the first error. ``elsewhere`` says
    how to put the file somewhere else (the caller knows how)."""
    fingerprint = fingerprint_of(record)
    exists = f"{target} exists; restore never replaces a file: {elsewhere}"
    parent_fd = _open_parent(target)
    try:
        name = os.path.basename(target)
        if _exists(name, parent_fd):
            raise InputError(exists)
        added = _allowlist(cfg, fingerprint, reload, warn)
        try:
            from credguard.fs.atomic import write_new_at

            write_new_at(parent_fd, name, record.data)
        except BaseException as exc:
            if added:
                _forget(fingerprint, reload, warn)
            if isinstance(exc, FileExistsError):
                raise InputError(exists) from None
            if isinstance(exc, OSError):
                raise InputError(f"cannot write {target}: {exc.strerror}") from None
            raise
    finally:
        os.close(parent_fd)
    return fingerprint


def _open_parent(target: str) -> int:
    """The directory ``target`` goes in, opened without following a link in its last
    component; InputError unless it is a directory of this user's."""
    parent = os.path.dirname(target)
    try:
        fd = at.open_dir(parent)
    except FileNotFoundError:
        raise InputError(f"{parent} does not exist; nothing was written") from None
    except OSError as exc:
        raise InputError(f"{parent} is not a directory credguard can write in (a link, not a "
                         f"directory, or {exc.strerror}); nothing was written") from None
    st = at.fstat(fd)
    if not at.mine(st):
        os.close(fd)
        raise InputError(f"{parent} belongs to uid {st.st_uid}, not to you; restore writes "
                         "only into your own directories; nothing was written")
    return fd


def _exists(name: str, dir_fd: int) -> bool:
    try:
        at.stat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def _allowlist(cfg: Config, fingerprint: str, reload: Reload, warn: Warn) -> bool:
    """Allowlist the content before it is written, so a running daemon leaves the file; True
    if this added the entry (it is removed again if the write fails)."""
    from credguard import config

    added = config.add_ignore(cfg, fingerprint, RESTORED)
    try:
        reload()
    except BaseException:  # the daemon refused the configuration: it would protect the file
        if added:
            _forget(fingerprint, reload, warn)
        raise
    return added


def _forget(fingerprint: str, reload: Reload, warn: Warn) -> None:
    from credguard import config

    try:
        config.remove_ignore(config.load(), fingerprint)
        reload()
    except CredguardError as exc:
        warn(f"the allowlist entry for {fingerprint} stays: {exc.message}")
