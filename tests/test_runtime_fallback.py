"""Without ``XDG_RUNTIME_DIR``, another local user who takes credguard's usual names first
(``/tmp/credguard-UID`` for the control socket, ``/dev/shm/credguard-UID`` for ``exec``'s RAM
copies) stops nothing and gets nothing: the daemon runs, ``status`` reaches it, ``exec`` works,
credguard says which name it skipped and uses a random one it records in the user's state dir,
and what the squatter made is never written into.

The real daemon and CLI run in a private mount namespace where ``/tmp`` and ``/dev/shm`` are
fresh tmpfs mounts (the pytest dirs bound back in): on the host those names belong to every
other test run of this uid. The squatter is a second real uid (``helpers.attacker``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import payloads
from helpers.attacker import PYTHON, User, other_user
from helpers.daemon import DaemonProcess, wait_for
from helpers.home import REPO, Home, Run

from credguard import paths
from credguard.errors import StateError
from credguard.fs import shared

pytestmark = pytest.mark.timeout(120)
Cli = Callable[..., Run]
PY = sys.executable
FIXED = f"credguard-{os.getuid()}"
RANDOM = re.compile(rf"{FIXED}-[0-9a-f]{{16}}")
KINDS = ("open-dir", "symlink", "file")
WHY = {"open-dir": "it belongs to uid", "symlink": "it is a symbolic link",
       "file": "it is not a directory"}

# The squatter's move, run as its own uid inside the namespace: take each PATH first, as a
# directory open to all, as a symbolic link to TARGET, or as a file.
SQUAT = r"""
import os, sys
kind = sys.argv[1]
for pair in sys.argv[2:]:
    path, target = pair.split("=", 1)
    if kind == "open-dir":
        os.mkdir(path)
        os.chmod(path, 0o777)
    elif kind == "symlink":
        os.symlink(target, path)
    else:
        with open(path, "x") as f:
            f.write("squatted\n")
"""
# The namespace: fresh tmpfs on /dev/shm and /tmp, then the test's own dirs under /tmp (the
# pytest base dir, the checkout, the venv: arguments) bound back in.
HOLD = """set -e
mount -t tmpfs -o mode=1777,size=32m cg-shm /dev/shm
i=0
for dir in "$@"; do i=$((i+1)); mkdir /dev/shm/.keep$i; mount --bind "$dir" /dev/shm/.keep$i; done
mount -t tmpfs -o mode=1777,size=64m cg-tmp /tmp
i=0
for dir in "$@"; do
  i=$((i+1)); mkdir -p "$dir"; mount --move /dev/shm/.keep$i "$dir"; rmdir /dev/shm/.keep$i
done
echo ready
exec sleep 3600
"""


def _kept(*dirs: Path) -> list[str]:
    """Those of ``dirs`` under /tmp that no other of them holds."""
    real = {d.resolve() for d in dirs if d.resolve().is_relative_to("/tmp")}
    return sorted(str(d) for d in real if not any(o != d and d.is_relative_to(o) for o in real))


class PrivateTmp:
    """The private mount namespace: commands enter it with ``nsenter``; the test reads it
    through ``/proc/<holder>/root``."""

    def __init__(self, basetemp: Path) -> None:
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", HOLD, "hold",
             *_kept(basetemp, REPO, Path(sys.prefix))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        if self.proc.stdout.readline() != b"ready\n":
            why = self.proc.stderr.read().decode()
            self.close()
            pytest.fail(f"no private /tmp: {why}", pytrace=False)

    def cmd(self, *args: str) -> list[str]:
        return ["nsenter", f"--mount=/proc/{self.proc.pid}/ns/mnt", f"--wd={os.getcwd()}",
                "--", *args]

    def credguard(self, *args: str,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(self.cmd(PY, "-m", "credguard", *args), capture_output=True,
                              timeout=60, check=False, env=env)

    def host(self, path: str) -> Path:
        """``path`` inside the namespace, as this (host) process reaches it."""
        return Path(f"/proc/{self.proc.pid}/root") / path.lstrip("/")

    def squat(self, user: User, kind: str, *pairs: str) -> None:
        become = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups"]
        run = subprocess.run(self.cmd(*become, PYTHON, "-I", "-c", SQUAT, kind, *pairs),
                             capture_output=True, timeout=30, check=False, env={"PATH": "/bin"})
        assert run.returncode == 0, run.stderr.decode()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


class NsDaemon(DaemonProcess):
    """:class:`DaemonProcess` with the daemon and its ``status`` client in the namespace."""

    def __init__(self, space: PrivateTmp, env: dict[str, str], log: Path) -> None:
        super().__init__(env, log)
        self.space = space

    def start(self, wait: bool = True) -> NsDaemon:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.space.cmd(PY, "-m", "credguard", "daemon"),
                                     env=self.env, stdout=self._log, stderr=self._log)
        if wait:
            wait_for(self.ready, timeout=30)
        return self

    def status(self) -> dict[str, object] | None:
        run = self.space.credguard("status", "--json", env=self.env)
        return json.loads(run.stdout) if run.returncode == 0 else None


@pytest.fixture
def space(tmp_path_factory: pytest.TempPathFactory,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateTmp]:
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.delenv("TMPDIR", raising=False)
    ns = PrivateTmp(tmp_path_factory.getbasetemp())
    try:
        yield ns
    finally:
        ns.close()


@pytest.fixture
def attacker() -> Iterator[User]:
    with other_user() as user:
        yield user


def snapshot(path: Path) -> tuple[object, ...]:
    """Everything that would change if credguard wrote into, through or over ``path``."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        inside: object = os.readlink(path)
    elif stat.S_ISDIR(st.st_mode):
        inside = sorted(os.listdir(path))
    else:
        inside = path.read_bytes()
    return st.st_ino, st.st_uid, st.st_mode, st.st_mtime_ns, st.st_ctime_ns, inside


def squatted(space: PrivateTmp, attacker: User, kind: str, where: str) -> list[Path]:
    """``where/credguard-UID`` taken by ``attacker`` (a link points at a private 0700 dir of
    this user's, which would pass every check if followed); what must stay as it is."""
    victim = space.host(f"{where}/victim-private")
    victim.mkdir(mode=0o700)
    space.squat(attacker, kind, f"{where}/{FIXED}={where}/victim-private")
    return [space.host(f"{where}/{FIXED}"), victim]


def record(home: Home, purpose: str) -> str:
    return (home.root / ".local" / "state" / "credguard" / "runtime" / purpose).read_text().strip()


def imported(cli: Cli, home: Home, payload: payloads.Payload) -> str:
    path = home.write("Downloads/contoso.PublishSettings", payload.data)
    run = cli("import", "--json", str(path))
    assert run.code == 0, run.err
    return str(json.loads(run.out)["imported"][0]["id"])


# -- the control socket ---------------------------------------------------------------------


@pytest.mark.security
@pytest.mark.parametrize("kind", KINDS)
def test_a_squatted_control_dir_neither_stops_the_daemon_nor_is_used(
    kind: str, secret_service: object, home: Home, space: PrivateTmp, attacker: User,
    tmp_path: Path,
) -> None:
    untouched = squatted(space, attacker, kind, "/tmp")
    before = [snapshot(p) for p in untouched]
    daemon = NsDaemon(space, dict(os.environ), tmp_path / "daemon.log").start()
    try:
        status = daemon.status()
        assert status is not None and status["running"] is True
        name = record(home, "control")
        assert RANDOM.fullmatch(name)
        assert stat.S_ISSOCK(space.host(f"/tmp/{name}/control.sock").lstat().st_mode)
        assert f"not using /tmp/{FIXED}: {WHY[kind]}" in daemon.stderr()
    finally:
        assert daemon.stop() == 0
    again = NsDaemon(space, dict(os.environ), tmp_path / "again.log").start()  # finds it again
    try:
        assert record(home, "control") == name and "not using" not in again.stderr()
    finally:
        again.stop()
    assert [snapshot(p) for p in untouched] == before


@pytest.mark.security
def test_without_a_squatter_the_usual_names_are_used(
    secret_service: object, cli: Cli, home: Home, space: PrivateTmp, tmp_path: Path
) -> None:
    payload = payloads.publish_profile()
    item = imported(cli, home, payload)
    daemon = NsDaemon(space, dict(os.environ), tmp_path / "daemon.log").start()
    try:
        assert stat.S_ISSOCK(space.host(f"/tmp/{FIXED}/control.sock").lstat().st_mode)
    finally:
        daemon.stop()
    run = space.credguard("exec", item, "--", "sh", "-c", 'echo "$CREDGUARD_FILE"')
    assert run.returncode == 0 and run.stdout.decode().startswith(f"/dev/shm/{FIXED}/")
    assert not (home.root / ".local" / "state" / "credguard" / "runtime").exists()
    assert "not using" not in daemon.stderr() + run.stderr.decode()


@pytest.mark.security
def test_a_tmpfs_runtime_dir_is_used_whatever_is_in_the_shared_dirs(
    secret_service: object, cli: Cli, home: Home, space: PrivateTmp, attacker: User,
    tmp_path: Path,
) -> None:
    item = imported(cli, home, payloads.publish_profile())
    for where in ("/tmp", "/dev/shm"):
        squatted(space, attacker, "open-dir", where)
    space.host("/dev/shm/run").mkdir(mode=0o700)  # as logind makes /run/user/UID
    env = {**os.environ, "XDG_RUNTIME_DIR": "/dev/shm/run"}
    daemon = NsDaemon(space, env, tmp_path / "daemon.log").start()
    try:
        assert stat.S_ISSOCK(space.host("/dev/shm/run/credguard/control.sock").lstat().st_mode)
        run = space.credguard("exec", item, "--", "sh", "-c", 'echo "$CREDGUARD_FILE"', env=env)
    finally:
        daemon.stop()
    assert run.returncode == 0 and run.stdout.decode().startswith("/dev/shm/run/credguard/")
    assert "not using" not in daemon.stderr() + run.stderr.decode()
    assert not (home.root / ".local" / "state" / "credguard" / "runtime").exists()


# -- exec's RAM copies ------------------------------------------------------------------------


@pytest.mark.security
@pytest.mark.parametrize("kind", KINDS)
def test_a_squatted_ram_dir_neither_fails_exec_nor_is_used(
    kind: str, secret_service: object, cli: Cli, home: Home, space: PrivateTmp, attacker: User
) -> None:
    payload = payloads.publish_profile()
    item = imported(cli, home, payload)
    untouched = squatted(space, attacker, kind, "/dev/shm")
    before = [snapshot(p) for p in untouched]
    child = 'printf %s "$CREDGUARD_FILE" >&2; cat "$CREDGUARD_FILE"'
    run = space.credguard("exec", item, "--", "sh", "-c", child)
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout == payload.data
    name = record(home, "ram")
    assert RANDOM.fullmatch(name) and f"/dev/shm/{name}/" in run.stderr.decode()
    assert f"not using /dev/shm/{FIXED}: {WHY[kind]}" in run.stderr.decode()
    assert all(secret not in run.stderr.decode() for secret in payload.secrets)
    second = space.credguard("exec", item, "--", "true")  # finds it again, says nothing
    assert second.returncode == 0 and second.stderr == b"" and record(home, "ram") == name
    assert [snapshot(p) for p in untouched] == before


@pytest.mark.security
def test_a_copy_left_by_a_sigkilled_exec_is_swept_by_the_next(
    secret_service: object, cli: Cli, home: Home, space: PrivateTmp, attacker: User,
    tmp_path: Path,
) -> None:
    item = imported(cli, home, payloads.publish_profile())
    untouched = squatted(space, attacker, "open-dir", "/dev/shm")
    before = [snapshot(p) for p in untouched]
    marker = tmp_path / "marker"
    script = f'echo "$CREDGUARD_FILE" > {marker}.new; mv {marker}.new {marker}; exec sleep 30'
    proc = subprocess.Popen(space.cmd(PY, "-m", "credguard", "exec", item, "--", "sh", "-c",
                                      script), stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(marker.exists)
    os.killpg(proc.pid, signal.SIGKILL)  # credguard and its child: nobody cleans up
    proc.wait(10)
    stale = space.host(marker.read_text().strip()).parent
    assert stale.parent.name == record(home, "ram") and stale.is_dir()
    assert space.credguard("exec", item, "--", "true").returncode == 0
    assert not stale.exists()
    assert [snapshot(p) for p in untouched] == before


@pytest.mark.security
def test_a_recorded_name_taken_after_a_reboot_is_not_used(
    secret_service: object, cli: Cli, home: Home, space: PrivateTmp, attacker: User
) -> None:
    item = imported(cli, home, payloads.publish_profile())
    squatted(space, attacker, "open-dir", "/dev/shm")
    assert space.credguard("exec", item, "--", "true").returncode == 0
    first = record(home, "ram")
    shutil.rmtree(space.host(f"/dev/shm/{first}"))  # what a reboot does to a tmpfs
    space.squat(attacker, "open-dir", f"/dev/shm/{first}=")  # the name was visible to all
    taken = snapshot(space.host(f"/dev/shm/{first}"))
    run = space.credguard("exec", item, "--", "sh", "-c", 'echo "$CREDGUARD_FILE"')
    assert run.returncode == 0, run.stderr.decode()
    second = record(home, "ram")
    assert second != first and run.stdout.decode().startswith(f"/dev/shm/{second}/")
    assert snapshot(space.host(f"/dev/shm/{first}")) == taken


# -- credguard.fs.shared on its own -----------------------------------------------------------


@pytest.fixture
def spot(tmp_path: Path) -> paths.SharedDir:
    parent = tmp_path / "shared"
    parent.mkdir()
    parent.chmod(0o1777)
    return paths.SharedDir(parent, FIXED, tmp_path / "state" / "runtime" / "ram")


def test_claim_makes_the_usual_name_and_finds_it_again(spot: paths.SharedDir) -> None:
    assert shared.find(spot) is None
    made = shared.claim(spot)
    assert made == spot.parent / FIXED and stat.S_IMODE(made.stat().st_mode) == 0o700
    assert shared.claim(spot) == shared.find(spot) == made
    assert not spot.record.exists()


@pytest.mark.parametrize("kind", ["0755", "symlink"])
def test_an_own_dir_that_is_not_private_is_skipped_and_left_alone(
    kind: str, spot: paths.SharedDir, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    preferred = spot.parent / FIXED
    if kind == "0755":
        preferred.mkdir(mode=0o755)
    else:
        (tmp_path / "private").mkdir(mode=0o700)
        preferred.symlink_to(tmp_path / "private")
    with caplog.at_level(logging.WARNING, "credguard.runtime"):
        made = shared.claim(spot)
    assert RANDOM.fullmatch(made.name) and shared.find(spot) == made
    assert spot.record.read_text() == f"{made.name}\n"
    assert f"not using {preferred}" in caplog.text
    if kind == "symlink":
        assert preferred.is_symlink() and not list((tmp_path / "private").iterdir())
    else:
        assert stat.S_IMODE(preferred.stat().st_mode) == 0o755 and not list(preferred.iterdir())


@pytest.mark.parametrize("text", ["../../etc", f"{FIXED}-zz", "/tmp", f"{FIXED}-{'0' * 16}"])
def test_a_forged_record_leads_only_to_a_private_dir(spot: paths.SharedDir, text: str) -> None:
    spot.record.parent.mkdir(parents=True)
    spot.record.write_text(text)
    (spot.parent / f"{FIXED}-{'0' * 16}").mkdir(mode=0o755)  # well named, but not private
    assert shared.find(spot) is None
    assert shared.claim(spot) == spot.parent / FIXED


def test_a_parent_where_others_can_rename_is_refused(spot: paths.SharedDir) -> None:
    spot.parent.chmod(0o777)  # no sticky bit
    with pytest.raises(StateError, match="other users could replace"):
        shared.claim(spot)
    with pytest.raises(StateError, match="other users could replace"):
        shared.find(spot)
