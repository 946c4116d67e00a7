"""Mean pooling, standardise -> PCA -> logistic regression, stratified cross-validated ROC AUC."""

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def pool(features):
    values = np.asarray(features, dtype=np.float64)
    return values.reshape(-1, values.shape[-1]).mean(axis=0)


def make_classifier(n_components, random_state=0):
    return make_pipeline(StandardScaler(), PCA(n_components=n_components, random_state=random_state),
                         LogisticRegression(max_iter=2000, random_state=random_state))


def cross_validated_auc(X, y, n_components, n_splits=5, random_state=0):
    X, y = np.asarray(X), np.asarray(y)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    scores = [roc_auc_score(y[test], make_classifier(n_components, random_state).fit(X[train], y[train])
                            .decision_function(X[test]))
              for train, test in folds.split(X, y)]
    return float(np.mean(scores))
