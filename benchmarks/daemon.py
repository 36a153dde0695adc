"""Benchmark: the real ``credguard daemon`` against ``inotifywait | shred``: drop-to-gone latency,
idle RSS and CPU, bursts; every result checked (vault, audit log, other files), else exit 1.

Usage: ``python -m benchmarks.daemon [--drops N] [--idle-minutes N] [--no-write]``
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import hashlib
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import psutil

from benchmarks import common
from benchmarks.vault import Session, check, run_and_publish
from credguard.audit.log import AuditLog

NAME = "daemon"
MEDIAN_GOAL, P99_GOAL, RSS_GOAL, CPU_GOAL = 0.050, 0.250, 40.0, 0.1  # s, s, MB, s per minute
BURST_GOAL = 1.0  # 1,000 renamed in: the daemon's rate, times the floor's
LIMIT, STOP_LIMIT = 60.0, 5.0  # s: for any credential to go; for SIGTERM to end the daemon
WARMUP, BURST, MANY, EVERY = 3, 1000, 10_000, 100  # MANY files, every EVERY-th a credential
LIBC = ctypes.CDLL(None, use_errno=True)
BASELINE = ('inotifywait -m -q -e close_write,moved_to --format %w%f "$1" | while IFS= read -r f; '
            'do case "$f" in *.crdownload) ;; *) shred -u "$f" ;; esac; done')  # fmt: skip
BURSTS = {"daemon": f"{BURST:,} credentials renamed in: daemon",
          "baseline": f"{BURST:,} credentials renamed in: `inotifywait | shred -u`",
          "many": f"{MANY:,} files, {MANY // EVERY} credentials, written in: daemon",
          "many-frozen": "… the same, written while the daemon is stopped (SIGSTOP)"}  # fmt: skip
GIT = ["git", "-C", str(common.REPO), "describe", "--always", "--dirty"]
TOOLS = {"gnome-keyring": (["gnome-keyring-daemon", "--version"], 1),  # facts: command, word
         "inotifywait": (["inotifywait", "--help"], 1), "commit": (GIT, 0)}  # fmt: skip
Data = dict[str, Any]


def fail(message: str) -> NoReturn:
    raise SystemExit(f"FAIL: {message}")


def watch(folder: Path) -> int:
    """A raw inotify descriptor for ``folder``: IN_DELETE | IN_MOVED_FROM (0x200 | 0x40)."""
    fd = int(LIBC.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
    if fd < 0 or LIBC.inotify_add_watch(fd, os.fsencode(folder), 0x240) < 0:
        raise OSError(ctypes.get_errno(), f"inotify on {folder}")
    return fd


def emptied(fd: int, folder: Path, limit: float = LIMIT) -> float:
    """perf_counter() once ``folder`` is empty, looked at on each event of ``fd``; exit 1 late."""
    deadline = time.perf_counter() + limit
    while os.listdir(folder):
        if (left := deadline - time.perf_counter()) <= 0:
            fail(f"{folder} still holds {os.listdir(folder)[:3]} after {limit:.0f} s")
        if select.select([fd], [], [], left)[0]:
            os.read(fd, 1 << 16)  # which events does not matter: only what is left
    return time.perf_counter()


class Daemon:
    """``python -m credguard daemon`` as the tests start it; ready once ``status`` has a scan.
    ``stop``: SIGTERM; (exit code, seconds to exit); killed (code None) if alive after 10 s."""

    def __init__(self, s: Session, vault: str = NAME) -> None:  # vault: Session.env's
        self.s, self.env = s, common.installed_env(s.env(vault))
        self.log, self.downloads = s.root / "daemon.log", Path(s.service.home) / "Downloads"
        for sub in ("Downloads", "Desktop", "Documents"):
            (self.downloads.parent / sub).mkdir(parents=True, exist_ok=True)
        self.audit = AuditLog(Path(self.env["XDG_STATE_HOME"]) / "credguard" / "audit")
        started, status_cmd = time.perf_counter(), [s.exe, "status", "--json"]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "credguard", "daemon"],
                                         env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True)  # fmt: skip
        self.ps = psutil.Process(self.proc.pid)
        try:
            while not (status := json.loads(common.run_once(status_cmd, self.env).stdout or
                                            "{}")).get("last_scan"):  # fmt: skip
                if self.proc.poll() is not None or time.perf_counter() - started > LIMIT:
                    fail(f"the daemon did not start (exit {self.proc.poll()}):\n{self.stderr()}")
                time.sleep(0.05)
            self.startup = time.perf_counter() - started
            roots = {r["path"]: r["state"] for r in status["roots"]}
            if status["mode"] != "protecting" or roots.get(str(self.downloads)) != "watching":
                fail(f"the daemon is not protecting ~/Downloads: {status}")
        except BaseException:
            self.stop()
            raise

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def events(self) -> list[Data]:
        return [record for _, record in self.audit.entries()]

    def stop(self) -> tuple[int | None, float]:
        started = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.send_signal(signal.SIGCONT)  # in case it was stopped
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(2 * STOP_LIMIT)
        took, code = time.perf_counter() - started, self.proc.poll()
        if code is None:
            self.proc.kill()
            self.proc.wait()
        return code, took


@contextlib.contextmanager
def baseline(folder: Path, log: Path) -> Iterator[None]:
    """``inotifywait -m | shred -u`` on ``folder`` in its own process group, ended after."""
    folder.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as err:
        proc = subprocess.Popen(["/bin/sh", "-c", BASELINE, "sh", str(folder)], stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        with contextlib.suppress(ChildProcessError):  # its orphans: ours, as a child subreaper
            while os.waitpid(-proc.pid, 0):
                pass


def profiles(prefix: str, count: int, made: dict[str, str]) -> list[tuple[str, bytes]]:
    """``count`` fresh publish profiles (random secrets); each name and SHA-256 into ``made``."""
    payloads = common.tests_module("payloads")
    out = [(f"{prefix}-{i:05d}.PublishSettings", payloads.publish_profile(f"{prefix}-{i}").data)
           for i in range(count)]  # fmt: skip
    made.update((name, hashlib.sha256(data).hexdigest()) for name, data in out)
    return out


def bench_latency(d: Daemon, base: Path, n: int, made: dict[str, str]) -> Data:
    """WARMUP untimed, then ``n`` timed browser-style drops per folder, alternating (see notes)."""
    dirs = {"daemon": d.downloads, "baseline": base}
    fds = {key: watch(folder) for key, folder in dirs.items()}
    out: Data = {"daemon": [], "baseline": [], "walls": {}}
    for i, (name, data) in enumerate(profiles("drop", n + WARMUP, made)):
        for key in list(dirs) if i % 2 == 0 else reversed(dirs):
            partial = dirs[key] / f"{name}.crdownload"
            partial.write_bytes(data)
            os.rename(partial, dirs[key] / name)
            t0, wall = time.perf_counter(), time.time()
            took = emptied(fds[key], dirs[key]) - t0
            if i >= WARMUP:
                out[key].append(took)
                out["walls"] |= {str(d.downloads / name): (wall, took)} if key == "daemon" else {}
    for fd in fds.values():
        os.close(fd)
    return out


def split(d: Daemon, walls: dict[str, tuple[float, float]]) -> dict[str, list[float]]:
    """Per daemon drop: rename → ``detected`` record → leftover gone → ``protected`` record."""
    at = {(str(r["path"]), str(r["event"])): dt.datetime.fromisoformat(str(r["time"])).timestamp()
          for r in d.events() if r["event"] in ("detected", "protected")}  # fmt: skip
    rows = [(at[p, "detected"] - w, w + took - at[p, "detected"], at[p, "protected"] - w - took)
            for p, (w, took) in walls.items()]  # fmt: skip
    return {k: [row[i] for row in rows] for i, k in enumerate(("notice", "act", "record"))}


def bench_idle(d: Daemon, minutes: float) -> Data:
    """RSS and CPU (user + system) of the daemon over ``minutes`` of nothing happening."""
    cpu, rss0, threads = d.ps.cpu_times(), d.ps.memory_info().rss / 1e6, d.ps.num_threads()
    rss, end = [rss0], time.monotonic() + minutes * 60
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(5.0, left))
        rss.append(d.ps.memory_info().rss / 1e6)
    used = sum(d.ps.cpu_times()[:2]) - cpu.user - cpu.system
    return dict(startup=d.startup, rss0=rss0, rss1=rss[-1], rss_max=max(rss), cpu=used / minutes,
                threads=threads)  # fmt: skip


def bench_burst(d: Daemon, base: Path, made: dict[str, str]) -> dict[str, Data]:
    """BURST profiles staged outside the roots, renamed into each folder at once, until gone."""
    out, files = dict[str, Data](), profiles("burst", BURST, made)
    for key, folder in (("daemon", d.downloads), ("baseline", base)):
        (stage := d.s.root / "stage" / key).mkdir(parents=True)
        for name, data in files:
            (stage / name).write_bytes(data)
        fd, t0 = watch(folder), time.perf_counter()
        for name, _ in files:
            os.rename(stage / name, folder / name)
        renamed = time.perf_counter()
        gone = emptied(fd, folder, LIMIT + renamed - t0)
        os.close(fd)
        out[key] = {"write": renamed - t0, "all": gone - t0, "after": gone - renamed, "n": BURST}
    return out


def bench_many(d: Daemon, made: dict[str, str], tag: str, frozen: bool) -> Data:
    """MANY files, every EVERY-th a credential, into a watched ~/Downloads/TAG (see notes)."""
    payloads, folder, files = common.tests_module("payloads"), d.downloads / tag, {}
    for i in range(MANY):
        cred = i % EVERY == 0
        data = payloads.publish_profile(f"{tag}{i}").data if cred else b"just a file %d\n" % i
        files[folder / f"{tag}{i:05d}{'.PublishSettings' if cred else '.txt'}"] = data
    creds = [path for path in files if path.suffix != ".txt"]
    folder.mkdir()
    time.sleep(1.0)  # the daemon watches the new folder
    events, log_size = len(d.events()), len(d.stderr())
    d.proc.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)  # Daemon.stop: SIGCONT
    t0 = time.perf_counter()
    for path, data in files.items():
        path.write_bytes(data)
    written = time.perf_counter()
    d.proc.send_signal(signal.SIGCONT)
    others = {path: path.stat() for path in files if path.suffix == ".txt"}
    # gone under every name: a batch renames its files away before it unlinks them
    while left := len(os.listdir(folder)) - len(others):
        if time.perf_counter() - written > LIMIT:
            fail(f"{tag}: {left} of {len(creds)} credentials left after {LIMIT:.0f} s")
        time.sleep(0.02)
    done = time.perf_counter()
    made.update((path.name, hashlib.sha256(files[path]).hexdigest()) for path in creds)
    for path, st in others.items():
        now, keys = path.stat(), ("st_mode", "st_size", "st_mtime_ns", "st_ino")
        if any(getattr(now, k) != getattr(st, k) for k in keys) or path.read_bytes() != files[path]:
            fail(f"the daemon touched {path}, not a credential")
    if len(os.listdir(folder)) != len(others):
        fail(f"{folder} holds {len(os.listdir(folder))} files, not {len(others)}")
    scans = [str(e.get("reason")) for e in d.events()[events:] if e["event"] == "scanned"]
    said = [where for where, yes in (("audit", any("overflow" in r for r in scans)),
            ("stderr", "overflow" in d.stderr()[log_size:].lower())) if yes]  # fmt: skip
    return {"all": done - t0, "after": done - written, "write": written - t0, "scans": scans,
            "n": len(creds), "others": len(others), "overflow": said}  # fmt: skip


def check_vault(d: Daemon, made: dict[str, str]) -> int:
    """The vault holds exactly the credentials dropped (``made``: file name -> SHA-256), each
    audited once as protected; nothing failed; returns the item count."""
    doc = check([d.s.run(NAME, "vault", "list", "--json")], "vault list", parse=True)[0]
    items = doc["items"]  # {"version": 1, "items": [...]}
    if sorted(i["sha256"] for i in items) != sorted(made.values()):
        fail("the vault's items are not the dropped credentials")
    events = d.events()
    protected = [os.path.basename(str(e["path"])) for e in events if e["event"] == "protected"]
    if sorted(protected) != sorted(made):
        fail(f"{len(protected)} protected events for {len(made)} credentials")
    if (failed := [e for e in events if e["event"] == "failed"]) or "Traceback" in d.stderr():
        fail(f"failed: {failed[:3]}; the daemon's stderr ends:\n{d.stderr()[-3000:]}")
    return len(items)


def pct(values: Sequence[float], q: float) -> float:
    return sorted(values)[max(0, math.ceil(q / 100 * len(values)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


TEMPLATE = """\
## daemon: download-to-vault latency, idle cost and bursts, real `credguard daemon`

`python -m benchmarks.daemon --drops {drops} --idle-minutes {minutes}`. {facts}.

### Latency: final rename of a download → leftover gone (item verified in the vault)

{latency_table}

- Goal median ≤ 50 ms: **{median} ms, {median_met}**; goal p99 ≤ 250 ms: **{p99} ms, {p99_met}**.
  Ratio of medians, daemon / floor: **{ratio:.2f}** (the floor keeps no copy, but starts a
  `shred` per file that overwrites 3 times; the daemon overwrites once, in-process).
- The daemon's median drop, by the audit records' ms stamps (each the time its event
  happened; a batch's records are written together, before its journal entries go): rename →
  `detected` {notice} ms (inotify, watchdog, queue, writer check, detection) → leftover gone
  {act} ms (journal, vault write + read-back compare, shred) → `protected` {record} ms.

### Idle, memory, stop

{idle_table}

- Goal RSS ≤ 40 MB after start-up: **{rss:.1f} MB ({rss_mib:.1f} MiB), {rss_met}** (largest
  idle reading). Goal CPU ≤ 0.1 s per idle minute: **{cpu:.3f} s, {cpu_met}**.

### Bursts

{burst_table}

- Goal, 1,000 credentials renamed in: the daemon's rate ≥ {burst_goal:.1f}x the floor's:
  **{burst_ratio:.2f}x, {burst_met}**. The daemon protects what is due together, up to 32
  files a batch: their journal entries, vault copies and directories synced once per stage
  (each file still verified in the vault before its first byte is overwritten), and their
  audit records written in one append.
- None missed: every credential is in the vault, each audited once as `protected` ({items:,}
  items in all, no `failed` record); the {others:,} other files of each {many:,}-file burst
  are untouched (mode, size, mtime, inode, bytes). Kernel queue overflow seen: written live,
  {overflow_live}; written while stopped, {overflow_frozen}. Scans meanwhile: {scans}.

Notes: the daemon runs as in the tests (temporary HOME and XDG dirs, gnome-keyring {gk} on a
private bus from `benchmarks/vault.py`), precompiled. Drops ({size}-byte publish profiles: write
`NAME.crdownload`, rename to `NAME`) alternate between ~/Downloads and the floor's folder, order
reversed every other round, {warmup} untimed each first, timed from just after the rename until
an inotify watch (`IN_DELETE`, `IN_MOVED_FROM`; no polling) finds the folder empty: the leftover
gone under every name, after the vault copy was read back and compared. Floor: `{baseline_cmd}`.
MB = 10^6 bytes. The 1,000 credentials are staged outside the roots, then renamed in: unpaired
`moved_to`s, which watchdog reports as creations, settled 1 s by the daemon. {many:,} files go
into an empty, watched ~/Downloads subfolder (3+ events a file; the kernel queues {queued});
"stopped": SIGSTOP while writing, SIGCONT after ("last drop" = SIGCONT).
"""


def render(lat: Data, parts: dict[str, list[float]], idle: Data, bursts: dict[str, Data],
           end: Data, args: Any, facts: dict[str, str]) -> str:  # fmt: skip
    """The section for ``docs/benchmarks.md``."""
    met = {True: "met", False: "NOT met"}
    labels = {"daemon": "credguard daemon", "baseline": "`inotifywait | shred -u`"}
    rows = [[label, len(w := lat[k]), ms(common.median(w)), ms(pct(w, 95)), ms(pct(w, 99)),
             ms(min(w)), ms(max(w))] for k, label in labels.items()]  # fmt: skip
    head = ["rename → gone", "drops", "median (ms)", "p95 (ms)", "p99 (ms)", "min (ms)", "max (ms)"]
    idle_rows = [["start-up: spawn → `status` shows the first scan (s)", f"{idle['startup']:.2f}"],
        ["RSS after start-up (MB)", f"{idle['rss0']:.1f}"], ["threads", idle["threads"]],
        [f"RSS after {args.idle_minutes:g} idle minute(s) (MB)", f"{idle['rss1']:.1f}"],
        ["CPU (user + system) per idle minute (s)", f"{idle['cpu']:.3f}"],
        ["RSS after all the bursts (MB)", f"{end['rss_end']:.1f}"],
        ["peak RSS over the run (`VmHWM`, MB)", f"{end['hwm']:.1f}"],
        [f"SIGTERM → exit 0 (ms; limit {STOP_LIMIT:.0f} s)", ms(end["stop"])]]  # fmt: skip
    b_rows = [[label, f"{(b := bursts[k])['write']:.3f}", f"{b['all']:.2f}", f"{b['after']:.2f}",
               f"{b['n'] / b['all']:.0f}"] for k, label in BURSTS.items()]  # fmt: skip
    b_head = ["burst", "dropping (s)", "first drop → gone (s)", "last drop → gone (s)", "creds/s"]
    med, p99, rss = common.median(lat["daemon"]), pct(lat["daemon"], 99), idle["rss_max"]
    said = {k: " and ".join(bursts[k]["overflow"]) or "no" for k in ("many", "many-frozen")}
    scans = {f"`{s}`" for k in ("many", "many-frozen") for s in bursts[k]["scans"]}
    burst_ratio = bursts["baseline"]["all"] / bursts["daemon"]["all"]
    v: Data = dict(drops=args.drops, minutes=f"{args.idle_minutes:g}", burst_goal=BURST_GOAL,
        burst_ratio=burst_ratio, burst_met=met[burst_ratio >= BURST_GOAL],
        facts=common.facts_line(facts), latency_table=common.markdown_table(head, rows),
        idle_table=common.markdown_table(["", "value"], idle_rows),
        burst_table=common.markdown_table(b_head, b_rows), median=ms(med),
        median_met=met[med <= MEDIAN_GOAL], p99=ms(p99), p99_met=met[p99 <= P99_GOAL],
        ratio=med / common.median(lat["baseline"]), rss=rss, rss_mib=rss * 1e6 / 2**20,
        rss_met=met[rss <= RSS_GOAL], cpu=idle["cpu"], cpu_met=met[idle["cpu"] <= CPU_GOAL],
        others=bursts["many"]["others"], many=MANY, overflow_live=said["many"],
        overflow_frozen=said["many-frozen"], scans=", ".join(sorted(scans)) or "none",
        items=end["items"], gk=facts["gnome-keyring"], warmup=WARMUP,
        queued=Path("/proc/sys/fs/inotify/max_queued_events").read_text().strip(),
        size=len(common.tests_module("payloads").publish_profile("drop-0").data),
        baseline_cmd=BASELINE.replace('"$1"', "DIR"),
        **{k: ms(common.median(v)) for k, v in parts.items()})  # fmt: skip
    return TEMPLATE.format(**v)


def run_all(s: Session, args: Any) -> str:
    """Start the daemon, measure and check everything, stop it; the rendered section."""
    d, base, end, made = Daemon(s), s.root / "baseline", Data(), dict[str, str]()
    try:
        print(f"daemon: idle, {args.drops} drops each, then the bursts", file=sys.stderr)
        idle = bench_idle(d, args.idle_minutes)
        with baseline(base, s.root / "baseline.log"):
            lat = bench_latency(d, base, args.drops, made)
            bursts = bench_burst(d, base, made)
        for tag in ("many", "many-frozen"):
            bursts[tag] = bench_many(d, made, tag, frozen=tag != "many")
        end["items"] = check_vault(d, made)
        hwm = int(Path(f"/proc/{d.proc.pid}/status").read_text().split("VmHWM:")[1].split()[0])
        end |= {"rss_end": d.ps.memory_info().rss / 1e6, "hwm": hwm * 1024 / 1e6}
        parts = split(d, lat["walls"])
    finally:
        code, end["stop"] = d.stop()
    if code != 0 or end["stop"] > STOP_LIMIT:
        fail(f"SIGTERM: exit {code} after {end['stop']:.2f} s:\n{d.stderr()[-2000:]}")
    facts = common.machine_facts(s.root)
    for key, (cmd, i) in TOOLS.items():
        out = subprocess.run(cmd, capture_output=True, text=True).stdout.split()
        facts[key] = [*out, "?", "?"][i]
    return render(lat, parts, idle, bursts, end, args, facts)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the Secret Service and the daemon, run and check everything, write the section."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.daemon", description=NAME + " bench")
    p.add_argument("--drops", type=int, default=200, help="timed drops per side (200)")
    p.add_argument("--idle-minutes", type=float, default=1, help="idle period (1 minute)")
    p.add_argument("--no-write", action="store_true", help="print only; leave the docs alone")
    if (args := p.parse_args(argv)).drops < 1 or args.idle_minutes <= 0:
        p.error("--drops must be at least 1 and --idle-minutes above 0")
    if missing := [tool for tool in ("inotifywait", "shred") if not shutil.which(tool)]:
        fail(f"{missing} missing (Debian: apt-get install inotify-tools coreutils)")
    return run_and_publish(NAME, run_all, args)


if __name__ == "__main__":
    sys.exit(main())
