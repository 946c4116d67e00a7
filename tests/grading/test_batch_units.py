"""The parts of ``warblr grade batch`` that need no grading: archives, Gradescope exports, fingerprints,
the gradebook files, ``warblr grade check`` and the handout's points table. All fast."""

import json
import stat
import zipfile
from datetime import date, datetime, timezone

import pytest

from warblr.errors import InvalidArgumentError, SubmissionError
from warblr.grading.batch import (GradingOptions, batch_input_seed, checks_digest, default_jobs, fingerprint,
                                  grade_batch)
from warblr.grading.gradebook import Row, canvas_csv, grades_csv, summary_markdown
from warblr.grading.handout import hidden_summary, points_table
from warblr.grading.layout import check_layout
from warblr.grading.submissions import Student, extract_zip, find_submissions, read_gradescope_metadata

MODULES = {"resampling.py": b"", "logmel.py": b"def frame(x):\n    return x\n", "embedding.py": b"",
           "classify.py": b""}


def make_zip(path, members):
    """A zip at ``path``; ``members`` is ``[(name, bytes)]`` or ``[(ZipInfo, bytes)]``."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def symlink_member(name, target):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


@pytest.mark.parametrize("member, reason", [
    (("/etc/cron.d/x", b"x"), "an absolute path"),
    (("sub/../../escape.py", b"x"), "climbs out"),
    (symlink_member("sub/answers.py", b"/etc/shadow"), "a symbolic link"),
], ids=["absolute", "dotdot", "symlink"])
def test_unsafe_zip_members_are_refused_by_name_and_nothing_is_kept(tmp_path, member, reason):
    archive = make_zip(tmp_path / "s.zip", [("sub/logmel.py", b"ok"), member])
    with pytest.raises(SubmissionError, match=reason) as caught:
        extract_zip(archive, tmp_path / "out")
    assert caught.value.path == (member[0].filename if isinstance(member[0], zipfile.ZipInfo) else member[0])
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "escape.py").exists()


def test_a_zip_bomb_is_stopped_at_the_inflated_bytes_not_the_headers(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", [("a.py", b"0" * (1 << 20)), ("b.py", b"0" * (1 << 20))])
    with pytest.raises(SubmissionError, match="inflates past 1000000 bytes"):
        extract_zip(archive, tmp_path / "one", max_member_bytes=1_000_000)
    with pytest.raises(SubmissionError, match="the archive inflates past 1500000 bytes"):
        extract_zip(archive, tmp_path / "all", max_total_bytes=1_500_000)
    with pytest.raises(SubmissionError, match="more than 1 members"):
        extract_zip(archive, tmp_path / "count", max_members=1)
    assert extract_zip(archive, tmp_path / "fine").joinpath("b.py").stat().st_size == 1 << 20


METADATA = """\
submission_101:
  :submitters:
  - :name: Ada Lovelace
    :sid: '0042'
    :email: ada@example.edu
  :created_at: 2026-12-01 10:00:00.000000000 -08:00
  :score: 
  :late: true
submission_102:
  :submitters:
  - :name: Alan Turing
    :sid: '0007'
    :email: alan@example.edu
  - :name: Grace Hopper
    :sid: '0099'
    :email: grace@example.edu
  :created_at: 2026-12-01 11:00:00.000000000 -08:00
"""


def test_a_gradescope_export_zip_gives_names_ids_late_flags_and_groups(tmp_path):
    members = [("assignment_9_export/submission_metadata.yml", METADATA.encode())]
    members += [(f"assignment_9_export/submission_101/{name}", data) for name, data in MODULES.items()]
    members += [(f"assignment_9_export/submission_102/exercises/{name}", data) for name, data in MODULES.items()]
    entries = find_submissions(make_zip(tmp_path / "export.zip", members), scratch=tmp_path / "scratch")
    assert [entry.key for entry in entries] == ["0007", "0042"]
    group, ada = entries
    assert ada.students == [Student("0042", "Ada Lovelace", "ada@example.edu")] and ada.late is True
    assert [s.name for s in group.students] == ["Alan Turing", "Grace Hopper"] and group.late is None
    assert (ada.folder / "logmel.py").read_bytes() == MODULES["logmel.py"]
    assert (group.folder / "exercises" / "logmel.py").is_file()
    due = "2026-12-01T10:30:00-08:00"  # Ada at 10:00 is on time, the group at 11:00 is late
    late = {e.key: e.late for e in find_submissions(tmp_path / "export.zip", scratch=tmp_path / "s2", due=due)}
    assert late == {"0042": False, "0007": True}
    with pytest.raises(InvalidArgumentError, match="--due: not a date and time: 'friday'"):
        find_submissions(tmp_path / "export.zip", scratch=tmp_path / "s3", due="friday")


def gradescope_export(folder, created_at):
    """An export folder: :data:`METADATA` and a third submission whose ``:created_at:`` line is ``created_at``."""
    folder.mkdir()
    record = f"submission_103:\n  :submitters:\n  - :name: Mallory\n    :sid: '0003'\n  :created_at: {created_at}\n"
    (folder / "submission_metadata.yml").write_text(METADATA + record)
    for name in ("submission_101", "submission_102", "submission_103"):
        (folder / name).mkdir()
        (folder / name / "logmel.py").write_bytes(MODULES["logmel.py"])
    return folder


@pytest.mark.parametrize("created_at, why", [
    ("yesterday-ish", "not a date and time: 'yesterday-ish'"),
    ("2026-12-01", "a date without a time"),
    ("1764612000", "expected a date and time, got int"),
    ("2026-02-30 10:00:00 -08:00", "not a date and time: '2026-02-30 10:00:00 -08:00'"),
    ("2026-12-01 10:00:00", "no time zone"),
    ("'2026-12-01T10:00:00'", "no time zone"),
    ('"\\e[2J\\u202e' + "9" * 500 + '"', "not a date and time: '\\x1b[2J\\u202e999"),
], ids=["text", "date-only", "integer", "no-such-day", "naive-timestamp", "naive-text", "escapes-long"])
def test_a_malformed_created_at_costs_only_its_late_flag_and_is_reported(tmp_path, created_at, why):
    export = gradescope_export(tmp_path / "export", created_at)
    entries = find_submissions(export, scratch=tmp_path / "scratch", due="2026-12-01T10:30:00-08:00")
    assert {e.key: e.late for e in entries} == {"0003": None, "0007": True, "0042": False}
    mallory = entries[0]
    assert mallory.folder == export / "submission_103" and not mallory.problem  # still graded
    named = "submission_metadata.yml: submission_103: :created_at: "  # the student sees it: no grader paths
    assert mallory.note.startswith(named) and why in mallory.note and "late flag left unknown" in mallory.note
    assert mallory.note.isprintable() and len(mallory.note) < len(named) + 150  # the 500 nines are cut
    assert [e.note for e in entries[1:]] == ["", ""]
    problems, later = [], datetime(2026, 12, 2, tzinfo=timezone.utc)
    metadata = read_gradescope_metadata(export / "submission_metadata.yml", due=later, problems=problems)
    assert metadata["submission_103"][1] is None and metadata["submission_101"][1] is False
    assert problems == [("submission_103", mallory.note)]
    with pytest.raises(InvalidArgumentError, match="submission_103: :created_at: ") as caught:
        read_gradescope_metadata(export / "submission_metadata.yml", due=later)
    assert caught.value.parameter == "submissions"  # the file is at fault, not --due


def test_a_malformed_due_stops_a_batch_before_it_makes_or_locks_anything(tmp_path):
    (tmp_path / "submissions").mkdir()
    with pytest.raises(InvalidArgumentError, match="^--due: not a date and time: 'friday'") as caught:
        grade_batch(tmp_path / "submissions", out=tmp_path / "out", lab=tmp_path, due="friday", progress=False,
                    log=lambda _: None, trust_submissions=True)
    assert caught.value.parameter == "due" and not (tmp_path / "out").exists()


def test_without_due_a_malformed_created_at_is_not_read(tmp_path):
    export = gradescope_export(tmp_path / "export", "yesterday-ish")
    entries = find_submissions(export, scratch=tmp_path / "scratch")
    assert [(e.key, e.late, e.note) for e in entries] == [("0003", None, ""), ("0007", None, ""), ("0042", True, "")]


@pytest.mark.parametrize("due", ["friday", "2026-02-30T10:00-08:00", "0001-01-01", date(2026, 12, 1), 1764612000],
                         ids=["text", "no-such-day", "out-of-range", "date", "integer"])
def test_a_malformed_due_is_refused_naming_the_option(tmp_path, due):
    export = gradescope_export(tmp_path / "export", "2026-12-01 10:00:00 -08:00")
    with pytest.raises(InvalidArgumentError, match="^--due: ") as caught:
        find_submissions(export, scratch=tmp_path / "scratch", due=due)
    assert caught.value.parameter == "due"


def test_a_bad_submissions_argument_is_named(tmp_path):
    with pytest.raises(InvalidArgumentError, match="SUBMISSIONS .*not a folder or a zip") as caught:
        find_submissions(tmp_path / "missing", scratch=tmp_path / "s")
    assert caught.value.parameter == "submissions"
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "submission_metadata.yml").write_text("- just\n- a list\n")
    with pytest.raises(InvalidArgumentError, match="submission_metadata.yml: expected a mapping"):
        find_submissions(tmp_path / "export", scratch=tmp_path / "s2")


def test_a_refused_student_zip_is_listed_and_the_others_go_on(tmp_path):
    make_zip(tmp_path / "mallory.zip", [("../../x.py", b"x")])
    (tmp_path / "alice").mkdir()
    entries = find_submissions(tmp_path, scratch=tmp_path / ".scratch")
    assert [(e.key, bool(e.problem)) for e in entries] == [("alice", False), ("mallory", True)]
    assert "climbs out" in entries[1].problem


def test_fingerprint_names_the_files_the_checks_the_options(tmp_path):
    lab = tmp_path / "lab"
    (lab / "exercises").mkdir(parents=True)
    (lab / "exercises" / "test_a.py").write_text("def test_a(impl):\n    pass\n")
    (lab / "exercises" / "logmel.py").write_text("stub")
    options = GradingOptions(lab=str(lab))
    base = fingerprint(MODULES, checks=checks_digest(lab), options=options)
    assert fingerprint(dict(MODULES), checks=checks_digest(lab), options=options) == base
    assert fingerprint({**MODULES, "logmel.py": b"other"}, checks=checks_digest(lab), options=options) != base
    assert fingerprint(MODULES, checks=checks_digest(lab), options=GradingOptions(lab=str(lab), timeout=5)) != base
    assert fingerprint(MODULES, checks=checks_digest(lab), options=GradingOptions(lab=str(lab), threads=8)) == base
    (lab / "exercises" / "logmel.py").write_text("the stub changed: not a check")
    (lab / "exercises" / "lab.ipynb").write_text("{}")
    assert fingerprint(MODULES, checks=checks_digest(lab), options=options) == base
    (lab / "exercises" / "reference_data").mkdir()
    (lab / "exercises" / "reference_data" / "hann.npy").write_bytes(b"values")
    with_data = fingerprint(MODULES, checks=checks_digest(lab), options=options)
    assert with_data != base
    (lab / "pytest.ini").write_text("[pytest]\n")
    assert fingerprint(MODULES, checks=checks_digest(lab), options=options) != with_data
    (lab / "exercises" / "test_a.py").write_text("def test_a(impl):\n    assert False\n")
    assert fingerprint(MODULES, checks=checks_digest(lab), options=options) != base
    with pytest.raises(InvalidArgumentError, match="no exercises/"):
        checks_digest(tmp_path)


def test_default_jobs_says_why():
    jobs, why = default_jobs()
    assert jobs >= 1 and f"{jobs} parallel grader(s)" in why and "core" in why


def results(scores, maximum=(3, 4)):
    tests = [{"name": name, "score": score, "max_score": top, "status": "passed" if score == top else "failed",
              "output": "passed" if score == top else f"Hint: fix {name}\n\nassert ..."}
             for name, score, top in zip(("a", "b"), scores, maximum)]
    return {"score": sum(scores), "max_score": sum(maximum), "tests": tests}


def test_gradebook_files_from_rows():
    rows = [Row("s1", [Student("s1", "One, Ann", "a@x")], True, results((3, 2.5))),
            Row("s2", [Student("s2", "Two", "")], None, results((0, 4)), problem="1 check(s) hit the time limit")]
    grades = grades_csv(rows).splitlines()
    assert grades[0] == "id,name,email,total,max,a,b,late,status"
    assert grades[1] == 's1,"One, Ann",a@x,5.5,7,3,2.5,yes,graded'
    assert grades[2] == "s2,Two,,4,7,0,4,,needs a look"
    assert canvas_csv(rows, assignment="Lab 1 (12)").splitlines()[:2] == [
        "Student,ID,SIS User ID,SIS Login ID,Section,Lab 1 (12)", '"One, Ann",,s1,a@x,,5.5']
    summary = summary_markdown(rows)
    assert "| a | 3 | 50% | 1.5 | fix a (1) |" in summary and "| b | 4 | 50% | 3.25 | fix b (1) |" in summary
    assert "- s2: 1 check(s) hit the time limit" in summary and "Mean 4.75" in summary


@pytest.fixture
def checks_lab(tmp_path):
    (tmp_path / "lab" / "exercises").mkdir(parents=True)
    (tmp_path / "lab" / "exercises" / "test_logmel.py").write_text(
        "def test_frame(impl):\n    impl.logmel.frame(1)\n\ndef test_hann(impl):\n    impl.logmel.periodic_hann(4)\n")
    return tmp_path / "lab"


def test_grade_check_accepts_a_good_layout(tmp_path, checks_lab):
    folder = tmp_path / "mine" / "exercises"
    folder.mkdir(parents=True)
    for name, data in MODULES.items():
        (folder / name).write_bytes(data)
    (folder / "logmel.py").write_text("import numpy as np\nfrom . import helpers\n\ndef frame(x):\n    return x\n\n"
                                      "def periodic_hann(n):\n    return np.hanning(n)\n")
    (folder / "helpers.py").write_text("")
    report = check_layout(tmp_path / "mine", lab=checks_lab)
    assert report.ok, report.lines()


def test_grade_check_names_every_layout_problem(tmp_path, checks_lab):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "Logmel.py").write_text("def frame(x):\n    return x\n")
    (folder / "resampling.py").write_text("import resampy\n")
    (folder / "embedding.py").write_text("def broken(:\n")
    (folder / "classify.py").write_text("import logmel\nimport no_such_package_anywhere\nfrom .missing import x\n")
    problems = "\n".join(check_layout(folder, lab=checks_lab).problems)
    assert "logmel.py is missing (names are case-sensitive" in problems
    assert "resampling.py: your resampling.py imports resampy (line 1)" in problems
    assert "embedding.py does not parse: SyntaxError" in problems
    assert "classify.py line 1: `import logmel` works only from your own folder" in problems
    assert "classify.py line 2: imports no_such_package_anywhere, which is not installed" in problems
    assert "classify.py line 3: imports .missing, which is not in your submission" in problems
    (folder / "Logmel.py").rename(folder / "logmel.py")
    assert "logmel.py does not define periodic_hann" in "\n".join(check_layout(folder, lab=checks_lab).problems)
    (folder / "link.py").symlink_to(folder / "classify.py")
    refused = check_layout(folder, lab=checks_lab)
    assert len(refused.problems) == 1 and "link.py: is a symbolic link" in refused.problems[0]


def test_grade_check_reads_a_zip_and_refuses_an_unsafe_one(tmp_path, checks_lab):
    good = make_zip(tmp_path / "good.zip", [(f"lab/{name}", data) for name, data in MODULES.items()])
    report = check_layout(good, lab=checks_lab)
    assert report.problems == ["logmel.py does not define periodic_hann (the checks call it)"]
    bad = make_zip(tmp_path / "bad.zip", [("/abs.py", b"")])
    assert "an absolute path" in check_layout(bad, lab=checks_lab).problems[0]


def test_handout_points_table_counts_hidden_checks_and_points():
    checks = [{"exercise": "logmel", "visibility": "visible", "points": 3.0, "partial": False},
              {"exercise": "logmel", "visibility": "hidden", "points": 2.0, "partial": True},
              {"exercise": "classify", "visibility": "hidden", "points": 1.5, "partial": False}]
    table = points_table(checks).splitlines()
    assert table[2] == "| logmel | 1 (3) | 1 (2) | 1 |"
    assert table[3] == "| classify | 0 (0) | 1 (1.5) | 0 |"
    assert table[4] == "| **total** | **1 (3)** | **2 (3.5)** | **1** |"
    assert hidden_summary(checks) == "2 checks, 3.5 points"
    json.dumps(checks)


def test_a_batch_draws_one_secret_input_seed_and_keeps_it(tmp_path):
    lab, out = tmp_path / "lab", tmp_path / "out"
    (lab / "solutions").mkdir(parents=True)
    out.mkdir()
    assert batch_input_seed(out, lab) is None  # no solutions/__init__.py: each grading picks a stored seed
    (lab / "solutions" / "__init__.py").write_text("")
    seed = batch_input_seed(out, lab)
    assert isinstance(seed, int) and seed > 0  # never the public seed 0
    assert batch_input_seed(out, lab) == seed  # a resumed or rerun batch grades on the same inputs
    (tmp_path / "other").mkdir()
    assert batch_input_seed(tmp_path / "other", lab) != seed  # drawn fresh for another batch
    options = GradingOptions(lab=str(lab), input_seed=seed)
    args = options.pytest_args(input_seed_file="/private/seed.json")
    assert "--input-seed-file=/private/seed.json" in args and not any(str(seed) in arg for arg in args)
    assert options.fingerprint_fields()["input_seed"] == seed  # another seed regrades
