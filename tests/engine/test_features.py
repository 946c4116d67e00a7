"""Log-mel features against torchvggish, librosa and closed-form expectations."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warblr import spec
from warblr.features import (frame_examples, hertz_to_mel, log_mel_spectrogram, mel_matrix, num_examples,
                             stft_magnitude, waveform_to_examples)

torchvggish_input = pytest.importorskip("torchvggish.vggish_input")
mel_features = pytest.importorskip("torchvggish.mel_features")

PARITY_ATOL = 1e-4  # promised max abs log-mel difference from torchvggish
RATES = (8000, 16000, 22050, 44100, 48000)


def reference_examples(waveform, sample_rate):
    """torchvggish's examples, float64 numpy (``return_tensor=False``)."""
    return torchvggish_input.waveform_to_examples(waveform, sample_rate, return_tensor=False)


def assert_parity(waveform, sample_rate, *, atol=PARITY_ATOL):
    expected = reference_examples(waveform, sample_rate)
    got = waveform_to_examples(waveform, sample_rate)
    assert got.dtype == np.float32
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol)


@pytest.mark.parametrize("sample_rate", RATES)
def test_noise_parity_with_torchvggish(noise, sample_rate):
    assert_parity(noise(2.3, sample_rate, seed=sample_rate), sample_rate)


@pytest.mark.parametrize("freq", [125.0, 1000.0, 3150.5, 7400.0])
def test_tone_parity_with_torchvggish(tone, freq):
    assert_parity(tone(freq, 2.0, 44100), 44100)


@pytest.mark.parametrize("sample_rate", [16000, 44100])
def test_stereo_parity_with_torchvggish(noise, tone, sample_rate):
    left = tone(440.0, 2.1, sample_rate)
    stereo = np.stack([left, noise(2.1, sample_rate, seed=3)[:left.size]], axis=1)
    assert_parity(stereo, sample_rate)


@pytest.fixture
def resampy_float64_kernel():
    """Make resampy's float64 kernel the one numba compiled first in this process.

    resampy's numba gufunc compiles on first use; once it has a float64
    kernel, float32 input runs through it (cast up, rounded back once at the
    end). torchvggish's float32 result therefore depends on what the process
    resampled first: a float32-first process rounds at every tap instead,
    which after upsampling fills the empty top bands with noise that moves
    their log-mel by ~6e-4. warblr follows the float64 kernel (compute in
    float64, round the resampled float32 audio once), the state of any
    process that has read a 16-bit WAV through torchvggish.
    """
    import resampy

    resampy.resample(np.zeros(4410), 44100, 16000, filter="kaiser_best")


@pytest.mark.parametrize("sample_rate", RATES + (11025,))
def test_float32_parity_with_torchvggish(noise, sample_rate, resampy_float64_kernel):
    # torchvggish keeps float32 audio float32 through resampling; so does warblr (measured 4e-7 apart).
    # Resampling it in float64 without rounding back to float32 lands ~3e-5 away, after 8 kHz -> 16 kHz.
    assert_parity(noise(2.3, sample_rate, channels=2, seed=sample_rate).astype(np.float32), sample_rate,
                  atol=1e-5)


COMMON_RATES = RATES + (11025, 12000, 24000, 32000, 88200, 96000)


def _parity_case(noise, sample_rate, seconds, channels, seed):
    waveform = noise(seconds, sample_rate, channels=channels, seed=seed)
    waveform = waveform[:waveform.shape[0] - seed % 160]  # rarely a whole number of frames
    if num_examples(int(waveform.shape[0] * spec.SAMPLE_RATE / sample_rate)) == 0:
        return
    assert_parity(waveform, sample_rate)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sample_rate=st.sampled_from(COMMON_RATES), seconds=st.floats(0.975, 2.2),
       channels=st.sampled_from([None, 2, 3]), seed=st.integers(0, 2**16))
def test_parity_hypothesis_lengths_and_rates(noise, sample_rate, seconds, channels, seed):
    _parity_case(noise, sample_rate, seconds, channels, seed)


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sample_rate=st.integers(8000, 48000), seconds=st.floats(0.975, 1.6), seed=st.integers(0, 2**16))
def test_parity_hypothesis_any_integer_rate(noise, sample_rate, seconds, seed):
    # Rates sharing few factors with 16 kHz have long filter periods; resampy
    # itself takes about a second per clip there, hence slow.
    _parity_case(noise, sample_rate, seconds, None, seed)


def test_mel_matrix_equals_torchvggish():
    expected = mel_features.spectrogram_to_mel_matrix(
        num_mel_bins=spec.NUM_MEL_BINS, num_spectrogram_bins=spec.NUM_SPECTROGRAM_BINS,
        audio_sample_rate=spec.SAMPLE_RATE, lower_edge_hertz=spec.MEL_MIN_HZ, upper_edge_hertz=spec.MEL_MAX_HZ)
    np.testing.assert_allclose(mel_matrix(), expected, rtol=0, atol=1e-12)


def test_log_mel_equals_torchvggish_mel_features(noise):
    signal = noise(1.37, 16000, seed=5)
    expected = mel_features.log_mel_spectrogram(
        signal, audio_sample_rate=16000, log_offset=spec.LOG_OFFSET,
        window_length_secs=spec.STFT_WINDOW_LENGTH_SECONDS, hop_length_secs=spec.STFT_HOP_LENGTH_SECONDS,
        num_mel_bins=spec.NUM_MEL_BINS, lower_edge_hertz=spec.MEL_MIN_HZ, upper_edge_hertz=spec.MEL_MAX_HZ)
    np.testing.assert_allclose(log_mel_spectrogram(signal), expected, rtol=0, atol=1e-10)


def _periodic_hann_closed_form(n):
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def test_stft_magnitude_equals_librosa(noise, chirp):
    librosa = pytest.importorskip("librosa")
    signal = noise(1.5, 16000, amplitude=0.1, seed=2) + chirp(100, 7900, 1.5, 16000)
    # torchvggish frames 400 samples and rfft(n=512) pads them at the end: the
    # same as a 512-long window whose last 112 taps are zero.
    window = np.concatenate([_periodic_hann_closed_form(400), np.zeros(112)])
    expected = np.abs(librosa.stft(signal, n_fft=512, hop_length=160, window=window, center=False)).T
    got = stft_magnitude(signal)
    # librosa's frames are 512 long, so it yields fewer; the shared ones must agree.
    assert got.shape[0] == 1 + (signal.size - 400) // 160 and got.shape[0] >= expected.shape[0]
    np.testing.assert_allclose(got[:expected.shape[0]], expected, rtol=0, atol=1e-10)


def test_log_mel_close_to_librosa_htk_melspectrogram(noise, chirp):
    librosa = pytest.importorskip("librosa")
    signal = noise(3.0, 16000, amplitude=0.1, seed=9) + chirp(150, 7400, 3.0, 16000)
    # librosa centres a 400-tap window in its 512-sample frame (56 zeros each
    # side), so padding the audio by 56 zeros at both ends lines its frames up
    # with VGGish's: the STFT magnitudes are then equal, and only the mel
    # filters differ. librosa's triangles are linear in Hz between the HTK-mel
    # edges, VGGish's are linear in mel; the curvature moves band energies by
    # about 0.011 in log units (measured on this signal), hence 0.02.
    padded = np.pad(signal, 56)
    mel = librosa.feature.melspectrogram(
        y=padded, sr=16000, n_fft=512, hop_length=160, win_length=400, window="hann", center=False,
        power=1.0, n_mels=64, fmin=125.0, fmax=7500.0, htk=True, norm=None)
    expected = np.log(mel.T + spec.LOG_OFFSET)
    got = log_mel_spectrogram(signal)
    assert got.shape == expected.shape
    difference = np.abs(got - expected).max()
    assert difference <= 0.02
    assert difference > 1e-6  # the filters really are different shapes


def _band_centres_mel():
    """HTK-mel band centres written out from the formula: 66 equally spaced edges, centres between."""
    low = 1127.0 * np.log(1.0 + 125.0 / 700.0)
    high = 1127.0 * np.log(1.0 + 7500.0 / 700.0)
    edges = low + (high - low) * np.arange(66) / 65
    return edges[1:-1], edges[1] - edges[0]


def _mel_to_hz(mel):
    return 700.0 * (np.exp(mel / 1127.0) - 1.0)


def test_tone_at_each_band_centre_peaks_in_that_band(tone):
    centres, _ = _band_centres_mel()
    tones = np.stack([tone(f, 0.5, 16000) for f in _mel_to_hz(centres)])
    peaks = [int(np.argmax(log_mel_spectrogram(t).mean(axis=0))) for t in tones]
    assert peaks == list(range(64))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(freq=st.floats(150.0, 7400.0), amplitude=st.floats(0.05, 0.9))
def test_tone_peaks_in_the_band_containing_it(tone, freq, amplitude):
    centres, spacing = _band_centres_mel()
    peak = int(np.argmax(log_mel_spectrogram(tone(freq, 0.3, 16000, amplitude=amplitude)).mean(axis=0)))
    mel = 1127.0 * np.log(1.0 + freq / 700.0)
    # Triangle weight of each band at the tone's frequency (linear in mel,
    # peak 1 at the centre, 0 one spacing away). The band containing f is the
    # one with the largest weight. The spectrum is sampled on FFT bins 31.25 Hz
    # apart, so the tone's energy lands up to half a bin away from f: allow
    # the weight that half a bin (in mel, at f) is worth, nothing further.
    weights = np.maximum(0.0, 1.0 - np.abs(centres - mel) / spacing)
    half_bin = 0.5 * (16000 / 512) * 1127.0 / (700.0 + freq) / spacing
    assert weights[peak] >= weights.max() - half_bin


def test_hertz_to_mel_closed_form():
    f = np.array([0.0, 125.0, 700.0, 7500.0])
    np.testing.assert_allclose(hertz_to_mel(f), 1127.0 * np.log1p(f / 700.0), rtol=1e-15)


def test_example_count_and_partial_tail_dropped(noise):
    for samples in (15599, 15600, 15600 + 15359, 15600 + 15360):
        expected = num_examples(samples)
        assert expected == len(torchvggish_input.waveform_to_examples(
            noise(samples / 16000, 16000), 16000, return_tensor=False))
        if expected:
            assert waveform_to_examples(noise(samples / 16000, 16000), 16000).shape == (expected, 96, 64)


def test_frame_examples_are_non_overlapping():
    log_mel = np.arange(200 * 64, dtype=float).reshape(200, 64)
    examples = frame_examples(log_mel)
    assert examples.shape == (2, 96, 64)
    np.testing.assert_array_equal(examples.reshape(-1, 64), log_mel[:192])
