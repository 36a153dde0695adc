"""A handover: what ``credguard exec`` gives its child (variables, and files written into its
RAM directory), the form in which the daemon sends one, and the child's environment.

What a vault item's handover holds is :mod:`credguard.handoff.environment`'s (:func:`plan`);
this module is all ``exec`` needs when the daemon planned it, so it imports no detector, no
XML parser and no regular expression.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from credguard.handoff.ramdir import write_private

TYPE_CHECKING = False  # typing's, without importing typing: type checkers read it as true
if TYPE_CHECKING:
    from typing import Any

ENV_PREFIX = "CREDGUARD_"
NEST_MARKER = "CREDGUARD_EXEC"  # the CLI checks the same name before importing this module
# the characters a handed-over file's name keeps (the rest become "_"): a set, not a regular
# expression, whose compiling would cost every `exec` that asks the daemon
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
# the variables that name a file in the RAM directory, and the certificate's file name
FILE_VARIABLES = ("CREDGUARD_FILE", "CREDGUARD_CERT_PEM")
PEM_NAME = "management-certificate.pem"


class Handover:
    """Variables for the child, the files to put beside them, and names (never values) for
    credguard's own messages. ``files``: (variable, file name, bytes) each, written into a RAM
    directory by :func:`write_files`, which sets the variable to the file's path."""

    __slots__ = ("env", "files", "warnings")

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env: dict[str, str] = {} if env is None else env
        self.files: list[tuple[str, str, bytes]] = []
        self.warnings: list[str] = []

    @property
    def names(self) -> list[str]:
        return sorted(self.env)


def to_wire(handover: Handover) -> dict[str, Any]:
    """The handover as the daemon sends it to ``credguard exec`` (files' bytes in base64)."""
    import binascii

    return {"env": dict(handover.env), "warnings": list(handover.warnings),
            "files": [[variable, name, binascii.b2a_base64(data, newline=False).decode("ascii")]
                      for variable, name, data in handover.files]}


def from_wire(doc: object) -> Handover:
    """:func:`to_wire`'s document back, checked as if it came from anyone: only
    ``CREDGUARD_*`` variables, no NUL in a value, each file variable once and named as
    :func:`safe_file_name` names files (no separator, no leading dot). ValueError otherwise,
    quoting nothing of it."""
    import binascii  # base64 without the base64 module's imports

    if not isinstance(doc, dict) or set(doc) != {"env", "warnings", "files"}:
        raise ValueError("not a handover")
    env, warnings, files = doc["env"], doc["warnings"], doc["files"]
    if (not isinstance(env, dict) or not isinstance(warnings, list)
            or not isinstance(files, list) or not all(isinstance(w, str) for w in warnings)):
        raise ValueError("not a handover")
    for name, value in env.items():
        if (not name.startswith(ENV_PREFIX) or not isinstance(value, str) or "\0" in value
                or "\0" in name or "=" in name or name in FILE_VARIABLES):
            raise ValueError("a variable credguard does not hand over")
    handover = Handover(dict(env))
    handover.warnings = list(warnings)
    for entry in files:
        if not (isinstance(entry, list) and len(entry) == 3
                and all(isinstance(part, str) for part in entry)):
            raise ValueError("not a handover file")
        variable, name, data = entry
        if (variable not in FILE_VARIABLES or any(variable == f[0] for f in handover.files)
                or safe_file_name(name) != name):
            raise ValueError("a file credguard does not hand over")
        try:
            raw = binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ValueError("a file that is not base64") from None
        handover.files.append((variable, name, raw))
    return handover


def write_files(handover: Handover, ram: Path) -> None:
    """Write the handover's files into ``ram`` (0600, never over a file or through a link)
    and point their variables at them."""
    for variable, name, data in handover.files:
        handover.env[variable] = os.fspath(write_private(ram, name, data))


def child_environment(base: Mapping[str, str], handover: Handover) -> dict[str, str]:
    """The parent's environment minus every inherited ``CREDGUARD_*`` variable, plus ours."""
    env = {k: v for k, v in base.items() if not k.startswith(ENV_PREFIX)}
    env.update(handover.env)
    return env


def safe_file_name(name: str) -> str:
    cleaned = "".join(ch if ch in _SAFE else "_" for ch in name).lstrip(".")
    return cleaned or "credential"
