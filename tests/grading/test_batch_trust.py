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
- (Red team, stop 36.) The refusal was the driver's alone and skipped Ray: run
  as another user, ``grade batch --ray local`` graded a submission that loaded
  solutions/ at run time (134/134) and rewrote two classmates' staged files
  (0/134 each). Now each grading checks its own process's user where it runs
  (a Ray node's workers need not be the driver's user), and a private local
  Ray is refused up front like a local batch. A student's handout given as
  ``--lab`` graded every check on the public inputs, whose answers it ships:
  refused.
"""

import json
import os
import pwd
import subprocess
import sys
from types import SimpleNamespace

import pytest

from warblr.errors import InvalidArgumentError
from warblr.grading import batch
from warblr.cli import build_parser
from warblr.grading.submissions import Student
from warblr.raycluster import RaySettings

NOT_ROOT = 1000


def not_root(monkeypatch):
    monkeypatch.setattr(batch.os, "geteuid", lambda: NOT_ROOT)


def handout_lab(folder, seeds):
    """A lab folder without solutions/ whose reference data stores ``seeds``."""
    data = folder / "exercises" / "reference_data"
    data.mkdir(parents=True)
    (data / "manifest.json").write_text(json.dumps({"seeds": seeds}))
    return folder


def test_a_batch_refuses_to_run_student_code_as_its_own_user(monkeypatch, tmp_path):
    monkeypatch.setattr(batch.os, "geteuid", lambda: 1000)
    with pytest.raises(InvalidArgumentError, match="not running as root") as refused:
        batch.grade_batch(tmp_path / "none", out=tmp_path / "out", lab=tmp_path, progress=False, log=print)
    assert "--trust-submissions" in str(refused.value)
    assert not (tmp_path / "out").exists()  # refused before anything was written


@pytest.mark.parametrize("address", ["local", " Local "])
def test_a_private_local_ray_is_refused_up_front_like_a_local_batch(monkeypatch, tmp_path, address):
    not_root(monkeypatch)
    with pytest.raises(InvalidArgumentError, match="not running as root") as refused:
        batch.grade_batch(tmp_path / "none", out=tmp_path / "out", lab=tmp_path, ray=address, progress=False,
                          log=print)
    assert refused.value.parameter == "trust_submissions"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("address", "private"), [(" Local ", True), ("LOCAL", True), (" auto", False),
                                                  ("10.0.0.2:6379 ", False)])
def test_the_batch_and_ray_agree_on_what_a_private_local_ray_is(address, private):
    # The batch's trust check once read " Local " as a private Ray while connect() passed it to ray.init as it
    # was: one reading now, RaySettings's, for both.
    settings = RaySettings(address)
    assert settings.private is private
    assert settings.address == address.strip().lower() if private or "auto" in address else address.strip()


def test_each_grading_refuses_to_run_student_code_where_its_process_is_not_root(monkeypatch, tmp_path):
    """On another Ray cluster the driver cannot know its nodes' users: each grading checks its own."""
    ran = []
    monkeypatch.setattr(batch, "run_checks", lambda **kwargs: ran.append(kwargs) or {"results": {}, "crashes": 0})
    not_root(monkeypatch)
    options = batch.GradingOptions(lab=str(tmp_path))
    refused = batch.grade_submission(str(tmp_path), options)
    assert set(refused) == {"refused"} and not ran
    assert "--trust-submissions" in refused["refused"] and f"uid {NOT_ROOT}" in refused["refused"]
    graded = batch.grade_submission(str(tmp_path), batch.GradingOptions(lab=str(tmp_path), trusted=True))
    assert len(ran) == 1 and "refused" not in graded
    # Trust is not part of a result: a trusted rerun reuses what an untrusted-as-root run saved.
    assert batch.GradingOptions(lab="x", trusted=True).fingerprint_fields() == \
        batch.GradingOptions(lab="x").fingerprint_fields()


def test_a_grading_run_by_a_real_other_user_refuses(tmp_path):
    """The same, with no monkeypatching: the grading runs as the user nobody (what a Ray node's worker may be)."""
    if os.geteuid() != 0:
        pytest.skip("needs root (to run a process as the user nobody)")
    tmp_path.chmod(0o755)
    code = ("import json, sys\nfrom warblr.grading.batch import GradingOptions, grade_submission\n"
            "print(json.dumps(grade_submission(sys.argv[1], GradingOptions(lab=sys.argv[1]))))\n")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], user="nobody", capture_output=True,
                         text=True, timeout=120, cwd="/")
    if run.returncode != 0 and "warblr" not in run.stderr[-2000:]:
        pytest.skip(f"the user nobody cannot run this Python here: {run.stderr[-300:]}")
    assert run.returncode == 0, run.stderr[-2000:]
    refused = json.loads(run.stdout)["refused"]
    assert "not running as root" in refused and f"uid {pwd.getpwnam('nobody').pw_uid}" in refused


def test_a_refusal_from_a_node_stops_the_batch_and_saves_nothing_for_it():
    saved = []
    store = SimpleNamespace(save=lambda *args: saved.append(args))
    rows = {"ada": SimpleNamespace(problem="", results={})}
    with pytest.raises(InvalidArgumentError, match="not running as root") as refused:
        batch._finish("ada", "mark", lambda: {"refused": batch.UNTRUSTED_REASON + " (uid 1000 on node-2)"}, rows,
                      store)
    assert refused.value.parameter == "trust_submissions" and "node-2" in str(refused.value)
    assert not saved  # no zero saved for a submission nobody graded; a resume grades it


def test_a_handout_is_refused_as_the_lab_of_a_batch(tmp_path):
    handout = handout_lab(tmp_path / "handout", [0])
    with pytest.raises(InvalidArgumentError, match="public inputs") as refused:
        batch.grade_batch(tmp_path / "none", out=tmp_path / "out", lab=handout, progress=False, log=print)
    assert refused.value.parameter == "lab" and str(handout) in str(refused.value)
    assert not (tmp_path / "out").exists()
    assert batch.ships_only_public_answers(handout)
    assert not batch.ships_only_public_answers(handout_lab(tmp_path / "package", [0, 111]))  # Gradescope's
    with_solutions = handout_lab(tmp_path / "lab", [0])
    (with_solutions / "solutions").mkdir()
    (with_solutions / "solutions" / "__init__.py").write_text("")
    assert not batch.ships_only_public_answers(with_solutions)
    own_checks = tmp_path / "own"  # no stored answers at all: checks of its own (the batch tests' tiny labs)
    (own_checks / "exercises").mkdir(parents=True)
    assert not batch.ships_only_public_answers(own_checks)


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
