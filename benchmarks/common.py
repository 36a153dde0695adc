"""Helpers every benchmark shares: timing child processes, summarising samples, recording
machine facts, and rewriting one benchmark's section of ``docs/benchmarks.md``.

Each benchmark script owns one section, delimited by ``<!-- bench:NAME:begin -->`` and
``<!-- bench:NAME:end -->``; :func:`write_section` replaces only that text.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import functools
import importlib
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"
DOC_INTRO = (
    "# Benchmarks\n\n"
    "Benchmarks run on the project's shared 2-core machines; each section is rewritten by its "
    "script (`python -m benchmarks.NAME`); numbers come from one run, so compare them only "
    "within a section.\n"
)


@dataclass(frozen=True)
class Sample:
    """One finished child process: wall time, peak resident set size, exit code, output."""

    wall: float  # seconds, from just before spawning to just after reaping
    maxrss_kib: int  # ru_maxrss of the child (KiB on Linux)
    returncode: int
    stdout: bytes
    cpu: float = 0.0  # user + system seconds of the child and the descendants it reaped

    @property
    def maxrss_mb(self) -> float:
        """Peak RSS in MB (10^6 bytes)."""
        return self.maxrss_kib * 1024 / 1e6


_PR_SET_CHILD_SUBREAPER = 36
# Runs "$@" in the background with stdin and stderr at /dev/null, and reports its pid on fd 2.
# It execs echo rather than using the builtin: dash, on its way out, sometimes reaps a command
# that has already exited (`true` can be that quick), and os.wait4 then finds no child.
_LAUNCH = '"$@" </dev/null 2>/dev/null & exec echo $! >&2'


@functools.cache
def _subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux only); True if done."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


_COMPILED: list[bool] = []


def installed_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """``env`` (default: this process's) as an installed credguard runs: bytecode allowed.

    Development shells often set ``PYTHONDONTWRITEBYTECODE``, which makes every credguard
    process recompile its own modules (~20 ms); ``pip install`` compiles them once, so the
    package is compiled here once and the variable is dropped for the measured commands.
    """
    if not _COMPILED:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "credguard")],
                       check=True, stdout=subprocess.DEVNULL)
        _COMPILED.append(True)
    result = dict(os.environ if env is None else env)
    result.pop("PYTHONDONTWRITEBYTECODE", None)
    return result


def run_once(
    cmd: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Sample:
    """Run ``cmd`` once in a fresh process; return its wall time, peak RSS and stdout.

    Peak RSS is the child's own ``ru_maxrss`` (read with ``os.wait4``). A child spawned directly
    from this (large) Python process would report at least this process's peak, since Linux
    carries the pre-exec memory's high-water mark across ``exec``; so on Linux the command is
    started by a small ``/bin/sh`` that exits at once, leaving it to this process (made a child
    subreaper) to reap. The wall time includes that shell's start (about a millisecond).
    Stdout goes to a temporary file (no pipe to fill); stderr is discarded.
    """
    env_ = installed_env(env)
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        if _subreaper():
            launcher = subprocess.run(
                ["/bin/sh", "-c", _LAUNCH, "sh", *cmd],
                stdout=out,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env_,
                cwd=cwd,
                check=True,
            )
            pid = int(launcher.stderr)
        else:
            pid = subprocess.Popen(
                list(cmd),
                stdout=out,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                env=env_,
                cwd=cwd,
            ).pid
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        data = out.read()
    cpu = usage.ru_utime + usage.ru_stime
    return Sample(wall, int(usage.ru_maxrss), os.waitstatus_to_exitcode(status), data, cpu)


def measure(
    cmd: Sequence[str], runs: int, env: Mapping[str, str] | None = None, warmup: int = 1
) -> list[Sample]:
    """Run ``cmd`` ``warmup`` times untimed, then ``runs`` times; return the timed samples."""
    for _ in range(warmup):
        run_once(cmd, env)
    return [run_once(cmd, env) for _ in range(runs)]


def interleave(
    cmds: Mapping[str, Sequence[str]],
    runs: int,
    env: Mapping[str, str] | None = None,
    warmup: int = 1,
    before: Callable[[str], None] | None = None,
) -> dict[str, list[Sample]]:
    """Like :func:`measure` for several commands, alternating them so that background load
    hits all of them alike; the order within a round is reversed every other round.
    ``before(name)``, if given, runs untimed before each run of a command (fresh input)."""
    names = list(cmds)

    def once(name: str) -> Sample:
        if before is not None:
            before(name)
        return run_once(cmds[name], env)

    for _ in range(warmup):
        for name in names:
            once(name)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for i in range(runs):
        for name in names if i % 2 == 0 else reversed(names):
            samples[name].append(once(name))
    return samples


def credguard_exe() -> str:
    """The ``credguard`` console script beside this Python (the venv's), else the one on PATH."""
    here = shutil.which("credguard", path=str(Path(sys.executable).parent))
    found = here or shutil.which("credguard")
    if found is None:
        raise SystemExit("no credguard executable next to this Python or on PATH")
    return found


def tests_module(name: str) -> Any:
    """A test helper module (``payloads``, ``secret_service``...; they live in
    ``tests/helpers/``), imported as the tests import it."""
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    return importlib.import_module(f"helpers.{name}")


def median(values: Sequence[float]) -> float:
    """The median (mean of the two middle values for an even count)."""
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def p95(values: Sequence[float]) -> float:
    """The 95th percentile by nearest rank (the maximum for fewer than 20 values)."""
    if not values:
        raise ValueError("p95 of no values")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def p90(values: Sequence[float]) -> float:
    """The 90th percentile by nearest rank (the maximum for fewer than 10 values)."""
    if not values:
        raise ValueError("p90 of no values")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = ""
) -> str:
    """A GitHub-flavoured Markdown table; ``align`` holds one of ``l``/``r`` per column
    (default: first column left, the rest right)."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(items: Sequence[str]) -> str:
        padded = [
            s.ljust(w) if a == "l" else s.rjust(w)
            for s, w, a in zip(items, widths, align, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        "-" * (w - 1) + ":" if a == "r" else "-" * w for w, a in zip(widths, align, strict=True)
    ]
    return "\n".join([line(headers), line(rule), *(line(r) for r in cells)])


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor() or "unknown"
    for row in text.splitlines():
        key, _, value = row.partition(":")
        if key.strip() in ("model name", "Hardware", "cpu model"):
            return value.strip()
    return platform.processor() or "unknown"


def _mount_type(path: Path) -> str | None:
    """The file system type /proc/self/mounts gives for the mount holding ``path``."""
    try:
        rows = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return None
    target = str(path.resolve())
    best: tuple[int, str] | None = None
    for row in rows:
        if len(row) < 3:
            continue
        mnt = row[1].replace("\\040", " ")
        inside = target == mnt or target.startswith(mnt.rstrip("/") + "/")
        if inside and (best is None or len(mnt) >= best[0]):
            best = (len(mnt), row[2])
    return best[1] if best else None


def _fs_type(path: Path) -> str:
    """``stat -f -c %T`` of ``path``, with the mount table's name when that is vaguer (stat
    calls ext4 "ext2/ext3")."""
    try:
        out = subprocess.run(
            ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return _mount_type(path) or "unknown"
    kind, mounted = out.stdout.strip(), _mount_type(path)
    return f"{kind} ({mounted})" if mounted and mounted != kind else kind


def _nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 0


def _credguard_version() -> str:
    try:
        return metadata.version("credguard")
    except metadata.PackageNotFoundError:
        return "unknown"


def machine_facts(tree: Path | None = None) -> dict[str, str]:
    """Date (UTC), CPU count and model, Python and credguard versions, and, given ``tree``,
    the type of the file system it lives on (``stat -f -c %T``)."""
    facts = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(_nproc()),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "credguard": _credguard_version(),
    }
    if tree is not None:
        facts["file system"] = _fs_type(tree)
    return facts


def facts_line(facts: Mapping[str, str]) -> str:
    """Machine facts as one Markdown line: ``key: value · key: value``."""
    return "Machine: " + " · ".join(f"{k} {v}" for k, v in facts.items())


def _markers(name: str, prefix: str = "bench") -> tuple[str, str]:
    return f"<!-- {prefix}:{name}:begin -->", f"<!-- {prefix}:{name}:end -->"


def write_section(
    doc_path: Path, name: str, markdown: str, *, prefix: str = "bench", intro: str = DOC_INTRO
) -> None:
    """Replace the text between this benchmark's markers (``<!-- PREFIX:NAME:begin -->`` and
    ``…:end -->``) in ``doc_path`` with ``markdown``; append the section (markers included) if
    absent; create the file with ``intro`` (default: the shared intro of ``docs/benchmarks.md``)
    if missing. Nothing outside the markers changes."""
    begin, end = _markers(name, prefix)
    block = f"{begin}\n{markdown.strip()}\n{end}"
    try:
        text = doc_path.read_text()
    except FileNotFoundError:
        text = intro
    start = text.find(begin)
    stop = text.find(end, start + len(begin)) if start >= 0 else -1
    if start >= 0 and stop >= 0:
        text = text[:start] + block + text[stop + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = doc_path.with_name(doc_path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(doc_path)


def publish(name: str, section: str, *, write: bool) -> None:
    """Print a benchmark's Markdown section and, unless told not to, put it in the doc."""
    print(section)
    if write:
        write_section(DOC, name, section)
        print(f"wrote the {name} section of {DOC}", file=sys.stderr)


@contextlib.contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit while the block runs, so its ``with`` clean-ups (private
    keyring and notification services, daemons) run as they do on Ctrl-C."""
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
