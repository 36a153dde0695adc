"""Running the recipes of docs/recipes.md as printed (tests/recipes): the ``sh`` block under a
heading, its example id replaced by a real vault item's, run by ``sh -c`` under strace, which
records the command line of every process the recipe starts; and what a test needs to hand the
real Azure CLI a sign-in without the network.

Checks compare digests and report where a secret showed, never the secret.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from helpers import azlogin, msalcache
from helpers.home import REPO, Home, Run
from helpers.payloads import Payload

RECIPES = REPO / "docs" / "recipes.md"
EXAMPLE_ID = "615ffc"  # the item id the recipes show
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$")


def recipe(title: str, nth: int = 0) -> str:
    """The ``nth`` ``sh`` block under the heading ``title`` (up to the next heading)."""
    blocks: list[str] = []
    fenced: list[str] | None = None  # the lines of the fenced block being read
    shell = in_section = False
    for line in RECIPES.read_text().splitlines():
        if fenced is not None:
            if line.startswith("```"):
                if shell and in_section:
                    blocks.append("\n".join(fenced))
                fenced = None
            else:
                fenced.append(line)
        elif line.startswith("```"):
            fenced, shell = [], line == "```sh"
        elif (m := _HEADING.match(line)) is not None:
            if in_section:
                break
            in_section = m.group(1) == title
    assert len(blocks) > nth, f"docs/recipes.md has no sh block {nth} under {title!r}"
    return blocks[nth]


@dataclass
class Ran:
    """A recipe's exit code and output, and ``trace``: strace's record of every ``execve``
    (each process's command line; environments are not recorded)."""

    code: int
    out: str
    err: str
    trace: str

    def leaks(self, *values: str) -> list[str]:
        """Where any of ``values`` showed: "a command line", "stdout", "stderr" (names only)."""
        places = (("a command line", self.trace), ("stdout", self.out), ("stderr", self.err))
        return [name for name, text in places if any(v and v in text for v in values)]

    def argv_words(self, program: str) -> list[str]:
        """The words of the command lines that started ``program`` (by file name). strace may
        split an ``execve`` whose result comes later ("unfinished"): an attempt on a path that
        exists is taken as the one that ran (the others of a PATH search are ENOENT)."""
        words: list[str] = []
        for line in self.trace.splitlines():
            m = re.match(r'^\d+\s+execve\("([^"]*/' + re.escape(program) + r')", \[(.*?)\], ',
                         line)
            if m and "= -1 " not in line and Path(m.group(1)).exists():
                words += [json.loads(f'"{w}"')
                          for w in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2))]
        return words


def vaulted(cli: Callable[..., Run], home: Home, payload: Payload,
            name: str = "contoso-app.PublishSettings") -> str:
    """``payload`` imported into the vault (in-process, as ``credguard import``): its id."""
    run = cli("import", "--json", str(home.write(f"Downloads/{name}", payload.data)))
    assert run.code == 0, run.err
    return str(json.loads(run.out)["imported"][0]["id"])


def credguard_bin(where: Path) -> Path:
    """A directory holding only ``credguard`` (this venv's), for the front of PATH: the
    recipes call it by name."""
    where.mkdir(parents=True, exist_ok=True)
    link = where / "credguard"
    if not link.exists():
        link.symlink_to(Path(sys.executable).parent / "credguard")
    return where


def run_recipe(script: str, item: str, env: dict[str, str], cwd: Path, trace: Path,
               timeout: float = 90) -> Ran:
    """``sh -c SCRIPT`` with the example id replaced by ``item``, under strace (``execve``
    only, through seccomp: the rest runs at full speed)."""
    assert script.count(EXAMPLE_ID) == 1, "a recipe names the item once"
    strace = ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=execve", "-s", "1000000",
              "-o", str(trace)]
    proc = subprocess.run([*strace, "sh", "-c", script.replace(EXAMPLE_ID, item)], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    return Ran(proc.returncode, proc.stdout, proc.stderr, trace.read_text())


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


# ---- a sign-in for the real Azure CLI, without the network ---------------------------------

VAULT_SCOPE = "https://vault.azure.net/.default"


@dataclass(frozen=True, repr=False)
class AzSignIn:
    tenant: str
    access_token: str

    def __repr__(self) -> str:  # what `pytest -l` shows: no token
        return f"AzSignIn({self.tenant}, sha256:{sha(self.access_token)[:12]})"


def az_signed_in(azure_dir: Path) -> AzSignIn:
    """``azure_dir`` as ``az login`` leaves it for a user who then used Key Vault: a profile
    naming their subscription, an MSAL cache holding an access token for Key Vault, and msal's
    discovery cache."""
    import msal  # the test extra's, the version az 2.91.0 pins (the pickle names its classes)

    user = msalcache.new_user()
    cache = msal.SerializableTokenCache()
    access, _refresh = azlogin.sign_in(cache, user, [VAULT_SCOPE])
    subscription = {"id": str(uuid.uuid4()), "name": "Recipes", "state": "Enabled",
                    "isDefault": True, "user": {"name": user.username, "type": "user"},
                    "tenantId": user.tenant, "environmentName": "AzureCloud"}
    azure_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, data in (
        ("azureProfile.json", json.dumps({"installationId": str(uuid.uuid4()),
                                          "subscriptions": [subscription]}).encode()),
        ("msal_token_cache.json", cache.serialize().encode()),
        ("msal_http_cache.bin", azlogin.msal_http_cache(user.tenant)),
    ):
        path = azure_dir / name
        path.write_bytes(data)
        os.chmod(path, 0o600)
    return AzSignIn(user.tenant, access)
