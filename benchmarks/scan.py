"""Benchmark: ``credguard scan --json ROOT`` against a name-only ``find`` over the same tree.

Builds (once, deterministically; see :mod:`benchmarks.synthhome`) a synthetic home directory of
``--files`` files in ``--dirs`` directories holding a handful of planted credentials, warms the
page cache, then runs the two commands alternately ``--runs`` times each. Reports median wall
time, their ratio, peak RSS, and how much of credguard's wall time its scan itself takes
(``stats.seconds``). Fails (exit 1) if credguard does not report exactly the planted findings,
or ``find`` not exactly its expected hits. Writes its section of ``docs/benchmarks.md`` unless
``--no-write``.

Usage: ``python -m benchmarks.scan [--files N] [--dirs N] [--runs N] [--work DIR] [--no-write]``
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from benchmarks import common, synthhome
from benchmarks.synthhome import Plan
from credguard.detect.registry import by_name, sniff_eligible
from credguard.scan import PRUNE

NAME = "scan"
DEFAULT_WORK = common.REPO / "benchmarks" / ".work" / "scan-home"
RATIO_GOAL = 2.0
RSS_GOAL_MB = 80.0


# -- what each tool should see -------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """What credguard should walk: files/dirs outside pruned subtrees (root dir included),
    and among those files how many it picks by name and how many it sniffs by content."""

    files: int
    dirs: int
    by_name: int
    sniffed: int


def _pruned_dirs(plan: Plan) -> set[str]:
    """The planned directories credguard does not enter: the ``PRUNE`` names, ``*.download``
    dirs, the subdirectories of a virtualenv (a dir holding ``pyvenv.cfg``) and all below."""
    venvs = {f.path.rpartition("/")[0] for f in plan.files if f.path.endswith("/pyvenv.cfg")}
    pruned = set()
    for d in plan.dirs:  # parents come before children
        parent, _, name = d.rpartition("/")
        if (
            parent in pruned
            or parent in venvs
            or name in PRUNE
            or name.lower().endswith(".download")
        ):
            pruned.add(d)
    return pruned


def coverage(plan: Plan) -> Coverage:
    """Apply credguard's own pruning and candidate rules to the plan."""
    pruned = _pruned_dirs(plan)
    files = named = sniffed = 0
    for f in plan.files:
        parent, _, name = f.path.rpartition("/")
        if parent in pruned:
            continue
        files += 1
        if by_name(PurePath(plan.root, parent), name):
            named += 1
        elif sniff_eligible(name):
            sniffed += 1
    return Coverage(files, 1 + len(plan.dirs) - len(pruned), named, sniffed)


# find's arguments for the names credguard matches without reading (no argument has a space).
NAME_TESTS = tuple(
    shlex.split("""
    -iname *.publishsettings -o -iname *.pubxml -o -iname *.pubxml.user
    -o -iname msal_token_cache.json -o -iname accessTokens.json
    -o -iname service_principal_entries.json -o -iname aksServicePrincipal.json
    -o -iname acsServicePrincipal.json -o -iname azureProfile.json
    -o -iname AzureRmContext.json -o -ipath */.azure/TokenCache.dat
    -o -ipath */.azure/keystore.cache -o -ipath */.IdentityService/msal.cache*
    -o ( -ipath *azd/*auth/* ( -iname cache*.json -o -iname cred*.json ) )
    """)
)

N_TESTS = sum(arg in ("-iname", "-ipath") for arg in NAME_TESTS)


def find_cmd(root: Path) -> list[str]:
    """``find ROOT -type f ( NAME TESTS )``: the names credguard matches without reading."""
    return ["find", str(root), "-type", "f", "(", *NAME_TESTS, ")"]


def session_locale() -> str:
    """The locale the commands run in (inherited), as ``LC_ALL``/``LC_CTYPE``/``LANG`` say."""
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        if os.environ.get(var):
            return os.environ[var]
    return "POSIX"


CREDGUARD, FIND, FIND_C, WALK = "credguard", "find", "find-c", "walk"


def commands(root: Path) -> dict[str, list[str]]:
    """The timed commands: credguard, the goal's find baseline (in the inherited locale), and
    two references: the same find in the C locale, and a bare walk that tests no names."""
    return {
        CREDGUARD: credguard_cmd(root),
        FIND: find_cmd(root),
        FIND_C: ["env", "LC_ALL=C", *find_cmd(root)],
        WALK: ["find", str(root), "-type", "f", "-false"],
    }


def labels() -> dict[str, str]:
    """Table labels for the keys of :func:`commands`, in table order."""
    return {
        CREDGUARD: "`credguard scan --json ROOT`",
        FIND: f"`find ROOT -type f ( name tests )` ({session_locale()}, the goal's baseline)",
        FIND_C: "the same `find` with `LC_ALL=C`",
        WALK: "`find ROOT -type f -false` (walk only: no name tests, no output)",
    }


def credguard_cmd(root: Path) -> list[str]:
    """``credguard scan --json ROOT``, with the console script beside this Python (the venv's)."""
    exe = Path(sys.executable).parent / "credguard"
    found = str(exe) if exe.exists() else shutil.which("credguard")
    if found is None:
        raise SystemExit("no credguard executable next to this Python or on PATH")
    return [found, "scan", "--json", str(root)]


def bench_env(work: Path) -> dict[str, str]:
    """The environment less anything that configures credguard, with no config or policy."""
    scrub = ("CREDGUARD_", "AZURE_", "AZD_", "XDG_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(scrub)}
    env["CREDGUARD_CONFIG"] = str(work / "absent" / "config.toml")
    env["XDG_CONFIG_HOME"] = str(work / "absent")
    env["XDG_CONFIG_DIRS"] = str(work / "absent")
    return env


def check_credguard(sample: common.Sample, plan: Plan) -> tuple[list[str], dict[str, Any]]:
    """Problems with one credguard run (wrong exit code, findings other than the planted
    ones, anything ignored or skipped) and its parsed JSON."""
    try:
        doc: dict[str, Any] = json.loads(sample.stdout)
    except ValueError:
        return [f"exit {sample.returncode}, output is not JSON: {sample.stdout[:200]!r}"], {}
    got = {(os.path.relpath(f["path"], plan.root), f["kind"]) for f in doc.get("findings", [])}
    want = set(plan.credentials.items())
    problems = [f"missed {path} ({kind})" for path, kind in sorted(want - got)]
    problems += [f"unexpected finding {path} ({kind})" for path, kind in sorted(got - want)]
    problems += [
        f"skipped {s['path']}: {s['reason']} {s.get('detail', '')}" for s in doc.get("skipped", [])
    ]
    problems += [f"ignored {i['path']}" for i in doc.get("ignored", [])]
    if sample.returncode != 1:
        problems.append(f"exit code {sample.returncode}, expected 1 (findings)")
    return problems, doc


def check_find(sample: common.Sample, plan: Plan) -> list[str]:
    """Problems with one find run: it must list exactly the plants visible by name."""
    got = {os.path.relpath(line, plan.root) for line in sample.stdout.decode().splitlines()}
    want = plan.find_hits
    problems = [f"find missed {p}" for p in sorted(want - got)]
    problems += [f"find listed unexpected {p}" for p in sorted(got - want)]
    if sample.returncode != 0:
        problems.append(f"find exit code {sample.returncode}")
    return problems


# -- running and reporting -----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """Everything the report needs from one benchmark run."""

    samples: dict[str, list[common.Sample]]  # by command key (CREDGUARD, FIND, ...)
    scan_seconds: list[float]  # credguard's own stats.seconds, per timed run
    stats: dict[str, int]  # credguard's stats.files / stats.dirs (last run)

    def median(self, key: str) -> float:
        """Median wall time (s) of command ``key``."""
        return common.median([s.wall for s in self.samples[key]])

    def peak_mb(self, key: str) -> float:
        """Highest peak RSS (MB) over the runs of command ``key``."""
        return max(s.maxrss_mb for s in self.samples[key])


def check_all(
    samples: dict[str, list[common.Sample]], plan: Plan
) -> tuple[list[str], list[float], dict[str, Any]]:
    """Problems over every run; credguard's ``stats.seconds`` per run and its last JSON."""
    problems: list[str] = []
    seconds: list[float] = []
    doc: dict[str, Any] = {}
    for sample in samples[CREDGUARD]:
        found, doc = check_credguard(sample, plan)
        problems += found
        seconds.append(float(doc.get("stats", {}).get("seconds", "nan")))
    for sample in samples[FIND] + samples[FIND_C]:
        problems += check_find(sample, plan)
    for sample in samples[WALK]:
        if sample.returncode != 0 or sample.stdout:
            problems.append(
                f"walk-only find: exit {sample.returncode}, output {sample.stdout[:80]!r}"
            )
    return problems, seconds, doc


def run_benchmark(plan: Plan, work: Path, runs: int) -> Outcome:
    """Warm up each command once (untimed), then alternate them ``runs`` times each.
    Exits 1 with the problems listed if any run's output is wrong."""
    samples = common.interleave(commands(plan.root), runs, env=bench_env(work), warmup=1)
    problems, seconds, doc = check_all(samples, plan)
    if problems:
        print("FAIL: wrong results:\n  " + "\n  ".join(dict.fromkeys(problems)), file=sys.stderr)
        raise SystemExit(1)
    stats = {k: int(v) for k, v in doc["stats"].items() if k in ("files", "dirs")}
    return Outcome(samples, seconds, stats)


def results_table(out: Outcome) -> str:
    """The headline table: median/min/max wall, ratio to the find baseline, peak RSS."""
    base = out.median(FIND)
    rows = []
    for key, label in labels().items():
        walls = [s.wall for s in out.samples[key]]
        rows.append(
            [
                label,
                f"{out.median(key):.3f}",
                f"{min(walls):.3f}-{max(walls):.3f}",
                f"{out.median(key) / base:.2f}x",
                f"{out.peak_mb(key):.1f}",
            ]
        )
    headers = ["command", "median wall (s)", "min-max (s)", "vs find", "peak RSS (MB)"]
    return common.markdown_table(headers, rows)


def tree_table(plan: Plan, cov: Coverage, stats: dict[str, int]) -> str:
    """How big the tree is, how much of it credguard prunes, visits, reads and sniffs."""
    pruned = (len(plan.files) - cov.files, len(plan.dirs) + 1 - cov.dirs)
    rows = [
        [
            "tree (find walks all of it; directories include the root)",
            f"{len(plan.files):,}",
            f"{len(plan.dirs) + 1:,}",
        ],
        [
            "in subtrees credguard prunes (.git, node_modules, virtualenv)",
            f"{pruned[0]:,}",
            f"{pruned[1]:,}",
        ],
        [
            "visited by credguard (its JSON `stats`)",
            f"{stats.get('files', 0):,}",
            f"{stats.get('dirs', 0):,}",
        ],
        ["… of which chosen by name (read whole)", f"{cov.by_name:,}", ""],
        ["… of which sniffed by content (opened, ≤ 4 KiB read)", f"{cov.sniffed:,}", ""],
    ]
    return common.markdown_table(["", "files", "directories"], rows)


def verdicts(out: Outcome) -> list[str]:
    """The two goals, met or not, plus the reference ratios and credguard's start-up share."""
    wall, scan = out.median(CREDGUARD), common.median(out.scan_seconds)
    ratio, rss = wall / out.median(FIND), out.peak_mb(CREDGUARD)
    return [
        f"- Goal credguard ≤ {RATIO_GOAL:.1f}x find (medians, find in {session_locale()}): "
        f"**{ratio:.2f}x, {'met' if ratio <= RATIO_GOAL else 'NOT met'}**. For reference: "
        f"{wall / out.median(FIND_C):.2f}x the C-locale find, {wall / out.median(WALK):.2f}x "
        f"the bare walk (find spends {out.median(WALK) / out.median(FIND):.0%} of its time "
        f"walking, the rest on up to {N_TESTS} case-insensitive name tests per file).",
        f"- Goal peak RSS ≤ {RSS_GOAL_MB:.0f} MB: **{rss:.1f} MB, "
        f"{'met' if rss <= RSS_GOAL_MB else 'NOT met'}** (MB = 10⁶ bytes; `ru_maxrss`).",
        f"- credguard's own `stats.seconds` (median {scan:.3f} s) vs its wall time "
        f"({wall:.3f} s): interpreter start-up, imports, config and JSON output take "
        f"{wall - scan:.3f} s ({(wall - scan) / wall:.0%}).",
    ]


NOTES = """\
Notes:
- Both commands see the same tree, but not the same work: `find` matches names only and walks
  everything, including `.git`, `node_modules` and the virtualenv, which credguard prunes;
  credguard also opens and sniffs small text-like files (above) and parses its candidates.
- `find` lists the {decoys} benign name-matched files (an `azureProfile.json` without secrets,
  a `FolderProfile.pubxml`) as hits; credguard reads them and correctly reports nothing.
- `find` cannot find `Downloads/settings.txt` (publish settings saved under another name);
  credguard finds it by content. Every run's output is checked: credguard must report exactly
  the {plants} planted credentials, `find` exactly its {find_hits} expected names.
- Files are 0-4 KiB; the page cache is warm (one untimed run of each first); runs alternate.
  Wall time runs from spawn to reap and includes about 1 ms for the `/bin/sh` that launches
  each command (so that the peak RSS measured is the command's own, not this script's)."""


def render(
    plan: Plan, cov: Coverage, out: Outcome, facts: dict[str, str], runs: int, seed: int
) -> str:
    """The section for ``docs/benchmarks.md``."""
    return "\n\n".join(
        [
            "## scan: `credguard scan --json` vs `find`",
            f"`python -m benchmarks.scan --files {len(plan.files)} --dirs {len(plan.dirs)} "
            f"--runs {runs}` (seed {seed}). {common.facts_line(facts)}.",
            f"Wall time over {runs} alternating runs each, warm cache:",
            results_table(out),
            "\n".join(verdicts(out)),
            "The synthetic home:",
            tree_table(plan, cov, out.stats),
            NOTES.format(
                decoys=len(plan.decoys), plants=len(plan.credentials), find_hits=len(plan.find_hits)
            ),
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (``sys.argv[1:]`` if ``argv`` is None)."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.scan", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    p.add_argument("--files", type=int, default=100_000, help="files in the tree (100000)")
    p.add_argument("--dirs", type=int, default=10_000, help="directories below the root (10000)")
    p.add_argument("--runs", type=int, default=5, help="timed runs of each command (5)")
    p.add_argument("--seed", type=int, default=2026, help="random seed of the tree (2026)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"work dir ({DEFAULT_WORK})")
    p.add_argument("--no-write", action="store_true", help="print only; leave the docs alone")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Build or reuse the tree, run and check the benchmark, print and write its section."""
    args = parse_args(argv)
    work = args.work.resolve()
    started = time.perf_counter()
    plan = synthhome.build(work, args.files, args.dirs, args.seed)
    print(
        f"tree {plan.root}: {'built' if plan.built else 'reused'} "
        f"({time.perf_counter() - started:.1f} s)",
        file=sys.stderr,
    )
    cov = coverage(plan)
    out = run_benchmark(plan, work, args.runs)
    if (out.stats.get("files"), out.stats.get("dirs")) != (cov.files, cov.dirs):
        print(
            f"warning: credguard visited {out.stats}, expected files={cov.files} dirs={cov.dirs}",
            file=sys.stderr,
        )
    section = render(plan, cov, out, common.machine_facts(plan.root), args.runs, args.seed)
    common.publish(NAME, section, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
