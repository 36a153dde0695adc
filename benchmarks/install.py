"""A non-editable install of the working tree, as a user gets credguard, with no network (for
:mod:`benchmarks.startup`): a wheel of a copy of the checkout (``pip wheel --no-deps``),
installed with ``pip install --no-deps --no-index`` into a fresh ``python -m venv``; the runtime
dependencies (credguard's requirements and theirs, markers evaluated) copied, file by file as
their ``RECORD`` lists them, from the distributions pip installed in the running venv; then
``python -m compileall``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from benchmarks import common

SOURCES = ("pyproject.toml", "README.md", "credguard")  # what the wheel is built from


def run(cmd: Sequence[str], what: str) -> None:
    """Run a build step; exit 1 with its output if it fails."""
    proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"FAIL: {what}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")


def build_wheel(work: Path) -> Path:
    """A wheel of the working tree (uncommitted changes included), built from a copy so that the
    checkout gains no ``build/`` or ``egg-info``. Without build isolation first (offline, if
    this Python's setuptools can build the project); else with pip's own, which takes setuptools
    from pip's cache or configured index."""
    src, out = work / "src", work / "wheels"
    for name in SOURCES:
        item = common.REPO / name
        if item.is_dir():
            shutil.copytree(item, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item, src / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(src)]
    isolated = subprocess.run([*pip[:5], "--no-build-isolation", *pip[5:]], capture_output=True,
                              check=False).returncode == 0
    if not isolated:
        run(pip, "pip wheel of the checkout")
    (wheel,) = out.glob("credguard-*.whl")
    return wheel


def runtime_closure() -> list[metadata.Distribution]:
    """credguard's runtime dependencies and theirs, as installed here (no extras)."""
    found: dict[str, metadata.Distribution] = {}
    todo = [str(r) for r in metadata.requires("credguard") or []]
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        dist = metadata.distribution(req.name)
        key = dist.metadata["Name"].lower().replace("_", "-").replace(".", "-")
        if key not in found:
            found[key] = dist
            todo += dist.requires or []
    return list(found.values())


def copy_installed(dist: metadata.Distribution, site: Path) -> None:
    """The files pip installed for ``dist`` into site-packages (no scripts, no byte-code)."""
    for file in dist.files or []:
        if file.parts[0] == ".." or "__pycache__" in file.parts:
            continue
        target = site / file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file.locate(), target)


def build_venv(work: Path) -> Path:
    """The fresh venv (see the module's docstring); its ``bin`` directory."""
    venv = work / "venv"
    wheel = build_wheel(work)
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], "python -m venv")
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         "--no-index", str(wheel)], "pip install of the wheel")
    (site,) = (venv / "lib").glob("python3*/site-packages")
    for dist in runtime_closure():
        copy_installed(dist, site)
    run([str(python), "-m", "compileall", "-q", str(site)], "compileall")
    return venv / "bin"
