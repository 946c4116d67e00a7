"""Does a feature set carry ``hasbird``? PCA + logistic regression, cross-validated ROC AUC, plots.

Clip-level features are pooled over a clip's 0.96 s examples (the mean, or
for log-mel also each band's standard deviation and maximum); each
estimator is a scikit-learn ``Pipeline`` (standardise, PCA, logistic
regression) fitted inside every cross-validation fold, so nothing from a
test fold leaks into its model. Plots use matplotlib's Agg backend and are
written as PNG files.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidArgumentError

__all__ = [
    "PCA_SIZES",
    "pool_log_mel",
    "pool_log_mel_stats",
    "pool_embeddings",
    "make_classifier",
    "effective_folds",
    "pca_sizes",
    "cross_validated_auc",
    "pca_sweep",
    "plot_pca_scatter",
    "plot_roc",
    "plot_auc_sweep",
    "plot_log_mel_pair",
]

#: PCA sizes tried by default (capped by the number of features and training samples).
PCA_SIZES = (2, 4, 8, 16, 32, 64)


def _frames(examples):
    """A clip's log-mel examples ``[N, frames, bands]`` as one ``[N * frames, bands]`` float64 array."""
    examples = np.asarray(examples, dtype=np.float64)
    if examples.ndim != 3 or examples.shape[0] == 0:
        raise InvalidArgumentError(f"examples: expected a non-empty [N, 96, 64] array, got shape {examples.shape}")
    return examples.reshape(-1, examples.shape[2])


def pool_log_mel(examples):
    """Pool one clip's log-mel examples ``[N, 96, 64]`` into a ``[64]`` vector (mean over examples and frames).

    Examples
    --------
    >>> pool_log_mel(np.ones((3, 96, 64))).shape
    (64,)
    """
    return _frames(examples).mean(axis=0)


def pool_log_mel_stats(examples):
    """Pool one clip's log-mel examples ``[N, 96, 64]`` into each band's mean, standard deviation and maximum.

    The statistics run over all frames of the clip (every example's frames
    together). A bird call is transient: a few loud frames in one band move
    its maximum and standard deviation a lot but its mean very little, so
    these keep what mean pooling (:func:`pool_log_mel`) washes out.

    Parameters
    ----------
    examples : array_like, ``[N, frames, bands]``
        One clip's log-mel examples, ``N >= 1``.

    Returns
    -------
    ndarray of float64, ``[3 * bands]``
        The per-band means, then the standard deviations (``ddof=0``), then the maxima.

    Raises
    ------
    InvalidArgumentError
        ``examples`` is not a non-empty 3-D array.

    Examples
    --------
    >>> x = np.zeros((2, 96, 64))
    >>> x[1, 5, 0] = 192.0  # one loud frame in band 0
    >>> mean, std, peak = pool_log_mel_stats(x).reshape(3, 64)[:, 0]
    >>> float(mean), float(peak)
    (1.0, 192.0)
    >>> pool_log_mel_stats(np.ones((3, 96, 64))).shape
    (192,)
    """
    frames = _frames(examples)
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0), frames.max(axis=0)])


def pool_embeddings(embeddings):
    """Pool one clip's embeddings ``[N, 128]`` into a ``[128]`` vector (mean over examples).

    Examples
    --------
    >>> pool_embeddings(np.ones((3, 128))).shape
    (128,)
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or embeddings.shape[0] == 0:
        raise InvalidArgumentError(f"embeddings: expected a non-empty [N, D] array, got shape {embeddings.shape}")
    return embeddings.mean(axis=0)


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
        raise InvalidArgumentError(f"features {features.shape} and labels {labels.shape}: expected [n, d] and [n]")
    if not set(np.unique(labels)) <= {0, 1}:
        raise InvalidArgumentError("labels: expected only 0 and 1")
    if not np.all(np.isfinite(features)):
        raise InvalidArgumentError("features: contain NaN or Inf")
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
    if folds < 2:
        raise InvalidArgumentError(f"folds must be at least 2, got {folds}")
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


def cross_validated_auc(features, labels, *, n_components, folds=5, random_state=0):
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


def pca_sweep(features, labels, *, sizes=PCA_SIZES, folds=5, random_state=0):
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


# --------------------------------------------------------------------------- plots

_COLOURS = {0: "#1f77b4", 1: "#d62728"}
_NAMES = {0: "no bird (hasbird=0)", 1: "bird (hasbird=1)"}


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt, plt.subplots(*args, **kwargs)


def _save(plt, fig, path, title, *, tight=True):
    if tight:  # not for figures made with layout="constrained"
        fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Title": title, "Software": "warblr"})
    plt.close(fig)
    return path


def plot_pca_scatter(features, labels, *, title, path, random_state=0):
    """Scatter the first two principal components (of standardised features), coloured by label.

    The projection is fitted on all clips: it is a picture, not a model.
    """
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    features, labels = _check_xy(features, labels)
    pca = PCA(n_components=2, random_state=random_state)
    points = pca.fit_transform(StandardScaler().fit_transform(features))
    plt, (fig, ax) = _figure(figsize=(6.4, 5.2))
    for label in (0, 1):
        chosen = labels == label
        ax.scatter(points[chosen, 0], points[chosen, 1], s=14, alpha=0.7, c=_COLOURS[label],
                   label=f"{_NAMES[label]}, n={int(chosen.sum())}", edgecolors="none")
    ratio = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC 1 ({ratio[0]:.0%} of variance; projection fitted on all clips, for display)")
    ax.set_ylabel(f"PC 2 ({ratio[1]:.0%} of variance)")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title, fontsize=9)
    return _save(plt, fig, path, title)


def plot_roc(curves, labels, *, title, path):
    """ROC curves from out-of-fold scores.

    Parameters
    ----------
    curves : dict
        ``name -> result`` of :func:`cross_validated_auc` (uses ``scores``, ``mean``, ``std``, ``pca``).
    labels : array_like of 0/1
    """
    from sklearn.metrics import roc_curve

    labels = np.asarray(labels, dtype=int)
    plt, (fig, ax) = _figure(figsize=(5.8, 5.4))
    for name, result in curves.items():
        fpr, tpr, _ = roc_curve(labels, result["scores"])
        ax.plot(fpr, tpr, lw=2, label=(f"{name}, PCA {result['pca']}: "
                                       f"AUC {result['mean']:.3f} ± {result['std']:.3f} over folds"))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance (AUC 0.5)")
    ax.set_xlabel("false positive rate (no-bird clips called bird)")
    ax.set_ylabel("true positive rate (bird clips found)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=9)
    return _save(plt, fig, path, title)


def plot_auc_sweep(sweeps, *, title, path):
    """Cross-validated AUC (mean ± std over folds) against PCA size, one line per feature set.

    Parameters
    ----------
    sweeps : dict
        ``name -> list`` of :func:`cross_validated_auc` results.
    """
    plt, (fig, ax) = _figure(figsize=(6.0, 4.4))
    for name, sweep in sweeps.items():
        sizes = [r["pca"] for r in sweep]
        ax.errorbar(sizes, [r["mean"] for r in sweep], yerr=[r["std"] for r in sweep], marker="o", capsize=3,
                    label=name)
    ax.axhline(0.5, ls="--", c="grey", lw=1, label="chance")
    ax.set_xscale("log", base=2)
    ticks = sorted({r["pca"] for sweep in sweeps.values() for r in sweep})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("PCA components (standardised features)")
    ax.set_ylabel("ROC AUC (mean ± std over CV folds)")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title, fontsize=9)
    return _save(plt, fig, path, title)


def plot_log_mel_pair(bird, no_bird, *, title, path, names=("bird", "no bird")):
    """Log-mel images of a bird and a no-bird clip, side by side.

    Parameters
    ----------
    bird, no_bird : array_like
        ``[N, 96, 64]`` examples of one clip each (drawn end to end in time).
    names : (str, str)
        Panel titles.
    """
    from . import spec

    images = [np.asarray(x, dtype=np.float64).reshape(-1, spec.NUM_BANDS) for x in (bird, no_bird)]
    low = min(float(im.min()) for im in images)
    high = max(float(im.max()) for im in images)
    plt, (fig, axes) = _figure(1, 2, figsize=(11, 4.4), sharey=True, layout="constrained")
    for ax, image, name in zip(axes, images, names):
        seconds = image.shape[0] * spec.STFT_HOP_LENGTH_SECONDS
        shown = ax.imshow(image.T, origin="lower", aspect="auto", cmap="magma", vmin=low, vmax=high,
                          extent=(0, seconds, 0, spec.NUM_BANDS))
        ax.set_xlabel("time (s)")
        ax.set_title(name, fontsize=9)
    axes[0].set_ylabel(f"mel band ({spec.MEL_MIN_HZ:.0f}-{spec.MEL_MAX_HZ:.0f} Hz, HTK)")
    fig.colorbar(shown, ax=axes, label="log(mel + 0.01)")
    fig.suptitle(title, fontsize=9)
    return _save(plt, fig, path, title, tight=False)
