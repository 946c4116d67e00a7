"""Graded speed checks: your log-mel and embedding code against torchvggish, timed by the grader.

Only ratios are graded (within 5x of the reference), never absolute times,
so a slow machine does not cost points. Each check first times the
reference in the grader (before your code is first called, so no process of
yours runs meanwhile), then times your function as the grader sees it:
each call from the grader's side, round trip included when your code runs
in an isolated worker. Best of several calls on each side, every call on
fresh input drawn from the session's input seed (nothing to remember from
one call to the next, nothing to work out before the timed calls), and every
output must also be right: a fast wrong answer earns nothing. What the
round trip itself costs is not counted against you: before your code is
loaded, the grader times a trusted stand-in that takes arrays of the same
shapes and types (other values: the timed inputs first reach your worker
with your calls, so its freed memory holds none of them) and returns an
array of the expected size without the work
(``warblr.grading.probes.carrier``), and subtracts its best time.

The reference is always torchvggish (``mel_features.log_mel_spectrogram``
and one batched forward pass of its ``VGG``), never ``solutions/``: the
student handout has no solutions, and one reference for everyone keeps the
grade the same in both places. Both sides use torch's default thread count
(the worker inherits the grader's thread settings), with two exceptions
that keep the grader from slowing your worker down. The grader's own BLAS
(numpy's matrix products) runs on one thread during these checks: after a
product its idle threads keep spinning, and on 2 cores they took a core
from your worker (one thread costs the reference about 2 %). And the
grader and your worker keep freed memory mapped alike
(``warblr.grading.allocator``), so neither pays page faults the other does
not. Before these two, the solutions' log-mel measured 2.2-3.6x
torchvggish isolated; after them, 0.9-1.0x.
"""

import time

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits
from torchvggish import mel_features

from .reference import to_numpy, tone

#: Timed: under `warblr grade batch` these run while no other grader on the machine runs a check.
pytestmark = pytest.mark.timed
MAX_RATIO = 5.0
#: Timed calls per side (after one warm-up call). An isolated round trip wakes another process, which a busy
#: machine delays now and then: the log-mel (tens of milliseconds) gets more tries than the embedding.
REPEATS = {"log_mel": 6, "embed": 3}
#: Salt of the timed inputs' generators (with the session's input seed).
SPEED_SALT = 5309
#: Salt of the carrier's arrays: a stream of its own (under SPEED_SALT, call 1's noise would be the first array).
CARRIER_SALT = 8147
VGGISH_LOG_MEL = dict(audio_sample_rate=16000, log_offset=0.01, window_length_secs=0.025, hop_length_secs=0.010,
                      num_mel_bins=64, lower_edge_hertz=125.0, upper_edge_hertz=7500.0)


@pytest.fixture(scope="module", autouse=True)
def grader_blas_on_one_thread():
    """The grader's BLAS on one thread while the speed checks run (its spinning threads would take your cores)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def best_time(function, inputs):
    """``(best seconds, outputs)`` of ``function(*args)`` over ``inputs``; the first call only warms up."""
    outputs, best = [], float("inf")
    for number, args in enumerate(inputs):
        start = time.perf_counter()
        outputs.append(function(*args))
        if number:
            best = min(best, time.perf_counter() - start)
    return best, outputs


def carrying_time(impl, inputs, expected, *, seed):
    """Best time of a round trip carrying arrays like ``inputs`` there and like ``expected`` back, without the work.

    The carried arrays are noise from ``seed``, never the timed inputs: they
    would stay in the worker's freed memory, where code imported afterwards
    could read them and work out the answers before the timed calls.
    """
    rng = np.random.default_rng([CARRIER_SALT, seed])
    carried = [tuple(rng.standard_normal(np.shape(arg)).astype(np.asarray(arg).dtype) for arg in args)
               for args in inputs]
    carrier = impl.probe("carrier")
    return best_time(lambda number, *args: carrier(*args, shape=expected[number].shape,
                                                   dtype=str(expected[number].dtype)),
                     [(number, *args) for number, args in enumerate(carried)])[0]


def assert_all_right(outputs, expected, what):
    for number, (got, want) in enumerate(zip(outputs, expected)):
        got = to_numpy(got)
        assert got.shape == want.shape, f"call {number + 1}: {what} has shape {got.shape}, expected {want.shape}"
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max()),
                                   err_msg=f"call {number + 1}: {what} is wrong, so its speed does not count")


def ten_seconds(inputs, number):
    """Call ``number``'s 10 s of 16 kHz noise plus a tone, drawn from the session's live input seed.

    When grading counts the seed is one you cannot know, so no call's input
    (the untimed first one included) tells you the others': nothing to work
    out ahead of the timed calls.
    """
    rng = np.random.default_rng([SPEED_SALT, number, inputs.live_seed])
    return 0.1 * rng.standard_normal(160000) + tone(rng.uniform(200, 6000), 16000, 160000, amplitude=0.3)


@pytest.mark.points(3)
@pytest.mark.hint("speed: log_mel_spectrogram is more than 5x slower than torchvggish's (or its output is wrong). "
                  "Vectorise: frame the whole signal at once (strides or fancy indexing), one np.fft.rfft over all "
                  "frames, one matrix product with the mel matrix; no Python loop over frames or bins")
def test_log_mel_speed(impl, record_property, inputs):
    signals = [(ten_seconds(inputs, number),) for number in range(REPEATS["log_mel"] + 1)]
    reference_time, expected = best_time(lambda signal: mel_features.log_mel_spectrogram(signal, **VGGISH_LOG_MEL),
                                         signals)
    carrying = carrying_time(impl, signals, expected, seed=inputs.live_seed)
    student_time, outputs = best_time(lambda signal: impl.logmel.log_mel_spectrogram(signal, 16000), signals)
    assert_all_right(outputs, expected, "your log-mel")
    ratio = max(student_time - carrying, 0.0) / reference_time
    record_property("leaderboard", {"name": "log-mel time (x torchvggish)", "value": round(ratio, 2), "order": "asc"})
    assert ratio < MAX_RATIO, f"your log_mel_spectrogram takes {ratio:.1f}x torchvggish's time on 10 s of audio"


@pytest.mark.points(3)
@pytest.mark.hint("speed: embed is more than 5x slower than one batched forward pass of VGGish (or its output is "
                  "wrong). Batch the examples (many per forward pass), run under torch.no_grad(), avoid per-example "
                  "Python loops and copies")
def test_embed_speed(impl, record_property, inputs, vggish_state, torchvggish_model, log_mel_examples):
    rng = np.random.default_rng([SPEED_SALT, 64, inputs.live_seed])
    batches = [(log_mel_examples[:4] + rng.normal(0, 0.1, (4, 96, 64))).astype(np.float32)
               for _ in range(REPEATS["embed"])]
    batches = [(log_mel_examples[:1],)] + [(batch,) for batch in batches]

    def reference(examples):
        with torch.no_grad():
            return torchvggish_model(torch.from_numpy(examples)[:, None]).numpy()

    reference_time, expected = best_time(reference, batches)
    model = impl.probe("vggish_network", vggish_state)
    carrying = carrying_time(impl, batches, expected, seed=inputs.live_seed)
    student_time, outputs = best_time(lambda examples: impl.embedding.embed(model, examples), batches)
    assert_all_right(outputs, expected, "your embedding")
    ratio = max(student_time - carrying, 0.0) / reference_time
    record_property("leaderboard", {"name": "embed time (x torchvggish)", "value": round(ratio, 2), "order": "asc"})
    assert ratio < MAX_RATIO, (
        f"your embed takes {ratio:.1f}x the time of one batched torchvggish forward pass (4 examples)")
