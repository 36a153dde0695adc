"""The Win32 file primitives credguard's Windows file layer (:mod:`credguard.fs.at`) stands
on, by handle, through ``ctypes``: the only module that calls Win32.

- **Opening relative to an open directory** (``openat``'s equivalent): ``NtCreateFile`` with
  the directory's handle as ``RootDirectory``, ``FILE_OPEN_REPARSE_POINT`` (a symbolic link or
  junction is opened itself, never followed) and ``FILE_DIRECTORY_FILE`` or
  ``FILE_NON_DIRECTORY_FILE``. Directories are opened without ``FILE_SHARE_DELETE``, so
  nobody can rename or remove one while credguard holds it: a walk's path stays the path.
  An opened reparse point is refused (``ELOOP``) unless the caller asked to see it.
  The handle becomes a C runtime descriptor (``msvcrt.open_osfhandle``, binary), so the rest
  of credguard keeps using ``os.read``/``os.fstat``/``os.close``.
- **Identity** is ``os.fstat``'s ``st_dev``/``st_ino`` (the volume serial number and file id
  from ``GetFileInformationByHandle``); a reparse point's ``st_mode`` is made ``S_IFLNK``.
- **Deleting and renaming the file a handle holds**: ``SetFileInformationByHandle`` with
  ``FileDispositionInfoEx`` (POSIX semantics: the name goes at once) and
  ``FileRenameInfoEx`` (relative to the directory's handle), falling back to the older
  ``FileDispositionInfo``/``FileRenameInfo`` where the Ex classes are missing (before
  Windows 10 1709). The name cannot have been swapped for another file: the call acts on the
  handle's file.

:data:`KERNEL` is loaded on first use (``ctypes.WinDLL`` exists only on Windows). This module
has never run on Windows: the platform conformance suite (tests/platform) replaces
:data:`KERNEL` with a simulation on Linux; the structure layouts are checked there against
the sizes the Windows SDK documents for x64.
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Kernel(Protocol):
        def open_at(self, dir_fd: int | None, name: str, access: int, disposition: int,
                    directory: bool | None, reparse_ok: bool) -> int: ...
        def fstat(self, fd: int) -> os.stat_result: ...
        def dispose(self, fd: int, dir_fd: int | None, name: str) -> None: ...
        def rename(self, fd: int, dir_fd: int | None, name: str, new: str,
                   replace: bool) -> None: ...

# access rights (winnt.h)
READ_DATA = 0x0001  # FILE_READ_DATA, FILE_LIST_DIRECTORY on a directory
WRITE_DATA = 0x0002  # FILE_WRITE_DATA
READ_ATTRIBUTES = 0x0080
DELETE = 0x00010000
SYNCHRONIZE = 0x00100000
# NtCreateFile's CreateDisposition
OPEN, CREATE_NEW, OPEN_ALWAYS = 1, 2, 3  # FILE_OPEN, FILE_CREATE, FILE_OPEN_IF
# CreateOptions
_DIRECTORY_FILE = 0x00000001
_SYNCHRONOUS_IO_NONALERT = 0x00000020
_NON_DIRECTORY_FILE = 0x00000040
_OPEN_REPARSE_POINT = 0x00200000
_OBJ_CASE_INSENSITIVE = 0x00000040
_FILE_SHARE_READ, _FILE_SHARE_WRITE, _FILE_SHARE_DELETE = 1, 2, 4
_FILE_ATTRIBUTE_NORMAL = 0x80
FILE_ATTRIBUTE_REPARSE_POINT = 0x400
# SetFileInformationByHandle's classes and flags
_FILE_RENAME_INFO, _FILE_DISPOSITION_INFO = 3, 4
_FILE_DISPOSITION_INFO_EX, _FILE_RENAME_INFO_EX = 21, 22
_DISPOSE_DELETE, _DISPOSE_POSIX = 0x1, 0x2
_RENAME_REPLACE, _RENAME_POSIX = 0x1, 0x2
_ERROR_INVALID_PARAMETER = 87
_ERROR_NOT_SUPPORTED = 50

KERNEL: Kernel | None = None


def kernel() -> Kernel:
    """The Win32 kernel, loaded on first use (or the simulation a test put in its place)."""
    global KERNEL
    if KERNEL is None:
        KERNEL = Win32Kernel()
    return KERNEL


class Win32Kernel:  # pragma: no cover - Windows only: the conformance suite simulates it
    """The primitives, by ``NtCreateFile`` and ``SetFileInformationByHandle``."""

    def __init__(self) -> None:
        import ctypes
        from ctypes import wintypes

        self.ctypes = ctypes
        self.ntdll = ctypes.WinDLL("ntdll")  # type: ignore[attr-defined]
        self.k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        self.types = structures()
        self.ntdll.NtCreateFile.restype = ctypes.c_int32  # an NTSTATUS: negative on failure
        self.ntdll.NtCreateFile.argtypes = [
            ctypes.POINTER(ctypes.c_void_p), ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p,
            ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32,
            ctypes.c_void_p, ctypes.c_uint32]
        self.ntdll.RtlNtStatusToDosError.restype = wintypes.ULONG
        self.ntdll.RtlNtStatusToDosError.argtypes = [wintypes.ULONG]
        self.k32.SetFileInformationByHandle.restype = wintypes.BOOL
        self.k32.SetFileInformationByHandle.argtypes = [
            wintypes.HANDLE, ctypes.c_int, ctypes.c_void_p, wintypes.DWORD]
        self.k32.CloseHandle.argtypes = [wintypes.HANDLE]

    def _error(self, winerror: int, name: str) -> OSError:
        # OSError(0, message, filename, winerror) maps winerror to errno on Windows
        return OSError(0, self.ctypes.FormatError(winerror), name, winerror)  # type: ignore

    def open_at(self, dir_fd: int | None, name: str, access: int, disposition: int,
                directory: bool | None, reparse_ok: bool) -> int:
        """Open ``name`` (relative to ``dir_fd``'s directory, or a full path): a directory
        (``directory``), a file (not), or either (None); a reparse point only if
        ``reparse_ok``. A C runtime descriptor; OSError as Python raises it for Win32."""
        import msvcrt

        ctypes, t = self.ctypes, self.types
        if dir_fd is None:
            root, path = None, nt_path(os.path.abspath(name))
        else:
            root, path = msvcrt.get_osfhandle(dir_fd), name  # type: ignore[attr-defined]
        raw = utf16(path)
        text = ctypes.create_string_buffer(raw + b"\0\0")
        ustr = t.UNICODE_STRING(len(raw), len(raw), ctypes.addressof(text))
        attrs = t.OBJECT_ATTRIBUTES(ctypes.sizeof(t.OBJECT_ATTRIBUTES), root,
                                    ctypes.addressof(ustr), _OBJ_CASE_INSENSITIVE, None, None)
        iosb = t.IO_STATUS_BLOCK()
        handle = ctypes.c_void_p()
        share = _FILE_SHARE_READ | _FILE_SHARE_WRITE | (0 if directory else _FILE_SHARE_DELETE)
        kind = {True: _DIRECTORY_FILE, False: _NON_DIRECTORY_FILE, None: 0}[directory]
        options = _OPEN_REPARSE_POINT | _SYNCHRONOUS_IO_NONALERT | kind
        status = self.ntdll.NtCreateFile(
            ctypes.byref(handle), access | READ_ATTRIBUTES | SYNCHRONIZE, ctypes.byref(attrs),
            ctypes.byref(iosb), None, _FILE_ATTRIBUTE_NORMAL, share, disposition, options,
            None, 0)
        if status < 0:
            raise self._error(self.ntdll.RtlNtStatusToDosError(status & 0xFFFFFFFF), name)
        writing = access & (WRITE_DATA | DELETE)
        crt = os.O_BINARY | getattr(os, "O_NOINHERIT", 0)  # type: ignore[attr-defined]
        crt |= os.O_RDWR if writing and access & READ_DATA else (
            os.O_WRONLY if writing else os.O_RDONLY)
        try:
            fd: int = msvcrt.open_osfhandle(handle.value, crt)  # type: ignore[attr-defined]
        except BaseException:
            self.k32.CloseHandle(handle)
            raise
        try:
            if not reparse_ok and stat.S_ISLNK(self.fstat(fd).st_mode):
                raise OSError(40, "a reparse point (symbolic link or junction)", name)  # ELOOP
        except BaseException:
            os.close(fd)
            raise
        return fd

    def fstat(self, fd: int) -> os.stat_result:
        st = os.fstat(fd)
        if getattr(st, "st_file_attributes", 0) & FILE_ATTRIBUTE_REPARSE_POINT:
            values = list(st[:10])
            values[0] = stat.S_IFLNK | stat.S_IMODE(st.st_mode)
            return os.stat_result(values)
        return st

    def _set_info(self, fd: int, cls: int, buffer: Any, size: int) -> int:
        import msvcrt

        handle = msvcrt.get_osfhandle(fd)  # type: ignore[attr-defined]
        ok = self.k32.SetFileInformationByHandle(handle, cls, self.ctypes.byref(buffer), size)
        return 0 if ok else self.ctypes.get_last_error()  # type: ignore[attr-defined]

    def dispose(self, fd: int, dir_fd: int | None, name: str) -> None:
        t = self.types
        error = self._set_info(fd, _FILE_DISPOSITION_INFO_EX,
                               t.FILE_DISPOSITION_INFO_EX(_DISPOSE_DELETE | _DISPOSE_POSIX),
                               self.ctypes.sizeof(t.FILE_DISPOSITION_INFO_EX))
        if error in (_ERROR_INVALID_PARAMETER, _ERROR_NOT_SUPPORTED):
            error = self._set_info(fd, _FILE_DISPOSITION_INFO, t.FILE_DISPOSITION_INFO(True),
                                   self.ctypes.sizeof(t.FILE_DISPOSITION_INFO))
        if error:
            raise self._error(error, name)

    def rename(self, fd: int, dir_fd: int | None, name: str, new: str, replace: bool) -> None:
        import msvcrt

        ctypes, t = self.ctypes, self.types
        root = msvcrt.get_osfhandle(dir_fd) if dir_fd is not None else None  # type: ignore
        raw = utf16(new)
        size = ctypes.sizeof(t.FILE_RENAME_INFO) + len(raw)
        buffer = ctypes.create_string_buffer(size)
        info = t.FILE_RENAME_INFO.from_buffer(buffer)
        info.Flags = (_RENAME_REPLACE if replace else 0) | _RENAME_POSIX
        info.RootDirectory = root
        info.FileNameLength = len(raw)
        ctypes.memmove(ctypes.addressof(info) + t.FILE_RENAME_INFO.FileName.offset, raw,
                       len(raw))
        error = self._set_info(fd, _FILE_RENAME_INFO_EX, info, size)
        if error in (_ERROR_INVALID_PARAMETER, _ERROR_NOT_SUPPORTED):
            info.Flags = 1 if replace else 0  # FileRenameInfo: a BOOLEAN ReplaceIfExists
            error = self._set_info(fd, _FILE_RENAME_INFO, info, size)
        if error:
            raise self._error(error, name)


def structures() -> Any:
    """The Win32 structures, built on first use from fixed-width types (``wintypes``' DWORD
    is a C ``long``: 4 bytes on Windows, 8 on Linux), so their layout is the same on every
    64-bit system and the conformance suite checks it against the Windows SDK's x64 sizes."""
    import ctypes
    from types import SimpleNamespace

    u16, u32, pointer = ctypes.c_uint16, ctypes.c_uint32, ctypes.c_void_p

    class UNICODE_STRING(ctypes.Structure):
        _fields_ = [("Length", u16), ("MaximumLength", u16), ("Buffer", pointer)]

    class OBJECT_ATTRIBUTES(ctypes.Structure):
        _fields_ = [("Length", u32), ("RootDirectory", pointer), ("ObjectName", pointer),
                    ("Attributes", u32), ("SecurityDescriptor", pointer),
                    ("SecurityQualityOfService", pointer)]

    class IO_STATUS_BLOCK(ctypes.Structure):
        _fields_ = [("Status", pointer), ("Information", ctypes.c_size_t)]

    class FILE_DISPOSITION_INFO(ctypes.Structure):
        _fields_ = [("DeleteFile", ctypes.c_uint8)]

    class FILE_DISPOSITION_INFO_EX(ctypes.Structure):
        _fields_ = [("Flags", u32)]

    class FILE_RENAME_INFO(ctypes.Structure):
        # union { BOOLEAN ReplaceIfExists; DWORD Flags; }: the DWORD sets the union's size
        _fields_ = [("Flags", u32), ("RootDirectory", pointer), ("FileNameLength", u32),
                    ("FileName", u16 * 1)]

    return SimpleNamespace(UNICODE_STRING=UNICODE_STRING, OBJECT_ATTRIBUTES=OBJECT_ATTRIBUTES,
                           IO_STATUS_BLOCK=IO_STATUS_BLOCK,
                           FILE_DISPOSITION_INFO=FILE_DISPOSITION_INFO,
                           FILE_DISPOSITION_INFO_EX=FILE_DISPOSITION_INFO_EX,
                           FILE_RENAME_INFO=FILE_RENAME_INFO)


def nt_path(path: str) -> str:
    """A full Win32 path as the NT object name ``NtCreateFile`` takes: ``C:\\x`` is
    ``\\??\\C:\\x``, ``\\\\server\\share\\x`` is ``\\??\\UNC\\server\\share\\x``, and
    one already in the ``\\\\?\\`` form keeps its body."""
    if path.startswith(("\\\\?\\", "\\??\\")):
        return "\\??\\" + path[4:]
    if path.startswith("\\\\"):
        return "\\??\\UNC\\" + path[2:]
    return "\\??\\" + path


def utf16(text: str) -> bytes:
    """``text`` as Win32 takes it: UTF-16 little-endian, no terminator."""
    return text.encode("utf-16-le")
