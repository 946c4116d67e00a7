"""Trusted helpers the graded checks run *next to* the student's code.

Some checks need an object or a measurement on the side where the student's
code runs: a probe network whose forward passes are counted, torchvggish's
``VGG`` to hand to ``embed``, sklearn's ``cross_val_score`` on the student's
own estimator, or a speed comparison in which the student's function and the
reference are timed in the same process under the same load. The checks ask
for them by name through ``impl.probe(name, *args)``: in-process the call
runs here directly, under isolation it runs in the worker (this module is
part of the installed grader, never of the submission) and live results stay
there behind handles.

Nothing here knows a reference answer.
"""

from __future__ import annotations

import time

#: Probe names the checks may call (``impl.probe(name, ...)``).
PROBES = ("flat", "torchvggish_vgg", "state_shapes", "cross_val_auc", "labels_auc", "class_name", "time_ratio")


def flat(dropout=0.0):
    """A cheap network ``[N, 1, 96, 64] -> [N, 128]`` that records its forward passes.

    ``calls`` lists the input shape of every forward pass, ``graphs`` whether
    each built an autograd graph.
    """
    from torch import nn

    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(96 * 64, 128))
            self.calls = []
            self.graphs = []
            self.register_forward_pre_hook(lambda module, args: self.calls.append(tuple(args[0].shape)))
            self.register_forward_hook(lambda module, args, output: self.graphs.append(output.requires_grad))

        def forward(self, x):
            shape = tuple(x.shape)
            assert x.dim() == 4 and shape[1:] == (1, 96, 64), f"the network got input of shape {shape}"
            return self.layers(x)

    import torch

    torch.manual_seed(0)
    return Flat()


def torchvggish_vgg(state):
    """torchvggish's own ``VGG`` (no postprocessing) with the weights ``state``, in eval mode."""
    from torchvggish.torchvggish import VGG, make_layers

    model = VGG(make_layers(), postprocess=False)
    model.load_state_dict(state)
    return model.eval()


def state_shapes(model):
    """``{key: shape}`` of ``model.state_dict()`` (the shapes without moving the weights)."""
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def cross_val_auc(model, X, y, n_splits, random_state):
    """sklearn's ``cross_val_score`` (ROC AUC) of a clone of ``model`` on stratified shuffled folds."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    return float(cross_val_score(clone(model), X, y, cv=folds, scoring="roc_auc").mean())


def labels_auc(model, X, y, n_splits, random_state):
    """Mean ROC AUC of the hard predicted labels of clones of ``model`` (the classic mistake)."""
    import numpy as np
    from sklearn.base import clone
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    return float(np.mean([roc_auc_score(y[test], clone(model).fit(X[train], y[train]).predict(X[test]))
                          for train, test in folds.split(X, y)]))


def class_name(value):
    """Qualified class name of ``value`` (``"sklearn.pipeline.Pipeline"``)."""
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def torchvggish_log_mel(signal, sample_rate=16000):
    """torchvggish's numpy log-mel with VGGish's parameters."""
    from torchvggish import mel_features

    return mel_features.log_mel_spectrogram(
        signal, audio_sample_rate=sample_rate, log_offset=0.01, window_length_secs=0.025, hop_length_secs=0.010,
        num_mel_bins=64, lower_edge_hertz=125.0, upper_edge_hertz=7500.0)


def batched_forward(model, examples):
    """One batched, gradient-free forward pass of ``model`` over ``[N, 96, 64]`` examples."""
    import torch

    batch = torch.as_tensor(examples)[:, None]
    with torch.no_grad():
        return model(batch)


#: References :func:`time_ratio` may time against.
TIMING_REFERENCES = {"torchvggish_log_mel": torchvggish_log_mel, "batched_forward": batched_forward}


def time_ratio(student, student_args, reference, reference_args, repeats, threads=None, warmup_args=None):
    """Best time of ``student(*student_args)`` over best time of a reference, called alternately.

    Alternating keeps a burst of other work on the machine from landing on one
    side only; the fastest call of each is the least disturbed. Both are timed
    in this process, after one warm-up call each.

    Parameters
    ----------
    student : callable
        The student's function.
    student_args : tuple
    reference : str
        A key of :data:`TIMING_REFERENCES`.
    reference_args : tuple
    repeats : int
    threads : int, optional
        torch intra-op threads during the timing (restored afterwards).
    warmup_args : tuple of (tuple, tuple), optional
        Smaller arguments for the warm-up calls of the student's function and
        the reference (default: the timed arguments).

    Returns
    -------
    float
    """
    import torch

    reference_fn = TIMING_REFERENCES[reference]
    calls = {"student": lambda: student(*student_args), "reference": lambda: reference_fn(*reference_args)}
    warm_student, warm_reference = warmup_args or (student_args, reference_args)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        student(*warm_student), reference_fn(*warm_reference)  # warm up (imports, caches)
        best = dict.fromkeys(calls, float("inf"))
        for _ in range(int(repeats)):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                best[name] = min(best[name], time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return best["student"] / best["reference"]


def run(name, *args, **kwargs):
    """Call the probe ``name`` (one of :data:`PROBES`)."""
    if name not in PROBES:
        raise KeyError(f"no probe {name!r}; probes: {', '.join(PROBES)}")
    return globals()[name](*args, **kwargs)
