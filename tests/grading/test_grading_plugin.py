"""Meta-tests of the grading plugin on a tiny synthetic lab written to tmp_path.

Each test writes a fake ``exercises/`` package (the four modules plus graded
checks) and runs pytest on it in a child process, then reads the terminal
output and results.json.
"""

import json
import subprocess
import sys

import pytest

from warblr.cli import build_parser
from warblr.grading.handout import ROOT_CONFTEST, strip_hidden, write_tree
from warblr.grading.impl import GradedImpl, ImplImportError
from warblr.grading.plugin import parse_size
from warblr.grading.report import MAX_TEST_OUTPUT, Record, results_json, trim

CORRECT = {
    "resampling.py": "def to_mono(x):\n    return x\n",
    "logmel.py": "from .helpers import TWO\n\ndef double(x):\n    return TWO * x\n\ndef triple(x):\n    return 3 * x\n",
    "helpers.py": "TWO = 2\n",
    "embedding.py": "",
    "classify.py": "",
}

STUBS = {
    "resampling.py": "def to_mono(x):\n    raise NotImplementedError('write to_mono')\n",
    "logmel.py": "def double(x):\n    raise NotImplementedError\n\ndef triple(x):\n    raise NotImplementedError\n",
    "embedding.py": "",
    "classify.py": "",
}

CHECKS = {
    "test_logmel.py": '''\
import pytest


@pytest.mark.points(3)
@pytest.mark.hint("double: multiply by two")
def test_double(impl):
    assert impl.logmel.double(4) == 8


@pytest.mark.hint("triple: three times, not two")
def test_triple(impl):
    assert impl.logmel.triple(4) == 12


@pytest.mark.points(2)
@pytest.mark.visibility("hidden")
def test_double_hidden(impl):
    assert impl.logmel.double(0) == 0
''',
    "test_resampling.py": '''\
import pytest


@pytest.mark.points(1.5)
@pytest.mark.hint("to_mono: return mono input unchanged")
def test_to_mono(impl):
    assert impl.resampling.to_mono(5) == 5
''',
}


def make_lab(root, impl_files, checks=CHECKS, folder="exercises"):
    """A lab in ``root``: root conftest, ``folder``/ with ``impl_files`` and the checks."""
    files = {"conftest.py": ROOT_CONFTEST, "pytest.ini": "[pytest]\n", f"{folder}/__init__.py": ""}
    files.update({f"{folder}/{name}": text for name, text in impl_files.items()})
    files.update({f"exercises/{name}": text for name, text in checks.items()})
    write_tree(root, files)
    return root


#: Installed pytest plugins the synthetic lab has no use for: loading them took ~1 s of each child's ~1.4 s. The
#: grading plugin's partner pytest-timeout stays; grade_in_process, test_hostile_student.py and the slow pass's
#: `warblr grade run` and run_autograder gradings run with every installed plugin.
UNUSED_PLUGINS = ("hypothesispytest", "benchmark", "anyio", "platformdirs")


def run_pytest(root, *args):
    unused = [option for name in UNUSED_PLUGINS for option in ("-p", f"no:{name}")]
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *unused, *args], cwd=root,
                          capture_output=True, text=True, timeout=120)


def table_row(stdout, name):
    """The score-table row of ``name``: name, ``earned/max``, passed, partial, failed, not attempted."""
    for line in reversed(stdout.splitlines()):
        fields = line.split()
        if fields[:1] == [name] and len(fields) >= 8 and fields[2] == "/":
            return [fields[0], f"{fields[1]}/{fields[3]}"] + fields[4:8]
    raise AssertionError(f"no {name} row in the score table:\n{stdout}")


def by_name(results):
    return {test["name"]: test for test in results["tests"]}


def test_correct_package_scores_full_marks(tmp_path):
    make_lab(tmp_path, CORRECT, folder="mine")
    (tmp_path / "exercises" / "__init__.py").write_text("")
    run = run_pytest(tmp_path, "exercises", "--impl=mine", "--grade-json=out/results.json")
    assert run.returncode == 0, run.stdout
    assert "warblr grading" in run.stdout
    assert table_row(run.stdout, "TOTAL") == ["TOTAL", "7.5/7.5", "4", "0", "0", "0"] and "(100.0 %)" in run.stdout
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["score"] == results["max_score"] == 7.5
    assert {t["status"] for t in results["tests"]} == {"passed"}
    assert by_name(results)["logmel: test_double_hidden"]["visibility"] == "hidden"
    assert by_name(results)["logmel: test_double"]["max_score"] == 3
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name != "results.json"]  # no temp files left


def test_wrong_answer_loses_its_points_and_shows_its_hint(tmp_path):
    wrong = dict(CORRECT, **{"logmel.py": "def double(x):\n    return 2 * x\n\ndef triple(x):\n    return 2 * x\n"})
    make_lab(tmp_path, wrong)
    run = run_pytest(tmp_path, "exercises", "--grade-json=results.json")
    assert run.returncode == 1
    assert "triple: three times, not two" in run.stdout  # hint in the failure report and in the summary
    assert table_row(run.stdout, "logmel") == ["logmel", "5/6", "2", "0", "1", "0"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["score"] == 6.5 and results["max_score"] == 7.5
    failed = by_name(results)["logmel: test_triple"]
    assert failed["status"] == "failed" and failed["score"] == 0
    assert failed["output"].startswith("Hint: triple: three times, not two")
    assert "assert 8 == 12" in failed["output"]


def test_untouched_stubs_are_not_attempted(tmp_path):
    make_lab(tmp_path, STUBS)
    run = run_pytest(tmp_path, "exercises", "--grade-json=results.json")
    assert run.returncode == 1
    assert "4 not attempted" in run.stdout.splitlines()[-1]
    assert "Traceback" not in run.stdout and "raise NotImplementedError" not in run.stdout
    assert "logmel.double() still raises NotImplementedError" in run.stdout
    assert table_row(run.stdout, "TOTAL") == ["TOTAL", "0/7.5", "0", "0", "0", "4"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["score"] == 0
    for test in results["tests"]:
        assert test["status"] == "failed" and test["score"] == 0
        assert test["output"].startswith("not attempted")
        assert test["extra_data"]["outcome"] == "not_attempted"


def test_collect_only_grades_nothing_and_writes_no_results(tmp_path):
    make_lab(tmp_path, CORRECT)
    run = run_pytest(tmp_path, "exercises", "--collect-only", "-q", "--grade-json=results.json",
                     "--grade-list=listing.json", "--isolate")  # isolated: no fork server started either
    assert run.returncode == 0, run.stdout
    assert "warblr grading" not in run.stdout and "TOTAL" not in run.stdout and "stopped early" not in run.stdout
    assert not (tmp_path / "results.json").exists()
    assert len(json.loads((tmp_path / "listing.json").read_text())) == 4  # the handout's points table still comes


def test_not_implemented_raised_by_the_check_itself_is_a_failure(tmp_path):
    checks = {"test_logmel.py": "def test_check_bug(impl):\n    impl.logmel.double(1)\n    raise NotImplementedError\n"}
    make_lab(tmp_path, CORRECT, checks=checks)
    run = run_pytest(tmp_path, "exercises")
    assert "1 failed" in run.stdout and "not attempted" not in run.stdout.splitlines()[-1]


def test_import_errors_fail_only_that_module_with_a_clear_message(tmp_path):
    broken = dict(CORRECT, **{"logmel.py": "def double(x)\n    return 2 * x\n"})
    make_lab(tmp_path, broken)
    run = run_pytest(tmp_path, "exercises", "--grade-json=results.json")
    assert "could not import your logmel.py: SyntaxError" in run.stdout
    results = by_name(json.loads((tmp_path / "results.json").read_text()))
    assert results["resampling: test_to_mono"]["status"] == "passed"
    for name in ("logmel: test_double", "logmel: test_triple"):
        assert results[name]["status"] == "failed"
        assert results[name]["output"].startswith("could not import your logmel.py: SyntaxError")


@pytest.mark.parametrize("source, message", [
    ("import logmel\n", "import the other exercise modules relatively"),
    ("raise ValueError('boom at import')\n", "ValueError: boom at import"),
    ("import sys\nsys.exit(4)\n", r"it called sys\.exit\(4\)"),
])
def test_import_failures_are_explained(tmp_path, source, message):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "embedding.py").write_text(source)
    (tmp_path / "pkg" / "logmel.py").write_text("from . import embedding\n")
    impl = GradedImpl(tmp_path / "pkg")  # no __init__.py: a plain folder of modules works
    for name in ("embedding", "logmel"):
        with pytest.raises(ImplImportError, match="could not import your") as first:
            impl.module(name)
        with pytest.raises(ImplImportError) as again:  # remembered, not re-imported
            getattr(impl, name)
        assert str(again.value) == str(first.value)
    with pytest.raises(ImplImportError, match=message):
        impl.embedding
    with pytest.raises(ImplImportError, match="there is no classify.py"):
        impl.classify


def test_missing_impl_folder_fails_every_check_and_still_writes_results(tmp_path):
    make_lab(tmp_path, CORRECT)
    run = run_pytest(tmp_path, "exercises", "--impl=nowhere", "--grade-json=results.json")
    assert run.returncode == 1 and "no folder" in run.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["score"] == 0 and len(results["tests"]) == 4


def test_ordinary_tests_are_not_graded(tmp_path):
    write_tree(tmp_path, {"conftest.py": ROOT_CONFTEST, "pytest.ini": "[pytest]\n",
                          "tests/test_plain.py": "def test_plain():\n    raise NotImplementedError\n"})
    run = run_pytest(tmp_path, "tests")
    assert "warblr grading" not in run.stdout
    assert "1 failed" in run.stdout and "NotImplementedError" in run.stdout  # an ordinary traceback


def test_points_marker_grades_a_test_outside_exercises(tmp_path):
    write_tree(tmp_path, {"conftest.py": ROOT_CONFTEST, "pytest.ini": "[pytest]\n",
                          "other/test_extra.py": "import pytest\n\n@pytest.mark.points(4)\ndef test_x():\n    pass\n"})
    run = run_pytest(tmp_path, "other")
    assert table_row(run.stdout, "TOTAL") == ["TOTAL", "4/4", "1", "0", "0", "0"]


def test_handout_mode_never_runs_hidden_checks(tmp_path):
    make_lab(tmp_path, CORRECT)
    (tmp_path / "pytest.ini").write_text("[pytest]\nwarblr_handout = true\n")
    run = run_pytest(tmp_path, "exercises", "-v")
    assert "test_double_hidden" not in run.stdout.split("warblr grading")[0].replace("deselected", "")
    assert "1 deselected" in run.stdout and table_row(run.stdout, "TOTAL")[1] == "5.5/5.5"


def test_bad_markers_are_usage_errors(tmp_path):
    checks = {"test_logmel.py": "import pytest\n\n@pytest.mark.visibility('secret')\ndef test_a(impl):\n    pass\n"}
    make_lab(tmp_path, CORRECT, checks=checks)
    run = run_pytest(tmp_path, "exercises")
    assert run.returncode == 4 and "visibility must be one of" in run.stderr


def test_results_json_trims_long_output():
    record = Record("t.py::test_a", "logmel", "logmel: test_a", points=2, hint="h", outcome="failed",
                    message="x" * 100_000)
    data = results_json([record], execution_time=1.5)
    assert len(data["tests"][0]["output"]) < MAX_TEST_OUTPUT + 100
    assert data["score"] == 0 and data["max_score"] == 2 and data["execution_time"] == 1.5
    json.dumps(data)


def test_trim_keeps_short_text_and_marks_the_cut():
    assert trim("short") == "short"
    cut = trim("a" * 50 + "b" * 50, limit=20)
    assert cut.startswith("a" * 10) and cut.endswith("b" * 10) and "80 characters cut" in cut


def test_strip_hidden_removes_marked_functions_and_classes():
    source = '''import pytest

@pytest.mark.points(2)
@pytest.mark.visibility("hidden")
def test_secret():
    assert 1


def test_open():
    assert 1


@pytest.mark.visibility(kind="hidden")
class TestSecret:
    def test_a(self):
        pass


class TestMixed:
    @pytest.mark.visibility("hidden")
    def test_b(self):
        pass

    def test_c(self):
        pass
'''
    kept = strip_hidden(source)
    compile(kept, "kept", "exec")
    assert "test_open" in kept and "test_c" in kept
    for gone in ("test_secret", "TestSecret", "test_b", "points(2)"):
        assert gone not in kept
    assert strip_hidden("import pytest\npytestmark = [pytest.mark.visibility('hidden')]\n") is None
    assert strip_hidden("def test_a():\n    pass\n") == "def test_a():\n    pass\n"


def test_parse_size():
    assert parse_size("4G") == 4 << 30 and parse_size("512m") == 512 << 20 and parse_size("1000") == 1000
    with pytest.raises(pytest.UsageError):
        parse_size("lots")


def test_cli_registers_grade_commands():
    parser = build_parser()
    args = parser.parse_args(["grade", "run", "--impl", "solutions", "--", "-q"])
    assert args.impl == "solutions" and args.pytest_args == ["-q"] and args.timeout == 30
    args = parser.parse_args(["grade", "handout", "--out", "somewhere"])
    assert args.out == "somewhere" and args.source == "."
    with pytest.raises(SystemExit):
        parser.parse_args(["grade", "handout"])  # --out is required


PARTIAL_CHECKS = {"test_logmel.py": '''\
import pytest

from warblr.grading.credit import PartialCredit, award


@pytest.mark.points(4, partial=True)
@pytest.mark.hint("double: every row doubled")
def test_rows(impl):
    rows = [impl.logmel.double(x) for x in (1, 2, 3, 4)]
    right = sum(got == 2 * x for got, x in zip(rows, (1, 2, 3, 4)))
    if right < 4:
        award(right / 4, f"{right} of 4 rows right")


@pytest.mark.points(2)
def test_undeclared(impl):
    impl.logmel.double(1)
    raise PartialCredit(0.5, "half, but this check does not declare partial credit")


@pytest.mark.points(2, partial=True)
def test_student_raises(impl):
    assert impl.logmel.triple(1) == 3
'''}

#: A student whose code raises the partial-credit exception itself: the real class in-process (no intake
#: there), a look-alike of the same name under isolation (the worker may not import warblr).
CHEAT = {
    "in-process": "from warblr.grading.credit import PartialCredit\n",
    "isolated": "class PartialCredit(AssertionError):\n    fraction = 0.99\n\n"
                "    def __init__(self, fraction, reason):\n        super().__init__(reason)\n",
}


@pytest.mark.parametrize("mode", ["in-process", "isolated"])
def test_partial_credit_counts_only_when_a_partial_check_raises_it_itself(tmp_path, mode):
    logmel = CHEAT[mode] + ("def double(x):\n    return 2 * x if x < 4 else 0\n\n"
                            "def triple(x):\n    raise PartialCredit(0.99, 'give me points')\n")
    make_lab(tmp_path, dict(CORRECT, **{"logmel.py": logmel}), checks=PARTIAL_CHECKS)
    run = run_pytest(tmp_path, "exercises", "--grade-json=results.json",
                     *(["--isolate", "--grade-timeout=60"] if mode == "isolated" else []))
    results = json.loads((tmp_path / "results.json").read_text())
    tests = by_name(results)
    assert tests["logmel: test_rows"]["score"] == 3 and tests["logmel: test_rows"]["max_score"] == 4
    assert tests["logmel: test_rows"]["status"] == "failed"
    assert tests["logmel: test_rows"]["output"].startswith("Partial credit: 3 of 4 points (75%)")
    assert "3 of 4 rows right" in tests["logmel: test_rows"]["output"]
    assert tests["logmel: test_rows"]["extra_data"]["fraction"] == 0.75
    assert tests["logmel: test_undeclared"]["score"] == 0
    assert "is not marked @pytest.mark.points(n, partial=True)" in results["output"]
    assert tests["logmel: test_student_raises"]["score"] == 0
    assert results["score"] == 3 and results["max_score"] == 8
    assert table_row(run.stdout, "logmel") == ["logmel", "3/8", "0", "1", "2", "0"]
    assert "PART logmel: test_rows (3 of 4 pt, 75%)" in run.stdout


def test_partial_credit_survives_a_resumed_run():
    record = Record("t::a", "logmel", "a", points=4, outcome="failed", partial=True, fraction=0.25)
    data = results_json([record], execution_time=0.0)
    assert data["score"] == 1 and data["tests"][0]["extra_data"]["fraction"] == 0.25
    undeclared = Record("t::b", "logmel", "b", points=4, outcome="failed", partial=False, fraction=0.25)
    assert undeclared.score == 0


@pytest.mark.slow  # two grading runs of an optional feature
def test_leaderboard_figures_go_into_results_json_only_when_asked(tmp_path):
    checks = {"test_logmel.py": "def test_fast(impl, record_property):\n"
                                "    record_property('leaderboard', {'name': 'AUC', 'value': impl.logmel.double(0.4),"
                                " 'order': 'desc'})\n"
                                "    record_property('other', 1)\n"}
    make_lab(tmp_path, CORRECT, checks=checks)
    run_pytest(tmp_path, "exercises", "--grade-json=plain.json")
    assert "leaderboard" not in json.loads((tmp_path / "plain.json").read_text())
    run_pytest(tmp_path, "exercises", "--grade-json=board.json", "--grade-leaderboard")
    assert json.loads((tmp_path / "board.json").read_text())["leaderboard"] == [
        {"name": "AUC", "value": 0.8, "order": "desc"}]
