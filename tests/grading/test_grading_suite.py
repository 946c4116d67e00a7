"""Meta-tests of the real lab: the graded checks in exercises/ against solutions/ and the stubs.

- ``pytest exercises --impl=solutions`` scores full marks;
- the untouched stubs score 0, every check *not attempted*;
- both runs write a well-formed Gradescope results.json;
- ``warblr grade handout`` builds a student copy without solutions/ or hidden
  checks whose checks pass on the solutions from stored reference data.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from warblr.grading.report import VISIBILITIES

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not list((ROOT / "exercises").glob("test_*.py")) or not (ROOT / "solutions" / "__init__.py").is_file(),
    reason="the lab's exercises/ checks or solutions/ are not in this checkout")


def grade(root, impl, out, *args):
    """Run the graded checks in ``root`` against ``impl``; return (process, results).

    With the public input seed (``--grade-json`` alone would draw a random one): verdicts stay deterministic;
    test_input_seeds.py covers the other seeds.
    """
    seed = [] if any(arg.startswith("--input-seed") for arg in args) else ["--input-seed=public"]
    run = subprocess.run([sys.executable, "-m", "pytest", "exercises", f"--impl={impl}", f"--grade-json={out}",
                          "-p", "no:cacheprovider", "-q", *seed, *args], cwd=root, capture_output=True, text=True,
                         timeout=600)
    return run, json.loads(Path(out).read_text())


@pytest.fixture(scope="module")
def solutions_run(tmp_path_factory):
    return grade(ROOT, "solutions", tmp_path_factory.mktemp("solutions") / "results.json")


@pytest.fixture(scope="module")
def stubs_run(tmp_path_factory):
    return grade(ROOT, "exercises", tmp_path_factory.mktemp("stubs") / "results.json")


def hidden_check_names(folder):
    """Names of test functions/classes decorated visibility("hidden") in ``folder``'s test modules."""
    names = set()
    for path in folder.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and "hidden" in str(
                    [ast.unparse(d) for d in node.decorator_list if "visibility" in ast.unparse(d)]):
                names.add(node.name)
    return names


def assert_well_formed(results):
    """Gradescope's results.json: types, status values, sums, visibilities."""
    assert set(results) >= {"score", "max_score", "execution_time", "output", "tests"}
    assert isinstance(results["output"], str) and results["execution_time"] >= 0
    assert results["tests"], "no graded checks"
    names, numbers = set(), set()
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] in ("passed", "failed")
        assert test["visibility"] in VISIBILITIES
        assert 0 <= test["score"] <= test["max_score"]
        assert isinstance(test["output"], str) and len(test["output"]) < 10_000
        assert test["name"] not in names and test["number"] not in numbers
        names.add(test["name"])
        numbers.add(test["number"])
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))
    assert results["max_score"] == pytest.approx(sum(t["max_score"] for t in results["tests"]))
    json.dumps(results)


@pytest.mark.slow  # a full grading run (~15 s); the fast pass grades the solutions' reference checks
# (test_input_seeds.py) and every check on the stubs (test_lazy.py's 'none')
def test_solutions_score_full_marks(solutions_run):
    run, results = solutions_run
    assert run.returncode == 0, run.stdout[-5000:]
    assert results["score"] == results["max_score"] > 0
    assert {t["status"] for t in results["tests"]} == {"passed"}
    assert "(100.0 %)" in run.stdout
    assert_well_formed(results)


@pytest.mark.slow  # a full grading run; test_grading_plugin.py and the lazy gallery's 'none' cover it fast
def test_untouched_stubs_are_not_attempted(stubs_run, solutions_run):
    run, results = stubs_run
    assert run.returncode == 1
    assert results["score"] == 0
    assert results["max_score"] == solutions_run[1]["max_score"]
    for test in results["tests"]:
        assert test["extra_data"]["outcome"] == "not_attempted", (test["name"], test["output"][:500])
        assert test["output"].startswith("not attempted")
    assert "Traceback" not in run.stdout
    assert f"{len(results['tests'])} not attempted" in run.stdout.splitlines()[-1]
    assert_well_formed(results)


@pytest.mark.slow  # a full grading run (~15 s); the fast pass grades the solutions' reference checks
# (test_input_seeds.py) and every check on the stubs (test_lazy.py's 'none')
def test_hidden_checks_are_marked_hidden_in_results(solutions_run):
    hidden = hidden_check_names(ROOT / "exercises")
    for test in solutions_run[1]["tests"]:
        function = test["name"].split(": ", 1)[1].split("[")[0]
        assert (test["visibility"] == "hidden") == (function in hidden), test["name"]


@pytest.fixture
def handout(lab_handout):
    return lab_handout


def test_handout_has_no_solutions_and_no_hidden_checks(handout):
    assert not (handout / "solutions").exists()
    assert (handout / "conftest.py").is_file() and (handout / "README.md").is_file()
    assert (handout / "exercises" / "reference_data").is_dir()
    for name in ("resampling", "logmel", "embedding", "classify"):
        assert (handout / "exercises" / f"{name}.py").read_text() == (ROOT / "exercises" / f"{name}.py").read_text()
    hidden = hidden_check_names(ROOT / "exercises")
    text = "\n".join(path.read_text() for path in (handout / "exercises").glob("test_*.py"))
    assert not [name for name in hidden if f"def {name}(" in text or f"class {name}" in text]


@pytest.mark.slow  # a full grading run (~15 s); the fast pass grades the solutions' reference checks
# (test_input_seeds.py) and every check on the stubs (test_lazy.py's 'none')
def test_handout_says_how_many_hidden_checks_and_points_run_only_at_grading(handout, solutions_run):
    hidden = [test for test in solutions_run[1]["tests"] if test["visibility"] == "hidden"]
    visible = [test for test in solutions_run[1]["tests"] if test["visibility"] != "hidden"]
    assert hidden, "the lab has no hidden check"
    points = sum(test["max_score"] for test in hidden)
    readme = (handout / "README.md").read_text()
    total = (f"| **total** | **{len(visible)} ({sum(t['max_score'] for t in visible):g})** | "
             f"**{len(hidden)} ({points:g})** |")
    assert total in readme and "hidden checks, run only at grading" in readme
    assert f"warblr_hidden_checks = {len(hidden)} checks, {points:g} points" in (handout / "pytest.ini").read_text()


@pytest.mark.slow  # a subset of test_handout_checks_pass_on_the_solutions, also slow
def test_handout_reference_checks_pass_on_the_solutions(handout, tmp_path):
    # only the checks that compare with the stored reference data, to keep the default run fast
    run, results = grade(handout, ROOT / "solutions", tmp_path / "results.json", "-k", "solution")
    assert run.returncode == 0, run.stdout[-5000:]
    assert "in hidden checks that run only at grading" in run.stdout
    assert results["tests"] and results["score"] == results["max_score"]
    assert_well_formed(results)


@pytest.mark.slow
def test_handout_checks_pass_on_the_solutions(handout, tmp_path):
    run, results = grade(handout, ROOT / "solutions", tmp_path / "results.json")
    assert run.returncode == 0, run.stdout[-5000:]
    assert results["score"] == results["max_score"] > 0
    assert_well_formed(results)
