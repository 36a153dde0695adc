"""``atomic_write_many`` (issue 16), the group commit under the journal and the vault: every
target durable when it returns; an error leaves no temporary file, and a target renamed before
the error holds its new content (its caller journals that and forgets it on an error)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from credguard.fs.atomic import atomic_write_many


def test_every_target_is_written_0600_and_no_temporary_is_left(tmp_path: Path) -> None:
    old = tmp_path / "a" / "one"
    old.parent.mkdir()
    old.write_bytes(b"old")
    targets = [old, tmp_path / "a" / "two", tmp_path / "b" / "three"]
    atomic_write_many([(p, p.name.encode()) for p in targets])
    assert [p.read_bytes() for p in targets] == [b"one", b"two", b"three"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in targets)
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o700
    assert sorted(os.listdir(tmp_path / "a")) == ["one", "two"]


def test_an_error_before_the_renames_changes_no_target(tmp_path: Path) -> None:
    tmp_path = tmp_path / "w"
    tmp_path.mkdir()
    first = tmp_path / "first"
    first.write_bytes(b"old")
    with pytest.raises(OSError):
        atomic_write_many([(first, b"new"), (tmp_path / ("x" * 300), b"name too long")])
    assert first.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["first"]


def test_an_error_at_a_rename_keeps_what_was_renamed_and_removes_the_rest(
        tmp_path: Path) -> None:
    tmp_path = tmp_path / "w"
    tmp_path.mkdir()
    first, blocked, last = tmp_path / "first", tmp_path / "blocked", tmp_path / "last"
    blocked.mkdir()
    (blocked / "keep").write_bytes(b"")  # a non-empty directory: the rename over it fails
    with pytest.raises(OSError):
        atomic_write_many([(first, b"1"), (blocked, b"2"), (last, b"3")])
    assert first.read_bytes() == b"1" and blocked.is_dir() and not last.exists()
    assert sorted(os.listdir(tmp_path)) == ["blocked", "first"]
