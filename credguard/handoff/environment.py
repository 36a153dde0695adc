"""What a child process receives for a vault item: variables and RAM-only files.

For every kind, ``CREDGUARD_FILE`` is a copy of the original file. For App Service publish
profiles the chosen profile's URL, user, password, method and site URL become
``CREDGUARD_PUBLISH_*``/``CREDGUARD_SITE_URL``; for classic publish settings
``CREDGUARD_CERT_PEM`` names a PEM of the management certificate and its key. Secret values go
only into the child's environment or files, never into messages.

A record whose bytes its kind's handover cannot read (a file imported with ``--force`` under
the wrong kind) is an :class:`InputError` naming the item, never a crash; ``import --force``
asks :func:`content_problem` first, so such a record is not stored any more.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credguard.detect import kinds
from credguard.errors import InputError, UsageError
from credguard.handoff.ramdir import write_private

if TYPE_CHECKING:  # the XML parser loads only for the kinds whose handover parses the file
    from xml.etree.ElementTree import Element

    from credguard.vault.format import Record

ENV_PREFIX = "CREDGUARD_"
NEST_MARKER = "CREDGUARD_EXEC"  # the CLI checks the same name before importing this module
# the characters a handed-over file's name keeps (the rest become "_"): a set, not a regular
# expression, whose compiling would cost every `exec` that asks the daemon
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
# the variables that name a file in the RAM directory, and the certificate's file name
FILE_VARIABLES = ("CREDGUARD_FILE", "CREDGUARD_CERT_PEM")
PEM_NAME = "management-certificate.pem"
# What the handover of a kind reads, for the kinds whose handover parses the file.
NEEDS: dict[str, str] = {
    kinds.PUBLISH_PROFILE: "an App Service publish profile (XML) with a password",
    kinds.PUBLISHSETTINGS: "a publish settings file (well-formed XML)",
}


class Handover:
    """Variables for the child, the files to put beside them, and names (never values) for
    credguard's own messages. ``files``: (variable, file name, bytes) each, written into a RAM
    directory by :func:`write_files`, which sets the variable to the file's path."""

    __slots__ = ("env", "files", "warnings")

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env: dict[str, str] = {} if env is None else env
        self.files: list[tuple[str, str, bytes]] = []
        self.warnings: list[str] = []

    @property
    def names(self) -> list[str]:
        return sorted(self.env)


def to_wire(handover: Handover) -> dict[str, Any]:
    """The handover as the daemon sends it to ``credguard exec`` (files' bytes in base64)."""
    import binascii

    return {"env": dict(handover.env), "warnings": list(handover.warnings),
            "files": [[variable, name, binascii.b2a_base64(data, newline=False).decode("ascii")]
                      for variable, name, data in handover.files]}


def from_wire(doc: object) -> Handover:
    """:func:`to_wire`'s document back, checked as if it came from anyone: only
    ``CREDGUARD_*`` variables, no NUL in a value, each file variable once and named as
    :func:`plan` names files (no separator, no leading dot). ValueError otherwise, quoting
    nothing of it."""
    import binascii  # base64 without the base64 module's imports

    if not isinstance(doc, dict) or set(doc) != {"env", "warnings", "files"}:
        raise ValueError("not a handover")
    env, warnings, files = doc["env"], doc["warnings"], doc["files"]
    if (not isinstance(env, dict) or not isinstance(warnings, list)
            or not isinstance(files, list) or not all(isinstance(w, str) for w in warnings)):
        raise ValueError("not a handover")
    for name, value in env.items():
        if (not name.startswith(ENV_PREFIX) or not isinstance(value, str) or "\0" in value
                or "\0" in name or "=" in name or name in FILE_VARIABLES):
            raise ValueError("a variable credguard does not hand over")
    handover = Handover(dict(env))
    handover.warnings = list(warnings)
    for entry in files:
        if not (isinstance(entry, list) and len(entry) == 3
                and all(isinstance(part, str) for part in entry)):
            raise ValueError("not a handover file")
        variable, name, data = entry
        if (variable not in FILE_VARIABLES or any(variable == f[0] for f in handover.files)
                or _safe_file_name(name) != name):
            raise ValueError("a file credguard does not hand over")
        try:
            raw = binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ValueError("a file that is not base64") from None
        handover.files.append((variable, name, raw))
    return handover


def child_environment(base: Mapping[str, str], handover: Handover) -> dict[str, str]:
    """The parent's environment minus every inherited ``CREDGUARD_*`` variable, plus ours."""
    env = {k: v for k, v in base.items() if not k.startswith(ENV_PREFIX)}
    env.update(handover.env)
    return env


def _safe_file_name(name: str) -> str:
    cleaned = "".join(ch if ch in _SAFE else "_" for ch in name).lstrip(".")
    return cleaned or "credential"


def _profiles(data: bytes) -> list[Element]:
    from credguard.detect import xmlsafe

    root = xmlsafe.parse(data)
    return [e for e in root if xmlsafe.local(e.tag) == "publishProfile"]


def _pick_profile(data: bytes, method: str | None) -> Element:
    """The profile ``method`` names (never a read-only one); by default the first profile in
    the file that has a password. InputError if none has one; UsageError if ``method``'s has
    none."""
    profiles = _profiles(data)
    usable = [p for p in profiles if p.get("userPWD")]
    if not usable:
        raise InputError("it holds no profile with a password")
    if method is None:
        return usable[0]
    writable = [p for p in usable if "readonly" not in
                (p.get("profileName") or "").replace(" ", "").lower()]
    for profile in writable:
        if profile.get("publishMethod") == method:
            return profile
    has = sorted({p.get("publishMethod") or "?" for p in writable})
    raise UsageError(f"the publish profile has no {method} profile with a password "
                     f"(it has: {', '.join(has) or 'none'})")


def publish_profile_env(data: bytes, method: str | None) -> dict[str, str]:
    profile = _pick_profile(data, method)
    env = {
        "CREDGUARD_PUBLISH_URL": profile.get("publishUrl", ""),
        "CREDGUARD_PUBLISH_USER": profile.get("userName", ""),
        "CREDGUARD_PUBLISH_PASSWORD": profile.get("userPWD", ""),
        "CREDGUARD_PUBLISH_METHOD": profile.get("publishMethod", ""),
        "CREDGUARD_SITE_URL": profile.get("destinationAppUrl", ""),
    }
    return env


def _certificates(data: bytes) -> list[str]:
    from credguard.detect import xmlsafe

    root = xmlsafe.parse(data)
    found: list[str] = []
    for element in root.iter():
        cert = element.get("ManagementCertificate")
        if cert and "".join(cert.split()) not in found:
            found.append("".join(cert.split()))
    return found


def certificate_pem(data: bytes) -> bytes:
    """PEM (certificate + key) of the first management certificate of a publishsettings file."""
    import base64
    import binascii

    from credguard.detect import certificate  # PKCS#12 support loads only for this kind

    for cert in _certificates(data):
        try:
            return certificate.pkcs12_to_pem(base64.b64decode(cert, validate=True))
        except (ValueError, binascii.Error):
            continue
    raise InputError("no management certificate in this publish settings file could be opened")


def content_problem(kind: str, data: bytes) -> str:
    """Why the handover of ``kind`` cannot read ``data`` ("" if it can): what ``exec`` parses
    for that kind, parsed now. Never quotes the content."""
    from credguard.detect.base import Malformed  # dataclasses: only where a record is planned

    try:
        if kind == kinds.PUBLISH_PROFILE:
            _pick_profile(data, None)
        elif kind == kinds.PUBLISHSETTINGS:
            _certificates(data)
    except Malformed as exc:
        return str(exc)
    except InputError as exc:
        return exc.message
    return ""


def plan(record: Record, item_id: str, method: str | None, files: bool) -> Handover:
    """What the child gets for ``record``: its variables, and with ``files`` the files to
    write (the original's copy, a management certificate's PEM) for :func:`write_files`.
    Nothing is written here, so the daemon can plan a handover for ``credguard exec``
    (:mod:`credguard.daemon.commands`). UsageError for a ``--profile`` the item cannot
    honour; InputError for an item whose bytes its kind's handover cannot read."""
    if method is not None and record.kind != kinds.PUBLISH_PROFILE:
        raise UsageError(f"--profile applies to {kinds.PUBLISH_PROFILE} items, "
                         f"not to {record.kind}")
    problem = content_problem(record.kind, record.data)
    if problem:
        raise InputError(
            f"vault item {item_id} is filed as {record.kind}, but it is not {NEEDS[record.kind]} "
            f"({problem}); it was imported with --force under the wrong kind: `credguard vault "
            f"export {item_id} --out FILE` gives its bytes back")
    handover = Handover({NEST_MARKER: item_id, "CREDGUARD_KIND": record.kind})
    if files:
        handover.files.append((FILE_VARIABLES[0], _safe_file_name(record.name), record.data))
    if record.kind == kinds.PUBLISH_PROFILE:
        handover.env.update(publish_profile_env(record.data, method))
    elif record.kind == kinds.PUBLISHSETTINGS and files:
        try:
            pem = certificate_pem(record.data)
        except InputError as exc:
            handover.warnings.append(f"CREDGUARD_CERT_PEM not set: {exc.message}")
        else:
            handover.files.append((FILE_VARIABLES[1], PEM_NAME, pem))
    return handover


def write_files(handover: Handover, ram: Path) -> None:
    """Write the handover's files into ``ram`` (0600, never over a file or through a link)
    and point their variables at them."""
    for variable, name, data in handover.files:
        handover.env[variable] = os.fspath(write_private(ram, name, data))


def prepare(record: Record, item_id: str, ram: Path | None, method: str | None) -> Handover:
    """:func:`plan`, its files written into ``ram`` (None: variables only)."""
    handover = plan(record, item_id, method, files=ram is not None)
    if ram is not None:
        write_files(handover, ram)
    return handover
