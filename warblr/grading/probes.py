"""Trusted objects the graded checks hand to the student's code: constructors only, no verdicts.

Some checks give the student's function an object to work with: a network
for ``embed`` (a cheap stand-in, or VGGish with given weights). They ask for
it by name through ``impl.probe(name, ...)``: in-process the constructor runs
here, under isolation it runs in the check's worker (this module is part of
the installed grader, never of the submission) and the object stays there
behind a handle.

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

#: VGGish's convolution channels ("M": 2x2 max-pool), as torchvggish's ``make_layers``.
VGGISH_CHANNELS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")

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
    """VGGish (torchvggish's ``VGG`` without postprocessing) built from ``torch.nn``, weights ``state``, eval mode.

    The module names equal torchvggish's (``features.0.weight`` ...
    ``embeddings.4.bias``) and the forward pass is the same: the ``[N, 512,
    6, 4]`` feature maps are flattened in NHWC order. The checks compare what
    the student's code does with it against torchvggish itself, in the grader.

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

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            layers, channels = [], 1
            for item in VGGISH_CHANNELS:
                if item == "M":
                    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                else:
                    layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                    channels = item
            self.features = nn.Sequential(*layers)
            self.embeddings = nn.Sequential(nn.Linear(512 * 4 * 6, 4096), nn.ReLU(True), nn.Linear(4096, 4096),
                                            nn.ReLU(True), nn.Linear(4096, 128), nn.ReLU(True))

        def forward(self, x):
            maps = self.features(x).permute(0, 2, 3, 1).contiguous()
            return self.embeddings(maps.reshape(maps.shape[0], -1))

    with torch.device("meta"):  # no random initialisation: every weight comes from ``state``
        model = VGG()
    model.load_state_dict({key: torch.as_tensor(value).clone() for key, value in state.items()}, assign=True)
    return model.eval()


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
