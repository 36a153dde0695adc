"""What :mod:`benchmarks.synthhome`'s trees are made of: names, file-type profiles, the pools
file contents are cut from, the fixed skeleton of a home directory, and the credentials planted
in it (with their bytes, from ``tests/helpers/payloads.py``).

Changing anything here that shapes the tree or its contents: bump ``synthhome.GENERATOR``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks import common
from credguard.detect import kinds
from credguard.detect.registry import sniff_matches


def _words(text: str) -> tuple[str, ...]:
    """The whitespace-separated words of ``text``, in order."""
    return tuple(text.split())


# -- names ----------------------------------------------------------------------------------

WORDS = _words("""
    alpha beta gamma delta order invoice customer product payment search report session account
    profile catalog inventory shipping billing metrics events queue worker scheduler parser
    render layout widget button dialog table chart filter export import backup sync upload
    download image thumbnail cache index main app core helpers utils common shared models views
    routes schema types constants errors logger middleware client server handler service storage
    database migration fixture sample notes draft summary budget plan roadmap meeting design
    theme style icon logo
""")
DIR_WORDS = _words("""
    src lib core utils api models views tests docs assets components services handlers config
    scripts internal pkg cmd web static templates migrations fixtures data common shared helpers
    middleware routes controllers schemas types hooks store i18n locales images styles vendor
    tools build examples plugins adapters clients server client jobs workers io net db queue
    events metrics logging v1 v2 legacy experimental
""")
BARE_NAMES = _words("""
    Makefile LICENSE README Dockerfile CODEOWNERS AUTHORS CHANGELOG NOTICE Procfile VERSION
    Jenkinsfile Vagrantfile
""")
NPM_NAMES = _words("""
    react react-dom lodash express debug ms chalk commander semver uuid axios minimist yargs glob
    rimraf mkdirp tslib typescript webpack babel-loader eslint prettier jest mocha chai sinon rxjs
    moment dayjs qs body-parser cookie cors dotenv ws socket.io graphql apollo-server redux immer
    zod ajv postcss autoprefixer sass vite esbuild rollup picomatch micromatch braces fill-range
""")
PYPI_NAMES = _words("""
    requests urllib3 certifi idna charset_normalizer six attrs click jinja2 markupsafe pyyaml
    numpy pandas dateutil pytz setuptools pip wheel packaging pluggy pytest iniconfig
    cryptography cffi pycparser azure msal msrest isodate oauthlib rich pygments
    typing_extensions pydantic fastapi starlette anyio sniffio h11
""")
PROJECT_NAMES = _words("""
    contoso-web webshop toolbox billing-api infra ml-pipeline dotfiles mobile-app data-loader
    auth-service reporting blog cli-tools sdk terraform-modules website scratch interview-prep
    game-jam homelab
""")


# -- file contents --------------------------------------------------------------------------

MAX_SIZE = 4096  # bytes; every file is 0-4 KiB
POOL_SIZE = 12288  # bytes of each content pool
# The tables below are laid out by hand, several entries a line: "fmt: off" keeps them so.
# Magic numbers that binary files start with, by the suffix of their "bin:MAGIC" style.
# fmt: off
MAGIC = {
    "png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff\xe0", "gif": b"GIF89a",
    "elf": b"\x7fELF\x02\x01\x01", "mz": b"MZ\x90\x00", "pdf": b"%PDF-1.7\n",
    "zip": b"PK\x03\x04", "gz": b"\x1f\x8b\x08", "sqlite": b"SQLite format 3\x00", "": b"",
}
# Content style by extension; any other extension is "text".
STYLE_BY_EXT = {
    ".json": "json", ".map": "json", ".xml": "xml", ".config": "xml", ".csproj": "xml",
    ".svg": "xml", ".resx": "xml", ".png": "bin:png", ".jpg": "bin:jpg", ".gif": "bin:gif",
    ".so": "bin:elf", ".dll": "bin:mz", ".exe": "bin:mz", ".msi": "bin:", ".pdf": "bin:pdf",
    ".zip": "bin:zip", ".docx": "bin:zip", ".xlsx": "bin:zip", ".odt": "bin:zip",
    ".whl": "bin:zip", ".gz": "bin:gz", ".db": "bin:sqlite", ".pyc": "bin:", ".bin": "bin:",
    ".heic": "bin:", ".deb": "bin:", ".woff2": "bin:", ".mo": "bin:",
}
# fmt: on


def make_pools(seed: int) -> dict[str, bytes]:
    """12 KiB of text, JSON-ish, XML-ish and random bytes that file contents are cut from;
    none carries a credential marker, so no ordinary file can match credguard's sniffing."""
    rng = random.Random(seed)

    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    def tag(i: int) -> str:
        return f'  <{rng.choice(WORDS)} id="{i}">{words(4)}</{rng.choice(WORDS)}>\n'

    text = "".join(f"{words(rng.randint(3, 12))}\n" for _ in range(1500))
    jsn = "{\n" + "".join(f'  "{rng.choice(WORDS)}_{i}": "{words(3)}",\n' for i in range(600))
    xml = '<?xml version="1.0" encoding="utf-8"?>\n<items>\n' + "".join(map(tag, range(500)))
    pools = {
        "text": text.encode()[:POOL_SIZE],
        "json": jsn.encode()[:POOL_SIZE],
        "xml": xml.encode()[:POOL_SIZE],
        "bin": rng.randbytes(POOL_SIZE),
    }
    for name, pool in pools.items():
        assert len(pool) == POOL_SIZE and not sniff_matches(pool), f"bad {name} pool"
    return pools


def content(style: str, offset: int, size: int, pools: dict[str, bytes]) -> bytes:
    """A file's bytes: ``size`` bytes from ``offset`` in the pool its ``style`` names, or for
    ``bin:MAGIC`` styles from the binary pool behind that magic number."""
    if style.startswith("bin:"):
        return (MAGIC[style[4:]] + pools["bin"][offset : offset + size])[:size]
    return pools[style][offset : offset + size]


# -- profiles: what each region of the tree looks like --------------------------------------


@dataclass(frozen=True)
class Profile:
    """How one region of the tree looks: directory names, file extensions and their weights."""

    exts: dict[str, float]
    dir_words: tuple[str, ...] = DIR_WORDS
    top_words: tuple[str, ...] = ()
    stems: tuple[str, ...] = WORDS
    hex_bare: bool = False  # extension-less files get hash-like names (caches, git objects)
    max_depth: int = 8


# fmt: off
PY = Profile({".py": 45, ".pyi": 3, ".md": 4, ".txt": 3, ".json": 4, ".toml": 1, ".cfg": 1,
              ".yml": 3, "": 2, ".png": 2, ".so": 1, ".html": 3, ".css": 2, ".js": 3,
              ".xml": 1, ".csv": 2, ".ini": 1})
JS = Profile({".js": 30, ".ts": 25, ".tsx": 8, ".json": 8, ".md": 4, ".css": 5, ".scss": 3,
              ".html": 2, ".svg": 3, ".png": 3, ".map": 3, "": 1, ".txt": 1, ".xml": 0.5})
DOTNET = Profile({".cs": 45, ".csproj": 2, ".json": 6, ".config": 3, ".xml": 4, ".resx": 3,
                  ".cshtml": 8, ".md": 2, ".png": 2, ".dll": 3, ".txt": 1, "": 1, ".js": 5,
                  ".css": 3})
GO = Profile({".go": 60, ".md": 4, ".mod": 1, ".sum": 1, ".yaml": 5, ".json": 3, ".txt": 2,
              "": 3, ".proto": 4, ".sh": 2, ".png": 1})
DOCUMENTS = Profile({".pdf": 15, ".docx": 15, ".xlsx": 8, ".md": 10, ".txt": 15, ".odt": 5,
                     ".csv": 6, ".png": 8, ".jpg": 10, ".json": 2, ".xml": 2, "": 2},
                    dir_words=("work", "personal", "taxes", "2023", "2024", "2025", "projects",
                               "receipts", "contracts", "notes", "archive", "scans", "travel"),
                    max_depth=5)
PICTURES = Profile({".jpg": 60, ".png": 30, ".gif": 3, ".heic": 5, ".xml": 1, ".json": 1},
                   dir_words=("2021", "2022", "2023", "2024", "2025", "screenshots",
                              "wallpapers", "holiday", "family", "camera", "edited"),
                   stems=("IMG", "DSC", "Screenshot", "photo", "scan", "PXL"), max_depth=3)
DOWNLOADS = Profile({".zip": 10, ".pdf": 15, ".deb": 3, ".gz": 5, ".png": 8, ".jpg": 8,
                     ".txt": 6, ".json": 3, ".xml": 2, ".exe": 3, ".msi": 2, ".csv": 5,
                     ".docx": 5, "": 2}, max_depth=2)
CACHE = Profile({"": 50, ".json": 10, ".bin": 10, ".png": 5, ".jpg": 5, ".js": 5, ".pyc": 5,
                 ".whl": 2, ".txt": 3, ".db": 3, ".html": 2}, hex_bare=True, max_depth=6,
                dir_words=("pip", "http", "wheels", "mozilla", "chromium", "fontconfig",
                           "thumbnails", "go-build", "yarn", "npm", "mesa_shader_cache",
                           "jedi", "typescript", "pre-commit", "huggingface", "Code"))
CONFIG = Profile({".json": 20, ".conf": 10, ".ini": 8, ".xml": 8, ".toml": 5, ".yaml": 8,
                  "": 25, ".cfg": 5, ".txt": 4, ".db": 3, ".js": 2, ".css": 2},
                 dir_words=("Code", "gtk-3.0", "dconf", "pulse", "git", "gh", "htop", "nvim",
                            "systemd", "autostart", "fontconfig", "JetBrains", "Slack",
                            "Microsoft", "User", "globalStorage", "workspaceStorage"),
                 max_depth=6)
SHARE = Profile({".json": 10, "": 20, ".desktop": 10, ".png": 15, ".svg": 10, ".xml": 5,
                 ".db": 3, ".txt": 5, ".js": 5, ".py": 10, ".so": 3, ".mo": 4},
                dir_words=("applications", "icons", "fonts", "Trash", "recently-used",
                           "keyrings", "nautilus", "gvfs-metadata", "virtualenvs", "flatpak",
                           "hicolor", "48x48", "apps", "mime", "locale"), max_depth=7)
MUSIC = Profile({".mp3": 70, ".flac": 20, ".jpg": 5, ".m3u": 3, ".txt": 2},
                stems=("track", "intro", "live", "remix", "demo"), max_depth=3,
                dir_words=("Artist", "Album", "Podcasts", "Playlists", "Live", "Demos"))
NODE = Profile({".js": 50, ".ts": 15, ".json": 8, ".md": 10, ".map": 8, "": 5, ".mjs": 3,
                ".cjs": 2, ".txt": 1, ".yml": 1},
               dir_words=("lib", "dist", "esm", "cjs", "src", "types", "build", "bin", "test",
                          "internal", "utils", "umd", "locale"), top_words=NPM_NAMES,
               max_depth=5)
SITE = Profile({".py": 60, ".pyc": 10, ".pyi": 5, ".so": 3, ".txt": 3, "": 8, ".json": 2,
                ".typed": 1, ".cfg": 1, ".md": 2},
               dir_words=("core", "utils", "compat", "vendor", "tests", "_internal", "ext",
                          "backends", "contrib", "data", "locale", "schemas"),
               top_words=PYPI_NAMES, max_depth=6)
LANGS = (("dotnet", DOTNET), ("js", JS), ("py", PY), ("go", GO))
# Top-level files of a project, besides README.md, LICENSE, .gitignore and Makefile.
MANIFESTS = {"dotnet": ("contoso.sln", "Web.csproj", "appsettings.json", "web.config"),
             "js": ("package.json", "package-lock.json", "tsconfig.json"),
             "py": ("pyproject.toml", "requirements.txt"), "go": ("go.mod", "go.sum")}
# (base, profile, share of the remaining files, share of the remaining dirs); None = projects
REGIONS: tuple[tuple[str, Profile | None, float, float], ...] = (
    ("src", None, 0.60, 0.62), ("Documents", DOCUMENTS, 0.07, 0.05),
    ("Downloads", DOWNLOADS, 0.02, 0.003), ("Pictures", PICTURES, 0.05, 0.01),
    ("Music", MUSIC, 0.02, 0.01), ("Desktop", DOCUMENTS, 0.005, 0.002),
    (".cache", CACHE, 0.13, 0.15), (".config", CONFIG, 0.05, 0.06),
    (".local/share", SHARE, 0.055, 0.095),
)
# fmt: on


# -- the subtrees credguard prunes and find walks -------------------------------------------

# Shares of the (files, dirs) budgets placed in each kind of pruned subtree.
GIT_SHARE = (0.04, 0.05)
NODE_SHARE = (0.08, 0.08)
VENV_SHARE = (0.05, 0.05)
GIT_DIRS = _words("""
    hooks info logs logs/refs logs/refs/heads refs refs/heads refs/tags refs/remotes
    refs/remotes/origin objects objects/info objects/pack
""")
GIT_FILES = _words("""
    HEAD config description index packed-refs FETCH_HEAD ORIG_HEAD COMMIT_EDITMSG info/exclude
    logs/HEAD logs/refs/heads/main refs/heads/main refs/remotes/origin/HEAD
    hooks/pre-commit.sample hooks/pre-push.sample hooks/commit-msg.sample
    hooks/post-update.sample hooks/pre-rebase.sample hooks/update.sample
    hooks/fsmonitor-watchman.sample
""")
NODE_SCOPES = ("@types", "@babel", "@azure")
NODE_SEEDS = ("package.json", "README.md", "LICENSE", "index.js")  # in every package dir
PYVENV_CFG = b"home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.7\n"
VENV_BIN = _words("""
    python python3 python3.11 pip pip3 activate activate.csh activate.fish Activate.ps1
""")
DIST_INFO = _words("METADATA RECORD WHEEL INSTALLER top_level.txt")


# -- the fixed parts: skeleton, planted credentials, benign look-alikes ---------------------

SKELETON_DIRS = _words("""
    Documents Downloads Pictures Desktop Music .cache .config .local .local/share .ssh .azure
    .azure/logs .azd .azd/auth .azd/auth/msal src
""")
SKELETON_FILES = _words("""
    .bashrc .profile .bash_history .gitconfig .ssh/config .ssh/known_hosts .ssh/id_ed25519.pub
    .azure/config .azure/clouds.config .azure/commandIndex.json .azure/versionCheck.json
    .azure/logs/az.log .azd/config.json Desktop/todo.txt
""")


@dataclass(frozen=True)
class Plant:
    """A credential file planted in the tree, made by a ``tests/helpers/payloads.py`` generator."""

    path: str  # relative to the tree's root, "/"-separated
    generator: str  # the name of the function in tests/helpers/payloads.py
    kind: str | None  # the finding credguard must report; None: a benign look-alike
    by_name: bool  # whether a name-only search (find) can see it
    kwargs: dict[str, Any] = field(default_factory=dict)


PUBLISH_DIR = "src/contoso-web/Properties/PublishProfiles"
# fmt: off
PLANTS = (
    Plant("Downloads/Fake-Dev-1-2-2026-credentials.publishsettings", "publishsettings_v2",
          kinds.PUBLISHSETTINGS, True),
    Plant("Downloads/contoso.PublishSettings", "publish_profile", kinds.PUBLISH_PROFILE, True),
    Plant("Downloads/settings.txt", "publishsettings_v2", kinds.PUBLISHSETTINGS, False),
    Plant("Desktop/webapp-staging.PublishSettings", "publish_profile", kinds.PUBLISH_PROFILE,
          True),
    Plant(".azure/msal_token_cache.json", "msal_cache", kinds.CLI_TOKEN_CACHE, True),
    Plant(".azure/service_principal_entries.json", "sp_entries", kinds.CLI_SERVICE_PRINCIPAL,
          True),
    Plant(f"{PUBLISH_DIR}/contoso-web - Web Deploy.pubxml.user", "pubxml_user",
          kinds.VS_PUBLISH_SECRET, True),
    Plant(".azd/auth/msal/cache1.json", "azd_msal_cache", kinds.AZD_CACHE, True),
    # Benign files matched by name: read and judged by credguard, never findings.
    Plant(".azure/azureProfile.json", "modern_azure_profile", None, True),
    Plant(f"{PUBLISH_DIR}/FolderProfile.pubxml", "pubxml", None, True, {"password": False}),
)
# fmt: on


def load_payloads() -> dict[str, bytes]:
    """The bytes of each plant, by path, from the generators of ``tests/helpers/payloads.py``."""
    module = common.tests_module("payloads")
    out: dict[str, bytes] = {}
    for plant in PLANTS:
        make: Callable[..., Any] = getattr(module, plant.generator)
        out[plant.path] = bytes(make(**plant.kwargs).data)
    return out
