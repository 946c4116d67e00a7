"""Grading under hostile student code: each bad check fails alone, the report survives.

Mostly in-process grading (students' ``pytest exercises``, ``--no-isolation``),
where the plugin's own guards must hold; the last test grades the same code
isolated, as ``warblr grade run`` does. A fake student package whose functions loop forever, eat memory, call
``sys.exit``/``os._exit``, ignore the timeout signal, print megabytes or
monkey-patch numpy and builtins, graded by a tiny check module. Every hostile
check must fail (0 points), every honest check after it must still pass, and
the score table and results.json must still be written.

Memory safety: the memory hog reserves 200 MB blocks (``np.empty``, pages
never touched) in a loop; the child pytest runs under ``--grade-max-memory``
(RLIMIT_AS), so it meets a MemoryError after a few blocks, exactly as a
real hog would, and never uses the machine's RAM (the 2 s timeout would stop
it too).
"""

import json
import subprocess
import sys

import pytest

from warblr.grading.handout import ROOT_CONFTEST, write_tree
from warblr.grading.report import RUNNING_TEXT
from warblr.grading.runner import run_checks

HOSTILE_LOGMEL = '''\
import os
import signal
import sys

import numpy as np


def spin(x):
    while True:
        x += 1


def hog(x):
    blocks = []
    while True:
        blocks.append(np.empty(25_000_000))  # 200 MB of address space each, until RLIMIT_AS says no


def leave(x):
    sys.exit(3)


def vanish(x):
    os._exit(0)


def deaf(x):
    signal.signal(signal.SIGALRM, signal.SIG_IGN)  # the timeout cannot interrupt us
    while True:
        x += 1


def shout(x):
    for _ in range(50):
        print("la" * 50_000)  # 5 MB in all
    return x + 1


def cheat(x):
    np.testing.assert_allclose = lambda *args, **kwargs: None
    return -1


def rebind(x):
    import builtins
    builtins.abs = lambda value: 0
    return -1


def good(x):
    return x + 1
'''

CHECKS = '''\
import numpy as np
import pytest


def test_spin(impl):
    assert impl.logmel.spin(0) == 1


def test_hog(impl):
    assert impl.logmel.hog(0) == 1


def test_leave(impl):
    assert impl.logmel.leave(0) == 1


def test_shout(impl):
    assert impl.logmel.shout(0) == 2


def test_cheat(impl):
    np.testing.assert_allclose(impl.logmel.cheat(0), 1)


def test_after_cheat_numpy_is_restored(impl):
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(2, 1)
    assert impl.logmel.good(0) == 1


def test_rebind(impl):
    assert impl.logmel.rebind(0) == 1 and abs(-1) == 1


def test_after_rebind_builtins_are_restored(impl):
    assert abs(-3) == 3 and impl.logmel.good(1) == 2


@pytest.mark.hint("should never be needed")
def test_good(impl):
    assert impl.logmel.good(1) == 2
'''

CRASHERS = '''\
def test_before(impl):
    assert impl.logmel.good(0) == 1


def test_vanish(impl):
    assert impl.logmel.vanish(0) == 1


def test_deaf(impl):
    assert impl.logmel.deaf(0) == 1


def test_after(impl):
    assert impl.logmel.good(2) == 3
'''

HONEST = ("test_after_cheat_numpy_is_restored", "test_after_rebind_builtins_are_restored", "test_good",
          "test_before", "test_after")


def make_hostile_lab(root, checks):
    write_tree(root, {"conftest.py": ROOT_CONFTEST, "pytest.ini": "[pytest]\n", "exercises/__init__.py": "",
                      "exercises/logmel.py": HOSTILE_LOGMEL, "exercises/test_logmel.py": checks})
    return root


def outcomes(results):
    return {t["name"].split(": ", 1)[1]: t for t in results["tests"]}


def test_hostile_checks_fail_alone_and_the_report_survives(tmp_path):
    make_hostile_lab(tmp_path, CHECKS)
    run = subprocess.run([sys.executable, "-m", "pytest", "exercises", "-p", "no:cacheprovider",
                          "--grade-timeout=2", "--grade-max-memory=3G", "--grade-json=results.json"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "warblr grading" in run.stdout  # the score table was printed
    assert len(run.stdout) < 100_000, "5 MB of printing reached the terminal"
    tests = outcomes(json.loads((tmp_path / "results.json").read_text()))
    for name in ("test_spin", "test_hog", "test_leave", "test_shout", "test_cheat", "test_rebind"):
        assert tests[name]["status"] == "failed" and tests[name]["score"] == 0, name
    for name in HONEST[:3]:
        assert tests[name]["status"] == "passed", (name, tests[name]["output"])
    assert "time limit (2 s)" in tests["test_spin"]["output"]
    assert "ran out of memory" in tests["test_hog"]["output"]
    assert "sys.exit(3)" in tests["test_leave"]["output"]
    assert "replaced numpy.testing.assert_allclose" in tests["test_cheat"]["output"]
    assert "replaced builtins.abs" in tests["test_rebind"]["output"]
    assert 0 < len(tests["test_shout"]["output"]) < 4000


def test_a_crash_leaves_a_report_blaming_the_running_check(tmp_path):
    make_hostile_lab(tmp_path, CRASHERS)
    run = subprocess.run([sys.executable, "-m", "pytest", "exercises", "-p", "no:cacheprovider",
                          "--grade-timeout=2", "--grade-json=results.json"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0  # os._exit(0) ended pytest itself: its exit status cannot be trusted
    results = json.loads((tmp_path / "results.json").read_text())
    tests = outcomes(results)
    assert tests["test_before"]["status"] == "passed"
    assert tests["test_vanish"]["status"] == "failed" and tests["test_vanish"]["output"] == RUNNING_TEXT
    assert tests["test_after"]["extra_data"]["outcome"] == "not_run"
    assert results["score"] == 1 and results["max_score"] == 4


def test_grade_run_resumes_after_crashes_and_hangs_that_ignore_the_timeout(tmp_path):
    make_hostile_lab(tmp_path, CRASHERS)
    outcome = run_checks(root=tmp_path, grade_json=tmp_path / "out" / "results.json", timeout=1.0,
                         max_memory="3G", pytest_args=["-q"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, isolate=False)
    assert outcome["runs"] == 3 and outcome["crashes"] == 2  # os._exit, then the watchdog on the deaf loop
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results == outcome["results"]
    tests = outcomes(results)
    assert [tests[name]["status"] for name in ("test_before", "test_vanish", "test_deaf", "test_after")] == \
        ["passed", "failed", "failed", "passed"]
    assert tests["test_deaf"]["output"] == RUNNING_TEXT
    assert results["score"] == 2 and results["max_score"] == 4
    assert "died during: logmel: test_deaf" in results["output"]


@pytest.mark.parametrize("broken", ["syntax", "collection"])
def test_grade_run_always_leaves_a_well_formed_results_json(tmp_path, broken):
    checks = "def test_x(impl)\n    pass\n" if broken == "syntax" else "import no_such_module_xyz\n"
    make_hostile_lab(tmp_path, checks)
    outcome = run_checks(root=tmp_path, grade_json=tmp_path / "results.json", timeout=2.0,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["score"] == 0 and results["tests"] == []
    assert "failed before any check could run" in results["output"]
    assert outcome["returncode"] == 2


def test_isolated_grading_stops_the_same_code_without_a_restart(tmp_path):
    make_hostile_lab(tmp_path, CHECKS + "\n\n" + CRASHERS.replace("def test_before", "def test_honest_before"))
    outcome = run_checks(root=tmp_path, grade_json=tmp_path / "out" / "results.json", timeout=2.0,
                         max_memory="3G", pytest_args=["-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert outcome["runs"] == 1 and outcome["crashes"] == 0  # the grader itself never died
    tests = outcomes(outcome["results"])
    for name in ("test_spin", "test_hog", "test_leave", "test_shout", "test_cheat", "test_rebind", "test_vanish",
                 "test_deaf"):
        assert tests[name]["status"] == "failed" and tests[name]["score"] == 0, name
    for name in ("test_after_cheat_numpy_is_restored", "test_after_rebind_builtins_are_restored", "test_good",
                 "test_honest_before", "test_after"):
        assert tests[name]["status"] == "passed", (name, tests[name]["output"])
    assert "time limit (2 s)" in tests["test_spin"]["output"] and "time limit (2 s)" in tests["test_deaf"]["output"]
    assert "ran out of memory" in tests["test_hog"]["output"]
    assert "sys.exit(3)" in tests["test_leave"]["output"]
    assert "ended the worker process" in tests["test_vanish"]["output"]
    assert "Your code printed" in tests["test_shout"]["output"] and len(tests["test_shout"]["output"]) < 4000
    assert "isolation: " in outcome["results"]["output"]
