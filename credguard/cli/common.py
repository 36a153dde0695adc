"""Small helpers shared by the verb modules: loading config and printing its warnings."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from credguard import config


def load_config(flags: Mapping[str, Any] | None = None) -> config.Config:
    cfg = config.load(flags)
    for warning in cfg.warnings:
        print(f"credguard: warning: {warning}", file=sys.stderr)
    return cfg


def confirm(question: str, yes: bool, typed: str = "yes") -> None:
    """Ask before something irreversible; without a terminal, ``--yes`` is required."""
    from credguard.errors import InputError

    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError("refusing without --yes (no terminal to ask on)")
    answer = input(f"{question}\nType '{typed}' to continue: ")
    if answer.strip() != typed:
        raise InputError("cancelled")
