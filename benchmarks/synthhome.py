"""A synthetic developer home for benchmarks: planned deterministically, built once, reused.

Exactly the requested numbers of files (0-4 KiB) and directories, shaped like a real home
(projects with ``.git``, ``node_modules`` and a virtualenv; caches, configuration, documents…),
plus the credentials and benign look-alikes of ``synthdata.PLANTS``; same arguments, same bytes.
:func:`build` returns the :class:`Plan` of a tree ready at ``WORK/home``; the plan says what a
scanner must report there (``credentials``, not ``decoys``) and what a name-only ``find`` lists
(``find_hits``). :func:`make_plan` plans without writing; :func:`write_plants` re-plants.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from benchmarks import synthdata as data
from benchmarks.synthdata import Plant, Profile
from credguard.fs import safe

GENERATOR = 1  # bump whenever the tree's shape changes, so old trees are rebuilt


# -- the plan: every directory and file of the tree, decided before anything is written ------


class PlannedFile(NamedTuple):
    """One file of the plan."""

    path: str  # relative to the tree's root, "/"-separated
    size: int
    style: str  # how to make its bytes: a pool name, "bin:MAGIC", "fixed" or "plant"
    offset: int = 0  # where in its pool its bytes start


@dataclass
class Plan:
    """Directories (parents first) and files of the tree at ``root``, with unique names per
    directory, and the planted credentials among the files."""

    root: Path
    dirs: list[str] = field(default_factory=list)  # relative, "/"-separated; root excluded
    files: list[PlannedFile] = field(default_factory=list)  # planted ones included
    fixed: dict[str, bytes] = field(default_factory=dict)  # contents of "fixed" files
    plants: list[Plant] = field(default_factory=list)
    children: dict[str, set[str]] = field(default_factory=lambda: {"": set()})
    built: bool = False  # set by build(): True if it (re)wrote the tree, False if reused

    @property
    def credentials(self) -> dict[str, str]:
        """The planted credentials a scanner must report: relative path → finding kind."""
        return {p.path: p.kind for p in self.plants if p.kind is not None}

    @property
    def decoys(self) -> list[str]:
        """Relative paths of the benign look-alikes, which must not be reported."""
        return [p.path for p in self.plants if p.kind is None]

    @property
    def find_hits(self) -> set[str]:
        """Relative paths a name-only search (``find -iname …``) lists: the planted files
        visible by name, decoys included."""
        return {p.path for p in self.plants if p.by_name}

    def unique(self, parent: str, name: str) -> str:
        """``name``, or ``stem-2.ext``, ``stem-3.ext``… if ``parent`` already has it."""
        taken = self.children[parent]
        candidate, k = name, 2
        stem, ext = os.path.splitext(name)
        while candidate in taken:
            candidate, k = f"{stem}-{k}{ext}", k + 1
        taken.add(candidate)
        return candidate

    def add_dir(self, parent: str, name: str) -> str:
        """Plan directory ``name`` (made unique) in ``parent``; return its path."""
        path = _join(parent, self.unique(parent, name))
        self.dirs.append(path)
        self.children[path] = set()
        return path

    def add_file(self, parent: str, name: str, size: int, style: str, offset: int = 0) -> str:
        """Plan file ``name`` (made unique) in ``parent``; return its path."""
        path = _join(parent, self.unique(parent, name))
        self.files.append(PlannedFile(path, size, style, offset))
        return path

    def add_fixed(self, parent: str, name: str, content: bytes) -> str:
        """Plan a file with the given bytes; return its path."""
        path = self.add_file(parent, name, len(content), "fixed")
        self.fixed[path] = content
        return path


def _join(parent: str, name: str) -> str:
    """``parent/name``, where either may be empty (the root, or no further component)."""
    return "/".join(p for p in (parent, name) if p)


def _split(path: str) -> tuple[str, str]:
    """(parent, name) of a relative path; the parent of a top-level entry is ``""``."""
    parent, _, name = path.rpartition("/")
    return parent, name


@dataclass
class Builder:
    """Plans one tree: a seeded random source and the plan it fills."""

    rng: random.Random
    plan: Plan

    def size(self, style: str) -> int:
        """0-4 KiB, mostly small (text), or 256 B-4 KiB (binary)."""
        if style.startswith("bin"):
            return self.rng.randint(256, data.MAX_SIZE)
        if self.rng.random() < 0.03:
            return 0
        return min(data.MAX_SIZE, int(self.rng.expovariate(1 / 1400)) + 1)

    def add_random(self, parent: str, name: str, style: str = "text") -> None:
        """Plan a file of ``style`` with a random size and a random offset into its pool."""
        self.plan.add_file(parent, name, self.size(style), style, self.rng.randrange(8192))

    def file_name(self, profile: Profile, ext: str) -> str:
        """A plausible name: ``stem``, ``stem_word`` or ``stem_0042`` plus ``ext``; without an
        extension, a hash (caches) or a conventional bare name (Makefile, LICENSE…)."""
        rng = self.rng
        if not ext:
            if profile.hex_bare:
                return f"{rng.getrandbits(80):020x}"
            return rng.choice(data.BARE_NAMES)
        stem = rng.choice(profile.stems)
        roll = rng.random()
        if roll < 0.35:
            stem = f"{stem}_{rng.choice(data.WORDS)}"
        elif roll < 0.7:
            stem = f"{stem}_{rng.randint(1, 9999):04d}"
        return stem + ext

    def random_file(self, parent: str, profile: Profile, ext: str) -> None:
        """Plan one file with extension ``ext`` in ``parent``, its content style and size."""
        name = self.file_name(profile, ext)
        style = data.STYLE_BY_EXT.get(ext, "bin:" if profile.hex_bare and not ext else "text")
        self.add_random(parent, name, style)

    def grow(
        self,
        base: str,
        n_dirs: int,
        n_files: int,
        profile: Profile,
        top: int = 0,
        seed_files: Sequence[str] = (),
    ) -> None:
        """Add ``n_dirs`` directories and ``n_files`` files under ``base``: ``top`` package-like
        first-level directories (each given ``seed_files`` first), the rest a random tree."""
        rng = self.rng
        tops = [
            self.plan.add_dir(base, rng.choice(profile.top_words or profile.dir_words))
            for _ in range(min(top, n_dirs))
        ]
        depth = dict.fromkeys(tops, 1)
        depth.setdefault(base, 0)
        attach = tops or [base]
        for _ in range(n_dirs - len(tops)):
            parent = rng.choice(attach)
            child = self.plan.add_dir(parent, rng.choice(profile.dir_words))
            depth[child] = depth[parent] + 1
            if depth[child] < profile.max_depth:
                attach.append(child)
        left = n_files
        for top_dir in tops:
            for name in seed_files[:left]:
                self.add_random(top_dir, name)
            left -= min(left, len(seed_files))
        homes = [d for d in depth if d != base] if tops else list(depth)
        exts, weights = list(profile.exts), list(profile.exts.values())
        picks = zip(rng.choices(homes, k=left), rng.choices(exts, weights, k=left), strict=True)
        for parent, ext in picks:
            self.random_file(parent, profile, ext)


# -- the special subtrees: pruned by credguard, walked by find -------------------------------


def build_git(b: Builder, project: str, n_dirs: int, n_files: int) -> None:
    """``project/.git`` with the usual skeleton and loose objects in up to 256 fan-out dirs."""
    git = b.plan.add_dir(project, ".git")
    for rel in data.GIT_DIRS:
        b.plan.add_dir(*_split(f"{git}/{rel}"))
    for rel in data.GIT_FILES:
        b.add_random(*_split(f"{git}/{rel}"))
    pack = f"pack-{b.rng.getrandbits(160):040x}"
    for ext in (".idx", ".pack"):
        b.plan.add_file(f"{git}/objects/pack", pack + ext, b.size("bin:"), "bin:")
    fan = sorted(b.rng.sample(range(256), max(1, min(256, n_dirs - 1 - len(data.GIT_DIRS)))))
    fan_dirs = [b.plan.add_dir(f"{git}/objects", f"{i:02x}") for i in fan]
    for _ in range(max(0, n_files - len(data.GIT_FILES) - 2)):
        name = f"{b.rng.getrandbits(152):038x}"
        b.add_random(b.rng.choice(fan_dirs), name, "bin:")


def build_node_modules(b: Builder, project: str, n_dirs: int, n_files: int) -> None:
    """``project/node_modules``: many shallow packages, a few under ``@scope`` dirs."""
    nm = b.plan.add_dir(project, "node_modules")
    b.plan.add_fixed(nm, ".package-lock.json", b'{\n  "lockfileVersion": 3\n}\n')
    scoped = [b.plan.add_dir(nm, s) for s in data.NODE_SCOPES]
    for scope in scoped:
        b.grow(scope, 3, 12, data.NODE, top=3, seed_files=data.NODE_SEEDS)
    used_dirs, used_files = 1 + len(scoped) * 4, 1 + len(scoped) * 12
    rest = max(1, n_dirs - used_dirs)
    b.grow(nm, rest, max(1, n_files - used_files), data.NODE, rest // 3, data.NODE_SEEDS)


def build_venv(b: Builder, project: str, n_dirs: int, n_files: int) -> None:
    """``project/.venv``: ``pyvenv.cfg``, ``bin/`` and a populated ``site-packages``."""
    venv = b.plan.add_dir(project, ".venv")
    b.plan.add_fixed(venv, "pyvenv.cfg", data.PYVENV_CFG)
    b.plan.add_fixed(venv, ".gitignore", b"*\n")
    bindir = b.plan.add_dir(venv, "bin")
    b.plan.add_dir(venv, "include")
    py = b.plan.add_dir(b.plan.add_dir(venv, "lib"), "python3.11")
    site = b.plan.add_dir(py, "site-packages")
    for name in data.VENV_BIN:
        b.add_random(bindir, name)
    n_info = min(len(data.PYPI_NAMES), max(1, n_dirs // 10))
    for pkg in data.PYPI_NAMES[:n_info]:
        dist = f"{pkg}-{b.rng.randint(1, 9)}.{b.rng.randint(0, 30)}.0.dist-info"
        info = b.plan.add_dir(site, dist)
        for name in data.DIST_INFO:
            b.add_random(info, name)
    rest = n_dirs - 6 - n_info  # after .venv, bin, include, lib, python3.11, site-packages
    files = max(1, n_files - 2 - len(data.VENV_BIN) - len(data.DIST_INFO) * n_info)
    b.grow(site, max(1, rest), files, data.SITE, max(1, rest // 4), ("__init__.py",))


# -- the whole plan -------------------------------------------------------------------------


def plan_skeleton(b: Builder) -> None:
    """The home directory's usual top-level folders and dotfiles."""
    for rel in data.SKELETON_DIRS:
        b.plan.add_dir(*_split(rel))
    for rel in data.SKELETON_FILES:
        b.add_random(*_split(rel))


def plan_plants(b: Builder) -> None:
    """Reserve the planted files (credentials and benign look-alikes), written later."""
    for plant in data.PLANTS:
        b.plan.add_file(*_split(plant.path), 0, "plant")
        b.plan.plants.append(plant)


def plan_projects(b: Builder, count: int) -> list[tuple[str, Profile]]:
    """``src/NAME`` roots with their usual top-level files; returns each with its profile."""
    names, projects = data.PROJECT_NAMES, []
    for i in range(count):
        base = names[i % len(names)]
        name = base if i < len(names) else f"{base}-{i // len(names) + 1}"
        lang, profile = data.LANGS[i % len(data.LANGS)]
        root = b.plan.add_dir("src", name)
        for fname in ("README.md", "LICENSE", ".gitignore", "Makefile", *data.MANIFESTS[lang]):
            b.add_random(root, fname, data.STYLE_BY_EXT.get(os.path.splitext(fname)[1], "text"))
        projects.append((root, profile))
    b.plan.add_dir(b.plan.add_dir("src/contoso-web", "Properties"), "PublishProfiles")
    return projects


def plan_pruned(b: Builder, projects: list[tuple[str, Profile]], files: int, dirs: int) -> None:
    """The subtrees credguard prunes: several ``.git`` dirs, one ``node_modules``, one venv."""

    def budget(share: tuple[float, float], ways: int = 1) -> tuple[int, int]:
        """(dirs, files) of one subtree, given its (files, dirs) shares split ``ways`` ways."""
        return round(dirs * share[1] / ways), round(files * share[0] / ways)

    by_name = {p.rsplit("/", 1)[1]: p for p, _ in projects}
    build_node_modules(b, by_name["webshop"], *budget(data.NODE_SHARE))
    build_venv(b, by_name["toolbox"], *budget(data.VENV_SHARE))
    repos = projects[::4]
    for root, _ in repos:
        build_git(b, root, *budget(data.GIT_SHARE, len(repos)))


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainders)."""
    scale = total / sum(weights)
    raw = [w * scale for w in weights]
    parts = [int(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: parts[i] - raw[i])
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def plan_regions(b: Builder, projects: list[tuple[str, Profile]], files: int, dirs: int) -> None:
    """Spend the remaining budget on the ordinary regions and the project trees."""
    regions = data.REGIONS
    files_left, dirs_left = files - len(b.plan.files), dirs - len(b.plan.dirs)
    if files_left < 10 * len(regions) or dirs_left < 2 * len(regions):
        raise SystemExit(f"--files {files} / --dirs {dirs} too small for the tree's skeleton")
    file_parts = apportion(files_left, [r[2] for r in regions])
    dir_parts = apportion(dirs_left, [r[3] for r in regions])
    for (base, profile, _, _), nf, nd in zip(regions, file_parts, dir_parts, strict=True):
        if profile is not None:
            b.grow(base, nd, nf, profile)
            continue
        weights = [b.rng.uniform(0.3, 2.0) for _ in projects]
        parts = zip(projects, apportion(nf, weights), apportion(nd, weights), strict=True)
        for (root, prof), pf, pd in parts:
            b.grow(root, pd, pf, prof)


def make_plan(root: Path, files: int, dirs: int, seed: int) -> Plan:
    """The whole tree at ``root``: exactly ``files`` files (planted ones included) in exactly
    ``dirs`` directories below the root. Deterministic for given arguments; writes nothing."""
    b = Builder(random.Random(seed), Plan(root))
    plan_skeleton(b)
    projects = plan_projects(b, max(len(data.LANGS) * 2, dirs // 500))
    plan_plants(b)
    plan_pruned(b, projects, files, dirs)
    plan_regions(b, projects, files, dirs)
    assert len(b.plan.files) == files and len(b.plan.dirs) == dirs, "plan miscounted"
    return b.plan


# -- writing the tree -----------------------------------------------------------------------


def write_plants(plan: Plan) -> None:
    """(Re)write the planted files (mode 0600), so payload changes apply to a reused tree."""
    payloads = data.load_payloads()
    for plant in plan.plants:
        path = plan.root / plant.path
        path.write_bytes(payloads[plant.path])
        path.chmod(0o600)


def materialize(plan: Plan, seed: int) -> None:
    """Create every planned directory and file (planted ones empty, see :func:`write_plants`)."""
    pools = data.make_pools(seed)
    root = plan.root
    root.mkdir(parents=True)
    for d in plan.dirs:
        (root / d).mkdir()
    flags = safe.NEW_FILE
    for f in plan.files:
        if f.style == "fixed":
            blob = plan.fixed[f.path]
        else:
            blob = b"" if f.style == "plant" else data.content(f.style, f.offset, f.size, pools)
        fd = os.open(root / f.path, flags, 0o644)
        try:
            os.write(fd, blob)
        finally:
            os.close(fd)


def count_tree(root: Path) -> tuple[int, int]:
    """(files, directories) below ``root``, not following symlinks."""
    files = dirs = 0
    for _, dirnames, filenames in os.walk(root):
        dirs += len(dirnames)
        files += len(filenames)
    return files, dirs


def build(work: Path, files: int, dirs: int, seed: int) -> Plan:
    """The tree for these arguments at ``work/home``, planted files (re)written.

    Reused if ``work/build.json`` says it was completely built with the same arguments and
    :data:`GENERATOR`, else (re)built (``Plan.built`` tells which). Refuses (``SystemExit``) to
    delete a ``work/home`` it did not build, or if the budgets are too small for the skeleton.
    """
    marker = work / "build.json"
    plan = make_plan(work / "home", files, dirs, seed)
    params = {"generator": GENERATOR, "files": files, "dirs": dirs, "seed": seed}
    try:
        old = json.loads(marker.read_text())
    except (FileNotFoundError, ValueError):
        old = None
    root = plan.root
    if old != {**params, "complete": True} or not root.is_dir():
        if old is None and root.exists():
            raise SystemExit(f"{root} exists but was not built by this benchmark; not touching it")
        work.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({**params, "complete": False}))
        if root.exists():
            shutil.rmtree(root)
        materialize(plan, seed)
        counted = count_tree(root)
        if counted != (files, dirs):
            raise SystemExit(f"built tree has {counted} (files, dirs), planned {(files, dirs)}")
        marker.write_text(json.dumps({**params, "complete": True}))
        plan.built = True
    write_plants(plan)
    return plan
