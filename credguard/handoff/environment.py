"""What a child process receives for a vault item: variables and RAM-only files.

For every kind, ``CREDGUARD_FILE`` is a copy of the original file. For App Service publish
profiles the chosen profile's URL, user, password, method and site URL become
``CREDGUARD_PUBLISH_*``/``CREDGUARD_SITE_URL``; for classic publish settings
``CREDGUARD_CERT_PEM`` names a PEM of the management certificate and its key. Secret values go
only into the child's environment or files, never into messages. What a handover is, its wire
form and how it is written out are :mod:`credguard.handoff.handover`'s (``exec`` asking the
daemon needs only that).

A record whose bytes its kind's handover cannot read (a file imported with ``--force`` under
the wrong kind) is an :class:`InputError` naming the item, never a crash; ``import --force``
asks :func:`content_problem` first, so such a record is not stored any more.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from credguard.detect import kinds
from credguard.errors import InputError, UsageError
from credguard.handoff.handover import (
    ENV_PREFIX,
    FILE_VARIABLES,
    NEST_MARKER,
    PEM_NAME,
    Handover,
    child_environment,
    from_wire,
    safe_file_name,
    to_wire,
    write_files,
)

__all__ = ["ENV_PREFIX", "FILE_VARIABLES", "NEEDS", "NEST_MARKER", "PEM_NAME", "Handover",
           "certificate_pem", "child_environment", "content_problem", "from_wire",
           "plain_ftp_warning", "plan", "prepare", "publish_profile_env", "to_wire",
           "write_files"]

if TYPE_CHECKING:  # the XML parser loads only for the kinds whose handover parses the file
    from xml.etree.ElementTree import Element

    from credguard.vault.format import Record

# What the handover of a kind reads, for the kinds whose handover parses the file.
NEEDS: dict[str, str] = {
    kinds.PUBLISH_PROFILE: "an App Service publish profile (XML) with a password",
    kinds.PUBLISHSETTINGS: "a publish settings file (well-formed XML)",
}


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


# what a host name shown in a warning keeps (the rest become "?"): both ways of running exec
# print the same line, whether the daemon's reply passes through display_path or not
_HOST_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-:[]")


def plain_ftp_warning(env: dict[str, str]) -> str:
    """The warning for a handed-over FTP profile whose URL is plain ``ftp://`` ("" for any
    other): its password would cross the network unencrypted. Names the host only (never a
    user or password a URL might carry)."""
    url = env.get("CREDGUARD_PUBLISH_URL", "")
    if env.get("CREDGUARD_PUBLISH_METHOD") != "FTP" or url[:6].lower() != "ftp://":
        return ""
    host = url[6:].rpartition("@")[2].split("/", 1)[0]  # after the last "@": no user info
    host = "".join(ch if ch in _HOST_CHARS else "?" for ch in host[:200])
    return (f"this publish profile offers only plain FTP (ftp://{host}): the password would "
            f"cross the network unencrypted; use FTPS (ftps://{host}), which App Service "
            "accepts on the same host")


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
        handover.files.append((FILE_VARIABLES[0], safe_file_name(record.name), record.data))
    if record.kind == kinds.PUBLISH_PROFILE:
        handover.env.update(publish_profile_env(record.data, method))
        warning = plain_ftp_warning(handover.env)
        if warning:  # in the handover, so exec prints it whether the daemon planned it or not
            handover.warnings.append(warning)
    elif record.kind == kinds.PUBLISHSETTINGS and files:
        try:
            pem = certificate_pem(record.data)
        except InputError as exc:
            handover.warnings.append(f"CREDGUARD_CERT_PEM not set: {exc.message}")
        else:
            handover.files.append((FILE_VARIABLES[1], PEM_NAME, pem))
    return handover


def prepare(record: Record, item_id: str, ram: Path | None, method: str | None) -> Handover:
    """:func:`plan`, its files written into ``ram`` (None: variables only)."""
    handover = plan(record, item_id, method, files=ram is not None)
    if ram is not None:
        write_files(handover, ram)
    return handover
