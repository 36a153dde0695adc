"""Benchmark: start-up of ``credguard check`` (the pre-commit path) and ``credguard exec ID --
true`` against ``python -c pass``, all in one non-editable install, with three floors measured in
the same rounds: a Python that does only what any check of the files must (import what pip's
console script imports, read each file's first 4 KiB), one that only fetches the vault key from
the Secret Service, and one that also decrypts with AES-GCM and runs the child, as ``exec`` must.
``check`` is also timed with one file that needs a closer look (the full path), and, in rounds of
its own against ``python -c pass``, with a user configuration file it validated before. In the
same rounds, a one-file ``credguard protect`` against ``shred -u`` of the same kind of file,
each run on a fresh publish profile; then both again while a ``credguard daemon`` of the same
environment runs, which ``protect`` asks to do it (every run checked to have gone through it).

The install is :mod:`benchmarks.install`'s: a user's, built with no network. ``exec`` reads a
real vault item imported with that install into a private gnome-keyring (:mod:`benchmarks.vault`'s
session). The commands alternate; every run must exit 0. ``-X importtime`` of one run of each
path shows where the time goes.

Usage: ``python -m benchmarks.startup [--runs N] [--no-write]``
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from benchmarks import common
from benchmarks.install import build_venv, runtime_closure
from benchmarks.vault import (
    TRUE,
    Imp,
    Session,
    check,
    import_times,
    imported_id,
    secret_service,
    total_s,
)

NAME = "startup"
CHECK_GOAL, EXEC_GOAL = 3.0, 5.0  # ratios to `python -c pass` of the same venv
PROTECT_GOAL = 10.0  # one-file `credguard protect`, times `shred -u` of the same file
SHRED = shutil.which("shred") or "/usr/bin/shred"
# ten files a commit typically holds, none a credential: credguard's own sources and docs
ORDINARY = ("README.md", "pyproject.toml", "credguard/__init__.py", "credguard/errors.py",
            "credguard/paths.py", "credguard/scan/check.py", "credguard/config/settings.py",
            "docs/configuration.md", "docs/schemas/check.schema.json", ".pre-commit-hooks.yaml")
Samples = dict[str, list[common.Sample]]


def ordinary_files(folder: Path) -> list[Path]:
    """Copies of :data:`ORDINARY` in ``folder`` (as a commit's files: read, not a credential)."""
    folder.mkdir(parents=True)
    files = [folder / f"{i:02d}-{Path(name).name}" for i, name in enumerate(ORDINARY)]
    for name, copy in zip(ORDINARY, files, strict=True):
        shutil.copy2(common.REPO / name, copy)
    return files


# What any Python program pays for the secret alone: connect to the Secret Service, find the
# vault key (keyring-compatible item of service "credguard"), fetch it over an encrypted session.
KEY_FETCH = """\
import contextlib, secretstorage
with contextlib.closing(secretstorage.dbus_init()) as connection:
    collection = secretstorage.get_default_collection(connection)
    assert next(collection.search_items({"service": "credguard"})).get_secret()
"""
# ... and what else ``exec`` cannot do without, whoever writes it: decrypt the item with the key
# (AES-GCM, cryptography) and run the child, waiting for its exit status.
EXEC_FLOOR = KEY_FETCH + f"""\
import os, subprocess
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key, nonce = AESGCM.generate_key(256), os.urandom(12)
AESGCM(key).decrypt(nonce, AESGCM(key).encrypt(nonce, bytes(4096), None), None)
subprocess.run([{TRUE!r}], check=True)
"""
# What any check of the files must do, whoever writes it: what pip's console script imports (it
# runs re.sub on argv[0]), then each file looked at without following a link and its first
# 4 KiB read (the prefix credguard's content sniffing reads) without blocking on a FIFO.
BLOCKS = """\
import re, stat, sys, os
for name in sys.argv[1:]:
    if stat.S_ISREG(os.lstat(name).st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        os.read(fd, 4096)
        os.close(fd)
"""
# A file whose first bytes carry a credential marker but that holds no credential: the quick
# path cannot tell, so the whole check takes the full path (which passes it).
CLOSER_LOOK = '{"client_id": "not-a-secret", "debug": true, "retries": 3}\n'
# A user configuration as `credguard ignore` leaves it; CREDGUARD_CONFIG names it for the check
# rounds alone, so no other command loads it.
USER_CONFIG = f"""\
# credguard user configuration (see 'credguard config show')
version = 1

[scan]
max_file_size = "8 MiB"

[[ignore]]
fingerprint = "sha256:{'ab' * 32}"
reason = "a test fixture"
"""


def bench(s: Session, bindir: Path, runs: int) -> tuple[Samples, dict[str, list[Imp]]]:
    """The item, the commands alternating (each run checked), one importtime run of each."""
    env, python = s.env("exec"), str(bindir / "python")
    profile = s.profiles("exec", 1)[0]
    item_id = imported_id(s.run("exec", "import", "--json", str(profile)))
    check([s.run("exec", "exec", item_id, "--", "sh", "-c", 'test -s "$CREDGUARD_FILE"')], "exec")
    files = [str(f) for f in ordinary_files(s.root / "project")]
    closer = s.root / "project-config.json"
    closer.write_text(CLOSER_LOOK)
    drops = {"protect": s.root / "drop" / "p.PublishSettings",
             "shred": s.root / "drop" / "s.PublishSettings"}
    drops["protect"].parent.mkdir()
    cmds = {"pass": [python, "-c", "pass"], "blocks": [python, "-c", BLOCKS, *files],
            "check": [s.exe, "check", *files],
            "check-closer": [s.exe, "check", str(closer), *files],
            "secret": [python, "-c", KEY_FETCH],
            "child": [python, "-c", EXEC_FLOOR],
            "exec": [s.exe, "exec", item_id, "--", TRUE],
            "shred": [SHRED, "-u", str(drops["shred"])],
            "protect": [s.exe, "protect", "--json", str(drops["protect"])]}
    payloads = common.tests_module("payloads")

    def fresh(name: str) -> None:
        """A new publish profile (its own secrets: never already in the vault), synced."""
        if name in drops:
            drops[name].write_bytes(payloads.publish_profile().data)
            os.sync()

    samples = common.interleave(cmds, runs, env, before=fresh)
    asked, exec_imps = with_daemon(s, runs, env, {k: cmds[k] for k in ("pass", *drops, "exec")},
                                   fresh)
    samples |= asked
    config_env = {**env, "CREDGUARD_CONFIG": str(s.root / "user-config.toml")}
    Path(config_env["CREDGUARD_CONFIG"]).write_text(USER_CONFIG)
    samples |= {f"{k}-config": v for k, v in common.interleave(
        {"pass": cmds["pass"], "check": cmds["check"]}, runs, config_env).items()}
    for key, got in samples.items():
        check(got, key)
    if any(d.exists() for d in drops.values()):
        raise SystemExit("FAIL: a file protect or shred ran on is still there")
    imps = {k: import_times(cmds[k], env) for k in ("pass", "check", "exec")}
    imps["exec-daemon"] = exec_imps
    quick_path(imps["check"], import_times(cmds["check"], config_env),
               import_times(cmds["check-closer"], env))
    return samples, imps


def quick_path(*imps: list[Imp]) -> None:
    """Each ``check`` took the path its row says: the quick one (which loads no scanner) for
    ordinary files, also with a validated configuration; the full one for a closer look."""
    took = ["credguard.scan" in {module for module, *_ in run} for run in imps]
    if took != [False, False, True]:
        raise SystemExit(f"FAIL: check (ordinary, configured, closer look) took the full path: "
                         f"{took}")


def with_daemon(s: Session, runs: int, env: Mapping[str, str],
                cmds: Mapping[str, Sequence[str]],
                fresh: Callable[[str], None]) -> tuple[Samples, list[Imp]]:
    """``cmds`` again (keys ``<name>-daemon``) while the daemon runs in the commands'
    environment, and one ``-X importtime`` run of ``exec`` there; every ``protect`` and every
    ``exec`` must have gone through it (its log says so once per run)."""
    from benchmarks.daemon import Daemon

    daemon = Daemon(s, vault="exec")
    try:
        got = common.interleave(cmds, runs, env, before=fresh)
        imps = import_times(cmds["exec"], env)
    finally:
        daemon.stop()
    for name, said in (("protect", "protect request: 1 of 1 path(s) protected"),
                       ("exec", " handed over")):
        asked = daemon.stderr().count(said)
        if name in cmds and asked != runs + 1 + (name == "exec"):  # warm-up and importtime
            raise SystemExit(f"FAIL: {asked} of {runs + 1} {name} runs went through the "
                             f"daemon:\n{daemon.stderr()[-3000:]}")
    return {f"{k}-daemon": v for k, v in got.items()}, imps


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def top_imports(imps: Sequence[Imp], n: int = 12) -> list[list[str]]:
    """The ``n`` slowest imports by cumulative time, each module once."""
    rows: dict[str, list[str]] = {}
    for module, depth, own, cumulative in sorted(imps, key=lambda x: -x[3]):
        if module not in rows and len(rows) < n:
            rows[module] = [f"`{module}`", str(depth), ms(own / 1e6), ms(cumulative / 1e6)]
    return list(rows.values())


def by_origin(imps: Sequence[Imp]) -> dict[str, float]:
    """Own import time (s) by where the module comes from: credguard, the standard library,
    or a third-party distribution."""
    sums = dict.fromkeys(("credguard", "standard library", "third-party"), 0.0)
    for module, _, own, _ in imps:
        top = module.split(".")[0]
        origin = ("credguard" if top == "credguard" else "standard library"
                  if top in sys.stdlib_module_names or top.startswith("_") else "third-party")
        sums[origin] += own / 1e6
    return sums


LABELS = {"pass": "`python -c pass` (the baseline)",
          "blocks": "floor: `python -c` importing re (as pip's console script does), then "
                    "reading the first 4 KiB of each of the 10 files",
          "check": "`credguard check` on 10 ordinary files",
          "check-closer": "`credguard check`, one more file needing a closer look (full path)",
          "check-config": "`credguard check` on 10 ordinary files with a user config file "
                          "(validated), vs `python -c pass` of its own rounds",
          "secret": "floor: `python -c` fetching the vault key with `secretstorage`",
          "child": "floor: the same, then AES-GCM decryption and running `true`",
          "exec": "`credguard exec ID -- true`, no daemon running",
          "shred": "`shred -u FILE` (3 passes)",
          "protect": "`credguard protect --json FILE`, no daemon running",
          "shred-daemon": "`shred -u FILE`, the daemon running",
          "protect-daemon": "`credguard protect --json FILE`, the daemon running (asked)",
          "pass-daemon": "`python -c pass`, the daemon running (the baseline of its phase)",
          "exec-daemon": "`credguard exec ID -- true`, the daemon running (asked), vs the row "
                         "above"}
# the one-file protect table, each vs `shred -u` of its own phase
PROTECT_ROWS = ("shred", "secret", "protect", "shred-daemon", "protect-daemon")
HEADERS = ["", "count", "median (ms)", "p90 (ms)", "min-max (ms)", "vs baseline",
           "peak RSS (MB)"]
IMPORT_HEADERS = ["module", "depth", "self (ms)", "cumulative (ms)"]
NOTES = """\
Notes: the install is a wheel built from a copy of the working tree (`pip wheel --no-deps`:
without build isolation when this Python's setuptools can build the project, else with pip's,
which takes setuptools from pip's cache or configured index), installed with `pip install
--no-deps --no-index` into `python -m venv --without-pip` of the same interpreter. The runtime
dependencies ({deps}) are copied file by file, as each one's `RECORD` lists them, from the
distributions pip installed in the benchmark's own venv: the same versions and files a `pip
install credguard` brings, without the network, and nothing more on `sys.path` (a `.pth` to the
project venv would add its test and development packages). Then `python -m compileall` over
site-packages. HOME and the XDG dirs are temporary; `exec` reads an item (a publish profile)
imported with this install into a real gnome-keyring {gk} on a private D-Bus, and its child is
`{true}` (a path, not the shell builtin). The files checked are copies of credguard's own
README, pyproject.toml, sources, a doc, a JSON schema and its pre-commit manifest ({size:,}
bytes). Every run must exit 0. Wall time runs from spawn to reap, with about 1 ms for the
`/bin/sh` that launches each command so that peak RSS is the command's own.
"""
GOALS = (
    "Goal `check` ≤ {check_goal}x `python -c pass` (medians): **{check_ratio:.2f}x, {check_met}**. "
    "A check of files that are no credential takes the quick path (`credguard.cli.quick`): "
    "before argparse, the configuration or the scanner is loaded it answers \"nothing found\", "
    "and only when the full check would answer exactly that. The floor row does what any "
    "check of the files must: pip's console script imports `re`, then each file is looked at "
    "and its first 4 KiB read: {blocks_ratio:.2f}x; {blocks_verdict}. `check` takes "
    "{check_over:.1f} ms more than that floor: nine small credguard modules, the looks for "
    "crash leftovers and for configuration files, and the name and prefix rules. With a user "
    "configuration file that a full check validated before (its stamp matches) it takes "
    "{config_ratio:.2f}x; one file whose first bytes carry a credential marker sends the whole "
    "check down the full path: {closer_ratio:.2f}x.",
    "Goal `exec` ≤ {exec_goal}x `python -c pass` (medians), as users run it, the daemon "
    "running: **{exec_daemon_ratio:.2f}x, {exec_met}** ({exec_daemon_ms:.1f} ms against "
    "{pass_daemon_ms:.1f} ms in the same rounds). `exec` asks the daemon, which holds the "
    "vault key, for the handover (after asking the Secret Service whether the keyring is still "
    "unlocked); the command reads its usual command line without argparse, digests its "
    "context (the configuration files and `CREDGUARD_*` variables), talks on the control "
    "socket, writes the file into its RAM directory and runs the child; it imports no typing, "
    "dataclasses, hashlib, cryptography or keyring. Without a daemon, `exec` takes "
    "{exec_ratio:.2f}x: a Python process that does nothing but fetch the vault key from the "
    "Secret Service (`secretstorage`: D-Bus connection, default collection, search, encrypted "
    "session, secret) takes {secret_ratio:.2f}x, so {secret_verdict}; with the AES-GCM "
    "decryption and the child the floor is {child_ratio:.2f}x, and `exec` takes "
    "{exec_over:.1f} ms more than that: credguard's own modules, the configuration, the XML "
    "parser for the publish profile's variables, the RAM directory, and a second D-Bus "
    "connection (the keystore asks whether a Secret Service runs before it fetches the key).",
    "Goal one-file `protect` ≤ {protect_goal}x `shred -u` of the same file (medians), as users "
    "run it, the daemon running: **{daemon_ratio:.2f}x, {protect_met}** ({daemon_ms:.1f} ms "
    "against {shred_daemon_ms:.1f} ms). `protect` sends the path to the daemon, which holds "
    "the vault key and has its code loaded, and prints its results; the command itself only "
    "starts Python, parses its arguments, reads the two configuration files for the context "
    "digest and talks on the control socket. Without a daemon, `protect` takes "
    "{protect_ratio:.2f}x: fetching the vault key alone takes {secret_vs_shred:.2f}x `shred "
    "-u`, so {protect_verdict}; it takes {protect_over:.1f} ms more than that floor: the "
    "interpreter's imports (cryptography, the keyring, the XML parser), the configuration, "
    "the vault's existing items decrypted to spot a file already in it, and the transaction.",
)
TEMPLATE = """\
## startup: `credguard check`, `exec` and `protect` vs `python -c pass` and `shred -u`

`python -m benchmarks.startup --runs {runs}`. {facts}.

All in one fresh, non-editable install (a wheel of the working tree, `pip install --no-deps
--no-index`, byte-code compiled), alternating ({runs} rounds, order reversed every other round,
one untimed round first). The rows marked "the daemon running" come from a second phase, in
which a `credguard daemon` of the same environment runs and `python -c pass`, `exec`, and the
`shred -u`/`protect` rows of the next table alternate; each `exec` there was checked to have
been answered by the daemon. The check rows with a user configuration file come from a third
phase, with their own `python -c pass`:

{table}

{goals}

### One-file `credguard protect` vs `shred -u`

In the same rounds, each on a fresh 1.5 KB publish profile (new secrets, so never already in
the vault; written and synced before it is timed), outside the folders the daemon watches. The
key-fetch floor is the row above. Then `shred -u` and `protect` again, alternating as before,
while a `credguard daemon` (the project's, in the same environment) runs; each ratio is to
the `shred -u` row of its own phase.

{protect_table}

{protect_goals}

### Where the time goes

One run of each under `-X importtime` (which inflates import times somewhat). Own import time
(the module's code, not what it imports), by origin:

{origin_table}

The slowest imports of `credguard check` on ordinary files by cumulative time (depth 0:
imported by the program itself; deeper rows are inside the shallower ones above them). A
module's cumulative time includes every module it is the first to import: `re` and what it
loads are the console script's own. The quick path's looks for crash leftovers (the journal,
the RAM directories) and for configuration files are directory listings and `lstat`s; it
imports nothing else.

{check_top}

The slowest imports of `credguard exec ID -- true` as users run it, the daemon running (asked):

{exec_daemon_top}

And without a daemon (the command reads the vault itself):

{exec_top}

{notes}
"""


def render(samples: Samples, imps: dict[str, list[Imp]], deps: Sequence[str],
           args: argparse.Namespace, facts: Mapping[str, str], size: int) -> str:
    """The section for ``docs/benchmarks.md``."""
    walls = {k: [x.wall for x in v] for k, v in samples.items()}
    med = {k: common.median(w) for k, w in walls.items()}
    ratio = {k: med[k] / med["pass-config" if k.endswith("-config") else "pass-daemon"
                             if k.endswith("-daemon") else "pass"] for k in med}
    rows = [[LABELS[k], str(len(w)), ms(med[k]), ms(common.p90(w)),
             f"{ms(min(w))}-{ms(max(w))}", f"{ratio[k]:.2f}x",
             f"{max(x.maxrss_mb for x in samples[k]):.1f}"] for k, w in walls.items()
            if not k.startswith(("shred", "protect", "pass-config"))]
    vs_shred = {k: med[k] / med["shred-daemon" if k.endswith("-daemon") else "shred"]
                for k in PROTECT_ROWS}
    protect_rows = [[LABELS[k], str(len(walls[k])), ms(med[k]), ms(common.p90(walls[k])),
                     f"{ms(min(walls[k]))}-{ms(max(walls[k]))}", f"{vs_shred[k]:.2f}x",
                     f"{max(x.maxrss_mb for x in samples[k]):.1f}"] for k in PROTECT_ROWS]
    met = {k: "met" if ratio[k] <= goal else "NOT met"
           for k, goal in (("check", CHECK_GOAL), ("exec", EXEC_GOAL))}
    met["exec"] = "met" if ratio["exec-daemon"] <= EXEC_GOAL else "NOT met"
    origins = {k: by_origin(imps[k]) for k in ("pass", "check", "exec-daemon", "exec")}
    verdict = {
        "blocks": "no console script that reads the files can meet the goal" if ratio["blocks"]
        >= CHECK_GOAL else f"{CHECK_GOAL - ratio['blocks']:.2f}x are left for credguard itself",
        "secret": "no `exec` that fetches the key itself can meet the goal"
        if ratio["secret"] >= EXEC_GOAL
        else f"{EXEC_GOAL - ratio['secret']:.2f}x are left for the rest of `exec`",
    }
    origin_rows = [[f"`{name}`", *(ms(origins[k][origin]) for k in origins)]
                   for origin, name in (("standard library", "standard library"),
                                        ("third-party", "third-party"),
                                        ("credguard", "credguard"))]
    origin_rows.append(["all (`-X importtime` total)", *(ms(total_s(imps[k])) for k in origins)])
    goals = [textwrap.fill(goal.format(
        check_goal=CHECK_GOAL, exec_goal=EXEC_GOAL, check_ratio=ratio["check"],
        exec_ratio=ratio["exec"], check_met=met["check"], exec_met=met["exec"],
        blocks_ratio=ratio["blocks"], secret_ratio=ratio["secret"],
        blocks_verdict=verdict["blocks"], secret_verdict=verdict["secret"],
        child_ratio=ratio["child"], check_over=(med["check"] - med["blocks"]) * 1000,
        config_ratio=ratio["check-config"], closer_ratio=ratio["check-closer"],
        exec_over=(med["exec"] - med["child"]) * 1000, protect_goal=PROTECT_GOAL,
        exec_daemon_ratio=ratio["exec-daemon"], exec_daemon_ms=med["exec-daemon"] * 1000,
        pass_daemon_ms=med["pass-daemon"] * 1000,
        protect_ratio=vs_shred["protect"], secret_vs_shred=vs_shred["secret"],
        protect_met="met" if vs_shred["protect-daemon"] <= PROTECT_GOAL else "NOT met",
        daemon_ratio=vs_shred["protect-daemon"], daemon_ms=med["protect-daemon"] * 1000,
        shred_daemon_ms=med["shred-daemon"] * 1000,
        protect_verdict="no process that fetches the key itself can meet the goal"
        if vs_shred["secret"] >= PROTECT_GOAL
        else f"{PROTECT_GOAL - vs_shred['secret']:.2f}x are left for the rest of `protect`",
        protect_over=(med["protect"] - med["secret"]) * 1000), 99,
        initial_indent="- ", subsequent_indent="  ", break_on_hyphens=False) for goal in GOALS]
    return TEMPLATE.format(
        runs=args.runs, facts=common.facts_line(facts), table=common.markdown_table(HEADERS, rows),
        goals="\n".join(goals[:2]), protect_goals=goals[2],
        protect_table=common.markdown_table([*HEADERS[:5], "vs `shred -u`", HEADERS[6]],
                                            protect_rows),
        origin_table=common.markdown_table(
            ["own import time (ms)", "`python -c pass`", "`check`", "`exec`, daemon asked",
             "`exec`, no daemon"], origin_rows),
        check_top=common.markdown_table(IMPORT_HEADERS, top_imports(imps["check"])),
        exec_top=common.markdown_table(IMPORT_HEADERS, top_imports(imps["exec"])),
        exec_daemon_top=common.markdown_table(IMPORT_HEADERS, top_imports(imps["exec-daemon"])),
        notes=textwrap.fill(" ".join(NOTES.format(
            deps=", ".join(sorted(deps, key=str.lower)), gk=facts.get("gnome-keyring", "?"),
            true=TRUE, size=size).split()), 99, break_on_hyphens=False))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (``sys.argv[1:]`` if ``argv`` is None)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.startup",
                                description=NAME + " benchmark")
    p.add_argument("--runs", type=int, default=30, help="timed rounds of the commands (30)")
    p.add_argument("--no-write", action="store_true", help="print only; leave the docs alone")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Build the install, start the Secret Service, run and check everything, publish."""
    args = parse_args(argv)
    with common.exit_on_sigterm(), tempfile.TemporaryDirectory(prefix="credguard-startup-") as t:
        print("startup: building the install", file=sys.stderr)
        bindir = build_venv(Path(t))
        deps = [d.metadata["Name"] for d in runtime_closure()]
        with secret_service() as session:
            s = dataclasses.replace(session, exe=str(bindir / "credguard"))
            print(f"startup: {args.runs} rounds", file=sys.stderr)
            samples, imps = bench(s, bindir, args.runs)
            facts = common.machine_facts(s.root)
            size = sum(f.stat().st_size for f in (s.root / "project").iterdir())
    gk = subprocess.run(["gnome-keyring-daemon", "--version"], capture_output=True, text=True)
    facts |= {"gnome-keyring": gk.stdout.split()[1]}
    git = ["git", "-C", str(common.REPO), "describe", "--always", "--dirty"]
    facts["commit"] = subprocess.run(git, capture_output=True, text=True).stdout.strip() or "?"
    common.publish(NAME, render(samples, imps, deps, args, facts, size), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
