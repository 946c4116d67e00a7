"""Feature sets: how one clip's examples or embeddings become one vector for the classifier.

A clip gives ``N`` log-mel examples ``[N, 96, 64]`` and ``N`` embeddings
``[N, 128]``; the classifier needs one vector per clip. Each
:class:`FeatureSet` names its source (examples or embeddings) and its pooling
function. :data:`FEATURE_SETS` is the registry that ``analyse``, the report,
the terminal table and the plots all loop over: adding a feature set is
adding one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import spec
from ..errors import InvalidArgumentError

__all__ = ["FeatureSet", "FEATURE_SETS", "feature_set", "pool_mean", "pool_mean_std_max", "pool_clip",
           "STATS_NOTE"]

#: Why the statistics pooling is there, stated in the report.
STATS_NOTE = ("Bird calls are short: a few loud frames barely move a band's mean over a 10 s clip, but they move "
              "its standard deviation and maximum, so mean, std and max pooling keeps what mean pooling washes out.")


def _rows(values, what):
    """A clip's examples ``[N, 96, 64]`` or embeddings ``[N, D]`` as ``[rows, columns]`` float64 (frames or examples)."""
    values = np.asarray(values, dtype=np.float64)
    expected = 3 if what == "examples" else 2
    if values.ndim != expected or values.shape[0] == 0:
        shape = "[N, 96, 64]" if what == "examples" else "[N, D]"
        raise InvalidArgumentError(f"{what}: expected a non-empty {shape} array, got shape {values.shape}",
                                   parameter=what, reason=f"expected a non-empty {shape} array")
    return values.reshape(-1, values.shape[-1])


def pool_mean(values, *, what="examples"):
    """Each column's mean over all frames (examples) or all embeddings of a clip.

    Parameters
    ----------
    values : array_like
        One clip's examples ``[N, 96, 64]`` (pooled over its ``N * 96``
        frames) or embeddings ``[N, D]`` (pooled over its ``N`` examples).
    what : {"examples", "embeddings"}, keyword-only

    Returns
    -------
    ndarray of float64, ``[columns]``

    Examples
    --------
    >>> pool_mean(np.ones((3, 96, 64))).shape
    (64,)
    >>> pool_mean(np.ones((3, 128)), what="embeddings").shape
    (128,)
    """
    return _rows(values, what).mean(axis=0)


def pool_mean_std_max(values, *, what="examples"):
    """Each column's mean, standard deviation and maximum over a clip.

    A bird call is transient: a few loud frames in one band move its maximum
    and standard deviation a lot but its mean very little, so these keep what
    mean pooling (:func:`pool_mean`) washes out.

    Parameters
    ----------
    values : array_like
        As :func:`pool_mean`.
    what : {"examples", "embeddings"}, keyword-only

    Returns
    -------
    ndarray of float64, ``[3 * columns]``
        The means, then the standard deviations (``ddof=0``), then the maxima.

    Examples
    --------
    >>> x = np.zeros((2, 96, 64))
    >>> x[1, 5, 0] = 192.0  # one loud frame in band 0
    >>> mean, std, peak = pool_mean_std_max(x).reshape(3, 64)[:, 0]
    >>> float(mean), float(peak)
    (1.0, 192.0)
    """
    rows = _rows(values, what)
    return np.concatenate([rows.mean(axis=0), rows.std(axis=0), rows.max(axis=0)])


@dataclass(frozen=True)
class FeatureSet:
    """One way to turn a clip into a vector.

    Attributes
    ----------
    key : str
        Identifier in ``report.json`` and plot file names.
    name : str
        Display name in tables and plots.
    source : {"examples", "embeddings"}
        What is pooled. Embedding-based sets carry the weights' provenance
        (random weights are flagged wherever their results appear).
    pool : callable
        ``pool(values, what=source) -> [dims]``.
    columns : int
        Columns of the source (64 bands or 128 embedding dimensions).
    statistics : int
        Values per column the pooling keeps (1 for a mean, 3 for mean, std, max).
    description : str
        How a clip is pooled, in words.
    """

    key: str
    name: str
    source: str
    pool: Callable
    columns: int
    statistics: int
    description: str

    @property
    def dims(self):
        """Length of the pooled vector."""
        return self.columns * self.statistics

    @property
    def uses_weights(self):
        """True when the features come from the network (so from its weights)."""
        return self.source == "embeddings"

    def __call__(self, examples, embeddings):
        """Pool one clip: ``[dims]`` float64."""
        return self.pool(examples if self.source == "examples" else embeddings, what=self.source)


FEATURE_SETS = (
    FeatureSet("log_mel", "log-mel (pooled)", "examples", pool_mean, spec.NUM_BANDS, 1,
               "each band's mean over all frames of the clip"),
    FeatureSet("log_mel_stats", "log-mel (mean, std, max)", "examples", pool_mean_std_max, spec.NUM_BANDS, 3,
               "each band's mean, standard deviation and maximum over all frames of the clip"),
    FeatureSet("vggish", "VGGish embedding (pooled)", "embeddings", pool_mean, spec.EMBEDDING_SIZE, 1,
               "the mean of the clip's 0.96 s embeddings"),
    FeatureSet("vggish_stats", "VGGish (mean, std, max)", "embeddings", pool_mean_std_max, spec.EMBEDDING_SIZE, 3,
               "each embedding dimension's mean, standard deviation and maximum over the clip's 0.96 s examples"),
)


def feature_set(key):
    """The registered :class:`FeatureSet` called ``key``.

    Raises
    ------
    InvalidArgumentError
        No such feature set.

    Examples
    --------
    >>> feature_set("vggish").dims
    128
    """
    for entry in FEATURE_SETS:
        if entry.key == key:
            return entry
    keys = ", ".join(entry.key for entry in FEATURE_SETS)
    raise InvalidArgumentError(f"feature_set: no feature set {key!r} (known: {keys})", parameter="feature_set",
                               reason=f"no feature set {key!r} (known: {keys})")


def pool_clip(examples, embeddings, *, feature_sets=FEATURE_SETS):
    """Every feature set's vector for one clip.

    Returns
    -------
    dict
        ``key -> [dims]`` float64.

    Examples
    --------
    >>> pooled = pool_clip(np.zeros((2, 96, 64)), np.zeros((2, 128)))
    >>> {key: vector.shape for key, vector in pooled.items()}["vggish_stats"]
    (384,)
    """
    return {entry.key: entry(examples, embeddings) for entry in feature_sets}
