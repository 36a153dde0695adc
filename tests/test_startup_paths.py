"""The cheap answers the start-up of every command relies on (issue 16) give the same answers
as what they stand in for: :mod:`credguard.paths`' own XDG directories as platformdirs', the
journal listing as :func:`credguard.protect.journal.pending`, and the RAM directory's listing as
its full check, also in a shared tmpfs under a recorded name."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest

from credguard import paths
from credguard.cli.common import _journal_waits
from credguard.handoff import ramdir
from credguard.protect import journal

APP = paths.APP


def from_platformdirs() -> tuple[Path, Path, Path]:
    """(config file, data dir, state dir) as platformdirs answers them."""
    return (Path(platformdirs.user_config_dir(APP, appauthor=False, roaming=True)) / "config.toml",
            Path(platformdirs.user_data_dir(APP, appauthor=False)),
            Path(platformdirs.user_state_dir(APP, appauthor=False)))


def from_paths() -> tuple[Path, Path, Path]:
    return paths.user_config_file(), paths.user_data_dir(), paths.user_state_dir()


@pytest.mark.parametrize("xdg", ["absolute", "relative", "empty", "unset"])
@pytest.mark.parametrize("home_value", ["absolute", "trailing-slash", "relative", "unset"])
def test_the_xdg_dirs_are_platformdirs_own(
    xdg: str, home_value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert paths._plain_xdg()  # Linux: the direct answer is the one in use
    homes = {"absolute": str(tmp_path / "h"), "trailing-slash": f"{tmp_path / 'h'}/",
             "relative": "h"}
    if home_value in homes:
        monkeypatch.setenv("HOME", homes[home_value])
    else:
        monkeypatch.delenv("HOME")
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        values = {"absolute": str(tmp_path / variable), "relative": "rel/dir", "empty": ""}
        if xdg in values:
            monkeypatch.setenv(variable, values[xdg])
        else:
            monkeypatch.delenv(variable, raising=False)
    assert from_paths() == from_platformdirs()


def test_the_journal_is_where_the_journal_module_keeps_it() -> None:
    assert paths.journal_dir() == journal.journal_dir()


def test_the_journal_listing_answers_as_pending_does() -> None:
    where = paths.journal_dir()
    assert _journal_waits() is False and not journal.pending()  # no directory
    where.mkdir(parents=True)
    assert _journal_waits() is False and not journal.pending()
    (where / "0123456789abcdef.lock").write_text("")  # a running transaction's lock only
    assert _journal_waits() is False and not journal.pending()
    (where / "0123456789abcdef.json").write_text("{}")
    assert _journal_waits() is True and journal.pending()


@pytest.fixture
def shared_tmpfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real tmpfs every user may write (sticky, as /dev/shm), the only RAM candidate (needs
    root, as CI runs)."""
    shm = tmp_path / "shm"
    shm.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=1777", "cg-shm", str(shm)],
                   check=True)
    monkeypatch.setattr(paths, "ram_dir_candidates", lambda: [shm])
    try:
        yield shm
    finally:
        subprocess.run(["umount", "-l", str(shm)], check=False)


def test_leftovers_are_found_under_the_preferred_name(shared_tmpfs: Path) -> None:
    base = ramdir.ram_base()
    assert base == shared_tmpfs / f"{APP}-{os.getuid()}"
    assert ramdir.has_leftovers("session-") is False
    (base / "session-123").mkdir()
    assert ramdir.has_leftovers("session-") is True
    assert ramdir.has_leftovers("az-") is False


def test_leftovers_are_found_under_a_recorded_name(shared_tmpfs: Path) -> None:
    """The preferred name is taken (here by a file): the directory gets a random name, which
    only the record in the state dir tells; the listing finds it all the same."""
    (shared_tmpfs / f"{APP}-{os.getuid()}").write_text("")
    base = ramdir.ram_base()
    assert base is not None and base.name.startswith(f"{APP}-{os.getuid()}-")
    assert ramdir.has_leftovers("session-") is False
    (base / "session-123").mkdir()
    assert ramdir.has_leftovers("session-") is True


def test_a_listed_name_is_still_checked(shared_tmpfs: Path) -> None:
    """A directory under this user's name that is open to others is refused by the full check,
    whatever the listing saw in it."""
    open_dir = shared_tmpfs / f"{APP}-{os.getuid()}"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    (open_dir / "session-123").mkdir()
    assert ramdir.has_leftovers("session-") is False


def test_the_quick_check_lists_every_ram_candidate() -> None:
    """``check``'s quick path names the shared tmpfs itself (no pathlib): the one paths has."""
    from credguard.cli import quick

    runtime = paths.runtime_dir()
    assert [p for p in paths.ram_dir_candidates() if p != runtime] == [Path(quick.SHM)]
