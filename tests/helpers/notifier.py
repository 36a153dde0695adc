"""Fixtures of the notification tests (a pytest plugin, see tests/conftest.py): a started-on-demand
Notifier and what its buttons did."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from credguard.notify.desktop import Notifier

Pressed = list[tuple[str, str, str]]


@pytest.fixture
def pressed() -> Pressed:
    """``(action, path, fingerprint)`` of every button press the notifier handed on."""
    return []


@pytest.fixture
def notifier(pressed: Pressed) -> Iterator[Notifier]:
    n = Notifier(True, lambda *args: pressed.append(args))
    try:
        yield n
    finally:
        n.close()
