"""Step 2: the VGGish log-mel front end.

VGGish does not look at raw audio but at a *log-mel spectrogram*: 25 ms
windows every 10 ms, a 512-point FFT, 64 mel bands between 125 and 7500 Hz,
``ln(mel + 0.01)``, cut into non-overlapping 0.96 s examples of 96 frames.
Every number matters: the network was trained on exactly these features.
torchvggish's ``mel_features.py`` is the reference; reproduce it with numpy
(vectorised: no Python loop over frames).

You may use ``from .resampling import to_mono, resample`` in
``waveform_to_examples``.
"""

import numpy as np  # noqa: F401  (you will need it)


def periodic_hann(window_length):
    """The *periodic* Hann window of ``window_length`` points.

    Concept: ``w[n] = 0.5 - 0.5 cos(2 pi n / N)`` for ``n = 0 .. N-1``: one
    full cosine period, so the window tiles perfectly under the FFT.

    Returns
    -------
    np.ndarray
        ``[window_length]`` (VGGish: 400).

    Pitfalls
    --------
    ``np.hanning(N)`` is the *symmetric* window (``N - 1`` in the
    denominator, ends on zero at both sides). Close, but not VGGish.

    Examples
    --------
    >>> periodic_hann(4)
    array([0. , 0.5, 1. , 0.5])
    """
    raise NotImplementedError("periodic_hann")


def stft_magnitude(signal, fft_length, hop_length, window_length):
    """Magnitude of the short-time Fourier transform.

    Concept: cut the signal into frames of ``window_length`` samples every
    ``hop_length`` samples, multiply each by the periodic Hann window, and
    take ``np.abs(np.fft.rfft(frame, n=fft_length))`` (the frame is
    zero-padded from 400 to 512 samples). VGGish: window 400 (25 ms), hop
    160 (10 ms), FFT length 512.

    Returns
    -------
    np.ndarray
        ``[1 + (len(signal) - window_length) // hop_length, fft_length // 2 + 1]``
        (VGGish: 257 bins).

    Pitfalls
    --------
    Magnitude, not power (no squaring). No centring or padding of the signal
    (``librosa.stft`` centres by default): the first frame starts at sample
    0 and an incomplete last frame is dropped. An FFT length of 400 gives
    201 bins and different frequencies.
    """
    raise NotImplementedError("stft_magnitude")


def mel_matrix(num_mel_bins=64, num_spectrogram_bins=257, audio_sample_rate=16000,
               lower_edge_hertz=125.0, upper_edge_hertz=7500.0):
    """Weights that map STFT magnitudes to mel bands: ``mel = stft @ W``.

    Concept: the HTK mel scale ``mel(f) = 1127 ln(1 + f / 700)``. Take
    ``num_mel_bins + 2`` edges evenly spaced in mel between the lower and
    upper edge; band ``i`` is a triangle rising from edge ``i`` to a peak of
    1 at edge ``i + 1`` and falling to 0 at edge ``i + 2``, *linear in mel*.
    Evaluate it at each spectrogram bin's frequency,
    ``np.linspace(0, audio_sample_rate / 2, num_spectrogram_bins)``. The DC
    bin (row 0) gets weight 0.

    Returns
    -------
    np.ndarray
        ``[num_spectrogram_bins, num_mel_bins]`` (VGGish: ``[257, 64]``).

    Pitfalls
    --------
    librosa's default filters are Slaney-style (another mel formula, area
    normalised, triangles linear in Hz): not VGGish. Mind the orientation
    (bins x bands) and use the arguments, not hard-coded numbers.
    """
    raise NotImplementedError("mel_matrix")


def log_mel_spectrogram(signal, sample_rate=16000):
    """VGGish log-mel spectrogram of mono audio at ``sample_rate``.

    Concept: ``ln(stft_magnitude(...) @ mel_matrix(...) + 0.01)`` with
    window ``round(0.025 * sample_rate)`` (400 at 16 kHz), hop
    ``round(0.010 * sample_rate)`` (160) and the FFT length the next power
    of two above the window (512).

    Returns
    -------
    np.ndarray
        ``[1 + (len(signal) - 400) // 160, 64]`` at 16 kHz.

    Pitfalls
    --------
    The natural log (``np.log``), not ``log10`` or decibels; the 0.01
    offset is added *inside* the log (silence gives ln(0.01) = -4.605).
    """
    raise NotImplementedError("log_mel_spectrogram")


def frame_examples(log_mel, frames_per_example=96):
    """Cut a ``[frames, bands]`` log-mel spectrogram into VGGish examples.

    Concept: one example is 96 frames (0.96 s) x 64 bands; examples do not
    overlap (hop 96).

    Returns
    -------
    np.ndarray
        ``[frames // frames_per_example, frames_per_example, bands]``.

    Pitfalls
    --------
    Drop the partial tail; do not zero-pad it into an extra example (a
    padded example is mostly silence and skews every clip average).
    """
    raise NotImplementedError("frame_examples")


def waveform_to_examples(waveform, sample_rate):
    """Audio to VGGish input examples: the whole front end in one call.

    Concept: ``to_mono`` -> ``resample`` to 16 kHz (only if needed) ->
    ``log_mel_spectrogram`` -> ``frame_examples``.

    Parameters
    ----------
    waveform : array_like
        ``[samples]`` or ``[samples, channels]``.
    sample_rate : int

    Returns
    -------
    np.ndarray
        ``[N, 96, 64]``, one example per whole 0.96 s (about 15600 samples
        at 16 kHz for the first).
    """
    raise NotImplementedError("waveform_to_examples")
