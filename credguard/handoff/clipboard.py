"""The path of an open copy on the clipboard (``credguard open``), when there is a clipboard.

:func:`copy_path` hands one line of text, a path and never a file's content, to the system's
own clipboard tool, chosen by one table per platform (:data:`TOOLS`): ``wl-copy`` when
``WAYLAND_DISPLAY`` is set, else ``xclip`` or ``xsel`` when ``DISPLAY`` is set (Linux, and the
other Unix systems, which use the same desktops); ``pbcopy`` on macOS; ``clip`` on Windows. The
first candidate whose variable is set and whose program is on PATH is the one used, and
:func:`available` names it; a failing tool is not followed by the next one.

What it promises:

* optional: no tool, a refused text, a tool that cannot start, fails or hangs gives None (and a
  log record on the ``credguard.handoff`` logger), never an exception (a Ctrl-C meanwhile is
  passed on, once the tool is killed);
* the text goes to the tool's standard input, never in its argv (which any user can read in
  ``/proc``), and it is exactly one line of printable characters: text with a NUL, a line
  break (``\\n``, ``\\r`` or any other :meth:`str.splitlines` splits on), another control
  character, a bidi control or an undecodable byte is refused, so a paste into a terminal
  can neither run what it ends nor show what it is not;
* it returns within ``timeout`` seconds: the tool's process group is killed when it takes
  longer. ``wl-copy``, ``xclip`` and ``xsel`` fork a server that keeps the selection (until
  another program takes it, or the display goes); it gets no pipe of ours (stdout and stderr
  are the null device, stdin is closed once written), its own session (a Ctrl-C in the
  terminal of ``open`` does not end it) and ``/`` as its working directory (it keeps no
  directory busy).

The path is not a secret: it may be logged at debug level, never above.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
from typing import NamedTuple

from credguard import paths
from credguard.textsafe import BIDI

log = logging.getLogger("credguard.handoff")
TIMEOUT = 2.0  # s for the tool to take the text (it forks its server and exits in ms)


class Tool(NamedTuple):
    """A clipboard program: its ``argv`` (the program's name first, found on PATH), the
    environment variable it needs set (None: none), how the text is encoded on its stdin, and
    the changes to its environment (a variable set to a value, or removed: None)."""

    argv: tuple[str, ...]
    needs: str | None
    encoding: str
    env: tuple[tuple[str, str | None], ...]


# the Unix desktops' tools, in the order tried: Wayland's first (under XWayland both variables
# are set, and XWayland passes the Wayland clipboard on to X programs)
_UNIX = (
    # --type: without it wl-copy runs xdg-mime to guess the type of what it copies
    Tool(("wl-copy", "--type", "text/plain"), "WAYLAND_DISPLAY", "utf-8", ()),
    Tool(("xclip", "-selection", "clipboard", "-in"), "DISPLAY", "utf-8", ()),
    Tool(("xsel", "--clipboard", "--input"), "DISPLAY", "utf-8", ()),
)
TOOLS: dict[str, tuple[Tool, ...]] = {
    "linux": _UNIX,
    "other": _UNIX,
    # pbcopy reads its input in the locale's encoding, which is not UTF-8 without LANG/LC_*
    # (and LC_ALL would win over LC_CTYPE)
    "macos": (Tool(("pbcopy",), None, "utf-8", (("LC_ALL", None), ("LC_CTYPE", "UTF-8"))),),
    # clip.exe reads the console's code page, unless the input starts with UTF-16's BOM
    "windows": (Tool(("clip",), None, "utf-16-bom", ()),),
}


def available() -> str | None:
    """The name of the tool :func:`copy_path` would use here and now (``xclip``), or None."""
    found = _find()
    return None if found is None else found[0].argv[0]


def copy_path(text: str, *, timeout: float = TIMEOUT) -> str | None:
    """Put ``text`` (a path: one line) on the clipboard; the name of the tool that did, or None
    when there is none, the text is refused, or the tool failed or took over ``timeout``
    seconds (it is killed). Never raises (a Ctrl-C meanwhile kills the tool and goes on)."""
    if not _one_line(text):
        log.warning("not copied to the clipboard: the path is not one line of printable text")
        return None
    found = _find()
    if found is None:
        log.debug("no clipboard tool for %s here", paths.platform_name())
        return None
    tool, program = found
    name = tool.argv[0]
    data = _encode(text, tool.encoding)  # one line holds no lone surrogate: it encodes
    status = _run(name, (program, *tool.argv[1:]), data, dict(tool.env), timeout)
    if status is None:
        return None
    if status != 0:
        log.warning("%s could not copy the path to the clipboard (exit status %s)", name, status)
        return None
    log.debug("%s copied %s to the clipboard", name, text)
    return name


def _one_line(text: str) -> bool:
    """One line of printable characters: :meth:`str.isprintable` is false for NUL, every
    line break and other control character, the line and paragraph separators and the lone
    surrogates of undecodable bytes; bidi controls are listed apart (:mod:`credguard.textsafe`)."""
    return text.isprintable() and bool(text) and BIDI.isdisjoint(text)


def _find() -> tuple[Tool, str] | None:
    """The first tool of this platform whose variable is set and whose program is on PATH,
    with the program's full path (run as found, not looked up again)."""
    for tool in TOOLS.get(paths.platform_name(), ()):
        if tool.needs is not None and not os.environ.get(tool.needs):
            continue
        program = shutil.which(tool.argv[0])
        if program is not None:
            return tool, program
    return None


def _encode(text: str, encoding: str) -> bytes:
    """``text`` as ``tool.encoding`` says: a codec's name, or ``utf-16-bom`` (clip.exe's)."""
    if encoding == "utf-16-bom":
        return "\ufeff".encode("utf-16-le") + text.encode("utf-16-le")
    return text.encode(encoding)


def _run(name: str, argv: tuple[str, ...], data: bytes, changes: dict[str, str | None],
         timeout: float) -> int | None:
    """Run a tool with ``data`` on its stdin; its exit status, or None (logged) when it could
    not start or was killed after ``timeout`` seconds."""
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    null = subprocess.DEVNULL
    try:
        with subprocess.Popen(  # argv from TOOLS, no shell; the text on stdin, never in argv
            argv, stdin=subprocess.PIPE, stdout=null, stderr=null, close_fds=True,
            start_new_session=True, cwd=os.sep, env=env,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),  # Windows: no console
        ) as child:
            try:
                child.communicate(data, timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill(child)
                log.warning("%s did not take the path within %g s: killed", name, timeout)
                return None
            except BaseException:  # Ctrl-C while it runs: its own session never got that
                _kill(child)
                raise
            return child.returncode
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        log.warning("cannot run %s for the clipboard: %s", name, exc)
        return None


def _kill(child: subprocess.Popen[bytes]) -> None:
    """Kill ``child`` and whatever it started in its session (its process group, which it
    leads: start_new_session), then reap it. The group's id is the child's pid, still ours
    while it is not reaped."""
    killpg = getattr(os, "killpg", None)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if killpg is not None:
            killpg(child.pid, getattr(signal, "SIGKILL"))  # noqa: B009 - POSIX with killpg
        else:
            child.kill()
    child.wait()
