"""File-system errors on the vault path (issue 12, item 6), each produced for real: a read-only
mount, an immutable directory, a full tmpfs, and errors the kernel would give a failing disk,
injected by strace into the real ``credguard protect``. Each must be a clear refusal naming the
vault directory and the error, exit 7, the source kept byte for byte, no journal entry and
nothing new in the vault directory."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import payloads
from helpers.daemon import wait_for
from helpers.home import Home, run_subprocess
from helpers.secret_service import SecretService

from credguard import paths
from credguard.errors import ExitCode

pytestmark = pytest.mark.timeout(120)


@dataclass
class Scene:
    """A credential in Downloads, about to be protected, and the vault as it was before."""

    source: Path
    data: bytes
    before: list[str] | None

    def check_refused(self, run_code: int, out: str, errname: str, doing: str) -> None:
        """``doing``: how the message starts ("lock", "write item", ...)."""
        result = json.loads(out)["results"][0]
        assert run_code == ExitCode.STATE, out
        assert result["reason"] == "vault" and result["protected"] is False
        error, number = result["error"], getattr(errno, errname)
        assert error.startswith(f"cannot {doing}") and os.strerror(number) in error, error
        assert f" the vault in {paths.vault_dir()}: " in error, error
        assert self.source.read_bytes() == self.data
        assert not list((paths.user_state_dir() / "journal").glob("*.json"))
        assert vault_listing() == self.before


def vault_listing() -> list[str] | None:
    vault = paths.vault_dir()
    return sorted(os.listdir(vault)) if vault.exists() else None


def scene(home: Home) -> Scene:
    data = payloads.publish_profile().data
    source = home.write("Downloads/contoso.PublishSettings", data)
    return Scene(source, data, vault_listing())


def make_vault(home: Home) -> None:
    """A vault with a key, its state file and one item."""
    first = home.write("Downloads/first.publishsettings", payloads.publishsettings_v1().data)
    run = run_subprocess("import", str(first))
    assert run.code == 0, run.err
    first.unlink()


def protect(source: Path, *wrapper: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        [*wrapper, sys.executable, "-m", "credguard", "protect", "--json", str(source)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )
    assert "internal error" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout


@pytest.fixture
def data_tmpfs(home: Home, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
               ) -> Iterator[Path]:
    """A small tmpfs (size from the test's ``size`` param, default 1 MiB) as XDG_DATA_HOME."""
    size = getattr(request, "param", "1m")
    mount = home.root / "data-tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "cg-vault",
                    str(mount)], check=True)
    monkeypatch.setenv("XDG_DATA_HOME", str(mount))
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def remount_read_only(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)


def test_read_only_vault_file_system(
    secret_service: SecretService, home: Home, data_tmpfs: Path
) -> None:
    make_vault(home)
    remount_read_only(data_tmpfs)
    s = scene(home)
    s.check_refused(*protect(s.source), "EROFS", "lock")


def test_read_only_file_system_before_the_vault_exists(
    secret_service: SecretService, home: Home, data_tmpfs: Path
) -> None:
    remount_read_only(data_tmpfs)
    s = scene(home)
    s.check_refused(*protect(s.source), "EROFS", "create")
    assert secret_service.items() == {}  # no key was made for a vault that cannot exist


def test_immutable_vault_directory(secret_service: SecretService, home: Home) -> None:
    make_vault(home)  # on the test's ext4 home: chattr needs a file system that has the flag
    vault = paths.vault_dir()
    subprocess.run(["chattr", "+i", str(vault)], check=True)
    try:
        s = scene(home)
        s.check_refused(*protect(s.source), "EPERM", "write item")
    finally:
        subprocess.run(["chattr", "-i", str(vault)], check=True)


def test_an_item_that_cannot_be_removed_names_the_vault(
        secret_service: SecretService, home: Home) -> None:
    """``vault rm`` of an item in an immutable vault directory: a refusal naming the vault and
    the error, exit 7, the item kept."""
    make_vault(home)
    vault = paths.vault_dir()
    (item,) = (name.removesuffix(".cgv") for name in os.listdir(vault) if name.endswith(".cgv"))
    subprocess.run(["chattr", "+i", str(vault)], check=True)
    try:
        run = run_subprocess("vault", "rm", item, "--yes")
    finally:
        subprocess.run(["chattr", "-i", str(vault)], check=True)
    assert run.code == ExitCode.STATE, run.err
    assert f"cannot remove item {item} from the vault in {vault}: " in run.err, run.err
    assert os.strerror(errno.EPERM) in run.err
    assert f"{item}.cgv" in os.listdir(vault)


@pytest.mark.parametrize("data_tmpfs", ["64k"], indirect=True)
def test_full_vault_file_system(
    secret_service: SecretService, home: Home, data_tmpfs: Path
) -> None:
    make_vault(home)
    filler = data_tmpfs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:  # take every free block
        with pytest.raises(OSError) as full:
            while True:
                os.write(fd, b"\0" * 4096)
        assert full.value.errno == errno.ENOSPC
    finally:
        os.close(fd)
    s = scene(home)
    s.before = vault_listing()
    code, out = protect(s.source)
    s.check_refused(code, out, "ENOSPC", "write item")
    assert "free some space" in json.loads(out)["results"][0]["error"]
    filler.unlink()  # with room again, the same command protects it
    assert protect(s.source)[0] == 0 and not s.source.exists()


# -- errors of a failing disk, injected by strace into the real process -------------------------


def strace(path: Path, syscall: str, error: str) -> tuple[str, ...]:
    """A command prefix: fail every ``syscall`` on ``path`` (or an fd open on it) with ``error``."""
    return ("strace", "-f", "-qq", "-o", "/dev/null", "-P", str(path), "-e", f"trace={syscall}",
            "-e", f"inject={syscall}:error={error}")


@pytest.mark.parametrize(("error", "syscall", "file"), [
    ("EACCES", "openat", ".lock"), ("EIO", "openat", ".lock"), ("EIO", "flock", ".lock"),
])
def test_vault_lock_fails(
    secret_service: SecretService, home: Home, error: str, syscall: str, file: str
) -> None:
    make_vault(home)
    s = scene(home)
    code, out = protect(s.source, *strace(paths.vault_dir() / file, syscall, error))
    s.check_refused(code, out, error, "lock")


@pytest.mark.parametrize("error", ["EIO", "EDQUOT", "ENOSPC"])
def test_vault_directory_fsync_fails(
    secret_service: SecretService, home: Home, error: str
) -> None:
    """The item's rename is not known to be durable: it is no vault copy (the old code ignored
    this error, reported the item written and deleted the source)."""
    make_vault(home)
    s = scene(home)
    code, out = protect(s.source, *strace(paths.vault_dir(), "fsync", error))
    s.check_refused(code, out, error, "write item")


def process_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def traced(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    return any(line.split()[1] != "0" for line in status.splitlines()
               if line.startswith("TracerPid:"))


def test_io_error_reading_the_item_back(secret_service: SecretService, home: Home) -> None:
    make_vault(home)
    s = scene(home)
    env = {**os.environ, "CREDGUARD_TEST_STOP_AT": "after-item-write"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "credguard", "protect", "--json", str(s.source)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        wait_for(lambda: process_state(proc.pid) == "T")  # written, not yet read back
        written = sorted(set(vault_listing() or []) - set(s.before or []))
        assert len(written) == 1 and written[0].endswith(".cgv")
        tracer = subprocess.Popen(["strace", "-p", str(proc.pid),
                                   *strace(paths.vault_dir() / written[0], "openat", "EIO")[1:]])
        wait_for(lambda: traced(proc.pid))
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=60)
        tracer.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "internal error" not in err, err
    s.check_refused(proc.returncode, out, "EIO", "read item")
