"""``credguard config show`` and ``credguard ignore``."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from credguard.cli.common import emit_json, load_config
from credguard.cli.display import display_path
from credguard.errors import NotFoundError, UsageError

if TYPE_CHECKING:  # the configuration modules load only for these commands, not for --help
    from credguard.config import Config

SHOW_VERSION = 1  # the ``config show --json`` document's shape


def register(sub: Any) -> None:
    cfg = sub.add_parser("config", help="inspect the effective configuration",
                         description="Layers, lowest first: defaults, managed policy, user "
                         "config, environment, command-line flags.")
    verbs = cfg.add_subparsers(dest="config_command", metavar="VERB", required=True)
    show = verbs.add_parser("show", help="every effective value and where it came from",
                            description="Every setting with its value and source (file:line, "
                            "variable or default), what the managed policy locks, the "
                            "allowlist and the import targets. Exit 3 when a source is "
                            "invalid (the message names the file and line).")
    show.add_argument("--json", action="store_true", help="print one JSON document "
                      "(schema: docs/schemas/config-show.schema.json)")
    show.set_defaults(func=run_show)

    ign = sub.add_parser("ignore", help="allowlist a finding by its fingerprint",
                         usage="credguard ignore FINGERPRINT [--reason TEXT]\n"
                               "       credguard ignore --remove FINGERPRINT\n"
                               "       credguard ignore --list",
                         description="Add FINGERPRINT to the allowlist in the user config "
                         "(--remove takes it out again, re-arming protection; --list shows "
                         "every entry and where it is set); a running daemon re-reads it "
                         "before this returns. Ignored findings are still listed, separately. "
                         "Exit 2 for a malformed fingerprint, 3 when the managed policy forbids "
                         "it or the daemon refuses the configuration, 9 when --remove names a "
                         "fingerprint the user config does not allowlist.")
    ign.add_argument("fingerprint", metavar="FINGERPRINT", nargs="?",
                     help="sha256:<64 hex digits>, as scan prints it")
    ign.add_argument("--reason", default=None, help="why this credential may stay")
    what = ign.add_mutually_exclusive_group()
    what.add_argument("--remove", action="store_true",
                      help="remove FINGERPRINT's entry from the user config")
    what.add_argument("--list", action="store_true",
                      help="list the allowlist: each fingerprint, its reason and its file:line")
    ign.set_defaults(func=run_ignore)


def _display(value: Any) -> str:
    if isinstance(value, tuple):
        return json.dumps(list(value))
    if isinstance(value, dict):  # a policy table: group locations by action
        groups: dict[str, list[str]] = {}
        for location, action in value.items():
            groups.setdefault(action, []).append(location)
        return "; ".join(f"{','.join(locs)}={action}" for action, locs in groups.items())
    return json.dumps(value)


def _lock_note(cfg: Config, key: str) -> str:
    """" (locked)" when the policy line that sets the value locks it, else where the lock is."""
    where = cfg.locked.get(key)
    if where is None:
        return ""
    return " (locked)" if where == cfg.sources.get(key) else f" (locked: {where})"


def _show_json(cfg: Config) -> dict[str, Any]:
    return {
        "version": SHOW_VERSION,
        "files": {"user_config": str(cfg.user_file), "managed_policy": str(cfg.policy_file)},
        "settings": {k: {"value": list(v) if isinstance(v, tuple) else v,
                         "source": cfg.sources[k]} for k, v in cfg.values.items()},
        "locked": dict(cfg.locked),
        "ignore": [{"fingerprint": e.fingerprint, "reason": e.reason, "source": e.source}
                   for e in cfg.ignores],
        "targets": [{"name": t.name, "kinds": list(t.kinds), "source": t.source}
                    for t in cfg.targets],
        "overridden": [o.to_json() for o in cfg.overridden],
        "warnings": list(cfg.warnings),
    }


def run_show(args: argparse.Namespace) -> int:
    from credguard import config

    cfg = load_config()
    if args.json:
        emit_json(_show_json(cfg))
        return 0
    # paths and sources are escaped for the terminal; values are already JSON or repr text
    for label, path in (("user config", cfg.user_file), ("managed policy", cfg.policy_file)):
        state = "" if path.exists() else " (not present)"
        print(f"# {label}: {display_path(str(path))}{state}")
    width = max(len(k) for k in cfg.values)
    for setting in config.SETTINGS:
        key = setting.key
        print(f"{key:<{width}} = {_display(cfg.values[key]):<14} # "
              f"{display_path(cfg.sources[key] + _lock_note(cfg, key))}")
    for table in ("targets", "ignore"):
        if table in cfg.locked:
            print(f"[[{table}]] locked # {display_path(cfg.locked[table])}")
    for target in cfg.targets:
        print(f"target {json.dumps(target.name)} # {display_path(target.source)}")
    for entry in cfg.ignores:
        print(f"ignore {entry.fingerprint} {json.dumps(entry.reason)} "
              f"# {display_path(entry.source)}")
    if cfg.overridden:
        print("# ignored: what the managed policy keeps out")
        for o in cfg.overridden:
            what = f"{o.key} = {_display(o.value)}" if o.key in config.BY_KEY else \
                f"[[{o.key}]] {json.dumps(o.value)}"
            print(f"#   {what:<30} # {display_path(o.source)}: {o.reason} "
                  f"({display_path(o.by)})")
    return 0


def run_ignore(args: argparse.Namespace) -> int:
    """Writes the entry (or, with ``--remove``, takes it out), then has a running daemon
    re-read its configuration and waits for it (also when the entry was there already), so the
    daemon ignores the file (or protects it again) from now on. Exit 3 when the daemon refuses
    the configuration: it keeps the old one. ``--list`` only reads."""
    from credguard import config
    from credguard.cli.daemon_cmd import reload_daemon
    from credguard.control import DaemonNotRunning

    if args.list:
        if args.fingerprint is not None or args.reason is not None:
            raise UsageError("--list takes no FINGERPRINT or --reason")
        return _list_ignores(load_config())
    if args.fingerprint is None:
        raise UsageError("no FINGERPRINT given: credguard ignore FINGERPRINT (or --list)")
    if args.remove and args.reason is not None:
        raise UsageError("--remove takes no --reason")
    config.check_fingerprint(args.fingerprint)  # before anything is read or written
    cfg = load_config()
    where = display_path(str(cfg.user_file))
    if args.remove:
        if not config.remove_ignore(cfg, args.fingerprint):
            raise NotFoundError(f"{args.fingerprint} is not in the allowlist of {where}; "
                                "nothing was changed")
        print(f"{args.fingerprint} removed from the allowlist in {where}")
    else:
        added = config.add_ignore(cfg, args.fingerprint, args.reason or "")
        verb = "added to" if added else "already in"
        print(f"{args.fingerprint} {verb} the allowlist in {where}")
    try:
        reload_daemon()
    except DaemonNotRunning:
        print("the daemon is not running: it reads the allowlist when it starts")
        return 0
    print("the running daemon protects it again from now on" if args.remove
          else "the running daemon ignores it from now on")
    return 0


def _list_ignores(cfg: Config) -> int:
    """Each allowlisted fingerprint, its reason and where it is set (file:line)."""
    if not cfg.ignores:
        print("the allowlist is empty")
    for entry in cfg.ignores:
        print(f"{entry.fingerprint} {json.dumps(entry.reason)} # {display_path(entry.source)}")
    return 0
