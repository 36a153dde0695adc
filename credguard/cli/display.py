"""Showing untrusted text (file names, details) on a terminal safely."""

from __future__ import annotations


def display_path(path: str) -> str:
    """A path safe to print on one terminal line: control characters and undecodable bytes
    are shown escaped, so a hostile file name cannot forge output lines."""
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)
