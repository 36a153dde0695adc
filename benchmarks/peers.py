"""Benchmark: ``credguard scan`` against two general secret scanners on the synthetic home.

The peers are detect-secrets 1.5.0 (``detect-secrets scan --all-files ROOT``) and the latest
trufflehog3 from PyPI (``trufflehog3 --no-history -f JSON ROOT``), installed into their own
venv under ``benchmarks/.work/peers-venv`` (reused while it holds detect-secrets 1.5.0 and a
trufflehog3; never the project's venv or dependencies). The tree is the scan benchmark's
synthetic home (:mod:`benchmarks.synthhome`; by default 20,000 files in 2,000 directories, a
fifth of the scan benchmark's, so that detect-secrets, the slowest, takes a minute or two).
Reports wall time, CPU time and peak RSS of each command, then what each tool flagged among
the planted files (credentials and benign look-alikes), with its label, and how many other hits
it produced.

The peers print secret values (trufflehog3) or their hashes (detect-secrets): their JSON is parsed
here and only file path, line number and rule or type are kept; nothing else of it is printed.

Usage: ``python -m benchmarks.peers [--files N] [--dirs N] [--runs N] [--work DIR] [--no-write]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import common, scan, synthhome
from benchmarks.synthhome import Plan

NAME = "peers"
DEFAULT_WORK = common.REPO / "benchmarks" / ".work" / "peers-home"
FILES, DIRS = 20_000, 2_000  # a fifth of the scan benchmark's tree: detect-secrets needs minutes
VENV = common.REPO / "benchmarks" / ".work" / "peers-venv"
DETECT_SECRETS, TRUFFLEHOG3 = "detect-secrets", "trufflehog3"
DS_VERSION = "1.5.0"
REQUIREMENTS = (f"{DETECT_SECRETS}=={DS_VERSION}", TRUFFLEHOG3)  # trufflehog3: the latest
STAMP = ".credguard-peers.json"  # written once the install is complete
SLOW = 30.0  # seconds: a command whose first run takes longer is run once only
CREDGUARD = "credguard"


# -- the peers' own venv ---------------------------------------------------------------------


@dataclass(frozen=True)
class Peers:
    """The peers' venv and the versions installed in it."""

    venv: Path
    versions: dict[str, str]  # distribution name → version

    def exe(self, name: str) -> str:
        """The console script ``name`` of the venv."""
        return str(self.venv / "bin" / name)

    def label(self, name: str) -> str:
        """``name VERSION``."""
        return f"{name} {self.versions.get(name, '?')}"


def _installed(venv: Path) -> dict[str, str]:
    """The versions of the two peers in ``venv`` (those found)."""
    code = (
        "import json, importlib.metadata as m\n"
        "out = {}\n"
        f"for name in {[DETECT_SECRETS, TRUFFLEHOG3]!r}:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {}
    found: dict[str, str] = json.loads(done.stdout)
    return found


def _usable(venv: Path) -> dict[str, str] | None:
    """The installed versions if ``venv`` is a complete install of the right peers."""
    if not (venv / STAMP).is_file() or not (venv / "bin" / "python").exists():
        return None
    versions = _installed(venv)
    if versions.get(DETECT_SECRETS) != DS_VERSION or TRUFFLEHOG3 not in versions:
        return None
    return versions


def ensure_peers(venv: Path = VENV, upgrade: bool = False) -> Peers:
    """The peers' venv at ``venv``: reused if complete with the right versions (unless
    ``upgrade``), else (re)created and installed from PyPI with pip. Its stamp file is written
    last, so an interrupted install is redone."""
    versions = None if upgrade else _usable(venv)
    if versions is not None:
        return Peers(venv, versions)
    print(f"installing {', '.join(REQUIREMENTS)} into {venv}", file=sys.stderr)
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--disable-pip-version-check", *REQUIREMENTS], check=True)
    versions = _installed(venv)
    if versions.get(DETECT_SECRETS) != DS_VERSION or TRUFFLEHOG3 not in versions:
        raise SystemExit(f"peers' install in {venv} incomplete: {versions}")
    (venv / STAMP).write_text(json.dumps(versions) + "\n")
    return Peers(venv, versions)


# -- commands and their hits -----------------------------------------------------------------


def credguard_cmd(root: Path) -> list[str]:
    """``credguard scan --json ROOT`` with the project's Python (``python -m credguard``)."""
    return [sys.executable, "-m", "credguard", "scan", "--json", str(root)]


def detect_secrets_cmd(peers: Peers, root: Path) -> list[str]:
    """``detect-secrets scan --all-files ROOT``: JSON (its baseline format) on stdout. Run it
    with ``cwd=ROOT``: it names files relative to the working directory and silently drops the
    files outside it."""
    return [peers.exe(DETECT_SECRETS), "scan", "--all-files", str(root)]


def trufflehog3_cmd(peers: Peers, root: Path) -> list[str]:
    """``trufflehog3 --no-history -f JSON ROOT``: a JSON list on stdout; paths relative to
    ROOT; exit 2 when it found something."""
    return [peers.exe(TRUFFLEHOG3), "--no-history", "-f", "JSON", str(root)]


@dataclass(frozen=True, order=True)
class Hit:
    """One thing a tool flagged: where, and under which rule or type. Never the value."""

    path: str  # relative to the scanned root, "/"-separated
    line: int  # 1-based; 0 when the tool gave none
    label: str  # credguard's kind, detect-secrets' type, trufflehog3's rule id


class PeerOutputError(Exception):
    """A tool's output could not be read (the message never quotes the output)."""


def _line(value: object) -> int:
    """A line number from ``12``, ``"12"`` or ``"12-14"`` (the first), else 0."""
    text = str(value).split("-", 1)[0].strip()
    return int(text) if text.isdigit() else 0


def _load(tool: str, out: bytes, code: int, ok: Iterable[int]) -> Any:
    if code not in set(ok):
        raise PeerOutputError(f"{tool} exited {code} ({len(out)} bytes of output)")
    try:
        return json.loads(out)
    except ValueError:
        raise PeerOutputError(
            f"{tool} exited {code}; its {len(out)} bytes of output are not JSON"
        ) from None


def _rel(path: str, root: Path, cwd: Path) -> str:
    full = Path(path) if os.path.isabs(path) else cwd / path
    return Path(os.path.relpath(full, root)).as_posix()


def parse_credguard(out: bytes, code: int, root: Path) -> tuple[list[Hit], dict[str, Any]]:
    """The findings of ``credguard scan/check --json`` (exit 0, 1 or 4) and the whole JSON
    document (paths, kinds, fingerprints, non-secret details, skipped files, stats)."""
    doc: dict[str, Any] = _load(CREDGUARD, out, code, (0, 1, 4))
    hits = [Hit(_rel(f["path"], root, root), 0, f["kind"]) for f in doc.get("findings", [])]
    return sorted(hits), doc


def parse_detect_secrets(out: bytes, code: int, root: Path, cwd: Path) -> list[Hit]:
    """detect-secrets' results, keeping file, line and type (not the secret's hash)."""
    doc = _load(DETECT_SECRETS, out, code, (0,))
    results: dict[str, list[dict[str, Any]]] = doc.get("results", {})
    hits = [
        Hit(_rel(name, root, cwd), _line(r.get("line_number")), str(r.get("type")))
        for name, found in results.items()
        for r in found
    ]
    return sorted(hits)


def parse_trufflehog3(out: bytes, code: int, root: Path) -> list[Hit]:
    """trufflehog3's issues, keeping path, line and rule id (not the secret or its context)."""
    doc = _load(TRUFFLEHOG3, out, code, (0, 2))
    issues: list[dict[str, Any]] = doc or []
    hits = [
        Hit(_rel(str(i.get("path")), root, root), _line(i.get("line")), str(i["rule"]["id"]))
        for i in issues
    ]
    return sorted(hits)


def run_peer(peers: Peers, tool: str, root: Path, env: Mapping[str, str]) -> list[Hit]:
    """Run one peer on ``root`` once (untimed) and return its hits."""
    ds = tool == DETECT_SECRETS
    cmd = detect_secrets_cmd(peers, root) if ds else trufflehog3_cmd(peers, root)
    done = subprocess.run(
        cmd, cwd=root, env=dict(env), capture_output=True, stdin=subprocess.DEVNULL, check=False
    )
    if tool == DETECT_SECRETS:
        return parse_detect_secrets(done.stdout, done.returncode, root, root)
    return parse_trufflehog3(done.stdout, done.returncode, root)


def summarize(hits: Iterable[Hit]) -> str:
    """``label (N hits: l. 1, 5)``, one per label, or an em dash for none."""
    by_label: dict[str, list[int]] = {}
    for h in hits:
        by_label.setdefault(h.label, []).append(h.line)
    if not by_label:
        return "—"
    parts = []
    for label, lines in sorted(by_label.items()):
        where = ", ".join(str(n) for n in sorted(set(lines)) if n)
        inside = [f"{len(lines)} hits"] if len(lines) > 1 else []
        inside += [f"l. {where}"] if where else []
        parts.append(f"{label} ({': '.join(inside)})" if inside else label)
    return "; ".join(parts)


# -- running and reporting -------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """Timed samples and the hits of each tool (from its last run)."""

    samples: dict[str, list[common.Sample]]
    hits: dict[str, list[Hit]]
    doc: dict[str, Any]  # credguard's JSON (stats)

    def median(self, key: str) -> float:
        """Median wall time (s) of ``key``."""
        return common.median([s.wall for s in self.samples[key]])

    def peak_mb(self, key: str) -> float:
        """Highest peak RSS (MB) over the runs of ``key``."""
        return max(s.maxrss_mb for s in self.samples[key])


def warm_tree(root: Path) -> tuple[int, int]:
    """Read every file below ``root`` once (the page cache then holds the tree); returns
    (files, bytes)."""
    files = size = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            with open(path, "rb") as fh:
                size += len(fh.read())
            files += 1
    return files, size


def parse_sample(
    key: str, sample: common.Sample, root: Path
) -> tuple[list[Hit], dict[str, Any]]:
    """The hits in one run's output (and credguard's JSON document)."""
    if key == CREDGUARD:
        return parse_credguard(sample.stdout, sample.returncode, root)
    if key == DETECT_SECRETS:
        return parse_detect_secrets(sample.stdout, sample.returncode, root, root), {}
    return parse_trufflehog3(sample.stdout, sample.returncode, root), {}


def run_benchmark(
    cmds: Mapping[str, Sequence[str]], root: Path, env: Mapping[str, str], runs: int
) -> Outcome:
    """Warm up (each command once on an empty directory, every file of the tree read once),
    then ``runs`` alternating rounds; a command whose first timed run took over :data:`SLOW`
    seconds is not run again. Each run's hits must equal the first run's."""
    with tempfile.TemporaryDirectory(prefix="peers-empty-") as empty:
        for key, cmd in cmds.items():
            common.run_once([*cmd[:-1], empty], env, cwd=Path(empty))
            print(f"warm-up: {key} on an empty directory", file=sys.stderr)
    files, size = warm_tree(root)
    print(f"warm-up: read {files:,} files ({size / 1e6:.1f} MB)", file=sys.stderr)
    names = list(cmds)
    samples: dict[str, list[common.Sample]] = {k: [] for k in names}
    hits: dict[str, list[Hit]] = {}
    doc: dict[str, Any] = {}
    for i in range(runs):
        for key in names if i % 2 == 0 else reversed(names):
            if samples[key] and samples[key][0].wall > SLOW:
                continue
            sample = common.run_once(cmds[key], env, cwd=root)
            try:
                found, got_doc = parse_sample(key, sample, root)
            except PeerOutputError as e:
                raise SystemExit(f"FAIL: {e}") from None
            if key in hits and found != hits[key]:
                raise SystemExit(f"FAIL: {key} found different things in run {i + 1}")
            hits[key], doc = found, got_doc or doc
            # keep no output: the peers' holds secret values and hashes
            samples[key].append(dataclasses.replace(sample, stdout=b""))
            print(f"round {i + 1}: {key} {sample.wall:.2f} s", file=sys.stderr)
    return Outcome(samples, hits, doc)


def timing_table(out: Outcome, labels: Mapping[str, str]) -> str:
    """Wall time, peak RSS and hit counts per command."""
    base = out.median(CREDGUARD)
    rows = []
    for key, label in labels.items():
        walls = [s.wall for s in out.samples[key]]
        n = len(walls)
        spread = f"{min(walls):.2f}-{max(walls):.2f}" if n > 1 else "(one run)"
        hits = out.hits[key]
        rows.append(
            [
                label,
                str(n),
                f"{out.median(key):.2f}",
                spread,
                f"{out.median(key) / base:.1f}x",
                f"{common.median([s.cpu for s in out.samples[key]]):.2f}",
                f"{out.peak_mb(key):.1f}",
                f"{len({h.path for h in hits}):,}",
                f"{len(hits):,}",
            ]
        )
    headers = [
        "command",
        "runs",
        "median wall (s)",
        "min-max (s)",
        "vs credguard",
        "CPU (s)",
        "peak RSS (MB)",
        "files flagged",
        "hits",
    ]
    return common.markdown_table(headers, rows)


def planted_table(plan: Plan, out: Outcome, names: Mapping[str, str]) -> str:
    """Per planted file: what it is, and what each tool (``names``: key → column header)
    reported there (label and lines)."""
    rows = []
    for plant in plan.plants:
        expected = f"`{plant.kind}`" if plant.kind else "none (benign look-alike)"
        cells = [summarize(h for h in out.hits[t] if h.path == plant.path) for t in names]
        if CREDGUARD in names and cells[0] != "—":
            cells[0] = f"`{cells[0]}`"
        rows.append([f"`{plant.path}`", expected, *cells])
    headers = ["planted file", "expected", *names.values()]
    return common.markdown_table(headers, rows, "l" * len(headers))


def tallies(plan: Plan, out: Outcome, tool: str) -> tuple[int, int, int, list[Hit]]:
    """(credentials flagged, with credguard's right kind, look-alikes flagged, other hits)."""
    creds, decoys = plan.credentials, set(plan.decoys)
    by_path: dict[str, set[str]] = {}
    for h in out.hits[tool]:
        by_path.setdefault(h.path, set()).add(h.label)
    flagged = sum(p in by_path for p in creds)
    right = sum(kind in by_path.get(p, set()) for p, kind in creds.items())
    fp = sum(p in by_path for p in decoys)
    planted = set(creds) | decoys
    return flagged, right, fp, [h for h in out.hits[tool] if h.path not in planted]


def verdicts(plan: Plan, out: Outcome, names: Mapping[str, str]) -> list[str]:
    """One bullet per tool: planted credentials flagged, look-alikes flagged, other hits."""
    n, n_decoys = len(plan.credentials), len(plan.decoys)
    lines = []
    for key, name in names.items():
        flagged, right, fp, other = tallies(plan, out, key)
        kinds = f", {right} with the right kind" if key == CREDGUARD else " (no Azure labels)"
        if other:
            top = Counter(h.label for h in other).most_common(4)
            breakdown = ", ".join(f"{label} {c}" for label, c in top)
            rest = f"{len(other):,} in {len({h.path for h in other}):,} files ({breakdown})"
        else:
            rest = "none"
        lines.append(
            f"- {name}: flagged **{flagged} of {n}** planted credentials{kinds}; "
            f"{fp} of {n_decoys} benign look-alikes; other hits: {rest}."
        )
    return lines


NOTES = """\
Notes:
- The same tree for all three: the synthetic home of `benchmarks/synthhome.py`, the scan
  section's generator at a fifth of its size (detect-secrets would take several minutes on the
  full 100,000 files); contents are random text, code and binary pools, plus the planted files.
  Every file was read once before timing (warm page cache), and each command ran once on an
  empty directory (warm interpreter and imports); runs alternate, and a command whose first run
  took over {slow:.0f} s ran only once (the `runs` column). The planted files' secrets are
  random, drawn anew by every run (`tests/helpers/payloads.py`): an entropy rule can flag a
  plant in one run and miss it in the next; each tool's hits were the same in all its runs.
- Not the same work: credguard prunes `.git`, `node_modules` and virtualenvs, picks candidates
  by name and sniffs small text files (it visited {cg_files:,} files); trufflehog3 skips only
  `.git` and reads every other file whole; detect-secrets `--all-files` reads every file whose
  extension it does not ignore (images, archives…), `.git` included. Both peers look for
  secret-shaped strings (entropy, keywords, vendor patterns) line by line; neither knows the
  Azure formats, so their labels are generic and they cannot tell a credential file from a
  look-alike holding the same kind of string.
- CPU is user + system time (median) of the command and the worker processes it reaped, from
  `wait4`: on these shared machines other jobs can slow the wall time, far less the CPU time
  (the 1-minute load average is in the machine line, at the start and end of the run).
- Peak RSS is `ru_maxrss` from `wait4`: the largest single process of each command's tree
  (detect-secrets and trufflehog3 each run a pool of worker processes, one per CPU here, so
  their total footprint is larger). MB = 10⁶ bytes. Wall time runs from spawn to reap, with
  about 1 ms for the `/bin/sh` that launches each command.
- The peers live in their own venv (`benchmarks/.work/peers-venv`, made by this script from
  PyPI), never in the project's. Their JSON holds the secrets (trufflehog3) or their hashes
  (detect-secrets): the script keeps only path, line and rule or type."""


def render(
    plan: Plan,
    out: Outcome,
    peers: Peers,
    facts: Mapping[str, str],
    args: argparse.Namespace,
) -> str:
    """The section for ``docs/benchmarks.md``."""
    ds, th = peers.label(DETECT_SECRETS), peers.label(TRUFFLEHOG3)
    labels = {
        CREDGUARD: "`credguard scan --json ROOT`",
        DETECT_SECRETS: f"`detect-secrets scan --all-files ROOT` ({ds})",
        TRUFFLEHOG3: f"`trufflehog3 --no-history -f JSON ROOT` ({th})",
    }
    names = {CREDGUARD: "credguard", DETECT_SECRETS: ds, TRUFFLEHOG3: th}
    stats = out.doc.get("stats", {})
    return "\n\n".join(
        [
            f"## peers: `credguard scan` vs {ds} and {th} on the synthetic home",
            f"`python -m benchmarks.peers --files {len(plan.files)} --dirs {len(plan.dirs)} "
            f"--runs {args.runs}` (seed {args.seed}; {len(plan.files):,} files in "
            f"{len(plan.dirs) + 1:,} directories). {common.facts_line(facts)}.",
            timing_table(out, labels),
            "What each flagged among the planted files (label, number of hits if more than "
            "one, and lines; credguard reports whole files, by kind):",
            planted_table(plan, out, names),
            "\n".join(verdicts(plan, out, names)),
            NOTES.format(slow=SLOW, cg_files=int(stats.get("files", 0))),
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (``sys.argv[1:]`` if ``argv`` is None)."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.peers", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    p.add_argument("--files", type=int, default=FILES, help=f"files in the tree ({FILES})")
    p.add_argument("--dirs", type=int, default=DIRS, help=f"directories below the root ({DIRS})")
    p.add_argument("--runs", type=int, default=5,
                   help=f"timed runs of each command (5; 1 for one slower than {SLOW:.0f} s)")
    p.add_argument("--seed", type=int, default=2026, help="random seed of the tree (2026)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK,
                   help=f"work dir of the tree ({DEFAULT_WORK})")
    p.add_argument("--venv", type=Path, default=VENV, help=f"the peers' venv ({VENV})")
    p.add_argument("--upgrade-peers", action="store_true",
                   help="reinstall the peers' venv (the latest trufflehog3)")
    p.add_argument("--no-write", action="store_true", help="print only; leave the docs alone")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Install or reuse the peers, build or reuse the tree, run, print and write the section."""
    args = parse_args(argv)
    work = args.work.resolve()
    peers = ensure_peers(args.venv.resolve(), args.upgrade_peers)
    print(f"peers: {peers.label(DETECT_SECRETS)}, {peers.label(TRUFFLEHOG3)}", file=sys.stderr)
    started = time.perf_counter()
    plan = synthhome.build(work, args.files, args.dirs, args.seed)
    print(
        f"tree {plan.root}: {'built' if plan.built else 'reused'} "
        f"({time.perf_counter() - started:.1f} s)",
        file=sys.stderr,
    )
    cmds = {
        CREDGUARD: credguard_cmd(plan.root),
        DETECT_SECRETS: detect_secrets_cmd(peers, plan.root),
        TRUFFLEHOG3: trufflehog3_cmd(peers, plan.root),
    }
    load_start = os.getloadavg()[0]
    out = run_benchmark(cmds, plan.root, scan.bench_env(work), args.runs)
    load_end = os.getloadavg()[0]
    _, right, fp, other = tallies(plan, out, CREDGUARD)
    if right != len(plan.credentials) or fp or other:
        print(
            f"warning: credguard found {right} of {len(plan.credentials)} plants with the right "
            f"kind, {fp} look-alikes, {len(other)} other files",
            file=sys.stderr,
        )
    facts = common.machine_facts(plan.root)
    facts |= {DETECT_SECRETS: peers.versions[DETECT_SECRETS],
              TRUFFLEHOG3: peers.versions[TRUFFLEHOG3]}
    facts["load average"] = f"{load_start:.1f} at the start, {load_end:.1f} at the end"
    git = ["git", "-C", str(common.REPO), "describe", "--always", "--dirty"]
    facts["commit"] = subprocess.run(git, capture_output=True, text=True).stdout.strip() or "?"
    common.publish(NAME, render(plan, out, peers, facts, args), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
