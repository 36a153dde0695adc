"""``credguard exec``'s usual command line read without argparse (credguard.cli.exec_cmd.
quick_args): for every command line it reads, exactly what the parser makes of it; every
other one is left to the parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credguard.cli import build_parser, parse
from credguard.cli.exec_cmd import quick_args

WORDS = ["--no-file", "--profile", "FTP", "MSDeploy", "ZipDeploy", "SFTP", "0123456789abcdef",
         "abcdef", "-x", "--", "--profile=FTP", "--no-f", "--azd", "--azure-cli", "true", "",
         "-", "-h", "--help", "--debug", "CMD"]


def parsed(words: list[str]) -> dict[str, object]:
    return vars(parse(build_parser("exec"), words))


@pytest.mark.parametrize("words", [
    ["exec", "0123456789abcdef", "--", "true"],
    ["exec", "0123456789abcdef", "--no-file", "--", "sh", "-c", "echo -- $1", "--", "x"],
    ["exec", "--profile", "FTP", "abcdef", "--"],
    ["exec", "--no-file", "--profile", "ZipDeploy", "abcdef", "--", "--help"],
])
def test_the_usual_forms_are_read_as_the_parser_reads_them(words: list[str]) -> None:
    quick = quick_args(words)
    assert quick is not None
    assert vars(quick) == parsed(words)


@pytest.mark.parametrize("words", [
    ["exec", "abcdef"],  # no "--": the parser's usage error
    ["exec", "--", "true"],  # no ID
    ["exec", "a", "b", "--", "true"],
    ["exec", "--profile", "SFTP", "a", "--", "true"],
    ["exec", "--profile=FTP", "a", "--", "true"],
    ["exec", "--no-f", "a", "--", "true"],  # an abbreviation argparse would take
    ["exec", "--no-file", "--no-file", "a", "--", "true"],
    ["exec", "--azure-cli", "--", "az"],
    ["exec", "-h", "a", "--"],
    ["exec", "a", "--profile", "--", "true"],
    ["--debug", "exec", "a", "--", "true"],
    ["scan", "a", "--", "true"],
])
def test_every_other_form_is_left_to_the_parser(words: list[str]) -> None:
    assert quick_args(words) is None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=7))
def test_whatever_it_reads_the_parser_reads_the_same(tail: list[str]) -> None:
    words = ["exec", *tail]
    quick = quick_args(words)
    if quick is not None:
        assert vars(quick) == parsed(words)


def test_main_runs_the_usual_form_without_building_the_parser(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Wired: ``main`` takes the quick reading (the parser would fail here), and the parser
    still reads and reports every other form."""
    import credguard.cli as cli

    def no_parser(_verb: str | None = None) -> None:
        raise AssertionError("the parser was built")

    monkeypatch.setattr(cli, "build_parser", no_parser)
    monkeypatch.setenv("CREDGUARD_EXEC", "outer")  # refused before any vault is touched
    assert cli.main(["exec", "abcdef", "--", "true"]) == 2
    assert "refusing to nest credguard exec" in capsys.readouterr().err
    monkeypatch.undo()
    assert cli.main(["exec", "abcdef"]) == 2  # no "--": the parser's own usage error
