"""The suite's own rule, tested with pytester: with ``CI=true`` a skipped test fails the run.

The hooks under test are tests/conftest.py's, handed to an inner pytest run on a throwaway test
file; the outer suite's fixtures do not reach that run.
"""

from __future__ import annotations

import types

import conftest
import pytest

pytest_plugins = ["pytester"]

INNER = """
import pytest

@pytest.fixture
def needs_something():
    pytest.skip("no such thing here")

def test_passes():
    pass

@pytest.mark.security
@pytest.mark.skipif(True, reason="chattr is not supported here")
def test_marked_security():
    pass

def test_skips_in_its_body():
    pytest.skip("a read-only /proc/sys")

def test_skips_in_a_fixture(needs_something):
    pass

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_to_fail():
    assert False
"""

MODULE_SKIP = """
import pytest

pytest.skip("no interpreter for uid 4242", allow_module_level=True)

def test_never_collected():
    pass
"""


def hooks() -> types.SimpleNamespace:
    """Only the conftest's report hooks, as a plugin (not its fixtures)."""
    return types.SimpleNamespace(
        pytest_runtest_makereport=conftest.pytest_runtest_makereport,
        pytest_make_collect_report=conftest.pytest_make_collect_report,
    )


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nmarkers =\n    security: as in pyproject.toml\n")
    return pytester


def test_a_skipped_test_fails_with_ci_true(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner.makepyfile(INNER)
    monkeypatch.setenv("CI", "true")
    result = inner.runpytest("-rfE", plugins=[hooks()])
    # a skip while setting up (a skipif mark, a fixture) fails as an error, in the test as a failure
    result.assert_outcomes(passed=1, failed=1, errors=2, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines_random([
        "ERROR *::test_marked_security - skipped with CI=true (marked security)*chattr is not*",
        "FAILED *::test_skips_in_its_body - skipped with CI=true, which must fail*/proc/sys*",
        "ERROR *::test_skips_in_a_fixture - skipped with CI=true, which must fail*no such thing*",
    ])


@pytest.mark.parametrize("ci", [None, "false", "1"])
def test_a_skip_is_a_skip_without_ci_true(
    ci: str | None, inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner.makepyfile(INNER)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    result = inner.runpytest(plugins=[hooks()])
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)
    assert result.ret == pytest.ExitCode.OK


def test_a_module_skipped_at_collection_fails_with_ci_true(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner.makepyfile(MODULE_SKIP)
    monkeypatch.delenv("CI", raising=False)
    skipped = inner.runpytest(plugins=[hooks()])
    skipped.assert_outcomes(skipped=1)
    assert skipped.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    monkeypatch.setenv("CI", "true")
    failed = inner.runpytest(plugins=[hooks()])
    failed.assert_outcomes(errors=1)
    assert failed.ret == pytest.ExitCode.INTERRUPTED
    failed.stdout.fnmatch_lines(["*skipped with CI=true, which must fail*no interpreter*"])
