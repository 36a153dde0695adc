"""One protect result as ``credguard protect --json`` shows it, wherever the protect ran: in the
command's own process or in the daemon it asked (:mod:`credguard.control.protect`)."""

from __future__ import annotations

from typing import Any

from credguard.notify.messages import revoke_advice
from credguard.protect.transaction import Outcome


def outcome_json(o: Outcome) -> dict[str, Any]:
    """One ``protect --json`` result (docs/schemas/protect.schema.json); once the file is
    deleted, ``revoke`` no longer asks to delete it."""
    doc = o.to_json()
    if o.kind is not None:
        doc["revoke"] = revoke_advice(o.kind, deleted=o.protected)
    return doc
