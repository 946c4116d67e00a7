"""Input seeds: graded runs use seeded inputs the student cannot know, so a table of the handout's answers earns nothing.

The handout ships the solutions' answers for the public seed's inputs
(``exercises/reference_data``). These tests show: the grader picks the seed
per mode (public for a self-check, a fresh or a stored secret one when
grading counts) and says which kind on the results' first line; the handout
stores only the public seed and the Gradescope package adds secret ones; the
lazy entry ``lookup_table_of_the_handout_answers`` scores on the
reference-comparison checks at the public seed (the control: this test can
fail) and nothing at a random one; and correct code (``solutions/`` and the
independent answer) scores full marks on every check that uses the seeded
inputs, whatever the seed.
"""

import inspect
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from warblr.grading import batch
from warblr.grading.batch import (INPUT_SEED_FILE, GradingOptions, batch_input_seed, grade_batch, grade_submission,
                                  submission_options)
from warblr.grading.intake import take_in
from warblr.grading.handout import ROOT_CONFTEST, write_tree
from warblr.grading.seeds import PUBLIC_INPUT_SEED, choose_input_seed, draw_secret_seeds, fresh_seed

ROOT = Path(__file__).resolve().parents[2]
INDEPENDENT = Path(__file__).resolve().parent / "independent"
pytestmark = pytest.mark.skipif(not (ROOT / "solutions" / "__init__.py").is_file(),
                                reason="needs the lab's solutions/")

#: Checks the lookup table beats at the public seed: the seven reference comparisons and two live ones fed
#: the same inputs (torchvggish's postprocessor on pca_inputs, sklearn's AUC on classification_data).
TABLE_CHECKS = ["test_logmel.py::test_log_mel_matches_solution", "test_logmel.py::test_waveform_to_examples_44k_stereo",
                "test_embedding.py::test_postprocess_matches_solution",
                "test_embedding.py::test_postprocess_matches_torchvggish",
                "test_classify.py::test_pool_matches_solution", "test_classify.py::test_make_classifier_matches_solution",
                "test_classify.py::test_cross_validated_auc_matches_solution",
                "test_classify.py::test_cross_validated_auc_uses_probabilities"]
REFERENCE_CASE_CHECKS = 7  # TABLE_CHECKS' reference comparisons, the parametrized one counted twice

#: Fixtures that carry the session's seeded inputs into a check.
SEEDED = {"inputs", "reference", "log_mel_examples"}


def seeded_checks(*, cheap_only=False):
    """Every graded check whose inputs come from the session's seed: those taking the seeded inputs (found from
    the checks' signatures, so none is missed) and the property checks (their examples are drawn from it)."""
    import importlib

    found = []
    for module in ("resampling", "logmel", "embedding", "classify"):
        tests = importlib.import_module(f"exercises.test_{module}")
        for name, function in sorted(vars(tests).items()):
            if not name.startswith("test_") or not callable(function):
                continue
            fixtures = set(inspect.signature(function).parameters)
            if (fixtures & SEEDED or hasattr(function, "hypothesis")) and not (
                    cheap_only and "log_mel_examples" in fixtures):  # VGG forward passes
                found.append(f"test_{module}.py::{name}")
    return found


def config(tmp_path, *, input_seed=None, input_seed_file=None, grade_json=None, isolate=False):
    """A stand-in for pytest's config: the options choose_input_seed reads, rooted at ``tmp_path``."""
    options = {"input_seed": input_seed, "input_seed_file": input_seed_file, "grade_json": grade_json,
               "isolate": isolate}
    return SimpleNamespace(getoption=options.__getitem__, rootpath=tmp_path)


def lab(tmp_path, *, solutions=False, seeds=None):
    """A lab root with solutions/ (live reference) or a reference_data manifest holding ``seeds``."""
    if solutions:
        (tmp_path / "solutions").mkdir()
        (tmp_path / "solutions" / "__init__.py").write_text("")
    if seeds is not None:
        data = tmp_path / "exercises" / "reference_data"
        data.mkdir(parents=True)
        (data / "manifest.json").write_text(json.dumps({"seeds": seeds}))
    return tmp_path


# ------------------------------------------------------------------ the seed per mode


def test_a_self_check_uses_the_public_seed_and_grading_a_random_one(tmp_path):
    root = lab(tmp_path, solutions=True)
    assert choose_input_seed(config(root)) == (PUBLIC_INPUT_SEED, "input seed: public (the handout's inputs)",
                                               PUBLIC_INPUT_SEED)
    for graded in (dict(grade_json="results.json"), dict(isolate=True), dict(input_seed="random")):
        first, note, live = choose_input_seed(config(root, **graded))
        second, _, _ = choose_input_seed(config(root, **graded))
        assert live == first  # a fresh seed never repeats: the live inputs may follow it
        assert first != second and PUBLIC_INPUT_SEED not in (first, second)  # fresh each run (secrets, 2**62)
        assert note == f"input seed: random ({first}, fresh for this run)"
    assert choose_input_seed(config(root, input_seed="public", isolate=True))[0] == PUBLIC_INPUT_SEED
    assert choose_input_seed(config(root, input_seed="42", grade_json="r.json"))[0] == 42
    for bad in ("soon", "-1", str(2**63)):
        with pytest.raises(pytest.UsageError, match="--input-seed"):
            choose_input_seed(config(root, input_seed=bad))


def test_without_solutions_grading_picks_a_stored_secret_seed_and_never_names_it(tmp_path):
    package = lab(tmp_path / "package", seeds=[0, 111, 222, 333])
    picked = {choose_input_seed(config(package, isolate=True), choose=lambda seeds: seeds[i])[0] for i in range(3)}
    assert picked == {111, 222, 333}  # any secret one, never the public one
    seed, note, live = choose_input_seed(config(package, grade_json="r.json"))
    assert seed in (111, 222, 333)
    assert note.startswith("input seed: secret (one of the 3 stored for grading; ") and str(seed) not in note
    # The pool repeats, so the inputs whose answers are computed live come from a fresh seed every run.
    lives = {choose_input_seed(config(package, isolate=True), choose=lambda seeds: seeds[0]).live for _ in range(3)}
    assert len(lives) == 3 and not lives & {0, 111, 222, 333} and live not in lives
    # A given seed (a batch's, or one reproducing a run) is the live seed too.
    assert choose_input_seed(config(package, input_seed="222", isolate=True))[::2] == (222, 222)
    # A handout holds only the public seed: a graded run there falls back to it and says so.
    handout = lab(tmp_path / "handout", seeds=[0])
    seed, note, live = choose_input_seed(config(handout, isolate=True))
    assert seed == live == PUBLIC_INPUT_SEED and note.startswith("input seed: public (no secret input seeds here")


def test_secret_seeds_are_distinct_fresh_and_not_public():
    first, second = draw_secret_seeds(16), draw_secret_seeds(16)
    assert len(set(first)) == 16 and PUBLIC_INPUT_SEED not in first and first != second


def flat(value):
    """One float64 vector of a builder's output (an array or a tuple of arrays)."""
    return np.concatenate([np.ravel(array).astype(np.float64) for array in (value if isinstance(value, tuple)
                                                                           else (value,))])


def test_the_public_seed_gives_the_inputs_every_caller_knew():
    from exercises import reference

    public, other = reference.Inputs(), reference.Inputs(9)
    for name in ("noise_16k", "stereo_44k", "clip_features", "classification_data", "pca_inputs"):
        plain = flat(getattr(reference, name)())  # the no-argument call of earlier callers
        np.testing.assert_array_equal(flat(getattr(public, name)()), plain)
        assert flat(getattr(other, name)()).shape == plain.shape
        assert not np.array_equal(flat(getattr(other, name)()), plain), name
    assert repr(other) == "Inputs(<seed>)"  # a failing check's message never shows a secret seed


def test_the_live_seed_moves_the_checks_own_inputs_and_never_the_stored_answers_inputs():
    from exercises import reference

    pooled, fresh = reference.Inputs(9, live_seed=123456789), reference.Inputs(9, live_seed=987654321)
    assert reference.Inputs(9).live_seed == 9
    for name in ("noise_16k", "stereo_44k", "clip_features", "classification_data", "pca_inputs"):
        np.testing.assert_array_equal(flat(getattr(pooled, name)()), flat(getattr(reference.Inputs(9), name)()))
    assert pooled.rng(125).uniform() != fresh.rng(125).uniform()  # e.g. mel_matrix's moved band edges
    assert pooled.rng(125).uniform() == reference.Inputs(123456789).rng(125).uniform()


# ------------------------------------------------------------------ what is stored where


def test_the_handout_stores_only_the_public_seed(lab_handout):
    from exercises import reference

    data = lab_handout / "exercises" / "reference_data"
    assert json.loads((data / "manifest.json").read_text())["seeds"] == [PUBLIC_INPUT_SEED]
    stored = reference.Reference.from_data(data)
    assert stored.seeds == [PUBLIC_INPUT_SEED]
    secret = 7_310_452_986_113  # digits no temporary path or count holds by chance (a "5" did: pytest-57)
    with pytest.raises(LookupError, match="holds 1 seed") as error:
        stored.bind(secret)
    assert str(secret) not in str(error.value)


# ------------------------------------------------------------------ the lookup table of the handout's answers


def test_lookup_table_of_the_handout_answers_scores_only_at_the_public_seed(galleries, stubs_with, grade_in_process):
    table = next(entry for entry in galleries["lazy"] if entry.name == "lookup_table_of_the_handout_answers")
    assert table.input_seed == "random"  # how the lazy gallery (test_lazy.py) grades it
    folder = stubs_with(table.code, name="lookup_table")
    public = grade_in_process(folder, TABLE_CHECKS, isolate=False, input_seed="public")["results"]
    graded = grade_in_process(folder, TABLE_CHECKS, isolate=False, input_seed="random")["results"]
    # The control: at the public seed the table earns every reference comparison (and two live checks).
    assert public["output"].splitlines()[0] == "input seed: public (the handout's inputs)"
    won = [test["name"] for test in public["tests"] if test["status"] == "passed"]
    assert len(won) == len(public["tests"]) == REFERENCE_CASE_CHECKS + 2, public["output"]
    assert public["score"] == public["max_score"] > 0
    # Graded: inputs it has no answers for; nothing.
    assert graded["output"].splitlines()[0].startswith("input seed: random (")
    assert len(graded["tests"]) == len(public["tests"])
    assert graded["score"] == 0 and {test["status"] for test in graded["tests"]} == {"failed"}, graded["output"]


# ------------------------------------------------------------------ correct code at any seed


def grade_correct(grade_in_process, folder, seed, selection):
    outcome = grade_in_process(folder, selection, isolate=False, input_seed=str(seed))
    results = outcome["results"]
    assert results["output"].splitlines()[0] == "input seed: the one given with --input-seed (not named here)"
    if seed >= 10**6:  # a long number cannot appear by chance: a batch's seed is reused on regrades, so hidden
        assert str(seed) not in results["output"]
    lost = {test["name"]: test["output"][:300] for test in results["tests"] if test["score"] < test["max_score"]}
    assert not lost and results["score"] == results["max_score"] > 0, f"{folder.name} at input seed {seed}: {lost}"


@pytest.mark.parametrize("seed", [1, 2**62 - 1])
def test_solutions_pass_the_reference_comparisons_at_other_seeds(grade_in_process, seed):
    grade_correct(grade_in_process, ROOT / "solutions", seed, TABLE_CHECKS)


#: Seeds of the slow sweep: small, large, and arbitrary ones (the secret seeds come from the same range).
SWEEP = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 1601, 4410, 2**31 - 1, 2**40 + 3, 987654321987654321]


@pytest.mark.slow
@pytest.mark.parametrize("folder", [ROOT / "solutions", INDEPENDENT], ids=["solutions", "independent"])
@pytest.mark.parametrize("seed", SWEEP)
def test_correct_code_scores_full_marks_on_every_seeded_check_at_many_seeds(grade_in_process, folder, seed):
    grade_correct(grade_in_process, folder, seed, seeded_checks())


#: A right periodic_hann that writes down every window length a check asks it for.
RECORDING_HANN = '''

def periodic_hann(window_length):
    import os

    import numpy as np

    with open(os.environ["WARBLR_RECORDED_CALLS"], "a") as record:
        record.write(f"{window_length}\\n")
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window_length) / window_length)
'''


def test_property_checks_draw_their_examples_from_the_input_seed(stubs_with, grade_in_process, tmp_path,
                                                                  monkeypatch):
    """The same examples on every self-check (public seed), others at every graded seed: a table of answers to the
    examples a property check drew before (computed offline with torchvggish) answers nothing when grading counts."""
    folder = stubs_with({"logmel": RECORDING_HANN}, name="recording")

    def examples(seed):
        record = tmp_path / f"calls-{seed}-{len(list(tmp_path.iterdir()))}.txt"
        monkeypatch.setenv("WARBLR_RECORDED_CALLS", str(record))
        outcome = grade_in_process(folder, ["test_logmel.py::test_periodic_hann"], isolate=False, input_seed=seed)
        assert outcome["results"]["score"] == outcome["results"]["max_score"] > 0, outcome["failed"]
        return record.read_text().split()

    public = examples("public")
    assert len(public) >= 10 and examples("public") == public
    graded = [examples(seed) for seed in (1, 2)]
    assert graded[0] != public and graded[1] != public and graded[0] != graded[1], (public, graded)


# ------------------------------------------------------------------ a batch's seed: never on a command line
#
# Command lines are world-readable (/proc/<pid>/cmdline): any local user of the grading machine read a batch's
# secret seed off its graders' `--input-seed=N` while it ran. The seed goes in a file now, which only the
# grader's user may read (--input-seed-file), and the sandboxed worker cannot see.

GIVEN_FILE_NOTE = "input seed: the one given with --input-seed-file (not named here)"


def seed_file(folder, data, *, mode=0o600, name="seed.json"):
    """A seed file in ``folder`` (made if need be) holding ``data`` (JSON-encoded unless a str), with ``mode``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    path.chmod(mode)
    return path


def test_grade_submission_hands_the_seed_over_in_a_private_file_never_on_the_command_line(tmp_path, monkeypatch):
    secret = fresh_seed()
    options = GradingOptions(lab=str(tmp_path), input_seed=secret, leaderboard=True,
                             timing_lock=str(tmp_path / "timing.lock"))
    seen = []

    def run_checks(**kwargs):  # what grade_submission gives the grading pytest, looked at while it would run
        args = list(kwargs["pytest_args"])
        given = [arg.split("=", 1)[1] for arg in args if arg.startswith("--input-seed-file=")]
        info = os.lstat(given[0]) if given else None
        seen.append({"args": args, "file": given[0] if given else None, "stat": info,
                     "data": json.loads(Path(given[0]).read_text()) if given else None})
        return {"results": {"tests": []}, "crashes": 0}

    monkeypatch.setattr(batch, "run_checks", run_checks)
    grade_submission(str(tmp_path), options)
    (call,) = seen
    assert not any(str(secret) in arg for arg in call["args"]), call["args"]  # the old --input-seed=N
    assert call["file"] and call["data"]["input_seed"] == secret
    assert stat.S_ISREG(call["stat"].st_mode) and stat.S_IMODE(call["stat"].st_mode) == 0o600
    assert call["stat"].st_uid == os.geteuid()
    assert not os.path.lexists(call["file"])  # gone once the grading (every restart included) is over
    assert "--grade-leaderboard" in call["args"] and f"--grade-timing-lock={tmp_path / 'timing.lock'}" in call["args"]
    # The options' own arguments: the file's path, never the seed; no file, no arguments (a seed is never dropped).
    args = options.pytest_args(input_seed_file="/graders/seed.json")
    assert "--input-seed-file=/graders/seed.json" in args and not any(str(secret) in arg for arg in args)
    with pytest.raises(ValueError, match="input seed file"):
        options.pytest_args()
    # No batch seed (a lab without solutions/: each grading picks a stored one): no file, no seed option.
    seen.clear()
    grade_submission(str(tmp_path), GradingOptions(lab=str(tmp_path)))
    assert not any(arg.startswith("--input-seed") for arg in seen[0]["args"])
    assert GradingOptions(lab=".").pytest_args() == []


def test_input_seed_file_gives_its_seed_and_the_note_never_names_it(tmp_path):
    root = lab(tmp_path, solutions=True)
    secret = fresh_seed()
    path = seed_file(tmp_path / "secret", {"input_seed": secret, "note": "the batch's"})
    for graded in ({}, {"isolate": True}, {"grade_json": "r.json"}):
        seed, note, live = choose_input_seed(config(root, input_seed_file=str(path), **graded))
        assert seed == live == secret and note == GIVEN_FILE_NOTE
    assert choose_input_seed(config(root, input_seed_file=str(seed_file(tmp_path / "zero", {"input_seed": 0}))))[0] == 0
    # In a package too: a given seed is the live seed, as with --input-seed.
    package = lab(tmp_path / "package", seeds=[0, 111, 222])
    assert choose_input_seed(config(package, input_seed_file=str(path), isolate=True))[::2] == (secret, secret)


def refused_seed_files(folder, secret):
    """``{case: (path, what the error says)}``: seed files the option must refuse."""
    good = {"input_seed": secret}
    folder.mkdir()
    target = seed_file(folder / "elsewhere", good)
    (folder / "link.json").symlink_to(target)
    os.mkfifo(folder / "fifo.json", 0o600)
    (folder / "folder.json").mkdir(mode=0o700)
    cases = {
        "missing": (folder / "missing.json", "no such file"),
        "symlink": (folder / "link.json", "symbolic link"),
        "fifo": (folder / "fifo.json", "not a regular file"),
        "device": (Path("/dev/zero"), "not a regular file"),
        "folder": (folder / "folder.json", "not a regular file"),
        "large": (seed_file(folder, json.dumps(good) + " " * 70_000, name="large.json"), "larger than"),
        "not json": (seed_file(folder, f'{{"input_seed": {secret}', name="cut.json"), "not JSON"),
        "not an object": (seed_file(folder, [secret], name="list.json"), '{"input_seed": N}'),
        "no seed": (seed_file(folder, {"seed": secret}, name="other.json"), '{"input_seed": N}'),
        "a string": (seed_file(folder, {"input_seed": str(secret)}, name="string.json"), "an integer"),
        "a float": (seed_file(folder, {"input_seed": float(secret)}, name="float.json"), "an integer"),
        "a bool": (seed_file(folder, {"input_seed": True}, name="bool.json"), "an integer"),
        "negative": (seed_file(folder, {"input_seed": -secret}, name="negative.json"), "[0, 2**63)"),
        "too large": (seed_file(folder, {"input_seed": 2**63 + secret}, name="huge.json"), "[0, 2**63)"),
        "others may read": (seed_file(folder, good, mode=0o644, name="public.json"), "chmod 600"),
        "group may read": (seed_file(folder, good, mode=0o640, name="group.json"), "chmod 600"),
    }
    if os.geteuid() == 0:  # a file the sandbox user wrote would let a student choose the inputs (the public ones)
        import pwd

        foreign = seed_file(folder, good, name="foreign.json")
        os.chown(foreign, pwd.getpwnam("nobody").pw_uid, -1)
        cases["another owner"] = (foreign, "owned by")
    return cases


def test_input_seed_file_refuses_links_fifos_devices_large_files_bad_json_and_files_others_may_read(tmp_path):
    root = lab(tmp_path, solutions=True)
    secret = fresh_seed()
    cases = refused_seed_files(tmp_path / "files", secret)
    for case, (path, says) in cases.items():
        with pytest.raises(pytest.UsageError) as error:
            choose_input_seed(config(root, input_seed_file=str(path), isolate=True))
        message = str(error.value)
        assert message.startswith(f"--input-seed-file {path}: "), (case, message)
        assert says in message, (case, message)
        assert str(secret) not in message and str(secret)[:12] not in message, (case, message)  # never echoed
    # One way to give the seed at a time.
    good = seed_file(tmp_path / "good", {"input_seed": secret})
    with pytest.raises(pytest.UsageError, match="--input-seed and --input-seed-file: give one of them, not both"):
        choose_input_seed(config(root, input_seed="5", input_seed_file=str(good)))


def test_the_batch_keeps_its_seed_in_a_file_only_the_grader_reads(tmp_path):
    (tmp_path / "lab").mkdir()
    root = lab(tmp_path / "lab", solutions=True)
    out = tmp_path / "out"
    out.mkdir(mode=0o755)  # a folder others may search: the file's own mode must keep the seed
    seed = batch_input_seed(out, root)
    path = out / INPUT_SEED_FILE
    info = os.lstat(path)
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600, oct(info.st_mode)
    assert info.st_uid == os.geteuid() and not list(out.glob(".tmp-*"))
    assert choose_input_seed(config(root, input_seed_file=str(path)))[0] == seed  # the option reads it as is
    # An OUT from an earlier warblr (a 0644 file, in its 0700 folder): made private and reused.
    path.chmod(0o644)
    assert batch_input_seed(out, root) == seed and stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    # A link in its place is not followed (nor replaced: the batch stops and says why).
    path.unlink()
    path.symlink_to(seed_file(tmp_path / "planted", {"input_seed": 5}))
    with pytest.raises(Exception, match="symbolic link"):
        batch_input_seed(out, root)


def test_the_sandbox_user_cannot_read_the_batch_seed(tmp_path):
    """The worker runs as the sandbox user (grading as root): even where it can reach OUT, the file refuses it."""
    if os.geteuid() != 0:
        pytest.skip("needs root (to run a process as the sandbox user nobody)")
    root = lab(tmp_path, solutions=True)
    shared = Path(tempfile.mkdtemp(prefix="warblr-seed-test-", dir="/tmp"))  # pytest's own tmp is root's only
    try:
        shared.chmod(0o755)
        batch_input_seed(shared, root)
        code = ("import sys\ntry:\n    open(sys.argv[1]).read()\nexcept PermissionError:\n    print('refused')\n"
                "else:\n    print('read')\n")
        run = subprocess.run([sys.executable, "-I", "-c", code, str(shared / INPUT_SEED_FILE)], user="nobody",
                             capture_output=True, text=True, timeout=60)
        if run.stdout.strip() not in ("refused", "read"):
            pytest.skip(f"the user nobody cannot run this Python here: {run.stderr[-300:]}")
        assert run.stdout.strip() == "refused"
    finally:
        shutil.rmtree(shared, ignore_errors=True)


#: A tiny lab's only check: passes only where the session's input seed is ``{seed}`` (given to the grader).
SEED_CHECK = """\
import pytest


@pytest.mark.points(2)
def test_the_session_uses_the_batch_seed(impl, input_seed, live_input_seed):
    assert impl.logmel.double(4) == 8
    assert input_seed == live_input_seed == {seed}
"""
DOUBLE = "def double(x):\n    return 2 * x\n"


def seeded_lab(folder, seed):
    """A lab with solutions/ (so a batch draws its own seed) whose check passes at input seed ``seed`` only."""
    write_tree(folder, {"conftest.py": ROOT_CONFTEST, "pytest.ini": "[pytest]\n", "exercises/__init__.py": "",
                        "exercises/test_logmel.py": SEED_CHECK.format(seed=seed), "solutions/__init__.py": "",
                        "solutions/logmel.py": DOUBLE})
    return folder


def submission(folder):
    write_tree(folder, {"logmel.py": DOUBLE, "resampling.py": "", "embedding.py": "", "classify.py": ""})
    return folder


def test_each_submission_of_a_batch_gets_its_own_inputs_from_its_files(tmp_path):
    """A red-team review: with one seed per batch, a student whose failing check printed its inputs into feedback
    tabled the answers, and a later submission into the same OUT (a classmate's, a resubmission) scored 4/4 on
    mel_matrix from the table. Inputs follow the submission's files now: the table changes them."""
    options = GradingOptions(lab=".", input_seed=fresh_seed())
    honest = {"logmel.py": DOUBLE.encode()}
    with_table = {**honest, "table.npz": b"answers to the inputs seen in feedback"}
    seed = submission_options(options, honest).input_seed
    assert seed == submission_options(options, dict(honest)).input_seed  # same files: same inputs (resume, Ray)
    assert seed not in (options.input_seed, submission_options(options, with_table).input_seed, PUBLIC_INPUT_SEED)
    other_batch = GradingOptions(lab=".", input_seed=options.input_seed + 1)
    assert submission_options(other_batch, honest).input_seed != seed
    assert submission_options(GradingOptions(lab="."), honest).input_seed is None  # no solutions/: stored seeds


@pytest.mark.slow  # a real isolated grading (~5 s): the slow pass
def test_a_grading_uses_the_given_seed_and_no_command_line_shows_it(tmp_path, command_lines):
    """grade_submission end to end (the batch's grader: a child pytest, isolated workers): the check sees the seed."""
    secret = fresh_seed()
    lab_folder = seeded_lab(tmp_path / "lab", secret)
    with command_lines() as watched:
        graded = grade_submission(str(submission(tmp_path / "alice")),
                                  GradingOptions(lab=str(lab_folder), timeout=60.0, input_seed=secret))
    assert not [line for line in watched.seen if str(secret) in line]
    assert any("--input-seed-file=" in line for line in watched.seen)  # the watcher saw the grader
    results = graded["results"]
    assert results["score"] == results["max_score"] == 2, results
    assert results["output"].splitlines()[0] == GIVEN_FILE_NOTE and str(secret) not in json.dumps(results)


@pytest.mark.slow
def test_a_batch_puts_its_seed_on_no_command_line(tmp_path, command_lines):
    """A real ``grade batch`` (two submissions, two graders, resumed once): each submission's seed, derived from the
    batch's secret and its files, reaches its grading (the check passes at that seed only), is kept for ``grade
    run`` in the student's folder, and neither seed shows on any process's command line."""
    secret = fresh_seed()
    for name in ("alice", "bob"):
        submission(tmp_path / "submissions" / name)
    own = submission_options(GradingOptions(lab=".", input_seed=secret),
                             take_in(tmp_path / "submissions" / "alice").files).input_seed
    assert own != secret
    lab_folder = seeded_lab(tmp_path / "lab", own)  # the three submissions hold the same files
    out = tmp_path / "out"
    seed_file(out, {"input_seed": secret, "note": "drawn before: the batch reuses it"}, name=INPUT_SEED_FILE)
    with command_lines() as watched:
        summary = grade_batch(tmp_path / "submissions", out=out, lab=lab_folder, jobs=2, timeout=60.0,
                              progress=False, log=lambda _: None)
        submission(tmp_path / "submissions" / "carol")
        again = grade_batch(tmp_path / "submissions", out=out, lab=lab_folder, jobs=2, timeout=60.0,
                            progress=False, log=lambda _: None)
    assert not [line for line in watched.seen if str(secret) in line or str(own) in line]
    assert any("--input-seed-file=" in line for line in watched.seen)  # the watcher saw the graders
    assert summary.graded == 2 and again.graded == 1 and again.reused == 2 and not again.problems, again.problems
    for name in ("alice", "bob", "carol"):
        results = json.loads((out / "students" / name / "results.json").read_text())
        assert results["score"] == results["max_score"] == 2, (name, results)
        assert results["output"].splitlines()[0] == GIVEN_FILE_NOTE
        kept = out / "students" / name / INPUT_SEED_FILE
        assert json.loads(kept.read_text())["input_seed"] == own and stat.S_IMODE(os.lstat(kept).st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(out / INPUT_SEED_FILE).st_mode) == 0o600
