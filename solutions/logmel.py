"""Step 2: log-mel spectrogram examples, exactly as VGGish computes them (solution)."""

import numpy as np

from .resampling import resample, to_mono

SAMPLE_RATE = 16000          # VGGish works on 16 kHz mono audio
WINDOW_SECONDS = 0.025       # 25 ms analysis window (400 samples)
HOP_SECONDS = 0.010          # 10 ms hop (160 samples)
NUM_MEL_BINS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01            # natural log(mel + 0.01)
FRAMES_PER_EXAMPLE = 96      # 0.96 s per example, no overlap


def periodic_hann(window_length):
    """Periodic Hann window: one full cosine period over ``window_length`` points.

    Examples
    --------
    >>> periodic_hann(4)
    array([0. , 0.5, 1. , 0.5])
    """
    n = np.arange(window_length)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / window_length)


def _frames(signal, window_length, hop_length):
    """``[frames, window_length]`` whole frames, every ``hop_length`` samples; the tail is dropped."""
    num_frames = max(0, 1 + (len(signal) - window_length) // hop_length)
    starts = hop_length * np.arange(num_frames)[:, None]
    return signal[starts + np.arange(window_length)]


def stft_magnitude(signal, fft_length, hop_length, window_length):
    """Magnitude STFT without centring: ``[frames, fft_length // 2 + 1]``.

    Each frame of ``window_length`` samples is multiplied by a periodic Hann
    window and zero-padded to ``fft_length`` by ``np.fft.rfft``.

    Examples
    --------
    >>> stft_magnitude(np.ones(800), 512, 160, 400).shape
    (3, 257)
    """
    frames = _frames(np.asarray(signal, dtype=np.float64), window_length, hop_length)
    return np.abs(np.fft.rfft(frames * periodic_hann(window_length), n=fft_length))


def hertz_to_mel(frequencies_hertz):
    """HTK mel scale: ``1127 ln(1 + f / 700)``."""
    return 1127.0 * np.log(1.0 + np.asarray(frequencies_hertz) / 700.0)


def mel_matrix(num_mel_bins=64, num_spectrogram_bins=257, audio_sample_rate=16000,
               lower_edge_hertz=125.0, upper_edge_hertz=7500.0):
    """``[num_spectrogram_bins, num_mel_bins]`` triangular HTK-mel weights (``mel = stft @ W``).

    Examples
    --------
    >>> mel_matrix().shape
    (257, 64)
    """
    nyquist_hertz = audio_sample_rate / 2.0
    if not 0.0 <= lower_edge_hertz < upper_edge_hertz <= nyquist_hertz:
        raise ValueError(f"need 0 <= lower_edge_hertz < upper_edge_hertz <= {nyquist_hertz}")
    bins_mel = hertz_to_mel(np.linspace(0.0, nyquist_hertz, num_spectrogram_bins))[:, None]
    edges_mel = np.linspace(hertz_to_mel(lower_edge_hertz), hertz_to_mel(upper_edge_hertz), num_mel_bins + 2)
    lower, center, upper = edges_mel[:-2], edges_mel[1:-1], edges_mel[2:]
    rising = (bins_mel - lower) / (center - lower)
    falling = (upper - bins_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0  # the DC bin never contributes
    return weights


def log_mel_spectrogram(signal, sample_rate=16000):
    """VGGish log-mel spectrogram ``[frames, 64]`` of mono audio at ``sample_rate``.

    Examples
    --------
    >>> log_mel_spectrogram(np.zeros(16000)).shape
    (98, 64)
    """
    window_length = int(round(sample_rate * WINDOW_SECONDS))
    hop_length = int(round(sample_rate * HOP_SECONDS))
    fft_length = 2 ** int(np.ceil(np.log2(window_length)))
    spectrogram = stft_magnitude(signal, fft_length, hop_length, window_length)
    weights = mel_matrix(NUM_MEL_BINS, spectrogram.shape[1], sample_rate, MEL_MIN_HZ, MEL_MAX_HZ)
    return np.log(spectrogram @ weights + LOG_OFFSET)


def frame_examples(log_mel, frames_per_example=96):
    """Non-overlapping ``[N, frames_per_example, bands]`` examples; the partial tail is dropped.

    Examples
    --------
    >>> frame_examples(np.zeros((200, 64))).shape
    (2, 96, 64)
    """
    log_mel = np.asarray(log_mel)
    count = log_mel.shape[0] // frames_per_example
    return log_mel[:count * frames_per_example].reshape(count, frames_per_example, log_mel.shape[1])


def waveform_to_examples(waveform, sample_rate):
    """Audio (``[samples]`` or ``[samples, channels]`` at ``sample_rate``) to float32 ``[N, 96, 64]``.

    Examples
    --------
    >>> waveform_to_examples(np.zeros((32000, 2)), 16000).shape
    (2, 96, 64)
    """
    signal = to_mono(waveform)
    if sample_rate != SAMPLE_RATE:
        signal = resample(signal, sample_rate, SAMPLE_RATE)
    examples = frame_examples(log_mel_spectrogram(signal, SAMPLE_RATE), FRAMES_PER_EXAMPLE)
    return examples.astype(np.float32)
