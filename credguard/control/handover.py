"""The ``exec`` control command: the daemon plans a vault item's handover for ``credguard exec``.

The daemon holds the vault key, so ``credguard exec`` need not fetch it from the keyring, load
the vault's crypto or parse the item: it sends the item it names, its ``--profile`` and
whether files are wanted, with the same *context* as ``protect`` (:mod:`.protect`: a keyed
digest of the configuration, the places and the ``CREDGUARD_*`` environment, so a
``CREDGUARD_PASSPHRASE`` the command lacks is a context the daemon refuses). The daemon
answers with the child's variables and the files to write in the command's own RAM
directory (:func:`credguard.handoff.environment.to_wire`), the error the command would have
met (``{"failed": {"code", "message"}}``), or ``{"refused": reason}``: then the command does
it all itself. The answer holds the credential, so it exists only in memory on both sides
and is never logged.
"""

from __future__ import annotations

from credguard.control.protect import context_arg
from credguard.control.wire import ProtocolError

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    from typing import Any

PROFILE_METHODS = ("MSDeploy", "FTP", "ZipDeploy")  # what `credguard exec --profile` takes
MAX_ITEM = 200  # characters of an item id or prefix


def exec_args(args: dict[str, Any]) -> dict[str, Any]:
    """``{"item": str, "profile": str | None, "files": bool, "context": {...}}`` checked;
    ProtocolError with a short fixed message otherwise."""
    if set(args) != {"item", "profile", "files", "context"}:
        raise ProtocolError("exec takes item, profile, files and context")
    item, profile, files = args["item"], args["profile"], args["files"]
    if not isinstance(item, str) or not 1 <= len(item) <= MAX_ITEM or "\0" in item:
        raise ProtocolError(f"exec item must be an id or prefix of 1 to {MAX_ITEM} characters")
    if profile is not None and profile not in PROFILE_METHODS:
        raise ProtocolError(f"exec profile must be null or one of {', '.join(PROFILE_METHODS)}")
    if not isinstance(files, bool):
        raise ProtocolError("exec files must be true or false")
    return {"item": item, "profile": profile, "files": files,
            "context": context_arg("exec", args["context"])}


def opened_args(args: dict[str, Any]) -> dict[str, Any]:
    """``{"name": "open-...", "context": {...}}`` (``credguard open`` hands the daemon its
    copy's timer) checked: a directory name, no path; ProtocolError otherwise."""
    if set(args) != {"name", "context"}:
        raise ProtocolError("opened takes name and context")
    name = args["name"]
    if (not isinstance(name, str) or not name.startswith("open-") or len(name) > MAX_ITEM
            or "/" in name or "\0" in name):
        raise ProtocolError("opened name must be an open copy's directory name")
    return {"name": name, "context": context_arg("opened", args["context"])}
