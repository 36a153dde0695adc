"""Turning a named file into a vault record: safe read, detection, non-secret metadata.

The one read -> detect -> record step, shared by ``credguard import``, import-only policy
actions and the protect transaction, so all of them read through the same bounded,
link-refusing reader and refuse what is not a detected credential. A file forced under a kind
(``import --force KIND``) is refused too if the handover of that kind could not read it back
(:func:`credguard.handoff.environment.content_problem`): nothing stored is unusable.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from credguard.detect.registry import ALL_FAMILIES, KINDS, Malformed, by_name, detect_bytes
from credguard.errors import InputError, UsageError
from credguard.fs import read
from credguard.fs.read import FileData, SkipReason, Unreadable
from credguard.fs.safe import AT_SUPPORTED
from credguard.handoff.environment import NEEDS, content_problem
from credguard.vault.format import Record

NOT_CREDENTIAL = "not-credential"
WRONG_KIND = "wrong-kind"
Vet = Callable[[os.stat_result], None]  # raises Refused for a file its caller will not take


class Refused(Exception):
    """Read, but not taken in: ``reason`` is ``malformed``, ``not-credential``, ``wrong-kind``
    (forced under a kind whose handover cannot read it) or the vetting caller's own stable id;
    ``detail`` says why without any content."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Intake:
    """A record ready for the vault, and the identity of the file it was read from."""

    path: Path
    record: Record
    file: FileData


def read_in(dir_fd: int | None, path: Path, cap: int, force_kind: str | None = None,
            vet: Vet | None = None) -> Intake:
    """Read ``path`` (its name relative to ``dir_fd``, its directory; the whole path when
    None) without following links, ``vet`` its fstat, detect it and build its record. Raises
    :class:`Unreadable` or, if it is not a credential (unless ``force_kind`` names the kind),
    :class:`Refused`."""
    fd, st = read.open_regular(path.name if dir_fd is not None else str(path), dir_fd)
    try:
        data = read.read_fd(fd, st, cap)
    finally:
        os.close(fd)
    if vet is not None:
        vet(st)
    families = by_name(str(path.parent), path.name)
    try:
        verdict = detect_bytes(data.data, path, families or ALL_FAMILIES, strict=bool(families))
    except Malformed as exc:
        if force_kind is None:
            raise Refused(SkipReason.MALFORMED, str(exc)) from None
        verdict = None
    if verdict is None and force_kind is None:
        raise Refused(NOT_CREDENTIAL, "not a detected credential")
    kind = force_kind or (verdict.kind if verdict else "")
    problem = content_problem(kind, data.data) if force_kind is not None else ""
    if problem:
        raise Refused(WRONG_KIND, f"{problem}; --force {kind} needs {NEEDS[kind]}")
    details = dict(verdict.details) if verdict is not None and verdict.kind == kind else {}
    record = Record.new(kind, path.name, str(path.parent), data.data, details)
    return Intake(path, record, data)


def take_in(path: Path, cap: int, force_kind: str | None = None) -> Intake:
    """:func:`read_in` for a path the user named; InputError if it is not a credential
    (unless ``force_kind`` names the kind to file it under) or cannot be read."""
    path = Path(os.path.abspath(path))
    check_kind(force_kind)
    try:
        with _directory(path) as dir_fd:
            return read_in(dir_fd, path, cap, force_kind)
    except (Unreadable, Refused) as exc:
        if exc.reason == NOT_CREDENTIAL:
            raise InputError(f"{path}: not a detected credential; use --force KIND to import "
                             "it anyway") from None
        if exc.reason == WRONG_KIND:
            raise InputError(f"{path}: not imported as {force_kind}: {exc.detail}") from None
        raise InputError(f"{path}: not read ({exc.reason}: {exc.detail})") from None


def check_kind(kind: str | None) -> None:
    """UsageError unless ``kind`` is None or a known kind id (``import --force KIND``)."""
    if kind is not None and kind not in KINDS:
        raise UsageError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")


@contextlib.contextmanager
def _directory(path: Path) -> Iterator[int | None]:
    """The parent of a named path, opened as a directory (its own parents are the user's
    choice and are followed); None where the OS has no ``dir_fd``."""
    if not AT_SUPPORTED:
        yield None
        return
    dir_fd = read.open_dir(path.parent)
    try:
        yield dir_fd
    finally:
        os.close(dir_fd)
