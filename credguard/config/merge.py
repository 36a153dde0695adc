"""Putting the layers on top of each other without letting a later one weaken the managed policy.

A key the policy names in ``locked`` keeps the policy's value (or the default) whatever a later
layer says; a key the policy sets keeps at least the policy's strength when the setting has a
strength order, and is locked when it has none. Every value a later layer loses that way is kept
as an :class:`Overridden` record, with where it came from and what overrode it, for
``credguard config show`` and ``credguard doctor``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from credguard import paths
from credguard.config.settings import BY_KEY, SETTINGS
from credguard.config.sources import IgnoreEntry, Target

if TYPE_CHECKING:
    from credguard.config.layers import Layer

LOCKED = "locked by the managed policy"
WEAKER = "would weaken the managed policy"
# names credential files have; an exclude pattern matching one in every root hides them all
_PROBES = ("contoso.publishsettings", "contoso.PublishSettings", "msal_token_cache.json",
           "accessTokens.json", "Profile.pubxml.user")


class Overridden(NamedTuple):
    """A value a later layer gave that is not in force: ``key`` is a setting key, ``targets``
    (``value`` is the target's name) or ``ignore`` (``value`` is the fingerprint); ``source``
    is where it came from (file:line, variable, command line), ``by`` what overrode it."""

    key: str
    value: Any
    source: str
    reason: str
    by: str

    @property
    def message(self) -> str:
        if self.key in BY_KEY:
            shown = f"{self.key} = {shown_value(self.value)}"
        else:
            shown = f"[[{self.key}]] {self.value!r}"
        return f"{self.source}: {shown} {self.reason} ({self.by}); ignored"

    def to_json(self) -> dict[str, Any]:
        value = self.value
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict):
            value = {str(k): str(v) for k, v in value.items()}
        return {"key": self.key, "value": value, "source": self.source, "reason": self.reason,
                "by": self.by}


def shown_value(value: Any) -> str:
    """A value as a message shows it: a policy table's locations and actions as plain text."""
    if isinstance(value, dict):
        value = {str(key): str(action) for key, action in value.items()}
    if isinstance(value, tuple):
        value = list(value)
    return repr(value)


def exclude_checked(values: Mapping[str, Any], sources: Mapping[str, str]) -> bool:
    """Whether :meth:`Merged.check_exclude` looks at the roots for these values (an exclude
    pattern not from the managed policy): then its warning depends on the file system."""
    return bool(values["scan.exclude"]) and not sources["scan.exclude"].startswith(
        "managed policy")


class Merged:
    """The effective values and their sources while the layers are put on top of each other."""

    def __init__(self, admin: Layer | None) -> None:
        self.values = {s.key: s.default for s in SETTINGS}
        self.sources = dict.fromkeys(self.values, "default")
        self.floor: dict[str, Any] = {}  # what the policy set: later layers may not weaken it
        self.locked: dict[str, str] = {}  # key (or table) -> where the policy locks it
        self.overridden: list[Overridden] = []
        self.warnings: list[str] = []
        if admin is None:
            return
        for key, value in admin.values.items():
            self.apply(key, value, admin.where[key])
        for key, value in admin.values.items():
            if BY_KEY[key].additive:
                continue
            self.floor[key] = value
            if BY_KEY[key].at_least_as_strong is None:
                self.locked[key] = admin.where[key]  # no order: the policy's value is it
        self.locked.update(admin.locked)

    def apply(self, key: str, value: Any, source: str) -> None:
        """Put one layer's value on top, unless the managed policy keeps it out."""
        setting = BY_KEY[key]
        if setting.additive:
            merged = tuple(dict.fromkeys((*self.values[key], *value)))
            if merged == self.values[key]:
                return
            if key in self.locked:
                self._override(key, value, source, LOCKED, self.locked[key])
                return
            self.values[key] = merged
            was = self.sources[key]
            self.sources[key] = source if was == "default" else f"{was} + {source}"
            return
        if key in self.locked:
            if value != self.values[key]:
                self._override(key, value, source, LOCKED, self.locked[key])
            return
        strong = setting.at_least_as_strong
        if key in self.floor and strong is not None and not strong(value, self.floor[key]):
            self._override(key, value, source, WEAKER, self.sources[key])
            return
        self.values[key] = value
        self.sources[key] = source

    def layer(self, layer: Layer | None) -> None:
        """Put every value of a file on top (nothing if there is no such file)."""
        if layer is not None:
            for key, value in layer.values.items():
                self.apply(key, value, layer.where[key])

    def targets(self, admin: Layer | None, user: Layer | None) -> tuple[Target, ...]:
        """The policy's import targets, then the user's unless the policy locks them."""
        mine = user.targets if user is not None else []
        if "targets" in self.locked:
            for target in mine:
                self._override("targets", target.name, target.source, LOCKED,
                               self.locked["targets"])
            mine = []
        return (*(admin.targets if admin else []), *mine)

    def ignores(self, admin: Layer | None, user: Layer | None) -> tuple[IgnoreEntry, ...]:
        """The policy's allowlist, then the user's unless the policy or allow_ignore rules it
        out."""
        mine = user.ignores if user is not None else []
        if "ignore" in self.locked:
            by, reason = self.locked["ignore"], LOCKED
        elif not self.values["scan.allow_ignore"]:
            by = self.sources["scan.allow_ignore"]
            reason = "is disabled by scan.allow_ignore = false"
        else:
            return (*(admin.ignores if admin else []), *mine)
        for entry in mine:
            self._override("ignore", entry.fingerprint, entry.source, reason, by)
        return tuple(admin.ignores if admin else [])

    def check_exclude(self) -> None:
        """Warn about an exclude pattern that hides credential files from every root."""
        if not exclude_checked(self.values, self.sources):
            return
        patterns = self.values["scan.exclude"]
        roots = [r.path for r in paths.default_roots()]
        roots += [Path(p) for p in self.values["scan.extra_roots"]]
        for pattern in patterns:
            hidden = [name for name in _PROBES
                      if all(fnmatch.fnmatchcase(str(root / name), pattern) for root in roots)]
            if hidden:
                what = ("every credential file" if len(hidden) == len(_PROBES)
                        else f"files named like {hidden[0]}")
                self.warnings.append(
                    f"{self.sources['scan.exclude']}: scan.exclude pattern {pattern!r} excludes "
                    f"{what} in every folder credguard scans: they are never found or "
                    "protected")

    def _override(self, key: str, value: Any, source: str, reason: str, by: str) -> None:
        record = Overridden(key, value, source, reason, by)
        self.overridden.append(record)
        self.warnings.append(record.message)
