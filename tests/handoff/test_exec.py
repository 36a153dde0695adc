"""``credguard exec`` as a real process: what the child gets, what it must not get, signals,
exit status, and the RAM directory's life cycle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.daemon import wait_for
from helpers.home import Home, Run, run_subprocess
from helpers.processes import gone

pytestmark = pytest.mark.timeout(60)
Cli = Callable[..., Run]
PY = sys.executable


def imported(cli: Cli, home: Home, payload: payloads.Payload, name: str) -> str:
    path = home.write(f"Downloads/{name}", payload.data)
    run = cli("import", "--json", str(path))
    assert run.code == 0, run.err
    return str(json.loads(run.out)["imported"][0]["id"])


def child_report(*extra: str) -> list[str]:
    """A child that prints, as JSON, the CREDGUARD_* variables and facts about the file."""
    code = (
        "import json, os, stat\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith('CREDGUARD_')}\n"
        "f = env.get('CREDGUARD_FILE')\n"
        "facts = {}\n"
        "if f:\n"
        "    st = os.stat(f)\n"
        "    facts = {'mode': oct(stat.S_IMODE(st.st_mode)), 'data': open(f,'rb').read().hex(),\n"
        "             'dir_mode': oct(stat.S_IMODE(os.stat(os.path.dirname(f)).st_mode))}\n"
        "print(json.dumps({'env': env, 'facts': facts}))\n"
    )
    return [PY, "-c", code, *extra]


def test_publish_profile_handover(
    secret_service: object, cli: Cli, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = payloads.publish_profile(app="contoso")
    item = imported(cli, home, payload, "contoso.PublishSettings")
    monkeypatch.setenv("CREDGUARD_PASSPHRASE", "must-not-leak")
    monkeypatch.setenv("CREDGUARD_PUBLISH_PASSWORD", "stale")
    run = run_subprocess("exec", item, "--profile", "FTP", "--", *child_report())
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    env = doc["env"]
    assert env["CREDGUARD_PUBLISH_METHOD"] == "FTP"
    assert env["CREDGUARD_PUBLISH_PASSWORD"] in payload.secrets
    assert env["CREDGUARD_PUBLISH_USER"] and env["CREDGUARD_PUBLISH_URL"].startswith("ftp")
    assert env["CREDGUARD_SITE_URL"].startswith("http")
    assert "CREDGUARD_PASSPHRASE" not in env
    ram_file = Path(env["CREDGUARD_FILE"])
    assert bytes.fromhex(doc["facts"]["data"]) == payload.data
    assert doc["facts"]["mode"] == "0o600" and doc["facts"]["dir_mode"] == "0o700"
    assert str(ram_file).startswith("/dev/shm/")
    assert not ram_file.exists() and not ram_file.parent.exists()
    for secret in payload.secrets:
        assert secret not in run.err


def test_publishsettings_gets_a_pem(secret_service: object, cli: Cli, home: Home) -> None:
    item = imported(cli, home, payloads.publishsettings_v1(), "x.publishsettings")
    code = (
        "import os; p = open(os.environ['CREDGUARD_CERT_PEM']).read();"
        "print('CERTIFICATE' in p and 'PRIVATE KEY' in p)"
    )
    run = run_subprocess("exec", item, "--", PY, "-c", code)
    assert run.code == 0 and run.out.strip() == "True", run.err


def test_exit_status_and_stdout_pass_through(secret_service: object, cli: Cli, home: Home) -> None:
    item = imported(cli, home, payloads.msal_cache(), "msal_token_cache.json")
    code = "import sys; sys.stdout.buffer.write(bytes(range(256))); sys.exit(7)"
    proc = subprocess.run(
        [PY, "-m", "credguard", "exec", item, "--", PY, "-c", code],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 7 and proc.stdout == bytes(range(256))
    killed = run_subprocess(
        "exec", item, "--", PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    )
    assert killed.code == 128 + signal.SIGKILL


def test_nesting_is_refused(secret_service: object, cli: Cli, home: Home) -> None:
    item = imported(cli, home, payloads.msal_cache(), "msal_token_cache.json")
    inner = (
        f"import subprocess, sys; sys.exit(subprocess.call([sys.executable, '-m', "
        f"'credguard', 'exec', '{item}', '--', 'true']))"
    )
    run = run_subprocess("exec", item, "--", PY, "-c", inner)
    assert run.code == 2 and "refusing to nest" in run.err


def test_profile_flag_only_for_publish_profiles(
    secret_service: object, cli: Cli, home: Home
) -> None:
    item = imported(cli, home, payloads.msal_cache(), "msal_token_cache.json")
    run = run_subprocess("exec", item, "--profile", "FTP", "--", "true")
    assert run.code == 2 and "--profile applies" in run.err


def test_signals_are_forwarded_and_ram_dir_removed(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path
) -> None:
    item = imported(cli, home, payloads.publish_profile(), "a.PublishSettings")
    marker = tmp_path / "marker"
    code = (
        "import os, signal, sys, time\n"
        f"open({str(marker)!r}, 'w').write(os.environ['CREDGUARD_FILE'])\n"
        "def bye(s, f):\n"
        f"    open({str(marker)!r}, 'a').write('\\nTERM')\n"
        "    sys.exit(3)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen(
        [PY, "-m", "credguard", "exec", item, "--", PY, "-c", code], stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    ram_file = Path(marker.read_text().splitlines()[0])
    assert ram_file.exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 3
    assert marker.read_text().endswith("TERM")
    assert not ram_file.parent.exists()


def test_sweep_spares_the_dir_of_a_child_that_outlives_a_sigkilled_credguard(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path
) -> None:
    payload = payloads.publish_profile()
    item = imported(cli, home, payload, "a.PublishSettings")
    marker = tmp_path / "marker"
    script = f'echo "$$ $CREDGUARD_FILE" > {marker}.new; mv {marker}.new {marker}; exec sleep 30'
    proc = subprocess.Popen([PY, "-m", "credguard", "exec", item, "--", "sh", "-c", script])
    wait_for(marker.exists)
    pid_text, file_text = marker.read_text().split(" ", 1)
    child, ram_file = int(pid_text), Path(file_text.strip())
    try:
        proc.kill()  # credguard itself, not the child
        proc.wait(timeout=10)
        assert not gone(child)
        assert run_subprocess("exec", item, "--", "true").code == 0  # sweeps the RAM base
        assert ram_file.read_bytes() == payload.data  # the child still has its file
    finally:
        os.kill(child, signal.SIGKILL)
    wait_for(lambda: gone(child))
    assert run_subprocess("exec", item, "--", "true").code == 0
    assert not ram_file.parent.exists()  # the next sweep after the child's end removed it


def test_no_ram_file_system_refuses(
    secret_service: object, cli: Cli, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = imported(cli, home, payloads.msal_cache(), "msal_token_cache.json")
    from credguard import paths

    monkeypatch.setattr(paths, "ram_dir_candidates", lambda: [home.root])  # ext4, not RAM
    run = cli("exec", item, "--", "true")
    assert run.code == 7 and "refuses to write the credential to disk" in run.err
    assert cli("exec", item, "--no-file", "--", "true").code == 0


def test_command_not_found(secret_service: object, cli: Cli, home: Home) -> None:
    item = imported(cli, home, payloads.msal_cache(), "msal_token_cache.json")
    run = cli("exec", item, "--", "/nonexistent/tool")
    assert run.code == 8 and "command not found" in run.err
