"""VGGish's log-mel front end from the spec: periodic Hann, |rfft|, HTK mel triangles linear in mel."""

import numpy as np

from . import resampling

TARGET_RATE = 16000


def periodic_hann(window_length):
    phase = 2.0 * np.pi * np.arange(window_length) / window_length
    return 0.5 - 0.5 * np.cos(phase)


def stft_magnitude(signal, fft_length, hop_length, window_length):
    samples = np.asarray(signal, dtype=np.float64)
    count = max(0, (len(samples) - window_length) // hop_length + 1)
    starts = hop_length * np.arange(count)
    frames = samples[starts[:, None] + np.arange(window_length)[None, :]]
    return np.abs(np.fft.rfft(frames * periodic_hann(window_length), n=fft_length, axis=-1))


def _htk_mel(hertz):
    return 1127.0 * np.log1p(np.asarray(hertz, dtype=np.float64) / 700.0)


def mel_matrix(num_mel_bins=64, num_spectrogram_bins=257, audio_sample_rate=16000, lower_edge_hertz=125.0,
               upper_edge_hertz=7500.0):
    bin_mels = _htk_mel(np.linspace(0.0, audio_sample_rate / 2.0, num_spectrogram_bins))[:, None]
    edges = np.linspace(_htk_mel(lower_edge_hertz), _htk_mel(upper_edge_hertz), num_mel_bins + 2)
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mels - left) / (centre - left)
    falling = (right - bin_mels) / (right - centre)
    weights = np.clip(np.minimum(rising, falling), 0.0, None)
    weights[0, :] = 0.0
    return weights


def log_mel_spectrogram(signal, sample_rate=16000):
    window = int(round(0.025 * sample_rate))
    hop = int(round(0.010 * sample_rate))
    fft_length = 1 << int(np.ceil(np.log2(window)))
    spectrum = stft_magnitude(signal, fft_length, hop, window)
    mel = spectrum @ mel_matrix(64, spectrum.shape[1], sample_rate, 125.0, 7500.0)
    return np.log(mel + 0.01)


def frame_examples(log_mel, frames_per_example=96):
    log_mel = np.asarray(log_mel)
    count = log_mel.shape[0] // frames_per_example
    return log_mel[:count * frames_per_example].reshape(count, frames_per_example, log_mel.shape[1])


def waveform_to_examples(waveform, sample_rate):
    samples = resampling.to_mono(waveform)
    if sample_rate != TARGET_RATE:
        samples = resampling.resample(samples, sample_rate, TARGET_RATE)
    return frame_examples(log_mel_spectrogram(samples, TARGET_RATE), 96)
