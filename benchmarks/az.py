"""Benchmark: ``credguard az version`` against plain ``az version``, with the real Azure CLI.

The baseline is ``az version`` on a plaintext Azure CLI config dir holding an MSAL token cache
(built with the real ``msal``) and azureProfile.json; the measured command is ``credguard az
version`` on a second config dir with the same content, sealed with ``credguard seal
azure-cli`` into a vault kept by a real Secret Service (:mod:`benchmarks.vault`'s private
gnome-keyring and D-Bus). The two alternate. Every run must exit 0 and print what plain ``az
version`` prints, and the sealed dir must hold no plaintext token cache; otherwise exit 1.

Usage: ``python -m benchmarks.az [--az PATH] [--runs N] [--no-write]``
(``--az``: the az to run, default ``$CREDGUARD_TEST_AZ``, else ``az`` on PATH)
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.protect import ms, stat_row
from benchmarks.vault import Session, secret_service

NAME = "az"
CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"  # the Azure CLI's public client id
CACHE = "msal_token_cache.json"
USER = "bench@example.com"
# az offline and quiet: no telemetry (a detached uploader that tries the network), no survey;
# said both in the environment and in each config dir's `config`, which `credguard az` copies
OFFLINE_ENV = {"AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_SURVEY_MESSAGE": "false"}
CONFIG = "[core]\ncollect_telemetry = false\nsurvey_message = false\n"
Samples = dict[str, list[common.Sample]]


def b64url(doc: Mapping[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def msal_cache(tenant: str) -> str:
    """A serialized MSAL token cache as ``az login`` leaves one: one user's access, refresh and
    ID tokens (random secrets), made by the real ``msal.SerializableTokenCache``."""
    try:
        msal: Any = importlib.import_module("msal")
    except ImportError:
        raise SystemExit("the az benchmark needs msal: pip install -e '.[test]'") from None
    oid, now = str(uuid.uuid4()), int(time.time())
    claims = {"iss": f"https://login.microsoftonline.com/{tenant}/v2.0", "oid": oid,
              "tid": tenant, "sub": oid, "preferred_username": USER, "aud": CLIENT_ID,
              "iat": now, "exp": now + 3600}  # fmt: skip
    response = {
        "token_type": "Bearer",
        "expires_in": 3600,
        "access_token": secrets.token_urlsafe(1200),
        "refresh_token": secrets.token_urlsafe(600),
        "client_info": b64url({"uid": oid, "utid": tenant}),
        "id_token": f"{b64url({'alg': 'none'})}.{b64url(claims)}.",
    }
    cache = msal.SerializableTokenCache()
    cache.add({
        "client_id": CLIENT_ID,
        "scope": ["https://management.core.windows.net//.default"],
        "token_endpoint": f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "response": response,
    })  # fmt: skip
    return str(cache.serialize())


def write_config_dir(folder: Path, cache: str, tenant: str) -> None:
    """An Azure CLI config dir after ``az login``: token cache (0600), profile, config."""
    folder.mkdir(parents=True, mode=0o700)
    (folder / CACHE).write_text(cache)
    (folder / CACHE).chmod(0o600)
    sub = {"id": str(uuid.uuid4()), "name": "Bench", "state": "Enabled", "isDefault": True,
           "user": {"name": USER, "type": "user"}, "tenantId": tenant,
           "environmentName": "AzureCloud"}  # fmt: skip
    profile = {"installationId": str(uuid.uuid4()), "subscriptions": [sub]}
    # az writes it with a BOM (encoding utf-8-sig): so does this
    (folder / "azureProfile.json").write_text(json.dumps(profile), encoding="utf-8-sig")
    (folder / "config").write_text(CONFIG)
    (folder / "config").chmod(0o600)


def find_az(given: str | None) -> Path:
    """``--az``, else ``$CREDGUARD_TEST_AZ``, else ``az`` on PATH; exit if none runs."""
    name = given or os.environ.get("CREDGUARD_TEST_AZ") or shutil.which("az")
    if not name or not os.access(name, os.X_OK) or Path(name).is_dir():
        raise SystemExit(
            f"no az executable ({name or 'none on PATH'}): give --az PATH, or run ./tests/run "
            "once (it installs one) and set CREDGUARD_TEST_AZ"
        )
    return Path(name).absolute()


def bench_env(s: Session, az: Path) -> dict[str, str]:
    """The session's environment, az kept offline, and PATH led by a directory holding only an
    ``az`` symlink (``credguard az`` runs the az on PATH; az's venv bin would bring its python)."""
    bin_dir = s.root / "az-bin"
    bin_dir.mkdir()
    (bin_dir / "az").symlink_to(az)
    env = s.env(NAME) | OFFLINE_ENV
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', os.defpath)}"
    return env


def seal(s: Session, env: Mapping[str, str], folder: Path) -> None:
    """``credguard seal azure-cli`` on ``folder``; exit 1 unless it took the plaintext away."""
    cmd, env = [s.exe, "seal", "azure-cli", "--json"], {**env, "AZURE_CONFIG_DIR": str(folder)}
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"FAIL: `credguard seal azure-cli` exited {proc.returncode}: "
                         f"{(proc.stderr or proc.stdout).strip()[:600]}")  # fmt: skip
    if (folder / CACHE).exists():
        raise SystemExit(f"FAIL: `credguard seal azure-cli` left {folder / CACHE}")


def check_runs(samples: Samples, want: bytes) -> None:
    """Every run exited 0 and printed the JSON ``want`` holds (plain ``az version``'s)."""
    doc = json.loads(want)
    for key, runs in samples.items():
        for run in runs:
            if run.returncode != 0 or json.loads(run.stdout or b"null") != doc:
                raise SystemExit(f"FAIL: {key}: exit {run.returncode}, output {run.stdout[:300]!r}")


def bench(s: Session, az: Path, runs: int) -> tuple[Samples, dict[str, Any]]:
    """Set both config dirs up, seal one, check one run of each, then time them alternately."""
    env, tenant = bench_env(s, az), str(uuid.uuid4())
    plain, sealed = s.root / "plain-azure", s.root / "sealed-azure"
    cache = msal_cache(tenant)
    write_config_dir(plain, cache, tenant)
    write_config_dir(sealed, cache, tenant)
    seal(s, env, sealed)
    cmds = {
        "az": ["env", f"AZURE_CONFIG_DIR={plain}", str(s.root / "az-bin" / "az"), "version"],
        "credguard az": ["env", f"AZURE_CONFIG_DIR={sealed}", s.exe, "az", "version"],
    }
    first = {k: [common.run_once(c, env)] for k, c in cmds.items()}  # also a warm-up
    want = first["az"][0].stdout
    check_runs(first, want)
    print(f"az: {runs} runs of each, alternating", file=sys.stderr)
    samples = common.interleave(cmds, runs, env)
    check_runs(samples, want)
    if (sealed / CACHE).exists() or not (plain / CACHE).exists():
        raise SystemExit("FAIL: a plaintext token cache appeared in the sealed dir (or went)")
    return samples, json.loads(want)


HEADERS = ["", "count", "median (ms)", "p95 (ms)", "min-max (ms)", "peak RSS (MB)"]
TEMPLATE = """\
## az: `credguard az version` against plain `az version`

`python -m benchmarks.az --runs {runs}`. {facts}.

{table}

{over_table}

- `credguard az` adds **{over} ms** (median of `credguard az version` - median of `az
  version`) to a {az_ms} ms az command: {ratio:.2f} times its time.

Notes: the real Azure CLI {azv} from PyPI in its own venv, offline, telemetry off. Baseline: `az
version` with AZURE_CONFIG_DIR a plaintext config dir holding an MSAL token cache (one user's
access, refresh and ID tokens, built with msal {msal}), azureProfile.json (one subscription) and
config; measured: `credguard az version` on a second dir with the same content after `credguard
seal azure-cli` (the cache in the vault, its key in a real gnome-keyring {gk} on a private
`dbus-daemon`; temporary HOME and XDG dirs, XDG_RUNTIME_DIR on tmpfs; config dirs on {fs}).
`credguard az` finds az on PATH, through a directory holding only an `az` symlink. Both run
under `env AZURE_CONFIG_DIR=…`, alternating (order reversed every other round) after an untimed,
checked run of each; wall time runs from spawn to reap, with about 1 ms for the `/bin/sh` that
launches each command; peak RSS is the largest process of each command's tree (for `credguard
az`, credguard or its az child). Checked: every run exited 0 and printed the JSON plain `az
version` prints, and the sealed dir held no plaintext token cache afterwards.
"""


def render(samples: Samples, version: Mapping[str, Any], args: Any, facts: Any) -> str:
    """The section for ``docs/benchmarks.md``."""
    walls = {k: [x.wall for x in v] for k, v in samples.items()}
    peak = {k: f"{max(x.maxrss_mb for x in v):.1f}" for k, v in samples.items()}
    labels = {"az": "`az version` (plaintext config dir)",
              "credguard az": "`credguard az version` (sealed config dir)"}  # fmt: skip
    table = common.markdown_table(HEADERS, [stat_row(labels[k], walls[k], peak[k]) for k in labels])
    base, cg = common.median(walls["az"]), common.median(walls["credguard az"])
    over_rows = [
        ["`az version`", ms(base), "1.00"],
        ["`credguard az version`", ms(cg), f"{cg / base:.2f}"],
        ["overhead: the difference of the medians", ms(cg - base), f"{cg / base - 1:+.2f}"],
    ]
    over_table = common.markdown_table(["", "median (ms)", "ratio to `az version`"], over_rows)
    return TEMPLATE.format(
        runs=args.runs, facts=common.facts_line(facts), table=table, over_table=over_table,
        over=ms(cg - base), az_ms=ms(base), ratio=cg / base, azv=version.get("azure-cli", "?"),
        msal=facts["msal"], gk=facts["gnome-keyring"], fs=facts["file system"],
    )  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (``sys.argv[1:]`` if ``argv`` is None)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.az", description=NAME + " benchmark")
    p.add_argument("--az", metavar="PATH",
                   help="the az to run (default: $CREDGUARD_TEST_AZ, else az on PATH)")  # fmt: skip
    p.add_argument("--runs", type=int, default=10, help="timed runs of each command (10)")
    p.add_argument("--no-write", action="store_true", help="print only; leave the docs alone")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Start the Secret Service, seal, run and check everything, print and write the section."""
    args = parse_args(argv)
    az = find_az(args.az)
    with common.exit_on_sigterm(), secret_service() as session:
        samples, version = bench(session, az, args.runs)
        facts = common.machine_facts(session.root)
    gk = subprocess.run(["gnome-keyring-daemon", "--version"], capture_output=True, text=True)
    facts |= {"gnome-keyring": gk.stdout.split()[1], "azure-cli": str(version.get("azure-cli"))}
    facts["msal"] = metadata.version("msal")
    git = ["git", "-C", str(common.REPO), "describe", "--always", "--dirty"]
    facts["commit"] = subprocess.run(git, capture_output=True, text=True).stdout.strip() or "?"
    common.publish(NAME, render(samples, version, args, facts), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
