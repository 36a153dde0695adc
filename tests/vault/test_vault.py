"""The vault end to end against the real Secret Service: import, list, show, export, verify,
rotate, destroy, and the faults the issue lists (locked or missing keyring, bad permissions,
damaged items, disk full, concurrent importers)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import Home, Run, run_subprocess
from helpers.schemas import validate
from helpers.secret_service import SecretService

from credguard import paths
from credguard.detect import kinds

pytestmark = pytest.mark.timeout(120)
Cli = Callable[..., Run]


def vault_dir() -> Path:
    return paths.vault_dir()


def import_one(cli: Cli, path: Path, *extra: str) -> str:
    run = cli("import", "--json", str(path), *extra)
    assert run.code == 0, run.err
    return str(json.loads(run.out)["imported"][0]["id"])


@pytest.fixture
def profile(home: Home) -> tuple[Path, payloads.Payload]:
    payload = payloads.publish_profile()
    return home.write("Downloads/contoso.PublishSettings", payload.data), payload


def test_import_list_show_export_round_trip(
    secret_service: object, cli: Cli, home: Home, profile: tuple[Path, payloads.Payload]
) -> None:
    path, payload = profile
    run = cli("import", str(path))
    assert run.code == 0 and "imported as" in run.out and "source kept" in run.out
    assert path.exists()
    item_id = run.out.split("imported as ")[1].split()[0]
    listing = validate(cli("vault", "list", "--json").out, "vault-list")["items"]
    assert listing == [
        {
            "id": item_id,
            "kind": kinds.PUBLISH_PROFILE,
            "name": "contoso.PublishSettings",
            "source": str(path),
            "imported_at": listing[0]["imported_at"],
            "sha256": listing[0]["sha256"],
            "details": listing[0]["details"],
        }
    ]
    assert listing[0]["sha256"] == hashlib.sha256(payload.data).hexdigest()
    # the detection's details, kept with the item (what vault list and notifications show)
    assert listing[0]["details"]["apps"] == ["contoso-app"], listing[0]["details"]
    assert listing[0]["details"]["publish_methods"] == ["FTP", "MSDeploy", "ZipDeploy"]
    shown = validate(cli("vault", "show", item_id[:8], "--json").out, "vault-show")
    assert shown == {"version": 1, **listing[0]}
    out = home.root / "exported.xml"
    assert cli("vault", "export", item_id, "--out", str(out)).code == 0
    assert out.read_bytes() == payload.data
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    again = cli("vault", "export", item_id, "--out", str(out))
    assert again.code == 2 and "never overwrites" in again.err
    texts = run.out + run.err + json.dumps(listing) + json.dumps(shown)
    for secret in payload.secrets:
        assert secret not in texts
    for item in vault_dir().iterdir():  # ciphertext only: no name, no secret on disk
        blob = item.read_bytes()
        assert b"contoso" not in blob or item.name == "vault.json"
        for secret in payload.secrets:
            assert secret.encode() not in blob


def test_vault_files_are_private(
    secret_service: object, cli: Cli, profile: tuple[Path, payloads.Payload]
) -> None:
    import_one(cli, profile[0])
    assert stat.S_IMODE(vault_dir().stat().st_mode) == 0o700
    for item in vault_dir().iterdir():
        assert stat.S_IMODE(item.stat().st_mode) == 0o600, item


def test_reimport_is_not_duplicated(
    secret_service: object, cli: Cli, profile: tuple[Path, payloads.Payload]
) -> None:
    first = import_one(cli, profile[0])
    run = cli("import", "--json", str(profile[0]))
    doc = json.loads(run.out)["imported"][0]
    assert doc["id"] == first and doc["already_in_vault"] is True
    assert len(json.loads(cli("vault", "list", "--json").out)["items"]) == 1


def test_non_credentials_need_force(secret_service: object, cli: Cli, home: Home) -> None:
    path = home.write("Documents/notes.txt", "just notes")
    run = cli("import", str(path))
    assert run.code == 4, run.err
    assert (f"{path}: not a detected credential; use --force KIND to import it anyway"
            in run.err)
    assert json.loads(cli("vault", "list", "--json").out) == {"version": 1, "items": []}
    item = import_one(cli, path, "--force", kinds.CLI_TOKEN_CACHE)
    assert json.loads(cli("vault", "show", item, "--json").out)["kind"] == kinds.CLI_TOKEN_CACHE
    # forced to another kind than detected: the detection's details are not that kind's
    other = home.write("Documents/p.PublishSettings", payloads.publish_profile().data)
    forced = json.loads(cli("vault", "show", import_one(cli, other, "--force",
                                                        kinds.PUBLISHSETTINGS), "--json").out)
    assert forced["kind"] == kinds.PUBLISHSETTINGS and forced["details"] == {}


def test_damaged_items_fail_alone(secret_service: object, cli: Cli, home: Home) -> None:
    ids = [
        import_one(
            cli, home.write(f"Downloads/p{i}.publishsettings", payloads.publish_profile().data)
        )
        for i in range(3)
    ]
    flipped = vault_dir() / f"{ids[0]}.cgv"
    blob = bytearray(flipped.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    flipped.write_bytes(bytes(blob))
    truncated = vault_dir() / f"{ids[1]}.cgv"
    truncated.write_bytes(truncated.read_bytes()[:-7])
    run = cli("vault", "verify", "--json")
    assert run.code == 6
    status = {i["id"]: i["ok"] for i in json.loads(run.out)["items"]}
    assert status == {ids[0]: False, ids[1]: False, ids[2]: True}
    assert cli("vault", "export", ids[2], "--out", str(home.root / "ok.xml")).code == 0
    bad = cli("vault", "export", ids[0], "--out", str(home.root / "bad.xml"))
    assert bad.code == 6 and not (home.root / "bad.xml").exists()
    listing = cli("vault", "list", "--json")
    assert listing.code == 6
    assert [i["id"] for i in validate(listing.out, "vault-list")["items"]] == [ids[2]]


def test_rotate_key_reencrypts_and_removes_old_key(
    secret_service: SecretService, cli: Cli, home: Home
) -> None:
    ids = [
        import_one(
            cli, home.write(f"Downloads/p{i}.publishsettings", payloads.publish_profile().data)
        )
        for i in range(3)
    ]
    old_key = json.loads((vault_dir() / "vault.json").read_text())["key_id"]
    run = cli("vault", "rotate-key")
    assert run.code == 0, run.err
    new_key = json.loads((vault_dir() / "vault.json").read_text())["key_id"]
    assert new_key != old_key
    assert set(secret_service.items("credguard")) == {f"vault-key-{new_key}"}
    assert cli("vault", "verify").code == 0
    for item_id in ids:
        assert bytes.fromhex(new_key) in (vault_dir() / f"{item_id}.cgv").read_bytes()[:32]


def test_destroy_deletes_the_key_first(
    secret_service: SecretService, cli: Cli, profile: tuple[Path, payloads.Payload]
) -> None:
    import_one(cli, profile[0])
    key_id = json.loads((vault_dir() / "vault.json").read_text())["key_id"]
    assert set(secret_service.items("credguard")) == {f"vault-key-{key_id}"}
    refused = cli("vault", "destroy")
    assert refused.code == 2 and "--yes" in refused.err
    assert cli("vault", "destroy", "--yes").code == 0
    assert secret_service.items("credguard") == {}
    assert [p.name for p in vault_dir().iterdir()] == [".lock"]


def test_rm_removes_one_item(
    secret_service: object, cli: Cli, profile: tuple[Path, payloads.Payload]
) -> None:
    item_id = import_one(cli, profile[0])
    assert cli("vault", "rm", item_id).code == 2  # no terminal: --yes required
    assert cli("vault", "rm", item_id, "--yes").code == 0
    assert cli("vault", "show", item_id).code == 9


def test_missing_keyring_fails_closed(
    no_secret_service: object, cli: Cli, profile: tuple[Path, payloads.Payload]
) -> None:
    run = cli("import", str(profile[0]))
    assert run.code == 5 and "keyring" in run.err
    assert not any(vault_dir().glob("*.cgv")) if vault_dir().exists() else True
    assert profile[0].exists()
    doctor = cli("doctor")
    assert doctor.code == 5 and "keyring" in doctor.out


def test_locked_keyring_fails_closed(
    locked_secret_service: object, cli: Cli, profile: tuple[Path, payloads.Payload]
) -> None:
    run = cli("import", str(profile[0]))
    assert run.code == 5, run.err
    assert "locked" in run.err.lower()


def test_wrong_vault_permissions_are_refused(
    secret_service: object, cli: Cli, profile: tuple[Path, payloads.Payload]
) -> None:
    import_one(cli, profile[0])
    vault_dir().chmod(0o755)
    run = cli("vault", "list")
    assert run.code == 7 and "chmod 700" in run.err
    vault_dir().chmod(0o700)
    if os.geteuid() == 0:
        os.chown(vault_dir(), 4242, 4242)
        run = cli("vault", "list")
        assert run.code == 7 and "uid 4242" in run.err
        os.chown(vault_dir(), 0, 0)


def test_symlinked_vault_dir_is_refused(
    secret_service: object, cli: Cli, tmp_path: Path, profile: tuple[Path, payloads.Payload]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    vault_dir().parent.mkdir(parents=True, exist_ok=True)
    vault_dir().symlink_to(elsewhere)
    run = cli("import", str(profile[0]))
    assert run.code == 7 and "symlink" in run.err
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_disk_full_leaves_no_partial_item(secret_service: object, cli: Cli, home: Home) -> None:
    data_home = home.root / "small-data"
    data_home.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "cg-full", str(data_home)], check=True
    )
    try:
        os.environ["XDG_DATA_HOME"] = str(data_home)
        small = home.write("Downloads/a.publishsettings", payloads.publish_profile().data)
        import_one(cli, small)
        (data_home / "filler").write_bytes(b"\0" * (256 * 1024 - 8192))
        big = home.write(
            "Downloads/big.publishsettings",
            payloads.publish_profile(app="x" * 40).data + b" " * 64 * 1024,
        )
        before = big.read_bytes()
        run = cli("import", str(big))
        assert run.code == 7 and "No space left on device (ENOSPC)" in run.err
        assert str(vault_dir()) in run.err
        assert big.read_bytes() == before
        items = sorted(p.name for p in vault_dir().iterdir() if not p.name.startswith("."))
        assert len([n for n in items if n.endswith(".cgv")]) == 1
        assert not [p for p in vault_dir().iterdir() if p.name.endswith(".tmp")]
        (data_home / "filler").unlink()
        assert cli("vault", "verify").code == 0
    finally:
        subprocess.run(["umount", "-l", str(data_home)], check=False)


def test_two_processes_importing_100_items_each(secret_service: object, home: Home) -> None:
    for who in ("a", "b"):
        for i in range(100):
            home.write(f"Downloads/{who}/p{i}.publishsettings", payloads.publish_profile().data)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "credguard",
                "import",
                "--json",
                *sorted(str(p) for p in (home.downloads / who).iterdir()),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("a", "b")
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=100)
        assert proc.returncode == 0, err
        assert len(json.loads(out)["imported"]) == 100
    run = run_subprocess("vault", "verify", "--json")
    assert run.code == 0
    assert len(json.loads(run.out)["items"]) == 200


def test_passphrase_keystore_is_opt_in(
    no_secret_service: object,
    cli: Cli,
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
    profile: tuple[Path, payloads.Payload],
) -> None:
    """Without a keyring, only an explicit choice gives a vault; then it sticks to that choice."""
    assert cli("import", str(profile[0])).code == 5  # never chosen silently
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text('[vault]\nkeystore = "passphrase"\n')
    assert cli("import", str(profile[0])).code == 5  # no terminal, no CREDGUARD_PASSPHRASE
    monkeypatch.setenv("CREDGUARD_PASSPHRASE", "correct horse battery staple")
    item = import_one(cli, profile[0])
    assert (vault_dir() / "passphrase-keystore.json").exists()
    assert cli("vault", "show", item).code == 0
    monkeypatch.setenv("CREDGUARD_PASSPHRASE", "wrong")
    run = cli("vault", "show", item)
    assert run.code == 5 and "wrong passphrase" in run.err
    home.config_file.write_text('[vault]\nkeystore = "keyring"\n')
    run = cli("vault", "list")
    assert run.code == 3 and "does not move keys between keystores" in run.err
    assert "credguard vault migrate --to keyring" in run.err
