"""Step 1: mono, 16 kHz audio (solution)."""

from math import gcd

import numpy as np
from scipy.signal import resample_poly


def to_mono(waveform):
    """Average the channels of ``[samples]`` or ``[samples, channels]`` audio.

    Parameters
    ----------
    waveform : array_like
        ``[samples]`` (already mono) or ``[samples, channels]``.

    Returns
    -------
    np.ndarray
        float64 ``[samples]``: the mean over channels.

    Examples
    --------
    >>> to_mono(np.array([[1.0, 3.0], [0.0, 2.0]]))
    array([2., 1.])
    """
    waveform = np.asarray(waveform, dtype=np.float64)
    if waveform.ndim == 1:
        return waveform
    if waveform.ndim != 2:
        raise ValueError(f"waveform: expected [samples] or [samples, channels], got shape {waveform.shape}")
    return waveform.mean(axis=1)


def resample(waveform, orig_sr, target_sr):
    """Band-limited resampling of mono audio from ``orig_sr`` to ``target_sr``.

    A polyphase FIR filter (``scipy.signal.resample_poly``) up-samples by
    ``target_sr / g`` and down-samples by ``orig_sr / g`` (``g`` their gcd),
    low-pass filtering at the lower Nyquist frequency so nothing aliases.

    Parameters
    ----------
    waveform : array_like
        ``[samples]``.
    orig_sr, target_sr : int
        Sample rates in Hz.

    Returns
    -------
    np.ndarray
        float64 ``[ceil(samples * target_sr / orig_sr)]``.

    Examples
    --------
    >>> resample(np.ones(441), 44100, 16000).shape
    (160,)
    """
    waveform = np.asarray(waveform, dtype=np.float64)
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr == target_sr:
        return waveform.copy()
    common = gcd(orig_sr, target_sr)
    return resample_poly(waveform, target_sr // common, orig_sr // common)
