"""An answer line of the control protocol, for the stand-in daemon socket of the clients' tests
(the ``stand_in`` fixture in tests/conftest.py)."""

from __future__ import annotations

import json

from credguard import control

__all__ = ["line"]


def line(reply: dict[str, object]) -> bytes:
    return (json.dumps({"v": control.PROTOCOL, **reply}) + "\n").encode()
