"""Graded speed checks: your log-mel and embedding code against torchvggish, timed in the same test.

Only ratios are graded (within 5x of the reference), never absolute times,
so a slow or busy machine does not cost points: your code and the reference
are timed alternately (both see the same load) and the best of each counts.
The log-mel reference is single-threaded numpy, so it is compared with your
code under one torch thread: a torch-based log-mel is neither favoured by
extra cores nor punished by thread contention on a busy machine. The timing
reference is always torchvggish (``mel_features.log_mel_spectrogram`` and a forward pass
of its ``VGG``), never ``solutions/``: the student handout has no solutions,
and one reference for everyone keeps the grade the same in both places.
"""

import contextlib
import time

import numpy as np
import pytest
import torch
from torchvggish import mel_features

from .reference import noise_16k, to_numpy

MAX_RATIO = 5.0


def time_ratio(student, reference, repeats):
    """Best time of ``student`` over best time of ``reference``, the two called alternately ``repeats`` times each.

    Alternating keeps a burst of other work on the machine from landing on one side only; the fastest call of
    each is the least disturbed.
    """
    best = {student: float("inf"), reference: float("inf")}
    for _ in range(repeats):
        for function in (student, reference):
            start = time.perf_counter()
            function()
            best[function] = min(best[function], time.perf_counter() - start)
    return best[student] / best[reference]


@contextlib.contextmanager
def torch_threads(count):
    """Run the block with ``count`` torch intra-op threads, then restore the previous setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.mark.points(3)
@pytest.mark.hint("speed: log_mel_spectrogram is more than 5x slower than torchvggish's. Vectorise: frame the whole "
                  "signal at once (strides or fancy indexing), one np.fft.rfft over all frames, one matrix product "
                  "with the mel matrix; no Python loop over frames or bins")
def test_log_mel_speed(impl):
    signal = np.tile(noise_16k(), 4)[:160000]  # 10 s at 16 kHz
    student = lambda: impl.logmel.log_mel_spectrogram(signal, 16000)  # noqa: E731
    reference = lambda: mel_features.log_mel_spectrogram(  # noqa: E731
        signal, audio_sample_rate=16000, log_offset=0.01, window_length_secs=0.025, hop_length_secs=0.010,
        num_mel_bins=64, lower_edge_hertz=125.0, upper_edge_hertz=7500.0)
    with torch_threads(1):  # the reference is single-threaded numpy: compare like with like
        student(), reference()  # warm up (imports, caches)
        ratio = time_ratio(student, reference, 5)
    assert ratio < MAX_RATIO, f"your log_mel_spectrogram takes {ratio:.1f}x torchvggish's time on 10 s of audio"


@pytest.mark.points(3)
@pytest.mark.hint("speed: embed is more than 5x slower than one batched forward pass of VGGish. Batch the examples "
                  "(many per forward pass), run under torch.no_grad(), avoid per-example Python loops and copies")
def test_embed_speed(impl, torchvggish_model, log_mel_examples):
    examples = np.concatenate([log_mel_examples] * 11)[:64]
    batch = torch.from_numpy(examples)[:, None]

    def reference():
        with torch.no_grad():
            return torchvggish_model(batch)

    impl.embedding.embed(torchvggish_model, examples[:2]), reference()  # warm up
    ratio = time_ratio(lambda: to_numpy(impl.embedding.embed(torchvggish_model, examples)), reference, 2)
    assert ratio < MAX_RATIO, (
        f"your embed takes {ratio:.1f}x the time of one batched torchvggish forward pass (64 examples)")
