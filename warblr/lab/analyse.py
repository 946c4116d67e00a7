"""``warblr analyse``: does a feature set carry ``hasbird``? PCA + logistic regression, ROC AUC, report.

Clip-level features come from the feature-set registry
(:mod:`warblr.lab.feature_sets`); each estimator is a scikit-learn
``Pipeline`` (standardise, PCA, logistic regression) fitted inside every
cross-validation fold, so nothing from a test fold leaks into its model.
:func:`analyse` extracts (or reuses) the items, cross-validates every
feature set over a sweep of PCA sizes and, given a second dataset, fits each
feature set's best pipeline on the first and scores the second (the DCASE
2018 cross-dataset question), then writes the report and the plots.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from .. import __version__, spec
from ..errors import InvalidArgumentError, WarblrError
from ..fileio import exclusive, remove_temporaries
from ..validation import check_scalar
from . import store
from .dataset import Problem
from .distributed import run_extract
from .extract import DEFAULT_GROUP_SIZE
from .feature_sets import FEATURE_SETS, STATS_NOTE, pool_clip
from .plots import plot_report
from .report import REPORT_JSON, publish_report, remove_stale_staging, versions

__all__ = [
    "PCA_SIZES",
    "DEFAULT_FOLDS",
    "make_classifier",
    "effective_folds",
    "pca_sizes",
    "cross_validated_auc",
    "pca_sweep",
    "fit_and_score",
    "load_features",
    "analyse",
]

#: PCA sizes tried by default (capped by the number of features and training samples).
PCA_SIZES = (2, 4, 8, 16, 32, 64)
#: Stratified cross-validation folds by default (fewer when a class is smaller).
DEFAULT_FOLDS = 5


def make_classifier(n_components, *, random_state=0):
    """Standardise, reduce with PCA, then logistic regression.

    Parameters
    ----------
    n_components : int
        PCA size.
    random_state : int, keyword-only

    Returns
    -------
    sklearn.pipeline.Pipeline

    Examples
    --------
    >>> [name for name, _ in make_classifier(4).steps]
    ['scale', 'pca', 'logreg']
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([
        ("scale", StandardScaler()),
        ("pca", PCA(n_components=int(n_components), random_state=random_state)),
        ("logreg", LogisticRegression(max_iter=2000, random_state=random_state)),
    ])


def _check_xy(features, labels):
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or labels.ndim != 1 or features.shape[0] != labels.shape[0]:
        reason = f"expected [n, d] and [n], got {features.shape} and {labels.shape}"
        raise InvalidArgumentError(f"features, labels: {reason}", parameter="features", reason=reason)
    if not set(np.unique(labels)) <= {0, 1}:
        raise InvalidArgumentError("labels: expected only 0 and 1", parameter="labels", reason="expected only 0 and 1")
    if not np.all(np.isfinite(features)):
        raise InvalidArgumentError("features: contain NaN or Inf", parameter="features", reason="contain NaN or Inf")
    return features, labels.astype(int)


def effective_folds(labels, folds):
    """The number of stratified folds the labels allow: ``min(folds, smaller class size)``.

    Raises
    ------
    InvalidArgumentError
        Fewer than two items of either class (no cross-validation possible).

    Examples
    --------
    >>> effective_folds([0, 0, 0, 1, 1, 1, 1], 5)
    3
    """
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=2)
    folds = check_scalar(folds, "folds", min_val=2)
    if counts.min() < 2:
        raise InvalidArgumentError(
            f"cross-validation needs at least 2 items of each class, got {counts[1]} bird and {counts[0]} no-bird")
    return int(min(folds, counts.min()))


def pca_sizes(n_features, n_samples, folds, *, sizes=PCA_SIZES):
    """The PCA sizes that fit: at most the features and the smallest training fold.

    Examples
    --------
    >>> pca_sizes(64, 20, 5)
    [2, 4, 8, 16]
    """
    n_train = n_samples - int(np.ceil(n_samples / folds))
    cap = min(n_features, n_train)
    fitting = sorted({int(s) for s in sizes if 1 <= s <= cap})
    return fitting or [max(1, min(2, cap))]


def cross_validated_auc(features, labels, *, n_components, folds=DEFAULT_FOLDS, random_state=0):
    """Stratified cross-validated ROC AUC of :func:`make_classifier`.

    Parameters
    ----------
    features : array_like, ``[n, d]``
    labels : array_like of 0/1, ``[n]``
    n_components : int, keyword-only
    folds : int, keyword-only
        Reduced to the smaller class size when needed.
    random_state : int, keyword-only
        Seeds the fold split and the estimators.

    Returns
    -------
    dict
        ``mean``, ``std`` (over folds), ``folds`` (AUC per fold), ``pca``, and
        ``scores`` (out-of-fold decision scores, ``[n]``) for ROC curves.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 20)
    >>> X = rng.standard_normal((40, 5)) + y[:, None]
    >>> cross_validated_auc(X, y, n_components=2, folds=4)["mean"] > 0.8
    True
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    features, labels = _check_xy(features, labels)
    folds = effective_folds(labels, folds)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    scores = np.zeros(labels.shape[0])
    per_fold = []
    for train, test in splitter.split(features, labels):
        model = make_classifier(n_components, random_state=random_state).fit(features[train], labels[train])
        scores[test] = model.decision_function(features[test])
        per_fold.append(float(roc_auc_score(labels[test], scores[test])))
    return {"pca": int(n_components), "mean": float(np.mean(per_fold)), "std": float(np.std(per_fold)),
            "folds": per_fold, "scores": scores}


def pca_sweep(features, labels, *, sizes=PCA_SIZES, folds=DEFAULT_FOLDS, random_state=0):
    """:func:`cross_validated_auc` for each PCA size that fits; the best one first chosen by mean AUC.

    Returns
    -------
    best : dict
        The result with the highest mean AUC (the smaller size on ties).
    sweep : list of dict
        One result per size, in increasing size.
    """
    features, labels = _check_xy(features, labels)
    folds = effective_folds(labels, folds)
    sweep = [cross_validated_auc(features, labels, n_components=k, folds=folds, random_state=random_state)
             for k in pca_sizes(features.shape[1], features.shape[0], folds, sizes=sizes)]
    best = max(sweep, key=lambda result: (round(result["mean"], 12), -result["pca"]))
    return best, sweep


def fit_and_score(train_features, train_labels, test_features, *, n_components, random_state=0):
    """Fit :func:`make_classifier` on one set and score another (whose labels it never sees).

    Parameters
    ----------
    train_features : array_like, ``[n, d]``
    train_labels : array_like of 0/1, ``[n]``
    test_features : array_like, ``[m, d]``
    n_components : int, keyword-only
        PCA size (capped by the training set).
    random_state : int, keyword-only

    Returns
    -------
    ndarray, ``[m]``
        Decision scores of the test clips (higher: more likely a bird).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 20)
    >>> X = rng.standard_normal((40, 5)) + y[:, None]
    >>> fit_and_score(X, y, X[:3] + 5, n_components=2).shape
    (3,)
    """
    train_features, train_labels = _check_xy(train_features, train_labels)
    test_features = np.asarray(test_features, dtype=np.float64)
    if test_features.ndim != 2 or test_features.shape[1] != train_features.shape[1]:
        reason = f"expected [m, {train_features.shape[1]}], got {test_features.shape}"
        raise InvalidArgumentError(f"test_features: {reason}", parameter="test_features", reason=reason)
    n_components = min(int(n_components), *train_features.shape)
    model = make_classifier(n_components, random_state=random_state).fit(train_features, train_labels)
    return model.decision_function(test_features)


def load_features(dataset, out, done, *, feature_sets=FEATURE_SETS):
    """Ids, labels and pooled features of the finished items.

    Parameters
    ----------
    dataset : warblr.lab.dataset.Dataset
    out : str or os.PathLike
        The output folder holding ``items/``.
    done : list of str
        Finished item ids (from :func:`warblr.lab.extract.extract`).
    feature_sets : sequence of FeatureSet, keyword-only

    Returns
    -------
    ids : list of str
    labels : ndarray of int
    features : dict
        ``key -> [n, dims]`` float64, one row per id.
    n_examples : int
        0.96 s examples in all.
    problems : list of Problem
        Items unreadable after extract.
    """
    by_id = {item.item_id: item for item in dataset.items}
    ids, labels, n_examples, problems = [], [], 0, []
    pooled = {entry.key: [] for entry in feature_sets}
    for item_id in done:
        path = store.item_path(out, item_id)
        stored = store.read_item(path)
        if stored is None:
            problems.append(Problem(item_id, f"{path}: unreadable after extract"))
            continue
        examples, embeddings = stored
        ids.append(item_id)
        labels.append(by_id[item_id].label)
        for key, vector in pool_clip(examples, embeddings, feature_sets=feature_sets).items():
            pooled[key].append(vector)
        n_examples += examples.shape[0]
    features = {key: np.array(rows).reshape(len(ids), -1) for key, rows in pooled.items()}
    return ids, np.array(labels, dtype=int), features, n_examples, problems


def _counts(dataset, ids, labels, n_examples, skipped, result):
    return {"rows": dataset.rows, "items": len(ids), "bird": int(labels.sum()), "no_bird": int(len(ids) - labels.sum()),
            "examples": int(n_examples), "skipped": len(skipped), "computed": result.computed,
            "reused": result.reused}


def _public(result):
    return {k: v for k, v in result.items() if k != "scores"}


def _extract_and_load(dataset, out, *, model, provenance, group_size, engine, progress, feature_sets, ray, hop):
    result = run_extract(dataset, out, model=model, provenance=provenance, group_size=group_size, engine=engine,
                         progress=progress, ray=ray, hop=hop)
    t0 = time.perf_counter()
    ids, labels, features, n_examples, late = load_features(dataset, out, result.done, feature_sets=feature_sets)
    load_seconds = time.perf_counter() - t0
    skipped = list(dataset.problems) + list(result.failed) + late
    return result, load_seconds, ids, labels, features, n_examples, skipped


def analyse(dataset, out, *, model, provenance, folds=DEFAULT_FOLDS, seed=0, pca_sizes=None,
            group_size=DEFAULT_GROUP_SIZE, engine=None, progress=True, command="analyse", test_dataset=None,
            feature_sets=FEATURE_SETS, ray=None, hop=spec.EXAMPLE_HOP_SECONDS):
    """Extract (or reuse), pool per clip, cross-validate each feature set, write the report and plots.

    Parameters
    ----------
    dataset : warblr.lab.dataset.Dataset
        The training set (cross-validated).
    out : str or os.PathLike
    model : VGGish, keyword-only
    provenance : warblr.weights.WeightsProvenance, keyword-only
    folds : int, keyword-only
        Stratified CV folds (fewer when a class is smaller).
    seed : int, keyword-only
        Seeds the folds and estimators.
    pca_sizes : sequence of int, optional, keyword-only
        Defaults to :data:`PCA_SIZES`.
    group_size, engine, progress : keyword-only
        See :func:`warblr.lab.extract.extract`.
    ray : warblr.lab.distributed.RaySettings, optional, keyword-only
        Extract on a Ray cluster (same groups, same store, bit-identical items).
    command : str, keyword-only
        Recorded in the report.
    test_dataset : warblr.lab.dataset.Dataset, optional, keyword-only
        A held-out set: each feature set's pipeline, its PCA size chosen by
        cross-validation on ``dataset`` only, is fitted on all of ``dataset``
        and scored on this one (items stored under ``OUT/test/``).
    feature_sets : sequence of FeatureSet, keyword-only
        Default: the registry.
    hop : float, keyword-only
        Seconds between example starts (see :func:`warblr.lab.extract.extract`); in the report.

    Returns
    -------
    dict
        The report (also written to ``out/report.json`` and ``out/report.md``).

    Notes
    -----
    The output folder's lock is held from the first item read to the last
    plot written, and the report and plots are published as one set
    (:func:`warblr.lab.report.publish_report`), so a concurrent ``extract``
    or ``analyse`` on the same folder is refused rather than mixed in.

    Raises
    ------
    WarblrError
        Too few items of a class to cross-validate (after skipping bad ones).
    OutputError
        The output folder cannot be written; finished items are kept.
    """
    from ..embed import make_engine
    from ..features import hop_frames

    started = time.perf_counter()
    out = Path(os.fspath(out))
    folds = check_scalar(folds, "folds", min_val=2)
    hop_frames(hop)  # a bad hop fails before any work
    engine = make_engine() if engine is None else engine
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise store.output_error(out, exc, 0) from exc
    with exclusive(out, what=f"warblr {command}"):
        remove_temporaries(out)
        remove_stale_staging(out)
        return _analyse_locked(dataset, out, model=model, provenance=provenance, folds=folds, seed=seed,
                               pca_sizes=pca_sizes, group_size=group_size, engine=engine, progress=progress,
                               command=command, test_dataset=test_dataset, feature_sets=feature_sets, ray=ray,
                               hop=hop, started=started)


def _analyse_locked(dataset, out, *, model, provenance, folds, seed, pca_sizes, group_size, engine, progress,
                    command, test_dataset, feature_sets, ray, hop, started):
    """:func:`analyse`'s work, with the output folder's lock held."""
    from ..runtime import runtime_settings

    common = dict(model=model, provenance=provenance, group_size=group_size, engine=engine, progress=progress,
                  feature_sets=feature_sets, ray=ray, hop=hop)
    result, load_seconds, ids, labels, features, n_examples, skipped = _extract_and_load(dataset, out, **common)
    try:
        folds_used = effective_folds(labels, folds)
    except InvalidArgumentError as exc:
        raise WarblrError(f"{dataset.root}: {exc} after skipping {len(skipped)} bad item(s)") from exc
    test = None
    if test_dataset is not None:
        t_result, _, t_ids, t_labels, t_features, t_examples, t_skipped = _extract_and_load(
            test_dataset, out / "test", **common)
        if len(t_ids) == 0:
            raise WarblrError(f"{test_dataset.root}: no usable test item after skipping {len(t_skipped)} bad item(s)")
        test = {"data": str(test_dataset.root), "labels": t_labels, "results": {},
                "counts": _counts(test_dataset, t_ids, t_labels, t_examples, t_skipped, t_result),
                "skipped": t_skipped, "seconds": t_result.seconds}
    t0 = time.perf_counter()
    sizes = tuple(pca_sizes) if pca_sizes else PCA_SIZES
    results = {}
    steps = feature_sets
    if progress:
        from tqdm import tqdm

        steps = tqdm(feature_sets, desc="cross-validate", unit="feature set", file=sys.stderr)
    for entry in steps:
        best, sweep = pca_sweep(features[entry.key], labels, sizes=sizes, folds=folds_used, random_state=seed)
        results[entry.key] = {"best": best, "sweep": sweep}
        if test is not None:
            scores = fit_and_score(features[entry.key], labels, t_features[entry.key], n_components=best["pca"],
                                   random_state=seed)
            test["results"][entry.key] = {"pca": best["pca"], "scores": scores, "auc": _auc(t_labels, scores)}
    t_cv = time.perf_counter() - t0
    t0 = time.perf_counter()

    auc = {}
    for entry in feature_sets:
        auc[entry.key] = {"name": entry.name, "features": entry.dims, "source": entry.source,
                          "pooling": entry.description, "best": _public(results[entry.key]["best"]),
                          "sweep": [_public(r) for r in results[entry.key]["sweep"]]}
        if test is not None:
            auc[entry.key]["test"] = _public(test["results"][entry.key])
    report = {
        "warblr": __version__,
        "command": command,
        "data": str(dataset.root),
        "metadata": str(dataset.metadata),
        "weights": provenance.as_dict(),
        "counts": _counts(dataset, ids, labels, n_examples, skipped, result),
        "cv": {"folds": folds_used, "seed": seed,
               "pooling": "per clip; see each feature set's pooling", "pooling_note": STATS_NOTE,
               "estimator": "StandardScaler + PCA + LogisticRegression, fitted inside each fold",
               "best": "the PCA size with the highest mean AUC in the sweep (chosen on the same folds, "
                       "so slightly optimistic)"},
        "auc": auc,
        "skipped": [p.as_dict() for p in skipped],
        "plots": [],  # filled in by publish_report
        "timings": {"extract_s": round(result.seconds, 3), "load_s": round(load_seconds, 3),
                    "cv_s": round(t_cv, 3)},
        "engine": {**engine.as_dict(), "group_size": group_size, "hop": hop, **runtime_settings(),
                   **({"ray_actors": result.runtime} if result.runtime else {})},
        "versions": versions(),
    }
    if test is not None:
        report["test"] = {"data": test["data"], "counts": test["counts"],
                          "method": "each feature set's pipeline fitted on all of --data with the PCA size chosen "
                                    "by cross-validation on --data only; test labels are used only to score",
                          "skipped": [p.as_dict() for p in test["skipped"]]}
        report["timings"]["test_extract_s"] = round(test["seconds"], 3)

    def make_plots(folder):
        plots = plot_report(folder, ids=ids, labels=labels, features=features, results=results,
                            provenance=provenance, feature_sets=feature_sets, random_state=seed, test=test,
                            read_examples=lambda item_id: store.read_item(store.item_path(out, item_id))[0])
        report["timings"]["plots_s"] = round(time.perf_counter() - t0, 3)
        report["timings"]["total_s"] = round(time.perf_counter() - started, 3)
        return plots

    try:
        publish_report(out, report, make_plots=make_plots)
    except OSError as exc:
        raise store.output_error(out / REPORT_JSON, exc, len(result.done)) from exc
    return report


def _auc(labels, scores):
    """ROC AUC, or None when the test set has a single class (AUC undefined)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if len(set(labels.tolist())) == 2 else None
