"""The schema of the configuration: every key, how its value is parsed, its default, and which
of two values protects more (what a managed policy may not be weakened below)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from credguard import policy

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


class Setting(NamedTuple):
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
    Setting("protect.delay", policy.parse_delays, {},
            "the daemon's grace period before it vaults and deletes a file it found (0: at "
            "once), per location like a policy table: the user is told at once and may "
            "protect it now or keep it", policy.delays_at_least_as_strong),
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
              f"action for {kind} findings, per location (see docs/configuration.md: Policy)",
              policy.at_least_as_strong)
      for kind in policy.policy_kinds()),
)
BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
SECTIONS = frozenset(s.key.split(".")[0] for s in SETTINGS)
