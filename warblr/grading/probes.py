"""Trusted objects the graded checks hand to the student's code: constructors only, no verdicts.

Some checks give the student's function an object to work with: a network
for ``embed`` (a cheap stand-in, or VGGish with given weights). They ask for
it by name through ``impl.probe(name, ...)``: in-process the constructor runs
here; under isolation the grader sends this module's text with the request
and the check's worker runs it there (it never imports this module: loaded
in every worker, its VGGish builder built a submission's model from the
weights a check loads into it), and the object stays there behind a handle.

Nothing here measures, compares or knows an answer: every pass/fail is
decided in the grader from the plain data the student's code returns. The
stand-in network therefore writes what the checks need to know into its
*output* (how many examples each forward pass got, whether autograd or
training mode was on), where the grader reads it back and checks it against
its own copy of the same network. This module imports only torch (no
warblr engine, torchvggish, resampy or librosa: those are forbidden in the
worker).
"""

from __future__ import annotations

#: Probe names the checks may call (``impl.probe(name, ...)``).
PROBES = ("stand_in_network", "vggish_network", "carrier")

#: Order of the marks the stand-in network adds to its output (see :func:`stand_in_network`).
STAND_IN_MARKS = ("batch_size", "autograd", "training")


def stand_in_network(seed=0):
    """A cheap network ``[B, 1, 96, 64] -> [B, 128]`` whose output tells how it was called.

    The output of a forward pass over ``B`` examples is, row by row::

        linear(flatten(x)) + B * marks[0] + autograd * marks[1] + training * marks[2]

    where ``autograd`` is 1 when the pass builds an autograd graph and
    ``training`` is 1 in training mode. ``marks`` is a buffer, so the grader's
    own copy (same ``seed``) computes ``linear(flatten(x))`` and reads the
    three numbers back from each returned row (:func:`read_marks` in the
    checks). Every call with the same ``seed`` builds the same weights, in
    any process.

    Parameters
    ----------
    seed : int
        Seed of the weights and marks.

    Returns
    -------
    torch.nn.Module
        In training mode (as every freshly built torch module).
    """
    import torch
    from torch import nn

    class StandIn(nn.Module):
        def __init__(self):
            super().__init__()
            generator = torch.Generator().manual_seed(int(seed))
            self.linear = nn.Linear(96 * 64, 128)
            with torch.no_grad():
                self.linear.weight.copy_(torch.randn(128, 96 * 64, generator=generator) / 96.0)
                self.linear.bias.copy_(0.1 * torch.randn(128, generator=generator))
            self.register_buffer("marks", torch.randn(len(STAND_IN_MARKS), 128, generator=generator))

        def forward(self, x):
            shape = tuple(x.shape)
            if x.dim() != 4 or shape[1:] != (1, 96, 64):
                raise ValueError(f"the network expects [batch, 1, 96, 64], got input of shape {shape}")
            autograd = torch.is_grad_enabled() and (x.requires_grad or self.linear.weight.requires_grad)
            flags = torch.tensor([float(shape[0]), float(autograd), float(self.training)])
            return self.linear(x.flatten(1)) + flags @ self.marks

    return StandIn()


def vggish_network(state):
    """A VGG network built from ``torch.nn`` to fit ``state`` (torchvggish's ``VGG`` state_dict), in eval mode.

    Nothing here knows VGGish's layers: they are read off ``state`` (a 3x3
    convolution, then a ReLU, per ``features.N.weight``; a 2x2 max-pool in
    each gap of the numbering, and after the last convolution as many as
    bring 96 x 64 down to what the first linear layer takes; a ReLU after
    every ``embeddings.N`` linear layer), and the ``[N, C, H, W]`` maps are
    flattened in NHWC order as torchvggish does. This builder is the answer
    to ``build_vggish`` given the weights a check loads into the student's
    model, so it must never be where that check runs: the worker has it only
    in the checks that ask for this probe (see the module's docstring). The
    checks compare what the student's code does with it against torchvggish
    itself, in the grader.

    Parameters
    ----------
    state : dict of str to tensor
        A torchvggish ``VGG`` state_dict.

    Returns
    -------
    torch.nn.Module
    """
    import torch
    from torch import nn

    def numbered(prefix):
        return sorted({int(key.split(".")[1]) for key in state if key.startswith(prefix) and key.count(".") == 2})

    convolutions, linears = numbered("features."), numbered("embeddings.")
    if not convolutions or not linears:
        raise ValueError("expected a VGG state_dict (features.N.weight ..., embeddings.N.weight ...)")

    class VGG(nn.Module):
        def __init__(self, features, embeddings):
            super().__init__()
            self.features, self.embeddings = nn.Sequential(features), nn.Sequential(embeddings)

        def forward(self, x):
            maps = self.features(x).permute(0, 2, 3, 1).contiguous()
            return self.embeddings(maps.reshape(maps.shape[0], -1))

    with torch.device("meta"):  # no random initialisation: every weight comes from ``state``
        model = VGG(*_vgg_layers(state, convolutions, linears))
    model.load_state_dict({key: torch.as_tensor(value).clone() for key, value in state.items()}, assign=True)
    return model.eval()


def _vgg_layers(state, convolutions, linears):
    """``(features, embeddings)``: the numbered layers of :func:`vggish_network`, read off ``state``."""
    import collections
    import math

    from torch import nn

    features, height, width = collections.OrderedDict(), 96, 64
    for number, index in enumerate(convolutions):
        out_channels, in_channels, kernel, _ = tuple(state[f"features.{index}.weight"].shape)
        features[str(index)] = nn.Conv2d(in_channels, out_channels, kernel_size=kernel, padding=kernel // 2)
        features[str(index + 1)] = nn.ReLU(inplace=True)
        following = convolutions[number + 1] if number + 1 < len(convolutions) else None
        pools = following - (index + 2) if following is not None else 0
        if following is None:  # pool until the maps have the size the first linear layer takes
            flat = tuple(state[f"embeddings.{linears[0]}.weight"].shape)[1] // out_channels
            pools = round(math.log(height * width / max(flat, 1), 4))
        for pool in range(pools):
            features[str(index + 2 + pool)] = nn.MaxPool2d(kernel_size=2, stride=2)
            height, width = height // 2, width // 2
    embeddings = collections.OrderedDict()
    for index in linears:
        out_features, in_features = tuple(state[f"embeddings.{index}.weight"].shape)
        embeddings[str(index)] = nn.Linear(in_features, out_features)
        embeddings[str(index + 1)] = nn.ReLU(inplace=True)
    return features, embeddings


def carrier():
    """A module that takes any arguments and returns zeros of the shape and dtype it is asked for.

    Called like the student's function, with the same arrays, it makes the
    same round trip to the worker without the work: the speed checks time it
    (before the student's code is first loaded in that worker) and do not
    count that time against the student.

    Returns
    -------
    torch.nn.Module
        ``carrier(*arrays, shape=(...), dtype="float64")`` -> ``np.zeros(shape, dtype)``.
    """
    import numpy as np
    from torch import nn

    class Carrier(nn.Module):
        def forward(self, *arrays, shape=(), dtype="float64"):
            return np.zeros(tuple(shape), dtype=np.dtype(str(dtype)))

    return Carrier()


def run(name, *args, **kwargs):
    """Call the constructor ``name`` (one of :data:`PROBES`)."""
    if name not in PROBES:
        raise KeyError(f"no probe {name!r}; probes: {', '.join(PROBES)}")
    return globals()[name](*args, **kwargs)
