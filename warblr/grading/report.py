"""Grading records, the score table and Gradescope's ``results.json``.

One :class:`Record` per graded check. Outcomes:

``passed``        full points
``failed``        0 points, or a fraction of them when the check awards partial credit
                  (``@pytest.mark.points(n, partial=True)`` and :class:`~warblr.grading.credit.PartialCredit`);
                  the output holds the hint and the assertion
``not_attempted`` 0 points; the student's code still raises NotImplementedError
``skipped``       skipped by the checks themselves (a skip marker): not counted
``running``       the run stopped (crash, ``os._exit``, killed) during this check
``not_run``       the run stopped before this check

``results.json`` follows the Gradescope autograder specification
(https://gradescope-autograders.readthedocs.io/en/latest/specs/): top-level
``score``, ``max_score``, ``execution_time``, ``output``, ``tests[]`` with
``name``, ``number``, ``score``, ``max_score``, ``status`` ("passed" or
"failed"), ``output``, ``visibility``, ``tags`` and ``extra_data`` (our
``nodeid``, ``exercise``, ``outcome`` and ``fraction`` of the points earned, which
``--grade-resume`` reads back).
It is always written atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..fileio import atomic_write
from .failures import clean_text

#: Gradescope's visibility values.
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")

#: Outcomes that are final (kept by ``--grade-resume``).
FINAL_OUTCOMES = ("passed", "failed", "not_attempted", "skipped", "running")

#: Most characters of one test's ``output`` in results.json.
MAX_TEST_OUTPUT = 3000

NOT_ATTEMPTED_TEXT = "not attempted: {what} still raises NotImplementedError"
RUNNING_TEXT = ("the grading run stopped while this check was running: the code under test hung "
                "beyond the time limit without responding, called os._exit(), crashed the "
                "interpreter or was killed (out of memory?)")
NOT_RUN_TEXT = "not run: the grading run stopped before this check"


def trim(text, limit=MAX_TEST_OUTPUT):
    """Shorten ``text`` to at most about ``limit`` characters, keeping head and tail.

    Examples
    --------
    >>> trim("a" * 10 + "b" * 10, limit=8)
    'aaaa\\n... [12 characters cut] ...\\nbbbb'
    """
    text = str(text)
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    return f"{text[:head]}\n... [{len(text) - limit} characters cut] ...\n{text[-tail:]}"


@dataclass
class Record:
    """The grading record of one check."""

    nodeid: str
    exercise: str
    name: str
    points: float = 1.0
    hint: str = ""
    visibility: str = "visible"
    outcome: str = "not_run"
    message: str = ""
    partial: bool = False
    fraction: float = 0.0

    @property
    def score(self):
        """Points earned: all when passed, ``fraction`` of them for a failed check that awards partial credit."""
        if self.outcome == "passed":
            return self.points
        if self.outcome == "failed" and self.partial and 0.0 < self.fraction < 1.0:
            return self.points * self.fraction
        return 0.0

    @property
    def counted(self):
        return self.outcome != "skipped"

    def output(self):
        """The text Gradescope shows for this check."""
        if self.outcome == "passed":
            return "passed"
        if self.outcome == "not_attempted":
            return self.message
        if self.outcome == "running":
            return RUNNING_TEXT
        if self.outcome == "not_run":
            return NOT_RUN_TEXT
        parts = [f"Partial credit: {format_points(self.score)} of {format_points(self.points)} points ({self.fraction:.0%})"] \
            if self.score else []
        parts += [f"Hint: {self.hint}"] if self.hint and self.outcome == "failed" else []
        if self.message:
            parts.append(self.message)
        return trim("\n\n".join(parts))

    def to_json(self, number):
        return {
            "name": clean_text(self.name),
            "number": number,
            "score": self.score,
            "max_score": self.points,
            "status": "passed" if self.outcome == "passed" else "failed",
            "output": clean_text(self.output()),
            "output_format": "text",
            "visibility": self.visibility,
            "tags": [self.exercise],
            "extra_data": {"nodeid": self.nodeid, "exercise": self.exercise, "outcome": self.outcome,
                           "fraction": self.score / self.points if self.points else 0.0},
        }


@dataclass
class Tally:
    """Points and counts of one exercise (or of the total)."""

    earned: float = 0.0
    maximum: float = 0.0
    passed: int = 0
    failed: int = 0
    not_attempted: int = 0
    skipped: int = 0
    partial: int = 0

    def add(self, record):
        if not record.counted:
            self.skipped += 1
            return
        self.earned += record.score
        self.maximum += record.points
        if record.outcome == "passed":
            self.passed += 1
        elif record.outcome == "not_attempted":
            self.not_attempted += 1
        elif record.score:
            self.partial += 1
        else:
            self.failed += 1

    @property
    def percent(self):
        return 100.0 * self.earned / self.maximum if self.maximum else 0.0


def tally(records):
    """Per-exercise :class:`Tally` (in first-seen order) and the total."""
    per, total = {}, Tally()
    for record in records:
        per.setdefault(record.exercise, Tally()).add(record)
        total.add(record)
    return per, total


def format_points(points):
    """Points as text: whole numbers plainly, fractions to two decimals.

    Examples
    --------
    >>> format_points(4.0), format_points(8 / 3)
    ('4', '2.67')
    """
    return f"{round(points, 2):g}"


def score_table(records):
    """The score table as lines of text.

    Examples
    --------
    >>> print("\\n".join(score_table([Record("t::a", "logmel", "a", points=2, outcome="passed")])))
    exercise       points  passed  partial  failed  not attempted
    logmel          2 / 2       1        0       0              0
    TOTAL           2 / 2       1        0       0              0   (100.0 %)
    """
    per, total = tally(records)
    width = max([len("exercise"), len("TOTAL")] + [len(name) for name in per])
    lines = [f"{'exercise':<{width}}  {'points':>11}  {'passed':>6}  {'partial':>7}  {'failed':>6}  "
             f"{'not attempted':>13}"]

    def row(name, t):
        points = f"{format_points(t.earned)} / {format_points(t.maximum)}"
        return (f"{name:<{width}}  {points:>11}  {t.passed:>6}  {t.partial:>7}  {t.failed:>6}  "
                f"{t.not_attempted:>13}")

    lines += [row(name, t) for name, t in per.items()]
    lines.append(row("TOTAL", total) + f"   ({total.percent:.1f} %)")
    return lines


def results_json(records, *, execution_time, notes=()):
    """The Gradescope results as a dict.

    Parameters
    ----------
    records : iterable of Record
        Every graded check, in run order.
    execution_time : float
        Seconds the grading took.
    notes : sequence of str, optional
        Extra lines for the top-level ``output`` (e.g. that the run crashed).

    Returns
    -------
    dict
    """
    records = list(records)
    counted = [r for r in records if r.counted]
    exercise_number = {}
    tests, per_exercise = [], {}
    for record in counted:
        major = exercise_number.setdefault(record.exercise, len(exercise_number) + 1)
        minor = per_exercise[record.exercise] = per_exercise.get(record.exercise, 0) + 1
        tests.append(record.to_json(f"{major}.{minor}"))
    output = "\n".join(list(notes) + score_table(records))
    return {
        "score": sum(r.score for r in counted),
        "max_score": sum(r.points for r in counted),
        "execution_time": round(float(execution_time), 3),
        "output": output,
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def write_json_atomic(path, data, *, private=False):
    """Write ``data`` as JSON to ``path`` all or nothing (:func:`warblr.fileio.atomic_write`; ``private``: 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: json.dump(data, handle, indent=1), mode="w", private=private)


def read_finished(path):
    """Records kept from an earlier (crashed) run's ``results.json``.

    Returns
    -------
    dict
        ``nodeid -> (outcome, output, fraction)`` for checks with a final
        outcome (``fraction``: of the points earned); empty if the file is
        missing or unreadable.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    finished = {}
    for test in data.get("tests", []):
        extra = test.get("extra_data") or {}
        if extra.get("outcome") in FINAL_OUTCOMES and extra.get("nodeid"):
            finished[extra["nodeid"]] = (extra["outcome"], test.get("output", ""),
                                         float(extra.get("fraction") or 0.0))
    return finished
