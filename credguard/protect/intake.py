"""Turning a named file into a vault record: safe read, detection, non-secret metadata.

Shared by ``credguard import`` and (later) the protect transaction, so both read through the
same bounded, link-refusing reader and refuse what is not a detected credential.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from credguard.detect.registry import ALL_FAMILIES, KINDS, Malformed, by_name, detect_bytes
from credguard.errors import InputError
from credguard.fs.read import FileData, Unreadable, read_path
from credguard.vault.format import Record


@dataclass(frozen=True)
class Intake:
    """A record ready for the vault, and the identity of the file it was read from."""

    path: Path
    record: Record
    file: FileData


def take_in(path: Path, cap: int, force_kind: str | None = None) -> Intake:
    """Read ``path`` without following links and build its record; InputError if it is not a
    credential (unless ``force_kind`` names the kind to file it under)."""
    path = Path(os.path.abspath(path))
    if force_kind is not None and force_kind not in KINDS:
        raise InputError(f"unknown kind {force_kind!r}; kinds: {', '.join(KINDS)}")
    try:
        data = read_path(path, cap)
    except Unreadable as exc:
        raise InputError(f"{path}: not read ({exc.reason}: {exc.detail})") from None
    families = by_name(str(path.parent), path.name)
    try:
        verdict = detect_bytes(data.data, path, families or ALL_FAMILIES, strict=bool(families))
    except Malformed as exc:
        if force_kind is None:
            raise InputError(f"{path}: not read (malformed: {exc})") from None
        verdict = None
    if verdict is None and force_kind is None:
        raise InputError(f"{path}: not a detected credential; use --force KIND to import it "
                         "anyway")
    kind = force_kind or (verdict.kind if verdict else "")
    details = dict(verdict.details) if verdict is not None and verdict.kind == kind else {}
    record = Record.new(kind, path.name, str(path.parent), data.data, details)
    return Intake(path, record, data)
