"""Fault injection for the crash-recovery tests: a hard exit at a named step.

The protect transaction and sealing (:mod:`credguard.azcache.seal`) call a ``Step`` at each point
a crash must be survivable; only the tests set ``CREDGUARD_TEST_CRASH_AT``.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

CRASH_ENV = "CREDGUARD_TEST_CRASH_AT"
STOP_ENV = "CREDGUARD_TEST_STOP_AT"
Step = Callable[[str], None]


def no_fault(_reached: str) -> None:
    """The step hook that does nothing."""


def crash_hook_from_env() -> Step:
    """The fault-injection hook: with ``CREDGUARD_TEST_CRASH_AT=LABEL[:N]`` the process exits
    hard (``os._exit``, no cleanup, like a power cut) the Nth time it reaches step LABEL; with
    ``CREDGUARD_TEST_STOP_AT=LABEL`` it stops itself (SIGSTOP) there, so a test can act on it
    (attach strace, swap a file) before it continues on SIGCONT. Without the variables it does
    nothing; it exists for the crash-recovery tests."""
    crash = _crash_hook(os.environ.get(CRASH_ENV, ""))
    stop_at = os.environ.get(STOP_ENV, "")
    if not stop_at:
        return crash

    def step(reached: str) -> None:
        if reached == stop_at:
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGSTOP)
        crash(reached)

    return step


def _crash_hook(spec: str) -> Step:
    label, _, count = spec.partition(":")
    if not label:
        return no_fault
    remaining = [int(count) if count.isdigit() else 1]

    def step(reached: str) -> None:
        if reached == label:
            remaining[0] -= 1
            if remaining[0] <= 0:
                sys.stderr.flush()
                os._exit(99)

    return step
