"""Resampling: :func:`resample` dispatches; resampy's ``kaiser_best`` is reproduced as a polyphase matmul.

torchvggish resamples with resampy 0.4.3's ``kaiser_best`` filter, whose wide
transition band shapes the top mel bands; other good resamplers move them by
up to ~1.0 in log units. This module computes the same output, float64, much
faster:

* the filter table is resampy's ``kaiser_best`` table (a Kaiser-windowed sinc,
  50 zero crossings, 2**13 entries per crossing), rebuilt from its parameters
  (:func:`kaiser_best_table`; equal to resampy's stored table to ~1e-15);
* the taps of every output sample come from resampy's own formula (its
  truncated ``index_step``, its linear interpolation, its wing lengths), see
  :func:`filter_taps`;
* for rates ``orig_sr / target_sr = L / P`` (in lowest terms) the taps repeat
  every ``P`` outputs (``L`` inputs), so a block of ``P`` outputs is one
  matrix product with a banded ``[L, P]`` matrix over a *reshaped* (copy-free)
  view of the signal (:class:`PolyphasePlan`);
* the few outputs where resampy's float64 clock ``t * (1 / ratio)`` lands on
  the other side of an integer than the exact phase are recomputed with the
  per-sample formula, so the result tracks resampy to float64 rounding.

Examples
--------
>>> import numpy as np
>>> x = np.sin(np.arange(44100) / 7.0)
>>> resample_kaiser_best(x, 44100, 16000).shape
(16000,)
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from . import spec
from .audio import validate_sample_rate, validate_waveform
from .errors import AudioError, InvalidArgumentError

__all__ = [
    "RESAMPLERS",
    "resample",
    "resampled_length",
    "validate_resample_dtype",
    "validate_resampler",
    "KAISER_BEST",
    "kaiser_best_table",
    "filter_taps",
    "PolyphasePlan",
    "polyphase_plan",
    "resample_kaiser_best",
    "resample_kaiser_best_torch",
]

#: Resampling methods accepted by :func:`resample`. ``"kaiser_best"`` is the
#: fast polyphase reproduction of resampy's filter (the default),
#: ``"resampy"`` calls resampy itself (torchvggish's reference), ``"soxr"`` is
#: a faster resampler whose transition band differs (opt-in only).
RESAMPLERS = ("kaiser_best", "resampy", "soxr")

def validate_resampler(method, *, name="method"):
    """Return ``method`` if it is one of :data:`RESAMPLERS`, else raise.

    Parameters
    ----------
    method : str
    name : str, keyword-only
        The argument's name, used in the error message.

    Raises
    ------
    InvalidArgumentError
        Not one of ``RESAMPLERS``.

    Examples
    --------
    >>> validate_resampler("sinc", name="resampler")
    Traceback (most recent call last):
    ...
    warblr.errors.InvalidArgumentError: resampler: expected one of ('kaiser_best', 'resampy', 'soxr'), got 'sinc'
    """
    if method not in RESAMPLERS:
        raise InvalidArgumentError(f"{name}: expected one of {RESAMPLERS}, got {method!r}")
    return method


def validate_resample_dtype(dtype, *, name="dtype"):
    """Return ``dtype`` if it is None, float64 or float32 (kaiser_best's compute dtypes), else raise.

    Examples
    --------
    >>> validate_resample_dtype(np.float16)
    Traceback (most recent call last):
    ...
    warblr.errors.InvalidArgumentError: dtype: None, float64 or float32, got <class 'numpy.float16'>
    """
    try:
        allowed = dtype is None or np.dtype(dtype) in (np.float32, np.float64)
    except TypeError:
        allowed = False
    if not allowed:
        raise InvalidArgumentError(f"{name}: None, float64 or float32, got {dtype!r}")
    return dtype


def resample(waveform, orig_sr, target_sr=spec.SAMPLE_RATE, *, method="kaiser_best", dtype=None):
    """Resample a mono waveform.

    Parameters
    ----------
    waveform : np.ndarray
        ``[samples]``.
    orig_sr, target_sr : int
        Rates in Hz. Equal rates return the input unchanged.
    method : {"kaiser_best", "resampy", "soxr"}, keyword-only
        ``"kaiser_best"`` (default) reproduces resampy's ``kaiser_best``
        filter, which torchvggish uses, with a fast polyphase matmul;
        ``"resampy"`` calls resampy itself; ``"soxr"`` is faster still but
        its transition band differs (top mel bands move by up to ~1.0).
    dtype : {None, numpy.float64, numpy.float32}, keyword-only
        ``"kaiser_best"``'s compute dtype (see :func:`resample_kaiser_best`);
        the other methods compute in float64 whatever it is.

    Returns
    -------
    np.ndarray
        ``[resampled_length(samples, orig_sr, target_sr)]`` samples (resampy's
        ``int(samples * target_sr / orig_sr)``), same float dtype (``dtype``
        when given, for ``"kaiser_best"``).

    Raises
    ------
    InvalidArgumentError
        Bad rates or method; a waveform that is not 1-D, is empty, holds
        NaN/Inf, or is too short to give one output sample.

    Examples
    --------
    >>> resample(np.zeros(44100), 44100, 16000).shape
    (16000,)
    """
    orig_sr = validate_sample_rate(orig_sr, name="orig_sr")
    target_sr = validate_sample_rate(target_sr, name="target_sr")
    validate_resampler(method)
    validate_resample_dtype(dtype)
    waveform = validate_waveform(waveform)
    if waveform.ndim != 1:
        raise InvalidArgumentError(f"waveform: resample expects mono [samples], got shape {waveform.shape} "
                                   "(down-mix with to_mono first)")
    if orig_sr == target_sr:
        return waveform
    if resampled_length(waveform.shape[0], orig_sr, target_sr) < 1:
        raise InvalidArgumentError(f"waveform: {waveform.shape[0]} samples at {orig_sr} Hz are too few to "
                                   f"resample to {target_sr} Hz")
    if method == "kaiser_best":
        return resample_kaiser_best(waveform, orig_sr, target_sr, dtype=dtype)
    if method == "resampy":
        try:
            import resampy
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise AudioError("method='resampy' needs the resampy package: pip install resampy") from exc
        return resampy.resample(waveform, orig_sr, target_sr, filter="kaiser_best")
    try:
        import soxr
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise AudioError("method='soxr' needs the soxr package: pip install soxr") from exc
    return soxr.resample(waveform, orig_sr, target_sr, quality="VHQ")


def resampled_length(num_samples, orig_sr, target_sr):
    """Number of samples :func:`resample` returns: ``int(num_samples * target_sr / orig_sr)`` as resampy.

    Examples
    --------
    >>> resampled_length(44101, 44100, 16000)
    16000
    """
    if orig_sr == target_sr:
        return int(num_samples)
    return int(num_samples * float(target_sr) / float(orig_sr))


#: resampy's ``kaiser_best`` parameters. ``beta`` is the exact value behind the
#: stored table (resampy's docs round it to 12.9846), recovered from the
#: table's last entry, ``1 / I0(beta)`` times the sinc.
KAISER_BEST = {
    "num_zeros": 50,
    "precision": 13,
    "beta": 12.984585247040016,
    "rolloff": 0.9173473712608761,
}

# Phases whose exact output time is this close to an integer are checked
# against resampy's float clock (its rounding error is ~1e-16 * t).
_RISKY_FRACTION = 1e-6
# Phases (output columns) per matmul chunk: the stride is made wide enough for this many, and no chunk
# holds more. Chunks of 32 phases, each on its own window, ran 20 % (float64) and 30 % (float32) faster than
# chunks as wide as the stride allows (44.1 kHz: 3 chunks of ~53 phases on 441 inputs; 4 x 32 + 1, 315-395
# multiply-adds per output instead of 441) on a 2-core Xeon; 8-24 phases per chunk were slower.
_CHUNK_PHASES = 32
# Longer rate periods (in or out, samples) are resampled output by output.
_MAX_PERIOD = 4096
# Outputs per slab in that direct mode.
_DIRECT_SLAB = 4096


@functools.lru_cache(maxsize=1)
def kaiser_best_table():
    """resampy's ``kaiser_best`` half window and its entries per zero crossing.

    Returns
    -------
    half_window : np.ndarray
        Read-only float64 ``[50 * 8192 + 1]``: ``rolloff * sinc(rolloff * t)``
        times the right half of a Kaiser window, ``t`` from 0 to 50 crossings
        (resampy's ``filters.sinc_window`` with a Kaiser window).
    precision : int
        8192 table entries per zero crossing (resampy's ``num_table``).

    Examples
    --------
    >>> half_window, precision = kaiser_best_table()
    >>> half_window.shape, precision
    ((409601,), 8192)
    """
    p = KAISER_BEST
    precision = 2 ** p["precision"]
    n = precision * p["num_zeros"]
    sinc = p["rolloff"] * np.sinc(p["rolloff"] * np.linspace(0, p["num_zeros"], num=n + 1, endpoint=True))
    half_window = np.kaiser(2 * n + 1, p["beta"])[n:] * sinc
    half_window.setflags(write=False)
    return half_window, precision


def _clock(orig_sr, target_sr):
    """resampy's derived quantities: ratio, time increment, scale, table step."""
    sample_ratio = float(target_sr) / orig_sr
    _, precision = kaiser_best_table()
    scale = min(1.0, sample_ratio)
    return sample_ratio, 1.0 / sample_ratio, scale, int(scale * precision)


@functools.lru_cache(maxsize=16)
def _scaled_table(orig_sr, target_sr):
    """The table as resampy uses it: scaled by the ratio when downsampling, and its forward difference."""
    half_window, _ = kaiser_best_table()
    sample_ratio = float(target_sr) / orig_sr
    window = sample_ratio * half_window if sample_ratio < 1 else half_window
    delta = np.diff(window, append=window[-1])
    return window, delta


def filter_taps(t_out, orig_sr, target_sr):
    """resampy's filter taps for output times ``t_out`` (in input samples).

    Parameters
    ----------
    t_out : np.ndarray
        float64 output times, as resampy computes them
        (``arange(n_out) * (1 / ratio)``).
    orig_sr, target_sr : int

    Returns
    -------
    n : np.ndarray
        int64 ``[M]``: the input sample at or left of each output time.
    weights : np.ndarray
        float64 ``[M, left + right]``: weight of input ``n - left + 1 + j``
        in column ``j`` (left wing reversed, then the right wing), zeros
        where resampy's wing is shorter than the longest one.
    left : int
        Longest left wing (taps on ``x[n], x[n-1], ...``).

    Notes
    -----
    resampy's loop, vectorised: ``frac = scale * (t - n)``; the left wing
    reads the table at ``int(frac * 8192) + i * index_step`` with linear
    interpolation, ``i < (len(table) - offset) // index_step``; the right
    wing does the same with ``scale - frac`` on ``x[n + 1 + k]``. Bounds at
    the signal's ends are left to zero padding.
    """
    t_out = np.asarray(t_out, dtype=np.float64)
    _, _, scale, index_step = _clock(orig_sr, target_sr)
    window, delta = _scaled_table(orig_sr, target_sr)
    _, precision = kaiser_best_table()
    nwin = window.shape[0]
    n = t_out.astype(np.int64)
    frac = scale * (t_out - n)
    wings = []
    for wing_frac in (frac, scale - frac):
        index_frac = wing_frac * precision
        offset = index_frac.astype(np.int64)
        eta = index_frac - offset
        count = (nwin - offset) // index_step
        width = int(count.max()) if count.size else 0
        index = offset[:, None] + index_step * np.arange(width)
        valid = np.arange(width) < count[:, None]
        index = np.where(valid, index, 0)
        weight = window[index] + eta[:, None] * delta[index]
        wings.append(np.where(valid, weight, 0.0))
    left, right = wings
    return n, np.concatenate([left[:, ::-1], right], axis=1), left.shape[1]


class PolyphasePlan:
    """Precomputed blocks of taps for one rate pair.

    A block of ``phases`` outputs starts every ``stride`` inputs. Its phases
    are split into chunks; chunk ``c`` is ``X_c @ weights[c]`` where row
    ``q`` of ``X_c`` is the ``window`` padded inputs starting at
    ``q * stride + starts[c]``: a strided view of the padded signal, no copy.

    Attributes
    ----------
    orig_sr, target_sr : int
    stride : int
        Inputs per block (a multiple of ``orig_sr / gcd``).
    phases : int
        Outputs per block.
    pad : int
        Zeros in front of the signal (the longest left wing).
    chunks : list of (first_phase, last_phase_plus_one, start, weights)
        ``weights`` float64 ``[window, phases_in_chunk]``, ``window <= stride``
        (the inputs from the chunk's first phase's first tap to its last
        phase's last tap).
    base_n, base_t : np.ndarray
        Exact-phase ``n`` and float times of the first block.
    """

    def __init__(self, orig_sr, target_sr):
        self.orig_sr, self.target_sr = int(orig_sr), int(target_sr)
        g = math.gcd(self.orig_sr, self.target_sr)
        period_in, period_out = self.orig_sr // g, self.target_sr // g
        _, self.increment, _, index_step = _clock(self.orig_sr, self.target_sr)
        self.direct = period_in > _MAX_PERIOD or period_out > _MAX_PERIOD
        if self.direct:
            # Rates with a long period (44101 -> 16000): the matrices would be huge,
            # so every output is computed from its own taps (still vectorised).
            self.pad = kaiser_best_table()[0].shape[0] // index_step + 1  # longest possible wing
            self.stride = self.phases = self.width = None
            self.chunks, self.risky = [], np.zeros(0, dtype=np.int64)
            return
        # Taps span about `span` inputs; make each block wide enough for a
        # useful chunk of phases to share one window of `stride` inputs.
        probe_n, probe_w, probe_left = filter_taps(np.arange(period_out) * self.increment,
                                                   self.orig_sr, self.target_sr)
        span = probe_w.shape[1]
        need = span + 2 + int(math.ceil(_CHUNK_PHASES * period_in / period_out))
        periods = max(1, -(-need // period_in))
        self.stride, self.phases = periods * period_in, periods * period_out
        self.base_t = np.arange(self.phases) * self.increment
        self.base_n, weights, self.left = filter_taps(self.base_t, self.orig_sr, self.target_sr)
        self.width = weights.shape[1]
        self.pad = self.left - 1  # zeros in front: the first output's left wing
        first = self.base_n - (self.left - 1)  # window start of each phase
        self.chunks = []
        p = 0
        while p < self.phases:
            q = p
            while (q + 1 - p < _CHUNK_PHASES and q + 1 < self.phases
                   and first[q + 1] + self.width - first[p] <= self.stride):
                q += 1
            start = int(first[p])
            # The chunk's own window, not the whole stride: no multiply-adds on inputs none of its phases use.
            block = np.zeros((int(first[q]) + self.width - start, q + 1 - p))
            for j in range(p, q + 1):
                col = int(first[j]) - start
                block[col:col + self.width, j - p] = weights[j]
            self.chunks.append((p, q + 1, start, block))
            p = q + 1
        frac = self.base_t - self.base_n
        if Fraction(self.increment) == Fraction(self.stride, self.phases):
            # A dyadic increment (48 kHz -> 16 kHz: 3.0): resampy's clock is exact.
            self.risky = np.zeros(0, dtype=np.int64)
        else:
            self.risky = np.flatnonzero((frac < _RISKY_FRACTION) | (frac > 1 - _RISKY_FRACTION))

    def __repr__(self):
        if self.direct:
            return f"PolyphasePlan({self.orig_sr} -> {self.target_sr}: direct, per-output taps)"
        return (f"PolyphasePlan({self.orig_sr} -> {self.target_sr}: {self.phases} outputs per "
                f"{self.stride} inputs, {len(self.chunks)} chunks, {self.width} taps)")

    def mismatches(self, n_out):
        """Output indices where resampy's float clock leaves the exact phase's input sample."""
        if not self.risky.size:
            return np.zeros(0, dtype=np.int64)
        blocks = np.arange(-(-n_out // self.phases))[:, None]
        index = (blocks * self.phases + self.risky).ravel()
        index = index[index < n_out]
        n = (index * self.increment).astype(np.int64)
        expected = (index // self.phases) * self.stride + self.base_n[index % self.phases]
        return index[n != expected]


@functools.lru_cache(maxsize=16)
def polyphase_plan(orig_sr, target_sr):
    """The cached :class:`PolyphasePlan` for a rate pair.

    Examples
    --------
    >>> polyphase_plan(44100, 16000).phases
    160
    """
    return PolyphasePlan(orig_sr, target_sr)


def _check_rates(num_samples, orig_sr, target_sr):
    orig_sr = validate_sample_rate(orig_sr, name="orig_sr")
    target_sr = validate_sample_rate(target_sr, name="target_sr")
    n_out = resampled_length(num_samples, orig_sr, target_sr)
    if n_out < 1:
        raise InvalidArgumentError(
            f"waveform: {num_samples} samples are too short to resample from {orig_sr} Hz to {target_sr} Hz"
        )
    return int(orig_sr), int(target_sr), n_out


def _direct(signal, index, plan):
    """Outputs ``index`` of one padded signal (a tensor), each from its own taps on resampy's clock."""
    import torch

    t_out = np.asarray(index, dtype=np.float64) * plan.increment
    n, weights, left = filter_taps(t_out, plan.orig_sr, plan.target_sr)
    positions = n[:, None] - (left - 1) + np.arange(weights.shape[1]) + plan.pad
    weights = torch.tensor(weights, dtype=signal.dtype, device=signal.device)  # torch-owned, aligned
    positions = torch.as_tensor(positions, device=signal.device)
    return (signal[positions] * weights).sum(dim=1)


def _padded_length(n_out, plan, num_samples):
    if plan.direct:
        return 0, 2 * plan.pad + num_samples + 1
    blocks = -(-n_out // plan.phases)
    # The last chunk's window may start up to a stride into the block after the last.
    return blocks, plan.pad + (blocks + 1) * plan.stride + plan.width


def resample_kaiser_best(waveform, orig_sr, target_sr, *, dtype=None):
    """Resample with resampy's ``kaiser_best`` filter (resampy 0.4.3's output, much faster).

    Parameters
    ----------
    waveform : np.ndarray
        ``[samples]`` or ``[samples, channels]`` (each channel resampled).
    orig_sr, target_sr : int
        Rates in Hz; any positive integers, up- or downsampling.
    dtype : {None, numpy.float64, numpy.float32}, keyword-only
        None (default): computed in float64, resampy's precision, returned
        in the input's dtype. float64 or float32: computed and returned in
        it; float32 is how the engine's float32 features resample (within
        ~1e-6 of float64 for audio in [-1, 1]).

    Returns
    -------
    np.ndarray
        ``[int(samples * target_sr / orig_sr), ...]``. Same dtype as a float
        input (float32 for integer input, which is not rescaled, both as
        resampy), or ``dtype`` when given. Equal rates return a copy.

    Raises
    ------
    InvalidArgumentError
        Bad rates, or fewer than one output sample.

    Examples
    --------
    >>> resample_kaiser_best(np.ones(441), 44100, 16000).shape
    (160,)
    """
    waveform = np.asarray(waveform)
    if waveform.ndim not in (1, 2):
        raise InvalidArgumentError(f"waveform: expected [samples] or [samples, channels], got shape {waveform.shape}")
    validate_resample_dtype(dtype)
    orig_sr, target_sr, n_out = _check_rates(waveform.shape[0], orig_sr, target_sr)
    compute = np.dtype(np.float64 if dtype is None else dtype)
    out_dtype = compute if dtype is not None else waveform.dtype if waveform.dtype.kind == "f" else np.dtype(np.float32)
    if orig_sr == target_sr:
        return waveform.astype(out_dtype, copy=True)
    if waveform.ndim == 2 and waveform.shape[1] == 0:
        return np.zeros((n_out, 0), out_dtype)
    import torch

    # One implementation for both APIs: torch's matmul on a view of the array
    # (which also keeps numpy's BLAS threads from fighting torch's); channels
    # of a [samples, channels] array are resampled as one batch.
    signal = torch.from_numpy(np.ascontiguousarray(waveform.T, dtype=compute))
    out = np.ascontiguousarray(resample_kaiser_best_torch(signal, orig_sr, target_sr,
                                                          dtype=getattr(torch, compute.name)).numpy().T)
    return out.astype(out_dtype, copy=False)


@functools.lru_cache(maxsize=16)
def _torch_chunks(orig_sr, target_sr, device, dtype):
    import torch

    plan = polyphase_plan(orig_sr, target_sr)
    # A copy, not a view of numpy's block: the GEMM's operand alignment must not depend on heap state.
    return [(first, last, start, torch.tensor(weights, dtype=dtype, device=device))
            for first, last, start, weights in plan.chunks]


def _rows(waveforms):
    """The clips of ``waveforms`` (a tensor, or a list of equal-length 1-D arrays/tensors) as 1-D tensors."""
    import torch

    if torch.is_tensor(waveforms) and waveforms.dim() in (1, 2):
        return list(waveforms.reshape(-1, waveforms.shape[-1]))
    if isinstance(waveforms, (list, tuple)) and waveforms:
        rows = [torch.as_tensor(row) for row in waveforms]  # numpy arrays: views, not copies
        if all(row.dim() == 1 and row.shape == rows[0].shape and row.device == rows[0].device for row in rows):
            return rows
        shapes = sorted({tuple(row.shape) for row in rows})
        raise InvalidArgumentError(f"waveforms: a list must hold 1-D clips of one length on one device, got shapes "
                                   f"{shapes[:4]}")
    raise InvalidArgumentError("waveforms: expected a torch tensor [samples] or [batch, samples], or a list of "
                               "equal-length 1-D arrays")


def resample_kaiser_best_torch(waveforms, orig_sr, target_sr, *, dtype=None):
    """:func:`resample_kaiser_best` for torch tensors, batched, on any device.

    Parameters
    ----------
    waveforms : torch.Tensor or list of 1-D arrays
        ``[samples]`` or ``[batch, samples]`` (clips or channels of one length
        and rate), or a list of ``[samples]`` arrays or tensors of one length:
        each is copied once, straight into the padded work buffer (no
        ``np.stack`` copy of the batch first).
    orig_sr, target_sr : int
    dtype : torch.dtype, keyword-only
        Compute dtype; default float64 (resampy's precision). float32 (what
        the engine's float32 features use) is faster on CPUs and GPUs and stays
        within ~1e-6 of resampy for audio in [-1, 1].

    Returns
    -------
    torch.Tensor
        ``[..., int(samples * target_sr / orig_sr)]`` in ``dtype`` on the input's device.

    Examples
    --------
    >>> import torch
    >>> resample_kaiser_best_torch(torch.zeros(2, 441), 44100, 16000).shape
    torch.Size([2, 160])
    """
    import torch

    rows = _rows(waveforms)
    dtype = dtype or torch.float64
    num_samples = rows[0].shape[-1]
    orig_sr, target_sr, n_out = _check_rates(num_samples, orig_sr, target_sr)
    squeeze = torch.is_tensor(waveforms) and waveforms.dim() == 1
    if orig_sr == target_sr:
        out = torch.stack([row.to(dtype) for row in rows])
    else:
        plan = polyphase_plan(orig_sr, target_sr)
        blocks, length = _padded_length(n_out, plan, num_samples)
        per_clip = -(-length // plan.stride) if not plan.direct else 0  # rows of `stride` inputs per clip
        length = per_clip * plan.stride if not plan.direct else length
        signal = torch.empty((len(rows), length), dtype=dtype, device=rows[0].device)
        signal[:, :plan.pad] = 0  # only the padding is zeroed: the clips overwrite the rest
        signal[:, plan.pad + num_samples:] = 0
        for number, row in enumerate(rows):
            signal[number, plan.pad:plan.pad + num_samples] = row
        if plan.direct:
            out = torch.stack([torch.cat([_direct(row, np.arange(i, min(i + _DIRECT_SLAB, n_out)), plan)
                                          for i in range(0, n_out, _DIRECT_SLAB)]) for row in signal])
            return out[0] if squeeze else out
        # Every clip's rows as one 2-D operand (clips lie end to end, each a whole number of rows), so
        # each chunk is one GEMM; the rows past a clip's last block are computed and dropped.
        flat = signal.reshape(-1)
        count = (len(rows) - 1) * per_clip + blocks
        parts = []
        for first, last, start, weights in _torch_chunks(orig_sr, target_sr, signal.device, dtype):
            windows = flat.as_strided((count, weights.shape[0]), (plan.stride, 1), plan.pad + start)
            parts.append(windows @ weights)
        out = torch.cat(parts, dim=1)
        out = out.as_strided((len(rows), blocks, plan.phases), (per_clip * plan.phases, plan.phases, 1))
        out = out.reshape(len(rows), -1)[:, :n_out]
        fix = plan.mismatches(n_out)
        if fix.size:
            index = torch.as_tensor(fix, device=signal.device)
            out[:, index] = torch.stack([_direct(row, fix, plan) for row in signal])
    return out[0] if squeeze else out
