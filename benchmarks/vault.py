"""Benchmark: credguard's vault with a real Secret Service (gnome-keyring on a private bus).

Times ``credguard import --json FILE`` (and the import in-process), ``vault list --json`` over
``--items`` items and ``exec ID -- true`` against baselines run alternately, against a bus and
daemon started with ``tests/secret_service.py``'s classes and removed at the end (also on errors
and SIGTERM). Every output is checked; a wrong one exits 1.

Usage: ``python -m benchmarks.vault [--imports N] [--items N] [--runs N] [--no-write]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from unittest import mock

from benchmarks import common
from credguard import config
from credguard.protect.intake import take_in
from credguard.vault.access import open_vault

NAME = "vault"
LIST_GOAL, EXEC_GOAL = 0.5, 0.150  # seconds
CAP = 4 << 20  # take_in's read limit
BIG_IMPORTS = 5  # imports timed into the large vault, after the list runs
PY = sys.executable
TRUE = shutil.which("true") or "/bin/true"  # a path: the launcher's sh would run its builtin
PASS_CMD = [PY, "-c", "pass"]
KEYRING_CODE = "import keyring; keyring.get_password('x', 'y'); print(type(keyring.get_keyring()))"
KEYRING_CMD = [PY, "-c", KEYRING_CODE]  # prints the backend it used: checked
SCRUB = ("CREDGUARD_", "AZURE_", "AZD_", "XDG_", "PYTHON_KEYRING")
Samples = dict[str, list[common.Sample]]  # by command
Timings = dict[str, list[float]]  # seconds, by in-process operation
Imp = tuple[str, int, int, int]  # -X importtime: module, nesting depth, self and cumulative µs


@dataclass
class Session:
    """A running ``tests/secret_service.SecretService``, the temp root and credguard's path."""

    service: Any
    root: Path
    exe: str = field(default_factory=common.credguard_exe)

    def env(self, vault: str) -> dict[str, str]:
        """Nothing inherited that configures credguard or keyring; this session's bus, HOME,
        XDG dirs (runtime dir on tmpfs); ``vault`` (import, list, exec) names the data home."""
        home = Path(self.service.home)
        env = {k: v for k, v in self.service.env.items() if not k.startswith(SCRUB)}
        return env | {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(self.root / "vaults" / vault),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_CONFIG_DIRS": str(self.root / "etc-xdg"),
            "XDG_RUNTIME_DIR": str(self.service.runtime_dir),
        }

    def run(self, vault: str, *args: str) -> common.Sample:
        """``credguard ARGS`` once, on the vault named ``vault``."""
        return common.run_once([self.exe, *args], self.env(vault))

    def profiles(self, name: str, count: int) -> list[Path]:
        """``count`` fresh publish profiles in ~/Downloads/NAME (random secrets: no duplicates)."""
        payloads = common.tests_module("payloads")
        folder = Path(self.service.home) / "Downloads" / name
        folder.mkdir(parents=True, exist_ok=True)
        files = [folder / f"{name}-{i:04d}.PublishSettings" for i in range(count)]
        for f in files:
            f.write_bytes(payloads.publish_profile(f.stem).data)
        return files


@contextlib.contextmanager
def secret_service() -> Iterator[Session]:
    """A fresh unlocked gnome-keyring on a private bus; all stopped and removed afterwards."""
    ss = common.tests_module("secret_service")
    root = Path(tempfile.mkdtemp(prefix="credguard-bench-vault-"))
    shm = Path("/dev/shm")  # a tmpfs runtime dir, as a desktop session's /run/user/UID is
    run = Path(tempfile.mkdtemp(prefix="credguard-bench-run-", dir=shm if shm.is_dir() else root))
    service: Any = None
    try:
        try:
            service = ss.SecretService(root / "session")
            service.runtime_dir = run
            service.start()
        except ss.pytest.fail.Exception as exc:  # what pytest.fail() raises outside pytest
            raise SystemExit(f"cannot start the Secret Service: {exc}") from None
        yield Session(service, root)
    finally:
        if service is not None:
            service.stop()
        shutil.rmtree(run, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def run_and_publish(name: str, run_all: Callable[[Session, argparse.Namespace], str],
                    args: argparse.Namespace) -> int:
    """The usual ``main`` body: start the Secret Service, run and check everything
    (``run_all`` returns the section), print it and write it into section ``name``."""
    with common.exit_on_sigterm(), secret_service() as session:
        section = run_all(session, args)
    common.publish(name, section, write=not args.no_write)
    return 0


def check(
    samples: Sequence[common.Sample], what: str, output: bytes = b"", parse: bool = False
) -> list[Any]:
    """Every run exited 0 and printed ``output``; with ``parse``, their JSON outputs."""
    for s in samples:
        if s.returncode != 0 or output not in s.stdout:
            raise SystemExit(f"FAIL: {what}: exit {s.returncode}, output {s.stdout[:300]!r}")
    return [json.loads(s.stdout) for s in samples] if parse else []


def imported_id(sample: common.Sample) -> str:
    """The new item's id from a one-file ``import --json``; exit 1 unless it made exactly one."""
    doc = check([sample], "import", parse=True)[0]
    if doc["errors"] or len(doc["imported"]) != 1 or doc["imported"][0]["already_in_vault"]:
        raise SystemExit(f"FAIL: import made no single new item: {sample.stdout[:300]!r}")
    return str(doc["imported"][0]["id"])


def check_list(samples: Sequence[common.Sample], want: int) -> None:
    """Every ``vault list --json`` run exited 0 and printed ``want`` items."""
    if any(len(doc["items"]) != want for doc in check(samples, "vault list", parse=True)):
        raise SystemExit(f"FAIL: vault list printed other than {want} items")


def bench_imports(s: Session, n: int) -> Samples:
    """A first import (it creates the vault key), then ``n`` imports of fresh files alternating
    with the two floors; each must add an item, and the vault end with ``n + 1``."""
    env, files = s.env("import"), s.profiles("import", n + 1)
    out: Samples = {"first": [s.run("import", "import", "--json", str(files[0]))]}
    imported_id(out["first"][0])
    out |= {"import": [], "pass": [], "keyring": []}
    for i, path in enumerate(files[1:]):
        cmds = {"import": [s.exe, "import", "--json", str(path)]}
        cmds |= {"pass": PASS_CMD, "keyring": KEYRING_CMD}
        for key in list(cmds) if i % 2 == 0 else list(reversed(cmds)):
            out[key].append(common.run_once(cmds[key], env))
        imported_id(out["import"][-1])
    check(out["pass"], "python -c pass")
    check(out["keyring"], "keyring floor", b"SecretService")
    check_list([s.run("import", "vault", "list", "--json")], n + 1)
    return out


def bench_in_process(s: Session, items: int, n: int) -> Timings:
    """Fill the list vault with ``items`` records in this process, timing ``take_in`` and
    ``vault.add`` each time; then ``n`` times a fresh ``open_vault`` and one ``get_key``."""
    files, clock = s.profiles("list", items), time.perf_counter
    t: Timings = {}
    with mock.patch.dict(os.environ, s.env("list"), clear=True):  # credguard reads it
        vault = open_vault(config.load())
        for i, path in enumerate(files):
            start = clock()
            record = take_in(path, CAP).record
            mid = clock()
            vault.add(record)
            t.setdefault("take_in", []).append(mid - start)
            t.setdefault("add" if i else "add1", []).append(clock() - mid)
        state = vault.read_state()
        if state is None or state.key_id is None or len(vault.ids()) != items:
            raise SystemExit(f"FAIL: the list vault should hold {items} items and a key")
        for _ in range(n):
            start = clock()
            fresh = open_vault(config.load())
            mid = clock()
            fresh.keystore.get_key(state.key_id)
            t.setdefault("open", []).append(mid - start)
            t.setdefault("get_key", []).append(clock() - mid)
    return t


def bench_list(s: Session, items: int, runs: int) -> Samples:
    """``vault list --json`` on the big vault and the one-item (exec) vault, alternating."""
    cmds = {
        f"list-{v}": ["env", f"XDG_DATA_HOME={s.root}/vaults/{v}", s.exe, "vault", "list", "--json"]
        for v in ("list", "exec")
    }
    out = common.interleave(cmds, runs, s.env("list"))
    check_list(out["list-list"], items)
    check_list(out["list-exec"], 1)
    return out


def bench_exec(s: Session, item_id: str, runs: int) -> Samples:
    """``exec ID -- true``, ``true`` and the two floors, alternating; before that, once, a
    child that checks it got a non-empty ``CREDGUARD_FILE``."""
    check([s.run("exec", "exec", item_id, "--", "sh", "-c", 'test -s "$CREDGUARD_FILE"')], "exec")
    cmds = {"exec": [s.exe, "exec", item_id, "--", "true"], "true": [TRUE]}
    cmds |= {"x-pass": PASS_CMD, "x-keyring": KEYRING_CMD}
    out = common.interleave(cmds, runs, s.env("exec"))
    for key, samples in out.items():
        check(samples, key, b"SecretService" if key == "x-keyring" else b"")
    return out


def import_times(cmd: Sequence[str], env: Mapping[str, str]) -> list[Imp]:
    """Run ``cmd`` (a Python program) once with ``PYTHONPROFILEIMPORTTIME=1``; its imports."""
    env = {**env, "PYTHONPROFILEIMPORTTIME": "1"}
    proc = subprocess.run(list(cmd), env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"FAIL: {cmd} under -X importtime: exit {proc.returncode}")
    rows: list[Imp] = []
    for line in proc.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[0].strip().isdigit():
            indent = len(parts[2]) - len(parts[2].lstrip())
            rows.append((parts[2].strip(), (indent - 1) // 2, int(parts[0]), int(parts[1])))
    return rows


def total_s(imps: Sequence[Imp]) -> float:
    """All import time (s): the sum over the outermost imports."""
    return sum(cumulative for _, depth, _, cumulative in imps if depth == 0) / 1e6


ROWS = {  # table: (label, key of a process's samples or of an in-process timing)
    "import": [
        ("`credguard import --json FILE` (into a vault of 1 to n items)", "import"),
        ("… the first one (empty vault: creates the key)", "first"),
        ("… into the vault of {items:,} items (after the `list` runs)", "big"),
        ("`python -c pass` (interpreter floor)", "pass"),
        ("`python -c 'import keyring; keyring.get_password(…)'` (keyring floor)", "keyring"),
        ("in-process `open_vault(config.load())` (resolves the backend)", "open"),
        ("in-process `keystore.get_key()` (one Secret Service round trip)", "get_key"),
        ("in-process `take_in(path)` (read and detect)", "take_in"),
        ("in-process `vault.add(record)` (encrypt, write, fsync, read back)", "add"),
        ("… the first `vault.add` (creates and stores the key)", "add1"),
    ],
    "list": [
        ("`credguard vault list --json`, {items:,} items", "list-list"),
        ("`credguard vault list --json`, 1 item", "list-exec"),
    ],
    "exec": [
        ("`credguard exec ID -- true`", "exec"),
        (f"`{TRUE}`", "true"),
        ("`python -c pass`", "x-pass"),
        ("keyring floor (as above)", "x-keyring"),
    ],
}
HEADERS = ["", "count", "median (ms)", "p95 (ms)", "min-max (ms)", "peak RSS (MB)"]
TEMPLATE = """\
## vault: import, `vault list` and `exec` with a real Secret Service

`python -m benchmarks.vault --imports {imports} --items {items} --runs {runs}`. {facts}.

### Import latency

{import_table}

- The import itself (`take_in` + `vault.add`, medians) takes {own} ms of the command's {cli} ms;
  the other {startup} ms are per-process costs: interpreter start-up ({pass_} ms for `python -c
  pass`), imports, config, resolving the keyring backend and fetching the key (the keyring floor
  process takes {keyring} ms), and comparing the file with every item already in the vault
  (`import` decrypts them all to compare checksums: hence the large-vault row).

### `vault list` with many items

{list_table}

- Goal ≤ {list_goal} s with {items:,} items: **{many:.3f} s, {list_met}**; {one:.3f} s is the
  fixed cost (one item), {per_item} µs each further item (read, decrypt, JSON).

### `exec` overhead

{exec_table}

- Goal overhead ≤ {exec_goal} ms (median of exec - median of `true`): **{over} ms, {exec_met}**.

Where the overhead goes (imports from one `-X importtime` run, which inflates them somewhat, so
the rest is a lower bound; the keyring calls timed warm, in-process):

{parts_table}

The 10 slowest imports of `credguard exec ID -- true` by cumulative time (depth 0: imported by
the program itself; deeper rows are inside the shallower ones above them):

{top_table}

Notes: a real gnome-keyring {gk} (`--unlock --components=secrets`) on a private `dbus-daemon`
with an empty service directory; temporary HOME and XDG dirs, XDG_RUNTIME_DIR on tmpfs (where
`exec` puts the credential file), vaults on {fs}. Processes alternate with their baselines (order
reversed every other round); wall time runs from spawn to reap, with about 1 ms for the `/bin/sh`
that launches each command so that peak RSS is the command's own; `list` runs under `env
XDG_DATA_HOME=…`. Every output is checked: each import added an item, `list` printed {items:,}
and 1 items, exit codes were 0, and `exec` once handed a non-empty `CREDGUARD_FILE` to its child.
"""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def render(p: Samples, t: Timings, imps: dict[str, list[Imp]], args: Any, facts: Any) -> str:
    """The section for ``docs/benchmarks.md``."""
    n, met = args.items, {True: "met", False: "NOT met"}
    med = {k: common.median([x.wall for x in v]) for k, v in p.items()}
    med |= {k: common.median(v) for k, v in t.items()}

    def stat(label: str, key: str) -> list[str]:
        w = [x.wall for x in p[key]] if key in p else t[key]
        rss = f"{max(x.maxrss_mb for x in p[key]):.1f}" if key in p else "n/a"
        spread = f"{ms(min(w))}-{ms(max(w))}"
        return [label.format(items=n), str(len(w)), ms(med[key]), ms(common.p95(w)), spread, rss]

    cli, own = med["import"], med["take_in"] + med["add"]
    many, one = med["list-list"], med["list-exec"]
    over, start = med["exec"] - med["true"], med["x-pass"] - med["true"]
    imports = total_s(imps["exec"]) - total_s(imps["pass"])
    keyring = med["open"] + med["get_key"]
    rest = over - start - imports - keyring
    parts = [
        ["interpreter start-up (`python -c pass` - `true`)", ms(start)],
        ["imports beyond those of `python -c pass` (`-X importtime` totals)", ms(imports)],
        ["Secret Service: `open_vault` + `get_key` (in-process medians)", ms(keyring)],
        ["the rest: config, backend discovery, decrypt, RAM dir, running `true`", ms(rest)],
    ]
    top: dict[str, list[str]] = {}  # the 10 slowest, each module once (one can show twice)
    for m, d, us, cum in sorted(imps["exec"], key=lambda x: -x[3]):
        top.setdefault(m, [f"`{m}`", str(d), ms(us / 1e6), ms(cum / 1e6)])
    v: dict[str, object] = {
        f"{k}_table": common.markdown_table(HEADERS, [stat(*r) for r in ROWS[k]]) for k in ROWS
    }
    v["parts_table"] = common.markdown_table(["part of the overhead", "ms"], parts)
    top_head = ["module", "nesting depth", "self (ms)", "cumulative (ms)"]
    v["top_table"] = common.markdown_table(top_head, list(top.values())[:10])
    v.update(imports=args.imports, items=n, runs=args.runs, facts=common.facts_line(facts))
    v.update(gk=facts["gnome-keyring"], fs=facts["file system"], pass_=ms(med["pass"]))
    v.update(own=ms(own), cli=ms(cli), startup=ms(cli - own), keyring=ms(med["keyring"]))
    v.update(many=many, one=one, list_goal=LIST_GOAL, list_met=met[many <= LIST_GOAL])
    v.update(per_item=f"{(many - one) / max(n - 1, 1) * 1e6:.0f}", exec_goal=ms(EXEC_GOAL))
    v.update(over=ms(over), exec_met=met[over <= EXEC_GOAL])
    return TEMPLATE.format(**v)


def run_all(s: Session, args: Any) -> tuple[Samples, Timings, dict[str, list[Imp]]]:
    """Every measurement, in an order where each vault holds the items its part expects."""
    print(f"vault: {args.imports} imports, {args.items} items in-process", file=sys.stderr)
    p = bench_imports(s, args.imports)
    t = bench_in_process(s, args.items, args.imports)
    item_id = imported_id(s.run("exec", "import", "--json", str(s.profiles("exec", 1)[0])))
    print(f"vault: list and exec, {args.runs} runs each", file=sys.stderr)
    p |= bench_list(s, args.items, args.runs)
    p["big"] = [s.run("list", "import", "--json", str(f)) for f in s.profiles("big", BIG_IMPORTS)]
    for sample in p["big"]:
        imported_id(sample)
    p |= bench_exec(s, item_id, args.runs)
    exec_cmd = [s.exe, "exec", item_id, "--", "true"]
    imps = {k: import_times(c, s.env("exec")) for k, c in (("exec", exec_cmd), ("pass", PASS_CMD))}
    return p, t, imps


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (``sys.argv[1:]`` if ``argv`` is None)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.vault", description=NAME + " benchmark")
    p.add_argument("--imports", type=int, default=50, help="timed import processes (50)")
    p.add_argument("--items", type=int, default=1000, help="items in the list vault (1000)")
    p.add_argument("--runs", type=int, default=20, help="timed runs of list and exec (20)")
    p.add_argument("--no-write", action="store_true", help="print only; leave the docs alone")
    args = p.parse_args(argv)
    if min(args.imports, args.items, args.runs) < 1:
        p.error("--imports, --items and --runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Start the Secret Service, run and check everything, print and write the section."""
    args = parse_args(argv)
    with common.exit_on_sigterm(), secret_service() as session:
        results = run_all(session, args)
        facts = common.machine_facts(session.root)
    gk = subprocess.run(["gnome-keyring-daemon", "--version"], capture_output=True, text=True)
    facts |= {"gnome-keyring": gk.stdout.split()[1], "keyring": metadata.version("keyring")}
    git = ["git", "-C", str(common.REPO), "describe", "--always", "--dirty"]
    facts["commit"] = subprocess.run(git, capture_output=True, text=True).stdout.strip() or "?"
    section = render(*results, args, facts)
    common.publish(NAME, section, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
