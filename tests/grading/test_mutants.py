"""The mutant gallery: every classic mistake loses points, and the failing check's hint names it."""

import pytest

from mutants import ALTERNATIVES, MUTANTS, apply, grade


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_is_caught_with_a_hint_naming_it(mutant, tmp_path):
    folder = apply(mutant, tmp_path)
    outcome = grade(folder, [mutant.catches], tmp_path)
    check = mutant.catches.split("::")[-1]
    assert outcome["exit_code"] == 1, f"{mutant.name}: pytest exit code {outcome['exit_code']}"
    failed_names = {name.split("[")[0] for name in outcome["failed"]}
    assert check in failed_names, f"{mutant.name} was not caught by {check} (failed: {sorted(failed_names)})"
    hints = " ".join(outcome["failed"].values()).lower()
    assert any(keyword.lower() in hints for keyword in mutant.keywords), (
        f"{mutant.name}: no failing hint names the mistake {mutant.keywords}: {outcome['failed']}")
    results = outcome["results"]
    assert results["score"] < results["max_score"], f"{mutant.name} lost no points"
    lost = [test for test in results["tests"] if test["score"] < test["max_score"]]
    assert any(any(k.lower() in test["output"].lower() for k in mutant.keywords) for test in lost), (
        f"{mutant.name}: results.json output of the failed checks does not name the mistake")


@pytest.mark.parametrize("alternative", ALTERNATIVES, ids=[a.name for a in ALTERNATIVES])
def test_other_good_resamplers_get_full_marks(alternative, tmp_path):
    pytest.importorskip(alternative.name.split("_")[0])
    folder = apply(alternative, tmp_path)
    outcome = grade(folder, [alternative.catches], tmp_path)
    assert outcome["exit_code"] == 0 and not outcome["failed"], f"{alternative.name} lost points: {outcome['failed']}"
    assert outcome["results"]["score"] == outcome["results"]["max_score"]


def test_gallery_is_large_and_unique():
    names = [m.name for m in MUTANTS]
    assert len(names) >= 18 and len(set(names)) == len(names)
