"""Detector registry: which family judges a candidate file, and the verdict.

Candidates are chosen by name first (cheap: a lower-cased name against a few sets); in
download-like folders and explicitly named paths, small text/XML files are also sniffed by
content. Both rules are :mod:`credguard.detect.candidates`', which names family modules; here
each name is a :class:`Family`. A family module turns bytes into a :class:`Detected` verdict or
``None``; it is imported when it is first asked, so a check of ordinary files (the pre-commit
hook) loads none.
"""

from __future__ import annotations

import importlib
from pathlib import PurePath

from credguard.detect import candidates
from credguard.detect.base import Detected, DetectFn, Finding, Hostile, Malformed
from credguard.detect.candidates import (
    SNIFF_PREFIX,
    is_partial_download,
    sniff_eligible,
    sniff_matches,
)
from credguard.detect.kinds import KINDS, Kind, KindInfo

__all__ = [
    "KINDS",
    "SNIFF_PREFIX",
    "DetectFn",
    "Detected",
    "Family",
    "Finding",
    "Hostile",
    "Kind",
    "KindInfo",
    "Malformed",
    "by_name",
    "detect_bytes",
    "fingerprint",
    "is_partial_download",
    "sniff_eligible",
    "sniff_matches",
]


class Family:
    """The ``detect`` function of the family module ``credguard.detect.<module>``, imported on
    the first call; equal to that function, so ``azcli.detect in by_name(...)`` holds."""

    __slots__ = ("_detect", "module")

    def __init__(self, module: str) -> None:
        self.module = module
        self._detect: DetectFn | None = None

    @property
    def detect(self) -> DetectFn:
        if self._detect is None:
            found: DetectFn = importlib.import_module(f"credguard.detect.{self.module}").detect
            self._detect = found
        return self._detect

    def __call__(self, data: bytes, path: PurePath) -> Detected | None:
        return self.detect(data, path)

    def __eq__(self, other: object) -> bool:
        return other is self or other is self.detect

    def __hash__(self) -> int:
        return hash(self.module)

    def __repr__(self) -> str:
        return f"<detector family {self.module}>"


_FAMILY = {module: Family(module)
           for module in (*candidates.XML_FAMILIES, *candidates.JSON_FAMILIES)}
XML_FAMILIES: tuple[DetectFn, ...] = tuple(_FAMILY[m] for m in candidates.XML_FAMILIES)
JSON_FAMILIES: tuple[DetectFn, ...] = tuple(_FAMILY[m] for m in candidates.JSON_FAMILIES)
ALL_FAMILIES = XML_FAMILIES + JSON_FAMILIES
_CHOSEN: dict[tuple[str, ...], tuple[DetectFn, ...]] = {}  # by_name's answers, made once


def preload(families: tuple[DetectFn, ...]) -> None:
    """Import the families' modules now rather than on their first file (the daemon does
    this before its first credential)."""
    for family in families:
        if isinstance(family, Family):
            _ = family.detect


def by_name(parent: str | PurePath, name: str) -> tuple[DetectFn, ...]:
    """The families to try for a file chosen by its name alone; empty when it is no candidate
    (:func:`credguard.detect.candidates.by_name`'s rules).

    ``parent`` is the directory holding it (a string on the scan's hot path).
    """
    modules = candidates.by_name(parent, name)
    if not modules:
        return ()
    chosen = _CHOSEN.get(modules)
    if chosen is None:
        chosen = _CHOSEN[modules] = tuple(_FAMILY[m] for m in modules)
    return chosen


def fingerprint(data: bytes) -> str:
    import hashlib  # loads OpenSSL: only once there is a finding

    return "sha256:" + hashlib.sha256(data).hexdigest()


def detect_bytes(
    data: bytes,
    path: PurePath,
    families: tuple[DetectFn, ...] = ALL_FAMILIES,
    *,
    strict: bool = True,
) -> Detected | None:
    """Run ``families`` in order; the first verdict wins. Empty files are never findings.

    Raises :class:`Malformed` when no family gave a verdict and one failed to parse: always for
    hostile XML (:class:`Hostile`); for any parse failure when ``strict`` (the file was chosen
    by its name, so it promised a format); and for a file found by content whose first bytes
    carry a credential marker (:func:`sniff_matches`): a scan reports it as skipped rather than
    dropping it in silence. Other files that merely are not such a format are not findings.
    """
    if not data.strip():
        return None
    malformed: Malformed | None = None
    for family in families:
        try:
            verdict = family(data, path)
        except Malformed as exc:
            malformed = malformed or exc
            continue
        if verdict is not None:
            return verdict
    if malformed is not None and (
        strict or isinstance(malformed, Hostile) or sniff_matches(data[:SNIFF_PREFIX])
    ):
        raise malformed
    return None
