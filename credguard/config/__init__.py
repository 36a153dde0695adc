"""Configuration: defaults < managed policy < user config < environment < flags.

Every effective value knows where it came from (``credguard config show``). A value the managed
policy sets cannot be weakened by a later layer: for settings with a strength order the stronger
value wins and the rejected one is reported as a warning; settings without an order are locked,
and so is every key, section or table (``targets``, ``ignore``) the policy names in ``locked``.
What a later layer lost is kept with its source (:attr:`Config.overridden`). Unknown keys and bad
values are errors that name the file and line (or the variable). The managed policy is read from
a fixed place (:func:`credguard.paths.managed_policy_file`), never one the environment names.
:mod:`~credguard.config.settings` is the schema, :mod:`~credguard.config.files` reads a file
safely, :mod:`~credguard.config.sources` reads the files and the environment,
:mod:`~credguard.config.layers` parses a file (loaded only when one exists),
:mod:`~credguard.config.merge` layers them; this module builds the result and appends allowlist
entries to the user's file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from credguard import paths
from credguard.config.files import parse_toml, read_text, resolve
from credguard.config.merge import Merged, Overridden
from credguard.config.settings import BY_KEY, SETTINGS, Setting
from credguard.config.sources import (
    CONFIG_VERSION,
    FINGERPRINT,
    IgnoreEntry,
    Target,
    from_env,
    parse_layer,
)
from credguard.errors import ConfigError, UsageError

__all__ = [
    "BY_KEY", "SETTINGS", "Config", "IgnoreEntry", "Overridden", "Setting", "Target", "add_ignore",
    "check_fingerprint", "load", "toml_string",
]


class Config:
    """The effective configuration; ``values[key]`` with ``sources[key]`` saying where from,
    ``locked`` what the managed policy locks (key or table -> where), ``overridden`` the later
    layers' values it kept out. Not changed once built. (A plain class: every command loads
    one, and a frozen dataclass costs about 0.5 ms to create.)"""

    __slots__ = ("ignores", "locked", "overridden", "policy_file", "sources", "targets",
                 "texts", "user_file", "values", "warnings")

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str],
                 ignores: tuple[IgnoreEntry, ...] = (), targets: tuple[Target, ...] = (),
                 warnings: tuple[str, ...] = (), user_file: Path | None = None,
                 policy_file: Path | None = None, locked: Mapping[str, str] | None = None,
                 overridden: tuple[Overridden, ...] = (),
                 texts: tuple[tuple[str, str | None], ...] = ()) -> None:
        self.values = values
        self.sources = sources
        self.ignores = ignores
        self.targets = targets
        self.warnings = warnings
        self.user_file = paths.user_config_file() if user_file is None else user_file
        self.policy_file = paths.managed_policy_file() if policy_file is None else policy_file
        self.locked: Mapping[str, str] = {} if locked is None else locked
        self.overridden = overridden
        # (path, the text parsed, None: no file) of the policy and the user's file: what
        # `credguard protect` compares to ask the daemon (credguard.control.protect)
        self.texts = texts

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def ignored(self, fingerprint: str) -> IgnoreEntry | None:
        for entry in self.ignores:
            if entry.fingerprint == fingerprint:
                return entry
        return None


def load(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Build the effective configuration from every layer."""
    policy_path, user_path = paths.managed_policy_file(), paths.user_config_file()
    policy_text, user_text = read_text(policy_path), read_text(user_path)
    admin = parse_layer("managed policy", policy_path, policy_text, managed=True)
    user = parse_layer("user config", user_path, user_text)
    merged = Merged(admin)
    merged.layer(user)
    for key, value, source in from_env(os.environ if env is None else env):
        merged.apply(key, value, source)
    for key, value in (flags or {}).items():
        merged.apply(key, value, "command line")
    ignores = merged.ignores(admin, user)
    targets = merged.targets(admin, user)
    merged.check_exclude()
    return Config(merged.values, merged.sources, ignores, targets, tuple(merged.warnings),
                  user_path, policy_path, dict(merged.locked), tuple(merged.overridden),
                  ((str(policy_path), policy_text), (str(user_path), user_text)))


def toml_string(value: str) -> str:
    """A TOML basic string: JSON's escaping with ASCII output is valid TOML."""
    import json

    return json.dumps(value, ensure_ascii=True)


def check_fingerprint(fingerprint: str) -> None:
    """UsageError unless ``fingerprint`` is one as ``scan`` prints it (``sha256:<64 hex>``)."""
    if not FINGERPRINT.match(fingerprint):
        raise UsageError(f"not a fingerprint: {fingerprint!r} (expected sha256:<64 hex digits>, "
                         "as scan prints it); the allowlist was not changed")


def remove_ignore(cfg: Config, fingerprint: str) -> bool:
    """Remove ``fingerprint``'s ``[[ignore]]`` entry from the user config, re-arming protection
    for that content; False if the user config has none. The entry's table (from its
    ``[[ignore]]`` line and the blank lines before it, to the comments before the next table or
    the end) is cut out, the rest of the file kept as it is, and the result is parsed before it
    is written (atomically, 0600): it must hold everything it held before but that one entry,
    else nothing is written. An entry of the managed policy is the administrator's:
    ConfigError."""
    check_fingerprint(fingerprint)
    entry = cfg.ignored(fingerprint)
    if entry is None:
        return False
    if not entry.source.startswith(f"{cfg.user_file}:"):
        raise ConfigError(f"{fingerprint} is allowlisted by the managed policy ({entry.source}); "
                          "only its administrator can remove it; the allowlist was not changed")
    path = resolve(cfg.user_file)
    old = read_text(path)
    if old is None:  # pragma: no cover - the entry was read from it a moment ago
        return False
    lines = old.splitlines(keepends=True)
    at = int(entry.source.rsplit(":", 1)[1]) - 1
    start = next((i for i in range(at, -1, -1) if lines[i].lstrip().startswith("[")), None)
    end = next((i for i in range(at + 1, len(lines)) if lines[i].lstrip().startswith("[")),
               len(lines))
    refused = ConfigError(f"cannot remove the [[ignore]] entry of {fingerprint} from "
                          f"{cfg.user_file} by itself; remove it by hand")
    if start is None or lines[start].strip().replace(" ", "") != "[[ignore]]":
        raise refused
    while start > 0 and not lines[start - 1].strip():
        start -= 1  # the blank lines that set the entry apart go with it
    while end > at + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip()[:1] == "#"):
        end -= 1  # comments (and blank lines) before the next table are that table's: kept
    new = "".join(lines[:start] + lines[end:])
    before, after = parse_toml(path, old), parse_toml(path, new)
    kept = [i for i in before.get("ignore", []) if i.get("fingerprint") != fingerprint]
    if ({k: v for k, v in after.items() if k != "ignore"}
            != {k: v for k, v in before.items() if k != "ignore"}
            or after.get("ignore", []) != kept):
        raise refused
    from credguard.fs.atomic import atomic_write  # as add_ignore

    atomic_write(path, new.encode("utf-8"))
    return True


def add_ignore(cfg: Config, fingerprint: str, reason: str) -> bool:
    """Append an ``[[ignore]]`` entry to the user config; False if it was already there.

    Appending keeps the user's comments and layout; the file is rewritten atomically (0600).
    A user config that is a link (a dotfiles repository) stays one: its target is rewritten.
    """
    check_fingerprint(fingerprint)
    if not cfg["scan.allow_ignore"]:
        raise ConfigError("the managed policy disables the allowlist (scan.allow_ignore = false, "
                          f"{cfg.sources['scan.allow_ignore']}); the allowlist was not changed")
    if "ignore" in cfg.locked:
        raise ConfigError(f"the managed policy locks the allowlist ({cfg.locked['ignore']}); "
                          "the allowlist was not changed")
    if cfg.ignored(fingerprint) is not None:
        return False
    path = resolve(cfg.user_file)
    old = read_text(path)
    if old is None:
        old = ("# credguard user configuration (see 'credguard config show')\n"
               f"version = {CONFIG_VERSION}\n")
    entry = (f"\n[[ignore]]\nfingerprint = {toml_string(fingerprint)}\n"
             f"reason = {toml_string(reason)}\n")
    new = old.rstrip("\n") + "\n" + entry
    try:
        parse_toml(path, new)
    except ConfigError as exc:
        raise ConfigError(f"cannot append an [[ignore]] entry ({exc.message}); "
                          "add it by hand") from None
    from credguard.fs.atomic import atomic_write  # likewise

    atomic_write(path, new.encode("utf-8"))
    return True
