"""Benchmark: the desktop side of credguard. Download → desktop notification latency of the real
daemon, and the idle cost of ``credguard tray`` (RSS, CPU, threads) with and without a daemon;
every result checked (vault, audit log, notifications, icon on screen, clean exit), else exit 1.

Usage: ``python -m benchmarks.desktop [--drops N] [--idle-minutes N] [--no-write]``
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

import psutil
from PIL import Image

from benchmarks import common
from benchmarks.daemon import Daemon, check_vault, ms, profiles
from benchmarks.vault import Session, secret_service
from credguard.notify import messages
from credguard.tray.icon import COLOURS, POLL_INTERVAL, State

NAME = "desktop"
SPACING = 2.5  # s from one drop's Notify to the next drop (notices: MIN_GAP 2 s, WINDOW 1 s)
WARMUP, PROTECTED = 1, "Credential file protected"  # untimed drops; what each Notify says
LIMIT, SAMPLE_EVERY, QUIT_LIMIT = 30.0, 5.0, 15.0  # s
SERVERS = ("dunst", "/usr/lib/notification-daemon/notification-daemon")
PROGRAMS = {"Xvfb": "xvfb", "trayer": "trayer", "import": "imagemagick"}  # tool: Debian package
TRAYER = ["--edge", "top", "--align", "left", "--widthtype", "pixel", "--width", "200",
          "--heighttype", "pixel", "--height", "32", "--SetDockType", "false",
          "--SetPartialStrut", "false", "--transparent", "false"]  # fmt: skip
STRIP = (0, 0, 200, 32)  # where trayer shows the icons
STATE_LINE = re.compile(r"credguard\.tray\.icon: state (\S+):")
Data = dict[str, Any]


def fail(message: str) -> NoReturn:
    raise SystemExit(f"FAIL: {message}")


def until(check: Callable[[], Any], what: str, limit: float = LIMIT, every: float = 0.01,
          alive: Sequence[subprocess.Popen[bytes]] = ()) -> Any:  # fmt: skip
    """Poll ``check`` until truthy (returned); exit 1 after ``limit`` or once ``alive`` dies."""
    deadline = time.monotonic() + limit
    while not (value := check()):
        if dead := [(p.args, p.returncode) for p in alive if p.poll() is not None]:
            fail(f"no {what}: exited (command, code): {dead}")
        if time.monotonic() > deadline:
            fail(f"no {what} after {limit:.0f} s")
        time.sleep(every)
    return value


def stop_group(proc: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, then SIGKILL, to ``proc``'s process group (its own session); its exit code."""
    for attempt in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, attempt)
        with contextlib.suppress(subprocess.TimeoutExpired):
            return proc.wait(QUIT_LIMIT)
    return proc.poll()


def cpu_s(pid: int) -> float:
    """CPU seconds of process ``pid`` (all its threads, ended ones too) to the ns, from its
    CPUCLOCK_SCHED process clock; psutil's cpu_times counts 10 ms ticks."""
    return time.clock_gettime(((~pid) << 3) | 2)


def spawn(argv: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(list(argv), env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out, start_new_session=True)  # fmt: skip


# -- download → notification ----------------------------------------------------------------


def protected_at(d: Daemon, path: Path) -> float | None:  # the record's wall time, if written
    for record in d.events():
        if record["event"] == "protected" and record["path"] == str(path):
            return dt.datetime.fromisoformat(str(record["time"])).timestamp()
    return None


def bench_notify(d: Daemon, server: Any, n: int, made: dict[str, str]) -> Data:
    """WARMUP + ``n`` browser-style drops into ~/Downloads, one at a time, each SPACING s after
    the previous one's Notify: rename → Notify received, rename → ``protected`` record."""
    notify, record = [], []
    for i, (name, data) in enumerate(profiles("notify", n + WARMUP, made)):
        partial, target = d.downloads / f"{name}.crdownload", d.downloads / name
        partial.write_bytes(data)
        os.rename(partial, target)
        t0, wall = time.monotonic(), time.time()
        call = server.wait_calls(i + 1, LIMIT)[i]  # pytest.fail() after LIMIT s
        t1 = server._answered[call.id]  # the server thread's time.monotonic() as it took Notify
        if call.summary != PROTECTED or f"{name} (in ~/Downloads)" not in call.body:
            fail(f"drop {name}: Notify said {call.summary!r}: {call.body!r}")
        at = until(functools.partial(protected_at, d, target), f"protected record for {name}")
        if target.exists():  # the record is written after the leftover is deleted
            fail(f"{target} is still there after its protected record")
        notify.append(t1 - t0)
        record.append(at - wall)
        time.sleep(max(0.0, t1 + SPACING - time.monotonic()))
    if len(server.calls) != n + WARMUP:
        fail(f"{len(server.calls)} Notify calls for {n + WARMUP} drops")
    if "no desktop notifications" in d.stderr():
        fail(f"the daemon lost its notification server:\n{d.stderr()[-2000:]}")
    share = [a - b for a, b in zip(notify, record, strict=True)]
    return {"first": notify[0], "notify": notify[WARMUP:], "record": record[WARMUP:],
            "share": share[WARMUP:]}  # fmt: skip


# -- the tray, idle ---------------------------------------------------------------------------


def start_x(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Xvfb on the first free display, which it writes once it accepts clients."""
    read_end, write_end = os.pipe()
    with (root / "xvfb.log").open("wb") as log:
        xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0",
                                 "640x480x24", "-nolisten", "tcp", "-noreset"],
                                pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=log,
                                start_new_session=True)  # fmt: skip
    os.close(write_end)
    ready = select.select([read_end], [], [], LIMIT)[0]
    number = os.read(read_end, 64).decode().strip() if ready else ""
    os.close(read_end)
    if not number.isdigit():
        stop_group(xvfb)
        fail(f"Xvfb did not start: {(root / 'xvfb.log').read_text(errors='replace')}")
    return xvfb, f":{number}"


def tray_host_ready(display: str) -> bool:
    """Whether an XEmbed tray (trayer) owns ``_NET_SYSTEM_TRAY_S0`` on ``display``."""
    from Xlib import X  # type: ignore[import-untyped]
    from Xlib import display as xdisplay

    with contextlib.suppress(Exception), contextlib.closing(xdisplay.Display(display)) as conn:
        return bool(conn.get_selection_owner(conn.intern_atom("_NET_SYSTEM_TRAY_S0")) != X.NONE)
    return False  # no connection (yet)


@dataclass
class Desktop:
    """Xvfb + trayer + a real notification server on a private bus (as tests/test_tray.py)."""

    display: str
    bus_address: str
    root: Path
    server: str

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, "DISPLAY": self.display, "DBUS_SESSION_BUS_ADDRESS": self.bus_address,
                "PYSTRAY_BACKEND": "gtk", "GDK_BACKEND": "x11", "NO_AT_BRIDGE": "1"}  # fmt: skip

    def icon(self, state: State) -> bool:
        """Whether trayer's strip shows ``state``'s colour (9+ pixels), from a new screenshot."""
        shot = self.root / "shot.png"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DISPLAY": self.display,
               "HOME": str(self.root)}  # fmt: skip
        subprocess.run(["import", "-window", "root", str(shot)], env=env, check=True,
                       capture_output=True, timeout=LIMIT)  # fmt: skip
        with Image.open(shot) as image:
            pixels = image.convert("RGB").crop(STRIP).tobytes()
        colour = COLOURS[state]
        hits = sum(all(abs(pixels[i + k] - colour[k]) <= 12 for k in range(3))
                   for i in range(0, len(pixels), 3))  # fmt: skip
        return hits >= 9


@contextlib.contextmanager
def desktop(root: Path) -> Iterator[Desktop]:
    """A virtual desktop, all of it stopped afterwards."""
    ss = common.tests_module("secret_service")
    server = next(s for s in SERVERS if shutil.which(s))
    bus, procs = ss.SessionBus(root / "desktop-bus"), list[subprocess.Popen[bytes]]()
    try:
        xvfb, display = start_x(root)
        procs.append(xvfb)
        bus.start()
        env = {**bus.daemon_env, "DISPLAY": display}
        for argv in (["trayer", *TRAYER], [server]):
            procs.append(spawn(argv, env, root / f"{Path(argv[0]).name}.log"))
        until(lambda: tray_host_ready(display), "tray host (trayer)", alive=procs)
        owned = ss.message_bus.NameHasOwner("org.freedesktop.Notifications")
        until(lambda: bus.call(owned)[0], f"{server} on the bus", alive=procs)
        yield Desktop(display, bus.address, root, Path(server).name)
    finally:
        for proc in reversed(procs):
            stop_group(proc)
        bus.stop()


def bench_tray(desk: Desktop, env: dict[str, str], exe: str, tag: str, minutes: float,
               daemon: psutil.Process | None = None) -> Data:  # fmt: skip
    """``credguard tray`` from spawn until its icon shows (state ``protecting`` if ``daemon``,
    else ``not-running``), then ``minutes`` idle: RSS, CPU, threads (and the daemon's CPU);
    then SIGTERM, checked."""
    state: State = "protecting" if daemon else "not-running"
    until(lambda: not desk.icon(state), f"end of the last {state} icon on screen", every=0.05)
    log, t0 = desk.root / f"tray-{tag}.log", time.monotonic()
    proc = spawn([exe, "tray"], env, log)
    try:
        ps = psutil.Process(proc.pid)

        def shown() -> bool:
            if proc.poll() is not None:
                fail(f"the tray exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
            return state in STATE_LINE.findall(log.read_text()) and desk.icon(state)

        until(shown, f"{state} icon on screen (tray log {log})", every=0.05)
        out: Data = {"startup": time.monotonic() - t0, "threads": ps.num_threads()}
        rss = [ps.memory_info().rss / 1e6]
        out["startup_cpu"], cpu0 = cpu_s(proc.pid), cpu_s(daemon.pid) if daemon else 0.0
        end = time.monotonic() + minutes * 60
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(SAMPLE_EVERY, left))
            rss.append(ps.memory_info().rss / 1e6)
        if minutes:
            out["cpu"] = (cpu_s(proc.pid) - out["startup_cpu"]) / minutes
            out["daemon_cpu"] = (cpu_s(daemon.pid) - cpu0) / minutes if daemon else None
        out |= {"rss0": rss[0], "rss1": rss[-1], "rss_max": max(rss), "threads1": ps.num_threads()}
        if not desk.icon(state) or (states := STATE_LINE.findall(log.read_text())) != [state]:
            fail(f"the tray did not stay {state}: states {states}")
        started = time.monotonic()
        code = stop_group(proc)
        out["quit"], text = time.monotonic() - started, log.read_text(errors="replace")
        if code != 0 or "tray stopped" not in text or "Traceback" in text or "WARNING" in text:
            fail(f"the {state} tray quit with {code}; its log:\n{text[-2000:]}")
        return out
    finally:
        stop_group(proc)


# -- the report -------------------------------------------------------------------------------


TEMPLATE = """\
## desktop: download → notification latency, idle cost of `credguard tray`

`python -m benchmarks.desktop --drops {drops} --idle-minutes {minutes}`. {facts}.

### A protected download → its desktop notification (real daemon, {drops} drops)

{latency_table}

- The notification's own share (`protected` record → Notify) is **{share} ms** (median) of
  the **{notify} ms** from the rename to the server taking the Notify call. The first drop after
  start-up (untimed: the daemon loads its D-Bus notifier, jeepney, and connects) took {first} ms.
- Drops are one at a time, each {spacing} s after the previous Notify, beyond the daemon's
  pacing (`credguard/notify/messages.py`: a note after {window:g} s of quiet is shown at once and
  alone; at most one notification every {gap:g} s): none is coalesced or held back. Checked:
  one Notify per drop, each a single "Credential file protected" naming its file; every
  credential in the vault and audited once as `protected`, nothing `failed`.

### `credguard tray`, idle (status poll every {poll:g} s)

{tray_table}

- The first GTK 3 client on a fresh X display probes OpenGL (mapping Mesa's libLLVM) and keeps
  the answer on the root window (`GDK_VISUALS`) for later ones; in a desktop session an earlier
  client has done so. So one tray was started and quit first, untimed: {first_rss:.1f} MB RSS.

Notes: the daemon (`python -m credguard daemon`, temporary HOME and XDG dirs, precompiled),
gnome-keyring {gk} (as in `benchmarks/vault.py`) and the recording notification server of
`tests/notification_server.py` share a private bus; that server, a thread of this process,
stamps `time.monotonic()` as its handler takes a Notify call, t0 just after the rename. Drops:
a fresh {size}-byte publish profile written as `NAME.crdownload`, renamed to `NAME` in
~/Downloads. Audit records carry ms wall times: the split is good to ~1 ms. The tray:
`credguard tray` (pystray's gtk backend) on Xvfb, trayer as XEmbed tray host, {server} on a
second private bus (as `tests/test_tray.py`), with the same daemon or, once it has stopped,
none (it still polls for the control socket). Start-up ends when the tray has logged its state
and a screenshot (`import`, ~0.1 s apart) shows the icon in its colour; then it idles (RSS read
every {every:g} s), must keep that state and exit 0 on SIGTERM with no warning. CPU time: the
process's CPU clock (`clock_gettime`, all threads, ns; not 10 ms ticks). MB = 10^6 bytes.
"""


def render(lat: Data, trays: dict[str, Data], args: Any, facts: dict[str, str]) -> str:
    """The section for ``docs/benchmarks.md``."""
    labels = {"record": "rename → `protected` audit record",
              "share": "`protected` record → Notify received",
              "notify": "rename → Notify received (total)"}  # fmt: skip
    rows = [[label, len(x := lat[k]), ms(common.median(x)), ms(common.p95(x)), ms(max(x))]
            for k, label in labels.items()]  # fmt: skip
    head = ["per drop", "drops", "median (ms)", "p95 (ms)", "max (ms)"]
    w, wo, mins = trays["protecting"], trays["not-running"], f"{args.idle_minutes:g}"

    def row(label: str, key: str, fmt: str) -> list[str]:
        return [label, *("n/a" if t[key] is None else format(t[key], fmt) for t in (w, wo))]

    tray_rows = [row("spawn → icon on screen (s)", "startup", ".2f"),
        row("CPU time of the start-up (s)", "startup_cpu", ".2f"),
        row("RSS after start-up (MB)", "rss0", ".1f"),
        row(f"RSS after {mins} idle minute(s) (MB)", "rss1", ".1f"),
        row("largest idle RSS reading (MB)", "rss_max", ".1f"),
        row("CPU time per idle minute (s)", "cpu", ".3f"),
        ["threads (after start-up / after idling)",
         *(f"{t['threads']} / {t['threads1']}" for t in (w, wo))],
        row("daemon CPU time per minute meanwhile (answering polls, s)", "daemon_cpu", ".3f"),
        row("SIGTERM → exit 0 (s)", "quit", ".2f")]  # fmt: skip
    tray_head = ["`credguard tray`", "daemon running (protecting)", "no daemon (not running)"]
    v: Data = dict(drops=args.drops, minutes=mins, facts=common.facts_line(facts),
        latency_table=common.markdown_table(head, rows),
        tray_table=common.markdown_table(tray_head, tray_rows),
        share=ms(common.median(lat["share"])), notify=ms(common.median(lat["notify"])),
        first=ms(lat["first"]), gk=facts["gnome-keyring"], spacing=f"{SPACING:g}",
        window=messages.WINDOW, gap=messages.MIN_GAP, poll=POLL_INTERVAL,
        server=facts["notification server"], every=SAMPLE_EVERY,
        first_rss=trays["first"]["rss0"],
        size=len(common.tests_module("payloads").publish_profile("notify-0").data))  # fmt: skip
    return TEMPLATE.format(**v)


def tool_facts(server: str) -> dict[str, str]:
    def word(cmd: list[str], index: int) -> str:
        out = subprocess.run(cmd, capture_output=True, text=True).stdout.split()
        return out[index] if -len(out) <= index < len(out) else "?"

    git = ["git", "-C", str(common.REPO), "describe", "--always", "--dirty"]
    version = word([server, "-v"], -2) if server == "dunst" else ""
    return {"gnome-keyring": word(["gnome-keyring-daemon", "--version"], 1),
            "notification server": f"{server} {version}".strip(),
            "pystray": metadata.version("pystray"), "PyGObject": metadata.version("PyGObject"),
            "commit": word(git, 0)}  # fmt: skip


def run_all(s: Session, args: Any) -> str:
    """Notifications first (recording server), then the idle trays; everything stopped."""
    server = common.tests_module("notification_server").RecordingServer(s.service.address)
    server.start()
    made, trays, minutes = dict[str, str](), dict[str, Data](), args.idle_minutes
    try:
        d = Daemon(s)
        try:
            print(f"desktop: {args.drops + WARMUP} drops, {SPACING:g} s apart", file=sys.stderr)
            lat = bench_notify(d, server, args.drops, made)
            check_vault(d, made)
            with desktop(s.root) as desk:
                env = desk.env(d.env)
                print(f"desktop: two trays idle {minutes:g} min each", file=sys.stderr)
                trays["first"] = bench_tray(desk, env, s.exe, "first", 0, d.ps)
                trays["protecting"] = bench_tray(desk, env, s.exe, "protecting", minutes, d.ps)
                if (code := d.stop()[0]) != 0:
                    fail(f"the daemon exited with {code} on SIGTERM:\n{d.stderr()[-2000:]}")
                trays["not-running"] = bench_tray(desk, env, s.exe, "not-running", minutes)
                facts = common.machine_facts() | tool_facts(desk.server)
        finally:
            d.stop()
    finally:
        server.stop()
    return render(lat, trays, args, facts)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the Secret Service, the daemon and the desktop; measure, check, write the section."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.desktop", description=NAME + " bench")
    p.add_argument("--drops", type=int, default=50, help="timed drops (50)")
    p.add_argument("--idle-minutes", type=float, default=1, help="idle period per tray (1)")
    p.add_argument("--no-write", action="store_true", help="print only; leave the docs alone")
    if (args := p.parse_args(argv)).drops < 1 or args.idle_minutes <= 0:
        p.error("--drops must be at least 1 and --idle-minutes above 0")
    missing = [f"{tool} ({pkg})" for tool, pkg in PROGRAMS.items() if not shutil.which(tool)]
    missing += [] if any(map(shutil.which, SERVERS)) else ["dunst or notification-daemon"]
    if missing:
        fail(f"missing: {', '.join(missing)} (Debian: apt-get install the packages named)")
    try:
        with common.exit_on_sigterm(), secret_service() as session:
            section = run_all(session, args)
    except common.tests_module("secret_service").pytest.fail.Exception as exc:  # from tests/
        fail(str(exc))
    common.publish(NAME, section, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
