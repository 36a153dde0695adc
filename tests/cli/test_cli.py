"""The CLI, in-process and as a real subprocess: output formats, exit codes, secret hygiene."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import pytest
from helpers import payloads
from helpers.attacker import other_user, run_as
from helpers.home import Home, Run, run_subprocess
from helpers.schemas import validate
from helpers.standin import line

from credguard import __version__, doctor
from credguard.daemon.watcher import Watcher
from credguard.detect import kinds
from credguard.detect.kinds import KINDS
from credguard.paths import Root
from credguard.scan import access

pytestmark = pytest.mark.timeout(60)
Cli = Callable[..., Run]

# The parts of the OASIS SARIF 2.1.0 schema that credguard's output uses, with the schema's own
# required properties and value constraints (sarif-schema-2.1.0.json, trimmed to these objects).
_MESSAGE = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
_LOCATION = {
    "type": "object",
    "properties": {
        "physicalLocation": {
            "type": "object",
            "required": ["artifactLocation"],
            "properties": {
                "artifactLocation": {
                    "type": "object",
                    "required": ["uri"],
                    "properties": {"uri": {"type": "string", "format": "uri"}},
                }
            },
        }
    },
}
SARIF_SCHEMA = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string"},
        "version": {"const": "2.1.0"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "version": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "uniqueItems": True,
                                        "items": {
                                            "type": "object",
                                            "required": ["id"],
                                            "properties": {
                                                "id": {"type": "string"},
                                                "shortDescription": _MESSAGE,
                                                "fullDescription": _MESSAGE,
                                                "help": _MESSAGE,
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "properties": {
                                                        "level": {
                                                            "enum": [
                                                                "none",
                                                                "note",
                                                                "warning",
                                                                "error",
                                                            ]
                                                        }
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "invocations": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["executionSuccessful"],
                            "properties": {
                                "executionSuccessful": {"type": "boolean"},
                                "toolExecutionNotifications": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["message"],
                                        "properties": {
                                            "message": _MESSAGE,
                                            "locations": {"type": "array", "items": _LOCATION},
                                            "level": {"enum": ["none", "note", "warning", "error"]},
                                        },
                                    },
                                },
                            },
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["message"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": -1},
                                "level": {"enum": ["none", "note", "warning", "error"]},
                                "message": _MESSAGE,
                                "locations": {"type": "array", "items": _LOCATION},
                                "partialFingerprints": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                                "suppressions": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["kind"],
                                        "properties": {
                                            "kind": {"enum": ["inSource", "external"]},
                                            "justification": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def plant_everything(home: Home) -> list[str]:
    """One of every kind in the default roots; returns every secret string planted."""
    planted = [
        ("Downloads/Fake-Dev-credentials.publishsettings", payloads.publishsettings_v2()),
        ("Downloads/v1.publishsettings", payloads.publishsettings_v1()),
        (
            "Downloads/app.PublishSettings",
            payloads.publish_profile(db_password=True, comment_secret=True),
        ),
        ("Desktop/site.pubxml", payloads.pubxml()),
        ("Desktop/site.pubxml.user", payloads.pubxml_user(connection_strings=True)),
        (".azure/msal_token_cache.json", payloads.msal_cache(n_accounts=2)),
        (".azure/accessTokens.json", payloads.access_tokens(service_principal=True)),
        (".azure/service_principal_entries.json", payloads.sp_entries()),
        (".azure/aks/aksServicePrincipal.json", payloads.aks_sp()),
        (".azure/azureProfile.json", payloads.legacy_azure_profile()),
        (".Azure/AzureRmContext.json", payloads.ps_context()),
        (".IdentityService/msal.cache", payloads.ps_msal_cache()),
        (".azd/auth/msal/cache.json", payloads.azd_msal_cache()),
        (".azd/auth/cred.json", payloads.azd_cred()),
    ]
    secrets: list[str] = []
    for rel, payload in planted:
        home.write(rel, payload.data)
        secrets.extend(payload.secrets)
    assert secrets
    return secrets


def assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, "a secret value reached the output"


def test_version(cli: Cli) -> None:
    with pytest.raises(SystemExit) as info:
        cli("--version")
    assert info.value.code == 0


def test_version_subprocess() -> None:
    run = run_subprocess("--version")
    assert run.code == 0 and run.out.strip() == f"credguard {__version__}"


def test_scan_json_matches_schema_and_has_no_secrets(home: Home, cli: Cli) -> None:
    secrets = plant_everything(home)
    run = cli("scan", "--json")
    assert run.code == 1, run.err
    doc = validate(run.out, "scan")
    assert {f["kind"] for f in doc["findings"]} == set(KINDS)
    assert_no_secret(run.out + run.err, secrets)


def test_scan_sarif_shape_and_no_secrets(home: Home, cli: Cli) -> None:
    secrets = plant_everything(home)
    run = cli("scan", "--sarif")
    assert run.code == 1
    doc = json.loads(run.out)
    jsonschema.validate(doc, SARIF_SCHEMA, format_checker=jsonschema.FormatChecker())
    driver = doc["runs"][0]["tool"]["driver"]
    assert [r["id"] for r in driver["rules"]] == list(KINDS)
    results = doc["runs"][0]["results"]
    assert len(results) == 14
    for result in results:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith(
            "file:///"
        )
    assert_no_secret(run.out + run.err, secrets)


def test_sarif_stays_valid_when_a_path_cannot_be_scanned(
    home: Home, cli: Cli, tmp_path: Path
) -> None:
    cred = home.write("Downloads/a.publishsettings", payloads.publish_profile().data)
    missing = tmp_path / "nope"
    for command, target in (("scan", home.downloads), ("check", cred)):
        run = cli(command, "--sarif", str(target), str(missing))
        assert run.code == 1, run.err  # the finding wins; the error is in the document
        doc = json.loads(run.out)
        jsonschema.validate(doc, SARIF_SCHEMA, format_checker=jsonschema.FormatChecker())
        (invocation,) = doc["runs"][0]["invocations"]
        assert invocation["executionSuccessful"] is False
        (note,) = invocation["toolExecutionNotifications"]
        assert note["message"]["text"] == "skipped (not-found) no such file or directory"
        assert [r["ruleId"] for r in doc["runs"][0]["results"]] == [kinds.PUBLISH_PROFILE]
        assert f"{missing}: not " in run.err
    assert cred.exists()


def test_scan_human_output_has_no_secrets(home: Home, cli: Cli) -> None:
    secrets = plant_everything(home)
    run = cli("scan")
    assert run.code == 1
    assert "azure-publishsettings" in run.out and "revoke:" in run.out
    assert_no_secret(run.out + run.err, secrets)


def test_scan_subprocess_all_formats(home: Home) -> None:
    secrets = plant_everything(home)
    for fmt in ((), ("--json",), ("--sarif",)):
        run = run_subprocess("scan", *fmt)
        assert run.code == 1, run.err
        assert_no_secret(run.out + run.err, secrets)


def test_clean_machine_exits_zero(cli: Cli) -> None:
    run = cli("scan")
    assert run.code == 0 and "No credential files found." in run.out


def test_missing_explicit_path_is_an_input_error(cli: Cli, tmp_path: Path) -> None:
    run = cli("scan", "--json", str(tmp_path / "nope"))
    assert run.code == 4
    assert validate(run.out, "scan")["skipped"][0]["reason"] == "not-found"
    assert run.err == (f"credguard: error: {tmp_path / 'nope'}: not scanned: not-found "
                       "(no such file or directory)\n")


def test_findings_win_over_path_errors(home: Home, cli: Cli, tmp_path: Path) -> None:
    home.write("Downloads/a.publishsettings", payloads.publish_profile().data)
    run = cli("scan", str(home.downloads), str(tmp_path / "nope"))
    assert run.code == 1


def test_scan_explicit_file(home: Home, cli: Cli) -> None:
    path = home.write("Documents/renamed.dat", payloads.publishsettings_v1().data)
    run = cli("scan", "--json", str(path))
    assert run.code == 1
    assert json.loads(run.out)["findings"][0]["kind"] == kinds.PUBLISHSETTINGS


def test_ignore_moves_finding_to_ignored(home: Home, cli: Cli) -> None:
    home.write("Downloads/a.publishsettings", payloads.publish_profile().data)
    fp = json.loads(cli("scan", "--json").out)["findings"][0]["fingerprint"]
    run = cli("ignore", fp, "--reason", 'test fixture "quoted" \u00e9')
    assert run.code == 0 and "added" in run.out
    assert "already" in cli("ignore", fp).out
    run = cli("scan", "--json")
    doc = json.loads(run.out)
    assert run.code == 0
    assert doc["findings"] == []
    assert doc["ignored"][0]["fingerprint"] == fp
    assert doc["ignored"][0]["reason"] == 'test fixture "quoted" \u00e9'
    assert "1 ignored" in cli("scan").out
    assert oct(home.config_file.stat().st_mode & 0o777) == "0o600"


def test_ignore_rejects_bad_fingerprint(cli: Cli) -> None:
    run = cli("ignore", "sha256:xyz")
    assert run.code == 2 and "fingerprint" in run.err


def test_check_for_pre_commit(home: Home, cli: Cli, tmp_path: Path) -> None:
    clean = home.write("repo/README.md", "# hello\n")
    assert cli("check", str(clean)).code == 0
    cred = home.write("repo/deploy/app.xml", payloads.publish_profile().data)
    link = home.root / "repo" / "link"
    link.symlink_to(clean)
    run = cli("check", str(clean), str(cred), str(link))
    assert run.code == 1 and "app.xml" in run.out
    assert cli("check", str(clean), str(link)).code == 0  # a symlink in a commit is no error


def test_debug_shows_traceback_for_errors(home: Home) -> None:
    home.config_file.parent.mkdir(parents=True)
    home.config_file.write_text("[scan]\nbogus = 1\n")
    plain = run_subprocess("scan")
    assert plain.code == 3 and "Traceback" not in plain.err
    assert f"{home.config_file}:2" in plain.err and "bogus" in plain.err
    debug = run_subprocess("--debug", "scan")
    assert debug.code == 3 and "Traceback" in debug.err


def test_config_show_lists_every_value_and_source(home: Home, cli: Cli) -> None:
    home.config_file.parent.mkdir(parents=True)
    home.config_file.write_text('[scan]\nmax_file_size = "8 MiB"\n')
    os.environ["CREDGUARD_SCAN_ONE_FILE_SYSTEM"] = "false"
    try:
        run = cli("config", "show")
        doc = json.loads(cli("config", "show", "--json").out)
    finally:
        del os.environ["CREDGUARD_SCAN_ONE_FILE_SYSTEM"]
    assert run.code == 0
    assert f"user config {home.config_file}:2" in run.out
    assert "env CREDGUARD_SCAN_ONE_FILE_SYSTEM" in run.out
    settings = doc["settings"]
    assert settings["scan.max_file_size"] == {
        "value": 8 << 20,
        "source": f"user config {home.config_file}:2",
    }
    assert settings["scan.one_file_system"]["value"] is False
    assert settings["scan.sniff_max_size"]["source"] == "default"


DOCTOR_CHECKS = ("keyring", "keystore", "vault", "daemon", "access", "ram-dir", "inotify",
                 "filesystem", "notifications", "tray", "service")  # fmt: skip


def test_doctor_reports_every_check(cli: Cli) -> None:
    doc = json.loads(cli("doctor", "--json").out)
    assert [c["check"] for c in doc["checks"]] == list(DOCTOR_CHECKS)
    assert doc["healthy"] is all(c["ok"] for c in doc["checks"] if c["essential"])
    assert not doc["healthy"] and not doc["protecting"]  # no daemon runs here
    failed = {c["check"] for c in doc["checks"] if c["essential"] and not c["ok"]}
    run = cli("doctor")
    assert run.code == (9 if failed == {"daemon"} else 5)
    shown = [line.split()[1] for line in run.out.splitlines()]
    assert shown == list(DOCTOR_CHECKS)


@pytest.mark.parametrize(("platform", "says"), [
    ("macos", "macOS: never run on a Mac, checked only by a simulation"),
    ("windows", "Windows: never run on Windows, checked only by a simulation"),
    ("other", "this system is not tested: credguard is tested on Linux only"),
])
def test_doctor_says_what_an_untested_platform_lacks(
        cli: Cli, monkeypatch: pytest.MonkeyPatch, platform: str, says: str) -> None:
    """The limits issue 19 lists, where a macOS or Windows user looks first (rendered here
    with the platform forced: no Mac or Windows machine runs these tests)."""
    monkeypatch.setenv("CREDGUARD_PLATFORM", platform)
    first = json.loads(cli("doctor", "--json").out)["checks"][0]
    assert (first["check"], first["ok"], first["essential"]) == ("platform", False, False)
    assert first["detail"].startswith(says)
    if platform == "macos":
        assert "Full Disk Access for the Trash" in first["detail"]
    if platform == "windows":
        assert "ACLs are neither read nor changed" in first["detail"]


def test_doctor_counts_the_configured_roots(home: Home, cli: Cli, tmp_path: Path) -> None:
    """Doctor checks the roots the daemon watches: the default ones plus scan.extra_roots."""

    def watches() -> int:
        doc = json.loads(cli("doctor", "--json").out)
        detail = next(c["detail"] for c in doc["checks"] if c["check"] == "inotify")
        return int(re.match(r"roots need ~(\d+) watch", detail)[1])  # type: ignore[index]

    before = watches()
    srv = tmp_path / "srv"
    for sub in ("a/b", "c"):
        (srv / sub).mkdir(parents=True)
    home.config_file.parent.mkdir(parents=True)
    home.config_file.write_text(f'[scan]\nextra_roots = ["{srv}"]\n')
    assert watches() == before + 4  # srv, a, a/b, c


@pytest.fixture
def locked_root() -> Iterator[tuple[Path, Path]]:
    """``Downloads`` (mode 0700, root's) and ``Documents`` (0755) in a fresh folder under /tmp
    every user may enter: another uid can reach both and read only the second."""
    base = Path(tempfile.mkdtemp(prefix="cg-access-", dir="/tmp"))
    base.chmod(0o755)
    (base / "Downloads").mkdir(mode=0o700)
    (base / "Documents").mkdir(mode=0o755)
    yield base / "Downloads", base / "Documents"
    shutil.rmtree(base)


GRANT = ("allow it in System Settings > Privacy & Security > Files and Folders "
         "(Downloads/Desktop/Documents) or Full Disk Access (Trash) for {python}, then run: "
         "credguard restart")  # fmt: skip


def _unreadable_status(roots: list[dict[str, str]]) -> dict[str, object]:
    """A protecting daemon's status answer around the watcher's ``roots``."""
    return {"ok": True, "result": {
        "running": True, "pid": os.getpid(), "since": "2025-01-01T00:00:00Z",
        "mode": "protecting", "mode_reason": "", "keystore": "keyring", "roots": roots,
        "queue": 0, "last_scan": None, "protected_count": 0, "protected_since": None,
        "protected_this_run": 0, "at_risk": [], "at_risk_count": 0, "at_risk_shown_max": 100,
        "config_error": None}}


@pytest.mark.security
@pytest.mark.parametrize("platform", ["linux", "macos"])
def test_doctor_and_status_say_what_to_grant_for_a_root_they_cannot_read(
    platform: str, cli: Cli, locked_root: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    """A root that refuses to open, for real: root ignores file modes, so the daemon's watcher
    and doctor's own probe run as a second user (a forked child) on a folder of root's. That
    refusal is EACCES; macOS's privacy settings refuse with EPERM, which counts the same, and
    its wording (what to grant, to which interpreter) is rendered with the platform forced."""
    if os.geteuid() != 0:
        pytest.fail("needs root to create a second user (CI runs as root)")
    monkeypatch.setenv("CREDGUARD_PLATFORM", platform)
    locked, readable = locked_root
    roots = [Root(locked, "downloads"), Root(readable, "documents")]

    def as_the_daemon_and_doctor() -> str:
        watcher = Watcher(roots, lambda *_: None, lambda *_: None)
        watcher.start()
        try:
            rows = watcher.status()
        finally:
            watcher.stop()
        alone = [c.to_json() for c in doctor.access_checks(roots, {"running": False})]
        return json.dumps({"rows": rows, "doctor": alone, "python": access.interpreter()})

    with other_user() as user:
        seen = json.loads(run_as(user.uid, user.gid, as_the_daemon_and_doctor))
    said = f"cannot read {locked}: permission denied"
    if platform == "macos":
        assert Path(seen["python"]).name.startswith("python")  # sys.executable, links resolved
        said += "; " + GRANT.format(python=seen["python"])
    assert [(r["path"], r["access"]) for r in seen["rows"]] == [(str(locked), said),
                                                                 (str(readable), "")]
    assert seen["doctor"] == [{"check": "access", "ok": False, "detail": said,
                               "essential": False}]

    answers: list[bytes] = request.getfixturevalue("stand_in")  # a thread: after the fork
    answers += [line(_unreadable_status(seen["rows"]))] * 3
    run = cli("status")
    assert f"  denied   {said}" in run.out.splitlines() and run.code == 0
    (shown,) = [r for r in validate(cli("status", "--json").out, "status")["roots"]
                if r["access"]]
    assert shown == {**seen["rows"][0], "access": said}  # the daemon's fields, kept as they are
    checks = json.loads(cli("doctor", "--json").out)["checks"]
    assert [c for c in checks if c["check"] == "access"] == seen["doctor"]


def test_doctor_runs_without_the_daemon_package() -> None:
    """doctor sits above the core, beside no driver: checking loads nothing of the daemon."""
    code = ("import sys; from credguard import config, doctor; doctor.run_checks(config.load()); "
            "print([m for m in sys.modules if m.startswith('credguard.daemon')])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert done.stdout == "[]\n"


def test_python_dash_m_entry_point() -> None:
    run = run_subprocess("scan", "--json")
    assert run.code == 0 and validate(run.out, "scan")["version"] == 1


def test_progress_goes_to_stderr_only_on_a_terminal(home: Home) -> None:
    import pty
    import subprocess
    import sys

    for i in range(50):
        home.write(f"Downloads/d{i}/f.txt", "hello")
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "credguard", "scan"],
            stderr=slave,
            stdout=subprocess.PIPE,
            timeout=60,
            check=False,
        )
        os.close(slave)
        err = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0
    assert b"scanning" in err and b"scanning" not in proc.stdout
    assert "scanning" not in run_subprocess("scan").err  # not a terminal: silent


def test_pre_commit_hook_definition_runs_check() -> None:
    from helpers.home import REPO

    text = (REPO / ".pre-commit-hooks.yaml").read_text()
    assert "- id: credguard\n" in text
    assert "  entry: credguard check\n" in text and "  language: python\n" in text
