"""Timed checks run alone among the graders of one machine (``warblr.grading.timing_lock``).

``warblr grade batch --jobs N`` passes every grader one lock file: each
check holds it shared, a check marked ``timed`` (the speed checks) holds it
exclusive. Here the lock's order on its own, then two real graders (child
pytest runs of a tiny lab) started together: with the lock no check of one
runs while the other's timed check runs; without it they overlap.
"""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from warblr.grading.batch import GradingOptions
from warblr.grading.handout import ROOT_CONFTEST, write_tree
from warblr.grading.impl import EXERCISE_MODULES
from warblr.grading.timing_lock import TimingLock

#: Long enough that two graders started together overlap without the lock (each runs ~2 s of checks).
TIMED_SECONDS, UNTIMED_SECONDS = 0.6, 0.4

CHECKS = f'''\
import json
import os
import time

import pytest

LOG = os.environ["TIMING_LOG"]


def spend(name, seconds):
    start = time.time()
    time.sleep(seconds)
    with open(LOG, "a") as log:
        log.write(json.dumps([os.getpid(), name, start, time.time()]) + "\\n")


@pytest.mark.timed
def test_speed(impl):
    spend("timed", {TIMED_SECONDS})


@pytest.mark.parametrize("number", range(3))
def test_other(impl, number):
    spend("other", {UNTIMED_SECONDS})
'''


def waits(function):
    """Start ``function`` in a thread; the event it sets when it returns."""
    done = threading.Event()
    threading.Thread(target=lambda: (function(), done.set()), daemon=True).start()
    return done


def test_a_timed_check_waits_for_running_checks_and_later_ones_wait_for_it(tmp_path):
    path = tmp_path / "timing.lock"
    running, timed, later = TimingLock(path), TimingLock(path), TimingLock(path)  # one open file each: as processes
    order = []
    try:
        running.acquire()
        timed_done = waits(lambda: (timed.acquire(exclusive=True), order.append("timed")))
        assert not timed_done.wait(0.3), "the timed check started beside a running check"
        later_done = waits(lambda: (later.acquire(), order.append("later")))
        assert not later_done.wait(0.3), "a check that came after the waiting timed check started before it"
        running.release()
        assert timed_done.wait(5) and not later_done.wait(0.3), order
        timed.release()
        assert later_done.wait(5) and order == ["timed", "later"]
    finally:
        for lock in (running, timed, later):
            lock.close()


def test_shared_holders_run_together_and_the_file_is_private(tmp_path):
    path = tmp_path / "timing.lock"
    first, second = TimingLock(path), TimingLock(path)
    try:
        first.acquire()
        assert waits(second.acquire).wait(2), "two ordinary checks could not run at once"
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        first.close()
        second.close()
    link = tmp_path / "link.lock"
    link.symlink_to(path)
    with pytest.raises(OSError):
        TimingLock(link)


def write_lab(lab, checks):
    """A tiny lab in ``lab``: the plugin's conftest, empty graded modules and ``checks`` as its one check file."""
    write_tree(lab, {"conftest.py": ROOT_CONFTEST, "pytest.ini": "[pytest]\n", "exercises/__init__.py": "",
                     "exercises/test_checks.py": checks,
                     **{f"exercises/{name}.py": "" for name in EXERCISE_MODULES}})
    return lab


def two_graders(tmp_path, *, lock):
    """Two child pytest runs of the lab started together: the check intervals they logged, their results' output."""
    lab = write_lab(tmp_path / "lab", CHECKS)
    log = tmp_path / "intervals.jsonl"
    extra = [f"--grade-timing-lock={tmp_path / 'timing.lock'}"] if lock else []
    runs = [subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "exercises",
                              f"--grade-json={tmp_path / f'results_{number}.json'}", *extra], cwd=lab,
                             env={**os.environ, "TIMING_LOG": str(log)}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for number in range(2)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    results = [json.loads((tmp_path / f"results_{number}.json").read_text())["output"] for number in range(2)]
    return [json.loads(line) for line in log.read_text().splitlines()], results


def overlapping_a_timed_check(intervals):
    """Pairs (timed check, other grader's check) whose intervals overlap."""
    return [(a, b) for a in intervals if a[1] == "timed" for b in intervals
            if b[0] != a[0] and b[2] < a[3] and a[2] < b[3]]


@pytest.mark.slow  # two pairs of child pytest runs, ~12 s; the lock's order is tested in the default pass
@pytest.mark.parametrize("lock", [True, False], ids=["with the lock", "without it"])
def test_two_graders_never_run_a_check_beside_a_timed_one(lock, tmp_path):
    intervals, outputs = two_graders(tmp_path, lock=lock)
    assert not [output for output in outputs if "timing:" in output], outputs  # same results.json either way
    assert len(intervals) == 8
    overlaps = overlapping_a_timed_check(intervals)
    if lock:
        assert not overlaps, overlaps
    else:  # the same run without the lock: the graders do overlap (so the check above can fail)
        assert overlaps


def test_the_batch_gives_every_grader_the_same_lock_and_keeps_it_out_of_the_fingerprint(tmp_path):
    options = GradingOptions(lab=str(tmp_path), timing_lock=str(tmp_path / "timing.lock"))
    assert f"--grade-timing-lock={tmp_path / 'timing.lock'}" in options.pytest_args()
    assert "timing_lock" not in options.fingerprint_fields()


def test_a_missing_lock_folder_is_said_and_grading_goes_on(tmp_path):
    lab = write_lab(tmp_path / "lab", "import pytest\n\n\n@pytest.mark.timed\ndef test_speed(impl):\n    pass\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "exercises",
                          "--grade-json=results.json", f"--grade-timing-lock={tmp_path / 'gone' / 'timing.lock'}"],
                         cwd=lab, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout
    assert "timing: no lock shared with the other graders" in json.loads((lab / "results.json").read_text())["output"]


@pytest.mark.parametrize(("ray", "locked"), [(None, True), ("local", True), (" Local ", True), ("auto", False),
                                             ("10.0.0.2:6379", False)])
def test_a_batch_on_this_machine_hands_its_graders_the_lock(monkeypatch, tmp_path, ray, locked):
    """A local batch and a private local Ray (every grader on this machine) share the lock; another cluster's
    graders may be on other machines, where a lock on the shared --out would pause them all."""
    from warblr.grading import batch

    root = Path(__file__).resolve().parents[2]
    submission = tmp_path / "submissions" / "ada"
    submission.mkdir(parents=True)
    for module in EXERCISE_MODULES:
        (submission / f"{module}.py").write_bytes((root / "solutions" / f"{module}.py").read_bytes())
    handed = []

    def run_all(todo, rows, store, **kwargs):
        handed.extend(options for _, _, _, options in todo)
        return 1

    monkeypatch.setattr(batch, "_run_all", run_all)
    batch.grade_batch(tmp_path / "submissions", out=tmp_path / "out", lab=root, ray=ray, jobs=1, progress=False,
                      log=lambda _: None)
    [options] = handed
    assert (options.timing_lock == str(tmp_path / "out" / ".staging" / "timing.lock")) is locked
    assert (options.timing_lock is None) is not locked
