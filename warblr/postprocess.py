"""The VGGish postprocessor: PCA-project, clip and quantise embeddings to 8 bits, and its parameters.

torchvggish's ``Postprocessor`` and the released ``vggish_pca_params`` file it
reads; the file is found the same way as the network's weights
(:mod:`warblr.weights`).
"""

from __future__ import annotations

import numpy as np
import torch

from . import spec
from .errors import InvalidArgumentError, WarblrError
from .weights import find_weights_file, read_state_dict

__all__ = ["Postprocessor", "load_pca_params", "random_pca_params"]


def random_pca_params(*, seed=0):
    """Seeded stand-in PCA parameters: a random rotation and small means.

    Returns
    -------
    dict
        ``pca_eigen_vectors`` float64 ``[128, 128]`` (orthonormal rows),
        ``pca_means`` float64 ``[128, 1]``, the released file's layout.
    """
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((spec.EMBEDDING_SIZE, spec.EMBEDDING_SIZE)))
    means = rng.uniform(0.0, 0.2, size=(spec.EMBEDDING_SIZE, 1))
    return {spec.PCA_EIGEN_VECTORS_NAME: rotation, spec.PCA_MEANS_NAME: means}


def load_pca_params(params="auto", *, seed=0, download=False):
    """Load the postprocessor's PCA parameters.

    Parameters
    ----------
    params : str or os.PathLike
        A path to torchvggish's ``vggish_pca_params-970ea276.pth``, ``"random"``,
        or ``"auto"`` (path, ``$WARBLR_VGGISH_PCA``, torch hub cache, download).

    Returns
    -------
    dict
        ``pca_eigen_vectors`` ``[128, 128]`` and ``pca_means`` ``[128, 1]`` as numpy arrays.
    """
    if isinstance(params, str) and params == "random":
        return random_pca_params(seed=seed)
    path = find_weights_file(params, filename=spec.PCA_PARAMS_FILENAME, env_var=spec.PCA_ENV_VAR,
                             url=spec.PCA_PARAMS_URL, what="VGGish PCA parameters", download=download)
    state = read_state_dict(path)
    try:
        return {name: np.asarray(state[name], dtype=np.float64)
                for name in (spec.PCA_EIGEN_VECTORS_NAME, spec.PCA_MEANS_NAME)}
    except KeyError as exc:
        raise WarblrError(f"{path}: missing {exc} in the PCA parameters") from exc


class Postprocessor:
    """PCA-project, clip to [-2, 2] and quantise embeddings to 8 bits.

    torchvggish's ``Postprocessor``: ``round((clip(E (x - mu), -2, 2) + 2) * 255 / 4)``.
    TensorFlow's ``vggish_postprocess`` (which made AudioSet's released
    embeddings) truncates instead (``astype(np.uint8)``), so about half the
    values sit one level lower there; warblr follows torchvggish (rounding),
    like every other torchvggish-parity choice.

    Parameters
    ----------
    pca_eigen_vectors : array_like
        ``[128, 128]``, rows are eigenvectors.
    pca_means : array_like
        ``[128]`` or ``[128, 1]``.

    Examples
    --------
    >>> params = random_pca_params()
    >>> post = Postprocessor(params["pca_eigen_vectors"], params["pca_means"])
    >>> post(np.zeros((3, 128))).dtype
    dtype('uint8')
    """

    def __init__(self, pca_eigen_vectors, pca_means):
        self.pca_eigen_vectors = _float_array(pca_eigen_vectors, "pca_eigen_vectors")
        means = _float_array(pca_means, "pca_means")
        size = spec.EMBEDDING_SIZE
        if self.pca_eigen_vectors.shape != (size, size):
            raise InvalidArgumentError(f"pca_eigen_vectors: expected shape ({size}, {size}), "
                                       f"got {self.pca_eigen_vectors.shape}")
        if means.shape not in ((size,), (size, 1)):  # [128, 1] as torchvggish stores it; 128 values in another
            raise InvalidArgumentError(  # shape are not means of the 128 dimensions
                f"pca_means: expected shape ({size},) or ({size}, 1), got {means.shape}")
        self.pca_means = means.reshape(-1)

    def __call__(self, embeddings):
        """Postprocess ``[N, 128]`` (or ``[128]``) embeddings; returns uint8 of the same shape."""
        embeddings = _float_array(embeddings, "embeddings")
        if embeddings.shape[-1:] != (spec.EMBEDDING_SIZE,) or embeddings.ndim > 2:
            raise InvalidArgumentError(f"embeddings: expected shape [N, 128], got {embeddings.shape}")
        # float32 like torchvggish, so values on a rounding edge land the same way.
        projected = ((embeddings - self.pca_means) @ self.pca_eigen_vectors.T).astype(np.float32)
        clipped = np.clip(projected, spec.QUANTIZE_MIN_VAL, spec.QUANTIZE_MAX_VAL)
        scale = np.float32(spec.QUANTIZE_LEVELS / (spec.QUANTIZE_MAX_VAL - spec.QUANTIZE_MIN_VAL))
        return np.round((clipped - np.float32(spec.QUANTIZE_MIN_VAL)) * scale).astype(np.uint8)

    postprocess = __call__


def _float_array(values, name):
    """``values`` (array-like or tensor) as a finite float64 array, or :class:`InvalidArgumentError`."""
    if values is None:
        raise InvalidArgumentError(f"{name}: expected an array of numbers, got None")
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    try:
        array = np.asarray(values)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"dtype {array.dtype}")
        array = array.astype(np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{name}: not an array of real numbers ({exc})") from exc
    if not np.all(np.isfinite(array)):
        raise InvalidArgumentError(f"{name}: contains NaN or Inf values")
    return array
