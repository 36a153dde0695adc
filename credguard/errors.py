"""The one exception root of credguard.

Every error a user can meet is a :class:`CredguardError` subclass that carries its own exit code
and a message template. Only the CLI prints them. Messages name kinds, paths and fingerprints,
never a secret value.
"""

from __future__ import annotations

# typing.TYPE_CHECKING without importing typing (~3 ms; every command imports this module):
# type checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from typing import ClassVar


class ExitCode:
    """Process exit codes, one meaning each; the table in docs/guide.md mirrors this class (a test
    compares them)."""

    OK = 0
    FINDINGS = 1  # something to act on found: scan/check found credentials, doctor: paused
    USAGE = 2  # the command line cannot be carried out as given (argparse's own code too)
    CONFIG = 3  # configuration file, policy or environment value is invalid
    INPUT = 4  # a file or directory named could not be acted on (missing, unreadable, refused)
    KEYSTORE = 5  # keyring missing, locked, refused or timed out
    INTEGRITY = 6  # vault data failed authentication or has an unknown version
    STATE = 7  # vault/state directory unsafe (permissions, owner) or busy
    TARGET = 8  # a program run for the user (import target, child, tray, service tool) failed
    NOT_FOUND = 9  # no such vault item, no daemon running, nothing sealed
    INTERNAL = 70  # a bug: unexpected exception (EX_SOFTWARE)
    INTERRUPTED = 130
    TERMINATED = 143  # SIGTERM: cleanup ran (a target's group ended, unfinished steps undone)


class CredguardError(Exception):
    """Root of every error credguard reports to the user."""

    exit_code: ClassVar[int] = ExitCode.INTERNAL
    template: ClassVar[str] = "{detail}"

    def __init__(self, detail: str = "", **fields: object) -> None:
        self.detail = detail
        self.fields = fields
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return self.template.format(detail=self.detail, **self.fields)


class UsageError(CredguardError):
    exit_code = ExitCode.USAGE


class ConfigError(CredguardError):
    """A configuration source is invalid; the message names the file and line."""

    exit_code = ExitCode.CONFIG


class InputError(CredguardError):
    exit_code = ExitCode.INPUT


class KeystoreError(CredguardError):
    exit_code = ExitCode.KEYSTORE


class IntegrityError(CredguardError):
    exit_code = ExitCode.INTEGRITY


class StateError(CredguardError):
    exit_code = ExitCode.STATE


class TargetError(CredguardError):
    exit_code = ExitCode.TARGET


class NotFoundError(CredguardError):
    """What the command names is not in credguard's state: a vault item, a running daemon, a
    sealed cache. (A file that is not there is an :class:`InputError`.)"""

    exit_code = ExitCode.NOT_FOUND


def check_version(
    version: object, supported: int, what: str, error: type[CredguardError] = IntegrityError
) -> int:
    """``version`` if it is a whole number no newer than ``supported``; ``error`` in the one
    wording every stored format uses if a newer credguard wrote ``what``; ValueError if it is no
    version at all (each caller says "damaged" its own way). Older versions are the caller's."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"{what} has no format version")
    if version > supported:
        raise error(f"{what} was written by a newer credguard (format version {version}; "
                    f"this one reads up to {supported}): upgrade credguard")
    return version
