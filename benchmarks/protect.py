"""Benchmark: ``credguard protect`` with a real Secret Service, against ``shred -u`` and ``rm``.

Per-file latency: ``--latency`` one-file ``credguard protect --json FILE`` processes alternate
with ``shred -u`` (and ``shred -n 1 -u``) on identical files; as many in-process
``Protector.protect(path)`` calls time the transaction alone. Throughput: one command given
``--files`` paths, against ``shred -u`` and ``rm``. cProfile says where the time goes. The
Secret Service comes from :mod:`benchmarks.vault`. Every result is checked; a wrong one exits 1.

Usage: ``python -m benchmarks.protect [--latency N] [--files N] [--no-write]``
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from benchmarks import common
from benchmarks.vault import Session, check, check_list, run_and_publish
from credguard import config
from credguard.protect.transaction import Protector
from credguard.vault.access import open_vault

NAME = "protect"
SHRED, RM = (shutil.which(c) or f"/usr/bin/{c}" for c in ("shred", "rm"))
# the timed commands, each followed by its paths
CMDS = {"protect": [common.credguard_exe(), "protect", "--json"], "shred": [SHRED, "-u"],
        "shred1": [SHRED, "-n", "1", "-u"], "rm": [RM]}  # fmt: skip
PROFILED = 50  # in-process transactions run under cProfile (not the timed ones)
BULK_ROUNDS = 3  # throughput rounds (fresh files each)
Samples = dict[str, list[common.Sample]]
Known = tuple[float, float, int]  # Protector.known(): seconds the 1st and 2nd time; items
# the breakdown: label -> (file suffix ("~": builtin), function, only from caller or "") summed
PARTS: dict[str, list[tuple[str, str, str]]] = {
    "whole transaction: `Protector.protect`": [("credguard/protect/transaction.py", "protect", "")],
    "safe walk, read + detection (`_take`)": [("credguard/protect/transaction.py", "_take", "")],
    "journal: `write_many` (intent, then deleting)": [
        ("credguard/protect/journal.py", "write_many", "")],
    "journal: lock file (`held`: in, out) + `forget`": [
        ("credguard/protect/journal.py", "held", ""),
        ("credguard/protect/journal.py", "forget", "")],
    "vault copy: `Vault.add_many`": [("credguard/vault/store.py", "add_many", "")],
    "… encrypt: `format.pack`": [("credguard/vault/format.py", "pack", "")],
    "… atomic write of the item": [
        ("credguard/fs/atomic.py", "atomic_write_many", "_write_items")],
    "… read back + decrypt + compare: `Vault.get`": [
        ("credguard/vault/store.py", "get", "_write_items")],
    "deletion: `shred_many`": [("credguard/protect/shred.py", "shred_many", "")],
    "… deletion-limit report: `facts.deletion_limits`": [
        ("credguard/fs/facts.py", "deletion_limits", "")],
    "… mount table read and parsed (`facts._linux_mounts`)": [
        ("credguard/fs/facts.py", "_linux_mounts", "")],
    "all `os.fsync` calls (files and directories)": [("~", "<built-in method posix.fsync>", "")],
}  # fmt: skip


def bench_env(s: Session, vault: str) -> dict[str, str]:
    """The session's environment for ``vault``, less PYTHONDONTWRITEBYTECODE (see the notes)."""
    env = s.env(vault)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def write_files(folder: Path, keys: Sequence[str], n: int) -> dict[str, list[Path]]:
    """``n`` fresh publish profiles (random secrets), each written once under every key (the
    same bytes for every key), as ``folder/KEY/KEY-I.PublishSettings``; then ``sync``."""
    payloads = common.tests_module("payloads")
    out: dict[str, list[Path]] = {k: [] for k in keys}
    for i in range(n):
        data = payloads.publish_profile(f"app-{i:04d}").data
        for k in keys:
            (folder / k).mkdir(parents=True, exist_ok=True)
            out[k].append(folder / k / f"{k}-{i:04d}.PublishSettings")
            out[k][-1].write_bytes(data)
    os.sync()  # the files are on disk before anything is timed, as a downloaded file would be
    return out


def check_protected(sample: common.Sample, paths: Sequence[Path]) -> None:
    """A ``protect --json`` run exited 0 and protected (and removed) exactly ``paths``."""
    results = check([sample], "protect", parse=True)[0]["results"]
    done = [r["path"] for r in results if r["protected"] and r["deletion"]["deleted"]]
    if done != [str(p) for p in paths] or any(p.exists() for p in paths):
        raise SystemExit(f"FAIL: protect did not protect all {len(paths)} files")


def check_empty(folder: Path, keys: Sequence[str]) -> None:
    """Nothing is left in ``folder/KEY`` for any of ``keys``."""
    if any(next((folder / k).iterdir(), None) for k in keys):
        raise SystemExit(f"FAIL: files left in {folder}")


def vault_count(s: Session, vault: str) -> int:
    """How many items ``credguard vault list --json`` prints for vault ``vault``."""
    sample = common.run_once([s.exe, "vault", "list", "--json"], bench_env(s, vault))
    return len(check([sample], "vault list", parse=True)[0]["items"])


def transact(protector: Protector, path: Path) -> float:
    """One in-process protect transaction, checked; its wall time (s)."""
    start = time.perf_counter()
    outcome = protector.protect(path)
    took = time.perf_counter() - start
    if not outcome.protected or path.exists():
        raise SystemExit(f"FAIL: in-process protect: {outcome.reason}: {outcome.error}")
    return took


def bench_latency(s: Session, n: int) -> tuple[Samples, list[float]]:
    """``n + 1`` rounds of one-file protect, ``shred -u``, ``shred -n 1 -u`` and an in-process
    transaction (vault "inproc"), alternating (order reversed every other round); round 0 (it
    creates the vault keys) is untimed. Returns the processes' samples and the transactions'."""
    keys = ("protect", "shred", "shred1", "inproc")
    folder, env = Path(s.service.home) / "Downloads" / "latency", bench_env(s, "protect")
    files = write_files(folder, keys, n + 1)
    out: Samples = {k: [] for k in ("protect", "shred", "shred1", "first")}
    inproc: list[float] = []
    with mock.patch.dict(os.environ, bench_env(s, "inproc"), clear=True):  # for credguard here
        cfg = config.load()
        protector = Protector(cfg, open_vault(cfg))
        for i in range(n + 1):
            for key in keys if i % 2 == 0 else reversed(keys):
                if key == "inproc":
                    inproc.append(transact(protector, files[key][i]))
                else:
                    sample = common.run_once([*CMDS[key], str(files[key][i])], env)
                    out["first" if i == 0 and key == "protect" else key].append(sample)
            (first,) = out["first"] if i == 0 else out["protect"][-1:]
            check_protected(first, [files["protect"][i]])
    for key in ("shred", "shred1"):
        check(out[key], key)
        del out[key][0]  # round 0 was a warm-up for them too
    check_empty(folder, keys)
    check_list([common.run_once([s.exe, "vault", "list", "--json"], env)], n + 1)
    return out, inproc[1:]


def bench_profile(s: Session) -> tuple[pstats.Stats, Known]:
    """``PROFILED`` in-process transactions under cProfile (after an untimed one: it fetches the
    key); then ``Protector.known()`` (decrypting every item) on the bench's largest vault, with a
    fresh vault object (it fetches the key too) and again with a second ``Protector``."""
    files = write_files(Path(s.service.home) / "Downloads" / "profile", ["p"], 1 + PROFILED)
    profile = cProfile.Profile()
    with mock.patch.dict(os.environ, bench_env(s, "inproc"), clear=True):
        cfg = config.load()
        protector = Protector(cfg, open_vault(cfg))
        transact(protector, files["p"][0])
        profile.enable()
        for path in files["p"][1:]:
            transact(protector, path)
        profile.disable()
    with mock.patch.dict(os.environ, bench_env(s, "protect"), clear=True):
        cfg = config.load()
        vault, took = open_vault(cfg), []
        for _ in range(2):
            start = time.perf_counter()
            items = len(Protector(cfg, vault).known())
            took.append(time.perf_counter() - start)
    return pstats.Stats(profile), (took[0], took[1], items)


def bench_bulk(s: Session, n: int) -> tuple[Samples, tuple[int, int]]:
    """``BULK_ROUNDS`` alternating rounds of one ``protect --json``, ``shred -u`` and ``rm``, each
    given ``n`` identical fresh files (``sync`` first); checks results, empty directories and the
    vault's growth; returns the samples and the vault's item counts before and after."""
    keys, env, before = (
        ("protect", "shred", "rm"),
        bench_env(s, "protect"),
        vault_count(s, "protect"),
    )
    out: Samples = {k: [] for k in keys}
    for r in range(BULK_ROUNDS):
        folder = Path(s.service.home) / "Downloads" / f"bulk-{r}"
        files = write_files(folder, keys, n)
        for key in keys if r % 2 == 0 else reversed(keys):
            os.sync()
            out[key].append(common.run_once([*CMDS[key], *map(str, files[key])], env))
        check_protected(out["protect"][-1], files["protect"])
        for key in keys[1:]:
            check(out[key][-1:], key)
        check_empty(folder, keys)
    if (after := vault_count(s, "protect")) != before + n * BULK_ROUNDS:
        raise SystemExit(f"FAIL: the vault went from {before} to {after} items")
    return out, (before, after)


def breakdown(stats: pstats.Stats, runs: int) -> list[list[str]]:
    """The PARTS rows from the profile: calls and cumulative ms per transaction."""
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
    raw = stats.stats  # type: ignore[attr-defined]
    rows: list[list[str]] = []
    for label, funcs in PARTS.items():
        calls, cum = 0, 0.0
        for (file, _, func), (_, nc, _, ct, callers) in raw.items():
            for suffix, name, caller in funcs:
                if func != name or not file.endswith(suffix):
                    continue
                if caller:  # only the calls from ``caller``
                    found = [v for (_, _, f), v in callers.items() if f == caller]
                    nc, ct = sum(v[1] for v in found), sum(v[3] for v in found)
                calls, cum = calls + nc, cum + ct
        rows.append([label, f"{calls / runs:g}", ms(cum / runs)])
    return rows


def top_entries(stats: pstats.Stats, runs: int, count: int = 6) -> str:
    """The ``count`` functions with the most own time: own ms (calls) per transaction."""
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
    raw = stats.stats  # type: ignore[attr-defined]
    rows = sorted(raw.items(), key=lambda kv: -kv[1][2])[:count]
    return ", ".join(
        f"`{f'{Path(f).name}:{ln} ' if ln else ''}{fn}` {ms(tt / runs)} ms ({c / runs:g})"
        for (f, ln, fn), (_, c, tt, _, _) in rows
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def stat_row(label: str, walls: Sequence[float], rss: str) -> list[str]:
    spread = f"{ms(min(walls))}-{ms(max(walls))}"
    return [label, str(len(walls)), ms(common.median(walls)), ms(common.p95(walls)), spread, rss]


TEMPLATE = """\
## protect: `credguard protect` with a real Secret Service vs `shred -u`

`python -m benchmarks.protect --latency {n} --files {files}`. {facts}.

### Latency per file

{latency_table}

- Per file, the whole `credguard protect` command takes {cli} ms (median) against {shred} ms
  for `shred -u` (GNU's default 3 passes) and {shred1} ms for `shred -n 1 -u` (one pass, as
  credguard's default `protect.passes = 1`): **{over} ms more than `shred -u`** ({ratio:.1f}x).
- The transaction alone (in-process, same rounds) takes {inproc} ms; the other {startup} ms are
  per-process costs: interpreter start-up, imports, config, resolving the keyring backend, one
  Secret Service round trip for the key, and `Protector.known()`, which decrypts every item
  already in the vault to spot a file that is already there (the vault held 1 to {n} items
  here). On this benchmark's largest vault ({items:,} items) `known()` took {known} ms with a
  fresh vault object (the key fetched from the Secret Service too) and {known2} ms again.

### Throughput: {files:,} small files in one command ({rounds} alternating rounds)

{bulk_table}

- `credguard protect` with {files:,} paths (medians): **{rate:.0f} files/s**, {per_file} ms a
  file, vs {shred_per} ms for `shred -u` and {rm_per} ms for `rm` (the floor: unlink only). With
  start-up spread over them and the files protected in batches of up to 64 (one group commit
  each), a file takes **{bulk_ratio:.2f}x** the time `shred -u` takes ({bulk_over} ms a file).
  Checked: every result says protected and deleted, all directories are
  empty afterwards, and `credguard vault list --json` went from {before:,} to {after:,} items.

### Where the transaction's time goes

cProfile over {profiled} more in-process transactions (per transaction; cProfile slows the
Python parts, so the profiled total, {prof_total} ms, exceeds the unprofiled median, {inproc} ms;
time inside `os.fsync` is barely affected):

{parts_table}

- {fsyncs:g} `fsync` calls per file take {fsync_ms} ms: {fsync_share:.0%} of the profiled
  transaction, about {fsync_real:.0%} of the unprofiled median. A transaction of one file: 2
  per atomic write (file, then directory) for the 2 journal states and the vault item, 1 for
  the journal removal, 4 in the deletion (after the overwrite, the rename, the truncation and
  the unlink). A batch syncs each directory once per stage instead: 5 per file (2 journal
  states, the vault item, the overwrite, the truncation) and about 8 per batch
  (`tests/protect/test_group_commit.py` counts them with strace), which is what the daemon's
  bursts and a many-file `protect` get.
- Most own time, per transaction (calls): {top}.
- By part: journal {journal} ms (2 atomic writes, lock file, removal: 5 of the fsyncs), vault
  copy {vault} ms, deletion {deletion} ms, read + detection {read} ms. Encryption (`format.pack`,
  {pack} ms) and the read-back decrypt (`Vault.get`, {get} ms) are a small share.
- The deletion reads and parses `/proc/self/mountinfo` {mount_calls:g} times per file ({mounts}
  ms: `is_mount_point`, `fs_type` and `deletion_limits` each do); once per directory would do.

Notes: a real gnome-keyring {gk} (`--unlock --components=secrets`) on a private `dbus-daemon`
(the session of `benchmarks/vault.py`); temporary HOME and XDG dirs; files, journal and vault on
{fs}. Files are fresh {size}-byte publish profiles (random secrets, so none is already in the
vault), written and `sync`ed before timing; each `shred`/`rm` file is a byte-identical copy in a
sibling directory. A per-file round runs the three commands and one in-process transaction
(order reversed every other round; one untimed round first: it creates the vault keys); each
throughput command runs on fresh files, after a `sync`. Wall time runs from spawn to reap, with
about 1 ms for the `/bin/sh` that launches each command so that peak RSS is its own. The shell
this ran from sets `PYTHONDONTWRITEBYTECODE=1`, under which a credguard with no compiled modules
recompiles them in every process; the timed commands run without it, after `python -m compileall
-q credguard`, loading bytecode as an installed credguard does. fsync latency on this virtual
disk drifts by tens of percent over minutes: rows measured in the same rounds compare best.
"""


LAT_ROWS = {
    "protect": "`credguard protect --json FILE`", "shred": "`shred -u FILE` (3 passes)",
    "shred1": "`shred -n 1 -u FILE` (1 pass)",
    "inproc": "in-process `Protector.protect(path)` (transaction only)",
    "first": "… the first `credguard protect` (creates the key)",
}  # fmt: skip
BULK_ROWS = {"protect": "`credguard protect --json PATH…`", "shred": "`shred -u PATH…` (3 passes)",
             "rm": "`rm PATH…`"}  # fmt: skip


def render(lat: Samples, inproc: list[float], prof: tuple[pstats.Stats, Known],
           bulk: Samples, counts: tuple[int, int], args: Any,
           facts: Mapping[str, str], size: int) -> str:  # fmt: skip
    """The section for ``docs/benchmarks.md``."""
    stats, (known, known2, items) = prof
    walls = {k: [x.wall for x in v] for k, v in lat.items()} | {"inproc": inproc}
    med = {k: common.median(w) for k, w in walls.items()}
    peak = {k: f"{max(x.maxrss_mb for x in v):.1f}" for k, v in lat.items()} | {"inproc": "n/a"}
    rows = [stat_row(label, walls[k], peak[k]) for k, label in LAT_ROWS.items()]
    headers = ["", "count", "median (ms)", "p95 (ms)", "min-max (ms)", "peak RSS (MB)"]
    bw = {k: [x.wall for x in v] for k, v in bulk.items()}
    n, per = args.files, {k: common.median(w) / args.files for k, w in bw.items()}
    bulk_rows = [
        [label, f"{n:,}", f"{per[k] * n:.3f}", f"{min(bw[k]):.3f}-{max(bw[k]):.3f}",
         f"{1 / per[k]:,.0f}", ms(per[k]), f"{max(x.maxrss_mb for x in bulk[k]):.1f}"]
        for k, label in BULK_ROWS.items()
    ]  # fmt: skip
    bulk_head = ["one command", "files", "median wall (s)", "min-max (s)", "files/s",
                 "ms per file", "peak RSS (MB)"]  # fmt: skip
    parts = breakdown(stats, PROFILED)
    total, fsync_ms = float(parts[0][2]), float(parts[-1][2])
    v: dict[str, object] = {
        "latency_table": common.markdown_table(headers, rows),
        "bulk_table": common.markdown_table(bulk_head, bulk_rows),
        "parts_table": common.markdown_table(["part", "calls", "cumulative ms"], parts),
        "top": top_entries(stats, PROFILED),
    }
    cli, sh, tx, bp, bs = med["protect"], med["shred"], med["inproc"], per["protect"], per["shred"]
    v |= dict(n=args.latency, files=n, facts=common.facts_line(facts), gk=facts["gnome-keyring"],
              cli=ms(cli), shred=ms(sh), shred1=ms(med["shred1"]), over=ms(cli - sh),
              ratio=cli / sh, inproc=ms(tx), startup=ms(cli - tx), known=ms(known),
              known2=ms(known2), items=items, rate=1 / bp, per_file=ms(bp), shred_per=ms(bs),
              rm_per=ms(per["rm"]), bulk_over=f"{(bp - bs) * 1000:+.1f}", bulk_ratio=bp / bs,
              before=counts[0],
              after=counts[1], profiled=PROFILED, prof_total=f"{total:.1f}",
              fsyncs=float(parts[-1][1]), fsync_ms=f"{fsync_ms:.1f}",
              fsync_share=fsync_ms / total, fs=facts["file system"], size=size, rounds=BULK_ROUNDS,
              fsync_real=fsync_ms / 1000 / tx, read=parts[1][2], vault=parts[4][2],
              journal=f"{float(parts[2][2]) + float(parts[3][2]):.1f}", pack=parts[5][2],
              get=parts[7][2], deletion=parts[8][2], mounts=parts[10][2],
              mount_calls=float(parts[10][1]))  # fmt: skip
    return TEMPLATE.format(**v)


def run_all(s: Session, args: Any) -> str:
    """Every measurement and its checks, then the rendered section."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    compileall = [sys.executable, "-m", "compileall", "-q", "credguard"]  # load bytecode, as
    subprocess.run(compileall, cwd=common.REPO, env=env, check=True)  # installed ones do
    print(f"protect: {args.latency} rounds of per-file latency (and in-process)", file=sys.stderr)
    lat, inproc = bench_latency(s, args.latency)
    print(f"protect: throughput with {args.files} files", file=sys.stderr)
    bulk, counts = bench_bulk(s, args.files)
    print(f"protect: {PROFILED} in-process transactions under cProfile", file=sys.stderr)
    prof = bench_profile(s)
    facts = common.machine_facts(s.root)
    gk = subprocess.run(["gnome-keyring-daemon", "--version"], capture_output=True, text=True)
    shred = subprocess.run([SHRED, "--version"], capture_output=True, text=True)
    facts |= {"gnome-keyring": gk.stdout.split()[1], "shred": shred.stdout.split()[3]}
    git = ["git", "-C", str(common.REPO), "describe", "--always", "--dirty"]
    facts["commit"] = subprocess.run(git, capture_output=True, text=True).stdout.strip() or "?"
    size = len(common.tests_module("payloads").publish_profile("app-0000").data)
    return render(lat, inproc, prof, bulk, counts, args, facts, size)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (``sys.argv[1:]`` if ``argv`` is None)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.protect", description=NAME + " bench")
    p.add_argument("--latency", type=int, default=100, help="files timed one by one (100)")
    p.add_argument("--files", type=int, default=1000, help="files in the throughput run (1000)")
    p.add_argument("--no-write", action="store_true", help="print only; leave the docs alone")
    args = p.parse_args(argv)
    if min(args.latency, args.files) < 1:
        p.error("--latency and --files must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Start the Secret Service, run and check everything, print and write the section."""
    args = parse_args(argv)
    return run_and_publish(NAME, run_all, args)


if __name__ == "__main__":
    sys.exit(main())
