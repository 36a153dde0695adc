"""The private directory in a shared place (``credguard.fs.shared``), part by part: the exact
reasons and errors, the choice between the recorded and the preferred name, the race with
another credguard that records one first, and the clean-up when the record cannot be written
(issue 17: each was a surviving mutant).

Real directories in a sticky, world-writable temp dir; the concurrent credguard is a real
process holding the real lock; failed system calls come from strace's fault injection.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from credguard.errors import StateError
from credguard.fs import lock, shared
from credguard.paths import SharedDir

pytestmark = pytest.mark.timeout(60)
NAME = "credguard-test"


@pytest.fixture
def spot(tmp_path: Path) -> SharedDir:
    """A ``/tmp``-like parent (root's, 1777) and a record in a private state dir."""
    if os.geteuid() != 0:
        pytest.fail("needs root: the shared parent must be root's, as /tmp is (CI runs as root)")
    parent = tmp_path / "pub"
    parent.mkdir()
    parent.chmod(0o1777)
    return SharedDir(parent, NAME, tmp_path / "state" / "runtime" / "ram")


def _private(path: Path) -> Path:
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    return path


def test_a_directory_on_another_file_system_is_named_as_such(spot: SharedDir) -> None:
    path = _private(spot.parent / NAME)
    dev = os.stat(spot.parent).st_dev
    assert shared.problem(path, dev) is None
    assert shared.problem(path, dev + 1) == "it is on another file system than its parent"


def test_a_directory_that_cannot_be_created_is_a_state_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "x"
    with pytest.raises(StateError) as error:
        shared._mkdir(missing)
    assert error.value.message == f"cannot create {missing}: No such file or directory"


def test_a_fresh_directory_that_fails_the_check_is_refused_with_the_reason(
    spot: SharedDir,
) -> None:
    with pytest.raises(StateError) as error:
        shared._fresh(spot, os.stat(spot.parent).st_dev + 1)
    message = error.value.message
    assert message.startswith(f"cannot make a private directory in {spot.parent}: "
                              f"{spot.parent / NAME}-")
    assert message.endswith(": it is on another file system than its parent")


def test_the_recorded_directory_wins_over_the_preferred_one(spot: SharedDir) -> None:
    """Once a record exists every process uses what it names, even if the preferred name
    became usable since: two processes must never use two directories."""
    _private(spot.parent / NAME)
    recorded = _private(spot.parent / f"{NAME}-0123456789abcdef")
    spot.record.parent.mkdir(parents=True)
    spot.record.write_text(f"{recorded.name}\n")
    assert shared.claim(spot) == recorded


def test_a_squatted_name_is_skipped_with_a_log_line_saying_what_and_why(
    spot: SharedDir, caplog: pytest.LogCaptureFixture
) -> None:
    (spot.parent / NAME).write_text("squatted\n")
    with caplog.at_level(logging.WARNING, logger="credguard.runtime"):
        path = shared.claim(spot)
    assert path.name.startswith(f"{NAME}-") and path != spot.parent / NAME
    assert spot.record.read_text() == f"{path.name}\n"
    assert (spot.record.parent / ".lock").is_file()  # the record's lock, beside it
    assert [r.getMessage() for r in caplog.records] == [
        f"not using {spot.parent / NAME}: it is not a directory; using {path} instead "
        f"(recorded in {spot.record})"]


def test_never_created_open_even_for_an_instant(spot: SharedDir, tmp_path: Path) -> None:
    """``mkdir`` itself asks for 0700 (the chmod after it only undoes a strict umask): a
    directory created wider, then narrowed, could be entered in between."""
    (spot.parent / NAME).write_text("squatted\n")  # so a random name is made too
    code = ("import sys; from pathlib import Path; from credguard.fs import shared; "
            "from credguard.paths import SharedDir; "
            "print(shared.claim(SharedDir(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))))")
    trace = tmp_path / "trace"
    subprocess.run(["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=mkdir,mkdirat",
                    sys.executable, "-c", code, str(spot.parent), NAME, str(spot.record)],
                   check=True, capture_output=True, timeout=30)
    made = [line for line in trace.read_text().splitlines() if str(spot.parent) in line]
    assert len(made) == 2, made  # the preferred name (exists), then a random one
    assert all(line.rstrip().split(", ")[-1].startswith("0700)") for line in made), made


def test_a_directory_another_credguard_recorded_meanwhile_is_used(spot: SharedDir) -> None:
    """Two credguards start at once, the preferred name squatted: the second waits for the
    record's lock, and when it gets it, it uses what the first recorded instead of making
    (and recording over it) a directory of its own."""
    (spot.parent / NAME).write_text("squatted\n")
    spot.record.parent.mkdir(parents=True, mode=0o700)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from credguard.fs import lock\n"
         "with lock.exclusive(Path(sys.argv[1]), what='x'):\n"
         "    print('held', flush=True); sys.stdin.readline()",
         str(spot.record.with_name(".lock"))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        got: list[Path | BaseException] = []

        def second() -> None:
            try:
                got.append(shared.claim(spot))
            except BaseException as exc:  # reported below
                got.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive(), got  # waiting for the lock
        first = _private(spot.parent / f"{NAME}-fedcba9876543210")
        spot.record.write_text(f"{first.name}\n")
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
    thread.join(20)
    assert got == [first]
    assert spot.record.read_text() == f"{first.name}\n"
    assert sorted(os.listdir(spot.parent)) == [NAME, first.name]  # nothing else made


def test_a_busy_record_lock_says_which_lock(spot: SharedDir,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (spot.parent / NAME).write_text("squatted\n")
    spot.record.parent.mkdir(parents=True, mode=0o700)
    fd = lock.try_exclusive(spot.record.with_name(".lock"))
    assert fd is not None
    monkeypatch.setattr(shared, "_LOCK_TIMEOUT", 0.2)
    try:
        with pytest.raises(StateError) as error:
            shared.claim(spot)
    finally:
        os.close(fd)
    assert error.value.message == (
        "the runtime directory record is busy: another credguard process holds "
        f"{spot.record.with_name('.lock')}")


def test_a_record_that_cannot_be_written_removes_the_new_directory(
    spot: SharedDir, tmp_path: Path
) -> None:
    """The record's rename fails (EIO): the directory just made is removed again, since no
    later process could find it; when that removal fails too (EBUSY), the record's error is
    still the one reported."""
    (spot.parent / NAME).write_text("squatted\n")
    code = ("import sys; from pathlib import Path; from credguard.fs import shared; "
            "from credguard.paths import SharedDir; from credguard.errors import StateError\n"
            "try:\n"
            "    shared.claim(SharedDir(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))\n"
            "except StateError as exc:\n"
            "    print(exc.message)\n")
    for rmdir_fails in (False, True):
        inject = ["-e", "inject=rename,renameat,renameat2:error=EIO"]
        if rmdir_fails:
            inject += ["-e", "inject=rmdir:error=EBUSY"]
        proc = subprocess.run(
            ["strace", "-f", "-qq", "-o", "/dev/null",
             "-e", "trace=rename,renameat,renameat2,rmdir", *inject,
             sys.executable, "-c", code, str(spot.parent), NAME, str(spot.record)],
            capture_output=True, text=True, timeout=30, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == (f"cannot record a private directory in {spot.record}: "
                               "Input/output error\n")
        left = sorted(os.listdir(spot.parent))
        if rmdir_fails:
            assert len(left) == 2 and left[0] == NAME, left
            os.rmdir(spot.parent / left[1])
        else:
            assert left == [NAME]
        assert not spot.record.exists()


def test_each_problem_is_said_in_its_own_words(tmp_path: Path) -> None:
    """What a log line says of a place that is not this user's private directory (mutation
    survivors: nothing read these words)."""
    from credguard.fs import shared

    dev = os.stat(tmp_path).st_dev
    assert shared.problem(tmp_path / "missing", dev) == "it does not exist"
    (tmp_path / "link").symlink_to(tmp_path)
    assert shared.problem(tmp_path / "link", dev) == "it is a symbolic link"
    (tmp_path / "file").write_text("")
    assert shared.problem(tmp_path / "file", dev) == "it is not a directory"
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert shared.problem(private, dev) is None


def test_a_parent_only_its_owner_writes_needs_no_sticky_bit(tmp_path: Path) -> None:
    """A parent closed to group and others is safe without the sticky bit; one open to them
    needs it, and the refusal says why."""
    from credguard.errors import StateError
    from credguard.fs import shared

    closed = tmp_path / "closed"
    closed.mkdir(mode=0o755)
    assert shared._parent_dev(closed) == os.stat(closed).st_dev
    open_ = tmp_path / "open"
    open_.mkdir()
    open_.chmod(0o777)
    with pytest.raises(StateError) as error:
        shared._parent_dev(open_)
    assert error.value.message == (
        f"refusing {open_}: other users could replace what credguard puts there (it is not a "
        "directory with the sticky bit owned by root)")
    with pytest.raises(StateError) as missing:
        shared._parent_dev(tmp_path / "gone")
    assert missing.value.message == f"cannot use {tmp_path / 'gone'}: No such file or directory"
