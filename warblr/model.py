"""The VGGish network: log-mel examples in, 128-d embeddings out.

The module layout and ``state_dict`` keys equal torchvggish's
``VGG(make_layers(), postprocess=False)``, so its released weights load
unchanged (:mod:`warblr.weights` finds, checks and loads them;
:mod:`warblr.postprocess` holds the PCA/quantise step). This module holds
only the model, like torchvggish's ``vggish.py``, with every constant read
from :mod:`warblr.spec`.
"""

from __future__ import annotations

import operator

import numpy as np
import torch
from torch import nn

from . import spec
from .errors import InvalidArgumentError

__all__ = ["VGGish", "random_state_dict"]


def _make_features():
    layers, in_channels = [], 1
    for item in spec.CONV_LAYERS:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_channels = item
    return nn.Sequential(*layers)


class VGGish(nn.Module):
    """VGGish: log-mel examples ``[N, 1, 96, 64]`` to embeddings ``[N, 128]``.

    Parameters
    ----------
    final_relu : bool, keyword-only
        Keep the ReLU after the 128-d layer (torchvggish and the original
        TensorFlow release; default) or drop it (TensorFlow since 2020:
        "embeddings are pre-activation"). No parameters change either way.

    Attributes
    ----------
    weights_source : str
        Where the weights came from (a path, or ``"random (seed N)"``).
    pretrained : bool
        True only when released VGGish weights were loaded.

    Examples
    --------
    >>> model = VGGish()
    >>> model(torch.zeros(2, 96, 64)).shape
    torch.Size([2, 128])
    """

    def __init__(self, *, final_relu=True):
        super().__init__()
        self.features = _make_features()
        fc1, fc2 = spec.FC_SIZES
        self.embeddings = nn.Sequential(
            nn.Linear(spec.FLAT_FEATURES, fc1),
            nn.ReLU(True),
            nn.Linear(fc1, fc2),
            nn.ReLU(True),
            nn.Linear(fc2, spec.EMBEDDING_SIZE),
            nn.ReLU(True) if final_relu else nn.Identity(),
        )
        self.final_relu = final_relu
        self.weights_source = "untrained initialisation"
        self.pretrained = False

    def forward(self, examples):
        """Embed examples.

        Parameters
        ----------
        examples : torch.Tensor or array_like
            Floating point ``[N, 1, 96, 64]`` or ``[N, 96, 64]`` log-mel
            examples; cast to the model's parameter dtype and device.

        Returns
        -------
        torch.Tensor
            ``[N, 128]``.

        Raises
        ------
        InvalidArgumentError
            Not floating point, wrong shape, or NaN/Inf values.
        """
        examples = self._check_examples(examples)
        if examples.shape[0] == 0:
            return examples.new_zeros((0, spec.EMBEDDING_SIZE))
        return self.embed_feature_maps(self.features(examples))

    def embed_feature_maps(self, maps):
        """The fully connected head on the conv stack's output ``[N, 512, 6, 4]``: ``[N, 128]``.

        The maps are flattened in TensorFlow's NHWC order, as torchvggish does:
        the released FC weights expect that order.
        """
        return self.embeddings(self.flatten_feature_maps(maps))

    @staticmethod
    def flatten_feature_maps(maps):
        """``[N, 512, 6, 4]`` conv maps as ``[N, 12288]`` rows in TensorFlow's NHWC order (the FC input)."""
        return maps.permute(0, 2, 3, 1).reshape(maps.shape[0], -1)

    def _check_examples(self, examples):
        if not isinstance(examples, torch.Tensor):
            try:
                examples = torch.as_tensor(np.asarray(examples))
            except (TypeError, ValueError, RuntimeError) as exc:
                raise InvalidArgumentError(f"examples: not an array of log-mel examples ({exc})") from exc
        if not examples.is_floating_point():
            raise InvalidArgumentError(f"examples: expected floating-point log-mel values, got {examples.dtype}")
        if examples.dim() == 3:
            examples = examples.unsqueeze(1)
        if examples.dim() != 4 or tuple(examples.shape[1:]) != (1, spec.NUM_FRAMES, spec.NUM_BANDS):
            raise InvalidArgumentError(
                f"examples: expected shape [N, 1, {spec.NUM_FRAMES}, {spec.NUM_BANDS}] or "
                f"[N, {spec.NUM_FRAMES}, {spec.NUM_BANDS}], got {tuple(examples.shape)}"
            )
        weight = self.features[0].weight
        examples = examples.to(device=weight.device, dtype=weight.dtype)
        if not torch.compiler.is_compiling() and not bool(torch.isfinite(examples).all()):
            raise InvalidArgumentError("examples: contain NaN or Inf values")
        return examples


def random_state_dict(*, seed=0):
    """A seeded random ``state_dict`` with VGGish's keys and shapes.

    Weights are He-normal for convolutions and Glorot-uniform for linear
    layers so activations keep a sensible scale through the network.

    Examples
    --------
    >>> sorted(random_state_dict())[:2]
    ['embeddings.0.bias', 'embeddings.0.weight']
    """
    generator = torch.Generator().manual_seed(check_seed(seed))
    state = {}
    with torch.device("meta"):
        shapes = VGGish().state_dict()
    for key, value in shapes.items():
        if key.endswith("bias"):
            state[key] = torch.zeros(value.shape)
        elif value.dim() == 4:
            fan_in = value.shape[1] * value.shape[2] * value.shape[3]
            state[key] = torch.randn(value.shape, generator=generator).mul_(np.sqrt(2.0 / fan_in))
        else:
            limit = np.sqrt(6.0 / (value.shape[0] + value.shape[1]))
            state[key] = torch.rand(value.shape, generator=generator).mul_(2).sub_(1).mul_(limit)  # (u * 2 - 1) * limit
    return state


def check_seed(seed):
    """``seed`` as an int, or an :class:`InvalidArgumentError` naming it (random weights are seeded by int only).

    Examples
    --------
    >>> check_seed(3)
    3
    """
    try:
        return operator.index(seed)
    except TypeError:
        raise InvalidArgumentError(f"seed: expected an integer, got {seed!r}") from None
