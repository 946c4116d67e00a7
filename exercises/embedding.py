"""Step 3: the VGGish network, batched inference and the PCA postprocessor.

VGGish is a VGG-style convolutional network that turns one 96 x 64 log-mel
example into a 128-d embedding. Its released weights are a torchvggish
``state_dict``; your network must have the same layer names and shapes so
they load unchanged.
"""

import numpy as np  # noqa: F401
import torch  # noqa: F401
from torch import nn  # noqa: F401


def build_vggish():
    """Build an (untrained) VGGish as a ``torch.nn.Module``.

    Concept: ``features`` = ``nn.Sequential`` of 3x3 convolutions (padding 1)
    each followed by ``ReLU``, and 2x2 max-pools ("M"), with channels
    ``64, M, 128, M, 256, 256, M, 512, 512, M``: a ``[N, 1, 96, 64]`` input
    becomes ``[N, 512, 6, 4]``. ``embeddings`` = ``nn.Sequential`` of
    ``Linear(512 * 6 * 4, 4096), ReLU, Linear(4096, 4096), ReLU,
    Linear(4096, 128), ReLU``. The state_dict keys must then read
    ``features.0.weight`` ... ``embeddings.4.bias``, as in torchvggish's
    ``VGG``.

    Pitfalls
    --------
    The released weights come from TensorFlow, which flattens feature maps
    in NHWC order: in ``forward``, permute ``[N, C, H, W]`` to
    ``[N, H, W, C]`` *before* flattening. A plain ``x.flatten(1)`` (NCHW)
    runs without error and produces garbage embeddings.
    """
    raise NotImplementedError("build_vggish")


def embed(model, examples):
    """Embed log-mel examples with ``model``.

    Concept: inference, not training: ``model.eval()``, no autograd
    (``torch.no_grad()``), and *batches* of examples per forward pass
    (VGGish costs about 0.86 G multiply-adds per example; batching keeps
    the CPU/GPU busy).

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``[B, 1, 96, 64]`` float32 to ``[B, 128]``.
    examples : np.ndarray or torch.Tensor
        ``[N, 96, 64]`` or ``[N, 1, 96, 64]`` (torchvggish hands you a tensor
        with ``requires_grad=True``).

    Returns
    -------
    np.ndarray
        float32 ``[N, 128]``, also for one example (``[1, 128]``) and for
        none (``[0, 128]``: a clip shorter than 0.96 s has no examples).

    Pitfalls
    --------
    A Python loop with one example per forward pass is many times slower;
    forgetting the channel axis or eval mode gives wrong results.
    """
    raise NotImplementedError("embed")


def postprocess(embeddings, pca_eigen_vectors, pca_means):
    """VGGish's postprocessor: PCA, clip, quantise to 8 bits, as torchvggish does it.

    Concept: centre (``x - pca_means``), project onto the eigenvectors,
    which are the *rows* of ``pca_eigen_vectors`` (``(x - mean) @ E.T``),
    clip to ``[-2, 2]``, then map linearly to 0..255:
    ``round((x + 2) * 255 / 4)`` as ``uint8``.

    Rounding follows torchvggish, which this lab matches everywhere.
    TensorFlow's ``vggish_postprocess``, which made AudioSet's released
    embeddings, truncates instead (``astype(np.uint8)``): its values are
    often one level lower. Neither is wrong; they are two conventions, and
    comparing with AudioSet's files means using TensorFlow's.

    Parameters
    ----------
    embeddings : array_like
        ``[N, 128]``.
    pca_eigen_vectors : array_like
        ``[128, 128]``.
    pca_means : array_like
        ``[128]`` (or ``[128, 1]`` as in the released file).

    Returns
    -------
    np.ndarray
        uint8 ``[N, 128]``.

    Pitfalls
    --------
    Projecting without centring first; quantising without clipping (uint8
    wraps 260 around to 4); truncating (TensorFlow's convention) where this
    lab rounds (torchvggish's).
    """
    raise NotImplementedError("postprocess")
