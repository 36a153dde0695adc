"""Accuracy on a corpus of real files: ``credguard check`` vs detect-secrets and trufflehog3.

A corpus directory holds ``manifest.json`` (a JSON list of ``{"id", "file", "repo", "path",
"commit", "expected", "encoding", "why"}``; ``file`` relative to the corpus directory,
``expected`` a kind id or null) and the files it names. Each file present is copied into a
private scratch directory under its original basename (one directory per file) and checked with
``credguard check --json FILE``; each expected credential is also checked in re-encoded copies
(renamed ``.txt``/``.xml``/no extension; UTF-8 with BOM, UTF-16 LE/BE with and without BOM, for
text files); detect-secrets 1.5.0 and trufflehog3 (from ``benchmarks.peers``' venv) scan the
original copies. Writes the results between ``<!-- accuracy:results:begin/end -->`` in
``docs/accuracy.md`` unless ``--no-write``: sources (never contents), precision and recall per
kind, the peers, the re-encoded copies, the failures. Exits 0 whatever the scores (a
measurement, not a gate); nonzero only if the run itself broke.

Nothing from a file's contents is printed or written: the peers' output is reduced to path,
line and rule or type; the scratch copies are deleted at the end.

Usage: ``python -m benchmarks.accuracy CORPUS_DIR [--manifest FILE] [--basename-only] [--no-write]``
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from benchmarks import common, peers, scan
from credguard.detect.kinds import Kind

NAME = "results"
PREFIX = "accuracy"
DOC = common.REPO / "docs" / "accuracy.md"
DOC_INTRO = "# Accuracy on real files\n\nWritten by `python -m benchmarks.accuracy CORPUS_DIR`.\n"
KINDS = [k.value for k in Kind]
NONE = "none"  # the expected verdict of a look-alike, in tables


# -- the corpus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One file of the corpus, as its manifest describes it."""

    id: str
    file: Path  # absolute
    repo: str
    path: str  # in its repository, "/"-separated
    commit: str
    expected: str | None  # a kind id, or None for a look-alike
    encoding: str
    why: str

    @property
    def name(self) -> str:
        """The file's original basename."""
        return PurePosixPath(self.path).name or f"file-{self.id}"

    @property
    def binary(self) -> bool:
        """Whether the manifest calls it binary (no text to re-encode)."""
        return self.encoding.lower() == "binary"


def read_manifest(path: Path, tries: int = 5) -> list[dict[str, Any]]:
    """The manifest's list; retried a few times, as it may be being rewritten."""
    for attempt in range(tries):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            if attempt == tries - 1:
                raise SystemExit(f"{path}: not valid JSON") from None
            time.sleep(1)
            continue
        if not isinstance(doc, list):
            raise SystemExit(f"{path}: not a JSON list")
        return doc
    raise AssertionError("unreachable")


def load_corpus(corpus: Path, manifest: Path) -> tuple[list[Entry], list[str]]:
    """The manifest's entries whose file is present (first of each id), and the ids of the
    others (missing file, duplicate id, or no usable expected verdict)."""
    entries: list[Entry] = []
    left_out: list[str] = []
    seen: set[str] = set()
    for raw in read_manifest(manifest):
        ident = str(raw.get("id", "?"))
        expected = raw.get("expected")
        file = (corpus / str(raw.get("file", ""))).resolve()
        usable = expected is None or expected in KINDS
        if ident in seen or not usable or not raw.get("file") or not file.is_file():
            left_out.append(ident)
            continue
        seen.add(ident)
        entries.append(
            Entry(
                ident,
                file,
                str(raw.get("repo", "")),
                str(raw.get("path", "")),
                str(raw.get("commit", "")),
                expected,
                str(raw.get("encoding", "")),
                str(raw.get("why", "")),
            )
        )
    return entries, left_out


# -- re-encoded copies -----------------------------------------------------------------------


_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_text(data: bytes) -> str | None:
    """The text of ``data`` (by its BOM; UTF-16 without one by its NUL bytes; else UTF-8),
    or None if it is not text."""
    codec, body = "utf-8", data
    for bom, name in _BOMS:
        if data.startswith(bom):
            codec, body = name, data[len(bom) :]
            break
    else:
        head = data[:512]
        if len(head) >= 4 and head.count(0) * 3 >= len(head):  # ASCII in UTF-16: every 2nd byte
            odd, even = head[1::2].count(0), head[0::2].count(0)
            codec = "utf-16-le" if odd > even else "utf-16-be"
    try:
        text = body.decode(codec)
    except UnicodeDecodeError:
        return None
    if "\x00" in text:
        return None
    return text


def _stem(name: str) -> str:
    """``name`` without its extension (``.pubxml.user``: both); a dotfile without its dot."""
    if name.startswith(".") and name.count(".") == 1:
        return name[1:]
    stem, _ = os.path.splitext(name)
    if stem.lower().endswith(".pubxml"):
        stem = stem[: -len(".pubxml")]
    return stem or name.strip(".") or "file"


def _encoded(bom: bytes, codec: str) -> Callable[[str], bytes]:
    return lambda text: bom + text.encode(codec)


@dataclass(frozen=True)
class Variant:
    """One way of re-encoding or renaming a credential file; the verdict must not change."""

    key: str
    label: str
    rename: Callable[[str], str] | None = None  # name → new name (bytes unchanged)
    encode: Callable[[str], bytes] | None = None  # text → bytes (name unchanged; text only)


VARIANTS = (
    Variant("txt", "renamed `.txt`", rename=lambda n: _stem(n) + ".txt"),
    Variant("xml", "renamed `.xml`", rename=lambda n: _stem(n) + ".xml"),
    Variant("noext", "renamed, no extension", rename=_stem),
    Variant("utf8bom", "UTF-8 with BOM", encode=_encoded(codecs.BOM_UTF8, "utf-8")),
    Variant("u16le-bom", "UTF-16 LE with BOM", encode=_encoded(codecs.BOM_UTF16_LE, "utf-16-le")),
    Variant("u16le", "UTF-16 LE, no BOM", encode=_encoded(b"", "utf-16-le")),
    Variant("u16be-bom", "UTF-16 BE with BOM", encode=_encoded(codecs.BOM_UTF16_BE, "utf-16-be")),
    Variant("u16be", "UTF-16 BE, no BOM", encode=_encoded(b"", "utf-16-be")),
)


def variant_copy(entry: Entry, data: bytes, variant: Variant) -> tuple[str, bytes] | None:
    """(name, bytes) of ``entry``'s copy in ``variant``; None where it does not apply (a
    re-encoding of a binary file)."""
    if variant.rename is not None:
        return variant.rename(entry.name), data
    assert variant.encode is not None
    text = None if entry.binary else decode_text(data)
    if text is None:
        return None
    return entry.name, variant.encode(text.removeprefix("\ufeff"))


# -- running credguard and the peers ---------------------------------------------------------


@dataclass
class Verdict:
    """What credguard said about one file."""

    kinds: list[str] = field(default_factory=list)  # kinds of its findings
    skipped: list[str] = field(default_factory=list)  # "reason: detail"
    error: str = ""  # the run broke, or credguard reported an error for it

    def cell(self) -> str:
        """The verdict for a table cell."""
        if self.kinds:
            return ", ".join(f"`{k}`" for k in self.kinds)
        if self.error:
            return f"error: {self.error}"
        if self.skipped:
            return "skipped (" + "; ".join(self.skipped) + ")"
        return "—"


def _skip_text(s: Mapping[str, Any]) -> str:
    detail = str(s.get("detail", "")).strip()
    return str(s.get("reason", "?")) + (f": {detail}" if detail else "")


def check(files: Sequence[Path], env: Mapping[str, str]) -> dict[Path, Verdict]:
    """``credguard check --json FILE...``: the verdict on each file (by its path)."""
    cmd = [sys.executable, "-m", "credguard", "check", "--json", *map(str, files)]
    done = subprocess.run(
        cmd, env=dict(env), capture_output=True, stdin=subprocess.DEVNULL, check=False
    )
    verdicts = {f: Verdict() for f in files}
    last = (done.stderr.decode(errors="replace").strip().splitlines() or [""])[-1][:160]
    try:
        _, doc = peers.parse_credguard(done.stdout, done.returncode, Path("/"))
    except peers.PeerOutputError as e:
        for v in verdicts.values():
            v.error = f"{e}: {last}" if last else str(e)
        return verdicts
    by_path = {str(f): f for f in files}
    for finding in doc.get("findings", []):
        f = by_path.get(finding["path"])
        if f is not None:
            verdicts[f].kinds.append(str(finding["kind"]))
    for s in doc.get("skipped", []):
        f = by_path.get(s["path"])
        if f is not None:
            verdicts[f].skipped.append(_skip_text(s))
    if done.returncode == 4:  # errors (not in the JSON): unreadable explicit paths
        for f, v in verdicts.items():
            if not v.kinds and not v.skipped and (str(f) in done.stderr.decode(errors="replace")
                                                  or len(files) == 1):
                v.error = last
    return verdicts


def stage(entries: Sequence[Entry], root: Path, keep_dirs: bool) -> dict[str, Path]:
    """Copy each entry's file to ``root/ID/NAME`` (``root/ID/PATH`` with ``keep_dirs``)."""
    staged = {}
    for e in entries:
        rel = PurePosixPath(e.path) if keep_dirs and e.path else PurePosixPath(e.name)
        parts = [p for p in rel.parts if p not in ("", ".", "..", "/")] or [e.name]
        dest = root.joinpath(e.id, *parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(e.file, dest)
        staged[e.id] = dest
    return staged


def by_entry(hits: Iterable[peers.Hit]) -> dict[str, list[peers.Hit]]:
    """Hits by entry id: the first component of their path (``ID/NAME``)."""
    out: dict[str, list[peers.Hit]] = {}
    for h in hits:
        out.setdefault(h.path.split("/", 1)[0], []).append(h)
    return out


@dataclass
class Results:
    """Everything the report needs."""

    entries: list[Entry]
    left_out: list[str]
    credguard: dict[str, Verdict]  # by entry id
    peer_hits: dict[str, dict[str, list[peers.Hit]]]  # tool → entry id → hits
    peer_names: dict[str, str]  # tool → "name VERSION"
    variants: dict[str, dict[str, Verdict | None]]  # variant key → entry id → verdict (None: n/a)


def run_all(entries: list[Entry], left_out: list[str], keep_dirs: bool) -> Results:
    """Stage the copies in a private scratch directory, run everything, delete the copies."""
    tools = (peers.DETECT_SECRETS, peers.TRUFFLEHOG3)
    installed = peers.ensure_peers()
    with tempfile.TemporaryDirectory(prefix="credguard-accuracy-") as tmp:
        scratch = Path(tmp).resolve()
        scratch.chmod(0o700)
        env = common.installed_env(scan.bench_env(scratch))
        originals = stage(entries, scratch / "orig", keep_dirs)
        verdicts: dict[str, Verdict] = {}
        for e in entries:
            verdicts[e.id] = check([originals[e.id]], env)[originals[e.id]]
        print(f"credguard checked {len(entries)} files", file=sys.stderr)
        hits = {
            tool: by_entry(peers.run_peer(installed, tool, scratch / "orig", env))
            for tool in tools
        }
        print("peers scanned them", file=sys.stderr)
        variants: dict[str, dict[str, Verdict | None]] = {}
        positives = [e for e in entries if e.expected]
        for v in VARIANTS:
            copies: dict[str, Path] = {}
            variants[v.key] = {}
            for e in positives:
                made = variant_copy(e, originals[e.id].read_bytes(), v)
                if made is None:
                    variants[v.key][e.id] = None
                    continue
                where = originals[e.id].relative_to(scratch / "orig").parent  # ID[/dirs]
                dest = scratch / "variants" / v.key / where / made[0]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(made[1])
                copies[e.id] = dest
            got = check(list(copies.values()), env) if copies else {}
            for ident, path in copies.items():
                variants[v.key][ident] = got[path]
        print(f"credguard checked re-encoded copies of {len(positives)} files", file=sys.stderr)
    names = {t: installed.label(t) for t in tools}
    return Results(entries, left_out, verdicts, hits, names, variants)


# -- scoring ---------------------------------------------------------------------------------


@dataclass
class Score:
    """True and false positives and false negatives of one kind (or all)."""

    expected: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        """TP / (TP + FP); None when nothing was reported."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        """TP / (TP + FN); None when nothing was expected."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def score(pairs: Iterable[tuple[str | None, Sequence[str]]]) -> dict[str, Score]:
    """Per kind, from (expected, kinds found) per file: a finding of the expected kind is a TP;
    a finding of another kind an FP for that kind; an expected kind not found an FN."""
    scores = {k: Score() for k in KINDS}
    for expected, found in pairs:
        if expected is not None:
            s = scores.setdefault(expected, Score())
            s.expected += 1
            if expected in found:
                s.tp += 1
            else:
                s.fn += 1
        for k in set(found) - {expected}:
            scores.setdefault(k, Score()).fp += 1
    return scores


def correct(entry: Entry, verdict: Verdict | None) -> bool:
    """Whether credguard's verdict matches the expected one (exactly that kind, or nothing)."""
    if verdict is None:
        return True
    if entry.expected is None:
        return not verdict.kinds
    return verdict.kinds == [entry.expected]


def pct(value: float | None) -> str:
    """``97.4%``, or ``n/a``."""
    return "n/a" if value is None else f"{value:.1%}"


# -- the report ------------------------------------------------------------------------------


def _code(text: str) -> str:
    """``text`` as inline code in a table cell."""
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def _labels(hits: Sequence[peers.Hit]) -> str:
    if not hits:
        return "—"
    counts = Counter(h.label for h in hits)
    return ", ".join(f"{label} ({n})" if n > 1 else label for label, n in sorted(counts.items()))


def sources_table(r: Results) -> str:
    """One row per file: where it came from, what was expected, what each tool said."""
    rows = []
    for e in r.entries:
        v = r.credguard[e.id]
        mark = "✓" if correct(e, v) else "✗"
        rows.append(
            [
                e.id,
                _code(e.repo),
                _code(e.path),
                _code(e.commit[:8]),
                _code(e.expected) if e.expected else NONE,
                f"{mark} {v.cell()}",
                *(_labels(r.peer_hits[t].get(e.id, [])) for t in r.peer_names),
            ]
        )
    headers = ["id", "repository", "path", "commit", "expected", "credguard",
               *r.peer_names.values()]
    return common.markdown_table(headers, rows, "l" * len(headers))


def kind_table(r: Results) -> tuple[str, Score]:
    """Precision and recall per kind for credguard, with the total (micro) row."""
    scores = score((e.expected, r.credguard[e.id].kinds) for e in r.entries)
    total = Score(*(sum(getattr(s, f) for s in scores.values())
                    for f in ("expected", "tp", "fp", "fn")))
    rows = [
        [_code(k), s.expected, s.tp, s.fp, s.fn, pct(s.precision), pct(s.recall)]
        for k, s in scores.items()
    ]
    rows.append(["**all kinds**", total.expected, total.tp, total.fp, total.fn,
                 f"**{pct(total.precision)}**", f"**{pct(total.recall)}**"])
    headers = ["kind", "files", "TP", "FP", "FN", "precision", "recall"]
    return common.markdown_table(headers, rows), total


def peers_table(r: Results) -> tuple[str, dict[str, tuple[float | None, float | None]]]:
    """Per expected kind, how many files each peer flagged; look-alikes flagged; totals."""
    kinds = [k for k in KINDS if any(e.expected == k for e in r.entries)]
    rows: list[list[object]] = []
    overall: dict[str, tuple[float | None, float | None]] = {}
    for k in [*kinds, None]:
        group = [e for e in r.entries if e.expected == k]
        label = _code(k) if k else "look-alikes (none expected): flagged = false positive"
        cells = [f"{sum(bool(r.peer_hits[t].get(e.id)) for e in group)} of {len(group)}"
                 for t in r.peer_names]
        rows.append([label, len(group), *cells])
    pos = [e for e in r.entries if e.expected]
    neg = [e for e in r.entries if not e.expected]
    prec_row: list[object] = ["**precision** (flagged credentials / all flagged)", ""]
    rec_row: list[object] = ["**recall** (flagged credentials / credentials)", len(pos)]
    for t in r.peer_names:
        tp = sum(bool(r.peer_hits[t].get(e.id)) for e in pos)
        fp = sum(bool(r.peer_hits[t].get(e.id)) for e in neg)
        prec = tp / (tp + fp) if tp + fp else None
        rec = tp / len(pos) if pos else None
        overall[t] = (prec, rec)
        prec_row.append(f"**{pct(prec)}**")
        rec_row.append(f"**{pct(rec)}**")
    rows += [prec_row, rec_row]
    headers = ["expected", "files", *(f"{n}: flagged" for n in r.peer_names.values())]
    return common.markdown_table(headers, rows), overall


def variants_table(r: Results) -> tuple[str, list[str]]:
    """Per variant: copies made, found with the expected kind, wrong kind, missed, skipped."""
    by_id = {e.id: e for e in r.entries}
    rows = []
    lines = []
    for v in VARIANTS:
        got = r.variants.get(v.key, {})
        made = {i: vd for i, vd in got.items() if vd is not None}
        right = sum(vd.kinds == [by_id[i].expected] for i, vd in made.items())
        wrong = sum(bool(vd.kinds) and vd.kinds != [by_id[i].expected] for i, vd in made.items())
        skipped = sum(not vd.kinds and bool(vd.skipped or vd.error) for vd in made.values())
        missed = len(made) - right - wrong - skipped
        na = len(got) - len(made)
        rows.append([v.label, len(made), right, wrong, missed, skipped,
                     f"{na} (binary)" if na else "0"])
        lines.append(f"{v.label} {right} of {len(made)}")
    headers = ["copy", "copies", "found, right kind", "wrong kind", "missed",
               "skipped or error", "not made"]
    return common.markdown_table(headers, rows), lines


def failures(r: Results) -> list[str]:
    """Every wrong verdict: originals one by one, re-encoded copies by variant."""
    out = []
    for e in r.entries:
        v = r.credguard[e.id]
        if not correct(e, v):
            want = _code(e.expected) if e.expected else "nothing"
            out.append(f"- {e.id} {_code(e.path)} ({_code(e.repo)}): expected {want}, "
                       f"got {v.cell()}")
    by_id = {e.id: e for e in r.entries}
    for variant in VARIANTS:
        wrong = {
            i: vd
            for i, vd in r.variants.get(variant.key, {}).items()
            if vd is not None and not correct(by_id[i], vd)
        }
        if not wrong:
            continue
        new = [f"{i} ({vd.cell()})" if vd.kinds or vd.skipped or vd.error else f"{i} (—)"
               for i, vd in wrong.items() if correct(by_id[i], r.credguard[i])]
        old = [i for i in wrong if not correct(by_id[i], r.credguard[i])]
        parts = [", ".join(new)] if new else []
        parts += [f"{', '.join(old)}, as their originals"] if old else []
        out.append(f"- {variant.label} copies not found with the expected kind: "
                   + "; ".join(parts))
    return out or ["- none"]


def render(r: Results, facts: Mapping[str, str], argv_text: str) -> tuple[str, str]:
    """The results section and a one-line summary."""
    pos = sum(1 for e in r.entries if e.expected)
    neg = len(r.entries) - pos
    repos = len({e.repo for e in r.entries})
    ktable, total = kind_table(r)
    ptable, overall = peers_table(r)
    vtable, vlines = variants_table(r)
    found = sum(correct(e, r.credguard[e.id]) for e in r.entries if e.expected)
    reported = sum(bool(r.credguard[e.id].kinds) for e in r.entries if not e.expected)
    left = (f" {len(r.left_out)} manifest entries left out (file missing, duplicate id or "
            f"unknown kind): {', '.join(r.left_out)}." if r.left_out else "")
    head = (f"`{argv_text}`: {len(r.entries)} files from {repos} repositories, {pos} expected "
            f"credentials and {neg} look-alikes.{left} {common.facts_line(facts)}.")
    section = "\n\n".join(
        [
            "### Summary",
            head,
            "\n".join(
                [
                    f"- credguard: **{found} of {pos}** credentials found with the right kind; "
                    f"**{reported} of {neg}** look-alikes reported. Precision "
                    f"{pct(total.precision)}, recall {pct(total.recall)} (all kinds).",
                    *(
                        f"- {name}: recall {pct(overall[t][1])}, precision "
                        f"{pct(overall[t][0])} (it knows no Azure kinds: any hit counts)."
                        for t, name in r.peer_names.items()
                    ),
                    "- Re-encoded copies found with the right kind: " + "; ".join(vlines) + ".",
                ]
            ),
            "### Sources",
            "✓/✗: credguard's verdict is the expected one (that kind, or nothing). The peers' "
            "columns list the rules or secret types they reported (count when more than one).",
            sources_table(r),
            "### credguard: precision and recall per kind",
            ktable,
            "### The peers on the same files",
            ptable,
            "### Re-encoded copies of the expected credentials (credguard)",
            vtable,
            "### Failures (expected vs got)",
            "\n".join(failures(r)),
        ]
    )
    summary = (
        f"accuracy: {len(r.entries)} files ({pos} credentials, {neg} look-alikes): credguard "
        f"found {found}/{pos} with the right kind, reported {reported}/{neg} look-alikes, "
        f"precision {pct(total.precision)}, recall {pct(total.recall)}; "
        + "; ".join(f"{n} P {pct(overall[t][0])} R {pct(overall[t][1])}"
                    for t, n in r.peer_names.items())
        + "; re-encoded: " + ", ".join(vlines)
    )
    return section, summary


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (``sys.argv[1:]`` if ``argv`` is None)."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.accuracy",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("corpus", type=Path, metavar="CORPUS_DIR",
                   help="holds manifest.json and the files it names")
    p.add_argument("--manifest", type=Path, help="another manifest (default CORPUS_DIR/manifest"
                   ".json); its file paths are relative to CORPUS_DIR")
    p.add_argument("--basename-only", dest="keep_dirs", action="store_false",
                   help="copy each file under its basename only, not its whole repository path "
                        "(a file then loses the tool directory it lies in, e.g. .azure/)")
    p.add_argument("--no-write", action="store_true", help="print only; leave the docs alone")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Load the corpus, run credguard and the peers, print and write the results."""
    args = parse_args(argv)
    corpus = args.corpus.resolve()
    manifest = (args.manifest or corpus / "manifest.json").resolve()
    entries, left_out = load_corpus(corpus, manifest)
    if not entries:
        raise SystemExit(f"no usable entries in {manifest}")
    print(f"{len(entries)} files from {manifest} ({len(left_out)} left out)", file=sys.stderr)
    results = run_all(entries, left_out, args.keep_dirs)
    facts = common.machine_facts()
    git = ["git", "-C", str(common.REPO), "describe", "--always", "--dirty"]
    facts["commit"] = subprocess.run(git, capture_output=True, text=True).stdout.strip() or "?"
    cmd = "python -m benchmarks.accuracy CORPUS" + ("" if args.keep_dirs else " --basename-only")
    section, summary = render(results, facts, cmd)
    print(section)
    if not args.no_write:
        common.write_section(DOC, NAME, section, prefix=PREFIX, intro=DOC_INTRO)
        print(f"wrote the results of {DOC}", file=sys.stderr)
    print(summary, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
