"""VGGish log-mel features: the numpy reference, framed into 0.96 s examples.

Every function here is a small pure function over numpy arrays and follows
torchvggish's ``mel_features`` / ``vggish_input`` bit for bit (float64
inside, float32 out). The batched torch path lives in :mod:`warblr.fast`.
"""

from __future__ import annotations

import functools

import numpy as np

from . import spec
from .audio import load_audio, to_mono, validate_sample_rate
from .resample import resample, resampled_length
from .errors import AudioTooShortError, InvalidArgumentError

__all__ = [
    "periodic_hann",
    "frame",
    "stft_magnitude",
    "hertz_to_mel",
    "mel_matrix",
    "log_mel_spectrogram",
    "frame_examples",
    "waveform_to_examples",
    "wavfile_to_examples",
    "num_examples",
    "hop_frames",
    "window_start_samples",
]


def periodic_hann(window_length):
    """Periodic Hann window ``0.5 - 0.5 cos(2 pi n / N)``, ``n = 0..N-1``.

    Parameters
    ----------
    window_length : int

    Returns
    -------
    np.ndarray
        float64 ``[window_length]``; starts at 0 and stops one sample short
        of the closing zero (``np.hanning`` is the *symmetric* window).

    Examples
    --------
    >>> periodic_hann(4)
    array([0. , 0.5, 1. , 0.5])
    """
    return 0.5 - 0.5 * np.cos(2.0 * np.pi / window_length * np.arange(window_length))


def frame(data, *, window_length, hop_length):
    """Split the first axis into complete, possibly overlapping frames (a view).

    Parameters
    ----------
    data : np.ndarray
        ``[samples, ...]``.
    window_length, hop_length : int, keyword-only

    Returns
    -------
    np.ndarray
        ``[1 + (samples - window_length) // hop_length, window_length, ...]``;
        an incomplete tail is dropped, never padded. Zero frames when
        ``samples < window_length``.

    Examples
    --------
    >>> frame(np.arange(5), window_length=2, hop_length=2)
    array([[0, 1],
           [2, 3]])
    """
    num_frames = max(0, 1 + (data.shape[0] - window_length) // hop_length)
    shape = (num_frames, window_length) + data.shape[1:]
    strides = (data.strides[0] * hop_length,) + data.strides
    return np.lib.stride_tricks.as_strided(data, shape=shape, strides=strides, writeable=False)


def stft_magnitude(signal, *, fft_length=spec.FFT_LENGTH, hop_length=spec.STFT_HOP_LENGTH,
                   window_length=spec.STFT_WINDOW_LENGTH):
    """Magnitude of the short-time Fourier transform, no centring or padding.

    Parameters
    ----------
    signal : np.ndarray
        ``[samples]``.
    fft_length, hop_length, window_length : int, keyword-only
        VGGish: 512, 160, 400. Each 400-sample frame is windowed with a
        periodic Hann window and zero-padded at the end to 512.

    Returns
    -------
    np.ndarray
        ``[frames, fft_length // 2 + 1]`` magnitudes (not power).

    Examples
    --------
    >>> stft_magnitude(np.ones(800)).shape
    (3, 257)
    """
    frames = frame(np.asarray(signal, dtype=np.float64), window_length=window_length, hop_length=hop_length)
    return np.abs(np.fft.rfft(frames * periodic_hann(window_length), n=int(fft_length)))


def hertz_to_mel(frequencies_hertz):
    """HTK mel scale, ``1127 ln(1 + f / 700)``.

    Examples
    --------
    >>> round(float(hertz_to_mel(700.0)), 3)
    781.177
    """
    return spec.MEL_HIGH_FREQUENCY_Q * np.log(1.0 + np.asarray(frequencies_hertz) / spec.MEL_BREAK_FREQUENCY_HERTZ)


@functools.lru_cache(maxsize=8)
def _mel_matrix_cached(num_mel_bins, num_spectrogram_bins, audio_sample_rate, lower_edge_hertz, upper_edge_hertz):
    nyquist_hertz = audio_sample_rate / 2.0
    if not 0.0 <= lower_edge_hertz < upper_edge_hertz <= nyquist_hertz:
        raise InvalidArgumentError(
            f"mel edges: need 0 <= lower_edge_hertz ({lower_edge_hertz}) < upper_edge_hertz "
            f"({upper_edge_hertz}) <= Nyquist ({nyquist_hertz})"
        )
    bins_mel = hertz_to_mel(np.linspace(0.0, nyquist_hertz, num_spectrogram_bins))
    edges_mel = np.linspace(hertz_to_mel(lower_edge_hertz), hertz_to_mel(upper_edge_hertz), num_mel_bins + 2)
    lower, center, upper = edges_mel[:-2], edges_mel[1:-1], edges_mel[2:]
    # Triangles are linear in mel (not in Hz, as librosa's are).
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0  # the DC bin never contributes
    weights.setflags(write=False)
    return weights


def mel_matrix(*, num_mel_bins=spec.NUM_MEL_BINS, num_spectrogram_bins=spec.NUM_SPECTROGRAM_BINS,
               audio_sample_rate=spec.SAMPLE_RATE, lower_edge_hertz=spec.MEL_MIN_HZ,
               upper_edge_hertz=spec.MEL_MAX_HZ):
    """Matrix that maps STFT magnitudes to mel bands: ``mel = stft @ W``.

    Parameters
    ----------
    num_mel_bins, num_spectrogram_bins, audio_sample_rate : int, keyword-only
    lower_edge_hertz, upper_edge_hertz : float, keyword-only

    Returns
    -------
    np.ndarray
        Read-only float64 ``[num_spectrogram_bins, num_mel_bins]``: HTK-mel
        triangles over the bin centre frequencies, DC row zero, peak 1, no
        area normalisation (torchvggish ``spectrogram_to_mel_matrix``).

    Examples
    --------
    >>> mel_matrix().shape
    (257, 64)
    """
    return _mel_matrix_cached(int(num_mel_bins), int(num_spectrogram_bins), float(audio_sample_rate),
                              float(lower_edge_hertz), float(upper_edge_hertz))


def log_mel_spectrogram(signal):
    """VGGish log-mel spectrogram of 16 kHz mono audio.

    Parameters
    ----------
    signal : np.ndarray
        ``[samples]`` at 16 kHz.

    Returns
    -------
    np.ndarray
        float64 ``[1 + (samples - 400) // 160, 64]`` of ``ln(mel + 0.01)``.

    Examples
    --------
    >>> log_mel_spectrogram(np.zeros(16000)).shape
    (98, 64)
    """
    mel = stft_magnitude(signal) @ mel_matrix()
    return np.log(mel + spec.LOG_OFFSET)


def frame_examples(log_mel, *, frames_per_example=spec.NUM_FRAMES, hop_frames=None):
    """Cut a log-mel spectrogram into examples.

    Parameters
    ----------
    log_mel : np.ndarray
        ``[frames, bands]``.
    frames_per_example : int, keyword-only
        96 (0.96 s). The incomplete tail is dropped.
    hop_frames : int, optional, keyword-only
        Frames between the starts of consecutive examples (see
        :func:`hop_frames`); default ``frames_per_example``: non-overlapping,
        the VGGish spec.

    Returns
    -------
    np.ndarray
        ``[1 + (frames - frames_per_example) // hop_frames, frames_per_example, bands]`` (a view).

    Examples
    --------
    >>> frame_examples(np.zeros((200, 64))).shape
    (2, 96, 64)
    >>> frame_examples(np.zeros((200, 64)), hop_frames=48).shape
    (3, 96, 64)
    """
    hop = frames_per_example if hop_frames is None else hop_frames
    return frame(np.asarray(log_mel), window_length=frames_per_example, hop_length=hop)


def hop_frames(hop):
    """STFT frames between example starts for a hop of ``hop`` seconds (a positive multiple of 10 ms).

    Parameters
    ----------
    hop : float
        Seconds; :data:`warblr.spec.EXAMPLE_HOP_SECONDS` (0.96) is the VGGish
        spec, 0.48 gives half-overlapping examples. Examples start on STFT
        frames, so the hop must be a whole number of 10 ms frames.

    Returns
    -------
    int

    Raises
    ------
    InvalidArgumentError
        Not a positive finite number, or not a multiple of 0.01 s (``parameter="hop"``).

    Examples
    --------
    >>> hop_frames(0.96), hop_frames(0.48), hop_frames(0.01)
    (96, 48, 1)
    """
    from .validation import check_scalar

    seconds = check_scalar(hop, "hop", float, min_val=spec.STFT_HOP_LENGTH_SECONDS)
    frames = round(seconds / spec.STFT_HOP_LENGTH_SECONDS)
    if abs(frames * spec.STFT_HOP_LENGTH_SECONDS - seconds) > 1e-9:
        reason = f"expected a multiple of {spec.STFT_HOP_LENGTH_SECONDS} s (one STFT frame), got {hop!r}"
        raise InvalidArgumentError(f"hop: {reason}", parameter="hop", reason=reason)
    return int(frames)


def num_examples(num_samples_16k, *, hop_frames=spec.NUM_FRAMES):
    """How many whole examples ``num_samples_16k`` samples at 16 kHz make, one every ``hop_frames`` frames.

    Examples
    --------
    >>> num_examples(15600), num_examples(15599), num_examples(32000), num_examples(32000, hop_frames=48)
    (1, 0, 2, 3)
    """
    if num_samples_16k < spec.STFT_WINDOW_LENGTH:
        return 0
    frames = 1 + (num_samples_16k - spec.STFT_WINDOW_LENGTH) // spec.STFT_HOP_LENGTH
    if frames < spec.NUM_FRAMES:
        return 0
    return 1 + (frames - spec.NUM_FRAMES) // hop_frames


def window_start_samples(count, *, hop_frames=spec.NUM_FRAMES):
    """16 kHz sample index where each of ``count`` examples starts: ``k * hop_frames * 160``.

    Examples
    --------
    >>> window_start_samples(3, hop_frames=48).tolist()
    [0, 7680, 15360]
    """
    return np.arange(int(count), dtype=np.int64) * (int(hop_frames) * spec.STFT_HOP_LENGTH)


def prepare_waveform(waveform, sample_rate, *, name="waveform", resampler="kaiser_best"):
    """Validate, down-mix and resample to 16 kHz float64 mono; refuse audio too short for one example.

    Parameters
    ----------
    waveform : array_like
        ``[samples]`` or ``[samples, channels]``; see :func:`warblr.audio.validate_waveform`.
    sample_rate : int
    name : str, keyword-only
        Used in error messages.
    resampler : str, keyword-only
        See :func:`warblr.resample.resample`.

    Returns
    -------
    np.ndarray
        float64 ``[samples_16k]``.

    Raises
    ------
    AudioTooShortError
        Fewer than 15600 samples at 16 kHz (one 0.96 s example).
    """
    sample_rate = validate_sample_rate(sample_rate)
    # float32 audio stays float32 through the resampler, as in torchvggish (resampy keeps the dtype).
    mono = to_mono(waveform, name=name)
    if num_examples(resampled_length(mono.shape[0], sample_rate, spec.SAMPLE_RATE)) == 0:
        raise AudioTooShortError(too_short_message(name, mono.shape[0], sample_rate))
    signal = resample(mono, sample_rate, spec.SAMPLE_RATE, method=resampler)
    if num_examples(signal.shape[0]) == 0:  # a resampler whose length rounds differently
        raise AudioTooShortError(too_short_message(name, mono.shape[0], sample_rate))
    return np.asarray(signal, dtype=np.float64)


def too_short_message(name, num_samples, sample_rate):
    """The :class:`AudioTooShortError` message for ``num_samples`` at ``sample_rate``.

    Examples
    --------
    >>> too_short_message("a.wav", 8000, 16000)
    'a.wav: 0.500 s of audio is shorter than one 0.96 s VGGish example'
    """
    return (f"{name}: {num_samples / sample_rate:.3f} s of audio is shorter than one "
            f"{spec.EXAMPLE_WINDOW_SECONDS} s VGGish example")


def waveform_to_examples(waveform, sample_rate, *, name="waveform", resampler="kaiser_best"):
    """Turn a waveform into VGGish input examples (torchvggish ``waveform_to_examples``).

    Parameters
    ----------
    waveform : array_like
        ``[samples]`` or ``[samples, channels]`` in [-1, 1).
    sample_rate : int
    name : str, keyword-only
        What to call the input in error messages.
    resampler : str, keyword-only
        See :func:`warblr.resample.resample`.

    Returns
    -------
    np.ndarray
        float32 ``[N, 96, 64]``, one row per whole 0.96 s of audio.

    Raises
    ------
    InvalidArgumentError, AudioTooShortError

    Examples
    --------
    >>> t = np.arange(44100 * 2) / 44100
    >>> waveform_to_examples(np.sin(2 * np.pi * 1000 * t), 44100).shape
    (2, 96, 64)
    """
    signal = prepare_waveform(waveform, sample_rate, name=name, resampler=resampler)
    return np.ascontiguousarray(frame_examples(log_mel_spectrogram(signal)), dtype=np.float32)


def wavfile_to_examples(path, *, resampler="kaiser_best"):
    """Read an audio file and return its VGGish examples (float32 ``[N, 96, 64]``).

    Examples
    --------
    >>> import soundfile as sf, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "noise.wav")
    >>> sf.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, 32000), 16000)
    >>> wavfile_to_examples(path).shape
    (2, 96, 64)
    """
    waveform, sample_rate = load_audio(path)
    return waveform_to_examples(waveform, sample_rate, name=str(path), resampler=resampler)
