"""Batched embedding of many clips: the engine behind extract, analyse and bench.

A clip is ``(waveform, sample_rate)`` or a path to an audio file. Each clip
is decoded, validated, down-mixed and resampled to 16 kHz with the
resampy-exact polyphase resampler (:mod:`warblr.resample`, in the log-mel's precision), turned
into log-mel examples in torch (:mod:`warblr.fast`), and the examples of all
clips are run through VGGish in fixed-size batches that cross clip
boundaries, under ``torch.inference_mode`` with ``channels_last`` tensors.

Decoding can run ahead in a thread pool (``workers``; libsndfile and numpy
release the GIL). Consecutive clips of one rate and length are resampled
and turned into log-mel as one batch. On CUDA the decoded audio is pinned
and copied asynchronously; resampling, log-mel and the network run on the
device while the pool decodes the next clips.

The network runs in float32 unless ``dtype`` asks for ``bfloat16`` or
``float16`` (AMX on recent Xeons, tensor cores on GPUs) or ``int8``
(post-training static quantisation on CPU, :mod:`warblr.quantize`; its
error against float32 is measured by ``warblr bench --dtype int8``); the
reduced precisions are never chosen silently.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import os
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from . import spec
from .audio import load_audio, to_mono, validate_sample_rate, validate_waveform
from .chunks import run_in_chunks
from .errors import AudioError, AudioTooShortError, InvalidArgumentError
from .fast import examples_torch
from .fc_head import run_head
from .features import num_examples, too_short_message
from .resample import resample, resample_kaiser_best_torch, validate_resampler
from .validation import check_scalar

__all__ = ["batch_examples", "batch_embeddings", "embed_examples", "load_clips", "resolve_device",
           "resolve_dtype", "default_workers", "Engine", "make_engine", "DEFAULT_BATCH_SIZE", "NETWORK_DTYPES",
           "torch_threads", "feature_threads"]

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float64": torch.float64, "fp64": torch.float64, "double": torch.float64,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "int8": torch.int8, "qint8": torch.int8,  # int8 names the quantised network, never an int8 log-mel
}
_MODEL_CACHE = weakref.WeakKeyDictionary()
#: Examples per network call (batches cross clip boundaries); on CPU the FC weights are read once
#: per batch and the conv stack runs in chunks of :data:`CPU_CONV_CHUNK` anyway.
DEFAULT_BATCH_SIZE = spec.DEFAULT_BATCH_SIZE


def resolve_device(device=None, *, default="cpu"):
    """A ``torch.device`` from a name, checking that CUDA is there when asked for.

    Parameters
    ----------
    device : str, torch.device or None
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... ``None`` gives ``default``.
    default : str or torch.device, keyword-only

    Returns
    -------
    torch.device

    Raises
    ------
    InvalidArgumentError
        Unknown device, or CUDA asked for without one.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    try:
        device = torch.device(default if device is None else device)
    except (RuntimeError, TypeError) as exc:
        reason = f"{device!r} is not a torch device ({exc})"
        raise InvalidArgumentError(f"device: {reason}", parameter="device", reason=reason) from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        reason = f"{device} asked for, but CUDA is not available here"
        raise InvalidArgumentError(f"device: {reason}", parameter="device", reason=reason)
    return device


def resolve_dtype(dtype, *, allowed, name="dtype"):
    """A torch floating dtype from a dtype or its name, checked against ``allowed``.

    Examples
    --------
    >>> resolve_dtype("bf16", allowed=(torch.float32, torch.bfloat16))
    torch.bfloat16
    """
    resolved = _DTYPES.get(dtype.lower()) if isinstance(dtype, str) else dtype
    if resolved not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        reason = f"expected one of {names}, got {dtype!r}"
        raise InvalidArgumentError(f"{name}: {reason}", parameter=name, reason=reason)
    return resolved


#: Network precisions (float32 first: the default).
NETWORK_DTYPES = tuple(getattr(torch, name) for name in spec.NETWORK_DTYPES)
#: At most this many decoding threads by default.
MAX_DEFAULT_WORKERS = 4


def default_workers():
    """Decoding threads by default: one per core, at most :data:`MAX_DEFAULT_WORKERS`."""
    return min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1)


def _is_path(clip):
    return isinstance(clip, (str, bytes, os.PathLike))


def _decode(index, clip, names=None, *, check_finite=True):
    """``(name, mono float waveform, sample_rate)`` for a path or a ``(waveform, rate)`` pair.

    A bad clip's error gets ``clip=index``; its message starts with ``names[index]``
    when given, else with the path or ``clips[index]``. ``check_finite=False``
    leaves NaN/Inf in an array to the caller (a file's samples are checked as
    it is read).
    """
    try:
        if _is_path(clip):
            name = os.fsdecode(clip) if names is None else names[index]
            waveform, sample_rate = load_audio(clip)
        else:
            name = f"clips[{index}]" if names is None else names[index]
            try:
                waveform, sample_rate = clip
            except (TypeError, ValueError) as exc:
                raise InvalidArgumentError(
                    f"{name}: expected (waveform, sample_rate) or a path, got {type(clip).__name__}"
                ) from exc
            sample_rate = validate_sample_rate(sample_rate, name=f"{name} sample_rate")
        return name, to_mono(waveform, name=name, check_finite=check_finite and not _is_path(clip)), int(sample_rate)
    except (AudioError, InvalidArgumentError) as exc:
        if isinstance(exc, AudioError):
            exc.clip = index
        raise


def _to_16k(group, *, resampler, device, dtype, check_finite):
    """Resample decoded clips of one rate and length to a 16 kHz ``[B, samples]`` tensor on ``device``.

    ``kaiser_best`` runs in the log-mel's precision ``dtype``: float64 keeps the
    float64 path exact (1e-10 of the reference); in float32 it is 1.5-2x faster
    and moves log-mel values by up to ~3e-5, well inside the ~2.5e-4 of the
    float32 log-mel itself. Other resamplers run in float64. ``check_finite``:
    refuse a batch holding NaN or Inf (by the input check's message where an input holds them).
    """
    names, monos, sample_rate = [g[0] for g in group], [g[1] for g in group], group[0][2]
    if resampler == "kaiser_best" and device.type == "cuda":  # one pinned batch, one transfer
        batch = torch.from_numpy(np.stack(monos, dtype=np.float64)).pin_memory().to(device, non_blocking=True)
        if sample_rate != spec.SAMPLE_RATE:
            batch = resample_kaiser_best_torch(batch, sample_rate, spec.SAMPLE_RATE, dtype=dtype)
    elif resampler == "kaiser_best":  # each clip copied once, into the resampler's padded buffer
        batch = resample_kaiser_best_torch(monos, sample_rate, spec.SAMPLE_RATE, dtype=dtype)
    else:
        batch = torch.from_numpy(np.stack([np.asarray(resample(m, sample_rate, spec.SAMPLE_RATE, method=resampler),
                                                      dtype=np.float64) for m in monos])).to(device)
    if check_finite and not bool(torch.isfinite(batch).all()):
        _refuse_non_finite(names, monos, batch)
    if num_examples(batch.shape[1]) == 0:
        raise AudioTooShortError(too_short_message(names[0], monos[0].shape[0], sample_rate))
    return batch


def _refuse_non_finite(names, monos, batch):
    """The input check's error for the first clip holding NaN or Inf, else name the clip whose samples overflowed.

    kaiser_best carries every NaN or Inf input into its output: each input sample lies in some output's
    window, and a NaN or Inf times any weight, zero included, is NaN or Inf.
    """
    for name, mono in zip(names, monos):
        validate_waveform(mono, name=name)
    row = int(torch.nonzero(~torch.isfinite(batch).all(dim=1))[0, 0])
    raise InvalidArgumentError(f"{names[row]}: samples too large to resample in {str(batch.dtype)[6:]} "
                               f"(largest magnitude {float(np.abs(monos[row]).max()):.3g})")


def prefetch_map(function, items, workers):
    """``map(function, items)`` in order, up to ``2 * workers`` items ahead in a thread pool."""
    if workers == 0:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="warblr-decode") as pool:
        pending = collections.deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _check_workers(workers, clips, device):
    if workers is None:  # threads pay off for files and to overlap a GPU; on CPU arrays they only contend
        return default_workers() if device.type == "cuda" or any(map(_is_path, clips)) else 0
    return check_scalar(workers, "workers", min_val=0)


#: Clips of one rate and length resampled and turned into log-mel together: fewer
#: torch calls, whose thread synchronisation is costly on a busy machine. Larger
#: groups fall out of cache (2-core Xeon, 10 s clips: 2 is fastest when idle).
GROUP_SIZE = 2
#: On a GPU larger groups mean fewer kernel launches per clip.
DEVICE_GROUP_SIZE = 32


def _groups(decoded, size):
    """Runs of up to ``size`` consecutive decoded clips with the same rate and length."""
    group = []
    for item in decoded:
        if group and (len(group) == size or (item[1].shape, item[2]) != (group[0][1].shape, group[0][2])):
            yield group
            group = []
        group.append(item)
    if group:
        yield group


#: torch threads for resampling and log-mel on CPU when the machine is busier than its cores (see
#: :func:`feature_threads`). Their operations are small (a group of 2 clips), so on an oversubscribed
#: machine a parallel region's start and barrier cost more than they save: on 2 shared EPYC cores at
#: load 11, 8 clips took 29 ms/clip on 1 thread against 150-240 ms/clip on 2; at load 4, 2 threads were
#: faster (6-7 against 9-11 ms/clip). Results do not depend on the thread count (oneMKL's CBWR is
#: pinned on import, see warblr/__init__.py).
BUSY_FEATURE_THREADS = 1
#: Busy means a 1-minute load average above this many runnable threads per CPU (between the two
#: measurements above: one thread won at 5.5 per CPU, all threads at 1.9).
BUSY_LOAD_PER_CPU = 2.0


def feature_threads():
    """torch threads for resampling and log-mel now: :data:`BUSY_FEATURE_THREADS` when the 1-minute load
    average exceeds :data:`BUSY_LOAD_PER_CPU` per CPU, else None (torch's own count).

    Examples
    --------
    >>> feature_threads() in (None, BUSY_FEATURE_THREADS)
    True
    """
    try:
        busy = os.getloadavg()[0] > BUSY_LOAD_PER_CPU * (os.cpu_count() or 1)
    except OSError:  # no load average on this platform
        busy = False
    return BUSY_FEATURE_THREADS if busy else None


@contextlib.contextmanager
def torch_threads(count):
    """Run the block with ``count`` torch intra-op threads (the previous count is restored after)."""
    previous = torch.get_num_threads()
    if count is None or count == previous:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _clip_examples(clips, *, device, dtype, resampler, workers, names=None):
    """Yield each clip's ``[N_i, 96, 64]`` examples (``dtype``, on ``device``), in order."""
    validate_resampler(resampler, name="resampler")
    clips = list(clips)
    workers = _check_workers(workers, clips, device)
    # NaN/Inf: on the CPU, checked on each group's 16 kHz batch (kaiser_best carries any into its output, and a
    # pass over the cold input cost ~20 % of the features stage); on the input too, in the decoding threads, for
    # other resamplers (they may not carry them); on a GPU on the input only (a batch check waits for the device).
    on_input = resampler != "kaiser_best" or device.type != "cpu"
    decoded = prefetch_map(lambda item: _decode(*item, names, check_finite=on_input), enumerate(clips), workers)
    threads = feature_threads() if device.type == "cpu" else None
    for group in _groups(decoded, GROUP_SIZE if device.type == "cpu" else DEVICE_GROUP_SIZE):
        with torch_threads(threads):  # not across the yield: the caller's network runs on all threads
            batch = _to_16k(group, resampler=resampler, device=device, dtype=dtype, check_finite=device.type == "cpu")
            examples = examples_torch(batch, dtype=dtype)
        yield from examples


def load_clips(paths, *, workers=None):
    """Read audio files into ``(waveform, sample_rate)`` pairs, in a thread pool.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
    workers : int, keyword-only
        Threads (default :func:`default_workers`; 0 reads in this thread).

    Returns
    -------
    list of (np.ndarray, int)
        float64 waveforms as :func:`warblr.audio.load_audio` returns them.

    Raises
    ------
    AudioFileError
        The first unreadable file, named.

    Examples
    --------
    >>> import soundfile as sf, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
    >>> sf.write(path, np.zeros(16000), 16000)
    >>> [(w.shape, sr) for w, sr in load_clips([path])]
    [((16000,), 16000)]
    """
    paths = list(paths)
    workers = default_workers() if workers is None else _check_workers(workers, paths, torch.device("cpu"))
    return list(prefetch_map(load_audio, paths, workers))


def batch_examples(clips, *, device=None, dtype=torch.float32, resampler="kaiser_best", workers=None, names=None):
    """VGGish input examples for many clips.

    Parameters
    ----------
    clips : sequence of (waveform, sample_rate) or of paths
        Waveforms ``[samples]`` or ``[samples, channels]`` (see
        :func:`warblr.audio.validate_waveform`); paths are read with
        :func:`warblr.audio.load_audio`.
    device : str or torch.device, keyword-only
        Where resampling and log-mel run (default CPU).
    dtype : {torch.float32, torch.float64} or name, keyword-only
        Resampling and log-mel precision. float32 (default) is within ~2.5e-4
        of the float64 numpy reference; float64 equals it to ~1e-10.
    resampler : {"kaiser_best", "resampy", "soxr"}, keyword-only
        See :func:`warblr.resample.resample`; the default reproduces torchvggish's.
    workers : int, keyword-only
        Decoding threads; default 0 for arrays on CPU, else :func:`default_workers`.
    names : sequence of str, optional, keyword-only
        What error messages call each clip (default: its path, or ``clips[i]``).

    Returns
    -------
    list of np.ndarray
        One float32 ``[N_i, 96, 64]`` per clip.

    Raises
    ------
    InvalidArgumentError, AudioFileError, AudioTooShortError
        The first bad clip, named by its path or ``clips[i]`` (audio errors
        also carry its index as ``clip``).

    Examples
    --------
    >>> tone = np.sin(2 * np.pi * 440 * np.arange(44100 * 2) / 44100)
    >>> [e.shape for e in batch_examples([(tone, 44100), (tone[:30000], 22050)])]
    [(2, 96, 64), (1, 96, 64)]
    """
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, allowed=(torch.float32, torch.float64))
    with torch.inference_mode():
        return [examples.float().cpu().numpy() for examples in
                _clip_examples(clips, device=device, dtype=dtype, resampler=resampler, workers=workers, names=names)]


def _inference_model(model, device, dtype):
    """``model`` ready for fast inference: eval, ``channels_last``, on ``device`` in ``dtype``.

    A float32 model already on ``device`` is used as it is (its conv weights
    are switched to ``channels_last``, which leaves every value unchanged);
    otherwise a converted copy is made once and cached.
    """
    params = list(model.parameters())  # not empty: callers resolve the device with _model_device first
    if dtype == torch.int8:
        return _quantized_model(model, device, params)
    if params[0].device == device and all(p.dtype == dtype for p in params):
        return model.eval().to(memory_format=torch.channels_last)
    key = (str(device), dtype, tuple(p._version for p in params))
    cached = _MODEL_CACHE.get(model)
    if cached is None or cached[0] != key:
        converted = copy.deepcopy(model).to(device=device, dtype=dtype, memory_format=torch.channels_last).eval()
        _MODEL_CACHE[model] = cached = (key, converted)
    return cached[1]


def _quantized_model(model, device, params):
    """The int8 version of ``model`` (CPU only), built or read from its cache once per model version."""
    from .quantize import load_quantized

    if device.type != "cpu":
        reason = f"int8 runs on the CPU only (x86 quantised kernels), not on {device}"
        raise InvalidArgumentError(f"dtype: {reason}", parameter="dtype", reason=reason)
    key = ("int8", tuple(p._version for p in params))
    cached = _MODEL_CACHE.get(model)
    if cached is None or cached[0] != key:
        _MODEL_CACHE[model] = cached = (key, load_quantized(model))
    return cached[1]


def _model_device(model):
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError) as exc:
        raise InvalidArgumentError("model: expected a VGGish torch module with parameters") from exc


#: On CPU the conv stack runs this many examples at a time (its activations then
#: stay in cache: ~18% faster on a 2-core Xeon) and the FC layers take the whole batch.
CPU_CONV_CHUNK = 16


def _run(network, batch, dtype):
    """Embeddings of a ``[B, 96, 64]`` batch: VGGish's forward pass, conv stack in cache-sized chunks on CPU."""
    if dtype == torch.int8:  # the quantised network takes float32 examples and chunks them itself
        return network(batch.float())
    batch = batch.to(dtype).unsqueeze(1).contiguous(memory_format=torch.channels_last)
    if batch.device.type != "cpu" or not hasattr(network, "flatten_feature_maps"):  # torchvggish's VGG: plain forward
        return network(batch).float()
    maps = run_in_chunks(network.features, batch, CPU_CONV_CHUNK)
    return run_head(network, network.flatten_feature_maps(maps)).float()  # oneDNN where oneMKL is slow


def _embed_stream(network, example_stream, *, batch_size, dtype):
    """Embed a stream of ``[N_i, 96, 64]`` tensors in fixed batches across clip boundaries.

    Returns the per-clip list of float32 ``[N_i, 128]`` arrays.
    """
    counts, outputs, pending, pending_rows = [], [], [], 0
    with torch.inference_mode():
        for examples in example_stream:
            counts.append(int(examples.shape[0]))
            pending.append(examples)
            pending_rows += counts[-1]
            while pending_rows >= batch_size:
                stacked = torch.cat(pending)
                outputs.append(_run(network, stacked[:batch_size], dtype))
                pending, pending_rows = [stacked[batch_size:]], pending_rows - batch_size
            if len(outputs) > 8:  # bound device memory: move finished embeddings to the host
                outputs = [torch.cat(outputs).cpu()]
        if pending_rows:
            outputs.append(_run(network, torch.cat(pending), dtype))
    flat = torch.cat([o.cpu() for o in outputs]).numpy() if outputs else np.zeros((0, spec.EMBEDDING_SIZE), np.float32)
    return np.split(flat, np.cumsum(counts)[:-1]) if counts else []


def embed_examples(model, examples, *, batch_size=DEFAULT_BATCH_SIZE, device=None, dtype=torch.float32):
    """Run ``[N, 96, 64]`` examples through ``model`` in batches.

    Parameters
    ----------
    model : warblr.model.VGGish (or torchvggish's VGG)
    examples : np.ndarray or torch.Tensor
        ``[N, 96, 64]``.
    batch_size : int, keyword-only
        Examples per network call (default :data:`DEFAULT_BATCH_SIZE`).
    device : str or torch.device, keyword-only
        Default: the model's device.
    dtype : {torch.float32, torch.bfloat16, torch.float16, torch.int8} or name, keyword-only
        Network precision; float32 unless asked. int8 (CPU only) runs
        :func:`warblr.quantize.load_quantized`'s network, cached next to the weights.

    Returns
    -------
    np.ndarray
        float32 ``[N, 128]``.

    Examples
    --------
    >>> from warblr.weights import load_vggish
    >>> embed_examples(load_vggish("random"), np.zeros((3, 96, 64), np.float32)).shape
    (3, 128)
    """
    batch_size = check_scalar(batch_size, "batch_size", min_val=1)
    device = resolve_device(device, default=_model_device(model))
    dtype = resolve_dtype(dtype, allowed=NETWORK_DTYPES)
    if not torch.is_tensor(examples):
        try:
            examples = torch.from_numpy(np.asarray(examples, dtype=np.float32))
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"examples: expected a float array [N, {spec.NUM_FRAMES}, "
                                       f"{spec.NUM_BANDS}] ({exc})") from exc
    if examples.dim() != 3 or tuple(examples.shape[1:]) != (spec.NUM_FRAMES, spec.NUM_BANDS):
        raise InvalidArgumentError(f"examples: expected [N, {spec.NUM_FRAMES}, {spec.NUM_BANDS}], "
                                   f"got shape {tuple(examples.shape)}")
    # Checked once here, on every device: the CPU path does not go through VGGish.forward's check.
    if not bool(torch.isfinite(examples).all()):
        raise InvalidArgumentError("examples: contain NaN or Inf values")
    network = _inference_model(model, device, dtype)
    chunks = (examples[i:i + batch_size].to(device) for i in range(0, len(examples), batch_size))
    per_chunk = _embed_stream(network, chunks, batch_size=batch_size, dtype=dtype)
    return np.concatenate(per_chunk) if per_chunk else np.zeros((0, spec.EMBEDDING_SIZE), np.float32)


def batch_embeddings(clips, model, *, device=None, dtype=torch.float32, batch_size=DEFAULT_BATCH_SIZE,
                     resampler="kaiser_best",
                     workers=None):
    """VGGish embeddings for many clips.

    Parameters
    ----------
    clips : sequence of (waveform, sample_rate) or of paths
        As :func:`batch_examples`.
    model : warblr.model.VGGish
        Not modified except that its conv weights may be switched to
        ``channels_last`` (values unchanged); other devices/dtypes use a cached copy.
    device : str or torch.device, keyword-only
        Default: the model's device.
    dtype : {torch.float32, torch.bfloat16, torch.float16, torch.int8} or name, keyword-only
        Network precision (features are float32). float32 unless asked; int8 as :func:`embed_examples`.
    batch_size : int, keyword-only
        Examples per network call (see :func:`embed_examples`); batches cross clip boundaries.
    resampler : str, keyword-only
        See :func:`batch_examples`.
    workers : int, keyword-only
        See :func:`batch_examples`.

    Returns
    -------
    list of np.ndarray
        One float32 ``[N_i, 128]`` per clip.

    Examples
    --------
    >>> from warblr.weights import load_vggish
    >>> tone = np.sin(np.arange(32000) / 5.0)
    >>> [e.shape for e in batch_embeddings([(tone, 16000)] * 2, load_vggish("random"))]
    [(2, 128), (2, 128)]
    """
    batch_size = check_scalar(batch_size, "batch_size", min_val=1)
    device = resolve_device(device, default=_model_device(model))
    dtype = resolve_dtype(dtype, allowed=NETWORK_DTYPES)
    network = _inference_model(model, device, dtype)
    with torch.inference_mode():
        stream = _clip_examples(clips, device=device, dtype=torch.float32, resampler=resampler, workers=workers)
        return _embed_stream(network, stream, batch_size=batch_size, dtype=dtype)


# --------------------------------------------------------------------------- engine options


@dataclass(frozen=True)
class Engine:
    """How a batch job runs the engine: resolved device, network dtype, batch size, decoding threads."""

    device: torch.device
    dtype: torch.dtype
    batch_size: int
    workers: int

    @property
    def precision(self):
        """The network dtype's name, e.g. ``"float32"`` (part of every stored item's fingerprint)."""
        return str(self.dtype).replace("torch.", "")

    def as_dict(self):
        """The options as JSON-ready values."""
        return {"device": str(self.device), "dtype": self.precision, "batch_size": self.batch_size,
                "workers": self.workers}


def make_engine(*, device="auto", dtype="float32", batch_size=DEFAULT_BATCH_SIZE, workers=None):
    """Check and resolve engine options.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device, keyword-only
        ``"auto"`` (or None): CUDA when available, else CPU.
    dtype : {"float32", "bfloat16", "float16", "int8"}, keyword-only
        Network precision. float32 by default; the others are faster on
        recent GPUs and CPUs but change embeddings well beyond float32
        rounding, so they are only used when asked for. int8 runs on the
        CPU only (an error names ``dtype`` when the device is CUDA).
    batch_size : int, keyword-only
        Examples per network call.
    workers : int, optional, keyword-only
        Decoding threads; 0 decodes in the calling thread. Default
        :func:`default_workers`.

    Returns
    -------
    Engine

    Raises
    ------
    InvalidArgumentError
        An option of the wrong value (``parameter`` names it); CUDA asked for without one.

    Examples
    --------
    >>> make_engine(device="cpu", workers=2).as_dict()
    {'device': 'cpu', 'dtype': 'float32', 'batch_size': 64, 'workers': 2}
    """
    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    batch_size = check_scalar(batch_size, "batch_size", min_val=1)
    workers = default_workers() if workers is None else check_scalar(workers, "workers", min_val=0)
    device, dtype = resolve_device(device), resolve_dtype(dtype, allowed=NETWORK_DTYPES)
    if dtype == torch.int8 and device.type != "cpu":
        reason = f"int8 runs on the CPU only (x86 quantised kernels), not on {device}; use --device cpu"
        raise InvalidArgumentError(f"dtype: {reason}", parameter="dtype", reason=reason)
    return Engine(device=device, dtype=dtype, batch_size=batch_size, workers=workers)
