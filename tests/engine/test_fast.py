"""The batched torch log-mel against torchvggish's numpy mel_features."""

import numpy as np
import pytest
import torch

from warblr.errors import InvalidArgumentError
from warblr.fast import examples_torch, log_mel_torch, mel_support, num_frames
from warblr.features import mel_matrix

mel_features = pytest.importorskip("torchvggish.mel_features")
vggish_input = pytest.importorskip("torchvggish.vggish_input")


def reference_log_mel(signal):
    return mel_features.log_mel_spectrogram(
        signal, audio_sample_rate=16000, log_offset=0.01, window_length_secs=0.025, hop_length_secs=0.010,
        num_mel_bins=64, lower_edge_hertz=125.0, upper_edge_hertz=7500.0)


def signal(seconds=2.0, seed=0):
    """Noise swelling from silence plus a 1 kHz tone: near-silent frames stress the log."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    ramp = np.linspace(0, 1, n) ** 4
    return 0.5 * rng.uniform(-1, 1, n) * ramp + 0.1 * np.sin(2 * np.pi * 1000 * np.arange(n) / 16000)


def test_float64_equals_torchvggish():
    x = signal()
    np.testing.assert_allclose(log_mel_torch(torch.from_numpy(x)).numpy(), reference_log_mel(x), rtol=0, atol=1e-10)


def test_float32_within_the_documented_bound():
    x = signal(seed=1)
    ours = log_mel_torch(torch.from_numpy(x), dtype=torch.float32)
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), reference_log_mel(x), rtol=0, atol=3e-4)


def test_silence_floor_is_log_offset():
    out = log_mel_torch(torch.zeros(4000, dtype=torch.float64))
    np.testing.assert_allclose(out.numpy(), np.log(0.01), rtol=0, atol=1e-12)


def test_batch_equals_one_by_one():
    batch = np.stack([signal(seed=s) for s in range(3)])
    together = log_mel_torch(torch.from_numpy(batch))
    for row, out in zip(batch, together):
        np.testing.assert_allclose(out.numpy(), reference_log_mel(row), rtol=0, atol=1e-10)


@pytest.mark.parametrize("n", [400, 559, 560, 15599, 15600, 16000, 31200])
def test_frame_count_rule(n):
    assert log_mel_torch(torch.zeros(n)).shape == (num_frames(n), 64)
    assert num_frames(n) == 1 + (n - 400) // 160


def test_examples_equal_torchvggish_at_16k():
    x = signal(seconds=3.1, seed=3)
    ours = examples_torch(torch.from_numpy(x))
    expected = vggish_input.waveform_to_examples(x, 16000, return_tensor=False)
    assert ours.shape == expected.shape == (3, 96, 64)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=3e-4)


def test_examples_batched_and_empty():
    assert examples_torch(torch.zeros(2, 32000)).shape == (2, 2, 96, 64)
    assert examples_torch(torch.zeros(15599)).shape == (0, 96, 64)


def test_numpy_input_accepted():
    x = signal(seconds=1.0)
    np.testing.assert_allclose(log_mel_torch(x).numpy(), reference_log_mel(x), rtol=0, atol=1e-10)


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 400)), np.zeros(399)])
def test_bad_input_raises(bad):
    with pytest.raises(InvalidArgumentError, match="signals"):
        log_mel_torch(bad)


def test_integer_input_raises():
    with pytest.raises(InvalidArgumentError, match="floating"):
        log_mel_torch(torch.zeros(1000, dtype=torch.int16))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_reference():
    x = signal(seed=4)
    out = log_mel_torch(torch.from_numpy(x).cuda(), dtype=torch.float32)
    assert out.is_cuda
    np.testing.assert_allclose(out.cpu().numpy(), reference_log_mel(x), rtol=0, atol=3e-4)


def test_only_bins_without_mel_weight_are_skipped():
    first, stop = mel_support()
    weights = np.abs(np.asarray(mel_matrix())).sum(axis=1)
    assert weights[first] > 0 and weights[stop - 1] > 0
    assert not weights[:first].any() and not weights[stop:].any()
