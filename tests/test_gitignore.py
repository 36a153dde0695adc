"""gitignore rules in pure Python (credguard.scan.gitignore, read by credguard.scan.project),
checked against the real ``git check-ignore --no-index`` in temporary repositories.

credguard never runs git; these tests do, as the reference. Each case writes real files, real
``.gitignore`` files, ``.git/info/exclude`` and the global excludes file
(``$XDG_CONFIG_HOME/git/ignore``), asks git which paths it ignores and compares every path with
``Projects().find(path).git_would_commit``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from helpers.home import Home
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credguard.scan import gitignore
from credguard.scan.project import Projects

pytestmark = pytest.mark.timeout(120)


def git(repo: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=repo, input=stdin, capture_output=True, env=env,
                          timeout=30, check=False)


def make_repo(home: Home, files: list[str], ignores: dict[str, str], exclude: str = "",
              global_ignore: str | None = None) -> Path:
    """A fresh repository in ~/Documents holding ``files`` (empty) and ``ignores``
    (directory -> .gitignore text); ``exclude``: .git/info/exclude; ``global_ignore``: the
    user's global excludes file (None: none)."""
    home.documents.mkdir(exist_ok=True)
    repo = Path(tempfile.mkdtemp(dir=home.documents, prefix="repo"))
    assert git(repo, "init", "-q").returncode == 0
    for rel in files:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(b"")
    for rel, text in ignores.items():
        (repo / rel).mkdir(parents=True, exist_ok=True)
        (repo / rel / ".gitignore").write_bytes(text.encode())
    (repo / ".git" / "info" / "exclude").write_bytes(exclude.encode())
    glob = home.root / ".config" / "git" / "ignore"
    if global_ignore is None:
        glob.unlink(missing_ok=True)
    else:
        glob.parent.mkdir(parents=True, exist_ok=True)
        glob.write_bytes(global_ignore.encode())
    return repo


def git_ignores(repo: Path, files: list[str]) -> set[str]:
    run = git(repo, "check-ignore", "--no-index", "--stdin", "-z",
              stdin=b"".join(os.fsencode(f) + b"\0" for f in files))
    assert run.returncode in (0, 1), run.stderr.decode(errors="replace")
    return {os.fsdecode(p) for p in run.stdout.split(b"\0") if p}


def differences(repo: Path, files: list[str]) -> list[tuple[str, bool]]:
    """(path, git ignores it) for every path credguard answers differently."""
    ignored = git_ignores(repo, files)
    projects = Projects()
    wrong = []
    for rel in files:
        found = projects.find(str(repo / rel))
        assert found is not None and found.marker == "git" and found.root == str(repo)
        if found.git_would_commit is not (rel not in ignored):
            wrong.append((rel, rel in ignored))
    return wrong


FILES = ["a.user", "b.pubxml", "x/a.user", "x/y/z.pubxml.user", "build/out.txt",
         "build/keep.txt", "doc/build", "sub/build/deep.txt", "#hash", "!bang", "trail ",
         "sp ace", "q1", "qq1", "[ab]", "lit*star", "deep/a/b/c/d.txt", "deep/x.txt",
         "top", "x/top", "foo/bar", "x/foo/bar", "Ab.txt", "a/b/keep.user", "bs\\name"]

CASES: dict[str, tuple[dict[str, str], str, str | None]] = {
    "comments and escapes": ({"": "# a comment\n\\#hash\n\\!bang\n"}, "", None),
    "trailing spaces": ({"": "trail\\ \nsp ace   \nq1  \n"}, "", None),
    "negation": ({"": "*.user\n!a.user\n"}, "", None),
    "negation order": ({"": "!a.user\n*.user\n"}, "", None),
    "directory only": ({"": "build/\n"}, "", None),
    "excluded dir cannot be re-included": ({"": "build/\n!build/keep.txt\n"}, "", None),
    "re-include below a dir/*": ({"": "build/*\n!build/keep.txt\n"}, "", None),
    "anchored leading slash": ({"": "/top\n"}, "", None),
    "anchored middle slash": ({"": "foo/bar\n"}, "", None),
    "star, question, class": ({"": "*.pubxml\nq?\n[ab].user\n\\[ab\\]\nlit\\*star\n"}, "", None),
    "double star forms": ({"": "**/z.pubxml.user\ndeep/**\n!deep/x.txt\na/**/keep.user\n"},
                          "", None),
    "double star not at a boundary": ({"": "x**/a.user\nd**p/a\n"}, "", None),
    "nested gitignore overrides": ({"": "*.user\n", "x": "!a.user\n", "x/y": "*.user\n"},
                                   "", None),
    "info exclude": ({}, "*.pubxml\n", None),
    "global excludes": ({}, "", "*.user\n"),
    "precedence: gitignore over exclude over global": ({"": "!a.user\n"}, "b.pubxml\n",
                                                       "*.user\n*.pubxml\n!b.pubxml\n"),
    "CRLF and BOM": ({"": "\ufeff*.user\r\n!a.user\r\n"}, "", None),
    "character classes": ({"": "[[:upper:]]b.txt\n[[:digit:]]\nq[[:digit:]]\n[!a]*.user\n"},
                          "", None),
    "backslash in a name": ({"": "bs\\\\name\n"}, "", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_ignore_rules_agree_with_git(home: Home, case: str) -> None:
    ignores, exclude, global_ignore = CASES[case]
    repo = make_repo(home, FILES, ignores, exclude, global_ignore)
    assert differences(repo, FILES) == []


def test_a_few_answers_spelled_out(home: Home) -> None:
    repo = make_repo(home, FILES, {"": "build/\n!build/keep.txt\n*.user\n!a.user\n"})
    projects = Projects()
    answer = {rel: projects.find(str(repo / rel)).git_would_commit  # type: ignore[union-attr]
              for rel in ("a.user", "x/a.user", "build/keep.txt", "b.pubxml", "x/y/z.pubxml.user")}
    assert answer == {"a.user": True, "x/a.user": True, "build/keep.txt": False,
                      "b.pubxml": True, "x/y/z.pubxml.user": False}


def test_linked_gitignore_is_not_read_as_git_does_not(home: Home, tmp_path: Path) -> None:
    elsewhere = tmp_path / "rules"
    elsewhere.write_text("*.user\n")
    repo = make_repo(home, ["a.user"], {})
    (repo / ".gitignore").symlink_to(elsewhere)
    assert differences(repo, ["a.user"]) == []
    assert Projects().find(str(repo / "a.user")).git_would_commit is True  # type: ignore[union-attr]


def test_linked_global_excludes_file_is_followed(home: Home, tmp_path: Path) -> None:
    repo = make_repo(home, ["a.user"], {}, global_ignore="")
    dotfiles = tmp_path / "dotfiles-ignore"
    dotfiles.write_text("*.user\n")
    glob = home.root / ".config" / "git" / "ignore"
    glob.unlink()
    glob.symlink_to(dotfiles)
    assert differences(repo, ["a.user"]) == []
    assert Projects().find(str(repo / "a.user")).git_would_commit is False  # type: ignore[union-attr]


def test_unknown_when_an_ignore_file_cannot_be_read_safely(home: Home) -> None:
    repo = make_repo(home, ["x/a.user", "y/a.user"], {})
    os.mkfifo(repo / "x" / ".gitignore")  # git would block on it; credguard never opens it
    (repo / "y" / ".gitignore").write_bytes(b"#" * (256 * 1024 + 1))  # over the cap
    projects = Projects()
    for rel in ("x/a.user", "y/a.user"):
        found = projects.find(str(repo / rel))
        assert found is not None and found.marker == "git" and found.git_would_commit is None


def test_star_heavy_patterns_are_decided_quickly(home: Home) -> None:
    """git 2.39's wildmatch takes minutes on the first pattern (it gives up early only in later
    versions): answered here by hand, in well under a second."""
    name = "a" * 60 + ".user"
    repo = make_repo(home, [name, "z/" + name],
                     {"": "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b\n",
                      "z": "/*a*a*a*a*a*a*a*a*a*a*a*a*a*a*.user\n"})
    started = time.monotonic()
    projects = Projects()
    answers = [projects.find(str(repo / rel)) for rel in (name, "z/" + name)]
    assert [a.git_would_commit for a in answers if a is not None] == [True, False]
    assert time.monotonic() - started < 1.0


def test_nothing_inside_dot_git_would_be_committed(home: Home) -> None:
    repo = make_repo(home, [], {})
    (repo / ".git" / "stray.publishsettings").write_bytes(b"")
    assert Projects().find(str(repo / ".git" / "stray.publishsettings")) is not None
    found = Projects().find(str(repo / ".git" / "stray.publishsettings"))
    assert found is not None and found.git_would_commit is False


def test_wildmatch_budget_bounds_the_work() -> None:
    with pytest.raises(gitignore.TooComplex):
        gitignore.wildmatch(b"*a*a*a*b", b"aaaaaab", True, gitignore.Budget(3))
    assert gitignore.wildmatch(b"*a*a*a*b", b"aaaaaab", True)
    assert gitignore.wildmatch(b"**/x", b"a/b/x", True)


# -- generated patterns against git --------------------------------------------------------

NAME = st.text(alphabet="ab*?[]!\\ #-", min_size=1, max_size=3).filter(
    lambda s: s not in (".", "..", ".git", ".gitignore"))
PATH = st.lists(NAME, min_size=1, max_size=4).map("/".join)
GLOBS = ["*", "?", "**", "[ab]", "[!a]", "[a-b]", "[[:alpha:]]", "\\"]


@st.composite
def pattern_from(draw: st.DrawFn, sources: list[str]) -> str:
    """A pattern made from a path the tree holds (so it often matches), mutated."""
    text = ""
    for ch in draw(st.sampled_from(sources)):
        text += draw(st.sampled_from([ch, ch, ch, ch, "", *GLOBS]))
    head = draw(st.sampled_from(["", "", "", "/", "**/", "!", "!/", "#", "\\#", "\\!"]))
    tail = draw(st.sampled_from(["", "", "", "/", "  ", "\\ ", "/**", "\r", "/*"]))
    return head + text + tail


def lines(draw: st.DrawFn, sources: list[str], most: int) -> str:
    raw = st.text(alphabet="ab*?[]!^-/\\# ", max_size=6)
    chosen = draw(st.lists(st.one_of(pattern_from(sources), raw), max_size=most))
    return "".join(line + "\n" for line in chosen)


@st.composite
def trees(draw: st.DrawFn) -> tuple[list[str], dict[str, str], str, str]:
    paths = draw(st.lists(PATH, min_size=1, max_size=8, unique=True))
    dirs = {"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)}
    files = [p for p in paths if p not in dirs]
    sources = files + sorted(dirs)
    ignores = {"": lines(draw, sources, 6)}
    for d in draw(st.lists(st.sampled_from(sorted(dirs)), max_size=2, unique=True)) if dirs \
            else []:
        below = [s[len(d) + 1:] for s in sources if s.startswith(d + "/")]
        ignores[d] = lines(draw, below or ["a"], 3)
    return files, ignores, lines(draw, sources, 2), lines(draw, sources, 2)


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(trees())
def test_generated_patterns_agree_with_git(
        home: Home, tree: tuple[list[str], dict[str, str], str, str]) -> None:
    files, ignores, exclude, global_ignore = tree
    repo = make_repo(home, files, ignores, exclude, global_ignore)
    assert differences(repo, files) == []
