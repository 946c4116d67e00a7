"""Graded speed checks: your log-mel and embedding code against torchvggish, timed in the same test.

Only ratios are graded (within 5x of the reference), never absolute times,
so a slow or busy machine does not cost points. The timing reference is
always torchvggish (``mel_features.log_mel_spectrogram`` and a forward pass
of its ``VGG``), never ``solutions/``: the student handout has no solutions,
and one reference for everyone keeps the grade the same in both places.
"""

import time

import numpy as np
import pytest
import torch
from torchvggish import mel_features

from .reference import noise_16k, to_numpy

MAX_RATIO = 5.0


def best_time(function, repeats):
    """The fastest of ``repeats`` calls, in seconds (the least disturbed by other work on the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


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
    student(), reference()  # warm up (imports, caches)
    ratio = best_time(student, 5) / best_time(reference, 5)
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
    ratio = best_time(lambda: to_numpy(impl.embedding.embed(torchvggish_model, examples)), 2) / best_time(reference, 2)
    assert ratio < MAX_RATIO, (
        f"your embed takes {ratio:.1f}x the time of one batched torchvggish forward pass (64 examples)")
