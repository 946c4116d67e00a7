"""The Gradescope autograder package end to end, and the handout's notebook.

``warblr grade autograder`` builds the package from the lab; the tests lay
out a temporary ``AUTOGRADER_ROOT`` as Gradescope does (the package in
``source/``, a copy of ``run_autograder`` at the root, the submission with
its links kept), run that copy and check ``results.json`` against
Gradescope's schema.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from warblr.errors import InvalidArgumentError
from warblr.grading.autograder import SECRET_INPUT_SEEDS, build_autograder
from warblr.grading.seeds import PUBLIC_INPUT_SEED

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("resampling", "logmel", "embedding", "classify")


@pytest.fixture(scope="module")
def package(tmp_path_factory, command_lines):
    with command_lines() as watched:
        built = build_autograder(tmp_path_factory.mktemp("autograder") / "package", source=ROOT, make_zip=True)
    return {**built, "command_lines": watched.seen}


def assert_gradescope_schema(results):
    """Gradescope's results.json: top-level score and execution_time, tests[] with their fields."""
    assert isinstance(results["score"], (int, float)) and isinstance(results["execution_time"], (int, float))
    assert results["tests"], "no tests in results.json"
    for test in results["tests"]:
        assert isinstance(test["name"], str) and test["name"]
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert 0 <= test["score"] <= test["max_score"]
        assert isinstance(test["output"], str)
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
    assert results["score"] == pytest.approx(sum(test["score"] for test in results["tests"]))


def run_autograder(package_dir, tmp_path, files, *pytest_args, links=()):
    """Lay out AUTOGRADER_ROOT as Gradescope does and run the package's ``run_autograder`` from there.

    The package is unpacked in ``AUTOGRADER_ROOT/source`` and a copy of its
    ``run_autograder`` sits at ``AUTOGRADER_ROOT/run_autograder`` (Gradescope
    runs that copy, so paths relative to the script's own folder do not lead
    to the package). ``files`` ({relative path: source path}) and ``links``
    ({relative path: target}, kept as symbolic links as Gradescope keeps them)
    make the submission.
    """
    root = tmp_path / "autograder"
    shutil.copytree(package_dir, root / "source")
    shutil.copy2(package_dir / "run_autograder", root / "run_autograder")
    for relative, source in files.items():
        target = root / "submission" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    for relative, target in dict(links).items():
        (root / "submission" / relative).symlink_to(target)
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), WARBLR_PYTHON=sys.executable)
    run = subprocess.run(["bash", str(root / "run_autograder"), *pytest_args], env=env, capture_output=True,
                         text=True, timeout=1200, cwd=root)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads((root / "results" / "results.json").read_text())


@pytest.mark.slow  # builds the package (16 secret seeds' reference data): too much for the README's test command
def test_package_has_every_check_and_the_reference_data_but_no_solutions(package):
    out = package["out"]
    for script in ("setup.sh", "run_autograder"):
        assert os.access(out / script, os.X_OK), script
    checks = sorted(path.name for path in (ROOT / "exercises").glob("test_*.py"))
    assert sorted(path.name for path in (out / "lab" / "exercises").glob("test_*.py")) == checks
    for name in checks:  # hidden checks included, unchanged
        assert (out / "lab" / "exercises" / name).read_text() == (ROOT / "exercises" / name).read_text()
    assert (out / "lab" / "exercises" / "reference_data" / "reference.npz").is_file()
    # The public input seed (the handout's answers) and SECRET_INPUT_SEEDS secret ones, drawn at build time.
    seeds = json.loads((out / "lab" / "exercises" / "reference_data" / "manifest.json").read_text())["seeds"]
    assert PUBLIC_INPUT_SEED in seeds and len(set(seeds) - {PUBLIC_INPUT_SEED}) == SECRET_INPUT_SEEDS == 16
    # No command line of the build named a secret seed (any user can read them in /proc while they run).
    assert any("reference.py" in line for line in package["command_lines"])  # the watcher saw the build's child
    assert not [line for line in package["command_lines"] for seed in seeds
                if seed != PUBLIC_INPUT_SEED and str(seed) in line]
    assert not list(out.rglob("solutions"))
    def long_lines(folder):
        return {line.strip() for module in MODULES for line in (folder / f"{module}.py").read_text().splitlines()
                if len(line.strip()) > 40 and not line.strip().startswith(("from ", "import ", "#"))}

    solution_lines = long_lines(ROOT / "solutions") - long_lines(ROOT / "exercises")  # stubs are public
    for path in (out / "lab").rglob("*.py"):  # warblr-src/ is the public engine, which computes the same things
        text = path.read_text()
        leaked = [line for line in solution_lines if line in text]
        assert not leaked, f"{path} holds lines of solutions/: {leaked[:3]}"
    assert "/autograder/submission" in (out / "README.md").read_text()
    with zipfile.ZipFile(package["zip"]) as archive:
        names = set(archive.namelist())
    assert {"setup.sh", "run_autograder", "lab/exercises/reference_data/reference.npz"} <= names


def test_package_refuses_bad_arguments(tmp_path):
    with pytest.raises(InvalidArgumentError, match="timeout"):
        build_autograder(tmp_path / "out", source=ROOT, timeout=0)
    with pytest.raises(InvalidArgumentError, match="no exercises/"):
        build_autograder(tmp_path / "out", source=tmp_path)
    run = subprocess.run([sys.executable, "-m", "warblr", "grade", "autograder", "--out", str(tmp_path / "cli"),
                          "--source", str(ROOT), "--secret-seeds", "0"], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "--secret-seeds: must be an int >= 1, got 0" in run.stderr, run.stderr
    assert not (tmp_path / "cli").exists()


@pytest.mark.slow  # a whole run_autograder; the package's layout is checked in the default pass
def test_run_autograder_grades_a_top_level_submission_into_gradescope_json(package, tmp_path):
    files = {f"{module}.py": ROOT / "exercises" / f"{module}.py" for module in MODULES}
    results = run_autograder(package["out"], tmp_path, files, "-k", "to_mono or pool_matches")
    assert_gradescope_schema(results)
    assert results["score"] == 0 and len(results["tests"]) >= 3
    assert {test["extra_data"]["outcome"] for test in results["tests"]} == {"not_attempted"}
    assert "isolation: " in results["output"]
    # Graded with one of the package's secret input seeds: said on the first line, its value nowhere.
    assert results["output"].splitlines()[0] == ("input seed: secret (one of the 16 stored for grading; the inputs of "
                                                 "the checks whose answers are computed live are fresh for this run)")
    seeds = json.loads((package["out"] / "lab" / "exercises" / "reference_data" / "manifest.json").read_text())["seeds"]
    text = json.dumps(results)
    assert not [seed for seed in seeds if seed != PUBLIC_INPUT_SEED and str(seed) in text]


@pytest.mark.slow  # the intake's refusal of links is in the default pass (test_intake, the gallery)
def test_run_autograder_refuses_a_submission_with_a_link_to_the_solutions(package, tmp_path):
    """Gradescope keeps a GitHub or zip submission's symbolic links: they are refused, never followed."""
    files = {f"{module}.py": ROOT / "exercises" / f"{module}.py" for module in MODULES}
    results = run_autograder(package["out"], tmp_path, files, "-k", "to_mono or pool_matches",
                             links={"sol": ROOT / "solutions", "checks.py": tmp_path / "autograder" / "source" / "lab"
                                    / "exercises" / "test_resampling.py"})
    assert_gradescope_schema(results)
    assert results["score"] == 0 and results["tests"]
    for test in results["tests"]:
        assert "submission refused: checks.py: is a symbolic link" in test["output"], test["output"]
    assert "def test_" not in json.dumps(results)  # the linked check's text never reached the feedback


def test_run_autograder_says_where_it_looked_when_the_package_is_missing(tmp_path):
    script = tmp_path / "autograder" / "run_autograder"
    script.parent.mkdir()
    script.write_text(build_run_autograder_text())
    run = subprocess.run(["bash", str(script)], env=dict(os.environ, AUTOGRADER_ROOT=str(script.parent)),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and f"{script.parent}/source" in run.stderr


def build_run_autograder_text():
    from warblr.grading.autograder import RUN_AUTOGRADER

    return RUN_AUTOGRADER.replace("TIMEOUT", "30")


@pytest.mark.slow
def test_run_autograder_gives_full_marks_to_solutions_in_an_exercises_folder(package, tmp_path):
    files = {f"exercises/{module}.py": ROOT / "solutions" / f"{module}.py" for module in MODULES}
    files["exercises/__init__.py"] = ROOT / "solutions" / "__init__.py"
    results = run_autograder(package["out"], tmp_path, files)
    assert_gradescope_schema(results)
    assert results["score"] == results["max_score"] > 0, [t["name"] for t in results["tests"] if t["score"] == 0]
    assert any(test["visibility"] == "hidden" for test in results["tests"])


@pytest.mark.slow
def test_run_autograder_gives_full_marks_to_an_independent_answer(package, tmp_path):
    independent = Path(__file__).resolve().parent / "independent"
    files = {path.name: path for path in independent.glob("*.py")}
    results = run_autograder(package["out"], tmp_path, files)
    assert_gradescope_schema(results)
    assert results["score"] == results["max_score"] > 0, [
        (t["name"], t["output"][:300]) for t in results["tests"] if t["score"] < t["max_score"]]


def test_handout_includes_the_lab_notebook(lab_handout):
    notebook = ROOT / "exercises" / "lab.ipynb"
    assert notebook.is_file()
    assert (lab_handout / "exercises" / "lab.ipynb").read_bytes() == notebook.read_bytes()


#: A mel_matrix answered from a table of torchvggish's matrices, keyed by the band edges it is asked for.
MEL_TABLE_ANSWER = '''

import numpy as _np
from pathlib import Path as _Path

_TABLE = _np.load(_Path(__file__).with_name("mel_table.npz"))


def mel_matrix(num_mel_bins=64, num_spectrogram_bins=257, audio_sample_rate=16000, lower_edge_hertz=125.0,
               upper_edge_hertz=7500.0):
    key = f"{float(lower_edge_hertz):.6f}_{float(upper_edge_hertz):.6f}"
    return _TABLE[key].astype(_np.float64) if key in _TABLE.files else _np.zeros((num_spectrogram_bins, num_mel_bins))
'''


@pytest.mark.slow  # two whole run_autograder gradings of one check
def test_a_table_for_every_stored_seed_earns_nothing_where_the_answers_are_computed_live(package, tmp_path):
    """The package's secret seeds are a pool of 16 that repeats; a student who printed the band edges mel_matrix's
    check asked for, run after run, tabled torchvggish's answers for them and scored (a red-team review). The
    checks whose answers the grader computes itself draw their inputs from a fresh live seed instead."""
    from torchvggish import mel_features

    from exercises import reference

    seeds = json.loads((package["out"] / "lab" / "exercises" / "reference_data" / "manifest.json").read_text())["seeds"]
    edges = {(125.0, 7500.0)} | {(125.0 + reference.Inputs(seed).rng(125).uniform(-25, 25),
                                  7500.0 + reference.Inputs(seed).rng(7500).uniform(-300, 300)) for seed in seeds}
    submission = tmp_path / "submission"
    submission.mkdir()
    np.savez(submission / "mel_table.npz", **{
        f"{lower:.6f}_{upper:.6f}": mel_features.spectrogram_to_mel_matrix(64, 257, 16000, lower, upper).astype(np.float32)
        for lower, upper in edges})
    for module in MODULES:
        text = (ROOT / "exercises" / f"{module}.py").read_text()
        (submission / f"{module}.py").write_text(text + (MEL_TABLE_ANSWER if module == "logmel" else ""))
    files = {path.name: path for path in submission.iterdir()}
    check = "test_mel_matrix_vggish_defaults"
    # The control: with a stored seed given (as when a run is reproduced), the table holds the answers.
    given = run_autograder(package["out"], tmp_path / "given", files, "-k", check, "--input-seed", str(seeds[-1]))
    assert given["score"] == given["max_score"] == 4, given["tests"]
    graded = run_autograder(package["out"], tmp_path / "graded", files, "-k", check)
    assert graded["output"].startswith("input seed: secret (one of the 16 stored")
    assert graded["score"] == 0 and "band edges at" in graded["tests"][0]["output"], graded["tests"]
