"""Batched VGGish log-mel in torch, on CPU or CUDA.

The same maths as the numpy reference in :mod:`warblr.features` (periodic
Hann, 400-sample frames every 160 samples, no centring, each frame
zero-padded at the end to 512, magnitude rfft, HTK mel, ``ln(mel + 0.01)``),
computed for a batch of signals at once: ``unfold`` cuts the frames and
``torch.fft.rfft(n=512)`` pads them, which is *not* what ``torch.stft``
does (it centres the 400-tap window inside the 512 FFT and pads the signal).

Only the rfft bins inside the mel filterbank's support (5..239 of 257: the
DC bin is zeroed and nothing lies below 125 Hz or above 7500 Hz) are turned
into magnitudes and projected, which leaves every value unchanged. A fused
"windowed DFT basis as one matrix product" was measured instead and lost:
[frames, 400] x [400, 470] is ~15x the multiply-adds of a 512-point real
FFT, ran 2-3x slower than ``torch.fft.rfft`` on a 2-core EPYC (AVX-512) and
tripled the float32 error.

float32 matches the float64 reference to ~2.5e-4 in log units (the worst
case is a near-silent band, where ``ln(mel + 0.01)`` magnifies rounding);
float64 matches it to ~1e-10.

Examples
--------
>>> import torch
>>> log_mel_torch(torch.zeros(2, 16000)).shape
torch.Size([2, 98, 64])
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from . import spec
from .errors import InvalidArgumentError
from .features import mel_matrix, num_examples, periodic_hann

__all__ = ["log_mel_torch", "examples_torch", "num_frames", "mel_support"]


def num_frames(num_samples):
    """STFT frames in ``num_samples`` samples: ``1 + (n - 400) // 160``, at least 0.

    Examples
    --------
    >>> num_frames(400), num_frames(399), num_frames(16000)
    (1, 0, 98)
    """
    return max(0, 1 + (int(num_samples) - spec.STFT_WINDOW_LENGTH) // spec.STFT_HOP_LENGTH)


@functools.lru_cache(maxsize=1)
def mel_support():
    """``(first, stop)``: the rfft bins with a nonzero mel weight are ``first <= bin < stop``.

    Examples
    --------
    >>> mel_support()
    (5, 240)
    """
    used = np.flatnonzero(np.abs(np.asarray(mel_matrix())).sum(axis=1))
    return int(used[0]), int(used[-1]) + 1


#: The warm-up signals of :func:`_constants`: two clips of two examples each, like a group of the engine.
_WARM_UP_SHAPE = (2, 2 * spec.EXAMPLE_SAMPLES)


@functools.lru_cache(maxsize=8)
def _constants(device, dtype):
    """Periodic Hann window and the mel matrix's rows of :func:`mel_support`, as tensors on ``device``.

    Built once per device and dtype, and then the log-mel runs once on fixed noise whose result is thrown
    away: the first log-mel of a fresh process sometimes came out different (in about 1 of 35 fresh
    processes on a busy 2-core Xeon, up to ~3e-5 in the examples of the first group; the same input a
    moment later gave the usual bits), so items depended on which group a process computed first.
    """
    first, stop = mel_support()
    window = torch.as_tensor(periodic_hann(spec.STFT_WINDOW_LENGTH), dtype=dtype, device=device)
    mel = torch.as_tensor(np.array(mel_matrix())[first:stop], dtype=dtype, device=device)
    noise = torch.as_tensor(np.random.default_rng(0).standard_normal(_WARM_UP_SHAPE), dtype=dtype, device=device)
    _log_mel(noise, window, mel)
    return window, mel


def _log_mel(signals, window, mel):
    """The log-mel of ``[..., samples]`` ``signals`` (checked) with the given window and mel rows."""
    first, stop = mel_support()
    frames = signals.unfold(-1, spec.STFT_WINDOW_LENGTH, spec.STFT_HOP_LENGTH) * window
    spectrum = torch.fft.rfft(frames, n=spec.FFT_LENGTH)[..., first:stop]
    # sqrt(re^2 + im^2), not complex abs(): torch's abs (hypot) took 2.6x longer on CPU; both within 1e-7 relative.
    magnitude = (spectrum.real.square() + spectrum.imag.square()).sqrt_()
    return torch.log_(magnitude @ mel + spec.LOG_OFFSET)


def _as_batch(signals, dtype):
    if not torch.is_tensor(signals):
        signals = torch.as_tensor(np.asarray(signals))
    if signals.dim() not in (1, 2):
        raise InvalidArgumentError(f"signals: expected [samples] or [batch, samples], got shape {tuple(signals.shape)}")
    if not (signals.is_floating_point() or dtype is not None):
        raise InvalidArgumentError(f"signals: expected floating-point samples, got {signals.dtype}")
    return signals.to(dtype or (signals.dtype if signals.dtype == torch.float64 else torch.float32))


def log_mel_torch(signals, *, dtype=None):
    """VGGish log-mel spectrograms of 16 kHz signals, batched.

    Parameters
    ----------
    signals : torch.Tensor or array_like
        ``[samples]`` or ``[batch, samples]`` at 16 kHz, on any device.
    dtype : torch.dtype, keyword-only
        Compute and output dtype. Default: float64 for float64 input, else float32.

    Returns
    -------
    torch.Tensor
        ``[..., frames, 64]`` with ``frames = 1 + (samples - 400) // 160``.

    Raises
    ------
    InvalidArgumentError
        Wrong shape, non-float input, or shorter than one 400-sample frame.

    Examples
    --------
    >>> log_mel_torch(torch.zeros(800), dtype=torch.float64).shape
    torch.Size([3, 64])
    """
    signals = _as_batch(signals, dtype)
    if signals.shape[-1] < spec.STFT_WINDOW_LENGTH:
        raise InvalidArgumentError(
            f"signals: {signals.shape[-1]} samples are fewer than one {spec.STFT_WINDOW_LENGTH}-sample STFT frame"
        )
    return _log_mel(signals, *_constants(signals.device, signals.dtype))


def examples_torch(signals, *, dtype=None):
    """VGGish input examples of 16 kHz signals: whole 96-frame windows of the log-mel.

    Only the frames that make whole examples are computed.

    Parameters
    ----------
    signals : torch.Tensor or array_like
        ``[samples]`` or ``[batch, samples]`` at 16 kHz.
    dtype : torch.dtype, keyword-only
        As :func:`log_mel_torch`.

    Returns
    -------
    torch.Tensor
        ``[..., N, 96, 64]``, ``N = frames // 96`` (may be 0).

    Examples
    --------
    >>> examples_torch(torch.zeros(3, 32000)).shape
    torch.Size([3, 2, 96, 64])
    """
    signals = _as_batch(signals, dtype)
    count = num_examples(signals.shape[-1])
    frames = count * spec.NUM_FRAMES
    if count == 0:
        return signals.new_zeros(signals.shape[:-1] + (0, spec.NUM_FRAMES, spec.NUM_BANDS))
    used = (frames - 1) * spec.STFT_HOP_LENGTH + spec.STFT_WINDOW_LENGTH
    log_mel = log_mel_torch(signals[..., :used])
    return log_mel.reshape(signals.shape[:-1] + (count, spec.NUM_FRAMES, spec.NUM_BANDS))
