"""``warblr extract``: log-mel examples and VGGish embeddings for every item of a dataset, resumable.

Every item becomes ``OUT/items/<itemid>.npz`` through the item store
(:mod:`warblr.lab.store`: atomic, validated, fingerprinted). Items are
processed in fixed **groups** by position in the id-sorted item list, so a
resumed run, a run with another number of decoding threads and a run on Ray
(:mod:`warblr.lab.distributed`) all batch exactly alike and give
bit-identical numbers. A group goes through three steps, each a function
here so that every runner shares them:

1. :func:`plan_groups`: fingerprint each item's audio and skip the ones
   already stored (before any work is scheduled);
2. :func:`group_examples`: decode the group's files and compute its log-mel
   examples (CPU work), one every ``hop`` seconds; files longer than
   :data:`STREAM_SECONDS` are streamed in bounded memory
   (:mod:`warblr.stream`) to the same numbers; bad files become
   :class:`~warblr.lab.dataset.Problem`\\ s;
3. :func:`group_embeddings`: run the group's examples through VGGish in
   batches that cross clip boundaries; then :func:`store_group` writes the
   items that were missing.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import spec
from ..errors import AudioTooShortError, WarblrError
from ..features import frame_examples
from ..fileio import exclusive, remove_temporaries
from ..validation import check_scalar
from . import store
from .dataset import Problem

__all__ = ["DEFAULT_GROUP_SIZE", "STREAM_SECONDS", "ExtractResult", "Group", "plan_groups", "group_examples",
           "group_embeddings", "store_group", "started_elsewhere", "open_store", "extract"]

#: Clips per group: the unit of batching, progress and resumption.
DEFAULT_GROUP_SIZE = 16
#: Files longer than this (seconds) are decoded chunk by chunk, never whole (a one-hour
#: 48 kHz stereo file would be 1.4 GB as float64); shorter ones are decoded whole and batched.
STREAM_SECONDS = 600.0
#: Seconds of audio read and resampled per step of a streamed file.
STREAM_CHUNK_SECONDS = 60.0


@dataclass
class ExtractResult:
    """What :func:`extract` did: finished item ids, bad items, and how much was computed."""

    done: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    computed: int = 0
    reused: int = 0
    seconds: float = 0.0
    runtime: list = field(default_factory=list)  # Ray runs: each network actor's runtime.runtime_settings()
    computed_here: int = 0  # Ray runs: items this process computed itself while Ray started (local_start)


@dataclass(frozen=True)
class Group:
    """One fixed group of items that still has work to do.

    Attributes
    ----------
    index : int
        Position of the group (``first item's position // group_size``).
    items : tuple of Item
        Every readable item of the group, finished or not: finished ones are
        recomputed (not rewritten) so the batch is the same as in a fresh run.
    fingerprints : dict
        ``item_id -> fingerprint`` of each item in ``items``.
    missing : frozenset of str
        Ids still to be written.
    hop_frames : int
        STFT frames between example starts (96: the VGGish spec).
    """

    index: int
    items: tuple
    fingerprints: dict
    missing: frozenset
    hop_frames: int = spec.NUM_FRAMES


def _fingerprint(item, provenance, settings):
    """``(item, fingerprint, None)``, or ``(item, None, Problem)`` when the file cannot be read."""
    if settings["log_mel_device"] != "cpu" and _is_long(item.path):
        settings = {**settings, "log_mel_device": "cpu"}  # long files are streamed on CPU
    try:
        return item, store.item_fingerprint(item.path, provenance, **settings), None
    except OSError as exc:
        return item, None, Problem(item.item_id, f"{item.path}: cannot read ({exc.strerror or exc})")


def plan_groups(dataset, out, provenance, *, precision, group_size=DEFAULT_GROUP_SIZE, workers=0, on_group=None,
                hop=spec.EXAMPLE_HOP_SECONDS, log_mel_device="cpu"):
    """Fingerprint every item and find the groups that still have work.

    Parameters
    ----------
    dataset : warblr.lab.dataset.Dataset
    out : str or os.PathLike
        Output folder (its ``items/`` store).
    provenance : warblr.weights.WeightsProvenance
    precision : str, keyword-only
        The network dtype's name (part of each fingerprint).
    group_size : int, keyword-only
    workers : int, keyword-only
        Threads hashing files (0: this thread).
    on_group : callable, optional, keyword-only
        Called with the number of items of each group that is already finished.
    hop : float, keyword-only
        Seconds between example starts (part of each fingerprint).
    log_mel_device : str or torch.device, keyword-only
        Where the log-mel will run (part of each fingerprint): a Ray run
        computes it on CPU, a local run on its ``--device``.

    Returns
    -------
    groups : list of Group
        In order; only groups with at least one missing item.
    finished : list of str
        Ids already stored with the right fingerprint.
    problems : list of Problem
        Unreadable files.
    """
    from ..embed import prefetch_map

    from ..features import hop_frames

    group_size = check_scalar(group_size, "group_size", min_val=1)
    frames = hop_frames(hop)
    settings = {"precision": precision, "hop": hop, "log_mel_device": store.device_type(log_mel_device)}
    groups, finished, problems = [], [], []
    for first in range(0, len(dataset.items), group_size):
        chunk = dataset.items[first:first + group_size]
        readable, fingerprints, missing = [], {}, set()
        for item, fingerprint, problem in prefetch_map(lambda i: _fingerprint(i, provenance, settings), chunk,
                                                       workers):
            if problem:
                problems.append(problem)
                continue
            readable.append(item)
            fingerprints[item.item_id] = fingerprint
            if store.read_item(store.item_path(out, item.item_id), fingerprint=fingerprint) is None:
                missing.add(item.item_id)
            else:
                finished.append(item.item_id)
        if missing:
            groups.append(Group(first // group_size, tuple(readable), fingerprints, frozenset(missing), frames))
        elif on_group is not None:
            on_group(len(chunk))
    return groups, finished, problems


def _is_long(path):
    """Whether ``path`` holds more than :data:`STREAM_SECONDS` of audio (False when it cannot say: decoded whole)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (RuntimeError, TypeError, ValueError, OSError):  # the decoder names the problem later
        return False
    return info.samplerate > 0 and info.frames / info.samplerate > STREAM_SECONDS


def _decode(item):
    """``(item, (waveform, rate), None)``, ``(item, None, None)`` for a long file (streamed later),
    or ``(item, None, Problem)`` for bad audio."""
    from ..audio import load_audio

    if _is_long(item.path):
        return item, None, None
    try:
        return item, load_audio(item.path), None
    except WarblrError as exc:
        return item, None, Problem(item.item_id, str(exc))


def _torch_log_mel(signal):
    """The engine's float32 log-mel of a 16 kHz numpy signal on CPU (what the batched path computes)."""
    import torch

    from ..fast import log_mel_torch

    with torch.inference_mode():
        return log_mel_torch(torch.from_numpy(signal).to(torch.float32)).numpy()


def _streamed_examples(item, hop_frames):
    """``(examples, None)`` of a long file decoded chunk by chunk, or ``(None, Problem)``.

    The chunks are resampled with context (:mod:`warblr.stream`) in float32 and
    turned into log-mel by the batched path's own float32 function, so the
    examples equal those of the file decoded whole.
    """
    import soundfile as sf

    from ..audio import audio_read_errors
    from ..features import num_examples
    from ..resample import resampled_length
    from ..stream import iter_file_examples

    try:
        with audio_read_errors(item.path):
            info = sf.info(str(item.path))
        # One array of the size the header gives, filled block by block: the examples are held once.
        expected = num_examples(resampled_length(info.frames, info.samplerate, spec.SAMPLE_RATE),
                                hop_frames=hop_frames)
        examples = np.empty((expected, spec.NUM_FRAMES, spec.NUM_BANDS), np.float32)
        filled, extra = 0, []
        for block in iter_file_examples(item.path, chunk_seconds=STREAM_CHUNK_SECONDS,
                                        hop=hop_frames * spec.STFT_HOP_LENGTH / spec.SAMPLE_RATE,
                                        log_mel=_torch_log_mel, resample_dtype=np.float32):
            fits = max(0, min(len(block), expected - filled))
            examples[filled:filled + fits] = block[:fits]
            filled += fits
            if fits < len(block):  # a file holding more than its header said
                extra.append(block[fits:].copy())
    except WarblrError as exc:
        return None, Problem(item.item_id, str(exc))
    examples = examples[:filled]
    if extra:
        examples = np.concatenate([examples, *extra])
    return examples, None


def _hop_examples(clip, hop_frames, *, device, name):
    """float32 ``[N, 96, 64]`` examples of a decoded clip, one every ``hop_frames`` frames.

    The batched path's own steps (channel mean, the resampy-exact torch
    resampler and the torch log-mel, both float32), then windows cut from
    the whole log-mel: its rows do not depend on the signal's length, so the
    windows at even positions of a half hop are the default run's windows.
    """
    import torch

    from ..audio import to_mono
    from ..embed import resolve_device
    from ..fast import log_mel_torch
    from ..features import num_examples, too_short_message
    from ..resample import resample_kaiser_best_torch

    waveform, sample_rate = clip
    mono = to_mono(waveform, name=name)  # validates
    with torch.inference_mode():
        signal = torch.from_numpy(mono.astype(np.float64, copy=False))[None].to(resolve_device(device))
        if sample_rate != spec.SAMPLE_RATE:
            signal = resample_kaiser_best_torch(signal, sample_rate, spec.SAMPLE_RATE, dtype=torch.float32)
        count = num_examples(signal.shape[1], hop_frames=hop_frames)
        if count == 0:
            raise AudioTooShortError(too_short_message(name, mono.shape[0], sample_rate))
        used = ((count - 1) * hop_frames + spec.NUM_FRAMES - 1) * spec.STFT_HOP_LENGTH + spec.STFT_WINDOW_LENGTH
        log_mel = log_mel_torch(signal[0, :used].to(torch.float32)).cpu().numpy()
    return np.ascontiguousarray(frame_examples(log_mel, hop_frames=hop_frames))


def group_examples(group, *, device="cpu", workers=0):
    """Decode a group's files and compute their log-mel examples, one every ``group.hop_frames`` frames.

    Parameters
    ----------
    group : Group
    device : str or torch.device, keyword-only
        Where resampling and log-mel run.
    workers : int, keyword-only
        Threads decoding files (0: this thread). Results do not depend on it.

    Returns
    -------
    examples : list of (Item, ndarray)
        float32 ``[N, 96, 64]`` per good item, in group order.
    problems : list of Problem
        Files that are not usable audio, named by item id.
    """
    from .. import embed

    decoded = list(embed.prefetch_map(_decode, group.items, workers))
    good = [(item, clip) for item, clip, _ in decoded if clip is not None]
    problems = [problem for _, _, problem in decoded if problem is not None]
    per_item = {}
    if good and group.hop_frames != spec.NUM_FRAMES:  # overlapping windows: clip by clip, same functions
        for item, clip in good:
            try:
                per_item[item.item_id] = _hop_examples(clip, group.hop_frames, device=device, name=str(item.path))
            except WarblrError as exc:
                problems.append(Problem(item.item_id, str(exc)))
    elif good:
        names = [str(item.path) for item, _ in good]
        try:
            per_clip = embed.batch_examples([clip for _, clip in good], device=device, workers=0, names=names)
        except WarblrError:
            # Find the culprit(s) one clip at a time; the others keep their place in the batch.
            per_clip, kept = [], []
            for item, clip in good:
                try:
                    per_clip.append(embed.batch_examples([clip], device=device, workers=0,
                                                         names=[str(item.path)])[0])
                    kept.append((item, clip))
                except WarblrError as exc:
                    problems.append(Problem(item.item_id, str(exc)))
            good = kept
        per_item = {item.item_id: examples for (item, _), examples in zip(good, per_clip)}
    for item, clip, problem in decoded:
        if clip is None and problem is None:  # a long file: streamed, on CPU (bounded memory)
            per_item[item.item_id], problem = _streamed_examples(item, group.hop_frames)
            if problem is not None:
                del per_item[item.item_id]
                problems.append(problem)
    return [(item, per_item[item.item_id]) for item in group.items if item.item_id in per_item], problems


def group_embeddings(examples, model, engine):
    """VGGish embeddings of a group's examples, batched across clip boundaries.

    Parameters
    ----------
    examples : list of (Item, ndarray)
        From :func:`group_examples`.
    model : warblr.model.VGGish
    engine : warblr.embed.Engine

    Returns
    -------
    list of (Item, ndarray, ndarray)
        ``(item, examples [N, 96, 64], embeddings [N, 128])`` float32.
    """
    from .. import embed

    if not examples:
        return []
    joined = examples[0][1] if len(examples) == 1 else np.concatenate([e for _, e in examples])  # a long file: no copy
    flat = embed.embed_examples(model, joined, batch_size=engine.batch_size, device=engine.device,
                                dtype=engine.dtype)
    split = np.split(flat, np.cumsum([len(e) for _, e in examples])[:-1])
    return [(item, e, emb) for (item, e), emb in zip(examples, split)]


def store_group(out, group, computed, *, kept=0):
    """Write the group's missing items atomically.

    Parameters
    ----------
    out : str or os.PathLike
    group : Group
    computed : list of (Item, ndarray, ndarray)
        From :func:`group_embeddings`.
    kept : int, keyword-only
        Finished items so far (for the error message).

    Returns
    -------
    list of str
        Ids written.

    Raises
    ------
    OutputError
        An item cannot be written; the finished ones are kept.
    """
    written = []
    for item, examples, embeddings in computed:
        if item.item_id not in group.missing:
            continue  # finished before; recomputed only to keep the batch as it was
        path = store.item_path(out, item.item_id)
        try:
            store.write_item(path, examples, embeddings, group.fingerprints[item.item_id])
        except OSError as exc:
            raise store.output_error(path, exc, kept + len(written)) from exc
        written.append(item.item_id)
    return written


def started_elsewhere(out, group):
    """True when an item ``group`` was missing is now stored: another worker has computed the group (or is writing it).

    Groups are computed and written whole, so one stored item is enough; a
    bad file in the group is never stored, so "all stored" could never be seen.
    """
    return any(store.read_item(store.item_path(out, item_id), fingerprint=group.fingerprints[item_id]) is not None
               for item_id in group.missing)


@contextlib.contextmanager
def open_store(out):
    """Create ``OUT/items``, hold the output lock and clear a killed run's temporaries.

    Raises
    ------
    OutputError
        The folder cannot be created, or another run holds it.
    """
    items_dir = Path(os.fspath(out)) / store.ITEMS_DIR
    try:
        items_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise store.output_error(items_dir, exc, 0) from exc
    with exclusive(out):
        remove_temporaries(items_dir)
        yield items_dir


def extract(dataset, out, *, model, provenance, group_size=DEFAULT_GROUP_SIZE, engine=None, progress=True,
            hop=spec.EXAMPLE_HOP_SECONDS):
    """Compute and store examples and embeddings for every item of ``dataset`` not finished yet.

    Parameters
    ----------
    dataset : warblr.lab.dataset.Dataset
    out : str or os.PathLike
        Output folder; items go to ``out/items/<itemid>.npz``.
    model : VGGish, keyword-only
    provenance : warblr.weights.WeightsProvenance, keyword-only
        Part of each item's fingerprint.
    group_size : int, keyword-only
        Clips per group. Groups are fixed by position, so a resumed run
        batches exactly like an uninterrupted one.
    engine : warblr.embed.Engine, optional, keyword-only
        Device, dtype, batch size and decoding threads (default
        :func:`warblr.embed.make_engine`: CUDA if available, float32). The
        dtype is part of each item's fingerprint.
    progress : bool, keyword-only
        Show a tqdm bar on stderr.
    hop : float, keyword-only
        Seconds between example starts: 0.96 (the VGGish spec,
        non-overlapping) by default, 0.48 for half-overlapping examples; a
        multiple of 0.01 s. Part of each item's fingerprint.

    Returns
    -------
    ExtractResult

    Raises
    ------
    OutputError
        The output folder cannot be written (disk full, permissions) or is
        in use by another run; items finished before are kept.

    See Also
    --------
    warblr.lab.distributed.extract_on_ray : the same groups on a Ray cluster.
    """
    from tqdm import tqdm

    from ..embed import make_engine

    group_size = check_scalar(group_size, "group_size", min_val=1)
    engine = make_engine() if engine is None else engine
    start = time.perf_counter()
    result = ExtractResult()
    with open_store(out), tqdm(total=len(dataset.items), desc="extract", unit="clip", disable=not progress,
                               file=sys.stderr) as bar:
        groups, result.done, result.failed = plan_groups(
            dataset, out, provenance, precision=engine.precision, group_size=group_size, workers=engine.workers,
            on_group=bar.update, hop=hop, log_mel_device=engine.device)
        result.reused = len(result.done)
        for group in groups:
            examples, problems = group_examples(group, device=engine.device, workers=engine.workers)
            written = store_group(out, group, group_embeddings(examples, model, engine), kept=len(result.done))
            result.failed.extend(problems)
            result.done.extend(written)
            result.computed += len(written)
            bar.update(len(dataset.items[group.index * group_size:(group.index + 1) * group_size]))
    result.done.sort()
    result.seconds = time.perf_counter() - start
    return result
