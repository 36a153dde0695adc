"""gitignore rules, read and matched the way git reads and matches them, in pure Python.

No ``git`` is ever run: a hostile repository's configuration can make git run commands
(``core.fsmonitor``, ``core.hooksPath``…). This module is pure (bytes in, verdicts out); which
files are read, and how safely, is :mod:`credguard.scan.project`'s business.

Faithful to git's ``dir.c`` and ``wildmatch.c`` (tested against ``git check-ignore --no-index``):

- a line is split at ``\\n`` (a ``\\r`` before it is dropped), a UTF-8 BOM at the start of a file
  is skipped, a line that starts with ``#`` is a comment, trailing spaces are dropped unless
  escaped with ``\\``, a NUL ends the line (git's C strings);
- ``!`` negates; ``\\!`` and ``\\#`` are literal; a trailing ``/`` matches directories only;
- a pattern with no other ``/`` matches the name at any depth below its file's directory;
  with a leading or middle ``/`` it matches the path relative to that directory (``*``, ``?``
  and ``[...]`` never cross a ``/``; ``**/``, ``/**/`` and ``/**`` cross directories);
- precedence: the last matching line wins; a deeper ``.gitignore`` over a shallower one, over
  ``.git/info/exclude``, over the user's global excludes file;
- a path below an excluded directory is excluded, whatever a later ``!`` line says (git does
  not look inside an excluded directory).

Case-sensitive (git's ``core.ignoreCase`` is not read).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

_SLASH, _STAR, _QUESTION, _BACKSLASH, _LBRACKET, _RBRACKET = 47, 42, 63, 92, 91, 93
_BANG, _CARET, _DASH, _COLON = 33, 94, 45, 58
_GLOB_SPECIAL = frozenset(b"*?[\\")
_MATCH, _NOMATCH, _ABORT_ALL, _ABORT_TO_STARSTAR = 0, 1, -1, -2
STEPS = 500_000  # steps allowed for deciding one path before the answer is "unknown"
_BOM = b"\xef\xbb\xbf"

_PUNCT = frozenset(b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_XDIGIT = frozenset(b"0123456789abcdefABCDEF")
# git's own ASCII-only ctype (git-compat-util.h, ctype.c): nothing from 128 up is in a class
_CLASSES: dict[bytes, Callable[[int], bool]] = {
    b"alnum": lambda c: 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122,
    b"alpha": lambda c: 65 <= c <= 90 or 97 <= c <= 122,
    b"blank": lambda c: c in (9, 32),
    b"cntrl": lambda c: c < 32 or c == 127,
    b"digit": lambda c: 48 <= c <= 57,
    b"graph": lambda c: 33 <= c <= 126,
    b"lower": lambda c: 97 <= c <= 122,
    b"print": lambda c: 32 <= c <= 126,
    b"punct": lambda c: c in _PUNCT,
    b"space": lambda c: c in (9, 10, 13, 32),
    b"upper": lambda c: 65 <= c <= 90,
    b"xdigit": lambda c: c in _XDIGIT,
}


class TooComplex(Exception):
    """Deciding one path took more than its :class:`Budget`: the answer is unknown."""


class Budget:
    """Steps (wildmatch calls and patterns tried) allowed for one decision. Like git's newer
    wildmatch, a ``*`` gives up as soon as no later start can match (which keeps ``*a*a*a*b``
    linear); the budget bounds whatever else a hostile file may find: past it, the answer is
    unknown instead of slow."""

    def __init__(self, steps: int = STEPS) -> None:
        self.left = steps

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise TooComplex


def _at(s: bytes, i: int) -> int:
    """``s[i]``, or 0 past its end (C's NUL terminator)."""
    return s[i] if i < len(s) else 0


def wildmatch(pattern: bytes, text: bytes, pathname: bool, budget: Budget | None = None) -> bool:
    """git's ``wildmatch(pattern, text, pathname ? WM_PATHNAME : 0) == WM_MATCH``."""
    return _dowild(pattern, 0, text, 0, pathname, budget or Budget()) == _MATCH


def _dowild(p: bytes, pi: int, t: bytes, ti: int, pathname: bool, budget: Budget) -> int:
    """``dowild`` of git's wildmatch.c, on indices; ``pi`` is where this call's pattern
    starts (a ``**`` there counts as preceded by a slash)."""
    budget.spend()
    start = pi
    while pi < len(p):
        p_ch, t_ch = p[pi], _at(t, ti)
        if t_ch == 0 and p_ch != _STAR:
            return _ABORT_ALL
        if p_ch == _BACKSLASH:  # the next character literally (none: no match)
            pi += 1
            if t_ch != _at(p, pi):
                return _NOMATCH
        elif p_ch == _QUESTION:
            if pathname and t_ch == _SLASH:
                return _NOMATCH
        elif p_ch == _STAR:
            found = _star(p, pi, start, t, ti, pathname, budget)
            if isinstance(found, int):
                return found
            pi, ti = found  # a single "*/": the "/" is consumed below
        elif p_ch == _LBRACKET:
            end = _bracket(p, pi, t_ch, pathname)
            if end < 0:
                return _ABORT_ALL if end == _MALFORMED else _NOMATCH
            pi = end
        elif t_ch != p_ch:
            return _NOMATCH
        pi += 1
        ti += 1
    return _NOMATCH if ti < len(t) else _MATCH


def _star(p: bytes, pi: int, start: int, t: bytes, ti: int, pathname: bool,
          budget: Budget) -> int | tuple[int, int]:
    """A run of ``*`` at ``p[pi]``: a result, or where to go on (``*/`` ending one name)."""
    pi += 1
    if _at(p, pi) == _STAR:
        prev = pi - 2
        while _at(p, pi) == _STAR:
            pi += 1
        if not pathname:
            match_slash = True
        elif (prev < start or p[prev] == _SLASH) and (
                _at(p, pi) in (0, _SLASH)
                or (_at(p, pi) == _BACKSLASH and _at(p, pi + 1) == _SLASH)):
            # "**/" may match no directory at all: try the rest right here first
            if _at(p, pi) == _SLASH and _dowild(p, pi + 1, t, ti, pathname, budget) == _MATCH:
                return _MATCH
            match_slash = True
        else:
            match_slash = False
    else:
        match_slash = not pathname
    if pi >= len(p):  # a trailing "**" matches everything, a trailing "*" one name
        return _NOMATCH if not match_slash and _SLASH in t[ti:] else _MATCH
    if not match_slash and p[pi] == _SLASH:  # "*/" with pathname: the rest of this name
        slash = t.find(b"/", ti)
        return _NOMATCH if slash < 0 else (pi, slash)
    t_ch = _at(t, ti)
    while t_ch != 0:
        if p[pi] not in _GLOB_SPECIAL:  # a literal follows: skip to where it occurs
            want = p[pi]
            while (t_ch := _at(t, ti)) != 0 and (match_slash or t_ch != _SLASH):
                if t_ch == want:
                    break
                ti += 1
            if t_ch != want:  # nowhere: no later start of this "*" can match either
                return _ABORT_ALL if match_slash else _ABORT_TO_STARSTAR
        matched = _dowild(p, pi, t, ti, pathname, budget)
        if matched != _NOMATCH:
            if not match_slash or matched != _ABORT_TO_STARSTAR:
                return matched
        elif not match_slash and t_ch == _SLASH:
            return _ABORT_TO_STARSTAR
        ti += 1
        t_ch = _at(t, ti)
    return _ABORT_ALL


_MALFORMED, _NO = -1, -2


def _bracket(p: bytes, pi: int, t_ch: int, pathname: bool) -> int:
    """A ``[...]`` at ``p[pi]`` against ``t_ch``: the index of its ``]`` if it matches, else
    ``_NO``, or ``_MALFORMED`` (unterminated: git aborts the whole match)."""
    pi += 1
    p_ch = _at(p, pi)
    if p_ch == _CARET:
        p_ch = _BANG
    negated = p_ch == _BANG
    if negated:
        pi += 1
        p_ch = _at(p, pi)
    prev_ch, matched = 0, False
    while True:
        if not p_ch:
            return _MALFORMED
        if p_ch == _BACKSLASH:
            pi += 1
            p_ch = _at(p, pi)
            if not p_ch:
                return _MALFORMED
            matched = matched or t_ch == p_ch
        elif p_ch == _DASH and prev_ch and _at(p, pi + 1) and _at(p, pi + 1) != _RBRACKET:
            pi += 1
            p_ch = p[pi]
            if p_ch == _BACKSLASH:
                pi += 1
                p_ch = _at(p, pi)
                if not p_ch:
                    return _MALFORMED
            matched = matched or prev_ch <= t_ch <= p_ch
            p_ch = 0
        elif p_ch == _LBRACKET and _at(p, pi + 1) == _COLON:
            name_at = pi = pi + 2
            while (p_ch := _at(p, pi)) and p_ch != _RBRACKET:
                pi += 1
            if not p_ch:
                return _MALFORMED
            length = pi - name_at - 1
            if length < 0 or p[pi - 1] != _COLON:  # no ":]": an ordinary "["
                pi = name_at - 2
                p_ch = _LBRACKET
                matched = matched or t_ch == p_ch
            else:
                test = _CLASSES.get(p[name_at:name_at + length])
                if test is None:
                    return _MALFORMED
                matched = matched or test(t_ch)
                p_ch = 0
        elif t_ch == p_ch:
            matched = True
        prev_ch = p_ch
        pi += 1
        p_ch = _at(p, pi)
        if p_ch == _RBRACKET:
            break
    if matched == negated or (pathname and t_ch == _SLASH):
        return _NO
    return pi


@dataclass(frozen=True)
class Pattern:
    """One line of an ignore file. ``base``: its file's directory, relative to the work tree
    (``b""`` or ``b"dir/sub/"``)."""

    text: bytes  # without "!", without the trailing "/"
    base: bytes
    negative: bool
    dir_only: bool
    anywhere: bool  # no "/" in it: matched against the name at any depth

    def matches(self, path: bytes, is_dir: bool, budget: Budget) -> bool:
        """Whether it matches ``path`` (relative to the work tree, no trailing slash)."""
        if self.dir_only and not is_dir:
            return False
        if self.anywhere:  # git's match_basename
            return wildmatch(self.text, path.rsplit(b"/", 1)[-1], False, budget)
        # git's match_pathname: the literal head is compared apart, so a "**" right after it
        # counts as the start of the pattern ("a**/b" matches "a/x/b" in git too)
        base = self.base
        if not path.startswith(base):
            return False
        pattern, name = self.text, path[len(base):]
        prefix = _literal_length(pattern)
        if pattern[:1] == b"/":
            pattern, prefix = pattern[1:], prefix - 1
        if prefix:
            if prefix > len(name) or name[:prefix] != pattern[:prefix]:
                return False
            pattern, name = pattern[prefix:], name[prefix:]
            if not pattern and not name:
                return True
        return wildmatch(pattern, name, True, budget)


def _literal_length(pattern: bytes) -> int:
    """How many bytes precede the first glob character (git's ``simple_length``)."""
    for i, c in enumerate(pattern):
        if c in _GLOB_SPECIAL:
            return i
    return len(pattern)


def parse(data: bytes, base: bytes = b"") -> list[Pattern]:
    """The patterns of one ignore file whose directory is ``base`` (``b""`` or ending in
    ``/``)."""
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    patterns = []
    for line in lines:
        if line.endswith(b"\r"):
            line = line[:-1]
        line = _trim(line.split(b"\0", 1)[0])
        if not line or line.startswith(b"#"):
            continue
        negative = line.startswith(b"!")
        if negative:
            line = line[1:]
        dir_only = line.endswith(b"/")
        if dir_only:
            line = line[:-1]
        patterns.append(Pattern(line, base, negative, dir_only, b"/" not in line))
    return patterns


def _trim(line: bytes) -> bytes:
    """Drop trailing spaces that are not escaped (git's ``trim_trailing_spaces``)."""
    last_space = None
    i = 0
    while i < len(line):
        c = line[i]
        if c == 32:
            if last_space is None:
                last_space = i
        elif c == _BACKSLASH:
            i += 1
            if i >= len(line):
                return line
            last_space = None
        else:
            last_space = None
        i += 1
    return line if last_space is None else line[:last_space]


class Excludes:
    """The rules that decide one path, collected from the work tree's root down."""

    def __init__(self, patterns: Iterable[Pattern] = ()) -> None:
        self.patterns: list[Pattern] = list(patterns)

    def add(self, patterns: Sequence[Pattern]) -> None:
        self.patterns.extend(patterns)

    def excluded(self, path: bytes, is_dir: bool, budget: Budget) -> bool:
        """Whether the last pattern matching ``path`` excludes it (only these patterns: the
        caller asks for each leading directory first, see :func:`ignored`)."""
        for pattern in reversed(self.patterns):
            budget.spend()
            if pattern.matches(path, is_dir, budget):
                return not pattern.negative
        return False


def ignored(parts: Sequence[bytes], rules: Sequence[Sequence[Pattern]],
            outer: Sequence[Pattern] = (), budget: Budget | None = None) -> bool:
    """Whether git ignores the file ``parts`` (its path below the work tree, one name a part).

    ``rules[i]`` are the patterns of the ``.gitignore`` in the directory ``parts[:i]`` (so
    ``rules[0]`` is the root's, and ``len(rules) == len(parts)``); ``outer`` the global excludes
    file's then ``.git/info/exclude``'s. As git does: each leading directory is checked with the
    rules above it, and an excluded one excludes everything below it. Raises
    :class:`TooComplex` when the patterns take longer than ``budget`` to decide.
    """
    budget = budget or Budget()
    excludes = Excludes(outer)
    for depth in range(len(parts)):
        if depth and excludes.excluded(b"/".join(parts[:depth]), True, budget):
            return True
        excludes.add(rules[depth])
    return excludes.excluded(b"/".join(parts), False, budget)
