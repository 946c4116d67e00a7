"""Graded speed checks: your log-mel and embedding code against torchvggish, timed in the same test.

Only ratios are graded (within 5x of the reference), never absolute times,
so a slow or busy machine does not cost points: your code and the reference
are timed alternately in the same process (both see the same load; under
isolated grading that is the worker running your code) and the best of each
counts (``warblr.grading.probes.time_ratio``).
The log-mel reference is single-threaded numpy, so it is compared with your
code under one torch thread: a torch-based log-mel is neither favoured by
extra cores nor punished by thread contention on a busy machine. The timing
reference is always torchvggish (``mel_features.log_mel_spectrogram`` and a forward pass
of its ``VGG``), never ``solutions/``: the student handout has no solutions,
and one reference for everyone keeps the grade the same in both places.
"""

import numpy as np
import pytest

from .reference import noise_16k

MAX_RATIO = 5.0


@pytest.mark.points(3)
@pytest.mark.hint("speed: log_mel_spectrogram is more than 5x slower than torchvggish's. Vectorise: frame the whole "
                  "signal at once (strides or fancy indexing), one np.fft.rfft over all frames, one matrix product "
                  "with the mel matrix; no Python loop over frames or bins")
def test_log_mel_speed(impl):
    signal = np.tile(noise_16k(), 4)[:160000]  # 10 s at 16 kHz
    # One torch thread: the reference is single-threaded numpy, compare like with like.
    ratio = impl.probe("time_ratio", impl.logmel.log_mel_spectrogram, (signal, 16000), "torchvggish_log_mel",
                       (signal,), 5, threads=1)
    assert ratio < MAX_RATIO, f"your log_mel_spectrogram takes {ratio:.1f}x torchvggish's time on 10 s of audio"


@pytest.mark.points(3)
@pytest.mark.hint("speed: embed is more than 5x slower than one batched forward pass of VGGish. Batch the examples "
                  "(many per forward pass), run under torch.no_grad(), avoid per-example Python loops and copies")
def test_embed_speed(impl, vggish_state, log_mel_examples):
    examples = np.concatenate([log_mel_examples] * 11)[:64]
    model = impl.probe("torchvggish_vgg", vggish_state)
    warmup = ((model, examples[:2]), (model, examples[:2]))
    ratio = impl.probe("time_ratio", impl.embedding.embed, (model, examples), "batched_forward", (model, examples), 2,
                       warmup_args=warmup)
    assert ratio < MAX_RATIO, (
        f"your embed takes {ratio:.1f}x the time of one batched torchvggish forward pass (64 examples)")
