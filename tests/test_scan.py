"""The scan walk on real directory trees: roots, sniffing, pruning, links, file systems."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import Home

from credguard import config
from credguard.detect import kinds
from credguard.paths import default_roots
from credguard.scan import ScanResult, explicit_roots, scan

pytestmark = pytest.mark.timeout(30)


def run_scan(*paths: Path) -> ScanResult:
    cfg = config.load()
    roots = explicit_roots(str(p) for p in paths) if paths else default_roots()
    return scan(roots, cfg)


def found(result: ScanResult) -> dict[str, str]:
    return {Path(f.path).name: f.kind for f in result.findings}


def test_default_roots_find_every_family(home: Home) -> None:
    home.write(
        "Downloads/Fake-Dev-1-2-2026-credentials.publishsettings",
        payloads.publishsettings_v2().data,
    )
    home.write("Desktop/contoso.PublishSettings", payloads.publish_profile().data)
    home.write(
        "Documents/src/Properties/PublishProfiles/prod.pubxml.user", payloads.pubxml_user().data
    )
    home.write(".azure/msal_token_cache.json", payloads.msal_cache().data)
    home.write(".azure/service_principal_entries.json", payloads.sp_entries().data)
    home.write(".azure/azureProfile.json", payloads.modern_azure_profile().data)
    home.write(".Azure/AzureRmContext.json", payloads.ps_context().data)
    home.write(".azd/auth/msal/cache1.json", payloads.azd_msal_cache().data)
    home.write(".local/share/Trash/files/old.publishsettings", payloads.publishsettings_v1().data)
    home.write("top-level.publishsettings", payloads.publish_profile().data)
    result = run_scan()
    assert found(result) == {
        "Fake-Dev-1-2-2026-credentials.publishsettings": kinds.PUBLISHSETTINGS,
        "contoso.PublishSettings": kinds.PUBLISH_PROFILE,
        "prod.pubxml.user": kinds.VS_PUBLISH_SECRET,
        "msal_token_cache.json": kinds.CLI_TOKEN_CACHE,
        "service_principal_entries.json": kinds.CLI_SERVICE_PRINCIPAL,
        "AzureRmContext.json": kinds.POWERSHELL_CACHE,
        "cache1.json": kinds.AZD_CACHE,
        "old.publishsettings": kinds.PUBLISHSETTINGS,
        "top-level.publishsettings": kinds.PUBLISH_PROFILE,
    }
    assert not result.errors


def test_home_top_level_is_not_recursive(home: Home) -> None:
    home.write("projects/deep/x.publishsettings", payloads.publish_profile().data)
    assert found(run_scan()) == {}


def test_renamed_publishsettings_is_found_by_content_in_downloads(home: Home) -> None:
    home.write("Downloads/settings.txt", payloads.publishsettings_v1().data)
    home.write("Downloads/profile", payloads.publish_profile().data)
    home.write("Downloads/notes.xml", payloads.publish_profile(bom=True, crlf=True).data)
    assert found(run_scan()) == {
        "settings.txt": kinds.PUBLISHSETTINGS,
        "profile": kinds.PUBLISH_PROFILE,
        "notes.xml": kinds.PUBLISH_PROFILE,
    }


def test_renamed_file_in_documents_is_not_sniffed_but_explicit_path_is(home: Home) -> None:
    home.write("Documents/settings.txt", payloads.publishsettings_v1().data)
    assert found(run_scan()) == {}
    assert found(run_scan(home.documents)) == {"settings.txt": kinds.PUBLISHSETTINGS}


def test_partial_downloads_and_placeholders_are_not_findings(home: Home) -> None:
    data = payloads.publishsettings_v2().data
    home.write("Downloads/Fake.publishsettings.crdownload", data)
    home.write("Downloads/Fake.publishsettings.part", data)
    home.write("Downloads/Other.publishsettings", b"")  # Firefox's empty placeholder
    home.write("Downloads/Safari.publishsettings.download/Safari.publishsettings", data)
    result = run_scan()
    assert found(result) == {}
    assert not result.skipped


def test_mentions_only_and_modern_profile_are_not_findings(home: Home) -> None:
    home.write("Downloads/readme.txt", payloads.mentions_only())
    home.write(".azure/azureProfile.json", payloads.modern_azure_profile().data)
    assert found(run_scan()) == {}


def test_pruned_directories(home: Home) -> None:
    data = payloads.publish_profile().data
    home.write("Documents/repo/.git/x.publishsettings", data)
    home.write("Documents/web/node_modules/pkg/x.publishsettings", data)
    home.write("Documents/venv/pyvenv.cfg", b"home = /usr/bin\n")
    home.write("Documents/venv/lib/python3.11/site-packages/x.publishsettings", data)
    home.write("Documents/repo/deploy/kept.publishsettings", data)
    assert found(run_scan()) == {"kept.publishsettings": kinds.PUBLISH_PROFILE}


def test_symlinks_are_never_followed(home: Home, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.publishsettings").write_bytes(payloads.publish_profile().data)
    (home.downloads / "linked-dir").symlink_to(outside)
    (home.downloads / "link.publishsettings").symlink_to(outside / "x.publishsettings")
    result = run_scan()
    assert found(result) == {}
    assert [(Path(s.path).name, s.reason) for s in result.skipped] == [
        ("link.publishsettings", "symlink")
    ]


def test_symlinked_root_is_refused(home: Home, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "x.publishsettings").write_bytes(payloads.publish_profile().data)
    link = tmp_path / "link"
    link.symlink_to(real)
    result = run_scan(link)
    assert found(result) == {}
    assert [s.reason for s in result.errors] == ["symlink"]


def test_special_files_are_skipped_with_a_reason(home: Home) -> None:
    os.mkfifo(home.downloads / "pipe.publishsettings")
    (home.downloads / "dir.publishsettings").mkdir()
    (home.downloads / "dir.publishsettings" / "inner.txt").write_text("hello")
    result = run_scan()
    assert {(Path(s.path).name, s.reason) for s in result.skipped} == {
        ("pipe.publishsettings", "not-regular")
    }


def test_too_large_candidate_is_skipped(home: Home) -> None:
    with (home.downloads / "huge.publishsettings").open("wb") as fh:
        fh.truncate(3 << 30)
    result = run_scan()
    assert [(Path(s.path).name, s.reason) for s in result.skipped] == [
        ("huge.publishsettings", "too-large")
    ]


def test_malformed_candidate_is_reported(home: Home) -> None:
    home.write("Downloads/broken.publishsettings", b"<PublishData><PublishProfile")
    home.write("Downloads/laughs.publishsettings", payloads.billion_laughs())
    result = run_scan()
    assert {(Path(s.path).name, s.reason) for s in result.skipped} == {
        ("broken.publishsettings", "malformed"),
        ("laughs.publishsettings", "malformed"),
    }


def test_same_file_through_two_roots_is_reported_once(home: Home) -> None:
    home.write("Downloads/a.publishsettings", payloads.publish_profile().data)
    result = run_scan(home.downloads, home.root / "Downloads")
    assert len(result.findings) == 1


def test_exclude_patterns(home: Home) -> None:
    home.write("Downloads/keep/a.publishsettings", payloads.publish_profile().data)
    home.write("Downloads/skip/b.publishsettings", payloads.publish_profile().data)
    home.write("Downloads/c.publishsettings", payloads.publish_profile().data)
    home.config_file.parent.mkdir(parents=True)
    home.config_file.write_text('[scan]\nexclude = ["*/skip", "*/c.publishsettings"]\n')
    assert found(run_scan()) == {"a.publishsettings": kinds.PUBLISH_PROFILE}


def test_names_with_newlines_and_invalid_utf8(home: Home) -> None:
    data = payloads.publish_profile().data
    home.write("Downloads/evil\nname.publishsettings", data)
    raw = os.fsencode(home.downloads) + b"/bad\xff.publishsettings"
    fd = os.open(raw, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, data)
    os.close(fd)
    result = run_scan()
    assert len(result.findings) == 2


@contextlib.contextmanager
def tmpfs(where: Path) -> Iterator[Path]:
    where.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "credguard-test", str(where)], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.security
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_stays_on_one_file_system(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    with tmpfs(home.downloads / "mnt") as mnt:
        (mnt / "x.publishsettings").write_bytes(payloads.publish_profile().data)
        result = run_scan()
        assert found(result) == {}
        assert [s.reason for s in result.skipped] == ["other-filesystem"]
        monkeypatch.setenv("CREDGUARD_SCAN_ONE_FILE_SYSTEM", "false")
        assert found(run_scan()) == {"x.publishsettings": kinds.PUBLISH_PROFILE}


def test_directory_swapped_for_symlink_is_not_followed(home: Home, tmp_path: Path) -> None:
    """A parent replaced by a link to outside after listing: opening relative to the parent
    fd with O_NOFOLLOW refuses it, where a path-based walk would follow it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.publishsettings").write_bytes(payloads.publish_profile().data)
    sub = home.downloads / "sub"
    sub.mkdir()
    cfg = config.load()
    from credguard import scan as scan_mod

    original = scan_mod.Scanner._list

    def swap_then_list(self: scan_mod.Scanner, fd: int, path: str, root: object) -> list[str]:
        names = original(self, fd, path, root)  # type: ignore[arg-type]
        if path == str(home.downloads):
            sub.rmdir()
            sub.symlink_to(outside)
        return names

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(scan_mod.Scanner, "_list", swap_then_list)
    try:
        result = scan(explicit_roots([str(home.downloads)]), cfg)
    finally:
        monkeypatch.undo()
    assert found(result) == {}
    assert [(Path(s.path).name, s.reason) for s in result.skipped] == [("sub", "symlink")]


@pytest.mark.security
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_scan_protect_never_acts_on_another_file_system(
        home: Home, secret_service: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``one_file_system = false`` the scan reports a credential on a mount inside a root,
    and acting on it refuses it as the daemon does: a file on another file system than its
    root is never acted on."""
    from helpers.home import run_subprocess

    monkeypatch.setenv("CREDGUARD_SCAN_ONE_FILE_SYSTEM", "false")
    data = payloads.publish_profile().data
    with tmpfs(home.downloads / "mnt") as mnt:
        (mnt / "x.PublishSettings").write_bytes(data)
        run = run_subprocess("scan", "--protect", "--json")
        assert (mnt / "x.PublishSettings").read_bytes() == data
    (action,) = json.loads(run.out)["actions"]
    assert action["protected"] is False and action["reason"] == "other-filesystem"


def test_scan_entry_reads_beneath_the_callers_directory(home: Home, tmp_path: Path) -> None:
    """The daemon's one-file examination reads through the directory descriptor it walked to
    (never through the path string) and gives the finding the root it walked from."""
    from credguard.scan import Scanner

    walked = home.downloads / "sub"
    walked.mkdir()
    (walked / "a.PublishSettings").write_bytes(payloads.publish_profile().data)
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    fd = os.open(walked, os.O_RDONLY | os.O_DIRECTORY)
    try:
        walked.rename(decoy / "sub")  # the path string now names nothing
        result = Scanner(config.load()).scan_entry(
            fd, "a.PublishSettings", str(walked / "a.PublishSettings"), str(home.downloads),
            sniff=False)
    finally:
        os.close(fd)
    (finding,) = result.findings
    assert finding.kind == kinds.PUBLISH_PROFILE and finding.root == str(home.downloads)
    assert finding.path == str(walked / "a.PublishSettings") and result.files == 1


def test_scan_beneath_a_root_never_enters_a_link_on_the_way(home: Home, tmp_path: Path) -> None:
    """The daemon's rescan of a folder an event named walks to it from the root: a folder on
    the way swapped for a link to outside is refused, where opening the path would follow it."""
    from credguard.paths import Root
    from credguard.scan import Scanner

    outside = tmp_path / "outside"
    (outside / "e").mkdir(parents=True)
    (outside / "e" / "x.publishsettings").write_bytes(payloads.publish_profile().data)
    (home.downloads / "d").symlink_to(outside)
    (home.downloads / "real" / "e").mkdir(parents=True)
    (home.downloads / "real" / "e" / "y.publishsettings").write_bytes(
        payloads.publish_profile().data)
    downloads = Root(home.downloads, "downloads", sniff=True)
    result = Scanner(config.load()).scan_beneath(downloads, "d/e")
    assert found(result) == {}
    assert [(s.path, s.reason) for s in result.skipped] == [
        (str(home.downloads / "d" / "e"), "symlink")]
    result = Scanner(config.load()).scan_beneath(downloads, "real/e")
    assert found(result) == {"y.publishsettings": kinds.PUBLISH_PROFILE}
    assert result.findings[0].root == str(home.downloads)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le"])
def test_a_utf16_profile_opening_with_its_root_is_found_by_content(home: Home, codec: str) -> None:
    """No XML declaration, so ``<Project`` follows the BOM at once: the sniff must see it."""
    body = payloads.pubxml().data.decode().split("\n", 1)[1]
    assert body.startswith("<Project")
    path = home.write("Downloads/profile.txt", body.encode(codec))
    assert found(run_scan(path)) == {"profile.txt": kinds.VS_PUBLISH_SECRET}
