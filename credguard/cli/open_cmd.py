"""``credguard open ID [--for DURATION]`` and ``credguard close ID``: a vault item as a file in
RAM for a while, for an import dialog that wants a file (:mod:`credguard.handoff.opened`); the
path it prints goes on the clipboard too, when there is one (:mod:`credguard.handoff.clipboard`).

``open`` reads the item as ``exec`` does (from the running daemon when it may hand it over,
else from the vault), writes it under its original name into a new private directory on the
RAM file system (never a disk: without one it refuses) and prints the path. The copy is
removed when its time is up: by the running daemon, which owns the timer once told (so the
copy goes also when the terminal closes), else by ``open`` itself, waiting in the foreground
(Ctrl-C removes it at once). ``close ID`` removes it sooner. A credguard killed meanwhile
leaves the copy only until the next command, which sweeps what is due. Each step is an audit
record: ``opened``, ``closed``, ``expired``.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from credguard.cli.display import display_path
from credguard.errors import CredguardError, NotFoundError, StateError, UsageError
from credguard.vault.itemid import ID_HELP, MIN_PREFIX

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

    from credguard.handoff.opened import Copy

def register(sub: Any) -> None:
    o = sub.add_parser(
        "open", help="put a vault item in a RAM-only file for a while (for an import dialog)",
        description="Write vault item ID under its original name into a private directory on "
                    "a RAM file system and print its path; it is removed after DURATION "
                    "(default 5m, at most 1h): by the running daemon, else by this command "
                    "waiting in the foreground (Ctrl-C removes it at once). 'credguard close "
                    "ID' removes it sooner. Exit 7 without a RAM file system (nothing is "
                    "written to disk), 9 for no such item, 2 for a bad DURATION.")
    o.add_argument("id", metavar="ID", help=ID_HELP)
    o.add_argument("--for", dest="duration", metavar="DURATION", default="5m",
                   help="how long the copy lives: 90s, 5m, 1h (default 5m, at most 1h)")
    o.set_defaults(func=run_open)
    c = sub.add_parser("close", help="remove an open copy now",
                       description="Remove the open copies (credguard open) of vault item ID "
                                   "now. Exit 9 when there is none.")
    c.add_argument("id", metavar="ID", help=ID_HELP)
    c.set_defaults(func=run_close)


def run_open(args: argparse.Namespace) -> int:
    from credguard.cli.daemon_cmd import parse_duration
    from credguard.cli.exec_cmd import handover_for
    from credguard.handoff import opened

    seconds = parse_duration(args.duration, opened.MAX_SECONDS, "1h", "nothing was opened",
                             "a time for an open copy")
    base = _base(create=True)
    given = handover_for(args.id, None, files=True)
    _variable, name, data = given.files[0]
    item_id = given.env["CREDGUARD_EXEC"]
    sweep(base)
    copy = opened.place(base, item_id, name, data, seconds)
    try:
        return _announce(copy, seconds)
    except BaseException as exc:  # Ctrl-C (its way to remove the copy at once), SIGTERM, …
        if opened.close(copy):
            _audit("closed", copy, reason="interrupted")
        print("credguard: closed: the copy is removed", file=sys.stderr)
        if isinstance(exc, KeyboardInterrupt):
            return 0
        raise


def _announce(copy: Copy, seconds: int) -> int:
    """Say where the copy is, hand its timer to the daemon, or wait for it here."""
    from credguard.handoff.clipboard import copy_path

    _audit("opened", copy, duration=seconds)
    print(display_path(str(copy.file)), flush=True)  # read while this waits
    tool = copy_path(str(copy.file))
    if tool is not None:
        print(f"credguard: the path is on the clipboard ({tool})", file=sys.stderr)
    until = time.strftime("%H:%M:%S", time.localtime(copy.expires))
    if _daemon_owns(copy):
        print(f"credguard: the daemon removes it at {until} (or: credguard close "
              f"{copy.item_id})", file=sys.stderr)
        return 0
    print(f"credguard: removed at {until}; Ctrl-C or 'credguard close {copy.item_id}' removes "
          "it sooner", file=sys.stderr)
    return _wait(copy)


def _wait(copy: Copy) -> int:
    """Wait in the foreground until the copy's time is up (or someone closed it), then
    remove it."""
    from credguard.handoff import opened

    while time.time() < copy.expires and copy.directory.is_dir():
        time.sleep(min(0.5, max(copy.expires - time.time(), 0.01)))
    if opened.close(copy):
        _audit("expired", copy)
        print("credguard: expired: the copy is removed", file=sys.stderr)
    return 0


def run_close(args: argparse.Namespace) -> int:
    from credguard.handoff import opened

    base = _base(create=False)
    wanted = args.id.lower()
    found = [c for c in opened.copies(base)
             if c.item_id == wanted or (len(wanted) >= MIN_PREFIX and c.item_id.startswith(wanted))]
    if len({c.item_id for c in found}) > 1:
        raise UsageError(f"{args.id!r} matches open copies of {len({c.item_id for c in found})} "
                         "items; give more characters")
    closed = [c for c in found if opened.close(c)]
    if not closed:
        raise NotFoundError(f"no open copy of {args.id!r}")
    for copy in closed:
        _audit("closed", copy, reason="close")
        print(f"closed {display_path(str(copy.directory))}")
    return 0


def sweep(base: Path | None) -> int:
    """Remove the open copies in ``base`` whose time is up (a credguard killed while it waited,
    or a daemon that was not running): each an ``expired`` record. How many."""
    from credguard.handoff import opened

    if base is None:
        return 0
    gone = [c for c in opened.due(base) if opened.close(c)]
    for copy in gone:
        _audit("expired", copy, reason="swept")
    return len(gone)


def _base(create: bool) -> Path:
    from credguard.handoff import ramdir

    base = ramdir.ram_base(create=create)
    if base is None:
        if not create:
            raise NotFoundError("no open copies: there is no RAM directory of yours")
        raise StateError(ramdir.no_ram())
    return base


def _daemon_owns(copy: Copy) -> bool:
    """Whether the running daemon took over the copy's timer (it sees the copy in its own RAM
    directory, in this command's context)."""
    from credguard import control
    from credguard.control.protect import context

    ctx = context()
    if ctx is None:
        return False
    try:
        reply = control.request("opened", name=copy.directory.name, context=ctx)
    except CredguardError:  # not running, too old, busy: the foreground owns it
        return False
    return reply.get("owned") is True


def _audit(event: str, copy: Copy, **fields: object) -> None:
    from credguard.cli.common import audit

    audit(event, path=str(copy.directory), item_id=copy.item_id, **fields)
