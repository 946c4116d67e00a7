"""Reading, validating and down-mixing audio (resampling is :mod:`warblr.resample`).

Conventions follow torchvggish: a waveform is ``[samples]`` or
``[samples, channels]``, floating point in [-1, 1); mono is the mean over
channels; the target rate is 16 kHz.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from . import spec
from .errors import AudioFileError, InvalidArgumentError

__all__ = [
    "load_audio",
    "check_audio_path",
    "audio_read_errors",
    "check_finite_samples",
    "validate_waveform",
    "validate_sample_rate",
    "to_mono",
]

# Integer dtypes are scaled to [-1, 1) the way PCM readers do it.
_INTEGER_SCALES = {
    np.dtype(np.int8): (0.0, 128.0),
    np.dtype(np.uint8): (128.0, 128.0),  # unsigned 8-bit PCM is centred on 128
    np.dtype(np.int16): (0.0, spec.INT16_SCALE),
    np.dtype(np.int32): (0.0, 2.0**31),
}

MAX_CHANNELS = 64

_TORCH_NUMPY_FLOATS = ("torch.float16", "torch.float32", "torch.float64")


def load_audio(path, *, dtype=np.float64):
    """Read an audio file as floating-point samples.

    Parameters
    ----------
    path : str or os.PathLike
        Any format libsndfile reads (WAV, FLAC, OGG, AIFF, ...).
    dtype : numpy dtype, keyword-only
        Floating-point dtype of the result (default float64, as torchvggish).

    Returns
    -------
    waveform : np.ndarray
        ``[samples]`` for mono files, ``[samples, channels]`` otherwise.
        Integer PCM is scaled to [-1, 1): 16-bit by 1/32768 exactly as
        torchvggish's ``wavfile_to_examples`` does, 8-bit unsigned around 128.
    sample_rate : int

    Raises
    ------
    InvalidArgumentError
        ``path`` is not a str or path-like object.
    AudioFileError
        The path is missing, a directory, empty, unreadable, not audio,
        truncated to nothing, or holds NaN/Inf samples. The message names
        the file. A WAV cut short (its header promising more data than the
        file holds) loads the whole frames that are there.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> sf.write(path, 0.5 * np.sin(np.arange(16000) / 10), 16000, subtype="PCM_16")
    >>> waveform, sample_rate = load_audio(path)
    >>> waveform.shape, sample_rate
    ((16000,), 16000)
    """
    import soundfile as sf

    path = check_audio_path(path)
    with audio_read_errors(path):
        # soundfile scales PCM_16 by 1/32768 and PCM_U8 around 128, matching
        # torchvggish's int16 / 32768.0 bit for bit.
        data, sample_rate = sf.read(str(path), dtype="float64", always_2d=False)
    if data.size == 0:
        raise AudioFileError(f"{path}: holds no samples (empty or truncated audio)")
    check_finite_samples(data, name=str(path))
    return data.astype(dtype, copy=False), int(sample_rate)


def check_audio_path(path):
    """Return ``path`` as a :class:`~pathlib.Path` if it names a non-empty regular file, else raise.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InvalidArgumentError
        ``path`` is not a str or path-like object.
    AudioFileError
        Missing, a directory, or 0 bytes long. The message names the file.

    Examples
    --------
    >>> check_audio_path("/no/such/file.wav")
    Traceback (most recent call last):
    ...
    warblr.errors.AudioFileError: /no/such/file.wav: no such file
    """
    try:
        path = Path(os.fspath(path))
    except TypeError:
        raise InvalidArgumentError(f"path: expected a file name (str or os.PathLike), got {path!r}") from None
    try:
        if not path.exists():
            raise AudioFileError(f"{path}: no such file")
        if path.is_dir():
            raise AudioFileError(f"{path}: is a directory, not an audio file")
        if path.stat().st_size == 0:
            raise AudioFileError(f"{path}: file is empty (0 bytes)")
    except (OSError, ValueError) as exc:  # permission denied, NUL in the name, name too long, ...
        raise AudioFileError(f"{path!s}: cannot open ({exc})") from exc
    return path


@contextlib.contextmanager
def audio_read_errors(path):
    """Context manager that turns soundfile/OS errors while reading ``path`` into :class:`AudioFileError`.

    Examples
    --------
    >>> import soundfile as sf
    >>> with audio_read_errors("/no/such/file.wav"):
    ...     sf.info("/no/such/file.wav")
    Traceback (most recent call last):
    ...
    warblr.errors.AudioFileError: /no/such/file.wav: not a readable audio file (...)
    """
    import soundfile as sf

    try:
        yield
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError) as exc:
        raise AudioFileError(f"{path}: not a readable audio file ({exc})") from exc
    except MemoryError as exc:
        raise AudioFileError(f"{path}: too large to decode in memory (stream it instead)") from exc
    except OSError as exc:
        raise AudioFileError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def check_finite_samples(samples, *, name, offset=0):
    """Raise :class:`AudioFileError` naming ``name`` if ``samples`` holds NaN or Inf.

    Parameters
    ----------
    samples : np.ndarray
        ``[samples]`` or ``[samples, channels]``.
    name : str, keyword-only
        The file name for the message.
    offset : int, keyword-only
        Index of ``samples[0]`` in the file, so the message gives the file position.

    Examples
    --------
    >>> check_finite_samples(np.array([0.0, np.nan]), name="a.wav")
    Traceback (most recent call last):
    ...
    warblr.errors.AudioFileError: a.wav: contains NaN or Inf samples (first at sample 1)
    """
    finite = np.isfinite(samples)
    if not finite.all():
        first = offset + int(np.argmin(finite.reshape(finite.shape[0], -1).all(axis=1)))
        raise AudioFileError(f"{name}: contains NaN or Inf samples (first at sample {first})")


def validate_sample_rate(sample_rate, *, name="sample_rate"):
    """Return ``sample_rate`` as a positive ``int`` or raise.

    Parameters
    ----------
    sample_rate : int or integral float
    name : str, keyword-only
        The argument's name, used in the error message.

    Returns
    -------
    int

    Raises
    ------
    InvalidArgumentError
        Not a number, not integral, or not positive.

    Examples
    --------
    >>> validate_sample_rate(44100.0)
    44100
    """
    if isinstance(sample_rate, (bool, np.bool_)) or not isinstance(sample_rate, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"{name} must be a positive integer in Hz, got {sample_rate!r}")
    if not np.isfinite(sample_rate) or sample_rate != int(sample_rate):
        raise InvalidArgumentError(f"{name} must be a whole number of Hz, got {sample_rate!r}")
    if sample_rate <= 0:
        raise InvalidArgumentError(f"{name} must be positive, got {sample_rate!r}")
    return int(sample_rate)


def validate_waveform(waveform, *, name="waveform", check_finite=True):
    """Check a waveform and return it as floating point.

    Parameters
    ----------
    waveform : array_like
        ``[samples]`` or ``[samples, channels]``. Float arrays are used as
        they are; integer arrays (int8, uint8, int16, int32) are scaled to
        [-1, 1) as PCM (int16 divided by 32768); other dtypes are refused.
    name : str, keyword-only
        What to call the waveform in error messages (a file name, say).
    check_finite : bool, keyword-only
        Refuse NaN/Inf samples (default). False leaves that to the caller:
        the engine checks its resampled batch instead, a smaller array
        already in cache (this pass over the input cost ~20 % of the
        features stage).

    Returns
    -------
    np.ndarray
        float32 if the input was float32, else float64; same shape.

    Raises
    ------
    InvalidArgumentError
        Not an array of numbers, empty, more than two dimensions, too many
        channels (probably ``[channels, samples]``), or NaN/Inf samples.

    Examples
    --------
    >>> validate_waveform(np.array([0, 16384, -32768], dtype=np.int16))
    array([ 0. ,  0.5, -1. ])
    """
    if hasattr(waveform, "detach"):  # a torch tensor
        waveform = waveform.detach().cpu()
        if waveform.is_floating_point() and str(waveform.dtype) not in _TORCH_NUMPY_FLOATS:
            waveform = waveform.float()  # bfloat16 has no numpy dtype
        waveform = waveform.numpy()
    try:
        array = np.asarray(waveform)
    except (ValueError, TypeError) as exc:  # ragged nested lists, odd objects
        raise InvalidArgumentError(f"{name}: not an array of samples ({exc})") from exc
    if array.dtype in _INTEGER_SCALES:
        offset, scale = _INTEGER_SCALES[array.dtype]
        array = (array.astype(np.float64) - offset) / scale
    elif array.dtype.kind != "f":
        raise InvalidArgumentError(
            f"{name}: expected floating-point or integer PCM samples, got dtype {array.dtype}"
        )
    if array.ndim not in (1, 2):
        raise InvalidArgumentError(
            f"{name}: expected shape [samples] or [samples, channels], got {array.ndim}-D shape {array.shape}"
        )
    if array.size == 0:
        raise InvalidArgumentError(f"{name}: is empty (shape {array.shape})")
    if array.ndim == 2 and array.shape[1] > MAX_CHANNELS:
        raise InvalidArgumentError(
            f"{name}: shape {array.shape} has {array.shape[1]} channels; warblr expects "
            "[samples, channels] (transpose a [channels, samples] array)"
        )
    if check_finite and not np.all(np.isfinite(array)):
        raise InvalidArgumentError(f"{name}: contains NaN or Inf samples")
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float64)
    return array


def to_mono(waveform, *, name="waveform", check_finite=True):
    """Down-mix ``[samples, channels]`` to ``[samples]`` by the channel mean.

    Parameters
    ----------
    waveform : array_like
        ``[samples]`` (returned as validated) or ``[samples, channels]``;
        checked and converted by :func:`validate_waveform` (integer PCM is
        scaled, torch tensors are accepted).
    name : str, keyword-only
        What to call the waveform in error messages.
    check_finite : bool, keyword-only
        As :func:`validate_waveform`.

    Returns
    -------
    np.ndarray
        ``[samples]``, float32 for float32 input, else float64.

    Raises
    ------
    InvalidArgumentError
        See :func:`validate_waveform`.

    Examples
    --------
    >>> to_mono(np.array([[1.0, 0.0], [0.5, 0.5]]))
    array([0.5, 0.5])
    """
    waveform = validate_waveform(waveform, name=name, check_finite=check_finite)
    if waveform.ndim == 1:
        return waveform
    return waveform.mean(axis=1)
