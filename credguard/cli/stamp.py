"""The validated-config stamp: how ``credguard check``'s quick path (:mod:`credguard.cli.quick`)
knows, without loading it, that the configuration loads without a word.

Loading the configuration (tomllib, the schema, the layers) would cost the quick path most of
its time, yet it matters even when nothing is found: a broken file fails the command (exit 3), a
value the managed policy keeps out is a warning. With no configuration file and no setting in
the environment there is nothing to say. Otherwise, after a full ``check`` loaded the
configuration without a warning, :func:`remember` writes a stamp of everything that load
depended on: the variables that decide the paths, the managed policy's and the user config's
paths, their exact bytes (or that there is none), and each file's type, mode and owner (a link
and its target). :func:`known_quiet` builds the same bytes from the present state and compares:
equal, and the configuration is known to load in silence; anything else, and the full path
loads it (and stamps it anew).

The stamp, ``validated-config`` in the user's state dir, holds no secret (configuration files
hold none; of the environment only the path variables). It is read only when it is a regular
file of this user's that no one else may write, never through a link; written atomically
(0600), only into a state dir that exists. Only ``os``, ``stat``, ``sys`` and lean credguard
modules are imported until a stamp is written.
"""

from __future__ import annotations

import os
import stat
import sys

from credguard import xdg
from credguard.fs import at, flags

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    from credguard.config import Config

NAME = "validated-config"
FORMAT = b"credguard validated-config 1\n"  # another version never matches: the full path runs
# Every setting's variable (config.settings.SETTINGS' ``env``; a test keeps them equal): one set
# means the full path, which parses it.
SETTING_VARIABLES = frozenset({
    "CREDGUARD_SCAN_MAX_FILE_SIZE", "CREDGUARD_SCAN_SNIFF_MAX_SIZE", "CREDGUARD_SCAN_EXTRA_ROOTS",
    "CREDGUARD_SCAN_EXCLUDE", "CREDGUARD_SCAN_ONE_FILE_SYSTEM", "CREDGUARD_SCAN_ALLOW_IGNORE",
    "CREDGUARD_VAULT_KEYSTORE", "CREDGUARD_VAULT_KEYRING_TIMEOUT", "CREDGUARD_PROTECT_PASSES",
    "CREDGUARD_PROTECT_ALLOW_HARD_LINKS", "CREDGUARD_PROTECT_DELAY", "CREDGUARD_SEAL_ON_PLAINTEXT",
    "CREDGUARD_SEAL_LOCK_TIMEOUT", "CREDGUARD_NOTIFICATIONS_ENABLED",
    "CREDGUARD_POLICY_AZURE_PUBLISHSETTINGS", "CREDGUARD_POLICY_AZURE_PUBLISH_PROFILE",
    "CREDGUARD_POLICY_VS_PUBLISH_PROFILE_SECRET", "CREDGUARD_POLICY_AZURE_CLI_TOKEN_CACHE",
    "CREDGUARD_POLICY_AZURE_CLI_SERVICE_PRINCIPAL", "CREDGUARD_POLICY_AZURE_CLI_LEGACY_CERTIFICATE",
    "CREDGUARD_POLICY_AZURE_POWERSHELL_CACHE", "CREDGUARD_POLICY_AZD_CREDENTIAL_CACHE",
})  # fmt: skip
# The variables that decide where the files are (the configuration's and the stamp's).
PATH_VARIABLES = ("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME",
                  xdg.CONFIG_OVERRIDE)
MAX_CONFIG = 1 << 20  # config.files.MAX_SIZE (a test keeps them equal): larger is refused there
MAX_STAMP = 2 * MAX_CONFIG + (64 << 10)

# A configuration file as the stamp records it: (its record, its bytes or None when absent).
Read = tuple[bytes, bytes | None]


def config_files() -> tuple[str, str] | None:
    """The managed policy's path and the user config's, as the full path names them; None when
    only it can tell (not plain XDG, or a path ``Path`` would spell otherwise)."""
    paths = sys.modules.get("credguard.paths")  # loaded: its answer (tests repoint the policy)
    policy = str(paths.managed_policy_file()) if paths is not None else xdg.LINUX_POLICY
    user = xdg.user_config_file() if xdg.plain_xdg() else None
    if user is None or os.path.normpath(user) != user or os.path.normpath(policy) != policy:
        return None
    return policy, user


def known_quiet() -> bool:
    """Whether loading the configuration now would succeed without a warning, by what the
    files and the environment are (no file, no setting) or by the stamp."""
    if any(name in os.environ for name in SETTING_VARIABLES):
        return False
    files = config_files()
    present = None if files is None else current(files)
    if present is None:
        return False
    data, contents = present
    return contents == (None, None) or _read_stamp(stamp_path(), len(data)) == data


def stamp_path() -> str:
    return os.path.join(xdg.state_dir(), NAME)


def current(files: tuple[str, str]) -> tuple[bytes, tuple[bytes | None, bytes | None]] | None:
    """The stamp the present state makes, and the two files' bytes (None: no such file); None
    when a file cannot be read as :func:`credguard.config.files.read_text` reads it (then
    only the full path can say what happens)."""
    reads = [_read_config(path) for path in files]
    policy, user = reads
    if policy is None or user is None:
        return None
    fields = [FORMAT]
    for name in PATH_VARIABLES:
        value = os.environ.get(name)
        shown = b"-" if value is None else b"=" + os.fsencode(value)  # unset is not empty
        fields += [_field(name.encode()), _field(shown)]
    for label, path, (record, content) in zip((b"policy", b"user"), files, (policy, user),
                                             strict=True):
        fields += [_field(label), _field(os.fsencode(path)), _field(record),
                   _field(b"" if content is None else content)]
    return b"".join(fields), (policy[1], user[1])


def _field(value: bytes) -> bytes:
    return b"%d:%s," % (len(value), value)


def _mode(st: os.stat_result) -> bytes:
    return b"%o %d" % (st.st_mode, st.st_uid)


def _read_config(path: str) -> Read | None:
    """Configuration file ``path`` read by config.files' rules: a link is followed to its
    target, whose parent is opened without following a link and the file beneath it with
    O_NOFOLLOW|O_NONBLOCK; only a regular file of at most :data:`MAX_CONFIG` bytes is read.
    None for anything read_text would refuse, or might."""
    try:
        named: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        named = None
    except OSError:
        return None
    target = path
    if named is not None and stat.S_ISLNK(named.st_mode):
        target = os.path.realpath(path)
    parent, name = os.path.split(target)
    try:
        parent_fd = at.open_dir(parent or ".")
        try:
            fd = at.open(name, flags.READ, dir_fd=parent_fd)
        finally:
            os.close(parent_fd)
    except FileNotFoundError:
        return (b"absent", None) if named is None else None
    except OSError:
        return None
    try:
        opened = os.fstat(fd)
        if named is None or not stat.S_ISREG(opened.st_mode) or opened.st_size > MAX_CONFIG:
            return None  # (none a moment ago: it came meanwhile)
        data = read_up_to(fd, MAX_CONFIG + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG:
        return None
    link = b" -> " + os.fsencode(target) if target != path else b""
    return _mode(named) + link + b"; " + _mode(opened), data


def read_up_to(fd: int, size: int) -> bytes:
    """At most ``size`` bytes from ``fd``: fewer only at the end of the file."""
    chunks: list[bytes] = []
    got = 0
    while got < size:
        chunk = os.read(fd, size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_stamp(path: str, size: int) -> bytes | None:
    """The stamp at ``path`` when it is ``size`` bytes long, a regular file (not a link) of this
    user's that no one else may write; else None."""
    try:
        fd = os.open(path, flags.READ)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or not at.mine(st)
                or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or st.st_size != size
                or size > MAX_STAMP):
            return None
        return read_up_to(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def remember(cfg: Config) -> None:
    """After a full ``check`` loaded ``cfg``: stamp it, when it loaded without a warning, the
    quick path could use the stamp (no setting in the environment, a configuration file
    present) and the files still hold what was loaded. Any error only leaves the stamp as it
    was: the quick path then finds none that matches."""
    from credguard.config.merge import exclude_checked

    if cfg.warnings or exclude_checked(cfg.values, cfg.sources):
        return  # a warning, or one that depends on the file system: never stamped
    if any(name in os.environ for name in SETTING_VARIABLES):
        return
    try:
        files = config_files()
        present = None if files is None else current(files)
        if files is None or present is None or present[1] == (None, None):
            return
        data, contents = present
        loaded = tuple((path, None if text is None else text.encode("utf-8"))
                       for path, text in cfg.texts)
        if loaded != tuple(zip(files, contents, strict=True)):
            return  # changed since it was loaded (or not the bytes that were parsed)
        path = stamp_path()
        if _read_stamp(path, len(data)) == data:
            return
        state = os.lstat(os.path.dirname(path))
        if stat.S_ISDIR(state.st_mode) and at.mine(state):
            _write(path, data)
    except OSError:
        return


def _write(path: str, data: bytes) -> None:
    from pathlib import Path

    from credguard.fs.atomic import atomic_write

    atomic_write(Path(path), data)  # a new file renamed over the old: never through a link
