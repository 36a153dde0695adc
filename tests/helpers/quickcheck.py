"""Running ``credguard check`` both ways in-process: as the console script does (``main``, which
may answer on the quick path) and on the full path alone, to compare them."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from credguard.cli import full, main, quick
from helpers.home import Run

Capsys = pytest.CaptureFixture[str]
_SECONDS = re.compile(r'in \d+\.\d\d s\.|"seconds": [0-9.e-]+')


def run(capsys: Capsys, call: Callable[[list[str]], int], words: list[str]) -> Run:
    """``call(words)`` with its exit code (argparse's too) and output."""
    try:
        code = call(list(words))
    except SystemExit as exc:  # argparse's usage errors and help
        code = exc.code if isinstance(exc.code, int) else -1
    out = capsys.readouterr()
    # the time a scan took is the one thing two runs may not share
    return Run(code, _SECONDS.sub("<time>", out.out), out.err)


def compare(capsys: Capsys, *files: str | Path, options: Sequence[str] = ()) -> tuple[bool, Run]:
    """(whether the quick path answers alone, the result) of ``check OPTIONS FILES``, once the
    result of ``main`` is found equal to the full path's, run after it."""
    words = ["check", *options, *(str(f) for f in files)]
    taken = quick.clean(words)
    got = run(capsys, main, words)
    assert got == run(capsys, full, words)
    assert not taken or (got.code, got.out, got.err) == (0, "", "")
    return taken, got
