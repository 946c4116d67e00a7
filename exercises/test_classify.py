"""Graded checks for ``classify``: clip pooling, the PCA + logistic-regression pipeline, cross-validated AUC.

The cross-validation is compared with scikit-learn's own ``cross_val_score``
on your ``make_classifier``, run next to your code (``impl.probe``), so a
classifier mistake is not counted twice; with a closed-form property (no
leakage: random labels score about 0.5); and with ``solutions/`` on a fixed
data set.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .reference import classification_data, clip_features, to_numpy


def qualified(cls):
    """``module.Class``: how ``impl.probe("class_name", obj)`` names a class."""
    return f"{cls.__module__}.{cls.__qualname__}"


GRADED = settings(max_examples=6, deadline=None, derandomize=True, database=None,
                  phases=(Phase.explicit, Phase.generate),  # no shrinking: quick feedback
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CV_HINT = ("cross_validated_auc: StratifiedKFold(n_splits, shuffle=True, random_state); in each fold fit a fresh "
           "make_classifier on the training part only (scaler and PCA included: no test-fold leakage), score ROC AUC on the held-out fold's probabilities "
           "(predict_proba[:, 1], not predicted labels), and return the mean of the fold AUCs")


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
@pytest.mark.hint("pool: mean pooling of the fixed [3, 7, 16] features differs from the solution's")
def test_pool_matches_solution(impl, reference):
    np.testing.assert_allclose(to_numpy(impl.classify.pool(clip_features())), reference("classify.pool.clip_features"),
                               rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------ the classifier


@pytest.mark.points(3)
@pytest.mark.hint("make_classifier: a sklearn Pipeline of StandardScaler (standardise first), PCA(n_components, "
                  "random_state) and LogisticRegression, in that order")
@pytest.mark.parametrize("n_components", [2, 5])
def test_make_classifier_steps(impl, n_components):
    model = impl.classify.make_classifier(n_components, random_state=0)
    kind = impl.probe("class_name", model)
    assert kind == qualified(Pipeline), f"make_classifier returned {kind}, not a sklearn Pipeline"
    kinds = [impl.probe("class_name", step) for _, step in model.steps]
    expected = [qualified(cls) for cls in (StandardScaler, PCA, LogisticRegression)]
    assert kinds == expected, f"pipeline steps {[k.rsplit('.', 1)[-1] for k in kinds]}"
    assert model.steps[1][1].n_components == n_components


@pytest.mark.points(3)
@pytest.mark.hint("make_classifier: standardise (StandardScaler) before PCA; without it PCA only sees the "
                  "columns with the largest scale and rescaling a feature changes the predictions")
def test_make_classifier_ignores_feature_scale(impl):
    X, y = classification_data()
    scales = np.geomspace(1000.0, 0.001, X.shape[1])
    original = impl.classify.make_classifier(3, random_state=0).fit(X, y).predict_proba(X)[:, 1]
    rescaled = impl.classify.make_classifier(3, random_state=0).fit(X * scales, y).predict_proba(X * scales)[:, 1]
    np.testing.assert_allclose(rescaled, original, atol=1e-4)


@pytest.mark.points(2)
@pytest.mark.hint("make_classifier: on the fixed data set your fitted pipeline's probabilities differ from the "
                  "solution's (StandardScaler -> PCA(n_components) -> LogisticRegression with its defaults: C=1, no "
                  "class_weight, no extra penalty)")
def test_make_classifier_matches_solution(impl, reference):
    X, y = classification_data()
    got = impl.classify.make_classifier(4, random_state=0).fit(X, y).predict_proba(X)[:, 1]
    np.testing.assert_allclose(got, reference("classify.make_classifier.proba"), atol=1e-3)


# ------------------------------------------------------------------ cross-validation


@pytest.mark.points(4)
@pytest.mark.hint(CV_HINT)
@GRADED
@given(n_components=st.integers(1, 5), n_splits=st.integers(2, 6), random_state=st.integers(0, 1000))
def test_cross_validated_auc_matches_sklearn(impl, n_components, n_splits, random_state):
    X, y = classification_data()
    model = impl.classify.make_classifier(n_components, random_state=random_state)
    expected = impl.probe("cross_val_auc", model, X, y, n_splits, random_state)
    got = impl.classify.cross_validated_auc(X, y, n_components, n_splits=n_splits, random_state=random_state)
    assert np.ndim(got) == 0, "cross_validated_auc must return one number, the mean AUC over the folds"
    assert abs(float(got) - expected) < 1e-6, (
        f"your AUC {float(got):.4f}, sklearn's cross_val_score gives {expected:.4f}")


@pytest.mark.points(4)
@pytest.mark.hint("cross_validated_auc: test-fold leakage. Labels that are pure noise must score an AUC near 0.5: "
                  "fit on the training folds only and score the held-out fold (never fit on all the data, never "
                  "score the data you trained on)")
def test_cross_validated_auc_has_no_leakage(impl):
    rng = np.random.default_rng(2024)
    scores = []
    for seed in range(6):  # one run's AUC spreads by about 0.11 around 0.5; six runs by about 0.05
        X = rng.standard_normal((40, 30))
        y = np.repeat([0, 1], 20)
        scores.append(impl.classify.cross_validated_auc(X, y, 20, n_splits=4, random_state=seed))
    assert abs(np.mean(scores) - 0.5) < 0.2, (
        f"AUC {np.mean(scores):.2f} on random labels: the test folds leaked into training")


@pytest.mark.points(2)
@pytest.mark.hint("cross_validated_auc: score probabilities (predict_proba[:, 1] or decision_function), not hard "
                  "predicted labels: ROC AUC ranks scores, and 0/1 labels throw the ranking away")
def test_cross_validated_auc_uses_probabilities(impl):
    X, y = classification_data()
    model = impl.classify.make_classifier(4, random_state=0)
    expected = impl.probe("cross_val_auc", model, X, y, 5, 0)
    labels_auc = impl.probe("labels_auc", model, X, y, 5, 0)
    got = float(impl.classify.cross_validated_auc(X, y, 4))
    diagnosis = " (that is the AUC of hard predicted labels)" if abs(got - labels_auc) < 1e-9 else ""
    assert abs(got - expected) < 1e-6, f"your AUC {got:.4f}{diagnosis}, expected {expected:.4f} from probabilities"


@pytest.mark.points(2)
@pytest.mark.hint("cross_validated_auc: on the fixed data set your mean AUC differs from the solution's: stratified "
                  "shuffled folds with random_state, fit inside each fold, held-out probabilities, mean over folds")
@pytest.mark.parametrize("case, kwargs", [("default", dict(n_components=4)),
                                          ("custom", dict(n_components=2, n_splits=3, random_state=11))])
def test_cross_validated_auc_matches_solution(impl, reference, case, kwargs):
    got = float(impl.classify.cross_validated_auc(*classification_data(), **kwargs))
    assert abs(got - float(reference(f"classify.cross_validated_auc.{case}"))) < 1e-3


@pytest.mark.points(2)
@pytest.mark.hint("cross_validated_auc: use StratifiedKFold so every held-out fold has both classes (plain KFold "
                  "can leave a fold with one class, where ROC AUC is undefined)")
@pytest.mark.visibility("hidden")
def test_cross_validated_auc_is_stratified(impl):
    rng = np.random.default_rng(5)
    y = np.r_[np.ones(6, dtype=int), np.zeros(54, dtype=int)]   # 10 % positives, sorted
    X = rng.standard_normal((60, 5)) + 1.5 * y[:, None]
    auc = float(impl.classify.cross_validated_auc(X, y, 2, n_splits=6, random_state=3))
    expected = impl.probe("cross_val_auc", impl.classify.make_classifier(2, random_state=3), X, y, 6, 3)
    assert abs(auc - expected) < 1e-6
