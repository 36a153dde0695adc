"""POSIX-only names in credguard (issue 19, item 5): the modules Windows lacks (``fcntl``,
``termios``, ``pwd``, ``grp``, ``resource``), the ``os``/``socket``/``signal`` names it lacks, and
an ``os`` function's ``dir_fd=`` (which Windows' ``os`` does not support; :mod:`credguard.fs.at`
takes it everywhere) may be used only inside a per-OS module or guarded (an import in
``try``/``except ImportError``; ``getattr(os, NAME, default)``). Issue 19's port moved the last
of them behind their dispatchers; a new unguarded use fails here.

A static check on the source (``ast``), so it runs on Linux and sees every branch.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from helpers.home import REPO

PACKAGE = REPO / "credguard"
MODULES = frozenset({"fcntl", "termios", "pwd", "grp", "resource"})
NAMES = frozenset({
    ("os", "getuid"), ("os", "geteuid"), ("os", "getgid"), ("os", "getegid"), ("os", "fchmod"),
    ("os", "fchown"), ("os", "O_NOFOLLOW"), ("os", "O_DIRECTORY"), ("os", "killpg"),
    ("os", "getpgid"), ("os", "setsid"), ("os", "mkfifo"), ("os", "statvfs"),
    ("os", "fstatvfs"), ("os", "pread"), ("os", "pwrite"), ("socket", "AF_UNIX"),
    ("signal", "SIGHUP"), ("signal", "SIGKILL"),
})
# the per-OS modules: written for one system, where these names exist
PER_OS = frozenset({"service/launchd.py", "service/systemd.py", "service/background.py",
                    "fs/at.py", "fs/win32.py", "control/channel.py"})


def _guarded_imports(tree: ast.AST) -> set[ast.AST]:
    """Import nodes inside a ``try`` whose handlers catch ImportError (or a parent of it)."""
    found: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(name, ast.Name) and name.id in ("ImportError", "ModuleNotFoundError",
                                                           "Exception")
                for h in node.handlers
                for name in (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type])):
            for inner in node.body:
                found |= {n for n in ast.walk(inner) if isinstance(n, ast.Import | ast.ImportFrom)}
    return found


def uses(path: Path) -> Counter[str]:
    tree = ast.parse(path.read_text(), str(path))
    guarded = _guarded_imports(tree)
    found: Counter[str] = Counter()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and node not in guarded:
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""])
            found.update(f"import {m}" for m in modules if m.split(".")[0] in MODULES)
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and (node.value.id, node.attr) in NAMES):
            found[f"{node.value.id}.{node.attr}"] += 1
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and isinstance(node.func.value, ast.Name) and node.func.value.id == "os"
              and any(k.arg in ("dir_fd", "src_dir_fd", "dst_dir_fd") for k in node.keywords)):
            found["dir_fd="] += 1  # os's: credguard.fs.at's take dir_fd on every system
    return found


def unguarded() -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module in PER_OS:
            continue
        for name, count in uses(path).items():
            found[(module, name)] = count
    return found


def test_no_unguarded_posix_name() -> None:
    found = unguarded()
    assert not found, ("POSIX-only names used outside a per-OS module, unguarded (move them "
                       f"behind the concern's dispatcher, or guard them): {found}")


def test_the_check_sees_what_it_looks_for(tmp_path: Path) -> None:
    """An unguarded import, name and dir_fd are found; a guarded import and getattr are not."""
    source = tmp_path / "m.py"
    source.write_text(
        "import os, fcntl\n"
        "try:\n    import pwd\nexcept ImportError:\n    pwd = None\n"
        "os.open('x', os.O_NOFOLLOW, dir_fd=3)\n"
        "flag = getattr(os, 'O_DIRECTORY', 0)\n")
    assert uses(source) == Counter({"import fcntl": 1, "os.O_NOFOLLOW": 1, "dir_fd=": 1})
