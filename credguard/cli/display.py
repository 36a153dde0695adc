"""Showing untrusted text (file names, details, error texts that quote them) on a terminal."""

from __future__ import annotations


def display_path(path: str) -> str:
    """A path (or any untrusted text) safe to print on one terminal line: control, bidi and
    format characters and undecodable bytes shown escaped (:func:`credguard.textsafe.escape`),
    so a hostile file name cannot forge output lines or send escape sequences."""
    from credguard.textsafe import escape  # only once something is shown: a quiet check never

    return escape(path)


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 file``, ``2 files``, ``1 directory``, ``0 directories``: ``count`` and the word in
    the number it takes (``words``: an irregular plural; default ``word + "s"``)."""
    return f"{count} {word if count == 1 else words or word + 's'}"
