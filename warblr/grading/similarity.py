"""Code similarity between submissions: winnowed fingerprints (as in MOSS) and a side-by-side HTML report.

The algorithm is Schleimer, Wilkerson and Aiken's winnowing ("Winnowing:
local algorithms for document fingerprinting", SIGMOD 2003), the one MOSS
uses. Each submission's Python files are tokenized with Python's own
:mod:`tokenize`; comments, blank lines and indentation are dropped, and
names are replaced by one placeholder unless they follow a dot (``np.fft.rfft``
keeps ``fft`` and ``rfft``), so renaming variables changes nothing while
what the code calls still counts; numbers and strings become placeholders
too. Every run of :data:`K` tokens is hashed (BLAKE2b, stable across
processes), and in every window of :data:`WINDOW` consecutive hashes the
smallest is kept: any shared run of ``K + WINDOW - 1`` tokens is guaranteed
to share a fingerprint, whatever the order of the functions. Fingerprints
of the handout's stub files are boilerplate and removed, as are those
shared by more than half of a large class (code everyone was given or
everyone writes alike, MOSS's ``-m``).

A pair's similarity is the share of each side's fingerprints found in the
other; pairs are ranked by the larger share. Each submission is also
compared with *known sources* (:func:`known_sources`): the lab's answers,
warblr's engine (which the handout installs) and the libraries the
assignment forbids importing. Copying from those needs no classmate, and a
class that mostly copied them would otherwise see that code removed as
common; the comparison with sources uses each submission's fingerprints
before that removal. The report flags, it never
changes a score. We implement winnowing here rather than use copydetect
(which implements the same algorithm) to tokenize with Python's own
tokenizer, keep attribute names, drop the stubs at the fingerprint level,
and write a self-contained page with no script (student code is escaped).

The page shows each excerpt as the tokenizer numbered it: lines end at
``\n``, ``\r\n`` or ``\r`` only (never at U+2028 or a form feed, which
would shift the copier's excerpt off the copied code), characters that move
text around (bidirectional controls, other line separators, control
characters) are shown as escapes such as ``\u202e``, and an excerpt keeps at
most :data:`EXCERPT_LINES` lines of :data:`EXCERPT_LINE_CHARS` characters,
saying what it cut, so a submission of huge docstrings cannot bloat the page.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import keyword
import re
import tokenize
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..fileio import atomic_write
from .gradebook import csv_cell
from .impl import EXERCISE_MODULES
from .intake import python_source_text

#: Tokens per hashed k-gram (about two lines of Python).
K = 12

#: Hashes per winnowing window: a shared run of K + WINDOW - 1 tokens is always detected.
WINDOW = 6

#: Pairs shown in the HTML report (all are in similarity.csv).
MAX_PAIRS_SHOWN = 50

#: With at least this many submissions, a fingerprint in more than half of them is common code.
COMMON_MIN_SUBMISSIONS = 10

#: Lines shown of one side of a matched passage (the rest is counted, not shown).
EXCERPT_LINES = 60

#: Characters shown of one line of an excerpt.
EXCERPT_LINE_CHARS = 200

#: Matched passages shown per pair.
PASSAGES_SHOWN = 40

#: Known sources compared with every submission: ``(label, where, name, files under it)``. The lab's
#: answers, warblr's engine (the handout installs it) and the packages the assignment forbids importing.
#: ``where`` is ``"lab"`` (a folder of the lab) or ``"package"`` (found by import machinery, never imported).
KNOWN_SOURCES = (("the lab's solutions/", "lab", "solutions", "*.py"),
                 ("warblr (engine, lab and grader)", "package", "warblr", "**/*.py"),
                 ("torchvggish", "package", "torchvggish", "**/*.py"),
                 ("resampy", "package", "resampy", "**/*.py"),
                 ("librosa", "package", "librosa", "**/*.py"))

#: Bytes read of one known source (librosa's whole package is ~1.5 MB).
MAX_SOURCE_BYTES = 8 << 20

#: Python's line ends, the only ones its tokenizer counts (not U+2028, U+0085, form feeds...).
_LINE_ENDS = re.compile("\r\n|\r|\n")

#: Characters that reorder, hide or break displayed text: shown as escapes (tabs stay).
_INVISIBLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                        "\u2066-\u2069]")

_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
         tokenize.ENCODING, tokenize.ENDMARKER}


def normalised_tokens(source):
    """``[(token text, first line, last line)]`` of Python ``source``, names, numbers and strings normalised.

    Examples
    --------
    >>> [text for text, _, _ in normalised_tokens("total = np.sum(values)  # add")]
    ['V', '=', 'V', '.', 'sum', '(', 'V', ')']
    """
    out = []
    previous = None
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in _SKIP:
                continue
            text = token.string
            if token.type == tokenize.NAME and not keyword.iskeyword(text) and previous != ".":
                text = "V"
            elif token.type == tokenize.NUMBER:
                text = "N"
            elif token.type == tokenize.STRING or token.type == getattr(tokenize, "FSTRING_START", -1):
                text = "S"
            out.append((text, token.start[0], token.end[0]))
            previous = token.string
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # a file that does not tokenize to the end still has fingerprints up to there
    return out


def _hash(texts):
    return int.from_bytes(hashlib.blake2b("\x1f".join(texts).encode(), digest_size=8).digest(), "big")


def winnow(tokens, *, k=K, window=WINDOW):
    """The winnowed fingerprints of a token list: ``{hash: [(first line, last line), ...]}``.

    Parameters
    ----------
    tokens : list of (str, int, int)
        From :func:`normalised_tokens`.
    k, window : int, keyword-only
        k-gram length and winnowing window.

    Returns
    -------
    dict
        Each selected k-gram hash with the line spans where it was selected.
    """
    hashes = [_hash([text for text, _, _ in tokens[i:i + k]]) for i in range(len(tokens) - k + 1)]
    selected = {}
    starts = range(len(hashes) - window + 1) if len(hashes) >= window else range(min(1, len(hashes)))
    for start in starts:
        span = hashes[start:start + window]
        low = min(span)
        position = start + max(i for i, value in enumerate(span) if value == low)  # rightmost minimum
        selected[position] = low
    prints = defaultdict(list)
    for position, value in sorted(selected.items()):
        prints[value].append((tokens[position][1], tokens[position + k - 1][2]))
    return dict(prints)


@dataclass
class Document:
    """One submission's fingerprints: ``{hash: [(file, first line, last line)]}`` and its file texts."""

    key: str
    prints: dict = field(default_factory=dict)
    texts: dict = field(default_factory=dict)
    lines: dict = field(default_factory=dict, repr=False)  # python_lines of each text, split once for the report

    def lines_of(self, path):
        """The lines of file ``path`` as the tokenizer numbered them."""
        if path not in self.lines:
            self.lines[path] = python_lines(self.texts[path])
        return self.lines[path]


def python_lines(text):
    """``text`` split into lines where Python's tokenizer ends them: ``\\n``, ``\\r\\n`` and ``\\r`` only.

    Examples
    --------
    >>> python_lines("a\\u2028b\\x0cc\\r\\nd\\re\\n")
    ['a\\u2028b\\x0cc', 'd', 'e']
    """
    lines = _LINE_ENDS.split(text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def fingerprint_files(key, files, *, boilerplate=frozenset()):
    """A :class:`Document` from ``{relative path: bytes}`` (Python files only), ``boilerplate`` hashes removed.

    Line ends are made ``\\n`` first, so the tokenizer's line numbers are
    :func:`python_lines`'s whatever its version does with a bare ``\\r``.
    """
    document = Document(key)
    for path in sorted(files):
        if not path.endswith(".py") or Path(path).name.startswith("test_"):
            continue
        text = "\n".join(python_lines(python_source_text(files[path]))) + "\n"  # as Python reads it
        document.texts[path] = text
        for value, spans in winnow(normalised_tokens(text)).items():
            if value not in boilerplate:
                document.prints.setdefault(value, []).extend((path, first, last) for first, last in spans)
    return document


def boilerplate_of(lab):
    """Fingerprints of the handout's stubs (``exercises/<module>.py`` of the lab): code every student got."""
    prints = set()
    for name in EXERCISE_MODULES:
        path = Path(lab) / "exercises" / f"{name}.py"
        if path.is_file():
            prints |= set(winnow(normalised_tokens(path.read_text(encoding="utf-8"))))
    return prints


def _source_folder(lab, where, name):
    """The folder of known source ``name``: a folder of the lab, or a package's (found, never imported)."""
    import importlib.util

    if where == "lab":
        return Path(lab) / name
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def known_sources(lab, *, sources=KNOWN_SOURCES, max_bytes=MAX_SOURCE_BYTES):
    """The Python files of each known source found here: ``{label: {relative path: bytes}}``.

    Parameters
    ----------
    lab : path
        The lab folder (its ``solutions/``, when present, is one source).
    sources : sequence of (label, where, name, pattern), optional
        Default :data:`KNOWN_SOURCES`: a folder ``name`` of the lab
        (``where="lab"``) or an installed package (``"package"``), and the
        glob of its files to read.
    max_bytes : int, optional
        Bytes read of one source at most (files past it are left out).

    Returns
    -------
    dict
        Sources not found here (a package not installed) are left out.
    """
    found = {}
    for label, where, name, pattern in sources:
        folder = _source_folder(lab, where, name)
        if folder is None or not folder.is_dir():
            continue
        files, total = {}, 0
        for path in sorted(folder.glob(pattern)):
            if not path.is_file() or path.is_symlink() or path.name.startswith("test_"):
                continue
            try:
                data = path.read_bytes()
            except OSError:  # an unreadable file of an installed package: compared without it
                continue
            total += len(data)
            if total > max_bytes:
                break
            files[f"{name}/{path.relative_to(folder)}"] = data
        if files:
            found[label] = files
    return found


def rank_sources(documents, sources):
    """Every (submission, known source) pair sharing a fingerprint, the largest share of the submission first.

    Parameters
    ----------
    documents : list of Document
        The submissions, before :func:`rank_pairs` removes common code.
    sources : list of Document
        The known sources (:func:`known_sources`, fingerprinted).

    Returns
    -------
    list of Pair
        ``a`` is a frozen copy of the submission, ``b`` the source; ``share_a``
        is the share of the submission's code found in the source.
    """
    pairs = []
    for document in documents:
        frozen = Document(document.key, dict(document.prints), document.texts, document.lines)
        for source in sources:
            shared = set(frozen.prints).intersection(source.prints)
            if shared:
                pairs.append(Pair(frozen, source, shared))
    return sorted(pairs, key=lambda pair: (-pair.share_a, pair.a.key, pair.b.key))


@dataclass
class Pair:
    """Two submissions' shared fingerprints; ``share_a``/``share_b``: the fraction of each side's found in the other."""

    a: Document
    b: Document
    shared: set

    @property
    def share_a(self):
        return len(self.shared) / len(self.a.prints) if self.a.prints else 0.0

    @property
    def share_b(self):
        return len(self.shared) / len(self.b.prints) if self.b.prints else 0.0

    @property
    def score(self):
        return max(self.share_a, self.share_b)


def rank_pairs(documents):
    """Every pair sharing a fingerprint, most similar first (ties by key), common code removed.

    Parameters
    ----------
    documents : list of Document

    Returns
    -------
    list of Pair
    """
    holders = defaultdict(set)
    for index, document in enumerate(documents):
        for value in document.prints:
            holders[value].add(index)
    if len(documents) >= COMMON_MIN_SUBMISSIONS:
        common = {value for value, owners in holders.items() if len(owners) > len(documents) / 2}
        for document in documents:
            for value in common & set(document.prints):
                del document.prints[value]
        holders = {value: owners for value, owners in holders.items() if value not in common}
    shared = defaultdict(set)
    for value, owners in holders.items():
        owners = sorted(owners)
        for i, first in enumerate(owners):
            for second in owners[i + 1:]:
                shared[first, second].add(value)
    pairs = [Pair(documents[i], documents[j], values) for (i, j), values in shared.items()]
    return sorted(pairs, key=lambda pair: (-pair.score, pair.a.key, pair.b.key))


def passages(pair):
    """Matched passages of a pair: ``[((file_a, first, last), (file_b, first, last))]``, merged where adjacent."""
    spans = sorted((min(pair.a.prints[value]), min(pair.b.prints[value])) for value in pair.shared)
    merged = []
    for (file_a, a0, a1), (file_b, b0, b1) in spans:
        if merged:
            (last_file_a, la0, la1), (last_file_b, lb0, lb1) = merged[-1]
            if last_file_a == file_a and last_file_b == file_b and a0 <= la1 + 1 and lb0 - 2 <= b0 <= lb1 + 1:
                merged[-1] = ((file_a, la0, max(la1, a1)), (file_b, min(lb0, b0), max(lb1, b1)))
                continue
        merged.append(((file_a, a0, a1), (file_b, b0, b1)))
    return merged


def visible(text):
    """``text`` with bidirectional controls, line separators and control characters written as escapes.

    So what the page shows is what the file holds, in the order it holds it.

    Examples
    --------
    >>> visible("x = 1  # \\u202eevil\\u2028\\r")
    'x = 1  # \\\\u202eevil\\\\u2028\\\\r'
    """
    return _INVISIBLE.sub(lambda match: repr(match.group())[1:-1], text)


def _shown_line(line):
    cut = len(line) - EXCERPT_LINE_CHARS
    return visible(line[:EXCERPT_LINE_CHARS]) + (f" [... {cut} more characters]" if cut > 0 else "")


def _excerpt(document, where):
    """Lines ``first..last`` of a file, numbered, at most :data:`EXCERPT_LINES` of them, each line capped."""
    path, first, last = where
    lines = document.lines_of(path)[first - 1:last]
    shown = [f"{number:4d}  {_shown_line(line)}" for number, line in enumerate(lines[:EXCERPT_LINES], first)]
    if len(lines) > EXCERPT_LINES:
        shown.append(f"[... {len(lines) - EXCERPT_LINES} more lines not shown, up to line {last}]")
    return "\n".join(shown)


_STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
table.ranking td, table.ranking th { padding: 2px 10px; text-align: left; }
section.pair { border-top: 2px solid #888; margin-top: 2em; }
div.passage { display: flex; gap: 1em; margin: 0.6em 0; }
div.side { flex: 1; min-width: 0; }
pre.match { background: #fff3b0; padding: 6px; overflow-x: auto; font-size: 12px; }
"""


def _html(text):
    # keys and paths come from the students' files too: escaped, and shown as they are
    return html.escape(visible(str(text)))


def _pair_section(anchor, rank, pair):
    escape = _html
    parts = [f"<section class='pair' id='{anchor}{rank}' data-a='{escape(pair.a.key)}' "
             f"data-b='{escape(pair.b.key)}'><h2>{rank}. {escape(pair.a.key)} and {escape(pair.b.key)}: "
             f"{pair.share_a:.0%} / {pair.share_b:.0%}</h2>"]
    matched = passages(pair)
    for where_a, where_b in matched[:PASSAGES_SHOWN]:
        parts.append("<div class='passage'>")
        for document, where in ((pair.a, where_a), (pair.b, where_b)):
            parts.append(f"<div class='side'><div>{escape(document.key)}: {escape(where[0])} lines "
                         f"{where[1]}-{where[2]}</div><pre class='match'>{html.escape(_excerpt(document, where))}"
                         "</pre></div>")
        parts.append("</div>")
    if len(matched) > PASSAGES_SHOWN:
        parts.append(f"<p>{len(matched) - PASSAGES_SHOWN} more matched passages not shown.</p>")
    parts.append("</section>")
    return parts


def report_html(pairs, *, total, shown=MAX_PAIRS_SHOWN, source_pairs=(), source_labels=()):
    """The report page: the ranking, then each shown pair's matched passages side by side.

    With ``source_pairs`` (:func:`rank_sources`), a second ranking: each
    submission's share of code found in a known source, with its passages.
    """
    escape = _html
    head = ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>warblr similarity report</title><style>{_STYLE}</style></head><body>")
    parts = [head, "<h1>Code similarity between submissions</h1>",
             f"<p>{total} submissions, {len(pairs)} pairs sharing code after the handout's stubs were removed. "
             "Winnowing (MOSS's algorithm) over normalised Python tokens: renamed variables and reordered "
             "functions still match. A flag for a human to read, never a verdict; scores are unchanged.</p>",
             "<table class='ranking'><tr><th>rank</th><th>submission A</th><th>submission B</th>"
             "<th>A's code in B</th><th>B's code in A</th></tr>"]
    for rank, pair in enumerate(pairs[:shown], 1):
        parts.append(f"<tr class='rank'><td>{rank}</td><td><a href='#pair{rank}'>{escape(pair.a.key)}</a></td>"
                     f"<td>{escape(pair.b.key)}</td><td>{pair.share_a:.0%}</td><td>{pair.share_b:.0%}</td></tr>")
    parts.append("</table>")
    if source_labels:
        parts += ["<h1>Code found in known sources</h1>",
                  f"<p>Each submission against {escape(', '.join(source_labels))}: the share of the submission's "
                  "code (after the stubs) found there, and how many fingerprints that is. Code copied from these "
                  "needs no classmate. An honest implementation shares a little (common numpy idioms); padding "
                  "lowers a share but not the count; read the passages.</p>",
                  "<table class='ranking sources'><tr><th>rank</th><th>submission</th><th>known source</th>"
                  "<th>submission's code found there</th><th>shared fingerprints</th></tr>"]
        for rank, pair in enumerate(source_pairs[:shown], 1):
            parts.append(f"<tr class='source'><td>{rank}</td><td><a href='#source{rank}'>{escape(pair.a.key)}</a>"
                         f"</td><td>{escape(pair.b.key)}</td><td>{pair.share_a:.0%}</td>"
                         f"<td>{len(pair.shared)}</td></tr>")
        parts.append("</table>")
    for rank, pair in enumerate(pairs[:shown], 1):
        parts += _pair_section("pair", rank, pair)
    for rank, pair in enumerate(source_pairs[:shown], 1):
        parts += _pair_section("source", rank, pair)
    parts.append("</body></html>\n")
    return "".join(parts)


def write_similarity_report(files_of, out, *, lab):
    """Write ``similarity.html`` and ``similarity.csv`` (every pair) into ``out``.

    Parameters
    ----------
    files_of : dict
        ``{submission key: {relative path: bytes}}`` as intake read them.
    out : pathlib.Path
        The batch's output folder.
    lab : path
        The lab whose ``exercises/`` stubs are boilerplate.

    Returns
    -------
    dict
        ``{"similarity_report": path, "similarity_pairs": path, "similarity_sources": path}``
        (each submission against each known source: ``similarity_sources.csv``).
    """
    boilerplate = boilerplate_of(lab)
    documents = [fingerprint_files(key, files_of[key], boilerplate=boilerplate) for key in sorted(files_of)]
    sources = [fingerprint_files(label, files, boilerplate=boilerplate)
               for label, files in known_sources(lab).items()]
    source_pairs = rank_sources(documents, sources)  # before rank_pairs removes common code from the documents
    pairs = rank_pairs(documents)
    page = report_html(pairs, total=len(documents), source_pairs=source_pairs,
                       source_labels=[source.key for source in sources])
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["a", "b", "share_of_a_in_b", "share_of_b_in_a", "shared_fingerprints"])
    writer.writerows([csv_cell(pair.a.key), csv_cell(pair.b.key), f"{pair.share_a:.4f}", f"{pair.share_b:.4f}",
                      len(pair.shared)] for pair in pairs)  # keys keep ``-`` and ``@`` of the students' ids
    from_sources = io.StringIO()
    writer = csv.writer(from_sources, lineterminator="\n")
    writer.writerow(["submission", "known_source", "share_of_submission_in_source", "shared_fingerprints"])
    writer.writerows([csv_cell(pair.a.key), pair.b.key, f"{pair.share_a:.4f}", len(pair.shared)]
                     for pair in source_pairs)
    report, listing = Path(out) / "similarity.html", Path(out) / "similarity.csv"
    sources_listing = Path(out) / "similarity_sources.csv"
    atomic_write(report, lambda handle: handle.write(page), mode="w")
    atomic_write(listing, lambda handle: handle.write(table.getvalue()), mode="w")
    atomic_write(sources_listing, lambda handle: handle.write(from_sources.getvalue()), mode="w")
    return {"similarity_report": report, "similarity_pairs": listing, "similarity_sources": sources_listing}
