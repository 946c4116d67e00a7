"""Step 1: mono, 16 kHz audio.

VGGish was trained on mono audio sampled at 16 kHz. Field recordings come
as stereo at 44.1 or 48 kHz, so the first step is to down-mix and resample.
Plain numpy and scipy are enough; ``scipy.signal.resample_poly`` is a good
band-limited resampler (soxr, librosa or resampy are fine too).
"""

import numpy as np  # noqa: F401  (you will need it)


def to_mono(waveform):
    """Down-mix audio to one channel.

    Concept: a stereo recording is two microphones' views of the same scene;
    VGGish expects one. The standard down-mix is the *mean* of the channels.

    Parameters
    ----------
    waveform : array_like
        ``[samples]`` (already mono: return it unchanged) or
        ``[samples, channels]`` (samples first, as ``soundfile`` reads them).

    Returns
    -------
    np.ndarray
        ``[samples]``, float.

    Pitfalls
    --------
    Keeping only the first channel loses a bird that only the right
    microphone heard; summing channels doubles the level (and changes every
    log-mel value). Average over axis 1, not axis 0.

    Examples
    --------
    >>> to_mono(np.array([[1.0, 3.0], [0.0, 2.0]]))
    array([2., 1.])
    """
    raise NotImplementedError("to_mono")


def resample(waveform, orig_sr, target_sr):
    """Change the sample rate of mono audio from ``orig_sr`` to ``target_sr`` Hz.

    Concept: resampling must be *band-limited*. Going down from 44.1 kHz to
    16 kHz, everything above the new Nyquist frequency (8 kHz) has to be
    removed by a low-pass (anti-aliasing) filter first, otherwise it folds
    back as a false tone (a 12 kHz whistle would appear at 4 kHz). A
    polyphase filter does both steps at once:
    ``scipy.signal.resample_poly(x, up, down)`` with
    ``up / down = target_sr / orig_sr`` reduced by their gcd (160 / 441 for
    44.1 kHz -> 16 kHz).

    Parameters
    ----------
    waveform : array_like
        ``[samples]`` mono audio.
    orig_sr, target_sr : int
        Sample rates in Hz.

    Returns
    -------
    np.ndarray
        ``[about samples * target_sr / orig_sr]`` (within one sample).
        Same rates: the waveform unchanged.

    Pitfalls
    --------
    ``x[::3]`` (naive decimation) and ``np.interp`` (linear interpolation)
    have no anti-aliasing filter: they pass a quick listen and ruin the
    spectrogram. Tones below both Nyquist frequencies must keep their
    amplitude, and a constant signal must stay constant.
    """
    raise NotImplementedError("resample")
