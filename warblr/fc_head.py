"""VGGish's fully connected head on CPU, through the GEMM library that is fast on this CPU.

torch runs ``nn.Linear`` on CPU through oneMKL, whose fast kernels are
Intel's: on an AMD EPYC with AVX-512 its float32 GEMM ran at 206 GFLOP/s
while oneDNN's (the library behind torch's convolutions) ran at 492, and the
head took 18 % of the network's time for 8 % of its work. So on CPUs other
than Intel's the three FC layers run through oneDNN
(``torch.ops.mkldnn._linear_pointwise``, on the model's own weights). The
choice follows the CPU's vendor, never a timing, so reruns on one machine
give the same bits; oneDNN's FC output was measured identical for 1, 2, 3,
4 and 8 threads and for any batch split, as oneMKL's is under ``MKL_CBWR``.
The choice is recorded in every report (:func:`warblr.runtime.runtime_settings`)
and printed by ``warblr bench``.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from . import cpu

__all__ = ["fc_library", "onednn_available", "run_head", "FC_LIBRARY_VARIABLE"]

#: Set to ``MKL`` or ``oneDNN`` to override the vendor rule (e.g. to compare the two on one machine).
FC_LIBRARY_VARIABLE = "WARBLR_FC_LIBRARY"
_LIBRARIES = {"mkl": "MKL", "onednn": "oneDNN"}


def fc_library():
    """``"MKL"`` or ``"oneDNN"``: which library runs the FC head in float32 on CPU here.

    oneMKL on Intel CPUs (its own fast paths), oneDNN elsewhere;
    ``WARBLR_FC_LIBRARY`` overrides. Without oneDNN in this torch build, MKL.

    Returns
    -------
    str

    Raises
    ------
    InvalidArgumentError
        ``WARBLR_FC_LIBRARY`` names neither library.

    Examples
    --------
    >>> fc_library() in ("MKL", "oneDNN")
    True
    """
    chosen = os.environ.get(FC_LIBRARY_VARIABLE)
    if chosen:
        if chosen.lower() not in _LIBRARIES:
            from .errors import InvalidArgumentError

            reason = f"expected MKL or oneDNN, got {chosen!r}"
            raise InvalidArgumentError(f"{FC_LIBRARY_VARIABLE}: {reason}", parameter=FC_LIBRARY_VARIABLE,
                                       reason=reason)
        chosen = _LIBRARIES[chosen.lower()]
    else:
        chosen = "MKL" if cpu.cpu_features()["vendor"] == "GenuineIntel" else "oneDNN"
    return chosen if onednn_available() else "MKL"


def onednn_available():
    """True when this torch build has oneDNN and its dense-weight linear kernel (``mkldnn._linear_pointwise``)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def run_head(model, flat):
    """``model.embeddings(flat)`` on CPU in float32, through :func:`fc_library`'s library.

    oneDNN runs each Linear (and the ReLU after it, fused) on the model's own
    dense weights (``torch.ops.mkldnn._linear_pointwise``, the kernel torch's
    compiler uses): no copy of the 270 MB of FC weights is kept.

    Parameters
    ----------
    model : warblr.model.VGGish
        On CPU; its ``embeddings`` is Linear/ReLU layers (anything else runs as torch's layers).
    flat : torch.Tensor
        float32 ``[N, 12288]`` flattened conv maps (TensorFlow's NHWC order).

    Returns
    -------
    torch.Tensor
        float32 ``[N, 128]``: equal to ``model.embeddings(flat)`` within
        float32 rounding (~1e-6 relative), bit-identical across runs here.

    Examples
    --------
    >>> import torch
    >>> from warblr.model import VGGish
    >>> run_head(VGGish(), torch.zeros(2, 12288)).shape
    torch.Size([2, 128])
    """
    if fc_library() != "oneDNN" or flat.dtype != torch.float32 or flat.device.type != "cpu":
        return model.embeddings(flat)
    layers = list(model.embeddings)
    if not all(isinstance(layer, (nn.ReLU, nn.Identity))
               or (isinstance(layer, nn.Linear) and layer.weight.dtype == torch.float32) for layer in layers):
        return model.embeddings(flat)
    x, position = flat.contiguous(), 0
    while position < len(layers):
        layer = layers[position]
        if isinstance(layer, nn.Linear):
            relu = position + 1 < len(layers) and isinstance(layers[position + 1], nn.ReLU)
            x = torch.ops.mkldnn._linear_pointwise(x, layer.weight, layer.bias, "relu" if relu else "none", [], "")
            position += 2 if relu else 1
        else:
            x = torch.relu(x) if isinstance(layer, nn.ReLU) else x
            position += 1
    return x
