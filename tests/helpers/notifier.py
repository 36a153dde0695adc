"""Fixtures of the notification tests (a pytest plugin, see tests/conftest.py): a started-on-demand
Notifier and what its buttons did."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from credguard.notify.desktop import Notifier
from credguard.notify.messages import Note

Pressed = list[tuple[str, ...]]


@pytest.fixture
def pressed() -> Pressed:
    """``(action, path, fingerprint)`` of every button press the notifier handed on, and the
    vault item id after them when the note has one."""
    return []


@pytest.fixture
def notifier(pressed: Pressed) -> Iterator[Notifier]:
    def press(action: str, note: Note) -> None:
        pressed.append((action, note.path, note.fingerprint,
                        *((note.item_id,) if note.item_id else ())))

    n = Notifier(True, press)
    try:
        yield n
    finally:
        n.close()
