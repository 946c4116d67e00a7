"""Graded checks for ``resampling``: mono down-mix and band-limited resampling.

Resampling is checked by properties any good resampler has (scipy's
``resample_poly``, soxr, librosa, resampy all pass), never by sample
equality with one library: the length, tones and DC in the passband are
kept, and content above the new Nyquist frequency is removed.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from .reference import fit_tone, middle_rms, to_numpy, tone, tone_delay

GRADED = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                  phases=(Phase.explicit, Phase.generate),  # no shrinking: quick feedback
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
RATES = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000]
rate_pairs = st.tuples(st.sampled_from(RATES), st.sampled_from(RATES)).filter(lambda pair: pair[0] != pair[1])
downsampling_pairs = rate_pairs.filter(lambda pair: pair[1] < pair[0] and 1.2 * pair[1] / 2 < 0.9 * pair[0] / 2)


@pytest.mark.points(3)
@pytest.mark.hint("to_mono: average the channels of [samples, channels] (mean over axis 1); "
                  "not the first channel, not the sum, not axis 0")
@GRADED
@given(samples=st.integers(1, 300), channels=st.integers(1, 6), seed=st.integers(0, 2**16))
@example(samples=2, channels=5, seed=0)  # fewer samples than channels: the layout is [samples, channels], always
@example(samples=1, channels=6, seed=1)
def test_to_mono_is_the_channel_mean(impl, samples, channels, seed):
    waveform = np.random.default_rng(seed).uniform(-1, 1, size=(samples, channels))
    mono = to_numpy(impl.resampling.to_mono(waveform))
    assert mono.shape == (samples,), f"to_mono gave shape {mono.shape} for input {waveform.shape}"
    np.testing.assert_allclose(mono, waveform.mean(axis=1), rtol=1e-6, atol=1e-7)


@pytest.mark.points(1)
@pytest.mark.hint("to_mono: a 1-D [samples] waveform is already mono; return it unchanged (and [samples, 1] "
                  "becomes [samples])")
def test_to_mono_keeps_mono(impl, inputs):
    waveform = inputs.rng(0).uniform(-1, 1, 1000)
    np.testing.assert_allclose(to_numpy(impl.resampling.to_mono(waveform)), waveform, rtol=1e-6, atol=1e-7)
    column = to_numpy(impl.resampling.to_mono(waveform[:, None]))
    assert column.shape == waveform.shape, f"to_mono of [1000, 1] gave shape {column.shape}, expected (1000,)"
    np.testing.assert_allclose(column, waveform, rtol=1e-6, atol=1e-7)


@pytest.mark.points(3)
@pytest.mark.hint("resample: output length must be len(waveform) * target_sr / orig_sr (within one sample); "
                  "check the ratio is target/orig, not orig/target")
@GRADED
@given(pair=rate_pairs, seconds=st.floats(0.05, 0.6))
def test_resample_length(impl, pair, seconds):
    orig_sr, target_sr = pair
    num_samples = int(seconds * orig_sr)
    frequency = 0.1 * min(orig_sr, target_sr) / 2   # low in the passband: the output is the same slow tone
    out = to_numpy(impl.resampling.resample(tone(frequency, orig_sr, num_samples, amplitude=0.5), orig_sr, target_sr))
    expected = num_samples * target_sr / orig_sr
    assert out.ndim == 1 and abs(out.shape[0] - expected) <= 1.0, (
        f"{num_samples} samples at {orig_sr} Hz -> {out.shape} at {target_sr} Hz; expected about {expected:.1f}")
    amplitude, _ = fit_tone(out, frequency, target_sr, max_stretch=1.0 / max(len(out), 1))
    assert abs(amplitude - 0.5) < 0.05, (
        f"a {frequency:.0f} Hz tone of amplitude 0.5 came out with amplitude {amplitude:.3f}: the samples are not "
        "the resampled waveform")


@pytest.mark.points(1)
@pytest.mark.hint("resample: when orig_sr == target_sr return the waveform unchanged (and only then: another rate "
                  "changes the length)")
def test_resample_same_rate_is_identity(impl, inputs):
    waveform = inputs.rng(1).uniform(-1, 1, 4000)
    np.testing.assert_allclose(to_numpy(impl.resampling.resample(waveform, 16000, 16000)), waveform, atol=1e-6)
    halved = to_numpy(impl.resampling.resample(tone(500, 16000, 4000, amplitude=0.5), 16000, 8000))
    assert halved.ndim == 1 and abs(len(halved) - 2000) <= 1, (
        f"4000 samples at 16 kHz -> {halved.shape} at 8 kHz; expected about 2000")
    amplitude, _ = fit_tone(halved, 500, 8000, max_stretch=1.0 / len(halved))
    assert abs(amplitude - 0.5) < 0.05, f"a 500 Hz tone resampled 16 -> 8 kHz has amplitude {amplitude:.3f}, not 0.5"


@pytest.mark.points(4)
@pytest.mark.hint("resample: a tone below both Nyquist frequencies must keep its frequency, amplitude and timing; "
                  "use a band-limited resampler (polyphase / windowed sinc, e.g. scipy.signal.resample_poly), not "
                  "linear interpolation (np.interp) or dropping samples; output sample k is the input at time "
                  "k / target_sr: remove the filter's delay (no leading zeros, nothing reversed)")
@GRADED
@given(pair=rate_pairs, fraction=st.floats(0.02, 0.75), phase=st.floats(0, 6.28))
@example(pair=(44100, 16000), fraction=0.75, phase=0.3)  # the passband's top, which random draws may miss
@example(pair=(32000, 24000), fraction=0.75, phase=1.1)
def test_resample_keeps_passband_tones(impl, pair, fraction, phase):
    orig_sr, target_sr = pair
    frequency = fraction * min(orig_sr, target_sr) / 2
    waveform = tone(frequency, orig_sr, orig_sr // 2, amplitude=0.8, phase=phase)
    out = to_numpy(impl.resampling.resample(waveform, orig_sr, target_sr))
    # The length check allows one sample of slack, so allow the time grid the same: at most one sample of
    # stretch over the clip (FFT resampling, e.g. scipy.signal.resample, fits the clip to a whole number of
    # samples).
    amplitude, residual = fit_tone(out, frequency, target_sr, max_stretch=1.0 / max(len(out), 1))
    assert abs(amplitude - 0.8) < 0.025, (
        f"{frequency:.0f} Hz tone, {orig_sr} -> {target_sr} Hz: amplitude {amplitude:.3f}, expected 0.8")
    assert residual < 0.008, (
        f"{frequency:.0f} Hz tone, {orig_sr} -> {target_sr} Hz: distortion rms {residual:.4f} (images or aliases)")
    # In time too, within a sample (as the length is; a hand-made polyphase filter that trims its delay in whole
    # input samples is a fraction off): a slow tone, no phase wrap within half its period, comes out where it went in.
    slow = 0.01 * min(orig_sr, target_sr) / 2
    waveform = tone(slow, orig_sr, orig_sr // 2, amplitude=0.5, phase=phase)
    delay = tone_delay(to_numpy(impl.resampling.resample(waveform, orig_sr, target_sr)), slow, target_sr, phase=phase)
    assert abs(delay) < 1.0, (f"{slow:.0f} Hz tone, {orig_sr} -> {target_sr} Hz: the output lags the input by "
                              f"{delay:.1f} samples (the filter's delay left in, or the signal shifted or reversed)")


@pytest.mark.points(2)
@pytest.mark.hint("resample: a constant (DC) signal must stay the same constant: normalise the low-pass filter "
                  "to unit gain")
@GRADED
@given(pair=rate_pairs, level=st.floats(-0.9, 0.9))
def test_resample_keeps_dc(impl, pair, level):
    orig_sr, target_sr = pair
    frequency = 0.1 * min(orig_sr, target_sr) / 2   # a slow tone on top, so a constant output cannot pass
    waveform = level + tone(frequency, orig_sr, orig_sr // 4, amplitude=0.05)
    out = to_numpy(impl.resampling.resample(waveform, orig_sr, target_sr))
    assert out.ndim == 1 and abs(len(out) - len(waveform) * target_sr / orig_sr) <= 1.0, f"output shape {out.shape}"
    cut = len(out) // 5
    mean = float(np.mean(out[cut:len(out) - cut]))  # over 60 or more periods the tone averages out (< 3e-4)
    assert abs(mean - level) < 0.005, f"a DC level of {level:.3f} came out as {mean:.3f} ({orig_sr} -> {target_sr} Hz)"
    amplitude, _ = fit_tone(out, frequency, target_sr, max_stretch=1.0 / max(len(out), 1))
    assert abs(amplitude - 0.05) < 0.005, (
        f"the {frequency:.0f} Hz tone on top of the DC level came out with amplitude {amplitude:.4f}, not 0.05")


@pytest.mark.points(5)
@pytest.mark.hint("resample: no anti-aliasing. Content above the new Nyquist frequency (target_sr / 2) must be "
                  "low-pass filtered away before decimating; naive decimation (x[::k]) or np.interp folds it back "
                  "as an alias")
@GRADED
@given(pair=downsampling_pairs, fraction=st.floats(1.2, 1.9))
def test_resample_rejects_content_above_new_nyquist(impl, pair, fraction):
    orig_sr, target_sr = pair
    frequency = min(fraction * target_sr / 2, 0.9 * orig_sr / 2)
    kept = 0.25 * target_sr / 2  # a passband tone that must survive, so silence is no answer
    high = tone(frequency, orig_sr, orig_sr // 2)
    out = to_numpy(impl.resampling.resample(high + tone(kept, orig_sr, orig_sr // 2, amplitude=0.5), orig_sr,
                                            target_sr))
    amplitude, residual = fit_tone(out, kept, target_sr, max_stretch=1.0 / max(len(out), 1))
    assert abs(amplitude - 0.5) < 0.025, (
        f"a {kept:.0f} Hz tone (amplitude 0.5, in the passband) came out with amplitude {amplitude:.3f}")
    ratio = residual / middle_rms(high)
    assert ratio < 0.02, (f"a {frequency:.0f} Hz tone resampled {orig_sr} -> {target_sr} Hz kept {ratio:.1%} of its "
                          f"level; it is above the new Nyquist ({target_sr / 2:.0f} Hz) and must be removed")


@pytest.mark.points(2)
@pytest.mark.hint("resample: 44.1 kHz -> 16 kHz (the ratio 160/441) must keep a 1 kHz tone and remove a 12 kHz one "
                  "(anti-aliasing low-pass before decimation)")
def test_resample_cd_audio_to_16k(impl):
    waveform = tone(1000, 44100, 44100, amplitude=0.5) + tone(12000, 44100, 44100, amplitude=0.5)
    out = to_numpy(impl.resampling.resample(waveform, 44100, 16000))
    assert abs(out.shape[0] - 16000) <= 1
    amplitude, residual = fit_tone(out, 1000, 16000)
    assert abs(amplitude - 0.5) < 0.015 and residual < 0.01, (
        f"1 kHz amplitude {amplitude:.3f} (expected 0.5), leftover rms {residual:.3f} "
        "(the 12 kHz tone aliased to 4 kHz?)")
