"""What credguard does with a finding: (kind, location) -> action.

Actions, weakest first: ``ignore`` < ``alert`` < ``harden`` (alert, and chmod the cache 0600
files / 0700 dirs) < ``import`` (vault copy, original kept) < ``protect`` (vault copy, verified,
then the leftover deleted). A managed policy can only be strengthened by the user's file.

Defaults: anything found in Downloads, Desktop, Documents or the Trash is protected (a copy
there is never a live tool cache); the Azure tools' own directories are hardened (deleting a
live cache logs the user out); a file that is part of someone's work (``project``: a git work
tree, a Visual Studio project or solution folder, ``~/source/repos``,
``~/Documents/Visual Studio*``) is hardened, never deleted, wherever it is except in the Azure
tools' own directories; elsewhere credguard alerts. Whether a file is in a project is a fact
about the disk that the scan finds (:mod:`credguard.scan.project`); this module stays pure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path

from credguard import paths
from credguard.detect.kinds import Kind


class Action(StrEnum):
    """What credguard does with a finding, weakest first (the order is the strength)."""

    IGNORE = "ignore"
    ALERT = "alert"
    HARDEN = "harden"
    IMPORT = "import"
    PROTECT = "protect"


class Location(StrEnum):
    """Where a finding is, as far as the policy cares."""

    DOWNLOADS = "downloads"
    DESKTOP = "desktop"
    DOCUMENTS = "documents"
    TRASH = "trash"
    HOME = "home"
    AZURE_CLI = "azure-cli"
    AZURE_POWERSHELL = "azure-powershell"
    AZD = "azd"
    PROJECT = "project"  # part of someone's work: a git work tree, a VS project (see above)
    OTHER = "other"


class Mode(StrEnum):
    """Whether credguard may write now: the mode the daemon reports (``status --json``) and the
    one a CLI run acts in."""

    PROTECTING = "protecting"
    ALERT_ONLY = "alert-only"  # no usable keystore: nothing is written or deleted
    PAUSED = "paused"  # the user paused protection


ACTIONS = tuple(Action)
STRENGTH: dict[Action, int] = {action: rank for rank, action in enumerate(ACTIONS)}
LOCATIONS = tuple(Location)
DEFAULT_KEY = "default"

Table = dict[str, Action]  # a location (or DEFAULT_KEY) -> its action

_BUILT_IN: Table = {
    Location.DOWNLOADS: Action.PROTECT, Location.DESKTOP: Action.PROTECT,
    Location.DOCUMENTS: Action.PROTECT, Location.TRASH: Action.PROTECT,
    Location.AZURE_CLI: Action.HARDEN, Location.AZURE_POWERSHELL: Action.HARDEN,
    Location.AZD: Action.HARDEN,
    Location.PROJECT: Action.HARDEN,  # someone's working file: alert and chmod, never delete
    DEFAULT_KEY: Action.ALERT,
}
# the Azure tools' own directories keep their location even inside a project
TOOL_LOCATIONS = frozenset({Location.AZURE_CLI, Location.AZURE_POWERSHELL, Location.AZD})


def default_table() -> Table:
    return dict(_BUILT_IN)


def parse_table(raw: object) -> Table:
    """A policy value: one action for every location, or ``{location|default: action}``.

    A bare action sets every location, ``project`` included: ``azure-publishsettings =
    "protect"`` protects (deletes) such a file inside a git work tree too."""
    if isinstance(raw, str):
        raw = {DEFAULT_KEY: raw, **{str(loc): raw for loc in LOCATIONS}}
    if not isinstance(raw, dict):
        raise ValueError(f"expected an action ({', '.join(ACTIONS)}) or a table of them")
    table: Table = {}
    for location, action in raw.items():
        if location != DEFAULT_KEY and location not in LOCATIONS:
            raise ValueError(f"unknown location {location!r} (known: {', '.join(LOCATIONS)}, "
                             f"{DEFAULT_KEY})")
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
        table[location] = Action(action)
    return table


def action_in(table: Mapping[str, str], location: str) -> Action:
    """The action a table gives for a location: its own entry, its default, the built-in."""
    return Action(table.get(location) or table.get(DEFAULT_KEY) or _BUILT_IN.get(location)
                  or _BUILT_IN[DEFAULT_KEY])


def at_least_as_strong(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Whether table ``a`` acts at least as strongly as ``b`` in every location."""
    return all(STRENGTH[action_in(a, loc)] >= STRENGTH[action_in(b, loc)] for loc in LOCATIONS)


# -- the grace period before the daemon protects (protect.delay) ---------------------------------

DelayTable = dict[str, int]  # a location (or DEFAULT_KEY) -> seconds
MAX_DELAY = 3600  # seconds: a grace period of at most an hour
_DELAY = re.compile(r"^\s*(\d{1,5})\s*(s|m|h)?\s*$")
_DELAY_UNIT = {None: 1, "s": 1, "m": 60, "h": 3600}
DELAY_EXPECTED = ('expected a time such as "90s", "2m", "1h" or a number of seconds, 0 to 1h, '
                  "or a table of them by location")


def parse_delays(raw: object) -> DelayTable:
    """``protect.delay``: one time for every location, or ``{location|default: time}``; a time
    is a whole number of seconds or a string such as ``"90s"``, ``"2m"``, ``"1h"`` (0 to 1 h)."""
    if not isinstance(raw, dict):
        seconds = _delay_seconds(raw)
        return {DEFAULT_KEY: seconds, **{str(loc): seconds for loc in LOCATIONS}}
    table: DelayTable = {}
    for location, value in raw.items():
        if location != DEFAULT_KEY and location not in LOCATIONS:
            raise ValueError(f"unknown location {location!r} (known: {', '.join(LOCATIONS)}, "
                             f"{DEFAULT_KEY})")
        table[location] = _delay_seconds(value)
    return table


def _delay_seconds(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError(DELAY_EXPECTED)
    if isinstance(raw, int):
        seconds = raw
    elif m := _DELAY.match(raw.lower()):
        seconds = int(m.group(1)) * _DELAY_UNIT[m.group(2)]
    else:
        raise ValueError(DELAY_EXPECTED)
    if not 0 <= seconds <= MAX_DELAY:
        raise ValueError(DELAY_EXPECTED)
    return seconds


def delay_in(table: Mapping[str, int], location: str) -> int:
    """The grace period a table gives a location: its own entry, its default, else none."""
    value = table.get(location, table.get(DEFAULT_KEY, 0))
    return value if isinstance(value, int) else 0


def delays_at_least_as_strong(a: Mapping[str, int], b: Mapping[str, int]) -> bool:
    """Whether delay table ``a`` protects at least as soon as ``b`` in every location."""
    return all(delay_in(a, loc) <= delay_in(b, loc) for loc in LOCATIONS)


def any_delay(values: Mapping[str, object]) -> bool:
    """Whether ``protect.delay`` gives any location a grace period (by default none does)."""
    table = values.get("protect.delay")
    return isinstance(table, dict) and any(table.values())


def delay_for(values: Mapping[str, object], path: str | Path, in_project: bool = False) -> int:
    """Seconds the daemon waits before it protects a file at ``path`` (0: at once)."""
    table = values.get("protect.delay")
    return delay_in(table, location_of(path, in_project)) if isinstance(table, dict) else 0


def setting_key(kind: str) -> str:
    return f"policy.{kind}"


def policy_kinds() -> tuple[Kind, ...]:
    return tuple(Kind)


def is_under(path: str, root: Path) -> bool:
    """Whether ``path`` is ``root`` or inside it (by name: no links resolved)."""
    root_text = os.path.abspath(root)
    return path == root_text or path.startswith(root_text.rstrip(os.sep) + os.sep)


def location_of(path: str | Path, in_project: bool = False) -> Location:
    """Which policy location a file is in (its directory decides; the home is top level only).

    ``in_project``: the file is part of a project (the scan found out): ``project`` wins over
    every location but the Azure tools' own directories."""
    found = _place_of(path)
    if in_project and found not in TOOL_LOCATIONS:
        return Location.PROJECT
    return found


def _place_of(path: str | Path) -> Location:
    full = os.path.abspath(path)
    parent = os.path.dirname(full)
    for root, label in _places():
        if root != paths.home() and is_under(parent, root):
            return label
    if parent == os.path.abspath(paths.home()):
        return Location.HOME
    return Location.OTHER


def _places() -> Iterator[tuple[Path, Location]]:
    """The locations' folders in the order they are matched, each computed only when the ones
    before did not match (the user's folders are read from ``user-dirs.dirs`` each time: a
    Trash item, which every deletion asks about, needs none of them)."""
    yield from ((p, Location.TRASH) for p in paths.trash_dirs())
    yield paths.downloads_dir(), Location.DOWNLOADS
    yield paths.desktop_dir(), Location.DESKTOP
    yield paths.documents_dir(), Location.DOCUMENTS
    yield paths.azure_cli_dir(), Location.AZURE_CLI
    yield from ((p, Location.AZURE_POWERSHELL) for p in paths.azure_powershell_dirs())
    yield paths.azd_dir(), Location.AZD


def decide(values: Mapping[str, object], kind: str, path: str | Path,
           in_project: bool = False) -> Action:
    """The action for a finding of ``kind`` at ``path`` (``in_project``: part of a project)
    under the effective configuration."""
    table = values.get(setting_key(kind))
    return action_in(table if isinstance(table, dict) else {}, location_of(path, in_project))
