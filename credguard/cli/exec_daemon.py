"""``credguard exec`` through the running daemon (:mod:`credguard.control.handover`).

The daemon holds the vault key, so the command need not fetch it from the keyring, load the
vault's crypto or parse the item: it asks for the handover and only writes the files into its
own RAM directory and runs the child. Whatever the daemon will not do is done here, so the
child, the output and the exit code are the same either way:

- no daemon, another configuration or environment (a ``CREDGUARD_PASSPHRASE`` the daemon has
  and the command lacks is one), a keyring that is locked or cannot say, alert-only, busy, a
  daemon too old to know the command, an item too large to send: nothing happened there, so
  it is done here, silently (the daemon logs why it refused);
- a failure after the request went out (the daemon died, did not answer in time, answered
  something malformed): nothing was written or run, so it is done here, with a warning on
  stderr.
"""

from __future__ import annotations

import sys

from credguard.cli.display import display_path
from credguard.errors import (
    CredguardError,
    InputError,
    IntegrityError,
    NotFoundError,
    UsageError,
)

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    from credguard.handoff.handover import Handover

TIMEOUT = 30.0  # seconds: the daemon's worker may hold the vault for a batch
# answers that say the daemon did nothing: busy, or a daemon older than the exec command
_NOT_STARTED = ("credguard daemon: busy", "credguard daemon: unknown command")
# the errors the daemon relays (credguard.daemon.commands.RELAYED), by exit code
_RELAYED: dict[int, type[CredguardError]] = {
    error.exit_code: error for error in (UsageError, InputError, NotFoundError, IntegrityError)}


def through_daemon(item: str, profile: str | None, files: bool) -> Handover | None:
    """The daemon's handover for ``item``, its files not yet written; None when it did not
    give one (the caller then reads the vault itself). Prints the configuration's warnings
    as ``load_config`` would; raises the error the command would have met."""
    from credguard import control
    from credguard.control.protect import context
    from credguard.handoff.handover import from_wire

    ctx = context()
    if ctx is None:
        return None
    try:
        reply = control.request("exec", timeout=TIMEOUT, item=item, profile=profile,
                                files=files, context=ctx)
    except control.DaemonError as exc:
        if not exc.message.startswith(_NOT_STARTED):
            _failed(exc.message)
        return None
    except CredguardError:  # not running, a control directory not ours: read it here
        return None
    if "refused" in reply:
        return None
    warnings = reply.get("warnings")
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        _failed("malformed exec response")
        return None
    failed = reply.get("failed")
    try:
        handover = None if failed is not None else from_wire(reply.get("handover"))
    except ValueError:
        _failed("malformed exec response")
        return None
    error = _relayed(failed) if failed is not None else None
    if failed is not None and error is None:
        _failed("malformed exec response")
        return None
    for warning in warnings:
        print(f"credguard: warning: {display_path(warning)}", file=sys.stderr)
    if error is not None:
        raise error
    return handover


def _relayed(failed: object) -> CredguardError | None:
    """The error a ``failed`` answer names, as the command's own; None if it names none."""
    if not isinstance(failed, dict) or set(failed) != {"code", "message"}:
        return None
    code, message = failed["code"], failed["message"]
    kind = _RELAYED.get(code) if isinstance(code, int) and not isinstance(code, bool) else None
    if kind is None or not isinstance(message, str):
        return None
    return kind(message)


def _failed(message: str) -> None:
    print(f"credguard: warning: the daemon did not hand over the credential "
          f"({display_path(message)}); reading the vault here", file=sys.stderr)
