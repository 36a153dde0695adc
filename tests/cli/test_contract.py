"""The CLI contract as a whole (issue 15): every argument and verb has help, every exit code has
one documented meaning, and every ``--json`` document has a schema that demands a version.

The parser is walked in-process (no credguard command needs to run for these); the documented
table is read from ``docs/guide.md``.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from helpers.schemas import SCHEMAS

from credguard.cli import build_parser
from credguard.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, argparse._SubParsersAction | None]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    yield path, parser, subs[0] if subs else None
    for sub in subs:
        for name, child in sub.choices.items():
            yield from _parsers(child, (*path, name))


def test_every_argument_has_help() -> None:
    missing = []
    for path, parser, _sub in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if action.help == argparse.SUPPRESS:
                continue
            if not (action.help or "").strip():
                missing.append(" ".join(("credguard", *path, *action.option_strings))
                               + ("" if action.option_strings else f" {action.dest}"))
    assert missing == []


def test_every_verb_has_a_summary_line() -> None:
    missing = []
    for path, _parser, sub in _parsers(build_parser()):
        if sub is None:
            continue
        summaries = {choice.dest: (choice.help or "").strip() for choice in sub._choices_actions}
        missing += [" ".join(("credguard", *path, name)) for name in sub.choices
                    if not summaries.get(name)]
    assert missing == []


def _documented_codes() -> dict[int, str]:
    text = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(code): meaning.strip()
            for code, meaning in re.findall(r"^\| (\d+) \| (.+?) \|$", section, re.M)}


def test_the_exit_code_table_and_the_code_agree() -> None:
    codes = {value for name, value in vars(ExitCode).items() if name.isupper()}
    documented = _documented_codes()
    assert set(documented) == codes
    assert len(set(documented.values())) == len(documented)  # one meaning per code


def test_every_schema_is_valid_and_demands_a_version() -> None:
    names = sorted(SCHEMAS.glob("*.schema.json"))
    assert names, SCHEMAS
    for path in names:
        schema = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema.get("type") == "object", path.name
        assert "version" in schema.get("required", []), path.name
        assert schema["properties"]["version"].get("type") == "integer" or \
            "const" in schema["properties"]["version"], path.name


def _json_commands() -> list[str]:
    found = []
    for path, parser, _sub in _parsers(build_parser()):
        if any("--json" in action.option_strings for action in parser._actions):
            found.append(" ".join(path))
    return found


@pytest.mark.parametrize("command", _json_commands())
def test_every_json_command_has_a_schema(command: str) -> None:
    name = command.replace(" ", "-")
    assert (SCHEMAS / f"{name}.schema.json").is_file(), f"docs/schemas/{name}.schema.json"
