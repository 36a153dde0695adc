"""Reading a configuration file (the user's config, the managed policy) through the safe bounded
reader, and parsing it as TOML within a nesting limit.

Promises: only a regular file is read, never a FIFO, device or directory (nothing blocks), never
more than :data:`MAX_SIZE` bytes; TOML nested deeper than :data:`MAX_DEPTH` levels is refused
before the schema sees it. Every refusal is a :class:`~credguard.errors.ConfigError` naming the
file. A configuration file that is a symbolic link is followed, as dotfiles managers and
configuration management make them: the file is the user's (or the administrator's) own choice,
like the parents of a path named on the command line; the link's target is then read by the same
rules, its final component never through another link.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from credguard.errors import ConfigError
from credguard.fs.read import SkipReason, Unreadable, read_path

MAX_SIZE = 1 << 20  # a configuration is a few KiB; anything near this is not one
MAX_DEPTH = 16  # the schema needs 3 levels: [policy] kind = { location = action }


def resolve(path: Path) -> Path:
    """Where the configuration file ``path`` really is: its link followed, if it is one."""
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            return Path(os.path.realpath(path))
    except OSError:
        pass  # not there (or not examinable): reading it says which
    return path


def read_text(path: Path) -> str | None:
    """The text of configuration file ``path``; None if there is no such file.

    A link to nothing is an error, not a missing file: someone meant a configuration there.
    """
    target = resolve(path)
    shown = str(path) if target == path else f"{path} (a link to {target})"
    try:
        data = read_path(target, MAX_SIZE).data
    except Unreadable as exc:
        if exc.reason is SkipReason.NOT_FOUND and target == path:
            return None
        raise ConfigError(f"{shown}: cannot read: {_why(exc)}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{shown}: not UTF-8 text") from None


def _why(exc: Unreadable) -> str:
    if exc.reason is SkipReason.NOT_REGULAR:
        return "not a regular file (a FIFO, device or directory is never read as configuration)"
    if exc.reason is SkipReason.TOO_LARGE:
        return f"larger than {MAX_SIZE >> 10} KiB, too large for a configuration file"
    if exc.reason is SkipReason.NOT_FOUND:
        return "no such file"
    return exc.detail or str(exc.reason)


def parse_toml(path: Path, text: str) -> dict[str, Any]:
    """``text`` (read from ``path``) as a TOML document; a ConfigError if it is not valid TOML
    or is nested deeper than :data:`MAX_DEPTH` (tomllib recurses once per level)."""
    import tomllib  # only once a file exists: most machines have no managed policy

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        doc = None
    if doc is None or _too_deep(doc):
        raise ConfigError(f"{path}: nested more than {MAX_DEPTH} levels deep; "
                          "not a credguard configuration")
    return doc


def _too_deep(doc: dict[str, Any]) -> bool:
    """Whether any value sits more than :data:`MAX_DEPTH` tables or arrays deep (no recursion:
    the check must hold for the documents it refuses)."""
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = (value.values() if isinstance(value, dict)
                    else value if isinstance(value, list) else ())
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return False
