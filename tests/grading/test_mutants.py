"""The mutant gallery: every classic mistake loses points, and the failing check's hint names it.

Graded as ``warblr grade run`` grades: the mutant runs in isolated workers
(see ``conftest.py``: ``mutant`` and ``alternative`` run once per gallery entry).
"""

import pytest


def test_mutant_is_caught_with_a_hint_naming_it(mutant, apply_mutant, grade_in_process):
    outcome = grade_in_process(apply_mutant(mutant), [mutant.catches])
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


def test_other_good_resamplers_get_full_marks(alternative, apply_mutant, grade_in_process):
    pytest.importorskip(alternative.name.split("_")[0])
    outcome = grade_in_process(apply_mutant(alternative), [alternative.catches])
    assert outcome["exit_code"] == 0 and not outcome["failed"], f"{alternative.name} lost points: {outcome['failed']}"
    assert outcome["results"]["score"] == outcome["results"]["max_score"]


def test_gallery_is_large_and_unique(galleries):
    names = [m.name for m in galleries["mutant"]]
    assert len(names) >= 18 and len(set(names)) == len(names)


def test_the_default_pass_grades_named_entries_of_every_module(galleries, default_pass):
    for kind, names in default_pass.items():
        known = {entry.name for entry in galleries[kind]}
        assert names <= known, f"DEFAULT_PASS names {sorted(names - known)} that the {kind} gallery lacks"
    modules = {m.module for m in galleries["mutant"] if m.name in default_pass["mutant"]}
    assert modules == {m.module for m in galleries["mutant"]}, "every graded module has a mutant in the default pass"
