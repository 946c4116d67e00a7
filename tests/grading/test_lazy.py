"""The lazy gallery: answers that skip the work (None, zeros, constants, echoes, noise, NaN, dummy estimators) score 0.

Each entry of ``lazy.py`` is graded on every check (``grade_in_process``:
in this process for the default pass, in isolated workers as ``warblr grade
run`` grades in the slow pass). Every check it reaches must reject it:
zero points, no partial credit. The tally per check is printed at the end
of the run ("lazy answers rejected per graded check").
"""

import pytest

#: The speed checks call these modules.
TIMED_MODULES = {"logmel", "embedding"}


def reachable_checks(lazy):
    """The check files that call the modules ``lazy`` answers (the stubs of the others only raise)."""
    files = [f"test_{module}.py" for module in ("resampling", "logmel", "embedding", "classify") if module in lazy.code]
    return files + ["test_speed.py"] * bool(TIMED_MODULES & set(lazy.code))


def grade_lazy(lazy, stubs_with, grade_in_process, tally, *, isolate):
    outcome = grade_in_process(stubs_with(lazy.code, name=f"lazy_{lazy.name}"), reachable_checks(lazy),
                               isolate=isolate)
    results = outcome["results"]
    assert results.get("tests"), f"{lazy.name}: no results ({outcome['exit_code']})"
    reached = [test for test in results["tests"] if test["extra_data"]["outcome"] != "not_attempted"]
    assert reached, f"{lazy.name} reached no check"
    for test in reached:
        verdict = "rejected" if test["score"] == 0 and test["status"] == "failed" else "accepted"
        names = tally.setdefault(test["name"], {"rejected": [], "accepted": []})[verdict]
        if lazy.name not in names:
            names.append(lazy.name)
    scored = {test["name"]: test["score"] for test in results["tests"] if test["score"] or test["status"] == "passed"}
    assert not scored, f"the lazy answer {lazy.name} earned points: {scored}"
    assert results["score"] == 0


def test_lazy_answer_scores_zero(lazy, stubs_with, grade_in_process, lazy_rejections):
    grade_lazy(lazy, stubs_with, grade_in_process, lazy_rejections, isolate=False)


@pytest.mark.slow
@pytest.mark.usefixtures("needs_uid_separation")
def test_lazy_answer_scores_zero_isolated(lazy, stubs_with, grade_in_process, lazy_rejections):
    grade_lazy(lazy, stubs_with, grade_in_process, lazy_rejections, isolate=True)


def test_lazy_gallery_covers_the_classic_shortcuts(galleries):
    names = {entry.name for entry in galleries["lazy"]}
    assert {"none", "zeros", "typical_constant", "random", "nan", "inf", "echo", "dummy_classifier_auc_half",
            "embed_never_calls_the_model", "resample_input_mean_right_length", "postprocess_mid_codes"} <= names
    assert len(names) == len(galleries["lazy"])
