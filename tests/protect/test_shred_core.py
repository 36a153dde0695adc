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

from credguard.protect import remains, shred
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
    refusal = shred.refusal(OSError(code, os.strerror(code)))
    assert isinstance(refusal, ShredRefused)
    assert (refusal.reason, refusal.message) == (reason, message)


def test_any_other_error_is_an_io_error_that_names_the_system_message() -> None:
    refusal = shred.refusal(OSError(errno.EIO, "Input/output error"))
    assert refusal.reason == "io-error"
    assert refusal.message == (
        "not deleted: the file system reported an error before anything was changed "
        "(Input/output error)"
    )


def test_an_error_without_an_errno_is_an_io_error() -> None:
    # errno None must not be read as errno 1 (EPERM, "read-only") or any other code.
    refusal = shred.refusal(OSError("something odd"))
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
    assert remains.remove_trashinfo(files, "x.publishsettings") is True
    assert sorted(os.listdir(info)) == ["x.publishsettings", "y.publishsettings.trashinfo"]
    assert remains.remove_trashinfo(files, "x.publishsettings") is False


def test_no_info_directory_is_nothing_to_remove(tmp_path: Path) -> None:
    files, _info = _trash(tmp_path)
    assert remains.remove_trashinfo(files, "x.publishsettings") is False


def test_an_info_directory_that_is_a_symlink_is_refused_not_followed(tmp_path: Path) -> None:
    files, info = _trash(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.publishsettings.trashinfo").write_bytes(INFO)
    info.symlink_to(elsewhere)
    with pytest.raises(ShredRefused) as refused:
        remains.remove_trashinfo(files, "x.publishsettings")
    assert refused.value.reason == "symlink"
    assert refused.value.message == "not deleted: it is a symbolic link; refusing to follow it"
    assert os.listdir(elsewhere) == ["x.publishsettings.trashinfo"]


def test_an_info_that_is_a_file_is_refused(tmp_path: Path) -> None:
    files, info = _trash(tmp_path)
    info.write_bytes(INFO)
    with pytest.raises(ShredRefused) as refused:
        remains.remove_trashinfo(files, "x.publishsettings")
    assert refused.value.reason == "not-regular"
    assert refused.value.message == "not deleted: it is not a regular file"
    assert info.read_bytes() == INFO


def test_a_trashinfo_that_is_a_directory_is_refused_and_kept(tmp_path: Path) -> None:
    files, info = _trash(tmp_path)
    (info / "x.publishsettings.trashinfo").mkdir(parents=True)
    with pytest.raises(ShredRefused) as refused:
        remains.remove_trashinfo(files, "x.publishsettings")
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
    assert remains.remove_trashinfo(files, "x.publishsettings") is True
    assert os.listdir(info) == []
    if target == "directory":
        assert os.listdir(pointed) == ["keep"]


def test_the_info_directory_descriptor_is_closed_on_every_path(tmp_path: Path) -> None:
    files, info = _trash(tmp_path)
    (info / "d.trashinfo").mkdir(parents=True)
    (info / "x.trashinfo").write_bytes(INFO)
    before = len(os.listdir("/proc/self/fd"))
    assert remains.remove_trashinfo(files, "x") is True
    assert remains.remove_trashinfo(files, "none") is False
    with pytest.raises(ShredRefused):
        remains.remove_trashinfo(files, "d")
    assert len(os.listdir("/proc/self/fd")) == before


# -- a step that fails midway: what is true of the file, exactly --------------------------------


def _victim(tmp_path: Path) -> tuple[Path, shred.Identity]:
    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / "a.publishsettings"
    path.write_bytes(b"<PublishData>" + b"A" * 5000 + b"</PublishData>")
    path.chmod(0o600)
    return path, shred.Identity.of(os.stat(path, follow_symlinks=False))


def _shred(path: Path, expected: shred.Identity, step: object, new: str) -> shred.ShredResult:
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return shred.shred_at(fd, path.name, expected, new_name=new, step=step)  # type: ignore[arg-type]
    finally:
        os.close(fd)


def test_an_overwrite_that_fails_says_the_file_is_still_in_place(tmp_path: Path) -> None:
    path, expected = _victim(tmp_path)

    def fail(label: str) -> None:
        if label == "mid-overwrite":
            raise OSError(errno.EIO, "Input/output error")

    result = _shred(path, expected, fail, ".credguard-x")
    assert result.deleted is False
    assert result.message == ("overwrite failed (Input/output error); the file is still in "
                              "place, partly overwritten")
    assert os.listdir(path.parent) == ["a.publishsettings"]


def test_a_temporary_name_replaced_before_the_unlink_is_left_and_said(tmp_path: Path) -> None:
    """Someone renames another file onto the temporary name after it was emptied: it is not
    unlinked (it is not the file that was overwritten), and the message says why."""
    path, expected = _victim(tmp_path)
    new = ".credguard-0123"
    intruder = tmp_path / "intruder"
    intruder.write_bytes(b"not ours")

    def swap(label: str) -> None:
        if label == "after-truncate":
            os.rename(intruder, path.parent / new)

    result = _shred(path, expected, swap, new)
    assert result.deleted is False
    assert result.message == ("overwritten and emptied, but could not be removed (the temporary "
                              f"name was replaced); it is left as {new!r}")
    assert (path.parent / new).read_bytes() == b"not ours"


def test_finishing_a_temporary_name_another_user_owns_is_refused_untouched(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root to give a file to another uid (CI runs as root)")
    left = tmp_path / ".credguard-abc"
    left.write_bytes(b"someone else's")
    os.chown(left, 4242, 4242)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(ShredRefused) as refused:
            remains.finish_renamed(fd, left.name)
    finally:
        os.close(fd)
    assert refused.value.reason == "other-owner"
    assert refused.value.message == "not deleted: it belongs to another user"
    assert left.read_bytes() == b"someone else's"


def test_a_dangling_symlink_on_the_temporary_name_is_a_taken_name(tmp_path: Path) -> None:
    """The rename would replace whatever holds the temporary name; a symlink there, even one
    that points nowhere, is something: refused before anything changes, the link kept."""
    path, expected = _victim(tmp_path)
    before = path.read_bytes()
    (path.parent / ".credguard-link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ShredRefused) as info:
        _shred(path, expected, lambda label: None, ".credguard-link")
    assert info.value.reason == "busy" and "temporary name" in info.value.message
    assert path.read_bytes() == before
    assert os.readlink(path.parent / ".credguard-link") == str(tmp_path / "nowhere")


def test_shred_at_hands_its_content_check_on(tmp_path: Path) -> None:
    """``verify`` is read through the descriptor about to be overwritten: one that says no
    keeps the file untouched; one that says yes lets it go."""
    path, expected = _victim(tmp_path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(ShredRefused) as info:
            shred.shred_at(fd, path.name, expected, verify=lambda _fd, _size: False)
        assert info.value.reason == "content" and path.exists()
        seen: list[int] = []
        assert shred.shred_at(fd, path.name, expected,
                              verify=lambda _fd, size: not seen.append(size)).deleted
        assert seen == [expected.size] and not path.exists()
    finally:
        os.close(fd)


def test_shred_at_overwrites_with_the_seeded_noise(tmp_path: Path) -> None:
    """``shred_at`` hands its seed on: the overwrite is the seed's reproducible noise, which
    recovery recognises in a half-overwritten file."""
    from credguard.protect.overwrite import noise

    path, expected = _victim(tmp_path)
    size = path.stat().st_size
    seen: list[bytes] = []

    def step(name: str) -> None:
        if name == "after-overwrite":
            seen.append(path.read_bytes())

    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert shred.shred_at(fd, path.name, expected, seed=b"s" * 16, step=step).deleted
    finally:
        os.close(fd)
    assert seen == [noise(b"s" * 16, 1, 0, size)]


def test_an_empty_file_passes_each_hook_once_over_every_pass(tmp_path: Path) -> None:
    """Three passes over an empty file: "mid-overwrite" runs once (for the transaction's
    crash tests), never again in a later pass."""
    from credguard.protect.overwrite import overwrite

    path = tmp_path / "empty"
    path.write_bytes(b"")
    steps: list[str] = []
    fd = os.open(path, os.O_RDWR)
    try:
        overwrite(fd, 0, 3, None, steps.append)
    finally:
        os.close(fd)
    assert steps == ["before-overwrite", "mid-overwrite", "after-overwrite"]
