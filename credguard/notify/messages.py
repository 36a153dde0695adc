"""What the daemon's desktop notifications say, and when: pure logic, no I/O.

A note is one worker event (a file's path, kind and fingerprint, what was done; never content).
Notes of one type coalesce into a burst: the first after a quiet spell is shown at once and
alone, those that follow become one summary when the burst has been quiet for ``WINDOW`` s (or
every ``MAX_HOLD`` s while it goes on); at most one notification every ``MIN_GAP`` s, the most
important type first. Messages name the file, its folder, its kind, what was done and how to
revoke it: never a secret value. Every untrusted part (names, folders, reasons, details) goes
through :func:`credguard.textsafe.escape`: a file name cannot add lines or control characters.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Literal, TypeGuard, get_args

from credguard import paths
from credguard.detect.kinds import KINDS
from credguard.fs.facts import DELETED
from credguard.policy import Action
from credguard.scan import project
from credguard.textsafe import escape

# the worker's events that are shown, then the results of the buttons "Open for import" and
# "Restore" (a notification's, the tray's): a copy opened, a file restored, or why not
Shown = Literal["failed", "alerted", "protected", "imported", "opened", "restored", "refused"]
Change = Literal["paused", "resumed"]  # protection paused (for the keyring) and resumed
NoteEvent = Shown | Change
BurstType = Shown | Literal["mode"]  # a Change coalesces as "mode": only the latest matters

WINDOW = 1.0  # s without a new note of a type that ends its burst
MAX_HOLD = 10.0  # s a summary waits at most while a burst goes on
MIN_GAP = 2.0  # s between two notifications: the rate limit
EVENTS: tuple[Shown, ...] = get_args(Shown)
PRIORITY: tuple[BurstType, ...] = ("mode", *EVENTS)  # the most important due type is shown first
NAMES_SHOWN = 5  # names listed in a summary
PAUSED_BECAUSE = {"alert-only": "no usable keyring", "paused": "credguard pause"}
HINT_CHARS = 160
OPEN, RESTORE = "open", "restore"  # the buttons on a protected file's notification
KEEP = "keep"  # the button that keeps a file its grace period (protect.delay) holds back
DELAY = "delay"  # an alert's reason: the file waits out its grace period
OPEN_MINUTES = 5  # how long "Open for import" keeps its copy (credguard open's default)
# the part of a kind's revoke advice that disposes of the file itself ("…, then delete this
# file."): wrong once credguard has deleted it
_FILE_STEP = re.compile(r",? then (?:delete|remove)\b[^.]*\bthis file(?=\.$)")


@dataclass(frozen=True)
class Note:
    """One thing to tell the user: what happened to which file (never its content)."""

    event: NoteEvent
    kind: str = ""
    path: str = ""
    fingerprint: str = ""
    action: str = ""  # the policy's action, for alerts
    reason: str = ""
    detail: str = ""
    project: str = ""  # part of a project: what credguard.scan.project.describe says
    item_id: str = ""  # the vault item a protected file went to (its buttons act on it)


@dataclass(frozen=True)
class Message:
    """One notification: buttons are (action id, label) and only ever on a single alert."""

    title: str
    body: str
    urgency: str = "normal"  # low | normal | critical (desktop-notifier's Urgency values)
    buttons: tuple[tuple[str, str], ...] = ()


@dataclass
class Burst:
    """The pending notes of one type: the first few in full, the rest only counted."""

    first: float
    notes: list[Note] = field(default_factory=list)
    count: int = 0
    last: float = 0.0
    lead: bool = False  # the first note after a quiet spell: shown at once, alone

    def due(self) -> float:
        return self.first if self.lead else min(self.last + WINDOW, self.first + MAX_HOLD)


class Pacer:
    """Coalesces notes into bursts and hands out at most one message every ``MIN_GAP`` s."""

    def __init__(self) -> None:
        self.bursts: dict[BurstType, Burst] = {}
        self.seen: dict[BurstType, float] = {}  # when the last note of each type came
        self.next_send = 0.0
        self.shown_paused = False

    def add(self, note: Note, now: float) -> None:
        key: BurstType = note.event if is_shown(note.event) else "mode"
        if key == "mode":  # only the latest mode matters
            self.bursts.pop(key, None)
        quiet = now - self.seen.get(key, now - WINDOW - 1) > WINDOW
        self.seen[key] = now
        burst = self.bursts.setdefault(key, Burst(now))
        burst.count, burst.last = burst.count + 1, now
        if len(burst.notes) < NAMES_SHOWN:
            burst.notes.append(note)
        burst.lead = burst.count == 1 and (quiet or key == "mode")

    def next_due(self) -> float | None:
        """When the next message may be taken (None: nothing is pending)."""
        if not self.bursts:
            return None
        return max(self.next_send, min(b.due() for b in self.bursts.values()))

    def take(self, now: float) -> tuple[Message, Note] | None:
        """The most important due message and its first note, if the rate limit allows one."""
        ready = [k for k in PRIORITY if k in self.bursts and self.bursts[k].due() <= now]
        if now < self.next_send or not ready:
            return None
        key = ready[0]
        burst = self.bursts.pop(key)
        note = burst.notes[0]
        if key == "mode":
            if self.shown_paused == (note.event == "paused"):
                return None  # nothing changed for the user (or the pause was never shown)
            return mode_message(note), note
        if burst.count == 1:
            return single_message(note), note
        return summary_message(key, burst.notes, burst.count), note

    def sent(self, note: Note, now: float) -> None:
        """Record a shown message: the rate limit starts, and what the user knows of the mode."""
        self.next_send = now + MIN_GAP
        if note.event in ("paused", "resumed"):
            self.shown_paused = note.event == "paused"


def is_shown(event: str) -> TypeGuard[Shown]:
    """Whether a worker event is one the user is told about."""
    return event in EVENTS


def text(value: str) -> str:
    """Plain text for a notification body (Linux servers read it as markup)."""
    return _markup(value) if paths.platform_name() == "linux" else value


def where(path: str) -> str:
    """``name (in ~/Downloads)``: the file's name and its folder, the home shown as ``~``,
    both escaped."""
    folder, name = os.path.split(path)
    home = os.path.abspath(paths.home())
    if folder == home or folder.startswith(home.rstrip(os.sep) + os.sep):
        folder = "~" + folder[len(home) :]
    return f"{escape(name)} (in {escape(folder)})"


def kind_title(kind: str) -> str:
    info = KINDS.get(kind)
    return info.title if info else escape(kind)


def revoke_advice(kind: str, deleted: bool) -> str:
    """How to revoke a credential of ``kind``; for a file that was ``deleted``, without the
    step that deletes (or edits) the file itself, which is done."""
    info = KINDS.get(kind)
    if info is None:
        return "Revoke it where it was issued."
    return _FILE_STEP.sub("", info.revoke) if deleted else info.revoke


def hint(kind: str, deleted: bool = False) -> str:
    """The kind's revocation advice (:func:`revoke_advice`): its first sentence, cut to
    ``HINT_CHARS``."""
    if kind not in KINDS:
        return "revoke it where it was issued."
    first = revoke_advice(kind, deleted).split(". ")[0].rstrip(".")
    if len(first) > HINT_CHARS:
        return first[:HINT_CHARS].rsplit(" ", 1)[0] + "…"
    return first + "."


def single_message(note: Note) -> Message:
    head = f"{where(note.path)}\n{kind_title(note.kind)}\n"
    if note.project and note.event != "protected":  # it is still there: where, and git's view
        head += f"{escape(note.project[0].upper() + note.project[1:])}.\n"
    if note.event == "protected":
        done = f"Saved in the credguard vault, then {escape(note.detail) or DELETED}."
        body = f"{head}{done}\nIf it may have leaked: {hint(note.kind, deleted=True)}"
        if not note.item_id:
            return Message("Credential file protected", body)
        return offer(Message("Credential file protected", body,
                             buttons=((OPEN, "Open for import"), (RESTORE, "Restore"))), note,
                     f"Open for import: a RAM-only copy for {OPEN_MINUTES} min. "
                     "Restore: the file back, allowlisted.")
    if note.event == "opened":  # path: the copy; detail: when it goes
        return Message(f"Ready for import: {escape(os.path.basename(note.path))}",
                       f"{escape(note.path)}\n{escape(note.detail)}", "low")
    if note.event == "restored":
        return Message("Credential file restored",
                       f"{head}Put back, readable only by you, and allowlisted: "
                       "credguard leaves it. 'credguard ignore --list' shows the entry; "
                       "removing it re-arms protection.")
    if note.event == "refused":  # reason: what was asked; detail: why not (path: may be "")
        return Message(f"Could not {escape(note.reason)}",
                       f"{where(note.path) + chr(10) if note.path else ''}"
                       f"{escape(note.detail[:300])}\n"
                       "Nothing was written.", "critical")
    if note.event == "imported":
        return Message(
            "Credential copied into the vault",
            head + "The file was left in place (the policy here is import).",
        )
    if note.event == "failed":
        why = escape(note.reason + (f": {note.detail[:200]}" if note.detail else ""))
        return Message(
            "Could not protect a credential file",
            head + f"{why}.\nThe file is still there; see 'credguard log'.",
            "critical",
        )
    if note.action == Action.ALERT:
        return offer(Message(
            "Credential file found, not protected",
            head + "Left in place: the policy here only alerts.",
            "critical",
            ((Action.PROTECT, "Protect now"), (Action.IGNORE, "Ignore")),
        ), note)
    if note.action == Action.HARDEN:
        why = "it is part of your work" if note.project else "the policy here hardens"
        return offer(Message(
            "Credential file in a project, not protected" if note.project
            else "Credential file found, not protected",
            f"{head}Left in place ({why}) and made readable only by you.\n"
            f"If it may have leaked: {hint(note.kind)}",
            "critical" if project.WOULD_COMMIT in note.project else "normal",
            ((Action.PROTECT, "Protect now"), (Action.IGNORE, "Ignore")),
        ), note)
    if note.reason == DELAY:  # detail: "in 2 min (at 14:05)"
        return offer(Message(f"Credential file: vaulted and deleted {escape(note.detail)}",
                             f"{head}credguard saves it in the vault, then deletes it, when its "
                             "grace period ends (protect.delay).", "critical",
                             ((Action.PROTECT, "Protect now"), (KEEP, "Keep"))), note,
                     "Protect now: at once. Keep: leave it here, allowlisted.")
    why = PAUSED_BECAUSE.get(note.reason) or escape(note.reason)
    later = f"Protection is paused ({why}); it will be protected when protection resumes."
    return offer(Message("Credential file found", head + later,
                         buttons=((Action.IGNORE, "Ignore"),)), note)


def buttons_shown() -> bool:
    """Whether notifications offer buttons here: not on macOS, where desktop-notifier hands a
    press only to a CFRunLoop on the main thread, and the daemon notifies from a thread of its
    own (a button would do nothing). There the text names what does the same instead."""
    return paths.platform_name() != "macos"


# Where buttons are not shown, what does each one's work: the tray's menu or a command.
INSTEAD = {
    OPEN: "the tray's \"Recently protected\" menu or 'credguard open {item}' gives a RAM-only "
          f"copy for {OPEN_MINUTES} min, for an import",
    RESTORE: "'credguard restore {item}' puts the file back, allowlisted",
    Action.PROTECT: "'credguard protect PATH' protects it now",
    Action.IGNORE: "'credguard ignore FINGERPRINT' (as 'credguard scan' shows it) leaves it "
                   "here, allowlisted",
    KEEP: "'credguard ignore FINGERPRINT' (as 'credguard scan' shows it) keeps it here, "
          "allowlisted",
}


def offer(message: Message, note: Note, said: str = "") -> Message:
    """``message`` with its buttons, and ``said`` (what they do) as the body's last line; where
    buttons are not shown (:func:`buttons_shown`), without them, the body naming the tray menu
    or the commands that do their work instead."""
    if buttons_shown():
        return replace(message, body=f"{message.body}\n{said}" if said else message.body)
    ways = [INSTEAD[key].format(item=escape(note.item_id)) for key, _label in message.buttons]
    instead = "; ".join(ways)
    return replace(message, body=f"{message.body}\n{instead[0].upper()}{instead[1:]}.",
                   buttons=())


SUMMARIES: dict[Shown, tuple[str, str, str]] = {
    "protected": (
        "{n} credential files protected",
        "normal",
        f"All saved in the credguard vault, then {DELETED}. 'credguard log' lists "
        "them; revoke any that may have leaked. The tray's recent menu (or 'credguard open "
        "ID') gives one back for an import.",
    ),
    "imported": (
        "{n} credentials copied into the vault",
        "normal",
        "The files were left in place.",
    ),
    "failed": (
        "{n} credential files could not be protected",
        "critical",
        "They are still there; see 'credguard log'.",
    ),
    "alerted": (
        "{n} credential files found, not protected",
        "critical",
        "'credguard scan' lists them; 'credguard protect PATH' protects one now.",
    ),
    "opened": ("{n} copies ready for import", "low",
               f"RAM-only copies, removed after {OPEN_MINUTES} min; 'credguard close ID' "
               "removes one sooner."),
    "restored": ("{n} credential files restored", "normal",
                 "Put back and allowlisted; 'credguard ignore --list' shows "
                 "the entries."),
    "refused": ("{n} requests could not be done", "critical",
                "Nothing was written; 'credguard log' has the details."),
}


def summary_message(event: Shown, notes: list[Note], count: int) -> Message:
    """One notification for ``count`` events of one type: the first few names, no buttons."""
    title, urgency, tail = SUMMARIES[event]
    if event == "alerted" and all(n.reason == DELAY for n in notes):
        title, tail = ("{n} credential files to be vaulted and deleted",
                       "When their grace period ends (protect.delay). 'credguard protect PATH' "
                       "protects one now, 'credguard ignore FINGERPRINT' keeps one.")
    names = [escape(os.path.basename(n.path)) for n in notes[:NAMES_SHOWN]]
    more = count - len(names)
    listed = ", ".join(names) + (f" and {more} more" if more > 0 else "")
    return Message(title.format(n=count), f"{listed}\n{tail}", urgency)


def mode_message(note: Note) -> Message:
    if note.event == "resumed":
        return Message(
            "Protection resumed",
            "The keyring is available again; waiting credential files are being protected.",
            "low",
        )
    reason = escape(note.reason or "the keyring is not available").rstrip(".")
    meanwhile = "Credential files found meanwhile are reported, and protected once it is unlocked."
    return Message("Protection paused until the keyring is unlocked", f"{reason}.\n{meanwhile}")


def _markup(value: str) -> str:
    """``html.escape(value, quote=False)``, without importing :mod:`html`: it loads
    ``html.entities`` (a 2,000-entry table, about 0.3 MB the daemon would keep for good) for
    the unescaping nobody here needs."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
