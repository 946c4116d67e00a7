"""The lab's plots: PCA scatter, ROC curves, AUC against PCA size, log-mel images.

Each function draws one PNG with a :class:`matplotlib.figure.Figure` made
directly (no pyplot), so plotting never depends on, nor changes, the
matplotlib backend: that choice belongs to whoever runs the code (the
``warblr`` command line draws to files; a notebook shows inline).
:func:`plot_report` draws every plot of a report, looping over the
feature-set registry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import spec
from ..errors import InvalidArgumentError

__all__ = ["PLOTS_DIR", "plot_pca_scatter", "plot_roc", "plot_auc_sweep", "plot_log_mel_pair", "plot_report"]

PLOTS_DIR = "plots"
_COLOURS = {0: "#1f77b4", 1: "#d62728"}
_NAMES = {0: "no bird (hasbird=0)", 1: "bird (hasbird=1)"}
_DPI = 110


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig, path, title, *, tight=True):
    if tight:  # not for figures made with layout="constrained"
        fig.tight_layout()
    fig.savefig(path, dpi=_DPI, metadata={"Title": title, "Software": "warblr"})
    return path


def _labels(labels, n):
    labels = np.asarray(labels)
    if labels.shape != (n,) or not set(np.unique(labels)) <= {0, 1}:
        raise InvalidArgumentError(f"labels: expected {n} values of 0 or 1, got shape {labels.shape}",
                                   parameter="labels", reason=f"expected {n} values of 0 or 1")
    return labels.astype(int)


def plot_pca_scatter(features, labels, *, title, path, random_state=0):
    """Scatter the first two principal components (of standardised features), coloured by label.

    The projection is fitted on all clips: it is a picture, not a model.

    Parameters
    ----------
    features : array_like, ``[n, d]``
    labels : array_like of 0/1, ``[n]``
    title : str, keyword-only
    path : str or os.PathLike, keyword-only
        The PNG to write.
    random_state : int, keyword-only

    Returns
    -------
    path
    """
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(features, dtype=np.float64)
    labels = _labels(labels, features.shape[0])
    pca = PCA(n_components=2, random_state=random_state)
    points = pca.fit_transform(StandardScaler().fit_transform(features))
    fig = _figure(figsize=(6.4, 5.2))
    ax = fig.subplots()
    for label in (0, 1):
        chosen = labels == label
        ax.scatter(points[chosen, 0], points[chosen, 1], s=14, alpha=0.7, c=_COLOURS[label],
                   label=f"{_NAMES[label]}, n={int(chosen.sum())}", edgecolors="none")
    ratio = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC 1 ({ratio[0]:.0%} of variance; projection fitted on all clips, for display)")
    ax.set_ylabel(f"PC 2 ({ratio[1]:.0%} of variance)")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title, fontsize=9)
    return _save(fig, path, title)


def plot_roc(curves, labels, *, title, path):
    """ROC curves from decision scores.

    Parameters
    ----------
    curves : dict
        ``name -> result`` with ``scores`` (``[n]``), ``pca`` and either
        ``mean``/``std`` (cross-validated) or ``auc`` (a held-out test set).
    labels : array_like of 0/1, ``[n]``
    title, path : keyword-only

    Returns
    -------
    path
    """
    from sklearn.metrics import roc_curve

    fig = _figure(figsize=(5.8, 5.4))
    ax = fig.subplots()
    for name, result in curves.items():
        fpr, tpr, _ = roc_curve(_labels(labels, len(result["scores"])), result["scores"])
        score = (f"AUC {result['auc']:.3f} on the test set" if "auc" in result
                 else f"AUC {result['mean']:.3f} ± {result['std']:.3f} over folds")
        ax.plot(fpr, tpr, lw=2, label=f"{name}, PCA {result['pca']}: {score}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance (AUC 0.5)")
    ax.set_xlabel("false positive rate (no-bird clips called bird)")
    ax.set_ylabel("true positive rate (bird clips found)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right", fontsize=7)
    ax.set_title(title, fontsize=9)
    return _save(fig, path, title)


def plot_auc_sweep(sweeps, *, title, path):
    """Cross-validated AUC (mean ± std over folds) against PCA size, one line per feature set.

    Parameters
    ----------
    sweeps : dict
        ``name -> list`` of :func:`warblr.lab.analyse.cross_validated_auc` results.
    title, path : keyword-only

    Returns
    -------
    path
    """
    fig = _figure(figsize=(6.0, 4.4))
    ax = fig.subplots()
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
    return _save(fig, path, title)


def plot_log_mel_pair(bird, no_bird, *, title, path, names=("bird", "no bird")):
    """Log-mel images of a bird and a no-bird clip, side by side.

    Parameters
    ----------
    bird, no_bird : array_like
        ``[N, 96, 64]`` examples of one clip each (drawn end to end in time).
    title, path : keyword-only
    names : (str, str), keyword-only
        Panel titles.

    Returns
    -------
    path
    """
    images = [np.asarray(x, dtype=np.float64).reshape(-1, spec.NUM_BANDS) for x in (bird, no_bird)]
    low = min(float(im.min()) for im in images)
    high = max(float(im.max()) for im in images)
    fig = _figure(figsize=(11, 4.4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, image, name in zip(axes, images, names):
        seconds = image.shape[0] * spec.STFT_HOP_LENGTH_SECONDS
        shown = ax.imshow(image.T, origin="lower", aspect="auto", cmap="magma", vmin=low, vmax=high,
                          extent=(0, seconds, 0, spec.NUM_BANDS))
        ax.set_xlabel("time (s)")
        ax.set_title(name, fontsize=9)
    axes[0].set_ylabel(f"mel band ({spec.MEL_MIN_HZ:.0f}-{spec.MEL_MAX_HZ:.0f} Hz, HTK)")
    fig.colorbar(shown, ax=axes, label="log(mel + 0.01)")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path, title, tight=False)


def plot_report(out, *, ids, labels, features, results, provenance, feature_sets, read_examples, random_state=0,
                test=None):
    """Every plot of ``warblr analyse``, in ``OUT/plots/``.

    Parameters
    ----------
    out : Path
    ids : list of str
    labels : ndarray of 0/1
    features : dict
        ``key -> [n, dims]`` pooled features per feature set.
    results : dict
        ``key -> {"best": ..., "sweep": [...]}`` (with out-of-fold ``scores``).
    provenance : warblr.weights.WeightsProvenance
    feature_sets : sequence of FeatureSet
    read_examples : callable
        ``read_examples(item_id) -> [N, 96, 64]`` for the log-mel image.
    random_state : int, keyword-only
    test : dict, optional, keyword-only
        ``{"labels": [m], "results": {key: {"auc", "pca", "scores"}}, "data": str}`` for a held-out test set.

    Returns
    -------
    list of str
        The files written, relative to ``out``.
    """
    plots = Path(out) / PLOTS_DIR
    plots.mkdir(parents=True, exist_ok=True)
    tag = provenance.label
    written = []
    for entry in feature_sets:
        written.append(plot_pca_scatter(
            features[entry.key], labels, path=plots / f"pca_{entry.key}.png", random_state=random_state,
            title=f"{entry.name}: first two principal components, {len(ids)} clips\n{tag}"))
    written.append(plot_roc({e.name: results[e.key]["best"] for e in feature_sets}, labels, path=plots / "roc.png",
                            title=f"ROC, out-of-fold scores (best PCA size per feature set)\n{tag}"))
    written.append(plot_auc_sweep({e.name: results[e.key]["sweep"] for e in feature_sets},
                                  path=plots / "auc_sweep.png",
                                  title=f"Cross-validated ROC AUC against PCA size\n{tag}"))
    if test is not None and len(set(np.asarray(test["labels"]).tolist())) == 2:  # ROC needs both classes
        written.append(plot_roc({e.name: test["results"][e.key] for e in feature_sets}, test["labels"],
                                path=plots / "roc_test.png",
                                title=f"ROC on the test set {test['data']} (fitted on the training set only)\n{tag}"))
    # The clearest bird and no-bird clips by the registry's first feature set.
    scores = results[feature_sets[0].key]["best"]["scores"]
    bird = max((i for i in range(len(ids)) if labels[i] == 1), key=lambda i: scores[i])
    no_bird = min((i for i in range(len(ids)) if labels[i] == 0), key=lambda i: scores[i])
    written.append(plot_log_mel_pair(
        read_examples(ids[bird]), read_examples(ids[no_bird]), path=plots / "log_mel_examples.png",
        names=(f"bird (hasbird=1)\n{ids[bird]}", f"no bird (hasbird=0)\n{ids[no_bird]}"),
        title=(f"Log-mel (VGGish input, examples end to end) of the bird and the no-bird clip the "
               f"{feature_sets[0].name} model is surest of\n{tag}")))
    return [str(Path(p).relative_to(out)) for p in written]
