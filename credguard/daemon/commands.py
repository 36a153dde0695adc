"""The answers to the control commands that take more than a line of :mod:`.runtime`: a scan's
result, streamed in parts, ``protect`` (:mod:`credguard.control.protect`) and ``exec``
(:mod:`credguard.control.handover`)."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from credguard.config import Config
from credguard.control import PART_ITEMS, Part, Streamed, parts
from credguard.control.protect import digest
from credguard.daemon.expiry import OpenCopies
from credguard.errors import (
    CredguardError,
    InputError,
    IntegrityError,
    KeystoreError,
    NotFoundError,
    UsageError,
)
from credguard.policy import Mode
from credguard.protect.report import outcome_json
from credguard.protect.transaction import Protector
from credguard.scan.result import ScanResult
from credguard.vault.keystore import KeyringKeystore
from credguard.vault.store import Vault

log = logging.getLogger("credguard.daemon")
# the errors `credguard exec` would meet in its own process after loading the configuration:
# the daemon sends them back as they are, and the command reports them as its own
RELAYED: tuple[type[CredguardError], ...] = (UsageError, InputError, NotFoundError,
                                             IntegrityError)
MAX_HANDOVER = 8 * 1024 * 1024  # bytes of base64 a reply may carry (control.MAX_RESPONSE: 16 MiB)


def scan_reply(result: ScanResult) -> Streamed:
    """A scan's reply, ``{"scan": <ScanResult JSON>, "errors": [...]}``, its lists in parts
    of :data:`control.PART_ITEMS` made one at a time (by ``to_json`` itself: the same form)."""
    empty = dataclasses.replace(result, findings=[], ignored=[], skipped=[], errors=[])
    for name in ("findings", "ignored", "skipped"):
        items = getattr(result, name)
        for start in range(0, len(items), PART_ITEMS):
            chunk = dataclasses.replace(empty, **{name: items[start : start + PART_ITEMS]})
            yield Part(("scan", name), chunk.to_json()[name])
    yield from parts(("errors",), (e.to_json() for e in result.errors))
    return {"scan": empty.to_json(), "errors": []}


def protect_refusal(cfg: Config, mode: Mode, ctx: dict[str, str]) -> str | None:
    """Why this daemon would not do exactly what ``credguard protect`` would do in its own
    process (the command then does it there), or None. Only while protecting: paused, or
    alert-only without a keystore, the command meets its own keyring. Never with import
    targets: they run in the user's environment (``PATH``, the tools' own variables), which
    the daemon's need not be. Never in another context (:mod:`credguard.control.protect`)."""
    if mode is not Mode.PROTECTING:
        return f"the daemon is {mode}"
    if cfg.targets:
        return "import targets are configured: they run in the command's own environment"
    if digest(ctx["key"], cfg.texts, os.environ) != ctx["digest"]:
        return "another configuration or environment than the daemon's"
    return None


def protect_reply(cfg: Config, mode: Mode, protector: Callable[[], Protector],
                  keystore_lost: Callable[[str], None], args: dict[str, Any]) -> dict[str, Any]:
    """``{"results": [...], "warnings": [...]}``: the named paths protected together, each
    result as ``protect --json`` shows it, and the configuration's warnings (the command
    prints them as its own would); or ``{"refused": reason}``, nothing done. The daemon's
    lock keeps the worker's group commits and these apart (:class:`Protector`). A keystore
    that fails meanwhile turns the daemon alert-only, as the worker's would, and the error
    goes back to the command, which protects itself (and meets the keystore itself)."""
    refused = protect_refusal(cfg, mode, args["context"])
    if refused is not None:
        log.info("protect request refused: %s", refused)
        return {"refused": refused}
    try:
        with protector().protect_batch([(Path(p), None) for p in args["paths"]]) as done:
            results = [outcome_json(o) for o in done]
    except KeystoreError as exc:
        keystore_lost(exc.message)
        raise
    log.info("protect request: %d of %d path(s) protected",
             sum(o.protected for o in done), len(done))
    return {"results": results, "warnings": list(cfg.warnings)}


def opened_reply(cfg: Config, copies: OpenCopies, args: dict[str, Any]) -> dict[str, Any]:
    """``{"owned": true}`` once the daemon's timer will remove the open copy ``args["name"]``
    (it sees it in its own RAM directory, in the command's context), else ``{"refused":
    reason}``: the command then waits in the foreground itself."""
    from credguard.handoff import opened, ramdir

    if digest(args["context"]["key"], cfg.texts, os.environ) != args["context"]["digest"]:
        return {"refused": "another configuration or environment than the daemon's"}
    try:
        base = ramdir.ram_base(create=False)
    except (CredguardError, OSError):
        base = None
    copy = opened.parse(args["name"], base) if base is not None else None
    if copy is None or not copy.directory.is_dir():
        return {"refused": "no such open copy in the daemon's RAM directory"}
    copies.wake()
    log.info("open copy of vault item %s: removed at its expiry", copy.item_id)
    return {"owned": True}


def exec_refusal(cfg: Config, mode: Mode, vault: Vault | None, ctx: dict[str, str]) -> str | None:
    """Why this daemon would not hand out exactly what ``credguard exec`` would read in its
    own process (the command then reads it there), or None. Never in alert-only mode; never
    in another context (another vault, configuration or passphrase:
    :mod:`credguard.control.protect`); and only while the keyring is unlocked and would give
    the key without asking: the daemon keeps the key it fetched, so it must not hand out what
    a locked keyring would refuse the command. Only a Secret Service can tell that without a
    prompt (:meth:`KeyringKeystore.unlocked_now`); with any other keystore the command reads
    the vault itself."""
    if mode is Mode.ALERT_ONLY or vault is None:
        return "the daemon holds no vault key"
    if digest(ctx["key"], cfg.texts, os.environ) != ctx["digest"]:
        return "another configuration or environment than the daemon's"
    if not isinstance(vault.keystore, KeyringKeystore) or not vault.keystore.unlocked_now():
        return "the keyring is locked, or cannot say whether it is without asking"
    return None


def exec_reply(cfg: Config, mode: Mode, vault: Vault | None,
               keystore_lost: Callable[[str], None], args: dict[str, Any]) -> dict[str, Any]:
    """What ``credguard exec`` hands its child for the item it names
    (``handover``: :func:`credguard.handoff.environment.to_wire`) and the configuration's
    ``warnings``; or
    ``{"failed": {"code", "message"}, "warnings"}``, an error the command would have met too; or
    ``{"refused": reason}``. The reply holds the credential: nothing of it is logged."""
    refused = exec_refusal(cfg, mode, vault, args["context"])
    if refused is not None or vault is None:
        log.info("exec request refused: %s", refused)
        return {"refused": refused}
    from credguard.handoff import environment  # a daemon nobody asks for exec never loads it
    from credguard.vault.itemid import resolve_id

    warnings = list(cfg.warnings)
    try:
        item_id = resolve_id(vault, args["item"])
        handover = environment.plan(vault.get(item_id), item_id, args["profile"], args["files"])
    except RELAYED as exc:
        log.info("exec request: %s", exc.message)
        return {"failed": {"code": int(exc.exit_code), "message": exc.message},
                "warnings": warnings}
    except KeystoreError as exc:
        keystore_lost(exc.message)
        raise
    wire = environment.to_wire(handover)
    if sum(len(f[2]) for f in wire["files"]) > MAX_HANDOVER:
        log.info("exec request refused: vault item %s is too large to send", item_id)
        return {"refused": "the item is too large to send"}
    log.info("exec request: vault item %s handed over", item_id)
    return {"handover": wire, "warnings": warnings}
