"""``credguard import`` and ``credguard vault list|show|rm|export|verify|rotate-key|destroy``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credguard.cli.common import confirm, load_config
from credguard.cli.display import display_path
from credguard.errors import CredguardError, ExitCode, InputError, StateError

if TYPE_CHECKING:  # the vault pulls in cryptography and keyring: only load them when used
    from credguard.vault.format import Record
    from credguard.vault.store import Vault


def register(sub: Any) -> None:
    imp = sub.add_parser("import", help="encrypt credential files into the vault",
                         description="Detect each PATH, encrypt it into the vault, read it back "
                                     "and verify it. The source file is kept (deleting it is "
                                     "what 'credguard protect' adds).")
    imp.add_argument("paths", nargs="+", metavar="PATH")
    imp.add_argument("--keep", action="store_true",
                     help="keep the source (the default for import; accepted for scripts)")
    imp.add_argument("--force", metavar="KIND",
                     help="import even if not detected, filed under KIND (a kind id)")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=run_import, recovers=True)

    vault = sub.add_parser("vault", help="list, show, export, verify, rotate or destroy items")
    verbs = vault.add_subparsers(dest="vault_command", metavar="VERB", required=True)
    lst = verbs.add_parser("list", help="every item (no secret values)")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=run_list)
    show = verbs.add_parser("show", help="one item's metadata (no secret values)")
    show.add_argument("id", metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=run_show)
    rm = verbs.add_parser("rm", help="delete one item from the vault")
    rm.add_argument("id", metavar="ID")
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(func=run_rm, recovers=True)
    exp = verbs.add_parser("export", help="write an item's original bytes to a new file (0600)")
    exp.add_argument("id", metavar="ID")
    exp.add_argument("--out", required=True, metavar="PATH", help="must not exist yet")
    exp.set_defaults(func=run_export)
    ver = verbs.add_parser("verify", help="decrypt every item; exit 6 if any is damaged")
    ver.add_argument("--json", action="store_true")
    ver.set_defaults(func=run_verify)
    rot = verbs.add_parser("rotate-key", help="re-encrypt every item under a new key")
    rot.set_defaults(func=run_rotate, recovers=True)
    des = verbs.add_parser("destroy", help="crypto-erase the vault: keys first, then files")
    des.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    des.set_defaults(func=run_destroy, recovers=True)


def _vault() -> Vault:
    from credguard.vault.access import open_vault

    return open_vault(load_config())





def resolve_id(vault: Vault, text: str) -> str:
    """A full item id from an id or a unique prefix of at least 6 characters."""
    ids = vault.ids()
    if text in ids:
        return text
    matches = [i for i in ids if len(text) >= 6 and i.startswith(text.lower())]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise InputError(f"{text!r} matches {len(matches)} items; give more characters")
    raise StateError(f"no vault item {text!r}")


def item_json(item_id: str, record: Record) -> dict[str, Any]:
    return {"id": item_id, "kind": record.kind, "name": record.name,
            "source": os.path.join(record.directory, record.name),
            "imported_at": record.imported_at, "sha256": record.sha256,
            "details": record.details}


def run_import(args: argparse.Namespace) -> int:
    from credguard.protect.intake import take_in
    from credguard.vault.access import open_vault

    cfg = load_config()
    vault = open_vault(cfg)
    existing = {r.sha256: i for i, r in vault.records() if not isinstance(r, CredguardError)}
    imported: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for raw in args.paths:
        try:
            intake = take_in(Path(raw), cfg["scan.max_file_size"], args.force)
        except InputError as exc:
            errors.append({"path": raw, "error": exc.message})
            continue
        record = intake.record
        item_id = existing.get(record.sha256)
        already = item_id is not None
        if item_id is None:
            item_id = vault.add(record)
            existing[record.sha256] = item_id
        imported.append({"path": str(intake.path), "id": item_id, "kind": record.kind,
                         "sha256": record.sha256, "already_in_vault": already})
    if args.json:
        print(json.dumps({"version": 1, "imported": imported, "errors": errors}, indent=2))
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


def run_list(args: argparse.Namespace) -> int:
    good, bad = _good_records(_vault())
    if args.json:
        print(json.dumps([item_json(i, r) for i, r in good], indent=2))
    elif not good:
        print("The vault is empty.")
    else:
        for item_id, record in good:
            source = display_path(os.path.join(record.directory, record.name))
            print(f"{item_id}  {record.kind:30} {record.imported_at}  {source}")
    for item_id in bad:
        print(f"credguard: item {item_id} fails its integrity check "
              "(see 'credguard vault verify')", file=sys.stderr)
    return ExitCode.INTEGRITY if bad else ExitCode.OK


def run_show(args: argparse.Namespace) -> int:
    vault = _vault()
    item_id = resolve_id(vault, args.id)
    doc = item_json(item_id, vault.get(item_id))
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        for key, value in doc.items():
            shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
            print(f"{key:12} {display_path(shown)}")
    return ExitCode.OK


def run_rm(args: argparse.Namespace) -> int:
    from credguard.azcache.sealstore import Store

    vault = _vault()
    item_id = resolve_id(vault, args.id)
    sealed = [s for s in Store().all() if s.item_id == item_id]
    if sealed:
        raise StateError(f"{item_id} holds the sealed {sealed[0].tool} cache of "
                         f"{sealed[0].root}: `credguard unseal {sealed[0].tool}` gives it back")
    record = vault.get(item_id)
    confirm(f"Delete {record.name} ({record.kind}) from the vault? If it is the only copy, "
            "the credential is gone.", args.yes)
    vault.remove(item_id)
    print(f"removed {item_id}")
    return ExitCode.OK


def run_export(args: argparse.Namespace) -> int:
    vault = _vault()
    item_id = resolve_id(vault, args.id)
    record = vault.get(item_id)
    out = Path(args.out)
    from credguard.fs.atomic import write_new

    try:
        write_new(out, record.data, durable=True)
    except FileExistsError:
        raise InputError(f"{out} exists; export never overwrites a file") from None
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}") from None
    print(f"exported {item_id} ({record.kind}) to {display_path(str(out))} (mode 0600)",
          file=sys.stderr)
    return ExitCode.OK


def run_verify(args: argparse.Namespace) -> int:
    vault = _vault()
    results = []
    for item_id, record in vault.records():
        error = record.message if isinstance(record, CredguardError) else ""
        results.append({"id": item_id, "ok": not error, "error": error})
    bad = [r for r in results if not r["ok"]]
    if args.json:
        print(json.dumps({"version": 1, "items": results}, indent=2))
    else:
        for r in bad:
            print(f"{r['id']}: {r['error']}")
        print(f"{len(results) - len(bad)} of {len(results)} item(s) verified")
    return ExitCode.INTEGRITY if bad else ExitCode.OK


def run_rotate(args: argparse.Namespace) -> int:
    key_id, count = _vault().rotate_key()
    print(f"re-encrypted {count} item(s) under key {key_id}; the old key was removed")
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
