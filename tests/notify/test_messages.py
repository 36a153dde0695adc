"""What the notifications say about revoking (issue 15): once credguard has deleted a file, the
advice no longer asks the user to delete it; while the file is still there, it still does.
Pure logic (:mod:`credguard.notify.messages`), no notification server."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credguard.detect import kinds
from credguard.detect.kinds import KINDS
from credguard.notify import messages
from credguard.notify.messages import Note, revoke_advice, single_message
from credguard.policy import Action

FP = "sha256:" + "ab" * 32
DELETED = "deleted (overwrite attempted)"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_advice_for_a_deleted_file_never_asks_to_delete_it(kind: str) -> None:
    advice = revoke_advice(kind, deleted=True)
    assert "this file" not in advice and advice.endswith(".")
    assert revoke_advice(kind, deleted=False) == KINDS[kind].revoke
    assert KINDS[kind].revoke.startswith(advice[:-1])  # only the file step at the end is left out


def test_protected_publishsettings_says_what_is_left_to_do() -> None:
    note = Note("protected", kinds.PUBLISHSETTINGS, "/h/Downloads/old.publishsettings", FP,
                detail=DELETED)
    message = single_message(note)
    assert message.title == "Credential file protected"
    assert message.body.endswith(
        "Saved in the credguard vault, then deleted (overwrite attempted).\n"
        "If it may have leaked: Delete the management certificate from the subscription (Azure "
        "portal, classic management certificates).")
    assert "delete this file" not in message.body


def test_protected_legacy_profile_is_not_told_to_edit_the_deleted_file() -> None:
    note = Note("protected", kinds.CLI_LEGACY_CERT, "/h/.azure/azureProfile.json", FP,
                detail=DELETED)
    body = single_message(note).body
    assert body.endswith("If it may have leaked: Delete the management certificate from the "
                         "subscription.")


def test_a_file_left_in_place_still_is_told_to_go() -> None:
    """Hardened (left in place): deleting the file is still the user's step."""
    note = Note("alerted", kinds.PUBLISHSETTINGS, "/h/Documents/w/old.publishsettings", FP,
                Action.HARDEN)
    assert single_message(note).body.endswith(", then delete this file.")
    assert messages.hint(kinds.PUBLISHSETTINGS).endswith("then delete this file.")


def test_an_unknown_kind_still_gets_advice() -> None:
    assert revoke_advice("no-such-kind", deleted=True) == "Revoke it where it was issued."
    assert messages.hint("no-such-kind", deleted=True) == "revoke it where it was issued."


@given(st.text())
def test_markup_escaping_is_html_escape_without_quotes(value: str) -> None:
    """The notification body's escaping is the standard library's, without importing
    :mod:`html` into the daemon."""
    import html

    from credguard.notify.messages import _markup

    assert _markup(value) == html.escape(value, quote=False)


def test_the_daemon_does_not_load_the_html_module() -> None:
    code = "import sys, credguard.daemon.runtime; print('html' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
