"""``credguard protect`` through the running daemon (:mod:`credguard.control.protect`).

The daemon holds the vault key and has its code loaded, so it protects a file in a fraction of
the time a new process takes to start, fetch the key and load the transaction. The command asks
it batch by batch; whatever it cannot or will not do is done here, so the results, output and
exit code are the same either way:

- no daemon, another configuration or environment, import targets configured, paused or
  alert-only, busy, a daemon too old to know the command, a path too long to send: nothing was
  done there, so it is done here, silently (the daemon logs why it refused);
- a failure after the request went out (the daemon died, did not answer in time, failed): that
  batch may be half done, so crash recovery runs first (it only touches transactions no live
  process holds), then it is done here, with a warning on stderr;
- the tests' fault injection (``CREDGUARD_TEST_CRASH_AT``/``_STOP_AT``) is meant for this
  process: with it the daemon is never asked.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NamedTuple

from credguard.cli.display import display_path
from credguard.errors import CredguardError

TIMEOUT = 120.0  # seconds for one batch: the daemon's worker may hold the vault for a while
_FAULTS = ("CREDGUARD_TEST_CRASH_AT", "CREDGUARD_TEST_STOP_AT")
# answers that say the daemon did nothing: busy, or a daemon older than the protect command
_NOT_STARTED = ("credguard daemon: busy", "credguard daemon: unknown command")
_RESULT_KEYS = ("path", "protected", "reason", "error", "id", "already_in_vault", "deletion",
                "targets", "revoke")


class Asked(NamedTuple):
    """What the daemon did: the first ``done`` batches' ``results``, in order; ``warned``:
    the configuration's warnings were printed."""

    done: int
    results: list[dict[str, Any]]
    warned: bool


def through_daemon(groups: list[list[str]]) -> Asked:
    """Ask the daemon to protect each batch in turn; stop at the first it does not do."""
    results: list[dict[str, Any]] = []
    if any(os.environ.get(name) for name in _FAULTS):
        return Asked(0, results, False)
    from credguard import control
    from credguard.control.protect import context

    ctx = context()
    if ctx is None:
        return Asked(0, results, False)
    for n, group in enumerate(groups):
        named = [os.path.abspath(p) for p in group]  # as the transaction takes them
        if len(json.dumps(named)) + 512 > control.MAX_REQUEST:
            return Asked(n, results, n > 0)
        try:
            reply = control.request("protect", timeout=TIMEOUT, paths=named, context=ctx)
        except control.DaemonError as exc:
            if not exc.message.startswith(_NOT_STARTED):
                _failed(exc.message)
            return Asked(n, results, n > 0)
        except CredguardError:  # not running, a control directory not ours: do it here
            return Asked(n, results, n > 0)
        if "refused" in reply:
            return Asked(n, results, n > 0)
        done = _results(reply, len(group))
        if done is None:
            _failed("malformed protect response")
            return Asked(n, results, n > 0)
        if n == 0:
            for warning in reply["warnings"]:
                print(f"credguard: warning: {display_path(warning)}", file=sys.stderr)
        results += done
    return Asked(len(groups), results, bool(groups))


def _results(reply: dict[str, Any], count: int) -> list[dict[str, Any]] | None:
    """The reply's results if it has one result of the expected shape per path sent."""
    results, warnings = reply.get("results"), reply.get("warnings")
    if (not isinstance(results, list) or len(results) != count
            or not isinstance(warnings, list)
            or not all(isinstance(w, str) for w in warnings)):
        return None
    for doc in results:
        if not isinstance(doc, dict) or any(key not in doc for key in _RESULT_KEYS):
            return None
        if doc["protected"] and not isinstance(doc["deletion"], dict):
            return None
    return results


def _failed(message: str) -> None:
    """The daemon failed after the request went out: warn, finish what it left, go on here."""
    import argparse

    from credguard.cli import recover_first

    print(f"credguard: warning: the daemon did not protect ({display_path(message)}); "
          "protecting here", file=sys.stderr)
    recover_first(argparse.Namespace(recovers=True, debug=False))  # as protect's own start
