"""The managed policy cannot be moved, hidden or weakened: it is read from a fixed place whatever
the environment says, it can lock any key (``scan.exclude``, ``targets`` included), and every
user value it keeps out is shown, with where it came from, by ``config show`` and ``doctor``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import REPO, Home, Run

from credguard import config
from credguard.errors import ConfigError, ExitCode

pytestmark = pytest.mark.timeout(90)
Cli = Callable[..., Run]
FP = "sha256:" + "ab" * 32
REAL_POLICY = Path("/etc/xdg/credguard/policy.toml")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def download(home: Home) -> Path:
    return home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)


# -- where the policy is --------------------------------------------------------------------


def test_the_location_ignores_the_environment(home: Home) -> None:
    """A real process, nothing patched: no variable moves the policy off its fixed place."""
    env = {**os.environ, "XDG_CONFIG_DIRS": "/nonexistent", "CREDGUARD_PLATFORM": "windows",
           "WIN_PD_OVERRIDE_CSIDL_COMMON_APPDATA": "C:\\elsewhere", "PROGRAMDATA": "/nowhere"}
    code = "from credguard import paths; print(paths.managed_policy_file())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=30).stdout
    assert out.strip() == str(REAL_POLICY)


@pytest.mark.parametrize("variable", ["XDG_CONFIG_DIRS", "CREDGUARD_PLATFORM"])
def test_environment_cannot_hide_the_policy(home: Home, monkeypatch: pytest.MonkeyPatch,
                                            variable: str) -> None:
    write(home.policy_file, '[scan]\nmax_file_size = "8 MiB"\n')
    monkeypatch.setenv(variable, "/nonexistent" if variable == "XDG_CONFIG_DIRS" else "windows")
    cfg = config.load()
    assert cfg["scan.max_file_size"] == 8 << 20
    assert cfg.sources["scan.max_file_size"] == f"managed policy {home.policy_file}:2"


@pytest.mark.security
def test_real_fixed_location_read_with_xdg_config_dirs_nonexistent(home: Home,
                                                                   tmp_path: Path) -> None:
    """The real ``/etc/xdg/credguard/policy.toml``, seen only inside a private mount namespace
    (``unshare -m``, a bind mount over ``/etc/xdg``): the real ``/etc`` is never written."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    if not Path("/etc/xdg").is_dir():
        pytest.fail("/etc/xdg is missing: nothing to bind the test policy over")
    before = REAL_POLICY.read_bytes() if REAL_POLICY.exists() else None
    etc_xdg = tmp_path / "etc-xdg"
    policy = write(etc_xdg / "credguard" / "policy.toml",
                   'locked = ["scan.exclude", "targets"]\n[scan]\nmax_file_size = "8 MiB"\n')
    write(home.config_file, '[scan]\nexclude = ["*"]\n\n[[targets]]\nname = "nothing"\n'
                            'command = ["false"]\n')
    path = download(home)
    env = {**os.environ, "XDG_CONFIG_DIRS": "/nonexistent", "CREDGUARD_PLATFORM": "windows",
           "PYTHONPATH": str(REPO)}

    def in_namespace(*args: str) -> subprocess.CompletedProcess[str]:
        script = 'mount --bind "$1" /etc/xdg && shift && exec "$@"'
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
             str(etc_xdg), sys.executable, "-m", "credguard", *args],
            env=env, capture_output=True, text=True, timeout=60, check=False)

    show = in_namespace("config", "show", "--json")
    assert show.returncode == 0, show.stderr
    doc = json.loads(show.stdout)
    assert doc["files"]["managed_policy"] == str(REAL_POLICY)
    assert doc["settings"]["scan.max_file_size"] == {
        "value": 8 << 20, "source": f"managed policy {REAL_POLICY}:3"}
    assert doc["settings"]["scan.exclude"]["value"] == []
    assert {o["key"] for o in doc["overridden"]} == {"scan.exclude", "targets"}
    scan = in_namespace("scan", "--json")
    assert scan.returncode == ExitCode.FINDINGS, scan.stderr
    assert [f["path"] for f in json.loads(scan.stdout)["findings"]] == [str(path)]
    after = REAL_POLICY.read_bytes() if REAL_POLICY.exists() else None
    assert after == before and policy.exists(), "the bind mount stayed in its namespace"


# -- locking ----------------------------------------------------------------------------------


def test_user_exclude_everything_warns(home: Home, cli: Cli) -> None:
    write(home.config_file, '[scan]\nexclude = ["*", "*/fixtures/*"]\n')
    path = download(home)
    run = cli("scan", "--json")
    assert run.code == 0 and json.loads(run.out)["findings"] == []
    warning = (f"user config {home.config_file}:2: scan.exclude pattern '*' excludes every "
               "credential file in every folder credguard scans")
    assert warning in run.err and "fixtures" not in run.err and path.exists()


def test_exclude_of_one_name_everywhere_warns(home: Home) -> None:
    write(home.config_file, '[scan]\nexclude = ["*.publishsettings"]\n')
    [warning] = config.load().warnings
    assert "excludes files named like contoso.publishsettings" in warning


def test_policy_locks_exclude_without_setting_it(home: Home, cli: Cli,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write(home.policy_file, '# fleet policy\nlocked = ["scan.exclude"]\n')
    write(home.config_file, '[scan]\nexclude = ["*"]\n')
    monkeypatch.setenv("CREDGUARD_SCAN_EXCLUDE", "*")
    path = download(home)
    cfg = config.load()
    assert cfg["scan.exclude"] == () and cfg.sources["scan.exclude"] == "default"
    assert cfg.locked == {"scan.exclude": f"managed policy {home.policy_file}:2"}
    assert [(o.key, o.value, o.source) for o in cfg.overridden] == [
        ("scan.exclude", ("*",), f"user config {home.config_file}:2"),
        ("scan.exclude", ("*",), "env CREDGUARD_SCAN_EXCLUDE"),
    ]
    run = cli("scan", "--json")
    assert run.code == ExitCode.FINDINGS
    assert [f["path"] for f in json.loads(run.out)["findings"]] == [str(path)]
    assert "scan.exclude = ['*'] locked by the managed policy" in run.err


def test_policy_set_exclude_stays_locked(home: Home) -> None:
    """The behaviour before ``locked``: a key without a strength order that the policy sets."""
    write(home.policy_file, '[scan]\nexclude = ["*/lab/*"]\n')
    write(home.config_file, '[scan]\nexclude = ["*"]\n')
    cfg = config.load()
    assert cfg["scan.exclude"] == ("*/lab/*",) and not any("excludes" in w for w in cfg.warnings)
    assert cfg.locked["scan.exclude"] == f"managed policy {home.policy_file}:2"


def test_user_target_that_fails_is_locked_out(secret_service: object, home: Home,
                                              cli: Cli) -> None:
    """A user target ["false"] keeps every source; a policy that locks targets deletes them."""
    user_target = '[[targets]]\nname = "nothing"\ncommand = ["false"]\n'
    write(home.config_file, user_target)
    path = download(home)
    run = cli("scan", "--protect", "--json")
    assert json.loads(run.out)["actions"][0]["protected"] is False and path.exists()
    write(home.policy_file, 'locked = ["targets"]\n')
    cfg = config.load()
    assert cfg.targets == ()
    [record] = cfg.overridden
    assert (record.key, record.value, record.source) == (
        "targets", "nothing", f"{home.config_file}:3")
    run = cli("scan", "--protect", "--json")
    assert json.loads(run.out)["actions"][0]["protected"] is True and not path.exists()
    assert "[[targets]] 'nothing' locked by the managed policy" in run.err


def test_policy_targets_still_run_when_locked(home: Home) -> None:
    write(home.policy_file, 'locked = ["targets"]\n\n[[targets]]\nname = "fleet"\n'
                            'command = ["fleet-import", "{file}"]\n')
    write(home.config_file, '[[targets]]\nname = "mine"\ncommand = ["mine"]\n')
    assert [t.name for t in config.load().targets] == ["fleet"]


def test_lock_a_section_and_the_allowlist(home: Home) -> None:
    write(home.policy_file, 'locked = ["policy", "ignore"]\n')
    write(home.config_file, '[policy]\nazure-publishsettings = "ignore"\n'
                            'azure-cli-token-cache = "protect"\n\n'
                            f'[[ignore]]\nfingerprint = "{FP}"\n')
    cfg = config.load()
    assert {o.key for o in cfg.overridden} == {
        "policy.azure-publishsettings", "policy.azure-cli-token-cache", "ignore"}
    assert cfg.sources["policy.azure-publishsettings"] == "default"
    assert cfg.ignores == ()
    with pytest.raises(ConfigError, match="managed policy locks the allowlist"):
        config.add_ignore(cfg, "sha256:" + "cd" * 32, "")


def test_a_lock_is_exact_even_for_ordered_and_additive_keys(home: Home) -> None:
    write(home.policy_file, 'locked = ["scan.max_file_size", "scan.extra_roots"]\n'
                            '[scan]\nmax_file_size = "8 MiB"\nextra_roots = ["/srv/a"]\n')
    write(home.config_file, '[scan]\nmax_file_size = "16 MiB"\nextra_roots = ["/srv/b"]\n')
    cfg = config.load(flags={"scan.max_file_size": 32 << 20})
    assert cfg["scan.max_file_size"] == 8 << 20 and cfg["scan.extra_roots"] == ("/srv/a",)
    assert [o.source for o in cfg.overridden] == [
        f"user config {home.config_file}:2", f"user config {home.config_file}:3",
        "command line"]


def test_unlocked_ordered_keys_may_still_be_strengthened(home: Home) -> None:
    write(home.policy_file, 'locked = ["scan.exclude"]\n[scan]\nmax_file_size = "2 MiB"\n')
    write(home.config_file, '[scan]\nmax_file_size = "16 MiB"\n')
    cfg = config.load()
    assert cfg["scan.max_file_size"] == 16 << 20 and not cfg.overridden


@pytest.mark.parametrize(
    ("text", "words"),
    [('locked = "scan"\n', "'locked' must be a list"),
     ('locked = ["scan.nope"]\n', "locked: unknown key 'scan.nope'"),
     ('\nlocked = [3]\n', "'locked' must be a list")],
    ids=["not-a-list", "unknown-key", "not-strings"])
def test_bad_locks_name_file_and_line(home: Home, text: str, words: str) -> None:
    write(home.policy_file, text)
    with pytest.raises(ConfigError) as info:
        config.load()
    line = text.count("\n", 0, text.index("locked")) + 1
    assert f"{home.policy_file}:{line}: {words}" in info.value.message


def test_only_the_policy_may_lock(home: Home) -> None:
    write(home.config_file, 'locked = ["scan.exclude"]\n')
    with pytest.raises(ConfigError, match=f"{home.config_file}:1: only the managed policy"):
        config.load()


# -- showing what was kept out ----------------------------------------------------------------


def _weakened(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    write(home.policy_file, 'locked = ["scan.exclude", "targets"]\n'
                            '[scan]\nallow_ignore = false\nmax_file_size = "8 MiB"\n')
    write(home.config_file, '[scan]\nexclude = ["*"]\nmax_file_size = "1 MiB"\n\n'
                            '[[targets]]\nname = "mine"\ncommand = ["tool", "--token=S3CR3T"]\n\n'
                            f'[[ignore]]\nfingerprint = "{FP}"\n')
    monkeypatch.setenv("CREDGUARD_SCAN_EXCLUDE", "/home/*")


def test_config_show_lists_ignored_values(home: Home, cli: Cli,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _weakened(home, monkeypatch)
    doc = json.loads(cli("config", "show", "--json").out)
    user, policy = f"user config {home.config_file}", f"managed policy {home.policy_file}"
    assert doc["locked"] == {"scan.exclude": f"{policy}:1", "targets": f"{policy}:1"}
    assert doc["overridden"] == [
        {"key": "scan.exclude", "value": ["*"], "source": f"{user}:2",
         "reason": "locked by the managed policy", "by": f"{policy}:1"},
        {"key": "scan.max_file_size", "value": 1 << 20, "source": f"{user}:3",
         "reason": "would weaken the managed policy", "by": f"{policy}:4"},
        {"key": "scan.exclude", "value": ["/home/*"], "source": "env CREDGUARD_SCAN_EXCLUDE",
         "reason": "locked by the managed policy", "by": f"{policy}:1"},
        {"key": "ignore", "value": FP, "source": f"{home.config_file}:10",
         "reason": "is disabled by scan.allow_ignore = false", "by": f"{policy}:3"},
        {"key": "targets", "value": "mine", "source": f"{home.config_file}:7",
         "reason": "locked by the managed policy", "by": f"{policy}:1"},
    ]
    run = cli("config", "show")
    assert run.code == 0
    text = run.out.split("# ignored: what the managed policy keeps out\n")[1]
    assert '#   scan.exclude = ["*"]' in text and f"# {user}:2: locked by" in text
    assert f"# env CREDGUARD_SCAN_EXCLUDE: locked by the managed policy ({policy}:1)" in text
    assert '#   [[targets]] "mine"' in text
    assert "[[targets]] locked # " in run.out
    assert "S3CR3T" not in run.out + run.err + json.dumps(doc)


def test_doctor_lists_ignored_values(home: Home, cli: Cli,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _weakened(home, monkeypatch)
    run = cli("doctor", "--json")
    checks = json.loads(run.out)["checks"]
    [policy] = [c for c in checks if c["check"] == "policy"]
    assert policy["ok"] and str(home.policy_file) in policy["detail"]
    assert policy["detail"].endswith("; locks scan.exclude, targets")
    ignored = [c["detail"] for c in checks if c["check"] == "ignored"]
    assert len(ignored) == 5 and not any(c["essential"] for c in checks
                                         if c["check"] == "ignored")
    assert (f"scan.exclude from user config {home.config_file}:2: locked by the managed "
            f"policy (managed policy {home.policy_file}:1)") in ignored
    assert f"[[targets]] 'mine' from {home.config_file}:7" in " ".join(ignored)
    text = cli("doctor").out
    assert any(line.split()[:2] == ["--", "ignored"]
               and f"scan.exclude from user config {home.config_file}:2" in line
               for line in text.splitlines())
    assert "S3CR3T" not in run.out + text


def test_doctor_is_quiet_without_a_policy(cli: Cli) -> None:
    checks = json.loads(cli("doctor", "--json").out)["checks"]
    assert not {"policy", "ignored", "config"} & {c["check"] for c in checks}
