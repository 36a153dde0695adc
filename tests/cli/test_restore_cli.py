"""``credguard restore ID [--to PATH] [--remove]`` (issue 18, item 2): the credential back as a
new 0600 file where it came from (or at ``--to``), allowlisted first so a daemon leaves it,
never over anything or through a link or into a directory that is not the user's, audited; and
every refusal a clear error that writes nothing and allowlists nothing. Real files, a real
gnome-keyring; the daemon test runs the real daemon."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, running_daemon, wait_for
from helpers.home import Home, Run, run_subprocess
from helpers.secret_service import SecretService

from credguard import config
from credguard.errors import ExitCode

pytestmark = pytest.mark.timeout(120)
Cli = Callable[..., Run]
RESTORED = "restored by the user"


def vaulted(cli: Cli, home: Home, name: str = "app.PublishSettings") -> tuple[str, Path, bytes]:
    """A publish profile protected from Downloads (the file is gone after): id, path, bytes."""
    payload = payloads.publish_profile("restored")
    path = home.write(f"Downloads/{name}", payload.data)
    run = cli("protect", "--json", str(path))
    assert run.code == 0, run.err
    assert not path.exists()
    return str(json.loads(run.out)["results"][0]["id"]), path, payload.data


def allowlisted() -> dict[str, str]:
    return {e.fingerprint: e.reason for e in config.load().ignores}


def test_restore_puts_the_file_back_allowlisted_and_audited(
        secret_service: SecretService, cli: Cli, home: Home) -> None:
    item, path, data = vaulted(cli, home)
    run = cli("restore", item)
    assert run.code == 0, run.err
    assert path.read_bytes() == data and path.stat().st_mode & 0o777 == 0o600
    fingerprint = next(iter(allowlisted()))
    assert allowlisted() == {fingerprint: RESTORED}
    assert run.out == (f"restored {item} (azure-publish-profile) to {path} (mode 0600)\n"
                       f"allowlisted ({RESTORED}); 'credguard ignore --remove {fingerprint}' "
                       "re-arms protection\n")
    assert fingerprint in cli("ignore", "--list").out
    assert cli("vault", "show", item).code == 0  # the item stays
    events = [e for e in audit_events(home.root / ".local" / "state") if e["event"] == "restored"]
    assert [(e["path"], e["item_id"], e["fingerprint"], e["reason"]) for e in events] == [
        (str(path), item, fingerprint, RESTORED)]
    assert data.decode(errors="replace") not in json.dumps(events)


def test_to_a_new_path_or_into_a_directory_and_remove(
        secret_service: SecretService, cli: Cli, home: Home) -> None:
    item, path, data = vaulted(cli, home)
    elsewhere = home.root / "Documents" / "for-vs.PublishSettings"
    assert cli("restore", item, "--to", str(elsewhere)).code == 0
    assert elsewhere.read_bytes() == data and not path.exists()
    assert cli("restore", item[:8], "--to", str(home.documents), "--remove").code == 0
    assert (home.documents / path.name).read_bytes() == data
    assert cli("vault", "show", item).code == ExitCode.NOT_FOUND
    events = [e for e in audit_events(home.root / ".local" / "state") if e["event"] == "restored"]
    assert [e.get("detail") for e in events] == [None, None, "removed from the vault"]


def refused(cli: Cli, item: str, *args: str) -> Run:
    before = dict(allowlisted())
    run = cli("restore", item, *args)
    assert run.out == ""
    assert allowlisted() == before  # no entry left behind
    return run


def test_it_never_writes_over_or_through_anything(
        secret_service: SecretService, cli: Cli, home: Home, tmp_path: Path) -> None:
    item, path, _ = vaulted(cli, home)
    outside = tmp_path / "outside"
    outside.mkdir()
    cases: list[Path] = []
    path.write_text("someone's new file")  # an existing file
    cases.append(path)
    link = home.root / "Documents" / "link.PublishSettings"
    link.symlink_to(outside / "target")  # a dangling link: following it would create target
    cases.append(link)
    fifo = home.root / "Documents" / "fifo.PublishSettings"
    os.mkfifo(fifo)
    cases.append(fifo)
    for target in cases:
        run = refused(cli, item, "--to", str(target))
        assert run.code == ExitCode.INPUT, run.err
        assert run.err == (f"credguard: error: {target} exists; restore never replaces a file: "
                           "give another path with --to\n")
    assert path.read_text() == "someone's new file"
    assert not (outside / "target").exists() and not link.exists()


def test_only_into_a_real_directory_of_the_users(
        secret_service: SecretService, cli: Cli, home: Home, tmp_path: Path) -> None:
    item, _, _ = vaulted(cli, home)
    real = tmp_path / "real"
    real.mkdir()
    (home.root / "linked").symlink_to(real)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    for where, says in ((home.root / "linked" / "x.PublishSettings", "is not a directory"),
                        (home.root / "missing" / "x.PublishSettings", "does not exist"),
                        (theirs / "x.PublishSettings", "belongs to uid 65534, not to you")):
        run = refused(cli, item, "--to", str(where))
        assert run.code == ExitCode.INPUT and says in run.err, run.err
        assert "nothing was written" in run.err
    assert list(real.iterdir()) == [] and list(theirs.iterdir()) == []


def test_ids_it_cannot_find(secret_service: SecretService, cli: Cli, home: Home) -> None:
    vaulted(cli, home)
    assert refused(cli, "0123456789abcdef").code == ExitCode.NOT_FOUND
    assert refused(cli, "01").code == ExitCode.USAGE


def test_a_managed_policy_without_an_allowlist_refuses_before_writing(
        secret_service: SecretService, cli: Cli, home: Home,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from credguard import paths

    item, path, _ = vaulted(cli, home)
    policy = home.write("etc-xdg/credguard/policy.toml", "version = 1\n[scan]\n"
                                                         "allow_ignore = false\n")
    monkeypatch.setitem(paths.MANAGED_POLICY_FILES, "linux", policy)
    run = refused(cli, item)
    assert run.code == ExitCode.CONFIG and "disables the allowlist" in run.err
    assert not path.exists()


@pytest.fixture
def daemon(secret_service: SecretService, home: Home, tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


def test_the_daemon_leaves_a_restored_file_until_protection_is_rearmed(
        daemon: DaemonProcess, home: Home) -> None:
    payload = payloads.publish_profile("daemon")
    path = home.write("Downloads/d.PublishSettings", payload.data)
    wait_for(lambda: not path.exists(), timeout=30)  # the daemon protected it
    items = json.loads(run_subprocess("vault", "list", "--json", env=daemon.env).out)["items"]
    item = items[0]["id"]
    run = run_subprocess("restore", item, env=daemon.env)
    assert run.code == 0, run.err
    wait_for(lambda: f"ignored azure-publish-profile {path}" in daemon.stderr(), timeout=30)
    assert path.read_bytes() == payload.data
    fingerprint = run.out.split("'credguard ignore --remove ")[1].split("'")[0]
    assert run_subprocess("ignore", "--remove", fingerprint, env=daemon.env).code == 0
    wait_for(lambda: not path.exists(), timeout=30)  # protected again
