"""Configuration: defaults < managed policy < user config < environment < flags.

Every effective value knows where it came from (``credguard config show``). A value the managed
policy sets cannot be weakened by a later layer: for settings with a strength order the stronger
value wins and the rejected one is reported as a warning; settings without an order are locked.
Unknown keys and bad values are errors that name the file and line (or the variable).
:mod:`~credguard.config.settings` is the schema, :mod:`~credguard.config.sources` reads the files
and the environment; this module layers them and appends allowlist entries to the user's file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credguard import paths
from credguard.config.settings import BY_KEY, SETTINGS, Setting
from credguard.config.sources import (
    CONFIG_VERSION,
    FINGERPRINT,
    IgnoreEntry,
    Layer,
    Target,
    from_env,
    load_layer,
)
from credguard.errors import ConfigError

__all__ = [
    "SETTINGS", "Config", "IgnoreEntry", "Setting", "Target", "add_ignore", "load", "toml_string",
]


@dataclass(frozen=True)
class Config:
    """The effective configuration; ``values[key]`` with ``sources[key]`` saying where from."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]
    ignores: tuple[IgnoreEntry, ...] = ()
    targets: tuple[Target, ...] = ()
    warnings: tuple[str, ...] = ()
    user_file: Path = field(default_factory=paths.user_config_file)
    policy_file: Path = field(default_factory=paths.managed_policy_file)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def ignored(self, fingerprint: str) -> IgnoreEntry | None:
        for entry in self.ignores:
            if entry.fingerprint == fingerprint:
                return entry
        return None


class _Merged:
    """The effective values and their sources while the layers are put on top of each other."""

    def __init__(self) -> None:
        self.values = {s.key: s.default for s in SETTINGS}
        self.sources = dict.fromkeys(self.values, "default")
        self.managed: dict[str, Any] = {}  # what later layers may not weaken
        self.warnings: list[str] = []

    def apply(self, key: str, value: Any, source: str) -> None:
        """Put one layer's value on top, unless it would weaken the managed policy."""
        setting, managed = BY_KEY[key], self.managed
        if setting.additive:
            self.values[key] = tuple(dict.fromkeys((*self.values[key], *value)))
            was = self.sources[key]
            self.sources[key] = source if was == "default" else f"{was} + {source}"
            return
        if key in managed:
            strong = setting.at_least_as_strong
            if strong is None:
                if value != managed[key]:
                    self.warnings.append(f"{source}: {key} is locked by the managed policy; "
                                         "ignored")
                return
            if not strong(value, managed[key]):
                self.warnings.append(f"{source}: {key} = {_shown(value)} would weaken the "
                                     "managed policy; ignored")
                return
        self.values[key] = value
        self.sources[key] = source

    def layer(self, layer: Layer | None) -> None:
        """Put every value of a file on top (nothing if there is no such file)."""
        if layer is not None:
            for key, value in layer.values.items():
                self.apply(key, value, layer.where[key])


def _shown(value: Any) -> str:
    """A value as a warning shows it: a policy table's locations and actions as plain text."""
    if isinstance(value, dict):
        value = {str(key): str(action) for key, action in value.items()}
    return repr(value)


def load(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Build the effective configuration from every layer."""
    policy_path, user_path = paths.managed_policy_file(), paths.user_config_file()
    admin = load_layer("managed policy", policy_path)
    user = load_layer("user config", user_path)
    merged = _Merged()
    merged.layer(admin)
    if admin is not None:
        merged.managed = {k: v for k, v in admin.values.items() if not BY_KEY[k].additive}
    merged.layer(user)
    for key, value, source in from_env(os.environ if env is None else env):
        merged.apply(key, value, source)
    for key, value in (flags or {}).items():
        merged.apply(key, value, "command line")
    ignores = list(admin.ignores) if admin else []
    if user is not None and user.ignores:
        if merged.values["scan.allow_ignore"]:
            ignores.extend(user.ignores)
        else:
            merged.warnings.append(f"{user_path}: [[ignore]] entries are disabled by "
                                   "scan.allow_ignore = false "
                                   f"({merged.sources['scan.allow_ignore']})")
    targets = [*(admin.targets if admin else []), *(user.targets if user else [])]
    return Config(merged.values, merged.sources, tuple(ignores), tuple(targets),
                  tuple(merged.warnings), user_path, policy_path)


def toml_string(value: str) -> str:
    """A TOML basic string: JSON's escaping with ASCII output is valid TOML."""
    import json

    return json.dumps(value, ensure_ascii=True)


def add_ignore(cfg: Config, fingerprint: str, reason: str) -> bool:
    """Append an ``[[ignore]]`` entry to the user config; False if it was already there.

    Appending keeps the user's comments and layout; the file is rewritten atomically (0600).
    """
    if not FINGERPRINT.match(fingerprint):
        raise ConfigError(f"not a fingerprint: {fingerprint!r} (expected sha256:<64 hex digits>)")
    if not cfg["scan.allow_ignore"]:
        raise ConfigError("the managed policy disables the allowlist (scan.allow_ignore = false, "
                          f"{cfg.sources['scan.allow_ignore']})")
    if cfg.ignored(fingerprint) is not None:
        return False
    path = cfg.user_file
    try:
        old = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = ("# credguard user configuration (see 'credguard config show')\n"
               f"version = {CONFIG_VERSION}\n")
    entry = (f"\n[[ignore]]\nfingerprint = {toml_string(fingerprint)}\n"
             f"reason = {toml_string(reason)}\n")
    new = old.rstrip("\n") + "\n" + entry
    import tomllib  # a rare command: not loaded by every start-up

    try:
        tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: cannot append an [[ignore]] entry to this file ({exc}); "
                          "add it by hand") from None
    from credguard.fs.atomic import atomic_write  # likewise

    atomic_write(path, new.encode("utf-8"))
    return True
