"""``AuditLog.append_many`` (issue 16): a batch's records written as one group commit — one
fsync and one ``audit.head`` move for them all (strace counts), the same chain as one append
each, a rotation on the way that keeps the chain, and a bad record that writes nothing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from credguard.audit.log import AuditLog


def lines(log: AuditLog) -> list[bytes]:
    return (log.directory / "audit.jsonl").read_bytes().split(b"\n")[:-1]


def test_a_batch_is_the_chain_one_append_each_would_make(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    log.append("started", pid=1)
    written = log.append_many([("detected", {"path": f"/d/f{i}", "kind": "k"})
                               for i in range(5)])
    log.append("stopped", pid=1)
    records = [json.loads(line) for line in lines(log)]
    assert [r["seq"] for r in records] == list(range(1, 8))
    assert written == records[1:6]
    assert [r["path"] for r in written] == [f"/d/f{i}" for i in range(5)]
    for before, after in zip(lines(log), records[1:], strict=False):
        assert after["prev"] == hashlib.sha256(before).hexdigest()
    head = json.loads((log.directory / "audit.head").read_bytes())
    assert head == {"seq": 7, "hash": hashlib.sha256(lines(log)[-1]).hexdigest()}
    assert log.verify().ok


def test_a_batch_that_crosses_the_size_limit_rotates_and_keeps_the_chain(
        tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit", max_bytes=400, keep=5)
    log.append_many([("detected", {"path": f"/d/f{i}", "kind": "k"}) for i in range(12)])
    assert sorted(p.name for p in log.directory.glob("audit*.jsonl"))[:2] == \
        ["audit.1.jsonl", "audit.2.jsonl"]
    assert [r["seq"] for r in log.records()] == list(range(1, 13))
    result = log.verify()
    assert result.ok and result.lines == 12, result


def test_a_bad_record_in_a_batch_writes_nothing(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    log.append("started", pid=1)
    with pytest.raises(ValueError, match="unknown audit event"):
        log.append_many([("detected", {"path": "/d/a"}), ("no-such-event", {})])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        log.append_many([("detected", {"path": "/d/a"}), ("detected", {"nonsense": 1})])
    assert len(lines(log)) == 1 and log.append_many([]) == []


def test_a_batch_is_synced_once(tmp_path: Path) -> None:
    """strace: 20 records, one fsync of the log and the head's atomic write (its file and its
    directory); one append each would sync the log 20 times and the head 20 times."""
    script = (f"from credguard.audit.log import AuditLog\n"
              f"AuditLog(__import__('pathlib').Path({str(tmp_path / 'audit')!r})).append_many("
              f"[('detected', {{'path': f'/d/f{{i}}'}}) for i in range(20)])\n")
    trace = tmp_path / "trace"
    proc = subprocess.run(["strace", "-f", "-qq", "-y", "-e", "trace=fsync", "-o", str(trace),
                           sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    synced = [line for line in trace.read_text().splitlines() if "audit" in line]
    assert sum("audit.jsonl>" in line for line in synced) == 1, synced
    assert len(synced) == 3, synced


def test_a_batch_keeps_the_times_its_records_happened_at(tmp_path: Path) -> None:
    """The daemon's worker stamps each record when its event happens and writes the batch
    later: the records carry those times, not the time of writing."""
    from credguard.audit.log import now

    log = AuditLog(tmp_path / "audit")
    early = ["2026-01-02T03:04:05.006Z", "2026-01-02T03:04:05.007Z"]
    written = log.append_many([("detected", {"path": "/d/a"}), ("protected", {"path": "/d/a"})],
                              early)
    assert [r["time"] for r in written] == early
    assert [json.loads(line)["time"] for line in lines(log)] == early
    for bad in (["yesterday", early[0]], early[:1], [early[0], early[1], now()]):
        with pytest.raises(ValueError, match="one time per record"):
            log.append_many([("detected", {"path": "/d/b"}), ("detected", {"path": "/d/c"})],
                            bad)
    assert len(lines(log)) == 2 and log.verify().ok
