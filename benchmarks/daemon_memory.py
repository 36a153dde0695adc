"""Benchmark: does the real ``credguard daemon`` give memory back after a burst? Its RSS after
start-up (settled), right after 1,000 credentials renamed into ~/Downloads are all gone, and 60 s
later, twice; beside them, what the first credential loads for good (the notifier with its thread
and connection, the XML parser), measured in a fresh interpreter. Every result is checked (vault,
audit log, a notification delivered, memory handed back after each burst), else exit 1.

Usage: ``python -m benchmarks.daemon_memory [--burst N] [--after S] [--bursts N] [--no-write]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from benchmarks import common
from benchmarks.daemon import GIT, LIMIT, Daemon, check_vault, emptied, fail, profiles, watch
from benchmarks.vault import Session, run_and_publish

NAME = "daemon-memory"
RSS_GOAL, RATIO_GOAL = 40.0, 1.1  # MB, and times the RSS after start-up, both 60 s after burst 1
SETTLE = 10.0  # s the daemon idles after start-up before its RSS is read
RELEASED = "memory handed back"  # what the daemon logs once the queue drains after a burst
NOTIFY_SETTLE = 1.0  # s the probe's notifier has to connect to the notification server
# Run with the daemon's environment: the RSS of this interpreter once it holds what the daemon
# holds after start-up, then after what the first XML credential imports
# (credguard.detect.xmlsafe), then after what the first notification loads and keeps: the
# daemon's own Notifier, started, i.e. this system's backend, its thread and its connection.
PROBE = f"""\
import gc, json, sys, time
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 / 1e6 for l in f if l.startswith("VmRSS:"))
import keyring
from credguard import config
from credguard.daemon import runtime
from credguard.vault.access import open_vault
open_vault(config.load()).ensure_key()
out = {{}}
def measure(name):
    gc.collect()
    out[name] = rss()
measure("start-up")
import credguard.detect.xmlsafe
measure("xml")
from credguard.notify.desktop import Notifier
notifier = Notifier(True, lambda *_: None)
notifier.start()
time.sleep({NOTIFY_SETTLE})
measure("notify")
out["modules"] = sorted(m for m in sys.modules if m.split(".")[0] in
                        ("jeepney", "desktop_notifier", "dbus_fast", "asyncio"))
notifier.close()
json.dump(out, sys.stdout)
"""
Data = dict[str, Any]


def rss(d: Daemon) -> float:
    """The daemon's resident set size in MB, as ``benchmarks.daemon`` reads it."""
    return float(d.ps.memory_info().rss / 1e6)


def burst(d: Daemon, tag: str, count: int, made: dict[str, str]) -> float:
    """``count`` profiles staged outside the roots, renamed into ~/Downloads at once; seconds
    until the last leftover is gone (exit 1 after ``2 * LIMIT``)."""
    files = profiles(tag, count, made)
    (stage := d.s.root / "stage" / tag).mkdir(parents=True)
    for name, data in files:
        (stage / name).write_bytes(data)
    fd, t0 = watch(d.downloads), time.perf_counter()
    for name, _ in files:
        os.rename(stage / name, d.downloads / name)
    gone = emptied(fd, d.downloads, 2 * LIMIT)
    os.close(fd)
    return gone - t0


def after(d: Daemon, seconds: float) -> list[float]:
    """RSS readings every 5 s for ``seconds``; the last one at ``seconds``."""
    readings, end = [], time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(5.0, left))
        readings.append(rss(d))
    return readings


def one_time_loads(d: Daemon) -> Data:
    """:data:`PROBE` run with the daemon's environment (its keyring, its vault)."""
    env = common.installed_env(d.env)
    run = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, timeout=120, check=False)  # fmt: skip
    if run.returncode != 0 or "no desktop notifications" in run.stderr:
        fail(f"the import probe failed:\n{run.stderr[-2000:]}")
    loaded: Data = json.loads(run.stdout)
    return loaded


def run_all(s: Session, args: Any) -> str:
    """Start the daemon and a notification server, burst and measure, check, stop."""
    server = common.tests_module("notification_server").RecordingServer(s.service.address)
    server.start()
    try:
        d, made, m = Daemon(s), dict[str, str](), Data(bursts=[])
        try:
            time.sleep(SETTLE)
            m["start"] = rss(d)
            for i in range(args.bursts):
                print(f"{NAME}: burst {i + 1} of {args.burst:,} credentials", file=sys.stderr)
                took = burst(d, f"burst{i + 1}", args.burst, made)
                m["bursts"].append({"took": took, "right": rss(d), "after": after(d, args.after)})
            m["items"] = check_vault(d, made)
            m["loads"] = one_time_loads(d)
        finally:
            code, _ = d.stop()
        m["notified"] = len(server.calls)
    finally:
        server.stop()
    m["released"] = d.stderr().count(RELEASED)
    if code != 0 or m["notified"] < 1 or m["released"] < args.bursts:
        fail(f"exit {code}, {m['notified']} notification(s), memory handed back "
             f"{m['released']} time(s) for {args.bursts} burst(s):\n{d.stderr()[-2000:]}")
    facts = common.machine_facts(s.root)
    facts["commit"] = subprocess.run(GIT, capture_output=True, text=True).stdout.strip() or "?"
    return render(m, args, facts)


TEMPLATE = """\
## daemon memory: RSS after bursts, real `credguard daemon`

`python -m benchmarks.daemon_memory --burst {burst} --after {after:g} --bursts {bursts}`. {facts}.

{table}

- Goal, {after:g} s after burst 1: ≤ {rss_goal:.0f} MB and ≤ {ratio_goal}x the RSS after start-up:
  **{rss1:.1f} MB ({rss1_met}), {ratio1:.2f}x ({ratio1_met})**.
- Before its first credential the worker loads what that credential would load for good (the
  XML detector families and parser, AES-GCM used once): it is part of the start-up figure. The
  XML parser (defusedxml, expat) alone is **{xml:.1f} MB** (in a fresh interpreter holding
  what the daemon holds after start-up). Loaded by the first notification and kept for good:
  the notifier, started and connected ({backend}), **{notify:.1f} MB**. After start-up plus
  that: **{floor:.1f} MB, {floor_ratio:.2f}x**, a floor while it lives in the daemon's
  process. Burst 1 left **{left:+.1f} MB** beyond that floor{later}.
- Checked: every credential is in the vault and audited once as `protected` ({items:,} items,
  no `failed` record); {notified} notification(s) reached the notification server; the daemon
  logged "{released_text}" {released} time(s) for {bursts} burst(s).

Notes: the daemon runs as in the daemon section (temporary HOME and XDG dirs, gnome-keyring on a
private bus, precompiled), with the tests' recording notification server on that bus. RSS is
psutil's `rss` of the daemon process, as in the daemon section; MB = 10^6 bytes. Start-up: ready
(`status` shows the first scan), then {settle:g} s idle. Each burst: {burst:,} fresh publish
profiles staged outside the roots, renamed into ~/Downloads at once; "right after" is read when
an inotify watch finds the folder empty, then every 5 s up to {after:g} s.
"""


def backend_text(modules: list[str]) -> str:
    """Which notification stack the probe's notifier loaded, by the modules it found."""
    if "desktop_notifier" in modules:
        return "desktop-notifier, dbus-fast, asyncio"
    return "jeepney on one plain thread" + (", asyncio" if "asyncio" in modules else "")


def render(m: Data, args: Any, facts: dict[str, str]) -> str:
    """The section for ``docs/benchmarks.md``."""
    met = {True: "met", False: "NOT met"}
    start, b = m["start"], m["bursts"]
    rows = [["after start-up (ready, then idle)", f"{start:.1f}", "1.00", ""]]
    for i, one in enumerate(b, 1):
        rate = f"{args.burst / one['took']:.0f} creds/s"
        rows += [[f"right after burst {i} ({args.burst:,} credentials gone)", f"{one['right']:.1f}",
                  f"{one['right'] / start:.2f}", rate],
                 [f"{args.after:g} s after burst {i}", f"{one['after'][-1]:.1f}",
                  f"{one['after'][-1] / start:.2f}",
                  f"{min(one['after']):.1f} to {max(one['after']):.1f} meanwhile"]]  # fmt: skip
    head = ["daemon", "RSS (MB)", "x after start-up", ""]
    rss1, loads = b[0]["after"][-1], m["loads"]
    xml, notify = loads["xml"] - loads["start-up"], loads["notify"] - loads["xml"]
    backend = backend_text(loads["modules"])
    floor = start + notify  # the XML parser is loaded at start-up (daemon.worker.prepare)
    later = "".join(f"; burst {i} added {one['after'][-1] - prev['after'][-1]:+.1f} MB"
                    for i, (prev, one) in enumerate(itertools.pairwise(b), 2))
    v: Data = dict(burst=args.burst, after=args.after, bursts=args.bursts, settle=SETTLE,
        facts=common.facts_line(facts), table=common.markdown_table(head, rows, "lrrr"),
        rss_goal=RSS_GOAL, ratio_goal=RATIO_GOAL, rss1=rss1, rss1_met=met[rss1 <= RSS_GOAL],
        ratio1=rss1 / start, ratio1_met=met[rss1 / start <= RATIO_GOAL], notify=notify,
        backend=backend,
        xml=xml, floor=floor, floor_ratio=floor / start, left=rss1 - floor, later=later,
        items=m["items"], notified=m["notified"], released=m["released"],
        released_text=RELEASED)  # fmt: skip
    return TEMPLATE.format(**v)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the Secret Service, a notification server and the daemon; measure, write."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.daemon_memory",
                                description=NAME + " bench")  # fmt: skip
    p.add_argument("--burst", type=int, default=1000, help="credentials per burst (1000)")
    p.add_argument("--after", type=float, default=60, help="seconds watched after each (60)")
    p.add_argument("--bursts", type=int, default=2, help="bursts, one after the other (2)")
    p.add_argument("--no-write", action="store_true", help="print only; leave the docs alone")
    if (args := p.parse_args(argv)).burst < 1 or args.after <= 0 or args.bursts < 1:
        p.error("--burst and --bursts must be at least 1, --after above 0")
    return run_and_publish(NAME, run_all, args)


if __name__ == "__main__":
    sys.exit(main())
