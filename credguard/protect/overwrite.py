"""What a deletion writes over a file: passes of noise, each synced.

The noise is SHAKE-256 of (seed, pass, chunk) when the journal gave a seed — incompressible like
random bytes, and reproducible, so crash recovery can recognise a file that this deletion half
overwrote — and random bytes otherwise.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from credguard.fs import at

CHUNK = 1 << 20  # overwrite in bounded chunks: memory stays at 1 MiB for any file size


def noise(seed: bytes | None, pass_no: int, offset: int, size: int) -> bytes:
    """What pass ``pass_no`` writes at ``offset``, up to the end of its chunk or of ``size``.

    With a seed, SHAKE-256 of (seed, pass, chunk): incompressible like random bytes, and
    reproducible, so recovery can recognise a file this deletion half overwrote. Without one,
    random bytes.
    """
    length = min(CHUNK - offset % CHUNK, size - offset)
    if seed is None:
        return os.urandom(length)
    chunk = hashlib.shake_256(b"%s:%d:%d" % (seed, pass_no, offset // CHUNK))
    start = offset % CHUNK
    return chunk.digest(start + length)[start:]


def overwrite(fd: int, size: int, passes: int, seed: bytes | None,
               step: Callable[[str], None]) -> None:
    """Write ``size`` noise bytes over the file ``passes`` times, each pass fsynced.

    Each pass is synced on its own: unsynced passes would only meet in the page cache.
    """
    step("before-overwrite")
    hook = "mid-overwrite"
    for pass_no in range(1, passes + 1):
        offset = 0
        while offset < size:
            offset += at.pwrite(fd, noise(seed, pass_no, offset, size), offset)
            if hook:
                step(hook)
                hook = ""
        if hook:  # an empty file: the hook still runs once, for the transaction's tests
            step(hook)
            hook = ""
        at.sync(fd)
    step("after-overwrite")
