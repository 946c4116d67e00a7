"""Streaming a long audio file into VGGish examples in bounded memory.

:func:`iter_file_examples` reads the file block by block with soundfile,
down-mixes, resamples each chunk with enough context on both sides that the
result equals resampling the whole file, and frames 0.96 s examples across
chunk boundaries, one every ``hop`` seconds. Memory depends on
``chunk_seconds``, not on the file's length, so a one-hour recording needs
no more than a one-minute one. The log-mel function is a parameter: the
float64 numpy reference by default, the engine's float32 torch log-mel for
``warblr embed`` (whose streamed examples then equal, bit for bit, those of
the same file decoded whole).
"""

from __future__ import annotations

import math

import numpy as np

from . import spec
from .audio import audio_read_errors, check_audio_path, check_finite_samples
from .resample import polyphase_plan, resample, resampled_length, validate_resample_dtype, validate_resampler
from .errors import AudioFileError, AudioTooShortError, InvalidArgumentError
from .features import frame_examples, hop_frames, log_mel_spectrogram, num_examples, too_short_message

__all__ = ["iter_file_examples", "chunk_plan", "EXAMPLE_HOP_SAMPLES"]

#: 16 kHz samples between the starts of consecutive examples (96 hops of 160).
EXAMPLE_HOP_SAMPLES = spec.NUM_FRAMES * spec.STFT_HOP_LENGTH  # 15360
#: A safe bound on the filter's half-width in zero crossings (resampy 0.4's
#: kaiser_best has 50: :data:`warblr.resample.KAISER_BEST`).
_FILTER_ZERO_CROSSINGS = 64
#: Frames read from the file per soundfile call.
_READ_BLOCK = 1 << 16
#: Examples turned into log-mel at once (bounds the STFT's temporaries).
_EXAMPLES_PER_BATCH = 8


def chunk_plan(orig_sr, chunk_seconds, *, target_sr=spec.SAMPLE_RATE):
    """Chunk length and resampling context, in input samples, for exact chunked resampling.

    A chunk must start where an output sample falls exactly on an input
    sample (``start * target_sr % orig_sr == 0``), so both the chunk length
    and the context are multiples of ``orig_sr / gcd(orig_sr, target_sr)``;
    more precisely of the kaiser_best plan's stride (a multiple of that), so
    a chunk's matrix rows are the whole file's and its outputs round alike,
    bit for bit, in float32 too. The context covers the kaiser_best filter's half-width,
    ``64 * max(1, orig_sr / target_sr)`` input samples, plus a little slack.

    Parameters
    ----------
    orig_sr : int
        The file's sample rate.
    chunk_seconds : float
        Wanted chunk duration; rounded to the nearest whole number of
        alignment periods (at least one).
    target_sr : int, keyword-only

    Returns
    -------
    step : int
        Input samples per chunk.
    margin : int
        Input samples of context read on each side (0 without resampling).

    Examples
    --------
    >>> chunk_plan(44100, 60)
    (2646000, 441)
    >>> chunk_plan(16000, 3.7)
    (59200, 0)
    """
    period = orig_sr // math.gcd(orig_sr, target_sr)
    if orig_sr != target_sr:
        period = polyphase_plan(orig_sr, target_sr).stride or period  # None: outputs computed one by one
    step = max(1, round(chunk_seconds * orig_sr / period)) * period
    if orig_sr == target_sr:
        return step, 0
    half_width = _FILTER_ZERO_CROSSINGS * max(1.0, orig_sr / target_sr) + 4
    return step, math.ceil(half_width / period) * period


def _check_chunk_seconds(chunk_seconds):
    if isinstance(chunk_seconds, (bool, np.bool_)) or not isinstance(
            chunk_seconds, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"chunk_seconds must be a positive number, got {chunk_seconds!r}")
    if not np.isfinite(chunk_seconds) or chunk_seconds <= 0:
        raise InvalidArgumentError(f"chunk_seconds must be positive and finite, got {chunk_seconds!r}")
    return float(chunk_seconds)


def iter_file_examples(path, *, chunk_seconds=60, resampler="kaiser_best", hop=spec.EXAMPLE_HOP_SECONDS,
                       log_mel=None, resample_dtype=None):
    """Yield the VGGish examples of an audio file chunk by chunk, in bounded memory.

    The concatenation of everything yielded equals
    :func:`warblr.features.wavfile_to_examples` of the same file (the same
    number of examples, values within float rounding) for the
    ``"kaiser_best"`` and ``"resampy"`` resamplers, whose filters are local:
    each chunk is resampled with ``chunk_plan`` context on both sides and
    trimmed to exactly the output samples it owns. ``"soxr"`` is accepted but
    only approximately equal at chunk boundaries.

    Parameters
    ----------
    path : str or os.PathLike
        Any file libsndfile reads (WAV, FLAC, OGG, ...).
    chunk_seconds : float, keyword-only
        Input read and resampled per step (default 60 s). Peak memory grows
        with it (measured: about 25 MB for 60 s at 16 kHz, 40 MB at
        44.1 kHz); the file's length does not matter.
    resampler : str, keyword-only
        See :func:`warblr.resample.resample`.
    hop : float, keyword-only
        Seconds between example starts (see :func:`warblr.features.hop_frames`);
        0.96, the VGGish spec, by default.
    log_mel : callable, optional, keyword-only
        ``log_mel(signal_16k) -> [frames, 64]`` array; default
        :func:`warblr.features.log_mel_spectrogram`. Each call gets whole
        examples' samples only, so a per-frame function gives the same
        frames as on the whole signal.
    resample_dtype : {None, numpy.float64, numpy.float32}, keyword-only
        ``"kaiser_best"``'s compute dtype (see
        :func:`warblr.resample.resample_kaiser_best`): None (float64) by
        default; float32 with the engine's float32 log-mel, as the batched
        path resamples.

    Returns
    -------
    iterator of np.ndarray
        float32 ``[n, 96, 64]`` blocks with ``n >= 1``, in file order; example
        ``k`` of the file starts at 16 kHz sample ``k * hop * 16000``.

    Raises
    ------
    AudioFileError
        Missing, empty or unreadable file (raised by this call); NaN/Inf
        samples or a decoding error (raised while iterating, when reached).
    AudioTooShortError
        The whole file is shorter than one 0.96 s example (while iterating).
    InvalidArgumentError
        Bad ``chunk_seconds`` or ``resampler``.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> from warblr.features import wavfile_to_examples
    >>> path = os.path.join(tempfile.mkdtemp(), "long.wav")
    >>> sf.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, (44100 * 5, 2)), 44100)
    >>> blocks = list(iter_file_examples(path, chunk_seconds=2))
    >>> [len(b) for b in blocks]
    [2, 2, 1]
    >>> bool(np.allclose(np.concatenate(blocks), wavfile_to_examples(path), atol=1e-5))
    True
    """
    import soundfile as sf

    chunk_seconds = _check_chunk_seconds(chunk_seconds)
    validate_resampler(resampler, name="resampler")
    hop = hop_frames(hop)
    path = check_audio_path(path)
    validate_resample_dtype(resample_dtype, name="resample_dtype")
    with audio_read_errors(path):
        sound = sf.SoundFile(str(path))
    return _stream(sound, path, chunk_seconds, resampler, resample_dtype, hop, log_mel or log_mel_spectrogram)


def _stream(sound, path, chunk_seconds, resampler, resample_dtype, hop, log_mel):
    """The generator behind :func:`iter_file_examples`; closes ``sound`` when done."""
    with sound:
        orig_sr, target_sr = int(sound.samplerate), spec.SAMPLE_RATE
        step, margin = chunk_plan(orig_sr, chunk_seconds, target_sr=target_sr)
        period = orig_sr // math.gcd(orig_sr, target_sr)
        out_per_period = target_sr // math.gcd(orig_sr, target_sr)
        buffer, buffer_start, eof = np.empty(0), 0, False
        carry = np.empty(0)  # 16 kHz samples from the next example's start on
        total = 0
        start = 0  # input index of the current chunk; a multiple of ``period``
        while True:
            buffer, eof = _fill(sound, path, buffer, buffer_start, start + step + margin, eof)
            buffer_end = buffer_start + buffer.shape[0]
            if buffer_end == 0:
                raise AudioFileError(f"{path}: holds no samples (empty or truncated audio)")
            if eof and start == 0 and num_examples(resampled_length(buffer_end, orig_sr, target_sr)) == 0:
                raise AudioTooShortError(too_short_message(path, buffer_end, orig_sr))
            if buffer_end <= start:  # the file ended exactly where the previous chunk did
                break
            last = eof and buffer_end <= start + step
            window_start = max(0, start - margin)
            resampled = resample(buffer[window_start - buffer_start:], orig_sr, target_sr, method=resampler,
                                 dtype=resample_dtype)
            first = (start - window_start) // period * out_per_period
            stop = None if last else first + step // period * out_per_period
            carry = np.concatenate([carry, resampled[first:stop]])
            del resampled
            count = num_examples(carry.shape[0], hop_frames=hop)
            if count:
                yield _examples(carry, count, hop, log_mel)
                total += count
                carry = carry[count * hop * spec.STFT_HOP_LENGTH:].copy()
            if last:
                break
            start += step
            keep_from = max(0, start - margin)
            buffer, buffer_start = buffer[keep_from - buffer_start:].copy(), keep_from  # frees the rest
        if total == 0:  # a resampler whose output length rounds differently
            raise AudioTooShortError(too_short_message(path, buffer_end, orig_sr))


def _fill(sound, path, buffer, buffer_start, want_end, eof):
    """Extend the mono ``buffer`` (starting at input index ``buffer_start``) up to ``want_end`` or EOF."""
    have = buffer_start + buffer.shape[0]
    if eof or have >= want_end:
        return buffer, eof
    grown = np.empty(want_end - buffer_start)
    grown[:buffer.shape[0]] = buffer
    filled = buffer.shape[0]
    block = np.empty((min(_READ_BLOCK, want_end - have), sound.channels))
    while filled < grown.shape[0]:
        wanted = min(block.shape[0], grown.shape[0] - filled)
        with audio_read_errors(path):
            frames = sound.read(wanted, dtype="float64", always_2d=True, out=block[:wanted])
        got = frames.shape[0]
        check_finite_samples(frames, name=str(path), offset=buffer_start + filled)
        if sound.channels == 1:
            grown[filled:filled + got] = frames[:, 0]
        else:  # the same channel mean as warblr.audio.to_mono
            np.mean(frames, axis=1, out=grown[filled:filled + got])
        filled += got
        if got < wanted:
            eof = True
            break
    return grown[:filled], eof


def _examples(signal, count, hop, log_mel):
    """float32 ``[count, 96, 64]`` examples, one every ``hop`` frames, of a 16 kHz ``signal`` starting at one."""
    step = hop * spec.STFT_HOP_LENGTH
    blocks = []
    for first in range(0, count, _EXAMPLES_PER_BATCH):
        last = min(count, first + _EXAMPLES_PER_BATCH)
        segment = signal[first * step:(last - 1) * step + spec.EXAMPLE_SAMPLES]
        blocks.append(np.asarray(frame_examples(log_mel(segment), hop_frames=hop), dtype=np.float32))
    return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
