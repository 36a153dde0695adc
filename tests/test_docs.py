"""The documentation keeps up with the code (issue 15): the README stays short, every verb of the
command line has a heading and an example in docs/guide.md, every relative link leads somewhere,
the pre-commit hook the README names exists, and no unfinished ``TODO-15`` mark is left.

The parser is walked in-process, as tests/cli/test_contract.py does; the Markdown is read as
text (headings, fenced blocks and links are all this needs).
"""

from __future__ import annotations

import argparse
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from credguard.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "guide.md"
DOCS = sorted([README, *(ROOT / "docs").glob("*.md")])
README_MAX_LINES = 200

_FENCE = re.compile(r"^(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Section:
    """One heading of a Markdown file and the text under it, up to the next heading of the same
    or a higher level; ``examples`` are the fenced blocks in that text."""

    level: int
    title: str
    examples: tuple[str, ...]


def _verbs(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """Every (sub-)command of the parser as its words, e.g. ("vault", "list")."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield (*path, name)
                yield from _verbs(child, (*path, name))


def _lines_outside_fences(text: str) -> Iterator[tuple[int, str, bool]]:
    """(index, line, inside a fenced block) for each line; fence lines count as inside."""
    inside = False
    for index, line in enumerate(text.splitlines()):
        if _FENCE.match(line):
            yield index, line, True
            inside = not inside
            continue
        yield index, line, inside


def _sections(text: str) -> list[Section]:
    lines = text.splitlines()
    heads = [(i, len(m.group(1)), m.group(2))
             for i, line, fenced in _lines_outside_fences(text)
             if not fenced and (m := _HEADING.match(line))]
    sections = []
    for n, (start, level, title) in enumerate(heads):
        end = next((i for i, lv, _ in heads[n + 1:] if lv <= level), len(lines))
        sections.append(Section(level, title, tuple(_fenced_blocks(lines[start + 1:end]))))
    return sections


def _fenced_blocks(lines: list[str]) -> Iterator[str]:
    block: list[str] | None = None
    for line in lines:
        if _FENCE.match(line):
            if block is None:
                block = []
            else:
                yield "\n".join(block)
                block = None
        elif block is not None:
            block.append(line)


def _covers(title: str, verb: tuple[str, ...]) -> bool:
    """Whether a heading names ``verb`` in one of its command lines: a code span that starts
    ``credguard``, whose next words (``a|b`` alternatives allowed) are the verb's words."""
    for span in _CODE_SPAN.findall(title):
        words = span.split()
        if not words or words[0] != "credguard" or len(words) <= len(verb):
            continue
        if all(part in words[i + 1].split("|") for i, part in enumerate(verb)):
            return True
    return False


def _demonstrates(block: str, verb: tuple[str, ...]) -> bool:
    """Whether a fenced block runs ``credguard VERB`` (followed by a space or the line's end)."""
    command = re.escape(" ".join(("credguard", *verb)))
    return re.search(rf"(^|[\s$(`'\"]){command}(\s|$)", block, re.M) is not None


def test_the_readme_stays_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


@pytest.mark.parametrize("verb", sorted(set(_verbs(build_parser()))), ids=" ".join)
def test_every_verb_has_a_heading_and_an_example_in_the_guide(verb: tuple[str, ...]) -> None:
    sections = _sections(GUIDE.read_text(encoding="utf-8"))
    headed = [s for s in sections if _covers(s.title, verb)]
    command = " ".join(("credguard", *verb))
    assert headed, f"no heading of docs/guide.md names `{command}`"
    assert any(_demonstrates(block, verb) for s in headed for block in s.examples), (
        f"no fenced example under {[s.title for s in headed]} runs `{command}`")


def _slug(title: str, seen: dict[str, int]) -> str:
    """GitHub's anchor for a heading: the text without Markdown marks, lower case, punctuation
    other than ``-`` and ``_`` dropped, spaces made ``-``; repeats get ``-1``, ``-2``..."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link keeps its text
    text = text.replace("`", "").replace("*", "").lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LNM")
    slug = text.replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return slug if count == 0 else f"{slug}-{count}"


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    return {_slug(s.title, seen) for s in _sections(path.read_text(encoding="utf-8"))}


def _links(path: Path) -> Iterator[tuple[int, str]]:
    for index, line, fenced in _lines_outside_fences(path.read_text(encoding="utf-8")):
        if fenced:
            continue
        for target in _LINK.findall(_CODE_SPAN.sub("", line)):
            yield index + 1, target


def test_the_anchor_rule_is_githubs() -> None:
    seen: dict[str, int] = {}
    assert _slug("`credguard scan [PATH...] [--json | --sarif]`", seen) == \
        "credguard-scan-path---json----sarif"
    assert _slug("What deletion can and cannot promise", seen) == \
        "what-deletion-can-and-cannot-promise"
    assert _slug("Exit codes", seen) == "exit-codes"
    assert _slug("Exit codes", seen) == "exit-codes-1"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_somewhere(doc: Path) -> None:
    broken = []
    for line, target in _links(doc):
        if _SCHEME.match(target):
            continue  # https:, mailto: and the like are not checked here
        name, _, anchor = target.partition("#")
        dest = (doc.parent / name).resolve() if name else doc
        if not dest.exists():
            broken.append(f"{doc.name}:{line}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{doc.name}:{line}: {target} (no such heading)")
    assert broken == []


def test_the_pre_commit_hook_the_readme_names_exists() -> None:
    readme = README.read_text(encoding="utf-8")
    hook_ids = re.findall(r"^\s*- id: (\S+)\s*$", readme, re.M)
    manifest = (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    declared = re.findall(r"^- id: (\S+)\s*$", manifest, re.M)
    assert hook_ids and set(hook_ids) <= set(declared)
    entries = re.findall(r"^  entry: (.+?)\s*$", manifest, re.M)
    assert entries == ["credguard check"]
    assert re.search(r"^  language: python\s*$", manifest, re.M)
    verbs = {v[0] for v in _verbs(build_parser())}
    assert entries[0].split()[1] in verbs


def test_no_unfinished_mark_is_left() -> None:
    """The docs were written while the code was being changed; each spot to check against the
    final code carries ``<!-- TODO-15: ... -->``. Remove each once it is checked."""
    left = [f"{doc.relative_to(ROOT)}:{n}: {line.strip()}"
            for doc in DOCS
            for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
            if "<!-- TODO-15" in line]
    assert left == []
