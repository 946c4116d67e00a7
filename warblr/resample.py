"""resampy's ``kaiser_best`` filter, reproduced (placeholder: calls resampy until the fast polyphase path lands)."""

import numpy as np


def resample_kaiser_best(waveform, orig_sr, target_sr):
    """Resample ``waveform`` with resampy's ``kaiser_best`` filter."""
    import resampy

    return resampy.resample(np.asarray(waveform), orig_sr, target_sr, filter="kaiser_best")
