"""``credguard log`` against the CLI contract (issue 15): one JSON document with a version that
validates against docs/schemas/log.schema.json, exit codes (2 for a bad --since, 6 for a broken
chain), and a human line that no value can give a false structure. The real audit log, in the
test's state directory."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from helpers.home import Run, run_subprocess
from helpers.schemas import validate

from credguard.audit.log import AuditLog
from credguard.cli.log_cmd import human_line
from credguard.textsafe import unescape

pytestmark = pytest.mark.timeout(60)
Cli = Callable[..., Run]
FIELD = re.compile(r' (\w+)=("(?:[^"\\]|\\.)*"|[^" ]+)(?= |$)')


def fields_of(line: str) -> dict[str, str]:
    """The key=value fields of a human log line, read back as a reader's parser would: a
    quoted value ends at the first ``"`` not escaped; then textsafe's escapes are undone."""
    head = re.match(r"\S+ \S+", line)
    assert head is not None, line
    rest, found = line[head.end():], {}
    for match in FIELD.finditer(rest):
        value = match[2]
        if value.startswith('"'):
            value = re.sub(r"\\(.)", lambda m: '"' if m[1] == '"' else m[0], value[1:-1])
        found[match[1]] = unescape(value)
    assert "".join(m[0] for m in FIELD.finditer(rest)) == rest, line  # nothing left over
    return found


@pytest.mark.parametrize("path", [
    'a" kind="forged',
    'x" item_id=evil "',
    '"',
    'ends with a backslash \\',
    'backslash then quote \\" kind=forged',
    "",
    "plain",
    "two  spaces",
    "new\nline kind=forged",
])
def test_a_value_cannot_forge_fields(path: str) -> None:
    record: dict[str, object] = {"v": 1, "seq": 1, "time": "2026-11-28T10:00:00.000Z",
                                 "event": "protected", "kind": "k", "path": path, "prev": "0"}
    line = human_line(record)
    assert "\n" not in line
    assert fields_of(line) == {"kind": "k", "path": path}


def test_quotes_in_a_logged_name(cli: Cli) -> None:
    AuditLog().append("protected", path='/h/a" kind="forged', kind="azure-publishsettings")
    run = cli("log")
    assert run.code == 0
    (line,) = run.out.splitlines()
    assert line.endswith(' protected kind=azure-publishsettings path="/h/a\\" kind=\\"forged"')
    assert fields_of(line) == {"kind": "azure-publishsettings", "path": '/h/a" kind="forged'}


def test_json_is_one_document(cli: Cli) -> None:
    log = AuditLog()
    log.append("started", pid=1, version="0.1")
    log.append("protected", path='/h/"q"', kind="k", item_id="i1")
    run = cli("log", "--json")
    assert (run.code, run.err) == (0, "")
    doc = validate(run.out, "log")
    assert [r["event"] for r in doc["records"]] == ["started", "protected"]
    assert doc["records"][1]["path"] == '/h/"q"'  # exact in JSON
    empty = validate(cli("log", "--json", "--since", "2999-01-01").out, "log")
    assert empty == {"version": 1, "records": []}


def test_verify_json_and_a_broken_chain_is_6(cli: Cli) -> None:
    log = AuditLog()
    log.append("started", pid=1, version="0.1")
    log.append("scanned", count=2)
    ok = cli("log", "--verify", "--json")
    assert ok.code == 0
    assert validate(ok.out, "log") == {"version": 1, "ok": True, "lines": 2, "problem": "",
                                       "where": "", "dropped": 0}
    stored = log.directory / "audit.jsonl"
    stored.write_text(stored.read_text().replace('"pid":1', '"pid":2'))
    broken = cli("log", "--verify", "--json")
    assert broken.code == 6
    doc = validate(broken.out, "log")
    assert (doc["ok"], doc["where"]) == (False, "audit.jsonl:1")
    assert cli("log", "--verify").code == 6


def test_a_bad_since_is_2_and_changes_nothing(cli: Cli) -> None:
    log = AuditLog()
    log.append("scanned", count=1)
    before = (log.directory / "audit.jsonl").read_bytes()
    run = run_subprocess("log", "--since", "5x")
    assert (run.code, run.out) == (2, "")
    assert run.err.endswith("credguard log: error: argument --since: not a time or duration: "
                            "'5x' (try 2026-11-28, 2026-11-28T10:00, 30m, 2h, 7d)\n")
    assert (log.directory / "audit.jsonl").read_bytes() == before


def test_help() -> None:
    run = run_subprocess("log", "--help")
    text = " ".join(run.out.split())
    assert run.code == 0
    assert "--json print one JSON document (schema: docs/schemas/log.schema.json)" in text
    assert "--verify check the hash chain; exit 6 if it is broken" in text
