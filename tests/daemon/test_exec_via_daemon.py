"""``credguard exec`` asks the running daemon for the handover (issue 16, row 2), and nothing
else changes.

The daemon hands over what the command would have read itself — the same variables, the same
files in the command's own RAM directory, the same errors, output and exit code — but only
while it would be the same: in the command's context (configuration, places, ``CREDGUARD_*``
environment) and while the keyring is unlocked, so a locked keyring still refuses the
command although the daemon keeps the key. Every test runs the real daemon with a real
gnome-keyring on a private bus. What a child got is compared as digests, never as values.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, running_daemon, wait_for
from helpers.home import Home, Run, run_subprocess
from helpers.processes import gone
from helpers.secret_service import SecretService

from credguard import config
from credguard.detect import kinds
from credguard.errors import ExitCode
from credguard.vault.access import open_vault
from credguard.vault.format import Record

pytestmark = pytest.mark.timeout(180)
SERVED = " handed over"  # the daemon's log line: "exec request: vault item ID handed over"
REFUSED = "exec request refused:"
# The child: what it got, as digests (names of files, their bytes' sha256 and mode).
REPORT = """\
import hashlib, json, os, stat
def sha(b): return hashlib.sha256(b).hexdigest()
got = {}
for name, value in sorted(os.environ.items()):
    if not name.startswith("CREDGUARD_"):
        continue
    if name in ("CREDGUARD_FILE", "CREDGUARD_CERT_PEM"):
        data = open(value, "rb").read()
        got[name] = [os.path.basename(value), sha(data), oct(stat.S_IMODE(os.stat(value).st_mode))]
    else:
        got[name] = sha(value.encode())
print(json.dumps(got, sort_keys=True))
"""


def execute(env: dict[str, str], *args: str) -> Run:
    return run_subprocess("exec", *args, "--", sys.executable, "-c", REPORT, env=env,
                          timeout=120)


def items(home: Home) -> dict[str, str]:
    """A vault of one item of each handover: a publish profile (three methods), classic
    publish settings (a certificate to convert), an Azure CLI token cache (a file only), and
    an item filed under the wrong kind (an error); their ids by name."""
    vault = open_vault(config.load())
    made = {
        "profile": Record.new(kinds.PUBLISH_PROFILE, "app.PublishSettings", str(home.root),
                              payloads.publish_profile("app").data),
        "settings": Record.new(kinds.PUBLISHSETTINGS, "sub.publishsettings", str(home.root),
                               payloads.publishsettings_v2().data),
        "cache": Record.new(kinds.CLI_TOKEN_CACHE, "msal_token_cache.json", str(home.root),
                            payloads.msal_cache().data),
        "wrong": Record.new(kinds.PUBLISH_PROFILE, "notes.txt", str(home.root), b"just notes"),
    }
    return {name: vault.add(record) for name, record in made.items()}


def cases(ids: dict[str, str]) -> list[tuple[str, ...]]:
    return [
        (ids["profile"],), (ids["profile"], "--profile", "FTP"), (ids["profile"], "--no-file"),
        (ids["profile"][:8],),  # a prefix
        (ids["settings"],), (ids["settings"], "--no-file"), (ids["cache"],),
        (ids["wrong"],),  # filed under the wrong kind: 4
        (ids["settings"], "--profile", "FTP"),  # --profile on another kind: 2
        ("0123456789abcdef",),  # no such item: 9
        ("01234",),  # too short a prefix: 2
    ]


@pytest.fixture
def daemon(secret_service: SecretService, home: Home, tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


def test_the_daemon_hands_over_what_the_command_would_read_itself(
        secret_service: SecretService, home: Home, tmp_path: Path) -> None:
    env = dict(os.environ)
    ids = items(home)
    here = [execute(env, *args) for args in cases(ids)]
    daemon = DaemonProcess(env, tmp_path / "daemon.log").start()
    try:
        asked = [execute(env, *args) for args in cases(ids)]
    finally:
        assert daemon.stop() == 0
    assert [(r.code, r.out, r.err) for r in asked] == [(r.code, r.out, r.err) for r in here]
    log = daemon.stderr()
    assert log.count(SERVED) == 7, log  # every case that gets as far as a handover
    assert REFUSED not in log
    assert [r.code for r in here] == [0, 0, 0, 0, 0, 0, 0, ExitCode.INPUT, ExitCode.USAGE,
                                      ExitCode.NOT_FOUND, ExitCode.USAGE]
    got = json.loads(here[0].out)
    assert got["CREDGUARD_FILE"][0] == "app.PublishSettings" and got["CREDGUARD_FILE"][2] == "0o600"
    assert "CREDGUARD_PUBLISH_PASSWORD" in got and "CREDGUARD_FILE" not in json.loads(here[2].out)
    assert "CREDGUARD_CERT_PEM" in json.loads(here[4].out)


def test_the_command_reads_no_keyring_when_the_daemon_hands_over(
        daemon: DaemonProcess, home: Home) -> None:
    """Without a session bus the command could not fetch the key (exit 5): the daemon did."""
    ids = items(home)
    env = {k: v for k, v in daemon.env.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    assert execute(env, ids["profile"]).code == 0
    daemon.stop()
    alone = execute(env, ids["profile"])
    assert alone.code == ExitCode.KEYSTORE, alone.err


def test_a_locked_keyring_refuses_the_command_although_the_daemon_keeps_the_key(
        secret_service: SecretService, daemon: DaemonProcess, home: Home) -> None:
    ids = items(home)
    assert execute(daemon.env, ids["profile"]).code == 0
    secret_service.lock()
    locked = execute(daemon.env, ids["profile"])
    assert locked.code == ExitCode.KEYSTORE, locked.err
    assert locked.out == ""  # no child ran
    assert f"{REFUSED} the keyring is locked" in daemon.stderr()
    secret_service.unlock()
    assert execute(daemon.env, ids["profile"]).code == 0
    assert daemon.stderr().count(SERVED) == 2


def test_another_environment_is_refused_and_read_here(
        daemon: DaemonProcess, home: Home) -> None:
    """A variable of credguard's that the daemon lacks (here a passphrase) is another
    context: the daemon refuses, and the command reads the vault itself."""
    ids = items(home)
    env = {**daemon.env, "CREDGUARD_PASSPHRASE": "not the daemon's"}
    run = execute(env, ids["profile"])
    assert run.code == 0, run.err
    assert "another configuration or environment" in daemon.stderr()
    assert SERVED not in daemon.stderr()


def test_a_paused_daemon_still_hands_over(daemon: DaemonProcess, home: Home) -> None:
    """Pausing stops protecting files, not handing out what the vault holds."""
    ids = items(home)
    assert run_subprocess("pause", env=daemon.env).code == 0
    assert execute(daemon.env, ids["profile"]).code == 0
    assert SERVED in daemon.stderr()


def test_no_secret_in_the_daemons_log_or_the_commands_output(
        daemon: DaemonProcess, home: Home) -> None:
    payload = payloads.publish_profile("secretive")
    vault = open_vault(config.load())
    item = vault.add(Record.new(kinds.PUBLISH_PROFILE, "s.PublishSettings", str(home.root),
                                payload.data))
    run = execute(daemon.env, item)
    assert run.code == 0, run.err
    assert SERVED in daemon.stderr()
    for secret in payload.secrets:
        assert secret not in daemon.stderr()
        assert secret not in run.out + run.err


def test_a_sigkilled_command_leaves_its_child_the_file_and_the_sweep_takes_it_after(
        daemon: DaemonProcess, home: Home, tmp_path: Path) -> None:
    """The RAM directory is the command's own, whoever planned the handover: a SIGKILL of
    credguard spares it while the child runs, and the next exec's sweep removes it after."""
    import signal
    import subprocess

    payload = payloads.publish_profile("killed")
    item = open_vault(config.load()).add(Record.new(
        kinds.PUBLISH_PROFILE, "k.PublishSettings", str(home.root), payload.data))
    marker = tmp_path / "marker"
    script = f'echo "$$ $CREDGUARD_FILE" > {marker}.new; mv {marker}.new {marker}; exec sleep 30'
    proc = subprocess.Popen([sys.executable, "-m", "credguard", "exec", item, "--", "sh", "-c",
                             script], env=daemon.env)
    wait_for(marker.exists)
    pid_text, file_text = marker.read_text().split(" ", 1)
    child, ram_file = int(pid_text), Path(file_text.strip())
    assert daemon.stderr().count(SERVED) == 1
    try:
        proc.kill()  # credguard itself, not the child
        proc.wait(timeout=10)
        assert execute(daemon.env, item).code == 0  # its sweep spares the child's directory
        assert ram_file.read_bytes() == payload.data
    finally:
        os.kill(child, signal.SIGKILL)
    wait_for(lambda: gone(child))
    assert execute(daemon.env, item).code == 0
    assert not ram_file.parent.exists()
    assert daemon.stderr().count(SERVED) == 3
