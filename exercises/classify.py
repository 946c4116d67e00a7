"""Step 4: from embeddings to a bird / no-bird classifier, evaluated honestly.

A clip yields one embedding per 0.96 s example; pool them into one vector
per clip, then standardise, reduce with PCA and fit a logistic regression,
and estimate the ROC AUC with stratified cross-validation.
"""

import numpy as np  # noqa: F401


def pool(features):
    """One vector per clip: the mean over every axis but the last.

    Parameters
    ----------
    features : array_like
        ``[..., D]``, e.g. ``[examples, 128]`` embeddings or
        ``[examples, 96, 64]`` log-mel examples (-> 64 band means).

    Returns
    -------
    np.ndarray
        ``[D]``.

    Pitfalls
    --------
    Max pooling or a sum is a different feature; averaging over the last
    axis throws the features away.
    """
    raise NotImplementedError("pool")


def make_classifier(n_components, random_state=0):
    """A scikit-learn ``Pipeline``: ``StandardScaler`` -> ``PCA(n_components)`` -> ``LogisticRegression``.

    Concept: PCA keeps the directions of largest variance, so standardise
    first or the features with the largest scale dominate. Pass
    ``random_state`` to every step that takes one.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted.
    """
    raise NotImplementedError("make_classifier")


def cross_validated_auc(X, y, n_components, n_splits=5, random_state=0):
    """Mean ROC AUC over stratified, shuffled cross-validation folds.

    Concept: ``StratifiedKFold(n_splits, shuffle=True,
    random_state=random_state)``; for each split fit a *fresh*
    ``make_classifier(n_components, random_state)`` on the training part
    only, and score ``roc_auc_score`` on the held-out part with the
    predicted *probabilities* (``predict_proba(X_test)[:, 1]``). Return the
    mean of the fold scores as a float.

    Pitfalls
    --------
    Fitting the scaler or PCA on all the data (test-fold leakage), scoring
    the training data, scoring hard labels from ``predict``, or plain
    ``KFold`` (folds without a positive clip) all give a wrong AUC, usually
    an optimistic one.
    """
    raise NotImplementedError("cross_validated_auc")
