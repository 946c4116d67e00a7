"""The per-item result store of ``warblr extract``: ``OUT/items/<itemid>.npz``.

Each item holds ``examples`` float32 ``[N, 96, 64]``, ``embeddings`` float32
``[N, 128]`` and ``meta``, the JSON fingerprint of everything that can change
its bytes: the source audio's SHA-256, the weights, the network precision,
the hop between examples and where the log-mel ran (``cpu`` or ``cuda``). Files are
written atomically (:func:`warblr.fileio.atomic_write`) and checked in full
when read, so a half-written, corrupt or stale file is never taken as
finished. Every write failure becomes an :class:`~warblr.errors.OutputError`
that says what is kept and how to resume.
"""

from __future__ import annotations

import errno
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .. import spec
from ..errors import BadItemError, OutputError
from ..fileio import atomic_write, file_digest
from .dataset import display_id, validate_item_id

__all__ = [
    "FORMAT_VERSION",
    "ITEMS_DIR",
    "item_path",
    "item_fingerprint",
    "device_type",
    "read_item",
    "write_item",
    "output_error",
]

#: Version of the ``items/<id>.npz`` layout and of the engine's arithmetic (part of every fingerprint): bumped
#: when the bytes of an item change, so a resumed run never mixes old and new items (4: the log-mel's magnitude
#: is sqrt(re^2 + im^2), not torch's complex abs, which rounds float32 differently; 5: the float32 FC head runs
#: through oneDNN on non-Intel CPUs, see :mod:`warblr.fc_head`; 6: float32 features resample in float32, in
#: matrix chunks of at most 32 phases, see :mod:`warblr.resample`).
FORMAT_VERSION = 6
ITEMS_DIR = "items"
_ITEM_KEYS = ["embeddings", "examples", "meta"]


def item_path(out, item_id):
    """``OUT/items/<item_id>.npz`` for a validated id (never a path outside ``OUT/items``).

    Parameters
    ----------
    out : str or os.PathLike
        The output folder.
    item_id : str

    Returns
    -------
    Path

    Raises
    ------
    BadItemError
        ``item_id`` is not a safe id (see :func:`warblr.lab.dataset.validate_item_id`).

    Examples
    --------
    >>> item_path("out", "rec-001").as_posix()
    'out/items/rec-001.npz'
    """
    items = Path(os.fspath(out)) / ITEMS_DIR
    path = items / f"{validate_item_id(item_id)}.npz"
    if path.parent != items:  # cannot happen for a valid id; kept as a second lock
        raise BadItemError(f"item id '{display_id(item_id)}': would be written outside {items}")
    return path


def item_fingerprint(source_path, provenance, *, precision="float32", hop=spec.EXAMPLE_HOP_SECONDS,
                     log_mel_device="cpu"):
    """What a finished item must have been made from: everything that can change its bytes.

    Parameters
    ----------
    source_path : str or os.PathLike
        The item's audio file.
    provenance : warblr.weights.WeightsProvenance
    precision : str, keyword-only
        The network's dtype name; items made in another precision are stale.
    hop : float, keyword-only
        Seconds between example starts (validated by :func:`warblr.features.hop_frames`).
    log_mel_device : str, keyword-only
        Where resampling and the log-mel ran: a device type (``"cpu"``,
        ``"cuda"``); a GPU's float32 FFT rounds differently from the CPU's.

    Returns
    -------
    dict

    Raises
    ------
    OSError
        The audio file cannot be read.
    """
    from ..features import hop_frames

    frames = hop_frames(hop)
    return {"format": FORMAT_VERSION, "source_sha256": file_digest(source_path),
            "weights": provenance.source, "weights_sha256": provenance.sha256,
            "final_relu": provenance.final_relu, "precision": str(precision),
            "hop": frames * spec.STFT_HOP_LENGTH / spec.SAMPLE_RATE, "log_mel_device": device_type(log_mel_device)}


def device_type(device):
    """``"cuda"`` for ``"cuda:1"`` or ``torch.device("cuda", 1)``: the kind of device decides the rounding."""
    return str(getattr(device, "type", device)).split(":")[0]


def read_item(path, *, fingerprint=None):
    """Read a finished item, or ``None`` if it is missing, half-written, corrupt or stale.

    Parameters
    ----------
    path : str or os.PathLike
    fingerprint : dict, optional, keyword-only
        When given, the item's stored fingerprint must equal it.

    Returns
    -------
    (examples, embeddings) or None
        float32 ``[N, 96, 64]`` and ``[N, 128]`` with the same ``N >= 1``.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            if sorted(data.files) != _ITEM_KEYS:
                return None
            meta = json.loads(str(data["meta"]))
            if fingerprint is not None and meta != fingerprint:
                return None
            examples, embeddings = data["examples"], data["embeddings"]  # reading checks the zip CRCs
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile):
        return None
    if (examples.dtype != np.float32 or embeddings.dtype != np.float32 or examples.ndim != 3
            or examples.shape[1:] != (spec.NUM_FRAMES, spec.NUM_BANDS) or examples.shape[0] < 1
            or embeddings.shape != (examples.shape[0], spec.EMBEDDING_SIZE)
            or not np.all(np.isfinite(examples)) or not np.all(np.isfinite(embeddings))):
        return None
    return examples, embeddings


def write_item(path, examples, embeddings, fingerprint):
    """Write one item atomically (see :func:`atomic_write`).

    Raises
    ------
    OSError
        The item cannot be written; no partial file is left.
    """
    atomic_write(path, lambda handle: np.savez(
        handle, examples=np.asarray(examples, dtype=np.float32),
        embeddings=np.asarray(embeddings, dtype=np.float32), meta=np.array(json.dumps(fingerprint))))


_HINTS = {errno.ENOSPC: "free some disk space", errno.EDQUOT: "free some quota",
          errno.EACCES: "fix the permissions", errno.EPERM: "fix the permissions",
          errno.EROFS: "choose a writable --out"}


def output_error(path, exc, done):
    """The :class:`~warblr.errors.OutputError` for an ``OSError`` while writing ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        What could not be written.
    exc : OSError
    done : int
        Finished items kept on disk.

    Returns
    -------
    OutputError
        To be raised ``from exc``.

    Examples
    --------
    >>> error = output_error("out/items", OSError(errno.ENOSPC, "No space left on device"), 3)
    >>> type(error).__name__, str(error).split(". ")[0]
    ('OutputError', 'out/items: cannot write (No space left on device)')
    """
    reason = exc.strerror or str(exc)
    hint = _HINTS.get(exc.errno, "fix the cause")
    return OutputError(f"{path}: cannot write ({reason}). {done} finished item(s) are kept; {hint} and rerun "
                       "the same command to resume.", path=path, kept=done)
