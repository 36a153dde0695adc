"""A stand-in for a program that uses a sealed Azure tool cache (an SDK script, or a tool that
cannot run here such as Azure PowerShell): run as ``python az_child.py ACTION [ARG]...``, with
several actions chained by ``+``. The real Azure CLI is tested separately (test_azcache_real_az).

Actions, against ``$AZURE_CONFIG_DIR`` (``CHILD_DIR_VAR``/``CHILD_CACHE`` name another tool's
variable and cache file):
``report`` prints what the program sees, as JSON; ``login`` adds a new account to the MSAL
cache (msal's own SerializableTokenCache); ``logout-all`` empties it; ``config SECTION KEY
VALUE`` sets a value in ``config``; ``wait PATH`` waits until PATH exists; ``touch PATH``
creates PATH; ``partial`` leaves a half-written cache and kills itself with SIGKILL;
``write REL TEXT`` writes a file; ``exit N`` exits with status N.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import time
from pathlib import Path

from helpers import msalcache

CACHE = "msal_token_cache.json"


def config_dir() -> Path:
    return Path(os.environ[os.environ.get("CHILD_DIR_VAR", "AZURE_CONFIG_DIR")])


def cache_path() -> Path:
    return config_dir() / os.environ.get("CHILD_CACHE", CACHE)


def fs_type(path: Path) -> str:
    best, kind = "", ""
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            parts = line.split()
            point = parts[1].replace("\\040", " ")
            if (str(path) + "/").startswith(point.rstrip("/") + "/") and len(point) > len(best):
                best, kind = point, parts[2]
    return kind


def report() -> None:
    root = config_dir()
    listing = {}
    for current, dirs, files in os.walk(root):
        for name in dirs + files:
            full = Path(current, name)
            st = os.lstat(full)
            rel = str(full.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                listing[rel] = "link:" + os.readlink(full)
            else:
                listing[rel] = oct(stat.S_IMODE(st.st_mode))
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("AZURE_", "AZD_", "CREDGUARD_", "HOME", "XDG_DATA_HOME"))}
    print(json.dumps({"dir": str(root), "fs": fs_type(root), "listing": listing, "env": env,
                      "dir_mode": oct(stat.S_IMODE(os.stat(root).st_mode))}))


def main(argv: list[str]) -> int:
    actions: list[list[str]] = [[]]
    for arg in argv:
        if arg == "+":
            actions.append([])
        else:
            actions[-1].append(arg)
    for action, *args in actions:
        if action == "report":
            report()
        elif action == "login":
            cache = msalcache.cache_of(cache_path().read_bytes() if cache_path().exists() else None)
            user = msalcache.new_user()
            msalcache.login(cache, user)
            cache_path().write_text(cache.serialize())
            print(json.dumps({"login": user.home_account_id}))
        elif action == "logout-all":
            cache_path().write_text("{}")
        elif action == "config":
            section, key, value = args
            path = config_dir() / "config"
            text = path.read_text() if path.exists() else ""
            path.write_text(text + f"\n[{section}]\n{key} = {value}\n")
        elif action == "wait":
            deadline = time.monotonic() + 30
            while not Path(args[0]).exists():
                if time.monotonic() > deadline:
                    return 3
                time.sleep(0.02)
        elif action == "touch":
            Path(args[0]).touch()
        elif action == "write":
            (config_dir() / args[0]).write_text(args[1])
        elif action == "partial":
            data = cache_path().read_bytes()
            cache_path().write_bytes(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        elif action == "exit":
            return int(args[0])
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
