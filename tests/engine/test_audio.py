"""Reading, validating, down-mixing and resampling audio (warblr.audio)."""

import numpy as np
import pytest
import soundfile as sf

from warblr.audio import load_audio, to_mono, validate_sample_rate, validate_waveform
from warblr.resample import resample, resampled_length
from warblr.errors import InvalidArgumentError


def test_pcm16_is_scaled_exactly_as_torchvggish(make_wav):
    samples = np.random.default_rng(0).integers(-32768, 32768, 20000).astype(np.int16)
    path = make_wav(samples, 16000, subtype="PCM_16")
    waveform, sample_rate = load_audio(path)
    # torchvggish.wavfile_to_examples: sf.read(dtype="int16") / 32768.0
    expected = sf.read(str(path), dtype="int16")[0] / 32768.0
    assert sample_rate == 16000 and waveform.dtype == np.float64
    np.testing.assert_array_equal(waveform, expected)
    np.testing.assert_array_equal(waveform, samples / 32768.0)


def test_multichannel_shape_and_float32_dtype(make_wav, noise):
    data = noise(0.5, 22050, channels=3)
    waveform, sample_rate = load_audio(make_wav(data, 22050, subtype="DOUBLE"), dtype=np.float32)
    assert waveform.shape == (11025, 3) and waveform.dtype == np.float32 and sample_rate == 22050
    np.testing.assert_array_equal(waveform, data.astype(np.float32))


@pytest.mark.parametrize("dtype, scale, offset", [
    (np.int8, 128.0, 0.0), (np.uint8, 128.0, 128.0), (np.int16, 32768.0, 0.0), (np.int32, 2.0**31, 0.0)])
def test_integer_arrays_are_scaled_as_pcm(dtype, scale, offset):
    info = np.iinfo(dtype)
    pcm = np.array([info.min, 0, info.max, 1], dtype=dtype)
    expected = (pcm.astype(np.float64) - offset) / scale
    np.testing.assert_array_equal(validate_waveform(pcm), expected)
    assert validate_waveform(pcm).min() >= -1.0 and validate_waveform(pcm).max() < 1.0


def test_validate_keeps_float32_and_shape():
    x = np.zeros((10, 2), np.float32)
    assert validate_waveform(x).dtype == np.float32 and validate_waveform(x).shape == (10, 2)


def test_validate_sample_rate_accepts_integral_floats():
    assert validate_sample_rate(44100.0) == 44100 and validate_sample_rate(np.int64(8000)) == 8000


def test_to_mono_is_the_channel_mean(noise):
    stereo = noise(0.1, 16000, channels=2)
    np.testing.assert_array_equal(to_mono(stereo), stereo.mean(axis=1))
    np.testing.assert_array_equal(to_mono(stereo[:, 0]), stereo[:, 0])


@pytest.mark.parametrize("orig_sr", [8000, 22050, 44100, 48000])
def test_resample_matches_resampy(noise, orig_sr):
    resampy = pytest.importorskip("resampy")
    x = noise(0.7, orig_sr, seed=orig_sr)
    expected = resampy.resample(x, orig_sr, 16000, filter="kaiser_best")
    got = resample(x, orig_sr, 16000)
    assert got.shape == expected.shape == (resampled_length(x.size, orig_sr, 16000),)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(resample(x, orig_sr, 16000, method="resampy"), expected)


def test_resample_same_rate_is_identity(noise):
    x = noise(0.1, 16000)
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)


def test_resampled_length_is_resampys():
    resampy = pytest.importorskip("resampy")
    for n, sr in [(44101, 44100), (1000, 48000), (17, 22050), (12345, 8000)]:
        assert resampled_length(n, sr, 16000) == resampy.resample(np.zeros(n), sr, 16000).shape[0]


def test_resample_refuses_multichannel_and_tiny_input():
    with pytest.raises(InvalidArgumentError, match="to_mono"):
        resample(np.zeros((100, 2)), 44100, 16000)
    with pytest.raises(InvalidArgumentError, match="too few"):
        resample(np.zeros(2), 44100, 16000)


def test_resample_refuses_unknown_method_naming_the_argument():
    with pytest.raises(InvalidArgumentError, match=r"^method: expected one of .*'sinc'"):
        resample(np.zeros(1000), 44100, 16000, method="sinc")
