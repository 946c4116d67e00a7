"""Step 4: clip features, PCA + logistic regression and cross-validated ROC AUC (solution)."""

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def pool(features):
    """Mean over every axis but the last: ``[..., D]`` -> ``[D]``."""
    features = np.asarray(features, dtype=np.float64)
    return features.reshape(-1, features.shape[-1]).mean(axis=0)


def make_classifier(n_components, random_state=0):
    """Standardise, reduce with PCA to ``n_components``, then logistic regression."""
    return Pipeline([
        ("scale", StandardScaler()),
        ("pca", PCA(n_components=n_components, random_state=random_state)),
        ("logreg", LogisticRegression(max_iter=1000, random_state=random_state)),
    ])


def cross_validated_auc(X, y, n_components, n_splits=5, random_state=0):
    """Mean ROC AUC over stratified, shuffled folds; fitted on each training part only."""
    X, y = np.asarray(X), np.asarray(y)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    scores = []
    for train, test in folds.split(X, y):
        model = clone(make_classifier(n_components, random_state=random_state))
        model.fit(X[train], y[train])
        scores.append(roc_auc_score(y[test], model.predict_proba(X[test])[:, 1]))
    return float(np.mean(scores))
