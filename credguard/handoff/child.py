"""Running a child command the way ``credguard exec`` promises: its stdio untouched, every
forwardable signal passed on, and its exit status returned as credguard's own."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from types import FrameType

from credguard.errors import TargetError

_FORWARD = tuple(
    getattr(signal, name) for name in
    ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCONT")
    if hasattr(signal, name)
)


def exit_status(returncode: int) -> int:
    """A shell-style status: a child killed by signal N gives 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def run(argv: Sequence[str], env: Mapping[str, str],
        started: Callable[[int], None] | None = None, keep_fds: Sequence[int] = ()) -> int:
    """Run ``argv`` with ``env``; forward signals to it while it runs; return its status.

    ``started`` is called with the child's pid once it runs (to record it for recovery);
    ``keep_fds`` stay open in the child (a RAM directory's lock: see :class:`ramdir.RamDir`).

    A terminal's Ctrl-C reaches the child directly (same process group) and is forwarded as
    well, as aws-vault does; children see SIGINT twice at most.
    """
    try:
        proc = subprocess.Popen(list(argv), env=dict(env), pass_fds=tuple(keep_fds))
    except FileNotFoundError:
        raise TargetError(f"command not found: {argv[0]}") from None
    except PermissionError:
        raise TargetError(f"command not executable: {argv[0]}") from None
    except OSError as exc:
        raise TargetError(f"cannot start {argv[0]}: {exc.strerror}") from None

    def forward(signum: int, _frame: FrameType | None) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in _FORWARD}
    try:
        if started is not None:
            started(proc.pid)
        while True:
            try:
                return exit_status(proc.wait())
            except KeyboardInterrupt:  # pragma: no cover - SIGINT is handled above
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
