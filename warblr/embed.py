"""Batched embedding of many clips: the engine behind extract, analyse and bench.

(First version: one clip at a time through the numpy reference; the
batched, device-aware path replaces the internals, not the signatures.)
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import InvalidArgumentError
from .features import waveform_to_examples

__all__ = ["batch_examples", "batch_embeddings", "embed_examples"]


def batch_examples(clips, *, resampler="kaiser_best"):
    """VGGish examples for many clips.

    Parameters
    ----------
    clips : sequence of (waveform, sample_rate)

    Returns
    -------
    list of np.ndarray
        One float32 ``[N_i, 96, 64]`` per clip.
    """
    return [waveform_to_examples(w, sr, name=f"clips[{i}]", resampler=resampler)
            for i, (w, sr) in enumerate(clips)]


@torch.inference_mode()
def embed_examples(model, examples, *, batch_size=64):
    """Run ``[N, 96, 64]`` examples through ``model`` in batches; float32 ``[N, 128]``."""
    examples = np.asarray(examples, dtype=np.float32)
    if examples.ndim != 3:
        raise InvalidArgumentError(f"examples: expected [N, 96, 64], got shape {examples.shape}")
    device = next(model.parameters()).device
    out = [model(torch.from_numpy(examples[i:i + batch_size]).to(device)).float().cpu().numpy()
           for i in range(0, len(examples), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 128), np.float32)


def batch_embeddings(clips, model, *, batch_size=64, resampler="kaiser_best"):
    """VGGish embeddings for many clips: one float32 ``[N_i, 128]`` per clip."""
    per_clip = batch_examples(clips, resampler=resampler)
    flat = embed_examples(model, np.concatenate(per_clip), batch_size=batch_size)
    return np.split(flat, np.cumsum([len(e) for e in per_clip])[:-1])
