"""The deletion's small parts, pinned exactly: refusal reasons and messages, the temporary name,
and the Trash's ``.trashinfo`` clean-up (mutation testing found each unpinned, issue 17).

Real files in temp directories; the refusals are built from real ``OSError`` values.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest

from credguard.protect import shred
from credguard.protect.shred import ShredRefused

pytestmark = pytest.mark.timeout(10)
INFO = b"[Trash Info]\nPath=/home/u/Downloads/x.publishsettings\n"


def test_a_temporary_name_is_the_prefix_and_96_random_bits() -> None:
    names = {shred.temp_name() for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert re.fullmatch(r"\.credguard-[0-9a-f]{24}", name), name


@pytest.mark.parametrize(
    ("code", "reason", "message"),
    [
        (errno.ELOOP, "symlink", "not deleted: it is a symbolic link; refusing to follow it"),
        (errno.EMLINK, "symlink", "not deleted: it is a symbolic link; refusing to follow it"),
        (errno.ENXIO, "not-regular", "not deleted: it is not a regular file"),
        (errno.EISDIR, "not-regular", "not deleted: it is not a regular file"),
        (errno.ENOENT, "not-found", "not deleted: it no longer exists"),
        (errno.ENOTDIR, "not-found", "not deleted: it no longer exists"),
        (errno.EPERM, "read-only", "not deleted: it or its directory cannot be changed "
                                   "(read-only, immutable or no permission)"),
        (errno.EROFS, "read-only", "not deleted: it or its directory cannot be changed "
                                   "(read-only, immutable or no permission)"),
        (errno.EBUSY, "busy", "not deleted: it is in use (mounted on, being executed, or the "
                              "temporary name is taken)"),
    ],
)
def test_a_failed_open_is_refused_with_its_reason_and_message(
    code: int, reason: str, message: str
) -> None:
    refusal = shred._refusal(OSError(code, os.strerror(code)))
    assert isinstance(refusal, ShredRefused)
    assert (refusal.reason, refusal.message) == (reason, message)


def test_any_other_error_is_an_io_error_that_names_the_system_message() -> None:
    refusal = shred._refusal(OSError(errno.EIO, "Input/output error"))
    assert refusal.reason == "io-error"
    assert refusal.message == (
        "not deleted: the file system reported an error before anything was changed "
        "(Input/output error)"
    )


def test_an_error_without_an_errno_is_an_io_error() -> None:
    # errno None must not be read as errno 1 (EPERM, "read-only") or any other code.
    refusal = shred._refusal(OSError("something odd"))
    assert refusal.reason == "io-error"
    assert refusal.message.startswith("not deleted: the file system reported an error")


def _trash(tmp_path: Path) -> tuple[Path, Path]:
    files = tmp_path / "Trash" / "files"
    files.mkdir(parents=True)
    return files, tmp_path / "Trash" / "info"


def test_a_trashinfo_is_removed_and_only_it(tmp_path: Path) -> None:
    files, info = _trash(tmp_path)
    info.mkdir()
    (info / "x.publishsettings.trashinfo").write_bytes(INFO)
    (info / "y.publishsettings.trashinfo").write_bytes(INFO)
    (info / "x.publishsettings").write_bytes(INFO)  # the name without the suffix: not ours
    assert shred.remove_trashinfo(files, "x.publishsettings") is True
    assert sorted(os.listdir(info)) == ["x.publishsettings", "y.publishsettings.trashinfo"]
    assert shred.remove_trashinfo(files, "x.publishsettings") is False


def test_no_info_directory_is_nothing_to_remove(tmp_path: Path) -> None:
    files, _info = _trash(tmp_path)
    assert shred.remove_trashinfo(files, "x.publishsettings") is False


def test_an_info_directory_that_is_a_symlink_is_refused_not_followed(tmp_path: Path) -> None:
    files, info = _trash(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.publishsettings.trashinfo").write_bytes(INFO)
    info.symlink_to(elsewhere)
    with pytest.raises(ShredRefused) as refused:
        shred.remove_trashinfo(files, "x.publishsettings")
    assert refused.value.reason == "symlink"
    assert refused.value.message == "not deleted: it is a symbolic link; refusing to follow it"
    assert os.listdir(elsewhere) == ["x.publishsettings.trashinfo"]


def test_an_info_that_is_a_file_is_refused(tmp_path: Path) -> None:
    files, info = _trash(tmp_path)
    info.write_bytes(INFO)
    with pytest.raises(ShredRefused) as refused:
        shred.remove_trashinfo(files, "x.publishsettings")
    assert refused.value.reason == "not-regular"
    assert refused.value.message == "not deleted: it is not a regular file"
    assert info.read_bytes() == INFO


def test_a_trashinfo_that_is_a_directory_is_refused_and_kept(tmp_path: Path) -> None:
    files, info = _trash(tmp_path)
    (info / "x.publishsettings.trashinfo").mkdir(parents=True)
    with pytest.raises(ShredRefused) as refused:
        shred.remove_trashinfo(files, "x.publishsettings")
    assert refused.value.reason == "not-regular"
    assert (info / "x.publishsettings.trashinfo").is_dir()


@pytest.mark.parametrize("target", ["directory", "dangling"])
def test_a_trashinfo_symlink_is_removed_itself_whatever_it_points_to(
    tmp_path: Path, target: str
) -> None:
    files, info = _trash(tmp_path)
    info.mkdir()
    pointed = tmp_path / "pointed"
    if target == "directory":
        pointed.mkdir()
        (pointed / "keep").write_bytes(INFO)
    (info / "x.publishsettings.trashinfo").symlink_to(pointed)
    assert shred.remove_trashinfo(files, "x.publishsettings") is True
    assert os.listdir(info) == []
    if target == "directory":
        assert os.listdir(pointed) == ["keep"]


def test_the_info_directory_descriptor_is_closed_on_every_path(tmp_path: Path) -> None:
    files, info = _trash(tmp_path)
    (info / "d.trashinfo").mkdir(parents=True)
    (info / "x.trashinfo").write_bytes(INFO)
    before = len(os.listdir("/proc/self/fd"))
    assert shred.remove_trashinfo(files, "x") is True
    assert shred.remove_trashinfo(files, "none") is False
    with pytest.raises(ShredRefused):
        shred.remove_trashinfo(files, "d")
    assert len(os.listdir("/proc/self/fd")) == before
