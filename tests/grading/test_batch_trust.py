"""What ``warblr grade batch`` trusts, from a red-team review (Dec 2026).

- Run as another user than root, a batch ran every student's code as
  itself: one submission read ``OUT/input-seed.json`` and rewrote the other
  students' ``results.json`` (kept on resume). It now refuses unless told
  ``--trust-submissions``; a grading that still ran without uid separation
  (a sandbox user that cannot run the grader's Python) needs a look.
- A Gradescope group listing a student who also submitted elsewhere gave that
  student two rows in canvas.csv, unflagged.
- The students' results.json named the batch's input seed, which the batch
  reuses when it resumes or regrades (tested in ``test_input_seeds.py``).
"""

from types import SimpleNamespace

import pytest

from warblr.errors import InvalidArgumentError
from warblr.grading import batch
from warblr.cli import build_parser
from warblr.grading.submissions import Student


def test_a_batch_refuses_to_run_student_code_as_its_own_user(monkeypatch, tmp_path):
    monkeypatch.setattr(batch.os, "geteuid", lambda: 1000)
    with pytest.raises(InvalidArgumentError, match="not running as root") as refused:
        batch.grade_batch(tmp_path / "none", out=tmp_path / "out", lab=tmp_path, progress=False, log=print)
    assert "--trust-submissions" in str(refused.value)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_trust_submissions_is_a_batch_option():
    args = build_parser().parse_args(["grade", "batch", "subs", "--out", "o", "--trust-submissions"])
    assert args.trust_submissions is True
    assert build_parser().parse_args(["grade", "batch", "subs", "--out", "o"]).trust_submissions is False


@pytest.mark.parametrize("line", [
    "uid separation not available: the grader does not run as root, so the worker runs as the same user",
    "uid separation NOT available: the sandbox user nobody (uid 65534) cannot use this Python"])
def test_a_grading_without_uid_separation_needs_a_look_unless_trusted(line):
    graded = {"results": {"output": f"input seed: random\nisolation: {line}\n", "tests": [{"name": "t"}]}}
    assert "WITHOUT uid separation" in batch.problem_of(graded)
    assert batch.problem_of(graded, trusted=True) == ""
    assert batch.problem_of({"results": {"output": "isolation: worker runs as nobody", "tests": [{}]}}) == ""


def test_a_student_in_two_submissions_is_flagged_in_both():
    rows = [SimpleNamespace(key="alice", students=[Student("0042", "Ada"), Student("0099", "Mallory")]),
            SimpleNamespace(key="ada", students=[Student("0042", "Ada")]),
            SimpleNamespace(key="bob", students=[Student("0007", "Bob")])]
    notes = batch.students_in_several(rows)
    assert set(notes) == {"alice", "ada"}
    assert notes["ada"] == "student 0042 is also in alice: one student, several rows in canvas.csv"
    hostile = [SimpleNamespace(key=k, students=[Student("\x1b[2J0042\n## x", "?")]) for k in ("a", "b")]
    shown = batch.students_in_several(hostile)["a"]
    assert "\x1b" not in shown and "\n" not in shown and shown.endswith("is also in b: one student, several rows "
                                                                       "in canvas.csv")
