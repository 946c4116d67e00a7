"""The student-facing checks: one line saying whether a result matches the reference, and the AUC table.

These are feedback while working, not grading (``pytest exercises`` grades):
:func:`compare` prints ✓ or ✗ with the largest difference and where it is,
:func:`checked` turns a result a later step cannot use into a
:class:`~warblr.lab.notebook.guard.WrongResultError` naming the function,
and :func:`auc_table` sets the student's cross-validated ROC AUC beside
``warblr analyse``'s own, computed with analyse's classifier, folds and PCA
grid (:mod:`warblr.lab.analyse`), so the table and the command never drift.
"""

from __future__ import annotations

import numpy as np

from ...errors import DatasetError, InvalidArgumentError
from ..analyse import DEFAULT_FOLDS, PCA_SIZES, effective_folds, pca_sweep
from .display import markdown
from .guard import WrongResultError
from .settings import LIMIT_ENV, SEED

__all__ = ["FOLDS", "LOGMEL_FEATURES", "EMBEDDING_FEATURES", "as_numbers", "kind_of", "checked", "compare",
           "reference_pool", "cv_folds", "feature_note", "auc_table"]

#: Folds of the cross-validation (fewer when a label has fewer clips): ``warblr analyse``'s default.
FOLDS = DEFAULT_FOLDS
LOGMEL_FEATURES = "log-mel (pooled)"
EMBEDDING_FEATURES = "VGGish embedding (pooled)"


def as_numbers(result):
    """``result`` as a float64 array, or None unless it holds real numbers (None, strings, complex...)."""
    if result is None:
        return None
    try:
        array = np.asarray(result)
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: a torch tensor that requires grad
        return None
    return array.astype(np.float64) if array.dtype.kind in "biuf" else None


def kind_of(result):
    """What ``result`` is, for messages: ``complex128 ndarray`` or ``NoneType``."""
    dtype = getattr(result, "dtype", None)
    return f"{dtype} {type(result).__name__}" if dtype is not None else type(result).__name__


def checked(result, function, module, shape):
    """``result`` as a float array of ``shape``, else :class:`WrongResultError` naming the function.

    Parameters
    ----------
    result : object
        What the student's function returned.
    function, module : str
        The function and its module, for the message.
    shape : tuple of int or None
        None: any size along that axis.

    Returns
    -------
    np.ndarray
        float64.

    Examples
    --------
    >>> checked([[1, 2]], "pool", "classify", (None, 2)).shape
    (1, 2)
    """
    array = as_numbers(result)
    if array is None:
        raise WrongResultError(f"returned {kind_of(result)}, not an array of real numbers",
                               function=function, module=module)
    expected = "[" + ", ".join("N" if size is None else str(size) for size in shape) + "]"
    if array.ndim != len(shape) or any(size not in (None, got) for size, got in zip(shape, array.shape)):
        raise WrongResultError(f"returned shape {list(array.shape)}, expected {expected}",
                               function=function, module=module)
    return array


def compare(name, yours, reference, *, rtol=1e-5, atol=1e-5):
    """Print one line saying whether ``yours`` matches ``reference``, and by how much.

    Parameters
    ----------
    name : str
        The student's function.
    yours, reference : array_like
    rtol, atol : float, keyword-only
        As :func:`numpy.allclose`.

    Returns
    -------
    bool

    Examples
    --------
    >>> compare("pool", [1.0, 2.0], [1.0, 2.5])
    ✗ `pool`: differs from the reference (shape (2,), max difference 0.5 at index (1,))
    False
    """
    values, reference = as_numbers(yours), np.asarray(reference, dtype=np.float64)
    if values is None:
        print(f"✗ `{name}`: returned {kind_of(yours)}, not an array of real numbers")
        return False
    if values.shape != reference.shape:
        print(f"✗ `{name}`: shape {values.shape}, the reference has shape {reference.shape}")
        return False
    if values.size == 0:
        print(f"✓ `{name}`: empty, as the reference (shape {values.shape})")
        return True
    if not np.all(np.isfinite(values)):
        print(f"✗ `{name}`: your result holds NaN or inf (shape {values.shape})")
        return False
    difference = np.abs(values - reference)
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(difference), difference.shape))
    matches = bool(np.allclose(values, reference, rtol=rtol, atol=atol))
    print(f"{'✓' if matches else '✗'} `{name}`: {'matches' if matches else 'differs from'} the reference "
          f"(shape {values.shape}, max difference {difference.max():.3g} at index {worst})")
    return matches


def reference_pool(values):
    """The mean over every axis but the last (what ``pool`` computes), for comparisons.

    Parameters
    ----------
    values : array_like
        ``[..., D]``.

    Returns
    -------
    np.ndarray
        float64 ``[D]``.

    Examples
    --------
    >>> reference_pool(np.arange(6.0).reshape(3, 2))
    array([2., 3.])
    """
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(-1, values.shape[-1]).mean(axis=0)


def cv_folds(labels):
    """The folds the sample allows (``warblr analyse``'s rule), or a :class:`DatasetError` saying what to raise.

    Examples
    --------
    >>> cv_folds(np.array([1] * 12 + [0] * 4))
    4
    """
    try:
        return effective_folds(labels, FOLDS)
    except InvalidArgumentError as exc:
        raise DatasetError(f"{exc}: the sample is too small for cross-validation (raise {LIMIT_ENV})") from None


def feature_note(features, name):
    """``" (RANDOM weights)"`` after the embedding set's name when its weights are random, else ``""``."""
    return " (RANDOM weights)" if name == EMBEDDING_FEATURES and not features.pretrained else ""


def auc_table(features, classify):
    """The cross-validated ROC AUC of each feature set: yours (``cross_validated_auc``) beside ``warblr analyse``'s.

    For each feature set the reference is :func:`warblr.lab.analyse.pca_sweep`:
    analyse's classifier over analyse's PCA grid, the best size kept; the
    student's function is then run with that size, the same folds and seed.

    Parameters
    ----------
    features : warblr.lab.notebook.session.Features
    classify : module
        The student's ``classify`` module.

    Returns
    -------
    list of dict
        One row per feature set: ``name``, ``dims``, ``pca``, ``folds``, ``yours``, ``reference``, ``matches``.
    """
    rows = []
    for name, values in features.sets.items():
        folds = cv_folds(features.labels)
        best, _ = pca_sweep(values, features.labels, folds=folds, random_state=SEED)
        yours = classify.cross_validated_auc(values, features.labels, best["pca"], n_splits=folds,
                                             random_state=SEED)
        number = as_numbers(yours)
        scalar = number is not None and number.shape == ()
        rows.append({"name": name, "dims": values.shape[1], "pca": best["pca"], "folds": folds, "yours": float(number) if scalar else yours, "reference": best["mean"],
                     "matches": scalar and abs(float(number) - best["mean"]) < 1e-6})
    lines = ["| feature set | dims | PCA | your ROC AUC | reference (`warblr analyse`) | |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        yours = f"{row['yours']:.3f}" if isinstance(row["yours"], float) else f"`{row['yours']!r}`"
        verdict = "✓" if row["matches"] else "✗ differs from the reference"
        lines.append(f"| {row['name']}{feature_note(features, row['name'])} | {row['dims']} | {row['pca']} | {yours} "
                     f"| {row['reference']:.3f} | {verdict} |")
    if rows:
        lines += ["", f"{len(features.labels)} clips, {rows[0]['folds']}-fold stratified cross-validation "
                      f"(seed {SEED}). PCA: the size from `warblr analyse`'s grid ({', '.join(map(str, PCA_SIZES))}; "
                      "those the features and training folds allow) with the best reference AUC."]
    if features.pretrained is False:
        lines.append("**The VGGish row uses RANDOM weights: a baseline, not VGGish.**")
    markdown("\n".join(lines))
    return rows
