"""Mono and band-limited resampling with soxr (very high quality)."""

import numpy as np
import soxr


def to_mono(waveform):
    samples = np.asarray(waveform, dtype=np.float64)
    return samples if samples.ndim == 1 else samples.mean(axis=-1)


def resample(waveform, orig_sr, target_sr):
    samples = np.asarray(waveform, dtype=np.float64)
    if orig_sr == target_sr:
        return samples.copy()
    return soxr.resample(samples, orig_sr, target_sr, quality="VHQ")
