"""``warblr grade batch`` end to end on a tiny lab: six submissions, killed and resumed, on Ray.

The lab (written to a temporary folder) has three checks: a plain one, one
with partial credit and a hidden one. The submissions are a correct one, a
partly right one (partial credit), one that hangs, one that kills its
worker with ``os._exit`` and one the intake refuses (a symbolic link); the
slow pass adds a zip of a correct one inside a wrapping folder. The batch is killed (SIGKILL to
its whole process group) once its first submission is saved, then resumed;
a rerun grades nothing; a sample is graded alone with ``warblr grade run``
and must score the same; the slow pass grades the same set on a real local
Ray and compares every output byte for byte.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from warblr.grading.batch import grade_batch
from warblr.grading.handout import ROOT_CONFTEST, write_tree

#: A whole course run with a kill and a resume: the slow pass (test_batch_units.py covers the parts in the default).
pytestmark = pytest.mark.slow

#: Seconds per check: short, so the hanging submission costs little.
TIMEOUT = 6.0

CHECKS = '''\
import pytest

from warblr.grading.credit import PartialCredit


@pytest.mark.points(3)
@pytest.mark.hint("double: multiply by two")
def test_double(impl):
    assert impl.logmel.double(4) == 8


@pytest.mark.points(4, partial=True)
@pytest.mark.hint("rows: double every row")
def test_rows(impl):
    got = impl.logmel.rows([1, 2, 3, 4])
    right = sum(a == 2 * b for a, b in zip(got, [1, 2, 3, 4]))
    if right == 4:
        return
    if right >= 2:
        raise PartialCredit(right / 4, f"{right} of 4 rows right")
    raise AssertionError(f"{right} of 4 rows right")


@pytest.mark.points(2)
@pytest.mark.visibility("hidden")
def test_hidden(impl):
    assert impl.logmel.double(0) == 0
'''

GOOD = "def double(x):\n    return 2 * x\n\n\ndef rows(values):\n    return [2 * v for v in values]\n"
LOGMEL = {
    "alice": GOOD,
    "bob": "def double(x):\n    return 2 * x\n\n\ndef rows(values):\n    return [2 * v for v in values[:3]] + [0]\n",
    "carol": "def double(x):\n    return 2 * x\n\n\ndef rows(values):\n    while True:\n        pass\n",
    "dave": "import os\n\n\ndef double(x):\n    os._exit(3)\n\n\ndef rows(values):\n    return [2 * v for v in values]\n",
}
#: Expected totals and per-check points, worked out by hand from the checks above.
EXPECTED = {"alice": (9, [3, 4, 2]), "bob": (8, [3, 3, 2]), "carol": (5, [3, 0, 2]), "dave": (4, [0, 4, 0]),
            "eve": (0, [0, 0, 0])}


def write_submission(folder, logmel):
    write_tree(folder, {"logmel.py": logmel, "resampling.py": "", "embedding.py": "", "classify.py": ""})


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """``(lab, submissions)``: the tiny lab and a folder of five submissions."""
    root = tmp_path_factory.mktemp("course")
    lab = root / "lab"
    write_tree(lab, {"conftest.py": ROOT_CONFTEST, "pytest.ini": "[pytest]\n", "exercises/__init__.py": "",
                     "exercises/test_logmel.py": CHECKS})
    submissions = root / "submissions"
    for name, logmel in LOGMEL.items():
        write_submission(submissions / name, logmel)
    write_submission(submissions / "eve", GOOD)
    (submissions / "eve" / "answers.py").symlink_to("/etc/hostname")
    return lab, submissions


def batch_command(lab, submissions, out):
    code = ("import sys; from warblr.grading.batch import grade_batch; "
            f"grade_batch({str(submissions)!r}, out={str(out)!r}, lab={str(lab)!r}, jobs=2, timeout={TIMEOUT}, "
            "progress=False)")
    return [sys.executable, "-c", code]


def saved(out):
    return [path for path in (out / "students").glob("*/graded.json") if json.loads(path.read_text())["fingerprint"]]


@pytest.fixture(scope="module")
def resumed(course, tmp_path_factory):
    """A batch killed once its first submission was saved, then resumed: ``(out, killed_saved, summary)``."""
    lab, submissions = course
    out = tmp_path_factory.mktemp("batch") / "out"
    process = subprocess.Popen(batch_command(lab, submissions, out), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (out / "students").is_dir() or not saved(out):
            assert process.poll() is None, "the batch ended before it could be killed"
            assert time.monotonic() < deadline, "no submission saved in 300 s"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed_saved = len(saved(out))
    summary = grade_batch(submissions, out=out, lab=lab, jobs=2, timeout=TIMEOUT, progress=False, log=lambda _: None)
    return out, killed_saved, summary


def test_a_killed_batch_resumes_with_only_the_unsaved_submissions(resumed):
    out, killed_saved, summary = resumed
    assert 1 <= killed_saved < 4
    assert summary.submissions == 5 and summary.refused == 1
    assert summary.reused == killed_saved and summary.graded == 4 - killed_saved
    assert not list(out.glob(".staging")) and not list(out.rglob(".warblr-tmp*"))


def test_gradebook_scores_partial_credit_hangs_crashes_and_refusals(resumed):
    import pandas as pd

    out, _, _ = resumed
    grades = pd.read_csv(out / "grades.csv", dtype={"id": str}).set_index("id")
    checks = ["logmel: test_double", "logmel: test_rows", "logmel: test_hidden"]
    assert list(grades.columns) == ["name", "email", "total", "max"] + checks + ["late", "status"]
    for key, (total, points) in EXPECTED.items():
        assert grades.loc[key, "total"] == total, key
        assert list(grades.loc[key, checks]) == points, key
        assert grades.loc[key, "max"] == (9 if key != "eve" else 0)
    assert set(grades.index[grades["status"] == "needs a look"]) == {"carol", "dave", "eve"}
    summary = (out / "summary.md").read_text()
    assert "| logmel: test_rows | 4 | 40% |" in summary  # alice, dave pass; bob partial; carol hangs; eve refused
    assert "carol: 1 check(s) hit the time limit" in summary and "eve: refused at intake" in summary
    assert "answers.py" in summary  # the intake names the link
    bob = json.loads((out / "students" / "bob" / "results.json").read_text())
    rows = next(test for test in bob["tests"] if test["name"] == "logmel: test_rows")
    assert rows["score"] == 3 and rows["output"].startswith("Partial credit: 3 of 4 points")
    feedback = (out / "students" / "dave" / "feedback.md").read_text()
    assert "(a hidden check: its details are not shown)" in feedback and "Score: 4 / 9" in feedback
    for image in ("scores.png", "pass_rates.png"):
        assert (out / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.stat(out).st_mode & 0o077 == 0  # the gradebook is its owner's only


def test_canvas_csv_reads_back_with_canvas_columns(resumed):
    import pandas as pd

    out, _, _ = resumed
    canvas = pd.read_csv(out / "canvas.csv", dtype={"SIS User ID": str})
    assert list(canvas.columns) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "warblr lab"]
    assert dict(zip(canvas["SIS User ID"], canvas["warblr lab"])) == {key: total for key, (total, _) in
                                                                      EXPECTED.items()}


def test_a_rerun_with_nothing_changed_grades_nothing(resumed, course):
    out, _, _ = resumed
    lab, submissions = course
    before = (out / "grades.csv").read_bytes()
    summary = grade_batch(submissions, out=out, lab=lab, jobs=2, timeout=TIMEOUT, progress=False,
                          similarity=True, log=lambda _: None)
    assert summary.graded == 0 and summary.reused == 4
    assert (out / "grades.csv").read_bytes() == before
    pairs = (out / "similarity.csv").read_text().splitlines()
    assert pairs[0] == "a,b,share_of_a_in_b,share_of_b_in_a,shared_fingerprints"
    assert all(row.split(",")[0] != "eve" and row.split(",")[1] != "eve" for row in pairs[1:])  # refused: unread
    assert "Code similarity between submissions" in (out / "similarity.html").read_text()


def test_a_sample_scores_as_grade_run_alone(resumed, course, tmp_path):
    out, _, _ = resumed
    lab, submissions = course
    for key in ("bob",):
        alone = tmp_path / f"{key}.json"
        run = subprocess.run([sys.executable, "-m", "warblr", "grade", "run", "--root", str(lab), "--impl",
                              str(submissions / key), "--timeout", str(TIMEOUT), "--grade-json", str(alone)],
                             capture_output=True, text=True, timeout=300)
        assert alone.is_file(), run.stdout + run.stderr
        expected = {test["name"]: test["score"] for test in json.loads(alone.read_text())["tests"]}
        batch = {test["name"]: test["score"]
                 for test in json.loads((out / "students" / key / "results.json").read_text())["tests"]}
        assert batch == expected


def test_a_bad_created_at_in_an_export_reaches_the_instructor_and_costs_only_the_late_flag(course, tmp_path):
    lab, _ = course
    export = tmp_path / "export"
    write_submission(export / "submission_1", GOOD)
    write_submission(export / "submission_2", GOOD)
    (export / "submission_metadata.yml").write_text(
        "submission_1:\n  :submitters:\n  - :name: Ann\n    :sid: '11'\n  :created_at: sometime on friday\n"
        "submission_2:\n  :submitters:\n  - :name: Ben\n    :sid: '12'\n"
        "  :created_at: 2026-12-01 10:00:00.000000000 -08:00\n")
    out = tmp_path / "out"
    summary = grade_batch(export, out=out, lab=lab, jobs=1, timeout=TIMEOUT, due="2026-12-01T09:00:00-08:00",
                          progress=False, log=lambda _: None)
    assert summary.graded == 2
    rows = {row["id"]: row for row in csv.DictReader((out / "grades.csv").open())}
    assert rows["11"]["total"] == rows["12"]["total"] == "9"  # graded all the same
    assert (rows["11"]["late"], rows["11"]["status"]) == ("", "needs a look")  # late unknown, flagged
    assert (rows["12"]["late"], rows["12"]["status"]) == ("yes", "graded")
    note = "submission_metadata.yml: submission_1: :created_at: not a date and time: 'sometime on friday'"
    summary_text = (out / "summary.md").read_text().replace("\\_", "_")  # markdown-escaped
    assert note in summary_text and str(tmp_path) not in summary_text.split(note)[0].splitlines()[-1]


@pytest.fixture(scope="module")
def ray_session():
    """A real local Ray with two CPUs (reused if this test session already started one)."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    if started:
        ray.shutdown()


@pytest.mark.slow
def test_ray_batch_writes_the_same_bytes_as_the_local_batch(resumed, course, ray_session, tmp_path):
    """With a zip submission added, the local batch (resumed: grades the zip) and Ray give the same bytes."""
    out, _, _ = resumed
    lab, submissions = course
    wrapped = tmp_path / "frank"
    write_submission(wrapped / "my-lab", GOOD)
    with zipfile.ZipFile(submissions / "frank.zip", "w") as archive:
        for path in sorted(wrapped.rglob("*.py")):
            archive.write(path, path.relative_to(wrapped).as_posix())
    try:
        local = grade_batch(submissions, out=out, lab=lab, jobs=2, timeout=TIMEOUT, progress=False,
                            log=lambda _: None)
        on_ray = tmp_path / "ray"
        summary = grade_batch(submissions, out=on_ray, lab=lab, jobs=2, ray="auto", timeout=TIMEOUT,
                              progress=False, log=lambda _: None)
    finally:
        (submissions / "frank.zip").unlink()
    assert local.graded == 1 and summary.graded == 5
    names = ["grades.csv", "canvas.csv", "summary.md", "scores.png", "pass_rates.png"]
    names += [path.relative_to(out).as_posix() for path in (out / "students").glob("*/*")
              if path.name in ("results.json", "feedback.md")]
    assert len(names) == 5 + 12
    assert "frank,frank,,9,9,3,4,2,,graded" in (out / "grades.csv").read_text()
    for name in names:
        assert (on_ray / name).read_bytes() == (out / name).read_bytes(), name
