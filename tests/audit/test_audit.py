"""The hash-chained audit log: chain, rotation, concurrency, tampering, crash repair, no secrets,
modes, and ``credguard log`` in-process."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.home import REPO, Run

from credguard.audit import log as auditlog
from credguard.audit.log import AuditLog
from credguard.audit.record import EVENTS, FIELDS, ZERO
from credguard.cli.log_cmd import parse_when

pytestmark = pytest.mark.timeout(60)
Cli = Callable[..., Run]
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def filled(tmp_path: Path, count: int = 8, **kwargs: int) -> AuditLog:
    log = AuditLog(tmp_path / "audit", **kwargs)
    for i in range(count):
        log.append("detected", path=f"/home/u/Downloads/f{i}.publishsettings", kind="k", count=i)
    return log


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    """Record times come from this list, one per append (2020-01-02 08:00, 09:00, ... UTC)."""
    times = [datetime(2020, 1, 2, 8, tzinfo=UTC) + timedelta(hours=i) for i in range(6)]
    pending = iter(times)
    monkeypatch.setattr(auditlog, "now", lambda: next(pending).isoformat(timespec="milliseconds"))
    yield times


def test_chain_over_many_appends(tmp_path: Path) -> None:
    log = filled(tmp_path, 50)
    lines = lines_of(log.directory / "audit.jsonl")
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == list(range(1, 51))
    assert records[0]["prev"] == ZERO
    assert all(r["prev"] == digest(p) for r, p in zip(records[1:], lines, strict=False))
    assert list(records[0]) == ["v", "seq", "time", "event", "count", "kind", "path", "prev"]
    assert all(TIME.fullmatch(r["time"]) for r in records)
    assert log.verify() == auditlog.Verification(True, 50)
    assert list(log.records()) == records


def test_append_returns_the_record_written(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    record = log.append("started", pid=42, version="1.0")
    assert record == json.loads((tmp_path / "audit" / "audit.jsonl").read_bytes())
    assert (record["event"], record["pid"], record["seq"]) == ("started", 42, 1)


def test_rotation_keeps_the_chain_and_bounds_the_files(tmp_path: Path) -> None:
    log = filled(tmp_path, 40, max_bytes=600, keep=3)
    names = sorted(p.name for p in log.directory.glob("audit*.jsonl"))
    assert names == ["audit.1.jsonl", "audit.2.jsonl", "audit.3.jsonl", "audit.jsonl"]
    files = [log.directory / n for n in ("audit.3.jsonl", "audit.2.jsonl", "audit.1.jsonl")]
    files.append(log.directory / "audit.jsonl")
    assert all(0 < f.stat().st_size <= 600 for f in files)
    for older, newer in itertools.pairwise(files):
        assert json.loads(lines_of(newer)[0])["prev"] == digest(lines_of(older)[-1])
    seqs = [int(str(r["seq"])) for r in log.records()]
    assert seqs == list(range(seqs[0], 41)) and seqs[0] > 1
    result = log.verify()
    assert result.ok and result.lines == len(seqs) and result.dropped == seqs[0] - 1


def test_keep_zero_keeps_only_the_current_file(tmp_path: Path) -> None:
    log = filled(tmp_path, 20, max_bytes=500, keep=0)
    assert [p.name for p in log.directory.glob("audit*.jsonl")] == ["audit.jsonl"]
    result = log.verify()
    assert result.ok and result.dropped > 0


def test_long_lines_read_back_from_the_tail(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    for _ in range(3):  # each line is longer than the tail reader's first chunk
        log.append("scanned", paths=[f"/d/{'x' * 300}{i}" for i in range(40)])
    assert log.verify().ok and log.verify().lines == 3


WRITER = """
import os, sys, time
from pathlib import Path
from credguard.audit.log import AuditLog
log = AuditLog(Path(sys.argv[1]), max_bytes=4096, keep=100)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.002)
for i in range(int(sys.argv[3])):
    log.append("scanned", pid=os.getpid(), count=i)
    time.sleep(0.002)  # leave the lock free for a moment, so writers interleave
"""


def test_concurrent_appends_from_threads_and_processes(tmp_path: Path) -> None:
    directory, go, each = tmp_path / "audit", tmp_path / "go", 25
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [str(directory), str(go), str(each)]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, *args], env=env) for _ in range(3)]
    start = threading.Event()

    def write(n: int) -> None:
        log = AuditLog(directory, max_bytes=4096, keep=100)
        start.wait()
        for i in range(each):
            log.append("scanned", root=f"thread-{n}", count=i)
            time.sleep(0.002)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    go.touch()
    start.set()
    for t in threads:
        t.join()
    assert [p.wait(timeout=30) for p in procs] == [0, 0, 0]
    log = AuditLog(directory, max_bytes=4096, keep=100)
    records = list(log.records())
    assert [r["seq"] for r in records] == list(range(1, 7 * each + 1))
    writers = [str(r.get("root", r.get("pid"))) for r in records]
    assert len(set(writers)) == 7 and len(list(directory.glob("audit.*.jsonl"))) > 1
    assert sum(a != b for a, b in itertools.pairwise(writers)) > 6  # interleaved, not in turn
    assert log.verify() == auditlog.Verification(True, 7 * each)


def _edit(lines: list[bytes]) -> None:
    lines[2] = lines[2].replace(b'"count":2', b'"count":7')


def _forge(lines: list[bytes]) -> None:
    forged = json.loads(lines[-1]) | {"seq": 9, "prev": digest(lines[-1])}
    lines.append(json.dumps(forged, separators=(",", ":")).encode())


TAMPERING: dict[str, tuple[Callable[[list[bytes]], object], str, str]] = {
    "edited field": (_edit, "audit.jsonl:3", "line edited"),
    "deleted line": (lambda ls: ls.pop(3), "audit.jsonl:4", "seq jumps from 3 to 5"),
    "inserted line": (lambda ls: ls.insert(4, ls[1]), "audit.jsonl:5", "seq 2 after seq 4"),
    "reordered lines": (lambda ls: ls.insert(2, ls.pop(3)), "audit.jsonl:3", "seq jumps"),
    "deleted first line": (lambda ls: ls.pop(0), "audit.jsonl:1", "starts at seq 2"),
    "edited last line": (
        lambda ls: ls.append(ls.pop().replace(b'"count":7', b'"count":9')),
        "audit.jsonl:8",
        "last line edited",
    ),
    "deleted last line": (lambda ls: ls.pop(), "audit.jsonl:7", "1 line(s) missing at the end"),
    "forged last line": (_forge, "audit.jsonl:9", "not in audit.head"),
    "garbage line": (lambda ls: ls.insert(5, b"{}"), "audit.jsonl:6", "not a valid"),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_is_detected_at_the_right_line(tmp_path: Path, case: str) -> None:
    log = filled(tmp_path)
    change, where, problem = TAMPERING[case]
    path = log.directory / "audit.jsonl"
    lines = lines_of(path)
    change(lines)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    result = log.verify()
    assert not result.ok and result.where == where and problem in result.problem, result


def test_tampering_across_rotated_files(tmp_path: Path) -> None:
    log = filled(tmp_path, 30, max_bytes=600, keep=4)
    older = log.directory / "audit.1.jsonl"
    older.write_bytes(older.read_bytes().replace(b'"kind":"k"', b'"kind":"x"', 1))
    assert log.verify().where == "audit.1.jsonl:1"
    (log.directory / "audit.2.jsonl").unlink()
    first = json.loads(lines_of(log.directory / "audit.1.jsonl")[0])["seq"]
    result = log.verify()
    assert result.where == "audit.1.jsonl:1" and f"to {first}" in result.problem


def test_head_behind_after_a_crash_is_reported_then_recorded(tmp_path: Path) -> None:
    log = filled(tmp_path, 3)
    head = log.directory / "audit.head"
    before = head.read_bytes()
    log.append("stopped", pid=1)
    head.write_bytes(before)  # the crash came between the line and the head
    assert log.verify().problem.startswith("lines after seq 3 are not in audit.head")
    log.append("started", pid=2)
    assert [(r["event"], r.get("detail")) for r in log.records()][-2:] == [
        ("recovered", "audit.head said seq 3"),
        ("started", None),
    ]
    assert log.verify() == auditlog.Verification(True, 6)
    head.unlink()
    assert log.verify().problem == "audit.head is missing or unreadable"


def test_crash_mid_line_is_reported_then_repaired(tmp_path: Path) -> None:
    log = filled(tmp_path, 5)
    path = log.directory / "audit.jsonl"
    last_whole = lines_of(path)[-1]
    partial = b'{"v":1,"seq":6,"time":"2026-11-'
    with path.open("ab") as f:
        f.write(partial)
    result = log.verify()
    assert (result.ok, result.problem, result.where) == (
        False,
        "incomplete last line (a crash or truncation)",
        "audit.jsonl:6",
    )
    record = log.append("started", pid=7)
    recovered, started = (json.loads(line) for line in lines_of(path)[-2:])
    assert recovered["event"] == "recovered" and recovered["prev"] == digest(last_whole)
    assert recovered["count"] == len(partial) and digest(partial) in str(recovered["detail"])
    assert (started, started["seq"]) == (record, 7)
    assert log.verify() == auditlog.Verification(True, 7)


def test_a_record_missing_only_its_newline_is_kept(tmp_path: Path) -> None:
    log = filled(tmp_path, 4)
    path = log.directory / "audit.jsonl"
    path.write_bytes(path.read_bytes()[:-1])
    assert log.verify().where == "audit.jsonl:4"
    log.append("stopped", pid=1)
    assert [r["event"] for r in log.records()] == ["detected"] * 4 + ["stopped"]
    assert log.verify() == auditlog.Verification(True, 5)


def test_records_since(tmp_path: Path, clock: list[datetime]) -> None:
    log = filled(tmp_path, 6)
    assert [r["count"] for r in log.records(clock[4])] == [4, 5]
    assert [r["count"] for r in log.records(clock[4] + timedelta(milliseconds=1))] == [5]
    naive_local = clock[3].astimezone().replace(tzinfo=None)  # naive: local time
    assert [r["count"] for r in log.records(naive_local)] == [3, 4, 5]


def test_parse_when() -> None:
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    assert parse_when("30m", now) == now - timedelta(minutes=30)
    assert parse_when("2h", now) == now - timedelta(hours=2)
    assert parse_when("7d", now) == now - timedelta(days=7)
    assert parse_when("2026-11-28T10:00Z") == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert parse_when("2026-11-28") == datetime(2026, 11, 28).astimezone()
    assert parse_when("2026-11-28T10:00") == datetime(2026, 11, 28, 10).astimezone()
    for bad in ("yesterday", "5y", "2026-13-01", "99999999d"):
        with pytest.raises(Exception, match="not a time or duration"):
            parse_when(bad, now)


@pytest.mark.parametrize(
    ("event", "fields", "message"),
    [
        ("exploded", {}, "unknown audit event"),
        ("detected", {"secret": "hunter2"}, "'secret' is not allowed"),
        ("detected", {"password": "hunter2"}, "'password' is not allowed"),
        ("detected", {"prev": "hunter2"}, "'prev' is not allowed"),
        ("detected", {"detail": b"hunter2"}, "bytes is not a small JSON value"),
        ("detected", {"detail": {"client_secret": "hunter2"}}, "a key is not allowed"),
        ("detected", {"detail": {"sas_token": "hunter2"}}, "a key is not allowed"),
        ("detected", {"detail": "hunter2" * 1000}, "str is not a small JSON value"),
        ("detected", {"count": float("nan")}, "float is not a small JSON value"),
        ("detected", {"paths": [[["hunter2"]]]}, "list is not a small JSON value"),
    ],
)
def test_refused(tmp_path: Path, event: str, fields: dict[str, object], message: str) -> None:
    log = AuditLog(tmp_path / "audit")
    with pytest.raises(ValueError, match=message) as caught:
        log.append(event, **fields)
    assert "hunter2" not in str(caught.value)
    assert not log.directory.exists()


def test_no_field_can_carry_a_secret_by_name() -> None:
    risky = re.compile(r"pass|pwd|secret|token|cred|cert|pfx|key|data|content|value|blob")
    assert not [name for name in FIELDS if risky.search(name)]
    assert "recovered" in EVENTS and "v" not in FIELDS and "prev" not in FIELDS


def test_undecodable_paths_survive_and_the_file_is_ascii(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    odd = os.fsdecode(b"/home/u/\xff\xfe\x1b[31m.publishsettings")
    log.append("protected", path=odd, paths=[Path(odd)], item_id="abc")
    (record,) = log.records()
    assert record["path"] == odd and record["paths"] == [odd]
    (log.directory / "audit.jsonl").read_bytes().decode("ascii")


def test_every_record_goes_to_the_system_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="credguard.audit.log")
    AuditLog(tmp_path / "audit").append("alerted", path="/h/my file", kind="azure-cli", count=2)
    (entry,) = caplog.records
    assert entry.name == "credguard.audit.log" and entry.levelno == logging.INFO
    assert entry.getMessage() == 'alerted seq=1 count=2 kind=azure-cli path="/h/my file"'


def test_modes(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    directory.mkdir(mode=0o755)
    (directory / "audit.jsonl").touch(mode=0o644)
    filled(tmp_path, 10, max_bytes=500)
    assert directory.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in directory.iterdir()} == {0o600}


def test_cli_empty_log(cli: Cli) -> None:
    assert cli("log") == Run(0, "no audit records yet\n", "")
    assert cli("log", "--verify") == Run(0, "no audit records yet\n", "")
    run = cli("log", "--json")
    assert (run.code, json.loads(run.out), run.err) == (0, {"version": 1, "records": []}, "")


def test_cli_prints_and_verifies(cli: Cli) -> None:
    log = AuditLog()
    log.append("started", pid=1, version="0.1")
    log.append("protected", path="/h/a\x1b[2Jb\nc", kind="publish-settings", item_id="i1")
    stored = (log.directory / "audit.jsonl").read_text()
    run = cli("log", "--json")
    assert (run.code, run.err) == (0, "")
    assert json.loads(run.out) == {"version": 1,
                                   "records": [json.loads(line) for line in stored.splitlines()]}
    run = cli("log")
    first, second = run.out.splitlines()
    assert re.fullmatch(r"\S+Z started pid=1 version=0\.1", first)
    assert second.endswith(r"protected item_id=i1 kind=publish-settings path=/h/a\x1b[2Jb\nc")
    assert cli("log", "--verify") == Run(0, "audit log intact: 2 lines\n", "")
    assert json.loads(cli("log", "--verify", "--json").out)["ok"] is True
    (log.directory / "audit.jsonl").write_text(stored.replace('"pid":1', '"pid":2'))
    assert cli("log", "--verify") == Run(
        6,
        "audit log damaged at audit.jsonl:1: line edited: its hash is not the next line's prev\n",
        "",
    )


def test_cli_since(cli: Cli, clock: list[datetime]) -> None:
    log = AuditLog()
    for i in range(3):
        log.append("scanned", count=i)
    out = cli("log", "--json", "--since", "2020-01-02T09:00Z").out
    assert [record["count"] for record in json.loads(out)["records"]] == [1, 2]
    assert cli("log", "--since", "2h").out.startswith("no audit records since ")
    with pytest.raises(SystemExit) as exited:
        cli("log", "--since", "last tuesday")
    assert exited.value.code == 2
