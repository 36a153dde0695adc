"""One configuration file (the managed policy or the user's config) parsed into a layer: its
values by key with their ``file:line``, its allowlist and import targets, and (the managed policy
only) what it locks. Only the managed policy may hold ``locked = [...]``: the keys, sections,
``targets`` or ``ignore`` no later layer may change. Loaded only when such a file exists."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credguard import policy
from credguard.config.files import parse_toml
from credguard.config.settings import BY_KEY, SECTIONS, SETTINGS
from credguard.config.sources import CONFIG_VERSION, FINGERPRINT, IgnoreEntry, Target
from credguard.detect.kinds import Kind
from credguard.errors import ConfigError, check_version

TABLES = ("targets", "ignore")  # the array-of-tables sections, lockable as a whole


@dataclass
class Layer:
    """One parsed TOML source: its values by key plus their ``file:line`` locations, and (the
    managed policy only) what it locks: each setting key or table name with where it is locked."""

    name: str
    path: Path
    values: dict[str, Any] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    ignores: list[IgnoreEntry] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    locked: dict[str, str] = field(default_factory=dict)


def parse_layer(name: str, path: Path, text: str, *, managed: bool = False) -> Layer:
    """``text``, read from the file at ``path``, checked and parsed as layer ``name``.
    ``managed``: the managed policy, the one layer that may lock keys."""
    doc = parse_toml(path, text)
    _check_version(path, text, doc.pop("version", CONFIG_VERSION))
    layer = Layer(name, path)
    if "locked" in doc:
        line = _line_of(text, None, "locked")
        if not managed:
            raise _fail(path, line, "only the managed policy can lock settings ('locked')")
        layer.locked = _parse_locked(path, line, doc.pop("locked"), f"{name} {path}:{line}")
    for section, body in doc.items():
        if section == "ignore":
            layer.ignores.extend(_parse_ignores(path, text, body))
        elif section == "targets":
            layer.targets.extend(_parse_targets(path, text, body))
        elif section in SECTIONS and isinstance(body, dict):
            _parse_section(layer, text, section, body)
        else:
            raise _fail(path, _line_of(text, None, section) or _section_line(text, section),
                        f"unknown section or key {section!r}")
    return layer


def _parse_locked(path: Path, line: int, raw: object, where: str) -> dict[str, str]:
    """``locked = ["scan.exclude", "targets", "policy", …]``: setting keys, whole sections and
    the ``targets``/``ignore`` tables, each expanded to what it locks."""
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise _fail(path, line, "'locked' must be a list of setting keys, sections, "
                                "\"targets\" or \"ignore\"")
    locked: dict[str, str] = {}
    for name in raw:
        if name in BY_KEY or name in TABLES:
            locked[name] = where
        elif name in SECTIONS:
            locked.update((s.key, where) for s in SETTINGS if s.key.startswith(f"{name}."))
        else:
            raise _fail(path, line, f"locked: unknown key {name!r} (a setting such as "
                                    "\"scan.exclude\", a section such as \"scan\", "
                                    "\"targets\" or \"ignore\")")
    return locked


def _check_version(path: Path, text: str, version: object) -> None:
    """Refuse a file of another format version; a newer one in the words every format uses."""
    if version == CONFIG_VERSION:
        return
    where = _where(path, _line_of(text, None, "version"))
    with contextlib.suppress(ValueError):  # not a whole number: "not supported", below
        check_version(version, CONFIG_VERSION, f"{where}: this file", ConfigError)
    raise ConfigError(f"{where}: config version {version!r} is not supported (this credguard "
                      f"reads version {CONFIG_VERSION})")


def _parse_section(layer: Layer, text: str, section: str, body: dict[str, Any]) -> None:
    for key, raw in body.items():
        full = f"{section}.{key}"
        line = _line_of(text, section, key) or _section_line(text, full)
        setting = BY_KEY.get(full)
        if setting is None:
            raise _fail(layer.path, line, f"unknown key {full!r}")
        try:
            layer.values[full] = setting.parse(raw)
        except ValueError as exc:
            raise _fail(layer.path, line, f"bad value for {full!r}: {exc}") from None
        layer.where[full] = f"{layer.name} {layer.path}:{line}"


def _where(path: Path, line: int) -> str:
    return f"{path}:{line}" if line else str(path)


def _fail(path: Path, line: int, message: str) -> ConfigError:
    return ConfigError(f"{_where(path, line)}: {message}")


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
        if not isinstance(fp, str) or not FINGERPRINT.match(fp):
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
        targets.append(Target(name, tuple(command), tuple(map(Kind, kinds)), f"{path}:{line}"))
    return targets
