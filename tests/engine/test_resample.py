"""The polyphase kaiser_best resampler against resampy 0.4.3 itself (the reference)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from warblr.resample import resample, resampled_length
from warblr.errors import InvalidArgumentError
from warblr.resample import (kaiser_best_table, polyphase_plan, resample_kaiser_best,
                             resample_kaiser_best_torch)

resampy = pytest.importorskip("resampy")

RATES = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 192000]
TOLERANCE = 1e-9  # resampy's own float64 rounding is ~1e-11; the engine promises 1e-5


def reference(x, orig_sr, target_sr, axis=-1):
    return resampy.resample(x, orig_sr, target_sr, filter="kaiser_best", axis=axis)


def noise(n, seed=0, channels=None):
    shape = (n,) if channels is None else (n, channels)
    return np.random.default_rng(seed).uniform(-1, 1, shape)


def test_table_is_resampys_stored_table():
    stored, precision, rolloff = resampy.filters.load_filter("kaiser_best")
    table, ours_precision = kaiser_best_table()
    assert ours_precision == precision == 8192
    assert table.shape == stored.shape
    np.testing.assert_allclose(table, stored, rtol=0, atol=1e-14)
    assert rolloff == pytest.approx(0.9173473712608761, abs=1e-15)


def test_ten_seconds_44k_to_16k_matches_resampy():
    x = noise(441000, seed=1)
    plan = polyphase_plan(44100, 16000)
    assert plan.phases == 160 and plan.stride == 441
    y = resample_kaiser_best(x, 44100, 16000)
    expected = reference(x, 44100, 16000)
    assert y.shape == expected.shape == (160000,)
    np.testing.assert_allclose(y, expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("orig, target", [(44100, 16000), (22050, 16000), (11025, 16000), (16000, 44100),
                                          (88200, 8000)])
def test_clock_check_finds_every_output_off_its_exact_phase(orig, target):
    # Brute force over two minutes of outputs: where resampy's float clock
    # int(t * (1 / ratio)) differs from the exact phase's input sample.
    plan = polyphase_plan(orig, target)
    n_out = 120 * target
    index = np.arange(n_out)
    clock = (index * (1.0 / (float(target) / orig))).astype(np.int64)
    exact = (index // plan.phases) * plan.stride + plan.base_n[index % plan.phases]
    np.testing.assert_array_equal(plan.mismatches(n_out), index[clock != exact])


@settings(max_examples=25, deadline=None)
@given(orig=st.sampled_from(RATES), target=st.sampled_from(RATES),
       length=st.integers(min_value=1, max_value=30000), seed=st.integers(0, 2**16))
def test_matches_resampy_for_rate_pairs_and_lengths(orig, target, length, seed):
    x = noise(length, seed=seed)
    if resampled_length(length, orig, target) < 1:
        with pytest.raises(ValueError):
            reference(x, orig, target)
        with pytest.raises(InvalidArgumentError, match="too short"):
            resample_kaiser_best(x, orig, target)
        return
    expected = reference(x, orig, target)
    y = resample_kaiser_best(x, orig, target)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("orig, target", [(44101, 16000), (16000, 44101), (12345, 16000), (16000, 8000)])
def test_unusual_rate_pairs(orig, target):
    x = noise(2 * orig + 13, seed=2)
    np.testing.assert_allclose(resample_kaiser_best(x, orig, target), reference(x, orig, target),
                               rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("length", [1, 2, 3, 7, 100, 440, 441, 442, 881])
def test_short_signals_and_lengths_off_the_period(length):
    x = noise(length, seed=length)
    for orig, target in [(44100, 16000), (8000, 16000), (48000, 16000)]:
        if resampled_length(length, orig, target) < 1:
            continue
        np.testing.assert_allclose(resample_kaiser_best(x, orig, target), reference(x, orig, target),
                                   rtol=0, atol=TOLERANCE)


def test_output_length_is_resampys_floor_rule():
    for n, orig, target in [(1000, 44100, 16000), (7, 44100, 16000), (3, 8000, 16000), (15600, 16000, 44100)]:
        assert resampled_length(n, orig, target) == reference(np.zeros(n), orig, target).shape[0]


def test_multichannel_samples_by_channels():
    x = noise(5000, seed=3, channels=3)
    np.testing.assert_allclose(resample_kaiser_best(x, 22050, 16000), reference(x, 22050, 16000, axis=0),
                               rtol=0, atol=TOLERANCE)


def test_float32_in_float32_out_like_resampy():
    x = noise(9000, seed=4).astype(np.float32)
    y, expected = resample_kaiser_best(x, 44100, 16000), reference(x, 44100, 16000)
    assert y.dtype == expected.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("orig", [44100, 48000, 8000])
def test_compute_dtype_is_an_option(orig):
    x = noise(orig, seed=9)
    as_float32 = resample_kaiser_best(x, orig, 16000, dtype=np.float32)
    assert as_float32.dtype == np.float32  # computed in float32: the engine's float32 features resample so
    assert 0 < np.abs(as_float32 - reference(x, orig, 16000)).max() < 1e-6
    np.testing.assert_array_equal(resample_kaiser_best(x, orig, 16000, dtype=np.float64),
                                  resample_kaiser_best(x, orig, 16000))
    with pytest.raises(InvalidArgumentError, match="dtype"):
        resample_kaiser_best(x, orig, 16000, dtype=np.float16)


def test_integer_input_gives_float32_like_resampy():
    x = (noise(9000, seed=5) * 20000).astype(np.int16)
    y, expected = resample_kaiser_best(x, 44100, 16000), reference(x, 44100, 16000)
    assert y.dtype == expected.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-2)


def test_equal_rates_copy():
    x = noise(100)
    y = resample_kaiser_best(x, 16000, 16000)
    np.testing.assert_array_equal(y, x)
    assert y is not x


@pytest.mark.parametrize("rate", [0, -16000, 44100.5, True])
def test_bad_rates_raise_naming_the_argument(rate):
    with pytest.raises(InvalidArgumentError, match="orig_sr"):
        resample_kaiser_best(noise(1000), rate, 16000)


def test_bad_shape_raises():
    with pytest.raises(InvalidArgumentError, match="waveform"):
        resample_kaiser_best(np.zeros((2, 2, 2)), 44100, 16000)


def test_audio_resample_dispatches_here():
    x = noise(20000, seed=6)
    np.testing.assert_allclose(resample(x, 44100, 16000, method="kaiser_best"), reference(x, 44100, 16000),
                               rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("orig, target", [(44100, 16000), (8000, 16000), (48000, 16000), (44101, 16000)])
def test_torch_version_matches_resampy_and_batches(orig, target):
    x = noise(3 * 20000 + 9, seed=7).reshape(3, -1)
    y = resample_kaiser_best_torch(torch.from_numpy(x), orig, target)
    assert y.dtype == torch.float64 and y.shape[0] == 3
    for row, out in zip(x, y):
        np.testing.assert_allclose(out.numpy(), reference(row, orig, target), rtol=0, atol=TOLERANCE)
    single = resample_kaiser_best_torch(torch.from_numpy(x[1]), orig, target)
    np.testing.assert_allclose(single.numpy(), y[1].numpy(), rtol=0, atol=1e-12)


def test_torch_float32_stays_within_the_documented_bound():
    x = noise(44100, seed=8)
    y = resample_kaiser_best_torch(torch.from_numpy(x), 44100, 16000, dtype=torch.float32)
    assert y.dtype == torch.float32
    np.testing.assert_allclose(y.numpy(), reference(x, 44100, 16000), rtol=0, atol=1e-5)


def test_torch_rejects_arrays():
    with pytest.raises(InvalidArgumentError, match="waveforms"):
        resample_kaiser_best_torch(np.zeros(100), 44100, 16000)


@pytest.mark.parametrize("orig, target", [(44100, 16000), (16000, 16000), (44101, 16000)])
def test_torch_takes_a_list_of_clips_with_the_same_result_as_a_batch(orig, target):
    x = noise(3 * 20000, seed=9).reshape(3, -1)
    batch = resample_kaiser_best_torch(torch.from_numpy(x), orig, target)
    listed = resample_kaiser_best_torch(list(x), orig, target)  # numpy rows, copied once into the work buffer
    assert listed.dtype == torch.float64
    assert torch.equal(listed, batch)


@pytest.mark.parametrize("clips", [[np.zeros(100), np.zeros(101)], [np.zeros((2, 100))], []], ids=str)
def test_torch_refuses_a_list_of_clips_of_other_lengths_or_shapes(clips):
    with pytest.raises(InvalidArgumentError, match="waveforms"):
        resample_kaiser_best_torch(clips, 44100, 16000)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_resampy():
    x = noise(44100 * 2, seed=9)
    y = resample_kaiser_best_torch(torch.from_numpy(x).cuda(), 44100, 16000)
    assert y.is_cuda
    np.testing.assert_allclose(y.cpu().numpy(), reference(x, 44100, 16000), rtol=0, atol=TOLERANCE)
