"""Facts about where a file lives, for an honest deletion report.

Everything here is best effort and read-only: the mount table (``/proc/self/mountinfo`` on
Linux, ``psutil.disk_partitions`` elsewhere), the block device's ``queue/rotational`` flag in
sysfs, and the names of known cloud-sync folders. When a fact is unknown the answer says so
(``""`` or ``None``), and :func:`deletion_limits` never claims more than the facts support.
"""

from __future__ import annotations

import os
import re
from collections import namedtuple
from pathlib import Path, PurePath

from credguard import paths
from credguard.fs import at
from credguard.fs.flags import READ

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true

StrPath = str | os.PathLike[str]

SYSFS = Path("/sys")
# How every deletion that reached its unlink is reported: the overwrite was attempted, never
# promised (see deletion_limits for what it could not reach).
DELETED = "deleted (overwrite attempted)"
REMEDY = "the real remedies are revoking the credential and full-disk encryption"


def _kinds(names: str) -> frozenset[str]:
    return frozenset(names.split())


# Statements are keyed by file system type (lower case, as the kernel or psutil names it).
RAM = {
    "tmpfs": "tmpfs: in RAM; gone at reboot, may have been written to swap",
    "ramfs": "ramfs: in RAM; gone at reboot",
}
COW = _kinds("btrfs zfs apfs bcachefs")
LOG_STRUCTURED = _kinds("f2fs nilfs2 jffs2 ubifs")
NETWORK = _kinds(
    "nfs nfs4 cifs smb3 smbfs afpfs webdav davfs fuse.davfs2 sshfs fuse.sshfs afs ceph "
    "fuse.ceph glusterfs fuse.glusterfs lustre gpfs beegfs fuse.rclone fuse.s3fs"
)
HOST_SHARED = _kinds("9p virtiofs vboxsf vmhgfs fuse.vmhgfs-fuse prl_fs")
STACKED = _kinds("overlay aufs ecryptfs fuse.gocryptfs fuse.encfs fuse.cryfs")
# In-place file systems: an overwrite of an existing file reuses its blocks (as far as the
# file system shows; what the disk does underneath is a separate statement). xfs is here: its
# reflink copies are CoW, but only for files explicitly cloned.
IN_PLACE = _kinds("ext2 ext3 ext4 xfs jfs reiserfs vfat msdos exfat ntfs ntfs3 hfs hfsplus")
# What each kind of file system means for an overwrite, checked in this order.
KIND_LIMITS = (
    (
        COW,
        "copy-on-write file system ({kind}): the overwrite writes new blocks; old ones may survive",
    ),
    (
        LOG_STRUCTURED,
        "log-structured file system ({kind}): the overwrite usually writes new "
        "blocks; old ones may survive",
    ),
    (NETWORK, "network file system ({kind}): the server and its snapshots keep what they keep"),
    (
        HOST_SHARED,
        "folder shared from a host ({kind}): the host's file system decides what survives",
    ),
    (
        STACKED,
        "stacked file system ({kind}): what the file system underneath keeps is unknown "
        "(an overlay's lower layer keeps its original)",
    ),
)
DATA_JOURNAL = "data=journal"
# Block devices whose rotational flag says nothing about where the bytes end up.
NO_MEDIA = ("loop", "zram", "ram", "nbd", "rbd")  # a file, RAM or the network behind them
VIRTUAL_DISK = ("vd", "xvd")  # virtio and Xen disks: the host's storage is underneath

# Regular expressions here are compiled on first use (re caches them), not at import: ``exec``
# imports this module for fs_type() alone.
_OCTAL = r"\\([0-7]{3})"

# Sync-folder names, matched against whole path components (case-sensitive, as the clients
# create them). Syncthing folders have arbitrary names and are found by their marker instead.
SYNC_NAMES: tuple[tuple[str, str], ...] = (
    ("OneDrive", r"OneDrive(?:[ -].*)?"),
    ("Dropbox", r"Dropbox(?:[ -].*)?"),
    ("Google Drive", r"(?:Google ?Drive(?:[ -].*)?|My Drive)"),
    ("iCloud Drive", r"(?:iCloud ?Drive|com~apple~CloudDocs)"),
    ("Box", r"Box(?: Sync|-Box)?"),
    ("pCloud", r"pCloud(?: ?Drive)?"),
    ("Nextcloud", r"Nextcloud"),
    ("ownCloud", r"ownCloud"),
    ("MEGA", r"MEGA(?:sync)?"),
)
SYNC_PAIRS = {("Library", "Mobile Documents"): "iCloud Drive"}
SYNC_MARKERS = {".stfolder": "Syncthing"}
CLOUD_STORAGE = ("Library", "CloudStorage")  # macOS File Provider: every child is synced


if TYPE_CHECKING:
    from typing import NamedTuple

    class Mount(NamedTuple):
        """One entry of the mount table. (A named tuple made without typing at run time:
        ``exec`` loads this module.)"""

        point: str
        source: str
        fstype: str
        options: frozenset[str]
else:
    Mount = namedtuple("Mount", ["point", "source", "fstype", "options"])


def _unescape(field: str) -> str:
    """The kernel writes space, tab, newline and backslash as three-digit octal escapes."""
    return re.sub(_OCTAL, lambda m: chr(int(m.group(1), 8)), field)


def _linux_mounts() -> list[Mount]:
    try:
        raw = Path("/proc/self/mountinfo").read_bytes()
    except OSError:
        return []
    mounts = []
    # fsdecode keeps undecodable path bytes; split("\n"), as splitlines also splits on \x85
    for line in os.fsdecode(raw).split("\n"):
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if sep and len(fields) >= 6 and len(rest) >= 2:
            opts = fields[5].split(",") + (rest[2].split(",") if len(rest) > 2 else [])
            mounts.append(Mount(_unescape(fields[4]), _unescape(rest[1]), rest[0], frozenset(opts)))
    return mounts


def _psutil_mounts() -> list[Mount]:
    import psutil  # lazily: only platforms without /proc need it

    try:
        parts = psutil.disk_partitions(all=True)
    except OSError:
        return []
    return [
        Mount(p.mountpoint, p.device, p.fstype.lower(), frozenset(p.opts.split(","))) for p in parts
    ]


def mounts() -> list[Mount]:
    """The mount table, in mount order ([] if it cannot be read)."""
    return _linux_mounts() if paths.platform_name() == "linux" else _psutil_mounts()


def mount_of(path: StrPath) -> Mount | None:
    """The mount holding ``path`` (symlinks in it resolved), or None if unknown."""
    real = os.path.normcase(os.path.realpath(path))
    best: Mount | None = None
    for mount in mounts():
        point = os.path.normcase(mount.point)
        inside = real == point or real.startswith(point.rstrip(os.sep) + os.sep)
        # >=: of stacked mounts on one point, the last mounted is the one visible
        if inside and (best is None or len(point) >= len(os.path.normcase(best.point))):
            best = mount
    return best


def fs_type(path: StrPath) -> str:
    """The file system type of the mount holding ``path`` (``""`` if unknown)."""
    mount = mount_of(path)
    return mount.fstype if mount else ""


def mount_source(path: StrPath) -> str:
    """The device or source of the mount holding ``path``, e.g. ``/dev/vda1`` (``""``)."""
    mount = mount_of(path)
    return mount.source if mount else ""


def is_mount_point(path: StrPath) -> bool:
    """Whether something is mounted on ``path`` itself (a bind-mounted file cannot be removed)."""
    real = os.path.normcase(os.path.realpath(path))
    return any(os.path.normcase(m.point) == real for m in mounts())


def fd_path(fd: int) -> Path | None:
    """The path an open directory descriptor currently has, or None if it cannot be told."""
    try:
        if paths.platform_name() == "linux":
            target = os.readlink(f"/proc/self/fd/{fd}")
            ok = target.startswith("/") and not target.endswith(" (deleted)")
            return Path(target) if ok else None
        import fcntl  # macOS has F_GETPATH; other systems have no way

        getpath = getattr(fcntl, "F_GETPATH", None)
        if getpath is None:
            return None
        raw: bytes = fcntl.fcntl(fd, getpath, bytes(1024))
        return Path(os.fsdecode(raw.split(b"\0", 1)[0]))
    except (OSError, ImportError):
        return None


def block_device(path: StrPath, sysfs: Path = SYSFS) -> str | None:
    """The kernel name (``vda1``, ``nvme0n1p2``, ``dm-0``) of the device holding ``path``."""
    return _device_name(path, mount_of(path), sysfs)


def _device_name(path: StrPath, mount: Mount | None, sysfs: Path) -> str | None:
    if mount is not None and mount.source.startswith("/dev/"):
        name = os.path.basename(os.path.realpath(mount.source))  # /dev/mapper/x -> dm-0
        if (sysfs / "class" / "block" / name).exists():
            return name
    try:  # /dev/root and friends: find the device by its number instead
        dev = os.stat(path).st_dev
    except OSError:
        return None
    link = sysfs / "dev" / "block" / f"{os.major(dev)}:{os.minor(dev)}"
    return link.resolve().name if link.exists() else None


def device_rotational(name: str, sysfs: Path = SYSFS) -> bool | None:
    """The ``queue/rotational`` flag of block device ``name`` (a partition's: its disk's)."""
    if name.startswith(NO_MEDIA + VIRTUAL_DISK):
        return None  # the flag is a default there, not a fact about the storage
    entry = sysfs / "class" / "block" / name
    if (entry / "partition").exists():
        entry = entry.resolve().parent  # devices/.../block/sda/sda1 -> .../sda
    try:
        flag = (entry / "queue" / "rotational").read_text().strip()
    except OSError:
        return None
    return {"1": True, "0": False}.get(flag)


def is_rotational(path: StrPath, sysfs: Path = SYSFS) -> bool | None:
    """True for a spinning disk, False for an SSD, None when unknown (virtual, not Linux…)."""
    if paths.platform_name() != "linux":
        return None
    name = block_device(path, sysfs)
    return device_rotational(name, sysfs) if name else None


def sync_folder(path: StrPath) -> str | None:
    """The cloud-sync provider whose folder holds ``path`` (by its names or a marker), or None.

    Known: OneDrive, Dropbox, Google Drive, iCloud Drive, Box, pCloud, Nextcloud, ownCloud,
    MEGA, anything under macOS ``~/Library/CloudStorage``, and Syncthing (``.stfolder``).
    """
    parts = PurePath(path).parts
    for i, part in enumerate(parts):
        pair = parts[i : i + 2]
        if pair in SYNC_PAIRS:
            return SYNC_PAIRS[pair]
        if pair == CLOUD_STORAGE and i + 2 < len(parts):
            return _sync_name(parts[i + 2]) or parts[i + 2].split("-", 1)[0]
        provider = _sync_name(part)
        if provider:
            return provider
    return _sync_marker(Path(path))


def _sync_name(part: str) -> str | None:
    return next((provider for provider, rx in SYNC_NAMES if re.fullmatch(rx, part)), None)


def _sync_marker(path: Path) -> str | None:
    for folder in (path, *path.parents):
        for marker, provider in SYNC_MARKERS.items():
            if os.path.lexists(folder / marker):
                return provider
    return None


def _fs_limits(mount: Mount | None) -> list[str]:
    """What the file system type says about where an overwrite lands."""
    if mount is None or not mount.fstype:
        return ["file system unknown: whether the overwrite reaches the old blocks is unknown"]
    kind = mount.fstype
    if kind in RAM:
        return [RAM[kind]]
    for kinds, template in KIND_LIMITS:
        if kind in kinds:
            return [template.format(kind=kind)]
    if DATA_JOURNAL in mount.options:
        return [f"data journaling ({kind}, data=journal): old contents may remain in the journal"]
    if kind in IN_PLACE:
        return []
    return [f"file system {kind}: whether it overwrites in place is unknown"]


def _media_limits(path: StrPath, mount: Mount | None) -> list[str]:
    """What the disk under a local file system says (nothing for RAM or network mounts)."""
    kind = mount.fstype if mount else ""
    if kind in RAM or kind in NETWORK or kind in HOST_SHARED:
        return []
    sysfs = SYSFS  # read at call time, so tests can point it at a fake tree
    name = _device_name(path, mount, sysfs) if paths.platform_name() == "linux" else None
    if name and name.startswith(VIRTUAL_DISK):
        return [f"virtual disk ({name}): what the host's storage underneath keeps is unknown"]
    rotational = device_rotational(name, sysfs) if name else None
    if rotational is False:
        return [
            "SSD (non-rotational disk): wear levelling keeps old copies; TRIM may or may "
            "not erase them"
        ]
    if rotational is None:
        return ["disk type unknown: if it is an SSD or flash, wear levelling keeps old copies"]
    return []


def deletion_limits(path: StrPath, mount: Mount | None = None) -> list[str]:
    """Plain statements of what limits an overwrite at ``path``, most specific first.

    The last statement is always the same: snapshots and backups are outside what can be seen.
    ``mount`` saves reading the mount table again when the caller has ``mount_of(path)``.
    """
    mount = mount or mount_of(path)
    limits = _fs_limits(mount) + _media_limits(path, mount)
    provider = sync_folder(path)
    if provider:
        limits.append(
            f"sync folder ({provider}): if it syncs, the provider keeps versions and copies "
            "on other devices"
        )
    limits.append("snapshots and backups (LVM, VM, backup tools) are unknown")
    return limits


def being_written(path: str, dir_fd: int | None = None) -> bool | None:
    """Whether another process has ``path`` (relative to ``dir_fd``, if given) open for writing
    (None when it cannot be told).

    Linux: a read lease (``F_SETLEASE``/``F_RDLCK``) is granted only while nobody holds the file
    open for writing; it is released at once. Needs the file to be the caller's own. Links are
    not followed. Elsewhere the daemon relies on its settle time alone.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    setlease = getattr(fcntl, "F_SETLEASE", None)
    if setlease is None:
        return None
    try:
        fd = at.open(path, READ, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, setlease, fcntl.F_RDLCK)
    except BlockingIOError:
        return True
    except OSError:
        return None
    else:
        fcntl.fcntl(fd, setlease, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)
