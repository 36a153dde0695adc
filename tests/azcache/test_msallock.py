"""credguard's MSAL cache lock against the real msal-extensions CrossPlatLock in another process."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from credguard.azcache import msallock
from credguard.azcache.msallock import msal_lock
from credguard.errors import InputError, StateError

# Holds the lock until a line arrives on stdin; the exact class the Azure CLI uses.
HOLDER = """
import sys
from msal_extensions.cache_lock import CrossPlatLock
with CrossPlatLock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""

# Tries once (msal-extensions has no timeout parameter: 5 s waiting for the file to go away,
# then 5 s of non-blocking flock attempts) and reports when it has the lock.
TAKER = """
import sys
from msal_extensions.cache_lock import CrossPlatLock
print("trying", flush=True)
with CrossPlatLock(sys.argv[1]):
    print("held", flush=True)
"""


class Child:
    """A Python process running one of the scripts above, read line by line with timeouts."""

    def __init__(self, script: str, lockfile: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, str(lockfile)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
        )

    def line(self, timeout: float) -> str | None:
        """The next line of output, or None if none came within ``timeout`` seconds."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().decode().strip() if ready else None

    def expect(self, word: str, timeout: float = 15.0) -> None:
        got = self.line(timeout)
        if got != word:
            self.proc.kill()
            _, err = self.proc.communicate()
            pytest.fail(f"expected {word!r} from the msal-extensions child, got {got!r}: {err!r}")

    def tell(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "msal_token_cache.json"


def lockfile_of(cache: Path) -> Path:
    return cache.with_name(cache.name + ".lockfile")


@pytest.fixture
def holder(cache: Path) -> Iterator[Child]:
    child = Child(HOLDER, lockfile_of(cache))
    child.expect("held")
    yield child
    child.stop()


@pytest.fixture
def taker(cache: Path) -> Iterator[Child]:
    child = Child(TAKER, lockfile_of(cache))
    yield child
    child.stop()


def test_times_out_while_msal_extensions_holds_the_lock(holder: Child, cache: Path) -> None:
    lockfile = lockfile_of(cache)
    before = lockfile.read_bytes()
    start = time.monotonic()
    with pytest.raises(StateError) as info, msal_lock(cache, timeout=1.0):
        pytest.fail("acquired a lock msal-extensions holds")
    elapsed = time.monotonic() - start

    assert 0.9 <= elapsed < 4.0
    assert info.value.message.startswith(
        "msal_token_cache.json is locked by another process (is an az command running?); "
        "nothing was changed"
    )
    assert str(lockfile) in info.value.message
    assert lockfile.read_bytes() == before == f"{holder.proc.pid} -c".encode()


def test_the_flock_is_respected_after_the_stale_mark(
    holder: Child, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the stale mark the file's existence no longer counts, the holder's flock still does."""
    monkeypatch.setattr(msallock, "STALE_AFTER", 0.2)
    with pytest.raises(StateError, match="is locked by another process"), msal_lock(
        cache, timeout=1.0
    ):
        pytest.fail("acquired a lock msal-extensions holds")


def test_acquires_once_msal_extensions_releases(holder: Child, cache: Path) -> None:
    lockfile = lockfile_of(cache)
    release = threading.Timer(0.5, holder.tell)
    start = time.monotonic()
    release.start()
    try:
        with msal_lock(cache, timeout=10.0):
            waited = time.monotonic() - start
            assert lockfile.read_text().startswith(f"{os.getpid()} ")
            assert lockfile.stat().st_mode & 0o777 == 0o600
    finally:
        release.join()
    assert waited >= 0.45
    holder.expect("released")
    assert not lockfile.exists()  # deleted on release, as msal-extensions does


def test_msal_extensions_waits_while_credguard_holds(taker: Child, cache: Path) -> None:
    with msal_lock(cache):
        taker.expect("trying")
        assert taker.line(1.5) is None  # still waiting
    taker.expect("held", timeout=5.0)
    assert taker.proc.wait(10) == 0


@pytest.mark.slow
def test_msal_extensions_waits_on_the_flock_past_its_stale_mark(
    taker: Child, cache: Path
) -> None:
    """After 5 s msal-extensions stops waiting for the file to go and only the flock holds it."""
    with msal_lock(cache):
        taker.expect("trying")
        assert taker.line(6.5) is None
    taker.expect("held", timeout=5.0)
    assert taker.proc.wait(10) == 0


def test_stale_lockfile_is_taken_over_after_the_stale_mark(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lockfile = lockfile_of(cache)
    lockfile.write_text("4242 /usr/bin/az")  # left behind by a killed az: nobody flocks it
    monkeypatch.setattr(msallock, "STALE_AFTER", 0.3)
    start = time.monotonic()
    with msal_lock(cache, timeout=5.0):
        assert time.monotonic() - start >= 0.3
        assert lockfile.read_text().startswith(f"{os.getpid()} ")
    assert not lockfile.exists()


def test_stale_lockfile_is_not_judged_before_the_stale_mark(cache: Path) -> None:
    lockfile_of(cache).write_text("4242 /usr/bin/az")
    with pytest.raises(StateError, match="is locked by another process"), msal_lock(
        cache, timeout=0.3
    ):
        pytest.fail("took a lock file msal-extensions would still wait on")
    assert lockfile_of(cache).read_text() == "4242 /usr/bin/az"


def test_released_and_deleted_when_the_body_raises(cache: Path) -> None:
    with pytest.raises(KeyError), msal_lock(cache):
        raise KeyError("boom")
    assert not lockfile_of(cache).exists()
    with msal_lock(cache, timeout=0.0):
        pass


# Both ways in: first while it waits for the file to go away (O_EXCL create, then lstat), then
# past the stale mark (plain O_NOFOLLOW|O_NONBLOCK open, then fstat).
both_phases = pytest.mark.parametrize("stale_after", [5.0, 0.0], ids=["waiting", "stale"])


@both_phases
@pytest.mark.parametrize("target_kind", ["file", "dir", "dangling"])
def test_symlinked_lockfile_is_refused(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stale_after: float,
    target_kind: str,
) -> None:
    monkeypatch.setattr(msallock, "STALE_AFTER", stale_after)
    target = tmp_path / "target"
    if target_kind == "file":
        target.write_bytes(b"precious")
    elif target_kind == "dir":
        target.mkdir()
    lockfile_of(cache).symlink_to(target)

    with pytest.raises(InputError, match="symbolic link"), msal_lock(cache, timeout=5.0):
        pytest.fail("locked through a symlink")

    assert lockfile_of(cache).is_symlink()
    if target_kind == "file":
        assert target.read_bytes() == b"precious"
    elif target_kind == "dir":
        assert list(target.iterdir()) == []
    else:
        assert not target.exists()


@both_phases
@pytest.mark.timeout(30)
def test_fifo_lockfile_is_refused_without_blocking(
    cache: Path, monkeypatch: pytest.MonkeyPatch, stale_after: float
) -> None:
    monkeypatch.setattr(msallock, "STALE_AFTER", stale_after)
    os.mkfifo(lockfile_of(cache), 0o600)
    start = time.monotonic()
    with pytest.raises(InputError, match="not a regular file"), msal_lock(cache, timeout=5.0):
        pytest.fail("locked a FIFO")
    assert time.monotonic() - start < 2.0


@pytest.mark.security
@both_phases
def test_lockfile_of_another_user_is_refused(
    cache: Path, monkeypatch: pytest.MonkeyPatch, stale_after: float
) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")
    monkeypatch.setattr(msallock, "STALE_AFTER", stale_after)
    lockfile = lockfile_of(cache)
    lockfile.write_text("1 planted")
    os.chown(lockfile, 4242, 4242)
    with pytest.raises(InputError, match="owned by uid 4242"), msal_lock(cache, timeout=5.0):
        pytest.fail("locked a file of another user")
    assert lockfile.read_text() == "1 planted"
    assert lockfile.stat().st_uid == 4242


def test_windows_is_refused_clearly(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDGUARD_PLATFORM", "windows")
    with pytest.raises(StateError, match="not supported on Windows yet"), msal_lock(cache):
        pytest.fail("locked on Windows")
    assert not lockfile_of(cache).exists()


def test_a_flock_on_a_deleted_lockfile_does_not_count(cache: Path) -> None:
    """A releasing holder deletes the file; a waiter that locks the old inode holds nothing."""
    lockfile = lockfile_of(cache)
    lockfile.write_text("1 az")
    fd = os.open(lockfile, os.O_RDWR)
    try:
        lockfile.unlink()
        assert not msallock._try_lock(fd, lockfile)
        lockfile.write_text("2 az")  # re-created by the next holder
        assert not msallock._try_lock(fd, lockfile)
    finally:
        os.close(fd)
    assert lockfile.read_text() == "2 az"
