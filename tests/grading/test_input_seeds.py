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
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from warblr.grading.seeds import PUBLIC_INPUT_SEED, choose_input_seed, draw_secret_seeds

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


def config(tmp_path, *, input_seed=None, grade_json=None, isolate=False):
    """A stand-in for pytest's config: the options choose_input_seed reads, rooted at ``tmp_path``."""
    options = {"input_seed": input_seed, "grade_json": grade_json, "isolate": isolate}
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
