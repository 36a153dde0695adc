"""``status`` and ``doctor`` tell the truth: what is left on disk (``at_risk``), a protected
counter that survives restarts, and one verdict on "protected or not" that both print.

The daemon tests run the real ``credguard daemon`` on real inotify with the real Secret Service
(or a session bus without one: alert-only mode), and the real ``status`` and ``doctor``
commands as processes. The bookkeeping tests drive :class:`AtRisk` and :class:`ProtectedCount`
with real outcomes and a real audit log in the test's temp dirs.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, wait_for
from helpers.home import Home, Run, run_subprocess
from helpers.secret_service import SecretService, SessionBus

from credguard.audit.log import AuditLog
from credguard.daemon.alerts import AtRisk, ProtectedCount
from credguard.detect import kinds
from credguard.detect.base import Finding
from credguard.policy import Action
from credguard.protect.act import SEALED_IN_PLAINTEXT, Decision, Outcome, Result
from credguard.textsafe import escape

pytestmark = pytest.mark.timeout(120)
HOSTILE = "evil\n\x1b]0;pwned\x07\u202e.PublishSettings"  # forged lines, OSC, bidi override


def git_init(repo: Path) -> Path:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env, timeout=30)
    return repo


def status(env: dict[str, str]) -> tuple[Run, dict[str, Any]]:
    run = run_subprocess("status", "--json", env=env)
    return run, json.loads(run.out)


def doctor(env: dict[str, str]) -> tuple[Run, dict[str, Any]]:
    run = run_subprocess("doctor", "--json", env=env)
    return run, json.loads(run.out)


def at_risk(doc: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {r["path"]: (r["kind"], r["action"], r["reason"]) for r in doc.get("at_risk", [])}


def agree(env: dict[str, str]) -> tuple[dict[str, Any], Run, Run]:
    """Status and doctor give the same verdict with the same reason; both documents."""
    st_run, st = status(env)
    doc_run, doc = doctor(env)
    daemon = next(c for c in doc["checks"] if c["check"] == "daemon")
    assert daemon["essential"] and daemon["ok"] is st["protecting"] is doc["protecting"]
    assert daemon["detail"] == st["protection"] == doc["protection"]
    assert (doc_run.code == 0) is st["protecting"]
    return st, st_run, doc_run


@pytest.fixture
def world(home: Home) -> dict[str, Path]:
    """Made before the daemon starts (its first scan finds them): an alert-policy download (one
    with a hostile name too), a download the policy protects, a project file in a git work tree
    under ~/Documents, and the Azure CLI's unsealed live cache."""
    home.config_file.parent.mkdir(parents=True)
    home.config_file.write_text(
        f'[policy]\n{kinds.Kind.PUBLISH_PROFILE} = {{ downloads = "alert" }}\n')
    repo = git_init(home.documents / "webapp")
    return {
        "alerted": home.write("Downloads/contoso.PublishSettings",
                              payloads.publish_profile().data),
        "hostile": home.write(f"Downloads/{HOSTILE}", payloads.publish_profile().data),
        "protected": home.write("Downloads/old.publishsettings",
                                payloads.publishsettings_v2().data),
        "project": home.write(f"{repo.relative_to(home.root)}/Properties/PublishProfiles/"
                              "prod.pubxml.user", payloads.pubxml_user().data),
        "cache": home.write(".azure/msal_token_cache.json", payloads.msal_cache().data,
                            mode=0o644),
    }


def test_status_lists_what_is_at_risk_and_doctor_agrees_across_a_restart(
    secret_service: SecretService, home: Home, world: dict[str, Path], tmp_path: Path
) -> None:
    env = dict(os.environ)
    expected = {
        str(world["alerted"]): (kinds.Kind.PUBLISH_PROFILE, "alert", "policy"),
        str(world["hostile"]): (kinds.Kind.PUBLISH_PROFILE, "alert", "policy"),
        str(world["project"]): (kinds.Kind.VS_PUBLISH_SECRET, "harden", "project"),
        str(world["cache"]): (kinds.Kind.CLI_TOKEN_CACHE, "harden", "live-cache"),
    }
    daemon = DaemonProcess(env, tmp_path / "d.log").start()
    try:
        wait_for(lambda: at_risk(status(env)[1]) == expected, timeout=20)
        assert not world["protected"].exists()
        st, st_run, doc_run = agree(env)
        assert st_run.code == 0 and doc_run.code == 0 and st["version"] == 1
        assert st["at_risk_count"] == 4 and st["at_risk_shown_max"] == 100
        assert st["protected_count"] == st["protected_this_run"] == 1
        assert st["protected_since"]  # the oldest kept audit record: this first start
        text = run_subprocess("status", env=env)
        assert "protecting: yes" in text.out and "at risk:   4 credential file(s)" in text.out
        for path in expected:
            assert escape(path) in text.out
        assert "\x1b" not in text.out and "\u202e" not in text.out
        assert not [line for line in text.out.splitlines() if line.startswith("0;pwned")]
        assert "1 since start" in text.out
        doc = json.loads(doc_run.out)
        assert any(c["check"] == "at-risk" and c["detail"].startswith("4 credential file(s)")
                   for c in doc["checks"])
    finally:
        assert daemon.stop() == 0

    st, st_run, doc_run = agree(env)  # stopped: nothing protects, both say so and how to start
    assert st_run.code == 9 and doc_run.code == 9 and st["running"] is False
    assert st["start"] == "credguard start"
    text = run_subprocess("status", env=env)
    assert text.code == 9 and "not running" in text.out
    assert f"start it with: {st['start']}" in text.out and "credguard service install" in text.out

    restarted = DaemonProcess(env, tmp_path / "d2.log").start()
    try:
        wait_for(lambda: at_risk(status(env)[1]) == expected, timeout=20)
        st, _, doc_run = agree(env)
        assert st["protected_count"] == 1 and st["protected_this_run"] == 0  # survives restarts
        assert doc_run.code == 0
        assert "1 (audit log since" in run_subprocess("status", env=env).out
    finally:
        assert restarted.stop() == 0


def test_alert_only_is_no_protection_for_status_or_doctor(
    no_secret_service: SessionBus, home: Home, tmp_path: Path
) -> None:
    env = dict(os.environ)
    path = home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)
    daemon = DaemonProcess(env, tmp_path / "d.log").start()
    try:
        wait_for(lambda: at_risk(status(env)[1]), timeout=20)
        st, st_run, doc_run = agree(env)
        assert st_run.code == 0 and st["mode"] == "alert-only" and st["protecting"] is False
        assert at_risk(st) == {str(path): (kinds.Kind.PUBLISH_PROFILE, "protect", "alert-only")}
        assert doc_run.code == 5  # the keystore check fails too, and decides the code
        assert "alert-only mode" in st["protection"] and "keyring" in st["protection"].lower()
        text = run_subprocess("doctor", env=env)
        assert any(line.split()[:2] == ["!!", "daemon"] and "alert-only" in line
                   for line in text.out.splitlines())
        assert "protecting: NO" in run_subprocess("status", env=env).out
        assert path.exists()
    finally:
        assert daemon.stop() == 0


# -- the bookkeeping behind the fields ---------------------------------------------------------


def outcome(path: Path, result: Result, action: Decision = Action.ALERT,
            reason: str = "") -> Outcome:
    finding = Finding(str(path), kinds.Kind.PUBLISH_PROFILE, "sha256:x", {})
    return Outcome(finding, action, result, reason=reason)


def test_at_risk_is_bounded_sorted_and_forgets_what_is_resolved(home: Home) -> None:
    files = [home.write(f"Desktop/f{i:02}.PublishSettings", "x") for i in range(6)]
    risks = AtRisk(kept=4)
    for f in reversed(files):
        risks.note(outcome(f, Result.ALERTED))
    snap = risks.snapshot(shown=2)
    assert [r["path"] for r in snap["at_risk"]] == [str(f) for f in files[2:4]]
    assert snap["at_risk_count"] == 6 and snap["at_risk_shown_max"] == 2  # 4 kept, 2 counted
    risks.note(outcome(files[2], Result.PROTECTED, Action.PROTECT))
    risks.note(outcome(files[3], Result.CHANGED))  # retried: keeps its entry
    files[4].unlink()  # gone from disk: dropped at the next snapshot
    risks.discard(str(files[0]))  # allowlisted or emptied
    snap = risks.snapshot()
    assert [r["path"] for r in snap["at_risk"]] == [str(files[3]), str(files[5])]
    assert snap["at_risk_count"] == 3  # files[1] is still only counted


@pytest.mark.parametrize(("result", "action", "reason", "where", "expected"), [
    (Result.WAITING, Action.PROTECT, "paused", "Downloads", "paused"),
    (Result.FAILED, Action.PROTECT, "transaction", "Downloads", "failed"),
    (Result.ALERTED, Action.ALERT, SEALED_IN_PLAINTEXT, ".azure", SEALED_IN_PLAINTEXT),
    (Result.IMPORTED, Action.IMPORT, "", "Documents", "policy"),
    (Result.HARDENED, Action.HARDEN, "", ".azure", "live-cache"),
])
def test_each_outcome_has_its_reason(home: Home, result: Result, action: Action, reason: str,
                                     where: str, expected: str) -> None:
    risks = AtRisk()
    risks.note(outcome(home.write(f"{where}/x.json", "x"), result, action, reason))
    assert [r["reason"] for r in risks.snapshot()["at_risk"]] == [expected]


def test_protected_count_reads_only_what_was_appended_and_survives_rotation(
    tmp_path: Path,
) -> None:
    audit = AuditLog(tmp_path / "audit", max_bytes=600, keep=5)
    counter = ProtectedCount(audit)
    assert counter.count() == (0, None)
    audit.append("started", pid=1)
    for n in range(3):
        audit.append("protected", path=f"/h/Downloads/{n}.publishsettings", kind="k")
        audit.append("alerted", path='/h/"event":"protected".pubxml', kind="k")  # no false hit
    count, oldest = counter.count()
    rotated = sorted(p.name for p in (tmp_path / "audit").glob("audit.*.jsonl"))
    assert rotated and count == 3  # spread over rotated files, each counted once
    first = json.loads(next(iter(audit.entries()))[0])["time"]
    assert oldest == first
    assert ProtectedCount(audit).count() == (3, first)  # a new daemon: the same answer
    audit.append("protected", path="/h/Downloads/4.publishsettings", kind="k")
    assert counter.count()[0] == 4
