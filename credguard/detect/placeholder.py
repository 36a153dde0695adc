"""Values that stand in for a secret without being one.

Real files carry them: the Azure portal writes ``userPWD="REDACTED"`` into the publish profiles
it offers when basic-auth publishing is off; templates say ``{The password you already
selected}`` or ``YOUR-PASSWORD-HERE``; MSBuild profiles take ``$(DeployPassword)`` from the
build; people blank a value out with ``****`` or ``xxxx`` before sharing a file. A document whose
every secret is a placeholder holds no credential, so it is never reported (and never deleted).
"""

from __future__ import annotations

import re

# The value entirely a reference or a template slot: {..}, $(..), ${..}, %..%, #{..}#, __..__,
# <..>, [..], @@..@@ (Azure DevOps, MSBuild, shell, Windows, Octopus and hand-made templates).
_WRAPPED = re.compile(
    r"^(?:\{.*\}|\$\(.*\)|\$\{.*\}|%[^%\s]+%|#\{.*\}#?|__\w+__|<.*>|\[.*\]|@@\w+@@)$", re.DOTALL
)
# Whole values (compared with case, spaces, dashes and underscores ignored).
_WORDS = frozenset({
    "redacted", "removed", "hidden", "secret", "password", "passwd", "pwd", "userpwd",
    "yourpassword", "yourpasswordhere", "passwordhere", "enteryourpassword", "enterpassword",
    "enterpasswordhere", "insertpasswordhere", "mypassword", "changeme", "placeholder",
    "deploypassword", "publishpassword", "null", "none", "undefined", "todo", "tbd", "dummy",
    "example", "sample", "notset", "na",
})
# Words that make any value a placeholder wherever they appear in it.
_MARKS = ("redacted", "yourpassword", "passwordhere", "placeholder")
_FILL = frozenset("*xX.•…-_#?0 ")  # a value made of one of these characters only


def is_placeholder(value: str) -> bool:
    """Whether ``value`` is empty or stands in for a secret (see the module docstring)."""
    text = value.strip().strip("'\"").strip()
    if not text:
        return True
    if len(set(text)) == 1 and text[0] in _FILL:
        return True
    if _WRAPPED.match(text):
        return True
    squeezed = re.sub(r"[\s_\-.]", "", text).lower()
    return squeezed in _WORDS or any(mark in squeezed for mark in _MARKS)


def is_secret(value: object) -> bool:
    """Whether a secret field holds a real value: a string that is no placeholder."""
    return isinstance(value, str) and not is_placeholder(value)
