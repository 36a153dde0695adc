"""Configuration: defaults < managed policy < user config < environment < flags.

Every effective value knows where it came from (``credguard config show``). A value the managed
policy sets cannot be weakened by a later layer: for settings with a strength order the stronger
value wins and the rejected one is reported as a warning; settings without an order are locked.
Unknown keys and bad values are errors that name the file and line (or the variable).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credguard import paths, policy
from credguard.errors import ConfigError
from credguard.fs.atomic import atomic_write

CONFIG_VERSION = 1
_FINGERPRINT = re.compile(r"^sha256:[0-9a-f]{64}$")
_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]i?B?|B)?\s*$", re.IGNORECASE)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(raw: object) -> int:
    """Bytes from an int or a string such as ``"4 MiB"``; raises ValueError with a reason."""
    if isinstance(raw, bool):
        raise ValueError("expected a size such as 4194304 or \"4 MiB\"")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and (m := _SIZE.match(raw)):
        value = int(m.group(1)) * _UNITS[(m.group(2) or "")[:1].upper()]
    else:
        raise ValueError("expected a size such as 4194304 or \"4 MiB\"")
    if not 1024 <= value <= 1 << 32:
        raise ValueError("must be between 1 KiB and 4 GiB")
    return value


def parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
        return raw.lower() in _TRUE
    raise ValueError("expected true or false")


def parse_str_list(raw: object) -> tuple[str, ...]:
    if isinstance(raw, str):  # environment form: os.pathsep-separated
        return tuple(p for p in raw.split(os.pathsep) if p)
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return tuple(raw)
    raise ValueError("expected a list of strings")


def parse_keystore(raw: object) -> str:
    if raw in ("auto", "keyring", "passphrase"):
        return str(raw)
    raise ValueError('expected "auto", "keyring" or "passphrase"')


def parse_seconds(raw: object) -> float:
    try:
        value = float(raw) if isinstance(raw, int | float | str) and raw is not True else None
    except ValueError:
        value = None
    if value is None or not 0.1 <= value <= 600:
        raise ValueError("expected a number of seconds between 0.1 and 600")
    return value


def parse_passes(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError("expected a whole number of passes from 1 to 35")
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("expected a whole number of passes from 1 to 35") from None
    if not 1 <= value <= 35:
        raise ValueError("expected a whole number of passes from 1 to 35")
    return value


def parse_on_plaintext(raw: object) -> str:
    if raw in ("reseal", "alert"):
        return str(raw)
    raise ValueError('expected "reseal" or "alert"')


def _reseal_is_stronger(a: Any, b: Any) -> bool:
    return bool(a == "reseal" or b == "alert")


def _larger(a: Any, b: Any) -> bool:
    return bool(a >= b)


def _false_is_stronger(a: Any, b: Any) -> bool:
    return (not a) or bool(b)


@dataclass(frozen=True)
class Setting:
    """One configuration key: how to parse it, its default, and (optionally) its strength order.

    ``at_least_as_strong(a, b)`` says whether value ``a`` protects at least as much as ``b``;
    None means a managed value is simply locked. ``additive`` lists are unioned across layers
    (adding entries only ever adds coverage).
    """

    key: str
    parse: Callable[[object], Any]
    default: Any
    doc: str
    at_least_as_strong: Callable[[Any, Any], bool] | None = None
    additive: bool = False

    @property
    def env(self) -> str:
        return "CREDGUARD_" + self.key.upper().replace(".", "_").replace("-", "_")


SETTINGS: tuple[Setting, ...] = (
    Setting("scan.max_file_size", parse_size, 4 << 20,
            "files larger than this are skipped (reported as too-large), never read",
            _larger),
    Setting("scan.sniff_max_size", parse_size, 1 << 20,
            "largest text/XML file opened for content sniffing in download-like folders",
            _larger),
    Setting("scan.extra_roots", parse_str_list, (),
            "more directories scanned recursively by 'credguard scan' with no PATH",
            additive=True),
    Setting("scan.exclude", parse_str_list, (),
            "glob patterns (matched against absolute paths) that scan never enters or reads"),
    Setting("scan.one_file_system", parse_bool, True,
            "stay on the file system of each root"),
    Setting("scan.allow_ignore", parse_bool, True,
            "whether user allowlist entries ([[ignore]]) are honoured", _false_is_stronger),
    Setting("vault.keystore", parse_keystore, "auto",
            "where vault keys live: auto (the OS keyring, or what the vault was created with), "
            "keyring, or passphrase (opt-in, for headless machines)"),
    Setting("vault.keyring_timeout", parse_seconds, 10.0,
            "seconds to wait for the OS keyring before giving up (a locked keyring may prompt)"),
    Setting("protect.passes", parse_passes, 1,
            "random-data overwrite passes before a leftover is unlinked", _larger),
    Setting("protect.allow_hard_links", parse_bool, False,
            "delete a leftover that has other hard links (they keep the data reachable)"),
    Setting("seal.on_plaintext", parse_on_plaintext, "reseal",
            "what the daemon does when a sealed cache reappears in plaintext (a plain "
            "'az login'): reseal it into the vault, or only alert", _reseal_is_stronger),
    Setting("seal.lock_timeout", parse_seconds, 10.0,
            "seconds to wait for a tool's cache lock (<cache>.lockfile) before refusing"),
    Setting("notifications.enabled", parse_bool, True,
            "desktop notifications from the daemon ([notifications] enabled = false turns "
            "them off); protection never depends on them"),
    *(Setting(policy.setting_key(kind), policy.parse_table, policy.default_table(),
              f"action for {kind} findings, per location (see README: Policy)",
              policy.at_least_as_strong)
      for kind in policy.policy_kinds()),
)
BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
_SECTIONS = {s.key.split(".")[0] for s in SETTINGS}


@dataclass(frozen=True)
class IgnoreEntry:
    fingerprint: str
    reason: str
    source: str


@dataclass(frozen=True)
class Target:
    """An import target: a command that receives a credential the way ``exec`` hands it over
    (``{file}`` in ``command`` becomes the RAM copy's path); exit 0 means imported."""

    name: str
    command: tuple[str, ...]
    kinds: tuple[str, ...]
    source: str


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


def _line_of(text: str, section: str | None, key: str, nth_table: int | None = None) -> int:
    """Best-effort line number of ``key`` inside ``[section]`` (or the nth ``[[section]]``)."""
    current: str | None = None
    seen_tables = -1
    key_re = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            current = stripped.strip("[] ").split("#")[0].strip("[] ")
            if stripped.startswith("[[") and current == section:
                seen_tables += 1
            continue
        in_table = nth_table is None or seen_tables == nth_table
        if current == section and in_table and key_re.match(line):
            return number
    return 0


@dataclass
class _Layer:
    """One parsed TOML source: its values by key plus their ``file:line`` locations."""

    name: str
    path: Path
    values: dict[str, Any] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    ignores: list[IgnoreEntry] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)


def _fail(path: Path, line: int, message: str) -> ConfigError:
    where = f"{path}:{line}" if line else str(path)
    return ConfigError(f"{where}: {message}")


def _load_layer(name: str, path: Path) -> _Layer | None:
    layer = _Layer(name, path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    version = doc.pop("version", CONFIG_VERSION)
    if version != CONFIG_VERSION:
        raise _fail(path, _line_of(text, None, "version"),
                    f"config version {version!r} is not supported (this credguard reads "
                    f"version {CONFIG_VERSION}; a newer credguard may be needed)")
    for section, body in doc.items():
        if section == "ignore":
            layer.ignores.extend(_parse_ignores(path, text, body))
            continue
        if section == "targets":
            layer.targets.extend(_parse_targets(path, text, body))
            continue
        if section not in _SECTIONS or not isinstance(body, dict):
            raise _fail(path, _line_of(text, None, section) or _section_line(text, section),
                        f"unknown section or key {section!r}")
        for key, raw in body.items():
            full = f"{section}.{key}"
            line = _line_of(text, section, key) or _section_line(text, full)
            setting = BY_KEY.get(full)
            if setting is None:
                raise _fail(path, line, f"unknown key {full!r}")
            try:
                layer.values[full] = setting.parse(raw)
            except ValueError as exc:
                raise _fail(path, line, f"bad value for {full!r}: {exc}") from None
            layer.where[full] = f"{name} {path}:{line}"
    return layer


def _section_line(text: str, section: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().strip("[]").strip() == section:
            return number
    return 0


def _parse_ignores(path: Path, text: str, body: object) -> list[IgnoreEntry]:
    if not isinstance(body, list):
        raise _fail(path, _section_line(text, "ignore"),
                    "'ignore' must be an array of tables: [[ignore]]")
    entries = []
    for index, item in enumerate(body):
        if not isinstance(item, dict):
            raise _fail(path, _section_line(text, "ignore"), "each [[ignore]] must be a table")
        for key in item:
            if key not in ("fingerprint", "reason"):
                raise _fail(path, _line_of(text, "ignore", key, index),
                            f"unknown key 'ignore.{key}'")
        fp = item.get("fingerprint")
        line = _line_of(text, "ignore", "fingerprint", index)
        if not isinstance(fp, str) or not _FINGERPRINT.match(fp):
            raise _fail(path, line or _section_line(text, "ignore"),
                        "ignore.fingerprint must look like sha256:<64 lower-case hex digits>")
        reason = item.get("reason", "")
        if not isinstance(reason, str):
            raise _fail(path, _line_of(text, "ignore", "reason", index),
                        "ignore.reason must be a string")
        entries.append(IgnoreEntry(fp, reason, f"{path}:{line}"))
    return entries


def _parse_targets(path: Path, text: str, body: object) -> list[Target]:
    if not isinstance(body, list) or not all(isinstance(t, dict) for t in body):
        raise _fail(path, _section_line(text, "targets"),
                    "'targets' must be an array of tables: [[targets]]")
    targets = []
    for index, item in enumerate(body):
        for key in item:
            if key not in ("name", "command", "kinds"):
                raise _fail(path, _line_of(text, "targets", key, index),
                            f"unknown key 'targets.{key}'")
        name, command = item.get("name"), item.get("command")
        kinds = item.get("kinds", list(policy.policy_kinds()))
        line = _line_of(text, "targets", "command", index) or _section_line(text, "targets")
        if not isinstance(name, str) or not name:
            raise _fail(path, line, "each [[targets]] needs a name")
        if (not isinstance(command, list) or not command
                or not all(isinstance(c, str) and c for c in command)):
            raise _fail(path, line, f"targets {name!r}: command must be a non-empty list of "
                                    "strings, e.g. [\"tool\", \"import\", \"{file}\"]")
        if not isinstance(kinds, list) or not all(k in policy.policy_kinds() for k in kinds):
            raise _fail(path, _line_of(text, "targets", "kinds", index) or line,
                        f"targets {name!r}: kinds must list kind ids")
        targets.append(Target(name, tuple(command), tuple(kinds), f"{path}:{line}"))
    return targets


def _apply(values: dict[str, Any], sources: dict[str, str], managed: dict[str, Any],
           warnings: list[str], key: str, value: Any, source: str) -> None:
    """Apply one layer's value on top, unless it would weaken the managed policy."""
    setting = BY_KEY[key]
    if setting.additive:
        merged = tuple(dict.fromkeys((*values[key], *value)))
        values[key] = merged
        sources[key] = source if sources[key] == "default" else f"{sources[key]} + {source}"
        return
    if key in managed:
        strong = setting.at_least_as_strong
        if strong is None:
            if value != managed[key]:
                warnings.append(f"{source}: {key} is locked by the managed policy; ignored")
            return
        if not strong(value, managed[key]):
            warnings.append(f"{source}: {key} = {value!r} would weaken the managed policy; ignored")
            return
    values[key] = value
    sources[key] = source


def load(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Build the effective configuration from every layer."""
    env = os.environ if env is None else env
    values = {s.key: s.default for s in SETTINGS}
    sources = dict.fromkeys(values, "default")
    warnings: list[str] = []
    policy_path, user_path = paths.managed_policy_file(), paths.user_config_file()
    admin = _load_layer("managed policy", policy_path)
    user = _load_layer("user config", user_path)
    managed: dict[str, Any] = {}
    if admin is not None:
        for key, value in admin.values.items():
            _apply(values, sources, {}, warnings, key, value, admin.where[key])
        managed = {k: v for k, v in admin.values.items() if not BY_KEY[k].additive}
    if user is not None:
        for key, value in user.values.items():
            _apply(values, sources, managed, warnings, key, value, user.where[key])
    for setting in SETTINGS:
        raw = env.get(setting.env)
        if raw is None:
            continue
        try:
            value = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"environment {setting.env}: bad value: {exc}") from None
        _apply(values, sources, managed, warnings, setting.key, value, f"env {setting.env}")
    for key, value in (flags or {}).items():
        _apply(values, sources, managed, warnings, key, value, "command line")
    ignores = list(admin.ignores) if admin else []
    if user is not None and user.ignores:
        if values["scan.allow_ignore"]:
            ignores.extend(user.ignores)
        else:
            warnings.append(f"{user_path}: [[ignore]] entries are disabled by "
                            f"scan.allow_ignore = false ({sources['scan.allow_ignore']})")
    targets = [*(admin.targets if admin else []), *(user.targets if user else [])]
    return Config(values, sources, tuple(ignores), tuple(targets), tuple(warnings), user_path,
                  policy_path)


def toml_string(value: str) -> str:
    """A TOML basic string: JSON's escaping with ASCII output is valid TOML."""
    import json

    return json.dumps(value, ensure_ascii=True)


def add_ignore(cfg: Config, fingerprint: str, reason: str) -> bool:
    """Append an ``[[ignore]]`` entry to the user config; False if it was already there.

    Appending keeps the user's comments and layout; the file is rewritten atomically (0600).
    """
    if not _FINGERPRINT.match(fingerprint):
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
    try:
        tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: cannot append an [[ignore]] entry to this file ({exc}); "
                          "add it by hand") from None
    atomic_write(path, new.encode("utf-8"))
    return True
