"""Where configuration values come from: a TOML file (the managed policy or the user's config),
each value with its ``file:line``, and the ``CREDGUARD_*`` environment. Every bad value is a
:class:`~credguard.errors.ConfigError` that names its file and line (or its variable). A file is
parsed by :mod:`~credguard.config.layers`, loaded only when there is one: most machines have
neither a managed policy nor a user config, and ``credguard check`` runs on every commit."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from credguard.config.settings import SETTINGS
from credguard.errors import ConfigError

if TYPE_CHECKING:
    from credguard.config.layers import Layer
    from credguard.detect.kinds import Kind

CONFIG_VERSION = 1
FINGERPRINT = re.compile(r"^sha256:[0-9a-f]{64}$")


class IgnoreEntry(NamedTuple):
    fingerprint: str
    reason: str
    source: str


class Target(NamedTuple):
    """An import target: a command that receives a credential the way ``exec`` hands it over
    (``{file}`` in ``command`` becomes the RAM copy's path); exit 0 means imported."""

    name: str
    command: tuple[str, ...]
    kinds: tuple[Kind, ...]
    source: str


def from_env(env: Mapping[str, str]) -> Iterator[tuple[str, Any, str]]:
    """(key, value, source) for each setting its ``CREDGUARD_*`` variable sets."""
    for setting in SETTINGS:
        raw = env.get(setting.env)
        if raw is None:
            continue
        try:
            value = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"environment {setting.env}: bad value: {exc}") from None
        yield setting.key, value, f"env {setting.env}"


def parse_layer(name: str, path: Path, text: str | None, *,
                managed: bool = False) -> Layer | None:
    """The ``text`` of the file at ``path`` (:func:`~credguard.config.files.read_text`)
    checked and parsed as layer ``name``; None if there is no file. ``managed``: the managed
    policy, the one layer that may lock keys."""
    if text is None:
        return None
    from credguard.config import layers

    return layers.parse_layer(name, path, text, managed=managed)
