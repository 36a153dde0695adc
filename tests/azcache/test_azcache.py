"""Sealing the Azure tool caches: ``credguard seal|unseal``, ``exec --azure-*`` and the write-back,
against the real Secret Service, real processes and real MSAL caches (msal's own token cache).

The program run against a sealed cache here is ``az_child.py`` (it stands in for SDK scripts and
for tools that cannot run on this machine); the real Azure CLI is in test_azcache_real_az.py.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import msalcache
from helpers.home import HELPERS, TESTS, Home, Run, run_subprocess

from credguard.azcache import msallock
from credguard.azcache.sealstore import Store, unpack_bundle
from credguard.errors import ExitCode
from credguard.handoff import ramdir

pytestmark = pytest.mark.timeout(90)
Cli = Callable[..., Run]
CHILD = [sys.executable, str(HELPERS / "az_child.py")]
SECRET_NAMES = ("msal_token_cache.json", "service_principal_entries.json", "accessTokens.json",
                "aksServicePrincipal.json", "sp-cert.pem")


@dataclass
class CliDir:
    """A populated Azure CLI config dir (``~/.azure``) and the secret values it holds."""

    root: Path
    users: list[msalcache.User]
    secrets: set[str] = field(default_factory=set)
    files: dict[str, bytes] = field(default_factory=dict)  # the secret files as written
    plain: dict[str, bytes] = field(default_factory=dict)  # non-secret files as written


def fake_pem() -> bytes:
    body = base64.encodebytes(secrets.token_bytes(600)).decode()
    return f"-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\n".encode()


def make_cli_dir(home: Home, n_users: int = 2) -> CliDir:
    root = home.root / ".azure"
    users = [msalcache.new_user() for _ in range(n_users)]
    d = CliDir(root, users)
    cache = msalcache.state_with(*users)
    d.secrets |= msalcache.secrets_of(cache)
    sp_secret, ak_secret, at_secret = (secrets.token_urlsafe(30) for _ in range(3))
    d.secrets |= {sp_secret, ak_secret, at_secret}
    pem = fake_pem()
    entries = [
        {"client_id": str(uuid.uuid4()), "tenant": str(uuid.uuid4()), "client_secret": sp_secret},
        {"client_id": str(uuid.uuid4()), "tenant": str(uuid.uuid4()),
         "certificate": str(root / "sp-cert.pem")},
    ]
    d.files = {
        "msal_token_cache.json": cache,
        "service_principal_entries.json": json.dumps(entries).encode(),
        "accessTokens.json": json.dumps([{"servicePrincipalId": str(uuid.uuid4()),
                                          "accessToken": at_secret}]).encode(),
        "aksServicePrincipal.json": json.dumps(
            {str(uuid.uuid4()): {"client_secret": ak_secret,
                                 "service_principal": str(uuid.uuid4())}}).encode(),
        "sp-cert.pem": pem,
    }
    profile = {"installationId": str(uuid.uuid4()), "subscriptions": [
        {"id": str(uuid.uuid4()), "name": "Test", "state": "Enabled", "isDefault": True,
         "user": {"name": users[0].username, "type": "user"}, "tenantId": users[0].tenant,
         "environmentName": "AzureCloud"}]}
    d.plain = {
        "azureProfile.json": json.dumps(profile).encode(),
        "config": b"[core]\noutput = json\n",
        "clouds.config": b"[AzureCloud]\nsubscription = x\n",
        "logs/az.log": b"a log line\n",
    }
    for rel, data in {**d.files, **d.plain}.items():
        home.write(f".azure/{rel}", data, 0o600 if rel in d.files or rel == "config" else 0o644)
    return d


def sealed_files(tool: str = "azure-cli", root: Path | None = None) -> dict[str, bytes]:
    """The sealed bundle's files, read through credguard's own vault API."""
    from credguard import config
    from credguard.vault.access import open_vault

    store = Store()
    [seal] = [s for s in store.all() if s.tool == tool and (root is None or s.root == str(root))]
    vault = open_vault(config.load())
    return unpack_bundle(vault.get(seal.item_id).data, tool)


def vault_ids() -> list[str]:
    from credguard import paths

    return sorted(p.stem for p in paths.vault_dir().glob("*.cgv"))


def assert_no_secret(text: str, d: CliDir) -> None:
    for value in d.secrets:
        assert value not in text


def child(*actions: str) -> list[str]:
    return [*CHILD, *actions]


@contextlib.contextmanager
def logged_in_session(*then: str, stderr: int = subprocess.PIPE
                      ) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    """``credguard exec --azure-cli`` running a command that logs in, reports its private
    directory, then does ``then``: the process, the new login and the private directory."""
    with subprocess.Popen(
        [sys.executable, "-m", "credguard", "exec", "--azure-cli", "--",
         *child("login", "+", "report", "+", *then)],
        stdout=subprocess.PIPE, stderr=stderr, text=True) as proc:
        assert proc.stdout is not None
        login = json.loads(proc.stdout.readline())["login"]
        private = Path(json.loads(proc.stdout.readline())["dir"])
        yield proc, login, private


@pytest.fixture(autouse=True)
def child_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # az_child imports helpers.msalcache


# ---- seal ------------------------------------------------------------------------------------


def test_seal_moves_secret_files_into_the_vault(
    secret_service: object, cli: Cli, home: Home
) -> None:
    d = make_cli_dir(home)
    run = cli("seal", "azure-cli", "--json")
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    assert doc["action"] == "sealed" and doc["root"] == str(d.root)
    assert sorted(doc["files"]) == sorted(d.files) == sorted(doc["deleted"])
    assert doc["kept"] == [] and doc["limits"]
    assert_no_secret(run.out + run.err, d)
    for rel in d.files:
        assert not (d.root / rel).exists()
    for rel, data in d.plain.items():
        assert (d.root / rel).read_bytes() == data
    assert sealed_files() == d.files
    assert vault_ids() == [doc["item_id"]]
    assert sorted(p.name for p in d.root.iterdir()) == [
        "azureProfile.json", "clouds.config", "config", "logs"]  # no lock files, no leftovers
    again = cli("seal", "azure-cli", "--json")
    assert again.code == 0 and json.loads(again.out)["action"] == "unchanged"
    assert vault_ids() == [doc["item_id"]]


def test_seal_human_output_and_status(secret_service: object, cli: Cli, home: Home) -> None:
    d = make_cli_dir(home)
    run = cli("seal", "azure-cli")
    assert run.code == 0, run.err
    assert f"sealed the Azure CLI cache in {d.root} (5 secret files, vault item " in run.out
    assert "credguard az" in run.out
    status = cli("status", "--json")
    sealed = json.loads(status.out)["sealed"]
    assert [(s["tool"], s["root"], len(s["files"])) for s in sealed] == [
        ("azure-cli", str(d.root), 5)]
    assert_no_secret(run.out + status.out, d)


def test_unseal_puts_the_files_back(secret_service: object, cli: Cli, home: Home) -> None:
    d = make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    run = cli("unseal", "azure-cli", "--json")
    assert run.code == 0, run.err
    assert sorted(json.loads(run.out)["files"]) == sorted(d.files)
    for rel, data in d.files.items():
        path = d.root / rel
        assert path.read_bytes() == data
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Store().all() == [] and vault_ids() == []
    again = cli("unseal", "azure-cli")  # not sealed any more: nothing of that name
    assert again.code == 9 and "is not sealed: nothing to unseal" in again.err


def test_seal_refuses_an_encrypted_cache(secret_service: object, cli: Cli, home: Home) -> None:
    d = make_cli_dir(home)
    (d.root / "config").write_text("[core]\nencrypt_token_cache = true\n")
    run = cli("seal", "azure-cli")
    assert run.code == 4 and "already encrypts its token cache" in run.err
    assert "nothing was changed" in run.err
    assert all((d.root / rel).read_bytes() == data for rel, data in d.files.items())
    assert vault_ids() == []


def test_seal_refuses_where_the_tool_could_not_run_sealed(
    secret_service: object, cli: Cli, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No RAM file system (as on macOS, issue 19): `credguard az` would always refuse, so
    sealing would lock the user out of the Azure CLI; it is refused, nothing changed."""
    d = make_cli_dir(home)
    monkeypatch.setattr(ramdir, "ram_base", lambda create: None)
    run = cli("seal", "azure-cli")
    assert run.code == ExitCode.STATE, run.err
    assert "could not run sealed here" in run.err and "nothing was sealed" in run.err
    assert all((d.root / rel).read_bytes() == data for rel, data in d.files.items())
    assert vault_ids() == [] and Store().all() == []


def test_seal_refuses_invalid_json_and_changes_nothing(
    secret_service: object, cli: Cli, home: Home
) -> None:
    d = make_cli_dir(home)
    broken = d.files["msal_token_cache.json"][:100]
    (d.root / "msal_token_cache.json").write_bytes(broken)
    run = cli("seal", "azure-cli")
    assert run.code == 4 and "not valid JSON" in run.err and "nothing was changed" in run.err
    assert broken.decode(errors="replace")[40:90] not in run.err
    assert (d.root / "msal_token_cache.json").read_bytes() == broken
    assert all((d.root / r).exists() for r in d.files)
    assert vault_ids() == [] and Store().all() == []


@pytest.mark.parametrize("what", ["symlink", "fifo"])
def test_seal_refuses_links_and_special_files(
    secret_service: object, cli: Cli, home: Home, what: str
) -> None:
    d = make_cli_dir(home)
    target = home.root / "elsewhere.json"
    target.write_bytes(d.files["msal_token_cache.json"])
    cache = d.root / "msal_token_cache.json"
    cache.unlink()
    if what == "symlink":
        cache.symlink_to(target)
    else:
        os.mkfifo(cache)
    run = cli("seal", "azure-cli")
    assert run.code == 4 and "msal_token_cache.json" in run.err, run.err
    assert target.read_bytes() == d.files["msal_token_cache.json"]
    assert os.path.lexists(cache) and vault_ids() == []


@pytest.mark.timeout(60)
def test_seal_waits_for_the_tool_lock_then_refuses(
    secret_service: object, cli: Cli, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running az holds msal-extensions' lock (the real CrossPlatLock, in another process)."""
    d = make_cli_dir(home)
    code = (
        "import sys\n"
        "from msal_extensions.cache_lock import CrossPlatLock\n"
        "with CrossPlatLock(sys.argv[1]):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(d.root / "msal_token_cache.json.lockfile")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdin is not None and holder.stdout is not None
        try:
            assert holder.stdout.readline().strip() == "held"
            monkeypatch.setenv("CREDGUARD_SEAL_LOCK_TIMEOUT", "1")
            started = time.monotonic()
            run = cli("seal", "azure-cli")
            assert run.code == 7 and "locked by another process" in run.err, run.err
            assert 0.9 < time.monotonic() - started < 10
            assert all((d.root / r).read_bytes() == v for r, v in d.files.items())
        finally:
            holder.stdin.write("\n")
            holder.stdin.flush()
            holder.wait(10)
    assert cli("seal", "azure-cli").code == 0
    assert not any((d.root / r).exists() for r in d.files)


def test_seal_without_a_keyring_refuses(cli: Cli, home: Home) -> None:
    d = make_cli_dir(home)
    run = cli("seal", "azure-cli")
    assert run.code == 5 and "no usable OS keyring" in run.err
    assert all((d.root / r).read_bytes() == v for r, v in d.files.items())


def test_seal_honours_azure_config_dir(
    secret_service: object, cli: Cli, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = make_cli_dir(home)
    moved = home.root / "other-azure"
    d.root.rename(moved)
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(moved))
    run = cli("seal", "azure-cli", "--json")
    assert run.code == 0, run.err
    assert json.loads(run.out)["root"] == str(moved)
    assert not (moved / "msal_token_cache.json").exists()


# ---- exec --azure-cli ------------------------------------------------------------------------


def test_exec_sees_a_private_ram_copy_and_changes_are_written_back(
    secret_service: object, cli: Cli, home: Home
) -> None:
    d = make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    run = run_subprocess("exec", "--azure-cli", "--", *child(
        "report", "+", "login", "+", "config", "extra", "key", "value"))
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    seen, login = json.loads(lines[0]), json.loads(lines[1])["login"]
    private = Path(seen["dir"])
    assert seen["env"]["AZURE_CONFIG_DIR"] == str(private)
    assert seen["fs"] == "tmpfs" and seen["dir_mode"] == "0o700"
    assert str(private).startswith("/dev/shm/")
    listing = seen["listing"]
    for rel in d.files:
        assert listing[rel] == "0o600"
    assert listing["logs"] == f"link:{d.root / 'logs'}"
    assert listing["azureProfile.json"].startswith("0o")  # a copy, not a link
    assert not private.exists() and not private.parent.exists()
    # the new login is sealed, nothing is in plaintext on disk, config went back
    sealed = sealed_files()
    assert msalcache.accounts(sealed["msal_token_cache.json"]) == {
        *(u.home_account_id for u in d.users), login}
    assert not any((d.root / r).exists() for r in d.files)
    assert "[extra]\nkey = value" in (d.root / "config").read_text()
    assert len(vault_ids()) == 1
    assert_no_secret(run.err, d)


def test_exec_rewrites_certificate_paths_into_the_private_dir(
    secret_service: object, cli: Cli, home: Home
) -> None:
    d = make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    before = vault_ids()
    code = (
        "import json, os; d = os.environ['AZURE_CONFIG_DIR'];"
        "e = json.load(open(os.path.join(d, 'service_principal_entries.json')));"
        "c = [x['certificate'] for x in e if 'certificate' in x][0];"
        "print(c.startswith(d + '/'), open(c, 'rb').read().startswith(b'-----BEGIN'))"
    )
    run = run_subprocess("exec", "--azure-cli", "--", sys.executable, "-c", code)
    assert run.code == 0 and run.out.split() == ["True", "True"], run.err
    # the real paths again, and nothing changed, so nothing was rewritten to the vault
    assert sealed_files() == d.files
    assert vault_ids() == before


def test_exit_status_and_output_pass_through(
    secret_service: object, cli: Cli, home: Home
) -> None:
    make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(42)"
    run = run_subprocess("exec", "--azure-cli", "--", sys.executable, "-c", code)
    assert (run.code, run.out, run.err) == (42, "out\n", "err\n")


def test_not_sealed_refuses_before_running(secret_service: object, cli: Cli, home: Home,
                                           tmp_path: Path) -> None:
    make_cli_dir(home)
    marker = tmp_path / "ran"
    run = cli("exec", "--azure-cli", "--", *child("touch", str(marker)))
    assert run.code == 9 and "is not sealed" in run.err and "credguard seal azure-cli" in run.err
    assert not marker.exists()


def test_vault_unavailable_refuses_to_run(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    marker = tmp_path / "ran"
    run = cli("exec", "--azure-cli", "--", *child("touch", str(marker)))
    assert run.code == 5 and "no usable OS keyring" in run.err
    assert not marker.exists()


def test_no_ram_file_system_refuses(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from credguard import paths

    d = make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    monkeypatch.setattr(paths, "ram_dir_candidates", lambda: [home.root])  # ext4, not RAM
    marker = tmp_path / "ran"
    run = cli("exec", "--azure-cli", "--", *child("touch", str(marker)))
    assert run.code == 7 and "refuses to put the Azure CLI cache on disk" in run.err
    assert not marker.exists()
    assert not any((d.root / r).exists() for r in d.files)
    assert not list(home.root.rglob("session-*"))


def test_two_sessions_at_once_keep_both_logins(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path
) -> None:
    d = make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "credguard", "exec", "--azure-cli", "--",
             *child("touch", str(tmp_path / f"ready{i}"), "+", "wait", str(go), "+", "login")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    go.touch()  # both started from the same sealed cache; now both log in
    logins = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        logins.append(json.loads(out)["login"])
    sealed = sealed_files()["msal_token_cache.json"]
    assert msalcache.accounts(sealed) == {*(u.home_account_id for u in d.users), *logins}
    assert len(vault_ids()) == 1


def test_command_killed_mid_write_keeps_the_sealed_copy(
    secret_service: object, cli: Cli, home: Home
) -> None:
    d = make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    run = run_subprocess("exec", "--azure-cli", "--", *child("partial"))
    assert run.code == 128 + signal.SIGKILL
    assert "msal_token_cache.json was left incomplete" in run.err
    assert sealed_files() == d.files
    assert not list(Path("/dev/shm").glob(f"credguard-{os.getuid()}/session-*"))


def test_credguard_killed_while_the_command_runs(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path, tmpfs_runtime: Path
) -> None:
    """SIGKILL credguard; the command goes on and finishes; recovery (the daemon, `recover`,
    any command that may delete) writes back what it left (complete) and removes the private
    directory. (In a RAM directory of this test's own: in the shared ``/dev/shm`` one, a
    command of a test running beside it, which recovers too, twice finished the session
    first.)"""
    d = make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    go, done = tmp_path / "go", tmp_path / "done"
    with logged_in_session("wait", str(go), "+", "touch", str(done),
                           stderr=subprocess.DEVNULL) as (proc, login, private):
        proc.kill()
        proc.wait(10)
    assert private.exists() and private.is_relative_to(tmpfs_runtime)
    # while the command still runs, even recovery leaves its session alone
    assert cli("recover").code == 0
    assert private.exists()
    go.touch()
    deadline = time.monotonic() + 30
    while not done.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    notes = ""
    while private.parent.exists():  # the command is exiting: recovery finishes it
        assert time.monotonic() < deadline
        run = cli("recover")
        assert run.code == 0, run.err
        notes += run.out
        time.sleep(0.05)
    assert "finished a session a stopped credguard left" in notes
    assert login in msalcache.accounts(sealed_files()["msal_token_cache.json"])
    assert not any((d.root / r).exists() for r in d.files)


def test_plaintext_that_reappeared_is_resealed_first(
    secret_service: object, cli: Cli, home: Home
) -> None:
    """A plain `az login` wrote a fresh cache: it joins the sealed one, nothing is lost."""
    d = make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    newcomer = msalcache.new_user()
    (d.root / "msal_token_cache.json").write_bytes(msalcache.state_with(newcomer))
    run = run_subprocess("exec", "--azure-cli", "--", *child("report"))
    assert run.code == 0, run.err
    assert "msal_token_cache.json" in json.loads(run.out)["listing"]
    assert not (d.root / "msal_token_cache.json").exists()
    assert msalcache.accounts(sealed_files()["msal_token_cache.json"]) == {
        *(u.home_account_id for u in d.users), newcomer.home_account_id}


# ---- crashes while sealing -------------------------------------------------------------------


@pytest.mark.parametrize("at", ["after-item-write", "mid-overwrite", "after-rename"])
def test_crash_while_sealing_loses_nothing(
    secret_service: object, cli: Cli, home: Home, at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crashed seal leaves the caches' lock files behind; the next one takes them as stale
    after msal-extensions' 5 s (each: tests/azcache/test_msallock.py), here after 0.3 s."""
    monkeypatch.setattr(msallock, "STALE_AFTER", 0.3)
    d = make_cli_dir(home)
    crashed = run_subprocess("seal", "azure-cli", env={**os.environ,
                                                       "CREDGUARD_TEST_CRASH_AT": at})
    assert crashed.code == 99
    run = cli("seal", "azure-cli", "--json")  # recovery, then sealing (again)
    assert run.code == 0, run.err
    assert sealed_files() == d.files
    assert len(vault_ids()) == 1
    assert sorted(p.name for p in d.root.iterdir()) == [
        "azureProfile.json", "clouds.config", "config", "logs"]


# ---- azd and Azure PowerShell ----------------------------------------------------------------


def test_azd_seal_exec_unseal(secret_service: object, cli: Cli, home: Home) -> None:
    users = [msalcache.new_user()]
    cache = msalcache.state_with(*users)
    cred = json.dumps({"clientId": str(uuid.uuid4()),
                       "clientSecret": secrets.token_urlsafe(30)}).encode()
    home.write(".azd/auth/msal/cacheabc.json", cache)
    home.write(".azd/auth/cred123.json", cred)
    home.write(".azd/config.json", b'{"defaults": {"location": "westeurope"}}')
    run = cli("seal", "azd", "--json")
    assert run.code == 0, run.err
    assert sorted(json.loads(run.out)["files"]) == ["auth/cred123.json",
                                                    "auth/msal/cacheabc.json"]
    assert not (home.root / ".azd/auth/cred123.json").exists()
    run = run_subprocess("exec", "--azd", "--", *child("login", "+", "report"),
                         env={**os.environ, "CHILD_DIR_VAR": "AZD_CONFIG_DIR",
                              "CHILD_CACHE": "auth/msal/cacheabc.json"})
    assert run.code == 0, run.err
    seen = json.loads(run.out.splitlines()[1])
    assert seen["env"]["AZD_CONFIG_DIR"] == seen["dir"] and seen["fs"] == "tmpfs"
    sealed = sealed_files("azd")
    assert len(msalcache.accounts(sealed["auth/msal/cacheabc.json"])) == 2
    assert cli("unseal", "azd").code == 0
    assert (home.root / ".azd/auth/cred123.json").read_bytes() == cred


def test_powershell_overlay_home(secret_service: object, cli: Cli, home: Home) -> None:
    context = json.dumps({"DefaultContextKey": "x", "Contexts": {"x": {
        "Account": {"Id": str(uuid.uuid4()), "Type": "ServicePrincipal",
                    "ExtendedProperties": {"ServicePrincipalSecret": secrets.token_urlsafe(30)}}}}}
    ).encode()
    msal_shared = msalcache.state_with(msalcache.new_user())
    home.write(".Azure/AzureRmContext.json", context)
    home.write(".Azure/AzureRmContextSettings.json", b'{"Mode": "CurrentUser"}')
    home.write(".local/share/.IdentityService/msal.cache", msal_shared)
    home.write("Documents/notes.txt", b"hello")
    run = cli("seal", "azure-powershell", "--json")
    assert run.code == 0, run.err
    assert sorted(json.loads(run.out)["files"]) == [
        ".Azure/AzureRmContext.json", ".local/share/.IdentityService/msal.cache"]
    assert not (home.root / ".Azure/AzureRmContext.json").exists()
    code = (
        "import json, os; h = os.environ['HOME'];"
        "print(json.dumps({'home': h, 'data': os.environ['XDG_DATA_HOME'],"
        " 'ctx': open(h + '/.Azure/AzureRmContext.json').read(),"
        " 'notes': open(h + '/Documents/notes.txt').read(),"
        " 'settings': os.path.islink(h + '/.Azure/AzureRmContextSettings.json')}));"
        "open(h + '/.Azure/AzureRmContext.json', 'w').write('{\"Contexts\": {}}')"
    )
    run = run_subprocess("exec", "--azure-powershell", "--", sys.executable, "-c", code)
    assert run.code == 0, run.err
    seen = json.loads(run.out)
    assert seen["home"] != str(home.root) and seen["ctx"] == context.decode()
    assert seen["notes"] == "hello" and seen["settings"] is False  # own dir: a copy
    assert seen["data"] == seen["home"] + "/.local/share"
    assert sealed_files("azure-powershell")[".Azure/AzureRmContext.json"] == b'{"Contexts": {}}'
    assert not (home.root / ".Azure/AzureRmContext.json").exists()


def test_powershell_redirect_outside_home_is_refused(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path
) -> None:
    settings = {"ContextDirectory": str(tmp_path / "ctx"), "ContextFile": "AzureRmContext.json"}
    home.write(".Azure/AzureRmContextSettings.json", json.dumps(settings).encode())
    run = cli("seal", "azure-powershell")
    assert run.code == 4 and "outside your home directory" in run.err


def test_powershell_data_home_elsewhere_is_a_config_error(
    secret_service: object, home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """XDG_DATA_HOME away from ~/.local/share would put PowerShell's token cache outside the
    private home: an environment value credguard cannot work with (3), refused before the
    command runs. (The vault lives there too, so it is set from the start.)"""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    context = b'{"Contexts": {}}'
    home.write(".Azure/AzureRmContext.json", context)
    assert run_subprocess("seal", "azure-powershell").code == 0
    marker = tmp_path / "ran"
    run = run_subprocess("exec", "--azure-powershell", "--", *child("touch", str(marker)))
    assert (run.code, run.out) == (3, ""), run.err
    assert run.err == (f"credguard: error: XDG_DATA_HOME={tmp_path / 'data'} would put "
                       "PowerShell's token cache outside the private directory; unset it for "
                       "this command\n")
    assert not marker.exists()
    assert sealed_files("azure-powershell") == {".Azure/AzureRmContext.json": context}


# ---- the daemon ------------------------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("on_plaintext", ["reseal", "alert"])
def test_daemon_reseals_a_cache_that_reappears_in_plaintext(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path, on_plaintext: str
) -> None:
    from helpers.daemon import audit_events, running_daemon, wait_for

    d = make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    (home.root / ".config" / "credguard").mkdir(parents=True)
    (home.root / ".config" / "credguard" / "config.toml").write_text(
        f'[seal]\non_plaintext = "{on_plaintext}"\n')
    cache = d.root / "msal_token_cache.json"
    state = home.root / ".local" / "state"
    newcomer = msalcache.new_user()
    for daemon in running_daemon(dict(os.environ), tmp_path):
        tmp = d.root / "msal_token_cache.json.tmp"  # a plain `az login` writes the cache
        tmp.write_bytes(msalcache.state_with(newcomer))
        tmp.rename(cache)
        if on_plaintext == "reseal":
            wait_for(lambda: not cache.exists(), timeout=20)
            sealed = sealed_files()["msal_token_cache.json"]
            assert msalcache.accounts(sealed) == {
                *(u.home_account_id for u in d.users), newcomer.home_account_id}
            protected = [e for e in audit_events(state) if e["event"] == "protected"]
            assert protected and "re-sealed" in protected[-1]["detail"]
        else:
            wait_for(lambda: any(e["event"] == "alerted" for e in audit_events(state)),
                     timeout=20)
            assert cache.exists()
            assert sealed_files() == d.files
        assert_no_secret(daemon.stderr(), d)
        for secret in msalcache.secrets_of(msalcache.state_with(newcomer)):
            assert secret not in daemon.stderr()


def test_doctor_reports_sealed_and_plaintext_caches(
    secret_service: object, cli: Cli, home: Home
) -> None:
    make_cli_dir(home)
    run = cli("doctor", "--json")
    checks = {c["check"]: c for c in json.loads(run.out)["checks"]}
    assert "not sealed: 4 plaintext secret file(s)" in checks["sealed:azure-cli"]["detail"]
    assert cli("seal", "azure-cli").code == 0
    checks = {c["check"]: c for c in json.loads(cli("doctor", "--json").out)["checks"]}
    assert checks["sealed:azure-cli"]["detail"].startswith("sealed in the vault (5 file(s)")


def test_a_secret_written_into_a_subdirectory_stays_in_ram(
    secret_service: object, cli: Cli, home: Home
) -> None:
    """aks/ exists in the real dir with nothing secret in it: the tool still gets a private
    aks/ (never a link to the disk), so a secret it writes there is sealed, not left on disk."""
    d = make_cli_dir(home)
    home.write(".azure/aks/notes.txt", b"not secret")
    assert cli("seal", "azure-cli").code == 0
    secret = secrets.token_urlsafe(30)
    doc = json.dumps({str(uuid.uuid4()): {"client_secret": secret}})
    run = run_subprocess("exec", "--azure-cli", "--", *child(
        "write", "aks/acsServicePrincipal.json", doc, "+", "report"))
    assert run.code == 0, run.err
    listing = json.loads(run.out)["listing"]
    assert listing["aks"] == "0o700" and listing["aks/notes.txt"].startswith("link:")
    assert not (d.root / "aks" / "acsServicePrincipal.json").exists()
    assert json.loads(sealed_files()["aks/acsServicePrincipal.json"]) == json.loads(doc)
    assert secret not in run.out + run.err


def test_credguard_interrupted_writes_back_and_cleans_up(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path
) -> None:
    """SIGTERM to credguard: forwarded to the command; what it wrote is kept, RAM dir gone."""
    d = make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    with logged_in_session("wait", str(tmp_path / "never")) as (proc, login, private):
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert not private.parent.exists()
    assert login in msalcache.accounts(sealed_files()["msal_token_cache.json"])
    assert not any((d.root / r).exists() for r in d.files)


def test_vault_rm_refuses_a_sealed_cache(secret_service: object, cli: Cli, home: Home) -> None:
    make_cli_dir(home)
    item = json.loads(cli("seal", "azure-cli", "--json").out)["id"]
    run = cli("vault", "rm", "--yes", item)
    assert run.code != 0 and "credguard unseal azure-cli" in run.err  # its code: vault rm's
    assert vault_ids() == [item]


def test_vault_not_writable_at_the_end_keeps_the_changes_in_ram(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path
) -> None:
    """The vault cannot take the write-back (here: its directory made immutable with chattr,
    which stops root too): the changes stay in the private RAM directory and the next
    credguard command writes them back."""
    from credguard import paths

    make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    vault_dir = paths.vault_dir()
    go = tmp_path / "go"
    with logged_in_session("wait", str(go)) as (proc, login, private):
        subprocess.run(["chattr", "+i", str(vault_dir)], check=True)
        try:
            go.touch()
            _, err = proc.communicate(timeout=30)
        finally:
            subprocess.run(["chattr", "-i", str(vault_dir)], check=True)
    assert proc.returncode == 0, err
    assert "they stay in" in err and private.exists()
    run = cli("vault", "list")
    assert run.code == 0 and "finished a session" in run.err, run.err
    assert not private.parent.exists()
    assert login in msalcache.accounts(sealed_files()["msal_token_cache.json"])


def test_command_not_found_changes_nothing(secret_service: object, cli: Cli, home: Home) -> None:
    d = make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    run = cli("exec", "--azure-cli", "--", "/nonexistent/az")
    assert run.code == 8 and "command not found" in run.err
    assert sealed_files() == d.files and len(vault_ids()) == 1
    assert not list(Path("/dev/shm").glob(f"credguard-{os.getuid()}/session-*"))


def test_vault_destroy_forgets_the_seals(secret_service: object, cli: Cli, home: Home) -> None:
    make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    run = cli("vault", "destroy", "--yes")
    assert run.code == 0 and "1 seal(s) forgotten" in run.out, run.err
    assert Store().all() == []
    assert cli("exec", "--azure-cli", "--", "true").code == 9  # not sealed: advice, no crash


def test_seal_before_logging_in(secret_service: object, cli: Cli, home: Home) -> None:
    """Sealing a config dir without a login yet: the first login through credguard is sealed
    straight away and never touches the disk."""
    home.write(".azure/config", b"[core]\noutput = json\n")
    run = cli("seal", "azure-cli", "--json")
    assert run.code == 0 and json.loads(run.out)["files"] == [], run.err
    login = run_subprocess("exec", "--azure-cli", "--", *child("login"))
    assert login.code == 0, login.err
    user = json.loads(login.out)["login"]
    assert msalcache.accounts(sealed_files()["msal_token_cache.json"]) == {user}
    assert not (home.root / ".azure" / "msal_token_cache.json").exists()


def test_an_unusable_ram_dir_does_not_break_other_commands(
    secret_service: object, cli: Cli, home: Home
) -> None:
    """Every command checks the RAM dir for sessions to finish; a RAM dir that is not private
    must not stop `scan`, and the commands that use one make a private one of their own
    (tests/test_runtime_fallback.py tests that against a real second uid)."""
    make_cli_dir(home)
    assert cli("seal", "azure-cli").code == 0
    base = Path("/dev/shm") / f"credguard-{os.getuid()}"
    base.mkdir(exist_ok=True)
    mode = stat.S_IMODE(base.stat().st_mode)
    base.chmod(0o777)
    try:
        assert cli("scan", str(home.downloads)).code == 0
        run = cli("exec", "--azure-cli", "--", "true")
        assert run.code == 0, run.err
        record = home.root / ".local" / "state" / "credguard" / "runtime" / "ram"
        assert record.read_text().strip() not in ("", base.name), "another dir, recorded"
    finally:
        base.chmod(mode)
