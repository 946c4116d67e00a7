"""Graded checks for ``logmel``: VGGish's log-mel front end, step by step.

Each step is compared with torchvggish's ``mel_features`` / ``vggish_input``
(the reference implementation of VGGish's input), with librosa where the two
agree, with closed-form signals, and with ``solutions/`` on the session's seeded
inputs (``inputs``: the public ones when you check yourself, unknown ones when graded).
"""

import math

import numpy as np
import pytest
import scipy.signal
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from torchvggish import mel_features, vggish_input

from .reference import assert_matches_reference, to_numpy, tone

GRADED = settings(max_examples=10, deadline=None, derandomize=True, database=None,
                  phases=(Phase.explicit, Phase.generate),  # no shrinking: quick feedback
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
VGGISH_LOG_MEL = dict(log_offset=0.01, window_length_secs=0.025, hop_length_secs=0.010, num_mel_bins=64,
                      lower_edge_hertz=125.0, upper_edge_hertz=7500.0)


def torchvggish_log_mel(signal, sample_rate=16000):
    return mel_features.log_mel_spectrogram(signal, audio_sample_rate=sample_rate, **VGGISH_LOG_MEL)


def audio(seed, num_samples, sample_rate=16000):
    """Noise plus a random tone: every mel band has energy, so the log is well conditioned."""
    rng = np.random.default_rng(seed)
    frequency = rng.uniform(200, 6000)
    return 0.05 * rng.standard_normal(num_samples) + tone(frequency, sample_rate, num_samples, amplitude=0.5)


# ------------------------------------------------------------------ window and STFT


@pytest.mark.points(2)
@pytest.mark.hint("periodic_hann: use the periodic Hann window 0.5 - 0.5 cos(2 pi n / N), n = 0..N-1; "
                  "np.hanning / scipy's sym=True give the symmetric window (N - 1 in the denominator)")
@GRADED
@given(window_length=st.integers(2, 2048))
def test_periodic_hann(impl, window_length):
    window = to_numpy(impl.logmel.periodic_hann(window_length))
    assert window.shape == (window_length,)
    np.testing.assert_allclose(window, mel_features.periodic_hann(window_length), atol=1e-6)
    np.testing.assert_allclose(window, scipy.signal.get_window("hann", window_length, fftbins=True), atol=1e-6)


@pytest.mark.points(4)
@pytest.mark.hint("stft_magnitude: return the magnitude |rfft| (not the power |X|^2) of whole frames of "
                  "window_length samples every hop_length samples (hop_length, not window_length; no centring, no "
                  "padding of the signal; 1 + (len(signal) - window_length) // hop_length frames: drop the "
                  "incomplete last frame but keep the last whole frame, no off by one), each multiplied by a "
                  "periodic Hann window and "
                  "zero-padded to fft_length (rfft(frame, n=fft_length): fft_length // 2 + 1 bins, the Nyquist bin "
                  "included)")
@GRADED
@given(seed=st.integers(0, 2**16), num_samples=st.integers(600, 5000), window_length=st.integers(16, 512),
       hop_length=st.integers(8, 300), extra_fft_bits=st.integers(0, 2))
def test_stft_magnitude_matches_torchvggish(impl, seed, num_samples, window_length, hop_length, extra_fft_bits):
    fft_length = 2 ** (int(np.ceil(np.log2(window_length))) + extra_fft_bits)
    signal = audio(seed, num_samples)
    got = to_numpy(impl.logmel.stft_magnitude(signal, fft_length, hop_length, window_length))
    expected = mel_features.stft_magnitude(signal, fft_length, hop_length, window_length)
    assert got.shape == expected.shape, (
        f"stft shape {got.shape}, expected {expected.shape} = [1 + (samples - window) // hop, fft_length // 2 + 1]")
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.points(2)
@pytest.mark.hint("stft_magnitude: with VGGish's numbers (window 400 zero-padded to an FFT of 512, hop 160, "
                  "no centring) "
                  "the magnitudes must equal librosa.stft(center=False) on the same frames; power or a symmetric "
                  "window does not")
def test_stft_magnitude_matches_librosa(impl, inputs):
    import librosa

    signal = inputs.noise_16k()[:8000]
    got = to_numpy(impl.logmel.stft_magnitude(signal, 512, 160, 400))
    # librosa centres the 400-sample window inside each 512-sample frame: pad 56 samples each side to align.
    expected = np.abs(librosa.stft(np.pad(signal, 56), n_fft=512, hop_length=160, win_length=400,
                                   window="hann", center=False)).T
    assert got.shape == expected.shape == (48, 257)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.points(2)
@pytest.mark.hint("stft_magnitude: a cosine of amplitude A exactly on FFT bin k must give magnitude A*N/4 at bin k "
                  "and A*N/8 at k +- 1 (periodic Hann, magnitude not power, no extra scaling)")
@GRADED
@given(bin_index=st.integers(4, 100), amplitude=st.floats(0.1, 2.0))
def test_stft_magnitude_of_bin_centred_cosine(impl, bin_index, amplitude):
    n = 256
    signal = amplitude * np.cos(2 * np.pi * bin_index * np.arange(4 * n) / n)
    got = to_numpy(impl.logmel.stft_magnitude(signal, n, n, n))
    expected = np.zeros(n // 2 + 1)
    expected[bin_index] = amplitude * n / 4
    expected[[bin_index - 1, bin_index + 1]] = amplitude * n / 8
    assert got.shape == (4, n // 2 + 1)
    np.testing.assert_allclose(got, np.broadcast_to(expected, got.shape), atol=1e-6 * n)


# ------------------------------------------------------------------ mel filterbank


@pytest.mark.points(4)
@pytest.mark.hint("mel_matrix: HTK mel 1127 ln(1 + f / 700) (not Slaney / librosa's default), num_mel_bins + 2 band "
                  "edges evenly spaced in mel (not in Hz), triangles linear in mel over the bin frequencies "
                  "linspace(0, nyquist, num_spectrogram_bins), 64 bands from 125 to "
                  "7500 Hz, peak 1 with no area normalisation, DC row zero, shape [num_spectrogram_bins, num_mel_bins]; "
                  "computed from the arguments, not stored")
def test_mel_matrix_vggish_defaults(impl, inputs):
    got = to_numpy(impl.logmel.mel_matrix())
    expected = mel_features.spectrogram_to_mel_matrix(num_mel_bins=64, num_spectrogram_bins=257,
                                                      audio_sample_rate=16000, lower_edge_hertz=125.0,
                                                      upper_edge_hertz=7500.0)
    assert got.shape == (257, 64), f"mel_matrix shape {got.shape}; expected [257 spectrogram bins, 64 mel bands]"
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # Computed, not stored: the same call with both edges moved a little (drawn from the session's seed).
    lower, upper = 125.0 + inputs.rng(125).uniform(-25, 25), 7500.0 + inputs.rng(7500).uniform(-300, 300)
    moved = to_numpy(impl.logmel.mel_matrix(num_mel_bins=64, num_spectrogram_bins=257, audio_sample_rate=16000,
                                            lower_edge_hertz=lower, upper_edge_hertz=upper))
    np.testing.assert_allclose(moved, mel_features.spectrogram_to_mel_matrix(64, 257, 16000, lower, upper), atol=1e-6,
                               err_msg=f"mel_matrix with the band edges at {lower:.1f} and {upper:.1f} Hz")


@pytest.mark.points(2)
@pytest.mark.hint("mel_matrix: use the arguments (num_mel_bins, num_spectrogram_bins, audio_sample_rate, "
                  "lower_edge_hertz, upper_edge_hertz), not VGGish's numbers hard-coded; HTK mel, triangles "
                  "linear in mel")
@GRADED
@given(num_mel_bins=st.integers(4, 80), fft_bits=st.integers(7, 11), sample_rate=st.sampled_from([16000, 22050, 44100]),
       lower=st.floats(0.0, 400.0), upper_fraction=st.floats(0.5, 1.0))
def test_mel_matrix_parameters(impl, num_mel_bins, fft_bits, sample_rate, lower, upper_fraction):
    num_bins = 2 ** fft_bits // 2 + 1
    upper = upper_fraction * sample_rate / 2
    got = to_numpy(impl.logmel.mel_matrix(num_mel_bins=num_mel_bins, num_spectrogram_bins=num_bins,
                                          audio_sample_rate=sample_rate, lower_edge_hertz=lower,
                                          upper_edge_hertz=upper))
    expected = mel_features.spectrogram_to_mel_matrix(num_mel_bins, num_bins, sample_rate, lower, upper)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-6)


# ------------------------------------------------------------------ log-mel spectrogram


@pytest.mark.points(5)
@pytest.mark.hint("log_mel_spectrogram: ln(stft_magnitude @ mel_matrix + 0.01) with window 400 (25 ms), hop 160 "
                  "(10 ms), FFT length 512, 64 HTK mel bands from 125 to 7500 Hz; natural log, the 0.01 offset, "
                  "magnitude not power, no centring")
@GRADED
@given(seed=st.integers(0, 2**16), num_samples=st.integers(400, 40000))
def test_log_mel_matches_torchvggish(impl, seed, num_samples):
    signal = audio(seed, num_samples)
    got = to_numpy(impl.logmel.log_mel_spectrogram(signal, 16000))
    expected = torchvggish_log_mel(signal)
    assert got.shape == expected.shape, (
        f"log-mel shape {got.shape}, expected {expected.shape} = [1 + (n - 400) // 160, 64]")
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.points(3)
@pytest.mark.hint("log_mel_spectrogram: silence must give ln(0.01) = -4.605 in every band: natural log (np.log, not "
                  "log10 or dB) of mel plus the 0.01 offset, added inside the log; 1 + (n - 400) // 160 frames "
                  "(no centring)")
@pytest.mark.parametrize("num_samples", [400, 15999, 16000])
def test_log_mel_of_silence(impl, inputs, num_samples):
    got = to_numpy(impl.logmel.log_mel_spectrogram(np.zeros(num_samples), 16000))
    assert got.shape == (1 + (num_samples - 400) // 160, 64)
    np.testing.assert_allclose(got, np.log(0.01), atol=1e-5)
    # A quiet tone near 1 kHz of the same length must lift its own band above the silence floor, and only that band.
    rng = inputs.rng(1000 + num_samples)  # the tone's frequency and phase from the session's seed
    quiet_tone = tone(rng.uniform(700, 1400), 16000, num_samples, amplitude=0.01, phase=rng.uniform(0, 6.28))
    quiet = to_numpy(impl.logmel.log_mel_spectrogram(quiet_tone, 16000))
    expected = torchvggish_log_mel(quiet_tone)
    assert quiet.shape == expected.shape
    np.testing.assert_allclose(quiet, expected, rtol=1e-4, atol=1e-4,
                               err_msg="a quiet tone near 1 kHz: natural log of mel + 0.01, the offset inside the log")


@pytest.mark.points(2)
@pytest.mark.hint("log_mel_spectrogram at another sample_rate: either derive window = round(0.025 * sample_rate), "
                  "hop = round(0.010 * sample_rate), the FFT length (next power of two) and the mel matrix from "
                  "sample_rate (as torchvggish does), or resample to 16 kHz first; do not ignore sample_rate")
@GRADED
@given(seed=st.integers(0, 2**16), sample_rate=st.sampled_from([22050, 32000, 44100, 48000]))
def test_log_mel_at_other_sample_rates(impl, seed, sample_rate):
    signal = audio(seed, sample_rate, sample_rate)  # 1 s, content below 6 kHz
    got = to_numpy(impl.logmel.log_mel_spectrogram(signal, sample_rate))
    native = torchvggish_log_mel(signal, sample_rate)
    if got.shape == native.shape and np.allclose(got, native, rtol=1e-4, atol=1e-4):
        return  # the analysis follows the sample rate (torchvggish's mel_features)
    # Otherwise it must equal the log-mel of the audio resampled to 16 kHz (any good resampler: bands below ~6.3 kHz).
    common = math.gcd(sample_rate, 16000)
    at_16k = torchvggish_log_mel(scipy.signal.resample_poly(signal, 16000 // common, sample_rate // common))
    assert abs(got.shape[0] - at_16k.shape[0]) <= 1 and got.shape[1] == 64, (
        f"{got.shape} for 1 s at {sample_rate} Hz; expected {native.shape} (analysis at {sample_rate} Hz) "
        f"or about {at_16k.shape} (resampled to 16 kHz)")
    frames = min(got.shape[0], at_16k.shape[0])
    difference = np.abs(got[1:frames - 1, :56] - at_16k[1:frames - 1, :56]).max()
    assert difference < 0.05, (f"differs from torchvggish's log-mel at {sample_rate} Hz and, by up to "
                               f"{difference:.2f}, from the log-mel of the audio resampled to 16 kHz")


@pytest.mark.points(2)
@pytest.mark.hint("log_mel_spectrogram: on the seeded test clip your values differ from the solution's: check "
                  "periodic Hann, magnitude, HTK mel 125-7500 Hz, ln(mel + 0.01)")
def test_log_mel_matches_solution(impl, inputs, reference):
    got = to_numpy(impl.logmel.log_mel_spectrogram(inputs.noise_16k(), 16000))
    assert_matches_reference(got, reference("logmel.log_mel_spectrogram.noise_16k"), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ examples


@pytest.mark.points(3)
@pytest.mark.hint("frame_examples: non-overlapping examples of frames_per_example frames (hop 96, not 48), the first "
                  "starting at frame 0; drop the partial tail (no zero padding); shape [frames // 96, 96, bands] "
                  "(frames before bands, not [N, bands, 96]); fewer frames than one example give an empty "
                  "[0, 96, bands] array, not an error")
@GRADED
@given(num_frames=st.integers(0, 500), bands=st.sampled_from([64, 8]), frames_per_example=st.sampled_from([96, 10]))
def test_frame_examples(impl, inputs, num_frames, bands, frames_per_example):
    log_mel = inputs.rng(num_frames).standard_normal((num_frames, bands))
    got = to_numpy(impl.logmel.frame_examples(log_mel, frames_per_example))
    count = num_frames // frames_per_example
    assert got.shape == (count, frames_per_example, bands), (
        f"{num_frames} frames -> {got.shape}; expected {(count, frames_per_example, bands)}")
    np.testing.assert_array_equal(got, log_mel[:count * frames_per_example].reshape(count, frames_per_example, bands))


@pytest.mark.points(3)
@pytest.mark.hint("waveform_to_examples (16 kHz mono): log-mel, then non-overlapping 96-frame examples with the "
                  "partial tail dropped; [N, 96, 64]; compare with torchvggish's vggish_input.waveform_to_examples")
@GRADED
@given(seed=st.integers(0, 2**16), seconds=st.floats(0.98, 3.5))
def test_waveform_to_examples_16k(impl, seed, seconds):
    signal = audio(seed, int(seconds * 16000))
    got = to_numpy(impl.logmel.waveform_to_examples(signal, 16000))
    expected = vggish_input.waveform_to_examples(signal, 16000, return_tensor=False)
    assert got.shape == expected.shape, f"{got.shape} examples, expected {expected.shape}"
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.points(2)
@pytest.mark.hint("waveform_to_examples (16 kHz stereo): down-mix [samples, channels] to mono with the channel mean "
                  "(not the first channel, not the sum) before the log-mel")
def test_waveform_to_examples_stereo_16k(impl, inputs):
    left, right = audio(inputs.rng(3), 32000), audio(inputs.rng(4), 32000)
    stereo = np.stack([left, 0.5 * right], axis=1)
    got = to_numpy(impl.logmel.waveform_to_examples(stereo, 16000))
    expected = vggish_input.waveform_to_examples(stereo, 16000, return_tensor=False)
    assert got.shape == expected.shape == (2, 96, 64)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.points(3)
@pytest.mark.hint("waveform_to_examples (44.1 kHz stereo): channel mean, then resample to 16 kHz with "
                  "anti-aliasing (a loud 12 kHz tone must not alias to 4 kHz) and a passband reaching ~7.5 kHz (the "
                  "top VGGish band; not a low-quality 'kaiser_fast' / soxr 'LQ' filter), then log-mel and 96-frame "
                  "examples")
def test_waveform_to_examples_44k_stereo(impl, inputs, reference):
    got = to_numpy(impl.logmel.waveform_to_examples(inputs.stereo_44k(), 44100))
    expected = reference("logmel.waveform_to_examples.stereo_44k")
    assert got.shape == expected.shape == (2, 96, 64), f"{got.shape} examples, expected (2, 96, 64)"
    # Resamplers differ in their transition band near 8 kHz: bands up to ~6.3 kHz must agree closely,
    # the top bands only on average (scipy resample_poly, soxr, librosa and resampy all pass).
    assert_matches_reference(got[:, :, :56], expected[:, :, :56], atol=0.05,
                             what="the solution's (bands below 6.3 kHz)")
    top = np.mean(got[:, :, 56:] - expected[:, :, 56:])
    assert np.mean(np.abs(got - expected)) < 0.02, (
        f"the top mel bands (6.3-7.5 kHz) are {-top:.2f} lower than the solution's: your resampler's low-pass cuts "
        "in well below 8 kHz (e.g. resampy/librosa 'kaiser_fast', soxr 'LQ'); VGGish's bands reach 7500 Hz"
        if top < -0.1 else "the log-mel of the resampled audio differs from the solution's")


@pytest.mark.points(2)
@pytest.mark.hint("waveform_to_examples: a 12 kHz tone at 44.1 kHz is above the 8 kHz Nyquist of 16 kHz audio and "
                  "must vanish; energy in the mel bands means the resampler has no anti-aliasing filter")
def test_waveform_to_examples_removes_content_above_8k(impl, inputs):
    # A loud tone near 12 kHz over a quiet one near 1 kHz (both from the session's seed): only the low one may
    # reach the examples. Folded at 8 kHz, the high one would land at 1-5.5 kHz, inside the compared bands.
    rng = inputs.rng(12000)
    high, low = rng.uniform(10500, 15000), rng.uniform(700, 1500)
    signal = tone(high, 44100, 44100, amplitude=0.5) + tone(low, 44100, 44100, amplitude=0.05)
    got = to_numpy(impl.logmel.waveform_to_examples(signal, 44100))
    expected = vggish_input.waveform_to_examples(tone(low, 16000, 16000, amplitude=0.05), 16000, return_tensor=False)
    assert got.shape == expected.shape == (1, 96, 64)
    # Compare mel energies (log-mel undone), bands below 6.3 kHz, no edge frames: 1.0 is what an alias of
    # amplitude 0.01 (-34 dB under the 12 kHz tone) adds to a band.
    energy = lambda log_mel: np.exp(log_mel[:, 2:-2, :56].astype(np.float64)) - 0.01  # noqa: E731
    difference = np.abs(energy(got) - energy(expected)).max()
    assert difference < 1.0, (
        f"the mel energies differ by up to {difference:.2f} from those of the {low:.0f} Hz tone alone; an alias of "
        f"the {high:.0f} Hz tone (at {16000 - high:.0f} Hz) reached the mel bands")


@pytest.mark.points(1)
@pytest.mark.hint("waveform_to_examples: [samples, 1] is mono too, and 48 kHz audio must be resampled to 16 kHz "
                  "(with anti-aliasing) before the log-mel: 2.0 s gives 2 examples")
@pytest.mark.visibility("hidden")
def test_waveform_to_examples_48k_single_channel(impl, inputs):
    signal = audio(inputs.rng(48), 96000, 48000)[:, None]
    got = to_numpy(impl.logmel.waveform_to_examples(signal, 48000))
    resampled = scipy.signal.resample_poly(signal[:, 0], 1, 3)  # 48 kHz -> 16 kHz
    expected = vggish_input.waveform_to_examples(resampled, 16000, return_tensor=False)
    assert got.shape == expected.shape == (2, 96, 64)
    np.testing.assert_allclose(got[:, :, :56], expected[:, :, :56], atol=0.05)
