"""The course gradebook: CSVs, a summary, plots and each student's feedback, from their results.json.

Everything here is a pure function of the graded rows (:class:`Row`: the
students, the late flag and the Gradescope ``results.json`` of their
submission), sorted by key, so a batch graded on one machine, on a Ray
cluster, or killed and resumed writes the same bytes. Files written:

- ``grades.csv``: id, name, email, total, max, one column per check (points
  earned, fractions for partial credit), late flag, status;
- ``canvas.csv``: Canvas's gradebook import columns (``Student``, ``ID``,
  ``SIS User ID``, ``SIS Login ID``, ``Section`` and the assignment);
- ``summary.md``: counts, mean and median, per check the pass rate, the mean
  points and the most common hint among those who missed it, and the
  submissions that were refused, crashed the grader or hit a time limit;
- ``scores.png`` (histogram of totals) and ``pass_rates.png`` (per check),
  drawn on a matplotlib ``Figure`` (no pyplot state), without timestamps;
- ``students/<key>/feedback.md``: the student's table and what to fix
  (hidden checks show their points only, never their output).

Students choose their own names and emails (on Gradescope) and their code
chooses its exception messages, so every such text is made inert before it is
written: CSV cells are one line and never start a spreadsheet formula
(:func:`csv_cell`); markdown gets one escaped line of text (:func:`markdown_text`)
or a code fence no backtick run inside can close (:func:`code_block`).
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field

from ..fileio import atomic_write
from .failures import clean_text
from .report import Record, format_points, score_table

#: The columns Canvas's gradebook import reads before the assignment columns.
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


@dataclass
class Row:
    """One graded submission: ``key``, ``students`` (:class:`~warblr.grading.submissions.Student`),
    ``late`` (bool or None), ``results`` (Gradescope results dict) and ``problem`` (why it needs a look)."""

    key: str
    students: list
    late: bool | None
    results: dict
    problem: str = ""
    notes: list = field(default_factory=list)


#: Line and paragraph breaks of any kind (a name must stay one CSV cell, one markdown line).
_BREAKS = re.compile("[\r\n\t\v\f\x1c-\x1e\x85\u2028\u2029]+")
#: Bidirectional marks clean_text leaves alone (it shows the overrides and isolates).
_MARKS = re.compile("[\u200e\u200f\u061c]")


def one_line(text):
    """``text`` as one line: breaks become spaces, ANSI escapes go, other control characters show as ``\\xNN``.

    Examples
    --------
    >>> one_line("Eve\\r\\n# Heading\\x1b[2J\\x00")
    'Eve # Heading\\\\x00'
    """
    text = clean_text(_BREAKS.sub(" ", str(text)))
    return _MARKS.sub(lambda match: repr(match.group())[1:-1], text).strip()


#: First characters a spreadsheet reads as a formula (OWASP's list, and the full-width forms some read too).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
#: A plain decimal number (a score, a signed value, an id such as 0042): a spreadsheet reads it as a number.
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def csv_cell(value):
    """A CSV cell that a spreadsheet shows as written: one line, and text never read as a formula.

    Numbers (and text that is a plain decimal number) stay as they are; other
    text starting with a character of :data:`FORMULA_STARTS` gets a leading
    single quote (OWASP's advice for CSV injection).

    Examples
    --------
    >>> csv_cell("=HYPERLINK(1)"), csv_cell("-2+3"), csv_cell("-2.5"), csv_cell("0042"), csv_cell(4.5)
    ("'=HYPERLINK(1)", "'-2+3", '-2.5', '0042', 4.5)
    """
    if isinstance(value, (int, float)):
        return value
    text = one_line(value)
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


#: Markdown and HTML syntax in a line of text: HTML's as entities, markdown's behind a backslash.
_MARKUP = re.compile(r"[<>&\\`*_\[\]!#|~$]")
_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
#: What GitHub links with no brackets: the ``:`` of ``scheme://`` and the ``.`` of ``www.`` (escaped, they are text).
_BARE_LINK = re.compile(r"(?i)(?<=\bwww)\.|:(?=//)")
#: What starts a list item or a block when it opens a line (a list number keeps its digits: ``1\.``).
_LINE_START = re.compile(r"^(?:[-+=]|\d+(?=[.)]))")


def _escape_start(match):
    text = match.group()
    return text + "\\" if text.isdigit() else "\\" + text


def markdown_text(text):
    """``text`` as one line of markdown that renders as the text itself: no link, image, HTML or heading.

    HTML's ``< > &`` become entities; markdown's `` \\ ` * _ [ ] ! # | ~ $ ``
    get a backslash, as do a leading ``-``, ``+``, ``=`` or list number, and
    the ``:`` of ``://`` and the ``.`` of ``www.`` (GitHub links them bare).
    Parentheses stay: with no ``[`` or ``<`` they start nothing.

    Examples
    --------
    >>> print(markdown_text("<img src=x> ![t](https://x.example/p.png)\\n# h"))
    &lt;img src=x&gt; \\!\\[t\\](https\\://x.example/p.png) \\# h
    """
    text = _MARKUP.sub(lambda match: _ENTITIES.get(match.group(), "\\" + match.group()), one_line(text))
    text = _BARE_LINK.sub(lambda match: "\\" + match.group(), text)
    return _LINE_START.sub(_escape_start, text)


def code_block(text):
    """``text`` in a fenced code block that nothing inside can close (the fence outruns every backtick run).

    Control characters and ANSI escapes are cleaned first; newlines stay.
    """
    text = clean_text(str(text)).strip()
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", text)), default=0))
    return [fence, text, fence]


def records_of(results):
    """:class:`~warblr.grading.report.Record` objects rebuilt from a results.json (for the score table)."""
    records = []
    for test in results.get("tests", []):
        extra = test.get("extra_data") or {}
        points = float(test.get("max_score") or 0.0)
        score = float(test.get("score") or 0.0)
        outcome = extra.get("outcome") or test.get("status", "failed")
        records.append(Record(nodeid=extra.get("nodeid", test["name"]), exercise=extra.get("exercise", "?"),
                              name=test["name"], points=points, outcome=outcome, visibility=test.get("visibility"),
                              partial=0 < score < points, fraction=score / points if points else 0.0))
    return records


def check_names(rows):
    """Every check's name in the order the grader ran them (the longest results first, then any others)."""
    names = []
    for row in sorted(rows, key=lambda r: -len(r.results.get("tests", []))):
        for test in row.results.get("tests", []):
            if test["name"] not in names:
                names.append(test["name"])
    return names


def _late_text(late):
    return "" if late is None else ("yes" if late else "no")


def _csv_text(header, lines):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(cell) for cell in header])
    writer.writerows([csv_cell(cell) for cell in line] for line in lines)
    return buffer.getvalue()


def grades_csv(rows):
    """``grades.csv`` as text: one line per student (a group submission gives each member a line)."""
    names = check_names(rows)
    lines = []
    for row in rows:
        scores = {test["name"]: test["score"] for test in row.results.get("tests", [])}
        for student in row.students:
            lines.append([student.id, student.name, student.email, format_points(row.results.get("score", 0.0)),
                          format_points(row.results.get("max_score", 0.0))]
                         + [format_points(scores.get(name, 0.0)) for name in names]
                         + [_late_text(row.late), "needs a look" if row.problem else "graded"])
    return _csv_text(["id", "name", "email", "total", "max"] + names + ["late", "status"], lines)


def canvas_csv(rows, *, assignment):
    """A CSV Canvas's gradebook import accepts: its five student columns, then ``assignment`` with the totals.

    Canvas matches students by ``SIS User ID`` (the student id here) when
    ``ID`` (Canvas's internal id) is empty; ``SIS Login ID`` gets the email.
    """
    lines = [[student.name, "", student.id, student.email, "", format_points(row.results.get("score", 0.0))]
             for row in rows for student in row.students]
    return _csv_text(list(CANVAS_COLUMNS) + [assignment], lines)


def _first_line_hint(output):
    for line in str(output).splitlines():
        line = line.strip()
        if line.startswith("Hint:"):
            return line[len("Hint:"):].strip()
    return str(output).strip().splitlines()[0] if str(output).strip() else ""


def check_statistics(rows):
    """``[(name, max points, pass rate, mean points, most common hint, how many with it)]`` per check."""
    stats = []
    for name in check_names(rows):
        tests = [test for row in rows for test in row.results.get("tests", []) if test["name"] == name]
        missing = len(rows) - len(tests)  # refused submissions: 0 points, no hint
        passed = sum(test["status"] == "passed" for test in tests)
        points = max(float(test["max_score"]) for test in tests)
        hints = Counter(_first_line_hint(test["output"]) for test in tests if test["status"] != "passed")
        hint, count = hints.most_common(1)[0] if hints else ("", 0)
        stats.append((name, points, passed / max(1, len(tests) + missing),
                      sum(float(test["score"]) for test in tests) / max(1, len(tests) + missing), hint, count))
    return stats


def _check_title(name):
    # the course's own check names: kept readable, but one line and no table cell break or HTML
    return re.sub(r"[<>&|]", lambda match: _ENTITIES.get(match.group(), "\\|"), one_line(name))


def summary_markdown(rows, *, title="warblr grade batch"):
    """``summary.md``: the course's totals, each check's pass rate and commonest hint, submissions to look at."""
    totals = [float(row.results.get("score", 0.0)) for row in rows]
    maximum = max([float(row.results.get("max_score", 0.0)) for row in rows] + [0.0])
    lines = [f"# {title}", "", f"{len(rows)} submissions, {sum(len(row.students) for row in rows)} students; "
             f"maximum {format_points(maximum)} points."]
    if totals:
        lines.append(f"Mean {format_points(statistics.fmean(totals))}, median {format_points(statistics.median(totals))}, "
                     f"full marks {sum(t == maximum for t in totals)}.")
    lines += ["", "| check | points | pass rate | mean points | most common hint (how many) |",
              "|---|---:|---:|---:|---|"]
    for name, points, rate, mean, hint, count in check_statistics(rows):
        hint_text = f"{markdown_text(hint)} ({count})" if hint else ""
        lines.append(f"| {_check_title(name)} | {format_points(points)} | {rate:.0%} | {format_points(mean)} "
                     f"| {hint_text} |")
    problems = [row for row in rows if row.problem]
    lines += ["", "## Submissions to look at", ""]
    lines += [f"- {markdown_text(row.key)}: {markdown_text(row.problem)}" for row in problems] or ["none"]
    return "\n".join(lines) + "\n"


def feedback_markdown(row):
    """A student's feedback: the score table, then each check they missed with its hint and output.

    Hidden checks say only their points: their output stays with the instructor.
    """
    results = row.results
    names = ", ".join(markdown_text(student.name) for student in row.students)
    lines = [f"# Feedback for {names}", "", f"Score: {format_points(results.get('score', 0.0))} / "
             f"{format_points(results.get('max_score', 0.0))}", ""]
    if row.problem:
        lines += [f"Note: {markdown_text(row.problem)}", ""]
    lines += code_block("\n".join(score_table(records_of(results)))) + [""]
    for test in results.get("tests", []):
        if test["status"] == "passed":
            continue
        lines.append(f"## {_check_title(test['name'])}: {format_points(test['score'])} / "
                     f"{format_points(test['max_score'])}")
        if test.get("visibility") == "hidden":
            lines += ["", "(a hidden check: its details are not shown)", ""]
        else:
            lines += [""] + code_block(test.get("output", "")) + [""]
    return "\n".join(lines) + "\n"


def _save_figure(figure, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=100,
                                                     metadata={"Software": None}))


def plot_scores(rows, path):
    """Histogram of the totals (PNG at ``path``)."""
    from matplotlib.figure import Figure

    totals = [float(row.results.get("score", 0.0)) for row in rows]
    maximum = max([float(row.results.get("max_score", 0.0)) for row in rows] + [1.0])
    figure = Figure(figsize=(6, 3.5))
    axes = figure.add_subplot()
    axes.hist(totals, bins=20, range=(0, maximum), color="#4477aa", edgecolor="white")
    axes.set(xlabel=f"total points (of {format_points(maximum)})", ylabel="submissions",
             title=f"Scores of {len(rows)} submissions")
    figure.tight_layout()
    _save_figure(figure, path)


def plot_pass_rates(rows, path):
    """Per-check pass rate, one horizontal bar per check (PNG at ``path``)."""
    from matplotlib.figure import Figure

    stats = check_statistics(rows)
    figure = Figure(figsize=(7, max(2.5, 0.22 * len(stats) + 1)))
    axes = figure.add_subplot()
    axes.barh([name for name, *_ in stats][::-1], [100 * rate for _, _, rate, *_ in stats][::-1], color="#228833")
    axes.set(xlim=(0, 100), xlabel="submissions passing (%)", title="Pass rate per check")
    axes.tick_params(axis="y", labelsize=6)
    figure.tight_layout()
    _save_figure(figure, path)


def write_gradebook(rows, out, *, assignment):
    """Write grades.csv, canvas.csv, summary.md and both plots into ``out`` (each atomically).

    Returns
    -------
    dict
        ``{kind: pathlib.Path}`` of the files written.
    """
    files = {"grades": out / "grades.csv", "canvas": out / "canvas.csv", "summary": out / "summary.md",
             "scores_plot": out / "scores.png", "pass_rate_plot": out / "pass_rates.png"}
    texts = {"grades": grades_csv(rows), "canvas": canvas_csv(rows, assignment=assignment),
             "summary": summary_markdown(rows)}
    for kind, text in texts.items():
        atomic_write(files[kind], lambda handle, text=text: handle.write(text), mode="w")
    plot_scores(rows, files["scores_plot"])
    plot_pass_rates(rows, files["pass_rate_plot"])
    return files
