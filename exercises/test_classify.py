"""Graded checks for ``classify``: clip pooling, the PCA + logistic-regression pipeline, cross-validated AUC.

Everything is decided here, in the grader, from the numbers your code
returns: your ``make_classifier`` is fitted (where your code runs) on data
chosen here and its probabilities must equal this file's reference pipeline
fitted on the same data; your cross-validated AUC must equal scikit-learn's
``cross_val_score`` of that reference pipeline, computed here; a
closed-form property (no leakage: random labels score about 0.5, learnable
ones what the reference scores); and ``solutions/`` on a seeded data set
(the session's ``inputs``: public when you check yourself, unknown when graded).
"""

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .reference import assert_matches_reference, to_numpy


def reference_pipeline(n_components, random_state=0):
    """The classifier the lab asks for: standardise, PCA, logistic regression."""
    # Written independently of solutions/ (the hint already names these three steps): step names do not change values.
    return make_pipeline(StandardScaler(), PCA(n_components, random_state=random_state),
                         LogisticRegression(max_iter=1000, random_state=random_state))


def folds(n_splits, random_state):
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)


def reference_auc(X, y, n_components, n_splits=5, random_state=0):
    """scikit-learn's cross-validated ROC AUC of :func:`reference_pipeline` (mean over the folds)."""
    return _cached_cv("probabilities", _Data(X, y), n_components, n_splits, random_state)


def labels_auc(X, y, n_components, n_splits=5, random_state=0):
    """The classic mistake's number: mean ROC AUC of hard predicted labels of the reference pipeline."""
    return _cached_cv("labels", _Data(X, y), n_components, n_splits, random_state)


class _Data:
    """``(X, y)`` hashed by value, so a reference AUC is computed once per process for the same data."""

    def __init__(self, X, y):
        self.X, self.y = np.asarray(X), np.asarray(y)
        self.key = (self.X.shape, self.X.tobytes(), self.y.tobytes())

    def __hash__(self):
        return hash(self.key)

    def __eq__(self, other):
        return self.key == other.key


@functools.lru_cache(maxsize=256)
def _cached_cv(scores, data, n_components, n_splits, random_state):
    X, y = data.X, data.y
    if scores == "probabilities":
        return float(cross_val_score(reference_pipeline(n_components, random_state), X, y, scoring="roc_auc",
                                     cv=folds(n_splits, random_state)).mean())
    return float(np.mean([roc_auc_score(y[test], reference_pipeline(n_components, random_state)
                                        .fit(X[train], y[train]).predict(X[test]))
                          for train, test in folds(n_splits, random_state).split(X, y)]))


def student_auc(impl, *args, **kwargs):
    got = impl.classify.cross_validated_auc(*args, **kwargs)
    assert np.ndim(got) == 0, "cross_validated_auc must return one number, the mean AUC over the folds"
    got = float(got)
    assert np.isfinite(got), f"cross_validated_auc returned {got}"
    return got


def assert_near(got, expected, tolerance, message, inputs):
    """Fail with ``message`` unless ``|got - expected| < tolerance``; ``{expected}`` in it is filled in only for public inputs.

    At a graded run's unknown seed the expected value stays hidden (a plain ``assert`` would print it too), so
    failing on purpose over many submissions collects no table of answers.
    """
    if not abs(got - expected) < tolerance:
        raise AssertionError(message.format(expected=f"{expected:.4f}" if inputs.public else "(not shown when graded)"))


def fitted_probabilities(impl, n_components, X, y, *, random_state=0):
    """Positive-class probabilities on ``X`` of your ``make_classifier`` fitted on ``(X, y)``."""
    model = impl.classify.make_classifier(n_components, random_state=random_state)
    model.fit(X, y)  # scikit-learn returns the estimator; its reply is not needed
    got = to_numpy(model.predict_proba(X)).astype(np.float64)
    assert got.shape == (len(X), 2), f"predict_proba gave shape {got.shape}, expected {(len(X), 2)}"
    return got[:, 1]


GRADED = settings(max_examples=6, deadline=None, derandomize=True, database=None,
                  phases=(Phase.explicit, Phase.generate),  # no shrinking: quick feedback
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CV_HINT = ("cross_validated_auc: StratifiedKFold(n_splits, shuffle=True, random_state); in each fold fit a fresh "
           "make_classifier on the training part only (scaler and PCA included: no test-fold leakage), score ROC AUC "
           "on the held-out fold's probabilities (predict_proba[:, 1], not predicted labels), and return the mean of "
           "the fold AUCs")


# ------------------------------------------------------------------ pooling


@pytest.mark.points(3)
@pytest.mark.hint("pool: mean pooling over every axis but the last ([..., D] -> [D]); not max pooling, not the "
                  "median, not a sum, not the mean over the feature axis")
@GRADED
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), dim=st.integers(1, 20), seed=st.integers(0, 2**16))
def test_pool_is_the_mean_over_leading_axes(impl, shape, dim, seed):
    features = np.random.default_rng(seed).normal(size=(*shape, dim))
    got = to_numpy(impl.classify.pool(features))
    assert got.shape == (dim,), f"pool of {features.shape} gave {got.shape}; expected ({dim},)"
    np.testing.assert_allclose(got, features.reshape(-1, dim).mean(axis=0), rtol=1e-6, atol=1e-9)


@pytest.mark.points(1)
@pytest.mark.hint("pool: mean pooling of the seeded [3, 7, 16] features differs from the solution's")
def test_pool_matches_solution(impl, inputs, reference):
    assert_matches_reference(to_numpy(impl.classify.pool(inputs.clip_features())),
                             reference("classify.pool.clip_features"), rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------ the classifier


@pytest.mark.points(3)
@pytest.mark.hint("make_classifier: a sklearn Pipeline of StandardScaler (standardise first), PCA(n_components, "
                  "random_state) and LogisticRegression, in that order: fitted on the same data its probabilities "
                  "must equal that pipeline's")
@pytest.mark.parametrize("n_components", [2, 5])
def test_make_classifier_steps(impl, inputs, n_components):
    X, y = inputs.classification_data()
    got = fitted_probabilities(impl, n_components, X, y)
    expected = reference_pipeline(n_components).fit(X, y).predict_proba(X)[:, 1]
    assert_matches_reference(got, expected, atol=1e-3,
                             what=f"StandardScaler -> PCA({n_components}) -> LogisticRegression's probabilities")


@pytest.mark.points(3)
@pytest.mark.hint("make_classifier: standardise (StandardScaler) before PCA; without it PCA only sees the "
                  "columns with the largest scale and rescaling a feature changes the predictions")
def test_make_classifier_ignores_feature_scale(impl, inputs):
    X, y = inputs.classification_data()
    scales = np.geomspace(1000.0, 0.001, X.shape[1])
    original = fitted_probabilities(impl, 3, X, y)
    rescaled = fitted_probabilities(impl, 3, X * scales, y)
    np.testing.assert_allclose(rescaled, original, atol=1e-4, err_msg="rescaling the features changed the predictions")
    # It must also have learnt what the reference learns (a constant or an untrained model is scale-blind too).
    learnt = roc_auc_score(y, original)
    expected = roc_auc_score(y, reference_pipeline(3).fit(X, y).predict_proba(X)[:, 1])
    assert_near(learnt, expected, 0.02, f"your fitted classifier ranks its own training data with AUC {learnt:.3f}; "
                "the pipeline asked for: {expected}", inputs)


@pytest.mark.points(2)
@pytest.mark.hint("make_classifier: on the seeded data set your fitted pipeline's probabilities differ from the "
                  "solution's (StandardScaler -> PCA(n_components) -> LogisticRegression with its defaults: C=1, no "
                  "class_weight, no extra penalty)")
def test_make_classifier_matches_solution(impl, inputs, reference):
    X, y = inputs.classification_data()
    assert_matches_reference(fitted_probabilities(impl, 4, X, y), reference("classify.make_classifier.proba"),
                             atol=1e-3, what="the solution's probabilities")


# ------------------------------------------------------------------ cross-validation


@pytest.mark.points(4)
@pytest.mark.hint(CV_HINT)
@GRADED
@given(n_components=st.integers(1, 5), n_splits=st.integers(2, 6), random_state=st.integers(0, 1000))
def test_cross_validated_auc_matches_sklearn(impl, inputs, n_components, n_splits, random_state):
    X, y = inputs.classification_data()
    expected = reference_auc(X, y, n_components, n_splits, random_state)
    got = student_auc(impl, X, y, n_components, n_splits=n_splits, random_state=random_state)
    assert_near(got, expected, 1e-6, f"your AUC {got:.4f}, sklearn's cross_val_score gives {{expected}}", inputs)


@pytest.mark.points(4)
@pytest.mark.hint("cross_validated_auc: test-fold leakage. Labels that are pure noise must score an AUC near 0.5: "
                  "fit on the training folds only and score the held-out fold (never fit on all the data, never "
                  "score the data you trained on)")
def test_cross_validated_auc_has_no_leakage(impl, inputs):
    rng = inputs.rng(2024)
    scores = []
    for seed in range(6):  # one run's AUC spreads by about 0.11 around 0.5; six runs by about 0.05
        X = rng.standard_normal((40, 30))
        y = np.repeat([0, 1], 20)
        scores.append(student_auc(impl, X, y, 20, n_splits=4, random_state=seed))
    assert abs(np.mean(scores) - 0.5) < 0.2, (
        f"AUC {np.mean(scores):.2f} on random labels: the test folds leaked into training")
    # ... and labels that can be learnt must score what leak-free cross-validation scores (not a constant 0.5).
    X, y = inputs.classification_data()
    for n_components, random_state in ((2, 1), (4, 2)):
        got = student_auc(impl, X, y, n_components, n_splits=4, random_state=random_state)
        expected = reference_auc(X, y, n_components, 4, random_state)
        assert_near(got, expected, 0.02, f"AUC {got:.3f} on learnable labels, leak-free cross-validation gives "
                    "{expected}", inputs)


@pytest.mark.points(2)
@pytest.mark.hint("cross_validated_auc: score probabilities (predict_proba[:, 1] or decision_function), not hard "
                  "predicted labels: ROC AUC ranks scores, and 0/1 labels throw the ranking away")
def test_cross_validated_auc_uses_probabilities(impl, inputs):
    X, y = inputs.classification_data()
    expected, from_labels = reference_auc(X, y, 4), labels_auc(X, y, 4)
    got = student_auc(impl, X, y, 4)
    diagnosis = " (that is the AUC of hard predicted labels)" if abs(got - from_labels) < 1e-9 else ""
    assert_near(got, expected, 1e-6, f"your AUC {got:.4f}{diagnosis}, expected {{expected}} from probabilities", inputs)


@pytest.mark.points(2)
@pytest.mark.hint("cross_validated_auc: on the seeded data set your mean AUC differs from the solution's: stratified "
                  "shuffled folds with random_state, fit inside each fold, held-out probabilities, mean over folds")
@pytest.mark.parametrize("case, kwargs", [("default", dict(n_components=4)),
                                          ("custom", dict(n_components=2, n_splits=3, random_state=11))])
def test_cross_validated_auc_matches_solution(impl, inputs, reference, case, kwargs):
    got = student_auc(impl, *inputs.classification_data(), **kwargs)
    assert_near(got, float(reference(f"classify.cross_validated_auc.{case}")), 1e-3,
                f"your mean AUC {got:.4f} differs from the solution's ({{expected}}) by 1e-3 or more", inputs)


@pytest.mark.points(2)
@pytest.mark.hint("cross_validated_auc: use StratifiedKFold so every held-out fold has both classes (plain KFold "
                  "can leave a fold with one class, where ROC AUC is undefined)")
@pytest.mark.visibility("hidden")
def test_cross_validated_auc_is_stratified(impl, inputs):
    rng = inputs.rng(5)
    y = np.r_[np.ones(6, dtype=int), np.zeros(54, dtype=int)]   # 10 % positives, sorted
    X = rng.standard_normal((60, 5)) + 1.5 * y[:, None]
    got = student_auc(impl, X, y, 2, n_splits=6, random_state=3)
    assert abs(got - reference_auc(X, y, 2, 6, 3)) < 1e-6
