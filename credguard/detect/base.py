"""What a detector is and what it returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, NamedTuple

from credguard.detect.kinds import Kind

Details = dict[str, Any]


class Malformed(Exception):
    """The content cannot be parsed as the format its name promises (or is hostile XML).

    The message says what was wrong in general terms and never quotes the content.
    """


class Hostile(Malformed):
    """XML that tried to declare a DTD, an entity or an external reference: refused unexpanded."""


class Detected(NamedTuple):
    """A detector's verdict: which kind, and non-secret details about it."""

    kind: Kind
    details: Details


# A detector family: given the whole file and its path, a verdict or None (not a credential).
# It may raise Malformed; it must never put secret values into details or messages.
DetectFn = Callable[[bytes, PurePath], Detected | None]


@dataclass(frozen=True)
class Finding:
    """One credential found on disk. Holds no secret: kind, path, fingerprint, details.
    (A dataclass: :mod:`credguard.scan.project` derives one with ``dataclasses.replace``.)"""

    path: str
    kind: str  # a Kind's id; plain text when read back from the daemon's JSON
    fingerprint: str
    details: Mapping[str, Any]
    # the directory the scan started from: acting on the finding walks from there, never
    # through a symlink ("" when unknown: the file's own directory is then the root)
    root: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "fingerprint": self.fingerprint,
            "details": dict(self.details),
        }
