"""``credguard import`` and ``credguard vault list|show|rm|export|verify|rotate-key|migrate|
destroy``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credguard.cli.common import confirm, emit_json, load_config
from credguard.cli.display import display_path
from credguard.detect.kinds import KINDS
from credguard.errors import (
    CredguardError,
    ExitCode,
    InputError,
    UsageError,
)
from credguard.vault.itemid import ID_HELP, resolve_id

if TYPE_CHECKING:  # the vault pulls in cryptography and keyring: only load them when used
    from credguard.vault.format import Record
    from credguard.vault.store import Vault

SORTS = {  # --sort: the key, then the import time and the id to break ties
    "time": lambda r: (r[1].imported_at, r[0]),
    "name": lambda r: (r[1].name.lower(), r[1].imported_at, r[0]),
    "kind": lambda r: (r[1].kind, r[1].imported_at, r[0]),
}


def _json_help(name: str) -> str:
    return f"print one JSON document (schema: docs/schemas/{name}.schema.json)"


def register(sub: Any) -> None:
    imp = sub.add_parser("import", help="encrypt credential files into the vault (files are kept)",
                         description="Detect each PATH, encrypt it into the vault, read it back "
                                     "and verify it. The source file is kept (deleting it is "
                                     "what 'credguard protect' adds). Content already in the "
                                     "vault is not stored twice.")
    imp.add_argument("paths", nargs="+", metavar="PATH", help="a credential file to import")
    imp.add_argument("--keep", action="store_true",
                     help="keep the source (the default for import; accepted for scripts)")
    imp.add_argument("--force", metavar="KIND",
                     help="import PATH even if it is not detected, filed under KIND; refused if "
                          "credguard could not read it back as KIND (for exec). KIND is one of: "
                          + ", ".join(KINDS))
    imp.add_argument("--json", action="store_true", help=_json_help("import"))
    imp.set_defaults(func=run_import, recovers=True)

    vault = sub.add_parser(
        "vault", help="list, show, export, verify or remove items; rotate, move or destroy keys",
        description="The encrypted vault: one file per item, its keys in the OS keyring (or, "
                    "opted in, the passphrase keystore). No command here prints a secret "
                    "value; only 'export' writes one, to a new file or a pipe.")
    verbs = vault.add_subparsers(dest="vault_command", metavar="VERB", required=True)

    def verb(name: str, summary: str, description: str, func: Any, **defaults: Any) -> Any:
        p = verbs.add_parser(name, help=summary, description=description)
        p.set_defaults(func=func, **defaults)
        return p

    lst = verb("list", "every item, oldest first (no secret values)",
               "One line per item under a header: id, kind, when it was imported, and the path "
               "it was imported from. Oldest first; --sort orders otherwise.", run_list)
    lst.add_argument("--sort", choices=tuple(SORTS), default="time",
                     help="order by import time (oldest first; the default), by file name or "
                          "by kind (then by time)")
    lst.add_argument("--json", action="store_true", help=_json_help("vault-list"))
    show = verb("show", "one item's details (no secret values)",
                "The item's kind, file name, source path, import time, SHA-256 and what "
                "detection noted about it, one aligned field per line.", run_show)
    show.add_argument("id", metavar="ID", help=ID_HELP)
    show.add_argument("--json", action="store_true", help=_json_help("vault-show"))
    rm = verb("rm", "delete one item from the vault",
              "Delete one item after asking (type y or yes); if it is the only copy, the "
              "credential is gone.", run_rm, recovers=True)
    rm.add_argument("id", metavar="ID", help=ID_HELP)
    rm.add_argument("--yes", action="store_true",
                    help="do not ask (required when there is no terminal to ask on)")
    exp = verb("export", "write an item's original bytes to a new file (0600) or a pipe",
               "Write the item's original bytes, exactly as imported, to a new file (mode "
               "0600, never over an existing one) or, with --out -, to standard output when "
               "that is not a terminal.", run_export)
    exp.add_argument("id", metavar="ID", help=ID_HELP)
    exp.add_argument("--out", required=True, metavar="PATH",
                     help="a new file to create (an existing file or directory is refused), "
                          "or - for standard output (refused on a terminal)")
    ver = verb("verify", "decrypt every item; exit 6 if any is damaged",
               "Decrypt and authenticate every item; list the damaged ones.", run_verify)
    ver.add_argument("--json", action="store_true", help=_json_help("vault-verify"))
    verb("rotate-key", "re-encrypt every item under a new key",
         "Make a new key, re-encrypt every item under it, then delete the old key. Crash-safe: "
         "an interrupted rotation leaves every item readable and the next one finishes it.",
         run_rotate, recovers=True)
    mig = verb("migrate", "move the vault's keys to the OS keyring or the passphrase keystore",
               "Re-encrypt every item under a new key made in the other keystore, then delete "
               "the old keys. Crash-safe: an interrupted move leaves every item readable, and "
               "the same command again finishes it. Moving to the passphrase keystore asks for "
               "a new passphrase (twice, on a terminal) or reads CREDGUARD_PASSPHRASE; a weak one "
               "is refused (at least 12 characters, 5 different ones, not only digits, not a "
               "common password).",
               run_migrate, recovers=True)
    mig.add_argument("--to", required=True, choices=("keyring", "passphrase"),
                     help="the keystore to move the keys to")
    mig.add_argument("--json", action="store_true", help=_json_help("vault-migrate"))
    des = verb("destroy", "crypto-erase the vault: keys first, then files",
               "Delete every vault key (from the keyring and the passphrase keystore), then "
               "every item file, after asking you to type 'destroy'.", run_destroy,
               recovers=True)
    des.add_argument("--yes", action="store_true",
                     help="do not ask (required when there is no terminal to ask on)")


def _vault() -> Vault:
    from credguard.vault.access import open_vault

    return open_vault(load_config())


def item_json(item_id: str, record: Record) -> dict[str, Any]:
    return {"id": item_id, "kind": record.kind, "name": record.name,
            "source": os.path.join(record.directory, record.name),
            "imported_at": record.imported_at, "sha256": record.sha256,
            "details": record.details}


def run_import(args: argparse.Namespace) -> int:
    from credguard.protect.intake import check_kind, take_in
    from credguard.vault.access import open_vault

    check_kind(args.force)
    cfg = load_config()
    vault = open_vault(cfg)
    existing = {r.sha256: (i, r.kind) for i, r in vault.records()
                if not isinstance(r, CredguardError)}
    imported: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for raw in args.paths:
        try:
            intake = take_in(Path(raw), cfg["scan.max_file_size"], args.force)
        except InputError as exc:
            errors.append({"path": raw, "error": exc.message})
            continue
        record = intake.record
        item_id, kind = existing.get(record.sha256, (None, record.kind))
        already = item_id is not None
        if item_id is None:
            item_id = vault.add(record)
            existing[record.sha256] = (item_id, kind)
        imported.append({"path": str(intake.path), "id": item_id, "kind": kind,
                         "sha256": record.sha256, "already_in_vault": already})
    if args.json:
        emit_json({"version": 1, "imported": imported, "errors": errors})
    else:
        for item in imported:
            note = "already in the vault as" if item["already_in_vault"] else "imported as"
            print(f"{display_path(item['path'])}: {note} {item['id']} ({item['kind']}); "
                  "source kept")
        for err in errors:
            print(f"credguard: error: {display_path(err['error'])}", file=sys.stderr)
    return ExitCode.INPUT if errors else ExitCode.OK


def _good_records(vault: Vault) -> tuple[list[tuple[str, Record]], list[str]]:
    good: list[tuple[str, Record]] = []
    bad: list[str] = []
    for item_id, record in vault.records():
        if isinstance(record, CredguardError):
            bad.append(item_id)
        else:
            good.append((item_id, record))
    return good, bad


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Rows as aligned columns (the last one unpadded)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]])
            for row in rows]


def run_list(args: argparse.Namespace) -> int:
    good, bad = _good_records(_vault())
    good.sort(key=SORTS[args.sort])
    if args.json:
        emit_json({"version": 1, "items": [item_json(i, r) for i, r in good]})
    elif not good:
        print("The vault is empty." if not bad else "No readable item in the vault.")
    else:
        rows = [("ID", "KIND", "IMPORTED", "SOURCE")] + [
            (item_id, record.kind, record.imported_at,
             display_path(os.path.join(record.directory, record.name)))
            for item_id, record in good]
        print("\n".join(_table(rows)))
    for item_id in bad:
        print(f"credguard: item {item_id} fails its integrity check "
              "(see 'credguard vault verify')", file=sys.stderr)
    return ExitCode.INTEGRITY if bad else ExitCode.OK


def _fields(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """An item's JSON as (label, text) pairs; its details flattened, one line each."""
    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, list):
            return ", ".join(text(v) for v in value) or "-"
        return display_path(str(value))

    def flat(prefix: str, value: Any) -> list[tuple[str, str]]:
        if isinstance(value, dict):
            return [pair for key, sub in value.items()
                    for pair in flat(f"{prefix}{key}.".lstrip("."), sub)]
        return [(display_path(prefix.rstrip(".").replace("_", " ")), text(value))]

    main = [(k.replace("_", " "), text(v)) for k, v in doc.items() if k != "details"]
    return main + flat("", doc["details"])


def run_show(args: argparse.Namespace) -> int:
    vault = _vault()
    item_id = resolve_id(vault, args.id)
    doc = item_json(item_id, vault.get(item_id))
    if args.json:
        emit_json({"version": 1, **doc})
        return ExitCode.OK
    fields = _fields(doc)
    width = max(len(label) for label, _ in fields)
    for label, value in fields:
        print(f"{label.ljust(width)}  {value}")
    return ExitCode.OK


def run_rm(args: argparse.Namespace) -> int:
    from credguard.azcache.sealstore import Store

    vault = _vault()
    item_id = resolve_id(vault, args.id)
    sealed = [s for s in Store().all() if s.item_id == item_id]
    if sealed:
        raise UsageError(f"{item_id} holds the sealed {sealed[0].tool} cache of "
                         f"{sealed[0].root}: `credguard unseal {sealed[0].tool}` gives it back")
    record = vault.get(item_id)
    confirm(f"Delete {display_path(record.name)} ({record.kind}) from the vault? If it is the "
            "only copy, the credential is gone.", args.yes)
    vault.remove(item_id)
    print(f"removed {item_id}")
    return ExitCode.OK


def run_export(args: argparse.Namespace) -> int:
    from credguard.fs.atomic import write_new

    to_stdout = args.out == "-"
    if to_stdout and sys.stdout.isatty():
        raise UsageError("refusing to write a credential to a terminal: redirect standard "
                         "output (credguard vault export ID --out - > FILE) or give --out FILE")
    out = Path(args.out)
    if not to_stdout and out.is_dir():
        raise UsageError(f"{out} is a directory: give the name of a new file to create")
    vault = _vault()
    item_id = resolve_id(vault, args.id)
    record = vault.get(item_id)
    if to_stdout:
        sys.stdout.buffer.write(record.data)
        sys.stdout.flush()
        where = "standard output"
    else:
        try:
            write_new(out, record.data, durable=True)
        except FileExistsError:
            raise UsageError(f"{out} exists; export never overwrites a file: give a new "
                             "file name") from None
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror}") from None
        where = f"{display_path(str(out))} (mode 0600)"
    print(f"exported {item_id} ({record.kind}) to {where}", file=sys.stderr)
    return ExitCode.OK


def run_verify(args: argparse.Namespace) -> int:
    vault = _vault()
    results = []
    for item_id, record in vault.records():
        error = record.message if isinstance(record, CredguardError) else ""
        results.append({"id": item_id, "ok": not error, "error": error})
    bad = [r for r in results if not r["ok"]]
    if args.json:
        emit_json({"version": 1, "items": results})
    else:
        for r in bad:
            print(f"{r['id']}: {r['error']}")
        print(f"{len(results) - len(bad)} of {len(results)} item(s) verified")
    return ExitCode.INTEGRITY if bad else ExitCode.OK


def run_rotate(args: argparse.Namespace) -> int:
    key_id, count = _vault().rotate_key()
    print(f"re-encrypted {count} item(s) under key {key_id}; the old key was removed")
    return ExitCode.OK


KEYSTORE_NAMES = {"keyring": "the OS keyring", "passphrase": "the passphrase keystore"}


def run_migrate(args: argparse.Namespace) -> int:
    from credguard.vault.access import open_vault, stored_kind
    from credguard.vault.migrate import migrate

    cfg = load_config()
    moved = migrate(open_vault(cfg, stored_kind(cfg)), args.to)
    if args.json:
        emit_json({"version": 1, "from": moved.source, "to": moved.target,
                   "action": moved.action, "key_id": moved.key_id, "items": moved.items})
    elif moved.action == "unchanged":
        print(f"the vault already keeps its keys in {KEYSTORE_NAMES[moved.target]}; "
              "nothing to do")
    else:
        done = "moved" if moved.action == "moved" else "finished moving"
        print(f"{done} the vault's keys from {KEYSTORE_NAMES[moved.source]} to "
              f"{KEYSTORE_NAMES[moved.target]}: {moved.items} item(s) under the new key "
              f"{moved.key_id or '(made on first use)'}; the old keys were deleted")
    configured = cfg["vault.keystore"]
    if configured not in ("auto", moved.target):
        print(f"credguard: note: vault.keystore = {configured!r} "
              f"({cfg.sources['vault.keystore']}) names the other keystore: set it to "
              f"\"{moved.target}\" or \"auto\", or every command refuses the vault",
              file=sys.stderr)
    if moved.action != "unchanged":
        print("credguard: note: if the credguard daemon runs, restart it (credguard restart): "
              "it still uses the old keystore", file=sys.stderr)
    return ExitCode.OK


def run_destroy(args: argparse.Namespace) -> int:
    from credguard.azcache.sealstore import Store

    vault = _vault()
    count = len(vault.ids())
    store = Store()
    sealed = store.all()
    warning = (f" That includes {len(sealed)} sealed tool cache(s) "
               f"({', '.join(s.tool for s in sealed)}): those tools will be logged out."
               if sealed else "")
    confirm(f"Destroy the vault ({count} item(s))? Its key is deleted first, so every item "
            f"becomes unreadable for good.{warning}", args.yes, typed="destroy")
    removed = vault.destroy()
    with store.locked():
        for seal in store.all():
            store.delete(seal)
    print(f"vault destroyed: key deleted, {removed} item file(s) removed"
          + (f", {len(sealed)} seal(s) forgotten" if sealed else ""))
    return ExitCode.OK
