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
