"""A course of generated submissions graded by ``warblr grade batch`` on the real lab (slow pass; a benchmark).

``WARBLR_BATCH_N`` submissions (default 200) are generated from the lab
itself: correct ones (``solutions/`` and the independent answers),
mutants (``tests/grading/mutants.py``), lazy answers (``lazy.py``), hostile
ones (``attacks.py``), broken ones (a syntax error) and hanging ones (an
endless loop), in that rotation, each with a comment naming it so every
fingerprint differs. The batch runs with ``--jobs`` from
``WARBLR_BATCH_JOBS`` (default: what the machine allows), is killed once a
tenth is saved and resumed; then a rerun must grade nothing, and a sample
of ``WARBLR_BATCH_SAMPLE`` submissions (default 8, one of each kind first)
graded alone with ``warblr grade run`` (as many at once as the batch's
graders, with their math threads) must score check for check as in the
gradebook; every difference is listed before the test fails. Throughput
(submissions per minute of the resumed run) is printed.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from warblr.grading.batch import INPUT_SEED_FILE, grade_batch, grader_environment, threads_per_grader

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
KINDS = ("correct", "mutated", "lazy", "hostile", "broken", "hanging")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not (ROOT / "solutions" / "logmel.py").is_file(),
                                                   reason="needs solutions/")]


def count(name, default):
    return int(os.environ.get(name, default))


def copy_package(source, target, *, note, changes=None, append=None):
    """``source``'s four modules in ``target`` with ``changes`` (``{module: (old, new)}``) and ``append`` applied."""
    target.mkdir(parents=True)
    for module in ("resampling", "logmel", "embedding", "classify"):
        text = (source / f"{module}.py").read_text()
        old, new = (changes or {}).get(module, ("", ""))
        if old:
            text = text.replace(old, new, 1)
        text += (append or {}).get(module, "")
        (target / f"{module}.py").write_text(f"# {note}\n{text}")


def generate(folder, total, galleries):
    """``total`` submissions in ``folder``; returns ``{name: kind}``."""
    mutants, lazies, attacks = galleries["mutant"], galleries["lazy"], [a for a in galleries["attack"] if a.default]
    kinds = {}
    for index in range(total):
        kind = KINDS[index % len(KINDS)]
        name = f"s{index:04d}_{kind}"
        target = folder / name
        if kind == "correct":
            copy_package(ROOT / "solutions" if index % 2 else HERE / "independent", target, note=name)
        elif kind == "mutated":
            mutant = mutants[index % len(mutants)]
            copy_package(ROOT / "solutions", target, note=name, changes={mutant.module: (mutant.old, mutant.new)})
        elif kind == "lazy":
            copy_package(ROOT / "exercises", target, note=name, append=lazies[index % len(lazies)].code)
        elif kind == "hostile":
            copy_package(ROOT / "exercises", target, note=name,
                         append={"resampling": attacks[index % len(attacks)].code})
        elif kind == "broken":
            copy_package(ROOT / "solutions", target, note=name, append={"logmel": "\ndef broken(:\n"})
        else:
            copy_package(ROOT / "solutions", target, note=name,  # hangs in the few checks of pool()
                         append={"classify": "\n\ndef pool(*args, **kwargs):\n    while True:\n        pass\n"})
        kinds[name] = kind
    return kinds


@pytest.fixture(scope="module")
def galleries():
    import importlib.util

    loaded = {}
    for name, attribute in (("mutants", "MUTANTS"), ("lazy", "LAZY"), ("attacks", "ATTACKS")):
        spec = importlib.util.spec_from_file_location(f"warblr_scale_{name}", HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        loaded[{"mutants": "mutant", "lazy": "lazy", "attacks": "attack"}[name]] = getattr(module, attribute)
    return loaded


def snapshot_lab(target):
    """A copy of the lab's checks, answers and configuration: edits to the checkout during the run change nothing."""
    for name in ("exercises", "solutions"):
        shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.ipynb"))
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy2(ROOT / name, target / name)
    return target


def test_a_course_graded_in_a_batch_scores_as_each_graded_alone(tmp_path, galleries):
    total, sample = count("WARBLR_BATCH_N", 200), count("WARBLR_BATCH_SAMPLE", 8)
    jobs = os.environ.get("WARBLR_BATCH_JOBS")
    kinds = generate(tmp_path / "submissions", total, galleries)
    lab = snapshot_lab(tmp_path / "lab")
    out = tmp_path / "out"
    code = ("from warblr.grading.batch import grade_batch; "
            f"grade_batch({str(tmp_path / 'submissions')!r}, out={str(out)!r}, lab={str(lab)!r}, "
            f"jobs={jobs}, progress=False)")
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        while len(list(out.glob("students/*/graded.json"))) < max(1, total // 10):
            assert process.poll() is None, "the batch ended before it could be killed"
            time.sleep(1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    saved_before = len(list(out.glob("students/*/graded.json")))
    summary = grade_batch(tmp_path / "submissions", out=out, lab=lab, jobs=int(jobs) if jobs else None,
                          progress=True)
    assert summary.submissions == total and summary.reused >= saved_before - summary.refused
    print(f"\nbatch: {total} submissions, {summary.graded} graded after the resume with {summary.jobs} job(s) "
          f"in {summary.seconds:.0f} s: {summary.per_minute:.2f} submissions/minute, "
          f"{summary.cpu_seconds / max(1, summary.graded):.0f} CPU s per submission")
    again = grade_batch(tmp_path / "submissions", out=out, lab=lab, jobs=1, progress=False, log=lambda _: None)
    assert again.graded == 0
    by_kind = {}
    for name, kind in sorted(kinds.items()):
        by_kind.setdefault(kind, []).append(name)
    chosen = ([names[0] for names in by_kind.values()] + [n for names in by_kind.values() for n in names[1:]])[:sample]
    env = grader_environment(threads_per_grader(summary.jobs))  # the batch's graders' math threads

    def grade_alone(name):
        """``{check: (gradebook score, alone score)}`` where ``warblr grade run`` scores ``name`` differently."""
        alone = tmp_path / f"{name}.json"
        subprocess.run([sys.executable, "-m", "warblr", "grade", "run", "--root", str(lab), "--impl",
                        str(tmp_path / "submissions" / name), "--grade-json", str(alone), "--",
                        f"--input-seed-file={out / 'students' / name / INPUT_SEED_FILE}"],  # the inputs it was graded on
                       capture_output=True, timeout=3600, env=env)
        expected = json.loads(alone.read_text())
        graded = json.loads((out / "students" / name / "results.json").read_text())
        scores = {t["name"]: t["score"] for t in graded["tests"]} | {"total": graded["score"]}
        alone_scores = {t["name"]: t["score"] for t in expected["tests"]} | {"total": expected["score"]}
        return {check: (scores.get(check), alone_scores.get(check)) for check in scores.keys() | alone_scores.keys()
                if scores.get(check) != alone_scores.get(check)}

    started, differ = time.monotonic(), {}
    with ThreadPoolExecutor(max_workers=summary.jobs) as pool:  # as many at once as the batch ran
        for done, (name, difference) in enumerate(zip(chosen, pool.map(grade_alone, chosen)), 1):
            if difference:
                differ[name] = difference
                print(f"DIFFERS {name} (check: (gradebook, alone)): {difference}", flush=True)
            if done % 10 == 0 or done == len(chosen):
                print(f"{done} graded alone in {time.monotonic() - started:.0f} s; "
                      f"{len(differ)} differ from the gradebook", flush=True)
    assert not differ, sorted(differ)
    shutil.rmtree(tmp_path / "submissions")
