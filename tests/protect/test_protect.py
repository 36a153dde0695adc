"""``credguard protect`` and ``scan --protect`` on real files with the real Secret Service:
the transaction, its refusals, policy, import targets, and the hostile cases of the issue."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import Home, Run

from credguard import config, paths
from credguard.detect import kinds
from credguard.protect.transaction import Protector
from credguard.vault.access import open_vault

pytestmark = pytest.mark.timeout(120)
Cli = Callable[..., Run]


def vault_shas(cli: Cli) -> list[str]:
    run = cli("vault", "list", "--json")
    assert run.code == 0, run.err
    return sorted(i["sha256"] for i in json.loads(run.out)["items"])


def sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def protect_json(cli: Cli, *targets: Path) -> tuple[int, list[dict[str, object]]]:
    run = cli("protect", "--json", *map(str, targets))
    return run.code, json.loads(run.out)["results"]


def test_protects_and_deletes(secret_service: object, cli: Cli, home: Home) -> None:
    payload = payloads.publishsettings_v2()
    path = home.write("Downloads/Fake-credentials.publishsettings", payload.data)
    code, results = protect_json(cli, path)
    assert code == 0, results
    result = results[0]
    assert result["protected"] is True and result["kind"] == kinds.PUBLISHSETTINGS
    deletion = result["deletion"]
    assert isinstance(deletion, dict)
    assert deletion["result"] == "deleted (overwrite attempted)"
    assert deletion["fs_type"]
    assert result.get("revoke")
    assert not path.exists()
    assert sorted(os.listdir(home.downloads)) == []
    assert vault_shas(cli) == [sha(payload.data)]
    assert not list((paths.user_state_dir() / "journal").glob("*.json"))
    human = cli(
        "protect", str(home.write("Downloads/b.PublishSettings", payloads.publish_profile().data))
    )
    assert human.code == 0 and "deleted (overwrite attempted)" in human.out
    assert "revoke:" in human.out
    for secret in payload.secrets:
        assert secret not in human.out + json.dumps(results)


def test_same_content_twice_is_stored_once(secret_service: object, cli: Cli, home: Home) -> None:
    data = payloads.publish_profile().data
    first = home.write("Downloads/a.PublishSettings", data)
    assert cli("import", str(first)).code == 0
    second = home.write("Downloads/copy.PublishSettings", data)
    code, results = protect_json(cli, first, second)
    assert code == 0
    assert [r["already_in_vault"] for r in results] == [True, True]
    assert vault_shas(cli) == [sha(data)]
    assert os.listdir(home.downloads) == []


@pytest.mark.security
@pytest.mark.parametrize("make", ["symlink", "fifo", "socket", "directory", "device"])
@pytest.mark.timeout(20)
def test_refuses_special_files(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path, make: str
) -> None:
    path = home.downloads / "x.publishsettings"
    target = tmp_path / "real.publishsettings"
    target.write_bytes(payloads.publish_profile().data)
    sock = None
    if make == "symlink":
        path.symlink_to(target)
    elif make == "fifo":
        os.mkfifo(path)
    elif make == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
    elif make == "directory":
        path.mkdir()
        (path / "inner.publishsettings").write_bytes(payloads.publish_profile().data)
    else:
        if os.geteuid() != 0:
            pytest.skip("mknod needs root (CI runs as root)")
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))
    try:
        code, results = protect_json(cli, path)
    finally:
        if sock is not None:
            sock.close()
    assert code == 4 and results[0]["protected"] is False
    assert results[0]["reason"] in ("symlink", "not-regular")
    assert os.path.lexists(path) and target.exists()
    assert vault_shas(cli) == []


def test_refuses_symlinked_parent(
    secret_service: object, cli: Cli, home: Home, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "x.publishsettings"
    victim.write_bytes(payloads.publish_profile().data)
    (home.downloads / "link").symlink_to(outside)
    code, results = protect_json(cli, home.downloads / "link" / "x.publishsettings")
    assert code == 4 and results[0]["reason"] == "symlink"
    assert victim.exists()


def test_refuses_hard_links_unless_configured(secret_service: object, cli: Cli, home: Home) -> None:
    path = home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)
    os.link(path, home.root / "other-name")
    code, results = protect_json(cli, path)
    assert code == 4 and results[0]["reason"] == "hard-links"
    assert path.exists() and (home.root / "other-name").exists()
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text("[protect]\nallow_hard_links = true\n")
    code, results = protect_json(cli, path)
    assert code == 0 and not path.exists() and (home.root / "other-name").exists()


@pytest.mark.security
def test_refuses_other_owner(secret_service: object, cli: Cli, home: Home) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown needs root (CI runs as root)")
    path = home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)
    os.chown(path, 4242, 4242)
    code, results = protect_json(cli, path)
    assert code == 4 and results[0]["reason"] == "other-owner" and path.exists()


def test_not_a_credential(secret_service: object, cli: Cli, home: Home) -> None:
    path = home.write("Downloads/notes.txt", "hello")
    code, results = protect_json(cli, path)
    assert code == 4 and results[0]["reason"] == "not-credential" and path.exists()
    code, results = protect_json(cli, home.downloads / "missing.publishsettings")
    assert code == 4 and results[0]["reason"] == "not-found"


def _protector() -> Protector:
    cfg = config.load()
    return Protector(cfg, open_vault(cfg), step=lambda label: None)


def test_file_replaced_between_read_and_delete(
    secret_service: object, home: Home, cli: Cli
) -> None:
    original = payloads.publish_profile().data
    path = home.write("Downloads/a.PublishSettings", original)
    replacement = payloads.publish_profile().data

    def swap(label: str) -> None:
        if label == "after-verify":
            path.unlink()
            path.write_bytes(replacement)

    protector = _protector()
    protector.step = swap
    outcome = protector.protect(path)
    assert not outcome.protected and outcome.reason == "changed"
    assert path.read_bytes() == replacement  # the new version is untouched
    assert vault_shas(cli) == [sha(original)]


def test_file_still_growing(secret_service: object, home: Home, cli: Cli) -> None:
    path = home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)

    def grow(label: str) -> None:
        if label == "after-verify":
            with path.open("ab") as fh:
                fh.write(b"<!-- more -->")

    protector = _protector()
    protector.step = grow
    outcome = protector.protect(path)
    assert not outcome.protected and outcome.reason == "changed"
    assert path.read_bytes().endswith(b"<!-- more -->")


@pytest.mark.security
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_read_only_directory(secret_service: object, cli: Cli, home: Home) -> None:
    mnt = home.downloads / "ro"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "cg-ro", str(mnt)], check=True)
    try:
        data = payloads.publish_profile().data
        path = mnt / "a.PublishSettings"
        path.write_bytes(data)
        path.chmod(0o400)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        code, results = protect_json(cli, path)
        assert code == 4 and results[0]["reason"] == "read-only"
        assert path.read_bytes() == data
        assert vault_shas(cli) == [sha(data)]  # the verified copy stays; the source too
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.security
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_disk_full_while_writing_the_item(secret_service: object, cli: Cli, home: Home) -> None:
    data_home = home.root / "small"
    data_home.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=128k", "cg-full", str(data_home)], check=True
    )
    try:
        os.environ["XDG_DATA_HOME"] = str(data_home)
        (data_home / "filler").write_bytes(b"\0" * (120 * 1024))
        data = payloads.publish_profile().data + b" " * 32 * 1024
        path = home.write("Downloads/a.PublishSettings", data)
        code, results = protect_json(cli, path)
        assert code == 7 and results[0]["reason"] == "vault"
        assert path.read_bytes() == data
        assert not list((data_home / "credguard" / "vault").glob("*.cgv"))
    finally:
        subprocess.run(["umount", "-l", str(data_home)], check=False)


def test_hostile_names(secret_service: object, cli: Cli, home: Home) -> None:
    a = home.write("Downloads/evil\nname.publishsettings", payloads.publish_profile().data)
    raw = os.fsencode(home.downloads) + b"/bad\xff.publishsettings"
    fd = os.open(raw, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, payloads.publish_profile().data)
    os.close(fd)
    code, results = protect_json(cli, a, Path(os.fsdecode(raw)))
    assert code == 0, results
    assert os.listdir(home.downloads) == []


def test_trash_item_takes_its_trashinfo(secret_service: object, cli: Cli, home: Home) -> None:
    path = home.write(".local/share/Trash/files/x.publishsettings", payloads.publish_profile().data)
    info = home.write(
        ".local/share/Trash/info/x.publishsettings.trashinfo",
        "[Trash Info]\nPath=/home/x.publishsettings\n",
    )
    code, _ = protect_json(cli, path)
    assert code == 0 and not path.exists() and not info.exists()


def test_import_targets(secret_service: object, cli: Cli, home: Home, tmp_path: Path) -> None:
    sink = tmp_path / "sink"
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text(
        '[[targets]]\nname = "copier"\n'
        f'command = ["sh", "-c", "cp \\"$1\\" {sink} && test -n \\"$CREDGUARD_PUBLISH_'
        'PASSWORD\\"", "sh", "{file}"]\n'
        'kinds = ["azure-publish-profile"]\n'
    )
    data = payloads.publish_profile().data
    path = home.write("Downloads/a.PublishSettings", data)
    code, results = protect_json(cli, path)
    assert code == 0, (results[0]["targets"], results[0]["error"])
    assert results[0]["targets"] == [{"name": "copier", "ok": True, "detail": "exit 0"}]
    assert sink.read_bytes() == data and not path.exists()
    home.config_file.write_text('[[targets]]\nname = "broken"\ncommand = ["false"]\n')
    path = home.write("Downloads/b.PublishSettings", payloads.publish_profile().data)
    code, results = protect_json(cli, path)
    assert code == 4 and results[0]["reason"] == "target-failed" and path.exists()


def test_thousand_files_at_once(secret_service: object, cli: Cli, home: Home) -> None:
    files = [
        home.write(f"Downloads/many/p{i}.PublishSettings", payloads.publish_profile().data)
        for i in range(1000)
    ]
    shas = sorted(sha(p.read_bytes()) for p in files)
    code, results = protect_json(cli, *files)
    assert code == 0 and all(r["protected"] for r in results)
    assert os.listdir(home.downloads / "many") == []
    assert vault_shas(cli) == shas


def test_scan_protect_applies_policy(secret_service: object, cli: Cli, home: Home) -> None:
    download = home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)
    cache = home.write(".azure/msal_token_cache.json", payloads.msal_cache().data, mode=0o644)
    home.azure.chmod(0o755)
    run = cli("scan", "--protect", "--json")
    doc = json.loads(run.out)
    actions = {Path(a["path"]).name: a for a in doc["actions"]}
    assert actions["a.PublishSettings"]["action"] == "protect"
    # (the record names kind, path, reason and error: no secret, so it may show on failure)
    assert actions["a.PublishSettings"]["protected"] is True, (actions, run.err)
    assert actions["msal_token_cache.json"]["action"] == "harden"
    assert not download.exists() and cache.exists()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.azure.stat().st_mode) == 0o700
    assert run.code == 1  # the live cache is still on disk, by policy


def test_policy_in_config_and_managed_floor(secret_service: object, cli: Cli, home: Home) -> None:
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text('[policy]\nazure-publish-profile = { downloads = "alert" }\n')
    path = home.write("Downloads/a.PublishSettings", payloads.publish_profile().data)
    run = cli("scan", "--protect", "--json")
    assert json.loads(run.out)["actions"][0]["action"] == "alert" and path.exists()
    home.policy_file.parent.mkdir(parents=True, exist_ok=True)
    home.policy_file.write_text('[policy]\nazure-publish-profile = "protect"\n')
    run = cli("scan", "--protect", "--json")
    assert "would weaken the managed policy" in run.err
    assert json.loads(run.out)["actions"][0]["protected"] is True and not path.exists()
