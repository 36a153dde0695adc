"""The clipboard of ``credguard open`` (:mod:`credguard.handoff.clipboard`), with real tools:

* ``xclip`` and ``xsel`` on a real Xvfb, read back with their own ``-o``;
* ``wl-copy`` on a real Wayland compositor (weston's X11 backend, drawing into that Xvfb), read
  back with ``wl-paste``;
* a real ``xclip`` against a display nobody serves (it fails) and against one whose socket
  accepts and never answers, a wedged X server (it hangs, and is killed);
* an executable that cannot be run (exec fails).

Stand-ins only where no real part can run here: ``pbcopy`` (macOS) and ``clip`` (Windows) are
shell scripts on PATH that record their stdin, arguments, working directory and environment,
with ``CREDGUARD_PLATFORM`` selecting the platform's table as :func:`credguard.paths.
platform_name` reads it.

Each test marks its environment with a token (:data:`MARK`); the servers the tools fork keep
it, so they are found in ``/proc`` and checked (their own session, stdout on the null device,
``/`` as working directory, the text not in their argv), and every display fixture fails its
test if one outlives the display.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess
from helpers.home import Home, Run, run_subprocess
from helpers.processes import gone
from helpers.secret_service import SecretService
from helpers.xserver import start_xvfb, stop_group

from credguard import control, paths
from credguard.handoff import clipboard

pytestmark = pytest.mark.timeout(60)

MARK = "CREDGUARD_CLIPBOARD_TEST_MARK"
PROGRAMS = {"xclip": "xclip", "xsel": "xsel", "wl-copy": "wl-clipboard",
            "wl-paste": "wl-clipboard", "Xvfb": "xvfb", "weston": "weston",
            "cat": "coreutils", "rm": "coreutils", "sleep": "coreutils"}  # fmt: skip
BASICS = ("cat", "rm")  # on every PATH: wl-copy runs them (and the stand-ins cat)
REAL = {name: shutil.which(name) for name in PROGRAMS}  # before any test narrows PATH
PASTE = {"xclip": ("xclip", "-selection", "clipboard", "-out"),
         "xsel": ("xsel", "--clipboard", "--output"),
         "wl-copy": ("wl-paste", "--no-newline")}  # fmt: skip
# a path as `open` prints it: spaces and non-ASCII survive, backslashes too (Windows)
PATH_TEXT = "/dev/shm/credguard-1000/open-1767225600-3f2a9c-x7Q/Jos\u00e9 az profile.json"
DISPLAYS = range(300, 700)  # X display numbers these tests try (the tray's take 90 to 189)


def real(name: str) -> str:
    """The real program's path; fails (never skips) when it is not installed."""
    program = REAL[name]
    if program is None:
        pytest.fail(f"{name} is not installed: apt-get install {PROGRAMS[name]} "
                    "(./tests/run does as root)", pytrace=False)
    return program


@pytest.fixture(autouse=True)
def mark(monkeypatch: pytest.MonkeyPatch) -> str:
    """This test's token in the environment every tool inherits; and no desktop of the
    developer's: ``home`` drops DISPLAY, this drops WAYLAND_DISPLAY too."""
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    token = secrets.token_hex(8)
    monkeypatch.setenv(MARK, token)
    return token


def marked(token: str) -> list[int]:
    """The live processes whose environment holds ``token``: the tools this test started and
    the servers they forked."""
    needle = f"{MARK}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if needle in environ.split(b"\0") and not gone(int(entry.name)):
            found.append(int(entry.name))
    return found


def left_running(token: str) -> list[int]:
    """The marked processes running now, killed (a failing test leaves none behind)."""
    left = marked(token)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


def unmarked_env(**extra: str) -> dict[str, str]:
    """This test's environment without the token: for the servers and the paste commands."""
    return {**{k: v for k, v in os.environ.items() if k != MARK}, **extra}


def only_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *names: str) -> Path:
    """PATH becomes a directory holding only ``names`` and :data:`BASICS` (links to the real
    programs)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in (*BASICS, *names):
        (bin_dir / name).symlink_to(real(name))
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def wait_until_gone(token: str) -> list[int]:
    """Wait (5 s at most) for the marked processes to leave; kill and name those that stay."""
    deadline = time.monotonic() + 5
    while marked(token) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left_running(token)


@contextlib.contextmanager
def reserved_display() -> Iterator[int]:
    """A display number nobody serves, held by its lock file as an X server holds it (so no
    X server of another run starts there meanwhile): ``/tmp/.X<n>-lock`` with this pid."""
    for number in DISPLAYS:
        lock = Path(f"/tmp/.X{number}-lock")
        if Path(f"/tmp/.X11-unix/X{number}").exists():
            continue
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as out:
            out.write(f"{os.getpid():10d}\n")
        try:
            yield number
        finally:
            lock.unlink()
        return
    pytest.fail(f"no free X display number in {DISPLAYS}")


@contextlib.contextmanager
def wedged_display(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """DISPLAY names a wedged X server: its socket accepts a connection and never answers, so
    a client waits for the server's greeting for ever."""
    with reserved_display() as number, socket.socket(socket.AF_UNIX) as wedged:
        wedged.bind(f"\0/tmp/.X11-unix/X{number}")  # the abstract socket, which Xlib tries first
        wedged.listen(8)
        monkeypatch.setenv("DISPLAY", f":{number}")
        yield


class XDisplay:
    """A running Xvfb, its display set in DISPLAY."""

    def __init__(self, xvfb: subprocess.Popen[bytes], display: str) -> None:
        self.xvfb = xvfb
        self.display = display

    def stop(self) -> None:
        stop_group(self.xvfb)


@pytest.fixture
def x_display(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mark: str) -> Iterator[XDisplay]:
    """A real Xvfb for this test, in DISPLAY. At teardown the X server goes, and the
    clipboard servers the tools forked must go with it: one left fails the test."""
    xvfb, display = start_xvfb(tmp_path / "xvfb.log", DISPLAYS, program=real("Xvfb"),
                               env=unmarked_env())
    monkeypatch.setenv("DISPLAY", display)
    x = XDisplay(xvfb, display)
    yield x
    x.stop()
    left = wait_until_gone(mark)
    assert not left, f"processes outlived the X server (killed now): {left}"


@pytest.fixture
def wayland(x_display: XDisplay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            mark: str) -> Iterator[str]:
    """A real Wayland compositor, weston, on the Xvfb (its X11 backend gives it a seat, which
    its headless backend lacks), in WAYLAND_DISPLAY; gone at teardown, and wl-copy's server
    with it (checked by ``x_display``)."""
    runtime = Path(os.environ["XDG_RUNTIME_DIR"])  # the test's own (the ``home`` fixture)
    name = f"credguard-test-{mark}"
    log = tmp_path / "weston.log"
    with log.open("ab") as err:
        weston = subprocess.Popen(
            [real("weston"), "--backend=x11-backend.so", f"--socket={name}", "--no-config",
             "--idle-time=0", "--use-pixman", "--width=320", "--height=240"],
            stdout=subprocess.DEVNULL, stderr=err, env=unmarked_env(DISPLAY=x_display.display),
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 10
    while not (runtime / name).exists():  # weston listens once its backend (and seat) is up
        if weston.poll() is not None or time.monotonic() > deadline:
            stop_group(weston)
            pytest.fail(f"weston did not start: {log.read_text(errors='replace')}")
        time.sleep(0.01)
    monkeypatch.setenv("WAYLAND_DISPLAY", name)
    yield name
    stop_group(weston)


def paste(tool: str) -> str | None:
    """What the tool's paste command reads from the clipboard (None: it failed, as it does on
    an empty clipboard)."""
    argv = (real(PASTE[tool][0]), *PASTE[tool][1:])
    done = subprocess.run(argv, capture_output=True, env=unmarked_env(), timeout=10)
    return done.stdout.decode() if done.returncode == 0 else None


def pasted(tool: str, expected: str) -> str | None:
    """:func:`paste`, asked again for a second at most while it is not ``expected`` (a tool may
    take the selection in the server it forked, after it exits)."""
    deadline = time.monotonic() + 1
    while (got := paste(tool)) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return got


def proc_fact(pid: int, name: str) -> str:
    return os.readlink(f"/proc/{pid}/{name}")


def holds_a_pipe(pid: int, *fds: int) -> list[str]:
    """Which of ``fds`` are pipes or sockets: a server writing there could keep a reader of
    ours waiting (they are the null device as copy_path starts it; xsel's daemon moves its
    stderr to its own log file, ~/.cache/xsel.log)."""
    targets = [proc_fact(pid, f"fd/{fd}") for fd in fds]
    return [t for t in targets if t.startswith(("pipe:", "socket:"))]


def stand_in(bin_dir: Path, name: str) -> Path:
    """A stand-in for a clipboard program of a system that cannot run here: a shell script that
    records, next to itself, its stdin (``.in``), its arguments (``.args``), its working
    directory (``.cwd``) and its LC_ALL and LC_CTYPE (``.lc``)."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / name
    script.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$0.args"\npwd > "$0.cwd"\n'
                      'printf "%s %s" "${LC_ALL-unset}" "${LC_CTYPE-unset}" > "$0.lc"\n'
                      'exec cat > "$0.in"\n')
    script.chmod(0o755)
    return script


# -- the real X11 tools --------------------------------------------------------------------


@pytest.mark.parametrize(("tool", "cwd"), [("xclip", "/"), ("xsel", "home/.cache")])
def test_the_path_is_on_the_x_clipboard_and_its_server_holds_nothing_of_ours(
    tool: str, cwd: str, x_display: XDisplay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    mark: str, caplog: pytest.LogCaptureFixture,
) -> None:
    only_on_path(tmp_path, monkeypatch, tool)
    caplog.set_level(logging.DEBUG, "credguard.handoff")
    assert clipboard.available() == tool
    started = time.monotonic()
    assert clipboard.copy_path(PATH_TEXT) == tool
    took = time.monotonic() - started
    assert took < 1.0, f"{tool} held copy_path for {took:.2f} s"  # its server kept no pipe
    assert pasted(tool, PATH_TEXT) == PATH_TEXT

    servers = marked(mark)  # the tool itself has exited: what is left serves the selection
    assert len(servers) == 1, servers
    (server,) = servers
    assert os.getsid(server) != os.getsid(0)  # its own session: open's Ctrl-C never ends it
    assert not holds_a_pipe(server, 1, 2)
    # "/" as copy_path starts it: it keeps no directory busy (xsel's daemon moves to its log's)
    assert proc_fact(server, "cwd") == ("/" if cwd == "/" else str(tmp_path / cwd))
    argv = Path(f"/proc/{server}/cmdline").read_bytes().decode(errors="replace")
    assert "x7Q" not in argv and "profile" not in argv  # the text came on stdin
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert PATH_TEXT in caplog.records[0].getMessage()


def test_the_x_server_leaving_takes_the_clipboard_server_with_it(
    x_display: XDisplay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mark: str
) -> None:
    only_on_path(tmp_path, monkeypatch, "xclip")
    assert clipboard.copy_path("/a") == "xclip"
    assert marked(mark)
    x_display.stop()
    assert wait_until_gone(mark) == []


def test_the_newest_copy_wins(
    x_display: XDisplay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mark: str
) -> None:
    """A second open copies its path over the first; the first one's server leaves."""
    only_on_path(tmp_path, monkeypatch, "xclip")
    assert clipboard.copy_path("/first") == "xclip"
    assert clipboard.copy_path("/second") == "xclip"
    assert pasted("xclip", "/second") == "/second"
    deadline = time.monotonic() + 5
    while len(marked(mark)) > 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(marked(mark)) == 1


def test_a_text_that_is_not_one_printable_line_is_refused(
    x_display: XDisplay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mark: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    only_on_path(tmp_path, monkeypatch, "xclip")
    assert clipboard.copy_path("/first") == "xclip"
    refused = ["/a\nb", "/a\n", "/a\rb", "/a\0b", "", "/a\tb", "/a\x1b[31mb", "/a\x7fb",
               "/a\x85b", "/a\u2028b", "/a\u202eb", "/a\u2066b", "/a\udcffb"]  # fmt: skip
    caplog.set_level(logging.DEBUG, "credguard.handoff")
    for text in refused:
        assert clipboard.copy_path(text) is None, repr(text)
    assert pasted("xclip", "/first") == "/first"
    assert len(marked(mark)) == 1  # no tool ran for any of them
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == len(refused)
    assert all(r.name == "credguard.handoff" and "/a" not in r.getMessage() for r in warnings)


def test_a_windows_path_keeps_its_backslashes(
    x_display: XDisplay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_on_path(tmp_path, monkeypatch, "xclip")
    text = "C:\\Users\\Jos\u00e9\\AppData\\Local\\Temp\\credguard\\open-1\\azureProfile.json"
    assert clipboard.copy_path(text) == "xclip"
    assert pasted("xclip", text) == text


# -- Wayland: a real compositor ------------------------------------------------------------


def test_wl_copy_is_chosen_when_both_displays_are_there(
    wayland: str, x_display: XDisplay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    mark: str,
) -> None:
    """Under XWayland both variables are set: the Wayland clipboard is the desktop's own."""
    only_on_path(tmp_path, monkeypatch, "wl-copy", "xclip", "xsel")
    assert clipboard.available() == "wl-copy"
    started = time.monotonic()
    assert clipboard.copy_path(PATH_TEXT) == "wl-copy"
    assert time.monotonic() - started < 1.0
    assert pasted("wl-copy", PATH_TEXT) == PATH_TEXT
    assert paste("xclip") is None  # not on the X clipboard (no XWayland here)
    (server,) = marked(mark)
    assert os.getsid(server) != os.getsid(0)
    assert not holds_a_pipe(server, 1, 2)
    assert proc_fact(server, "cwd") == "/"
    assert "x7Q" not in Path(f"/proc/{server}/cmdline").read_bytes().decode(errors="replace")


def test_without_wl_copy_an_x_tool_serves_a_wayland_session(
    x_display: XDisplay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_on_path(tmp_path, monkeypatch, "xsel")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert clipboard.available() == "xsel"
    assert clipboard.copy_path("/b") == "xsel"
    assert pasted("xsel", "/b") == "/b"


# -- no clipboard, and tools that fail ----------------------------------------------------


def test_no_display_means_no_clipboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mark: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    only_on_path(tmp_path, monkeypatch, "wl-copy", "xclip", "xsel")
    monkeypatch.setenv("WAYLAND_DISPLAY", "")  # set but empty counts as unset
    caplog.set_level(logging.DEBUG, "credguard.handoff")
    assert clipboard.available() is None
    assert clipboard.copy_path("/c") is None
    assert wait_until_gone(mark) == []
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]


def test_a_display_but_no_tool_means_no_clipboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_on_path(tmp_path, monkeypatch)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert clipboard.available() is None
    assert clipboard.copy_path("/c") is None


@pytest.mark.parametrize("tool", ["xclip", "xsel"])
def test_a_tool_that_fails_gives_none(
    tool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mark: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A display nobody serves: the real tool cannot connect and exits non-zero."""
    only_on_path(tmp_path, monkeypatch, tool)
    with reserved_display() as number:
        monkeypatch.setenv("DISPLAY", f":{number}")
        assert clipboard.copy_path("/secret-looking/path") is None
    assert wait_until_gone(mark) == []
    (warning,) = caplog.records
    assert warning.levelno == logging.WARNING and "exit status 1" in warning.getMessage()
    assert "/secret-looking" not in warning.getMessage()


@pytest.mark.timeout(10)  # a copy_path that never kills it would wait for ever
def test_a_tool_that_hangs_is_killed_within_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mark: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A wedged X server (:func:`wedged_display`): the real xclip waits for ever."""
    only_on_path(tmp_path, monkeypatch, "xclip")
    with wedged_display(monkeypatch):
        started = time.monotonic()
        assert clipboard.copy_path("/d", timeout=0.4) is None
        took = time.monotonic() - started
    assert 0.4 <= took < 1.5, took
    assert wait_until_gone(mark) == []  # killed, not left waiting
    (warning,) = caplog.records
    assert warning.getMessage() == "xclip did not take the path within 0.4 s: killed"


@pytest.mark.timeout(20)
def test_ctrl_c_while_the_tool_runs_kills_it_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mark: str
) -> None:
    """Ctrl-C in open's terminal while xclip hangs on a wedged display reaches credguard only:
    xclip runs in its own session. The KeyboardInterrupt goes on, and xclip is killed. (It is
    raised by a SIGUSR1 handler here, not by SIGINT, so that one arriving late could not end
    the pytest run.)"""
    only_on_path(tmp_path, monkeypatch, "xclip")

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        with wedged_display(monkeypatch):
            sender = subprocess.Popen(
                [sys.executable, "-c", "import os, signal, sys, time; time.sleep(0.3); "
                 "os.kill(int(sys.argv[1]), signal.SIGUSR1)", str(os.getpid())],
                env=unmarked_env(),
            )  # fmt: skip
            with pytest.raises(KeyboardInterrupt):
                clipboard.copy_path("/h", timeout=10)
            sender.wait()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert wait_until_gone(mark) == []


def test_a_hung_tool_is_killed_with_what_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mark: str
) -> None:
    """Stand-in xclip (no real tool hangs after it forked: xclip and xsel hang, if at all,
    connecting, and wl-copy forks once it holds the selection): a script that starts a
    helper and waits. The whole process group goes, not the script alone."""
    bin_dir = only_on_path(tmp_path, monkeypatch, "sleep")
    (bin_dir / "xclip").write_text("#!/bin/sh\nsleep 30 &\nsleep 30\n")
    (bin_dir / "xclip").chmod(0o755)
    monkeypatch.setenv("DISPLAY", ":0")
    started = time.monotonic()
    assert clipboard.copy_path("/g", timeout=0.3) is None
    assert time.monotonic() - started < 1.3
    assert wait_until_gone(mark) == []


def test_a_program_that_cannot_be_run_gives_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bin_dir = only_on_path(tmp_path, monkeypatch)
    broken = bin_dir / "xclip"
    broken.write_bytes(b"\x7fELF but not a program")
    broken.chmod(0o755)
    monkeypatch.setenv("DISPLAY", ":0")
    assert clipboard.available() == "xclip"
    assert clipboard.copy_path("/e") is None
    (warning,) = caplog.records
    assert warning.getMessage().startswith("cannot run xclip for the clipboard: ")


# -- macOS and Windows: stand-ins (no macOS or Windows here) -----------------------------


def test_macos_uses_pbcopy_in_utf8_without_a_display(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stand-in pbcopy (no macOS here): the table for macOS, the UTF-8 locale pbcopy needs to
    read non-ASCII, the text on stdin only."""
    monkeypatch.setenv("CREDGUARD_PLATFORM", "macos")
    bin_dir = only_on_path(tmp_path, monkeypatch, "xclip")  # an X tool is no candidate
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("LC_CTYPE", "C")
    monkeypatch.setenv("LC_ALL", "C")
    assert clipboard.available() is None
    pbcopy = stand_in(bin_dir, "pbcopy")
    monkeypatch.delenv("DISPLAY")
    assert clipboard.available() == "pbcopy"
    assert clipboard.copy_path(PATH_TEXT) == "pbcopy"
    assert Path(f"{pbcopy}.in").read_bytes() == PATH_TEXT.encode()
    assert Path(f"{pbcopy}.lc").read_text() == "unset UTF-8"  # LC_ALL would win over LC_CTYPE
    assert Path(f"{pbcopy}.args").read_text() == "\n"  # no arguments at all
    assert Path(f"{pbcopy}.cwd").read_text() == "/\n"


def test_windows_uses_clip_in_utf16_with_its_bom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stand-in clip (no Windows here): clip.exe reads UTF-16 when the input starts with its
    BOM, else the console's code page, which cannot hold every path."""
    monkeypatch.setenv("CREDGUARD_PLATFORM", "windows")
    bin_dir = only_on_path(tmp_path, monkeypatch, "wl-copy", "xclip")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert clipboard.available() is None
    clip = stand_in(bin_dir, "clip")
    assert clipboard.available() == "clip"
    text = "C:\\Users\\Jos\u00e9\\AppData\\Local\\credguard\\open-1\\azureProfile.json"
    assert clipboard.copy_path(text) == "clip"
    assert Path(f"{clip}.in").read_bytes() == b"\xff\xfe" + text.encode("utf-16-le")
    assert Path(f"{clip}.args").read_text() == "\n"


def test_a_platform_without_a_table_has_no_clipboard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "platform_name", lambda: "plan9")
    monkeypatch.setenv("DISPLAY", ":0")
    assert clipboard.available() is None
    assert clipboard.copy_path("/f") is None


def test_other_unix_systems_use_the_desktop_tools_of_linux(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A BSD (``other``) runs the same X11 and Wayland desktops."""
    monkeypatch.setenv("CREDGUARD_PLATFORM", "other")
    only_on_path(tmp_path, monkeypatch, "wl-copy", "xsel")
    monkeypatch.setenv("DISPLAY", ":0")
    assert clipboard.available() == "xsel"
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert clipboard.available() == "wl-copy"


# -- `credguard open` and the daemon's "Open for import" put their path there ----------------------


def vaulted(cli: Callable[..., Run], home: Home) -> tuple[str, bytes]:
    payload = payloads.publish_profile("clipboard")
    path = home.write("Downloads/clip.PublishSettings", payload.data)
    run = cli("protect", "--json", str(path))
    assert run.code == 0, run.err
    return str(json.loads(run.out)["results"][0]["id"]), payload.data


@pytest.mark.usefixtures("tmpfs_runtime")
def test_open_puts_the_path_it_prints_on_the_clipboard(
    secret_service: SecretService, home: Home, cli: Callable[..., Run], x_display: XDisplay,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    item, data = vaulted(cli, home)
    only_on_path(tmp_path, monkeypatch, "xclip")
    proc = subprocess.Popen([sys.executable, "-m", "credguard", "open", item, "--for", "2s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=30)  # it waits out its 2 s in the foreground
    assert proc.returncode == 0, err
    printed = out.splitlines()[0]
    assert printed.endswith("/clip.PublishSettings")
    assert "credguard: the path is on the clipboard (xclip)\n" in err
    assert pasted("xclip", printed) == printed  # the path, never the content
    assert data.decode() not in (paste("xclip") or "")


@pytest.mark.usefixtures("tmpfs_runtime")
def test_open_for_import_from_the_daemon_puts_the_path_on_the_clipboard(
    secret_service: SecretService, home: Home, cli: Callable[..., Run], x_display: XDisplay,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    item, data = vaulted(cli, home)
    only_on_path(tmp_path, monkeypatch, "xclip")
    daemon = DaemonProcess(dict(os.environ), tmp_path / "daemon.log").start()
    try:
        answer = control.request("item", action="open", id=item)
        assert answer["clipboard"] == "xclip"
        assert pasted("xclip", answer["path"]) == answer["path"]
        assert Path(answer["path"]).read_bytes() == data
        assert run_subprocess("close", item).code == 0
    finally:
        daemon.stop()
