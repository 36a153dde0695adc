"""Facts about where a file lives: mount table, disk type, sync folders, deletion limits.

The mount table is compared with ``findmnt`` on this machine; disk facts are checked against a
fake sysfs tree; the limits are checked to say what is known and no more.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from credguard.fs import facts
from credguard.fs.facts import Mount

pytestmark = pytest.mark.timeout(10)
ROOT = os.geteuid() == 0


def findmnt(column: str, path: Path) -> str:
    if shutil.which("findmnt") is None:
        pytest.skip("findmnt (util-linux) is not installed")
    out = subprocess.run(
        ["findmnt", "-n", "-o", column, "-T", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return out.strip()


@contextlib.contextmanager
def tmpfs(where: Path) -> Iterator[Path]:
    if not ROOT:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    where.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "cg-fsinfo", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_fs_type_and_source_match_findmnt(tmp_path: Path) -> None:
    assert facts.fs_type(tmp_path) == findmnt("FSTYPE", tmp_path) != ""
    assert facts.mount_source(tmp_path) == findmnt("SOURCE", tmp_path)
    assert facts.fs_type(tmp_path / "not" / "there") == facts.fs_type(tmp_path)


def test_dev_shm_is_tmpfs() -> None:
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm")
    assert facts.fs_type("/dev/shm") == "tmpfs"


def test_mounted_tmpfs_with_a_space_in_its_path_reports_ram(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ram disk") as where:
        assert facts.fs_type(where / "f") == "tmpfs"
        assert facts.mount_source(where) == "cg-fsinfo"
        assert facts.is_mount_point(where) and not facts.is_mount_point(where / "f")
        assert facts.is_rotational(where) is None
        limits = facts.deletion_limits(where)
        assert any("RAM" in line for line in limits)
        assert not any("SSD" in line or "disk" in line for line in limits)


def test_other_platforms_read_the_table_through_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDGUARD_PLATFORM", "macos")
    assert facts.fs_type("/dev/shm") == "tmpfs"
    assert facts.is_rotational("/") is None


def test_fd_path_names_an_open_directory(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert facts.fd_path(fd) == tmp_path
    finally:
        os.close(fd)


def test_rotational_of_the_root_disk_is_a_bool_or_unknown() -> None:
    assert facts.is_rotational("/") in (True, False, None)


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    """A fake /sys: an HDD sda with partition sda1, an NVMe SSD with a partition, a loop."""
    root = tmp_path / "sys"
    disks = {
        "sda": ("pci0/ata1/block/sda", "1", ["sda1"]),
        "nvme0n1": ("pci0/nvme/block/nvme0n1", "0", ["nvme0n1p2"]),
        "vda": ("pci0/virtio1/block/vda", "1", ["vda1"]),
        "loop0": ("virtual/block/loop0", "0", []),
        "sdb": ("pci0/usb/block/sdb", "garbage", []),
    }
    (root / "class" / "block").mkdir(parents=True)
    for disk, (where, flag, parts) in disks.items():
        device = root / "devices" / where
        (device / "queue").mkdir(parents=True)
        (device / "queue" / "rotational").write_text(flag + "\n")
        (root / "class" / "block" / disk).symlink_to(device)
        for part in parts:
            (device / part).mkdir()
            (device / part / "partition").write_text("1\n")
            (root / "class" / "block" / part).symlink_to(device / part)
    return root


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sda", True),
        ("sda1", True),
        ("nvme0n1", False),
        ("nvme0n1p2", False),
        ("loop0", None),
        ("vda1", None),
        ("vda", None),
        ("sdb", None),
        ("sdz", None),
    ],
)
def test_partitions_map_to_their_disk(sysfs: Path, name: str, expected: bool | None) -> None:
    assert facts.device_rotational(name, sysfs) is expected


def test_block_device_found_by_device_number(
    sysfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facts, "mounts", lambda: [Mount("/", "/dev/root", "ext4", frozenset())])
    dev = os.stat(tmp_path).st_dev
    link = sysfs / "dev" / "block" / f"{os.major(dev)}:{os.minor(dev)}"
    link.parent.mkdir(parents=True)
    link.symlink_to(sysfs / "devices" / "pci0" / "ata1" / "block" / "sda" / "sda1")
    assert facts.block_device(tmp_path, sysfs) == "sda1"
    assert facts.is_rotational(tmp_path, sysfs) is True


@pytest.mark.parametrize(
    ("path", "provider"),
    [
        ("/home/u/OneDrive/Documents/x.pfx", "OneDrive"),
        ("C:/Users/u/OneDrive - Contoso/x.pfx", "OneDrive"),
        ("/Users/u/Library/CloudStorage/OneDrive-Personal/x", "OneDrive"),
        ("/home/u/Dropbox/work/x.json", "Dropbox"),
        ("/home/u/Dropbox (Contoso)/x.json", "Dropbox"),
        ("/Users/u/Google Drive/x", "Google Drive"),
        ("/Users/u/Library/CloudStorage/GoogleDrive-u@example.com/My Drive/x", "Google Drive"),
        ("/Users/u/Library/Mobile Documents/com~apple~CloudDocs/x", "iCloud Drive"),
        ("C:/Users/u/iCloudDrive/x", "iCloud Drive"),
        ("/Users/u/Box/x", "Box"),
        ("/Users/u/Library/CloudStorage/Box-Box/x", "Box"),
        ("/home/u/pCloudDrive/x", "pCloud"),
        ("/home/u/Nextcloud/x", "Nextcloud"),
        ("/home/u/ownCloud/x", "ownCloud"),
        ("/home/u/MEGA/x", "MEGA"),
        ("/Users/u/Library/CloudStorage/SomeVendor-acct/x", "SomeVendor"),
        ("/home/u/Downloads/x.publishsettings", None),
        ("/home/u/Dropboxes/x", None),
        ("/home/u/boxes/x", None),
        ("/home/u/onedrive-notes/x", None),
        ("/home/u/Library/x", None),
    ],
)
def test_sync_folder_names(path: str, provider: str | None) -> None:
    assert facts.sync_folder(path) == provider


def test_syncthing_folder_is_found_by_its_marker(tmp_path: Path) -> None:
    folder = tmp_path / "Sync" / "deep"
    folder.mkdir(parents=True)
    assert facts.sync_folder(folder / "x.json") is None
    (tmp_path / "Sync" / ".stfolder").mkdir()
    assert facts.sync_folder(folder / "x.json") == "Syncthing"


def limits_on(
    monkeypatch: pytest.MonkeyPatch,
    sysfs: Path,
    kind: str,
    source: str = "/dev/sda1",
    options: str = "rw",
    path: str = "/srv/x",
) -> list[str]:
    mount = Mount("/", source, kind, frozenset(options.split(",")))
    monkeypatch.setattr(facts, "mounts", lambda: [mount])
    monkeypatch.setattr(facts, "SYSFS", sysfs)
    monkeypatch.setenv("CREDGUARD_PLATFORM", "linux")
    return facts.deletion_limits(path)


def test_in_place_file_system_on_a_hard_disk_claims_little(
    monkeypatch: pytest.MonkeyPatch, sysfs: Path
) -> None:
    assert limits_on(monkeypatch, sysfs, "ext4") == [
        "snapshots and backups (LVM, VM, backup tools) are unknown"
    ]


@pytest.mark.parametrize(
    ("kind", "source", "options", "words"),
    [
        ("btrfs", "/dev/sda1", "rw", "copy-on-write file system (btrfs)"),
        ("zfs", "tank/home", "rw", "copy-on-write file system (zfs)"),
        ("ext4", "/dev/nvme0n1p2", "rw", "SSD (non-rotational disk)"),
        ("ext4", "/dev/vda1", "rw", "virtual disk (vda1)"),
        ("ext4", "/dev/sda1", "rw,data=journal", "data journaling (ext4, data=journal)"),
        ("nfs4", "server:/export", "rw", "network file system (nfs4)"),
        ("fuse.sshfs", "u@host:", "rw", "network file system (fuse.sshfs)"),
        ("cifs", "//server/share", "rw", "network file system (cifs)"),
        ("9p", "hostshare", "rw", "shared from a host (9p)"),
        ("overlay", "overlay", "rw", "stacked file system (overlay)"),
        ("f2fs", "/dev/sda1", "rw", "log-structured file system (f2fs)"),
        (
            "weirdfs",
            "/dev/sda1",
            "rw",
            "file system weirdfs: whether it overwrites in place is unknown",
        ),
        ("", "", "rw", "file system unknown"),
    ],
)
def test_limits_name_what_applies(
    monkeypatch: pytest.MonkeyPatch, sysfs: Path, kind: str, source: str, options: str, words: str
) -> None:
    limits = limits_on(monkeypatch, sysfs, kind, source, options)
    assert any(words in line for line in limits), limits
    assert limits[-1].startswith("snapshots and backups")


def test_xfs_is_not_called_copy_on_write(monkeypatch: pytest.MonkeyPatch, sysfs: Path) -> None:
    limits = limits_on(monkeypatch, sysfs, "xfs")
    assert not any("copy-on-write" in line for line in limits)


def test_network_mount_says_nothing_about_a_local_disk(
    monkeypatch: pytest.MonkeyPatch, sysfs: Path
) -> None:
    limits = limits_on(monkeypatch, sysfs, "nfs4", "server:/export")
    assert not any("disk" in line or "SSD" in line for line in limits)


def test_unknown_disk_is_said_to_be_unknown(monkeypatch: pytest.MonkeyPatch, sysfs: Path) -> None:
    limits = limits_on(monkeypatch, sysfs, "ext4", "/dev/sdz9", path="/nonexistent/x")
    assert any(line.startswith("disk type unknown") for line in limits)


def test_sync_folder_is_named_in_the_limits(monkeypatch: pytest.MonkeyPatch, sysfs: Path) -> None:
    limits = limits_on(monkeypatch, sysfs, "ext4", path="/home/u/Dropbox/x.json")
    assert (
        "sync folder (Dropbox): if it syncs, the provider keeps versions and copies on other "
        "devices" in limits
    )


def test_limits_never_promise_erasure(monkeypatch: pytest.MonkeyPatch, sysfs: Path) -> None:
    kinds = ["ext4", "xfs", "btrfs", "tmpfs", "nfs", "apfs", "weirdfs", ""]
    for kind in kinds:
        for line in limits_on(monkeypatch, sysfs, kind):
            lowered = line.lower()
            assert not any(w in lowered for w in ("secure", "erased", "guarantee", "safe"))
