"""Post-training static int8 VGGish: calibrated on a fixed clip set, deterministic, cached with its provenance.

The convolutions (all but the first) and the three fully connected layers
are quantised with PyTorch's own FX-mode static quantisation on the ``x86``
backend (FBGEMM/oneDNN kernels: VNNI where the CPU has it, AVX2 otherwise):
int8 weights per output channel, uint8 activations per tensor with
``reduce_range`` (7-bit), which keeps AVX2's 16-bit accumulation from
saturating. The first convolution stays float32: its input is the log-mel
itself (one channel, 0.4 % of the multiply-adds), and quantising it to
7 bits was the largest single error. Activation ranges come from a
histogram observer run over :data:`CALIBRATION`, a fixed set of clips made
by the demo-corpus generator (:func:`warblr.lab.corpus.synthesize_clip`)
with seeds of its own, so the demo corpus the AUC is measured on is not the
calibration set.

Building means one float32 pass over the calibration examples; the result
is saved as a ``state_dict`` in a file named by a hash of its provenance
(weights digest, final ReLU, calibration set, torch version, backend,
format), next to the float weights (the weights file's folder, or the torch
hub checkpoint folder for seeded random weights). A changed input therefore
names another file and the int8 model is rebuilt; a file whose recorded
provenance disagrees with its name is rebuilt too.

Why FX mode: PT2E with the x86 Inductor quantiser (now in torchao) needed
35 s of ``torch.compile`` here and then ran slower than float32 (43.9 against
36.7 ms per example, 2 loaded cores), while FX-mode int8 ran 4x faster than
float32 with no compilation. torch 2.13 warns that quantised tensors (which
FX mode produces) are deprecated in favour of torchao; the warning is
silenced here, and the day they go, PT2E (torchao) is the road.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import spec
from .chunks import run_in_chunks
from .errors import InvalidArgumentError

__all__ = ["BACKEND", "CALIBRATION", "FORMAT_VERSION", "QuantizedVGGish", "calibration_clips",
           "calibration_examples", "weights_digest", "provenance", "default_cache_dir", "cache_path",
           "build_quantized", "load_quantized"]

#: torch.ao.quantization backend (quantised engine and default qconfig).
BACKEND = "x86"
#: The calibration set: demo-corpus clips at 16 kHz (no resampling, so the set is cheap to make).
CALIBRATION = {"generator": "warblr.lab.corpus.synthesize_clip", "clips": 12, "seconds": 8.0,
               "sample_rate": spec.SAMPLE_RATE, "seed": 2021, "birds": "every other clip, the first has one"}
#: Bump when the saved layout, the quantisation recipe or the calibration log-mel's bytes change
#: (2: the log-mel's magnitude is sqrt(re^2 + im^2)).
FORMAT_VERSION = 2
#: Float layers: the first convolution (its input is the raw log-mel).
FLOAT_LAYERS = ("features.0",)
#: Examples per int8 forward call: larger batches fell out of cache (2-core EPYC, measured 32-64 best).
INT8_CHUNK = 32


class _Flat(nn.Module):
    """VGGish's forward as one traceable graph: conv stack, NHWC flatten, FC head."""

    def __init__(self, model):
        super().__init__()
        self.features = model.features
        self.embeddings = model.embeddings

    def forward(self, examples):
        maps = self.features(examples)
        return self.embeddings(maps.permute(0, 2, 3, 1).reshape(maps.shape[0], -1))


class QuantizedVGGish(nn.Module):
    """int8 VGGish: float32 ``[N, 1, 96, 64]`` (or ``[N, 96, 64]``) log-mel in, float32 ``[N, 128]`` out.

    Attributes
    ----------
    provenance : dict
        What it was built from (see :func:`provenance`).
    cache_file : str or None
        The file it was loaded from or saved to (None when not cached).
    built : bool
        True when this call calibrated it, False when it was read from the cache.
    """

    def __init__(self, graph, provenance, *, cache_file=None, built=True):
        super().__init__()
        self.graph = graph
        self.provenance = provenance
        self.cache_file = cache_file
        self.built = built

    def forward(self, examples):
        if examples.dim() == 3:
            examples = examples.unsqueeze(1)
        examples = examples.float().contiguous(memory_format=torch.channels_last)
        if examples.shape[0] == 0:
            return examples.new_zeros((0, spec.EMBEDDING_SIZE))
        with _quantized_engine():
            return run_in_chunks(self.graph, examples, INT8_CHUNK)


@contextlib.contextmanager
def _quantized_engine():
    """Use :data:`BACKEND`'s kernels inside the block; FX mode's deprecation notices are not the user's concern."""
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = BACKEND
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao")
            warnings.filterwarnings("ignore", message="TypedStorage is deprecated", category=UserWarning)
            # torch 2.13 deprecates quantised tensors (torchao's PT2E is their successor; see the module notes).
            warnings.filterwarnings("ignore", message=".*quantized tensor creation functions", category=UserWarning)
            yield
    finally:
        torch.backends.quantized.engine = previous


def calibration_clips():
    """The :data:`CALIBRATION` clips, ``(waveform, 16000)`` pairs, the same on every call.

    Examples
    --------
    >>> clips = calibration_clips()
    >>> len(clips), clips[0][0].shape, clips[0][1]
    (12, (128000,), 16000)
    """
    from .lab.corpus import synthesize_clip

    seeds = np.random.SeedSequence(CALIBRATION["seed"]).spawn(CALIBRATION["clips"])
    return [(synthesize_clip(has_bird=i % 2 == 0, seed=seed, duration=CALIBRATION["seconds"],
                             sample_rate=CALIBRATION["sample_rate"]).mixture, CALIBRATION["sample_rate"])
            for i, seed in enumerate(seeds)]


def calibration_examples():
    """float32 ``[N, 96, 64]`` log-mel examples of :func:`calibration_clips` (96 examples)."""
    from .fast import examples_torch

    waveforms = torch.from_numpy(np.stack([w for w, _ in calibration_clips()]))
    return examples_torch(waveforms, dtype=torch.float32).reshape(-1, spec.NUM_FRAMES, spec.NUM_BANDS)


def weights_digest(model):
    """SHA-256 of a model's ``state_dict``: names, dtypes, shapes and bytes, in key order.

    Examples
    --------
    >>> from warblr.weights import load_vggish
    >>> weights_digest(load_vggish("random", seed=1)) == weights_digest(load_vggish("random", seed=1))
    True
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def provenance(model):
    """Everything an int8 VGGish's bytes follow from, as JSON-ready values.

    Returns
    -------
    dict
        ``format``, ``weights_sha256``, ``weights_source``, ``final_relu``,
        ``calibration`` (:data:`CALIBRATION` and the generator version),
        ``torch``, ``backend``, ``float_layers``.
    """
    from .lab.corpus import GENERATOR_VERSION

    return {"format": FORMAT_VERSION, "weights_sha256": weights_digest(model),
            "weights_source": str(getattr(model, "weights_source", "unknown")),
            "final_relu": bool(getattr(model, "final_relu", True)),
            "calibration": {**CALIBRATION, "generator_version": GENERATOR_VERSION},
            "torch": str(torch.__version__), "backend": BACKEND, "float_layers": list(FLOAT_LAYERS)}


def default_cache_dir(model):
    """Next to the float weights: the weights file's folder, else the torch hub checkpoint folder."""
    from .weights import hub_checkpoint_dir

    source = Path(str(getattr(model, "weights_source", "")))
    if getattr(model, "pretrained", False) and source.is_file():
        return source.parent
    return hub_checkpoint_dir()


def _key(record):
    return hashlib.sha256(json.dumps({k: v for k, v in record.items() if k != "weights_source"},
                                     sort_keys=True).encode()).hexdigest()


def _cache_file(model, record, cache_dir):
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir(model)
    return folder / f"vggish-int8-{_key(record)[:16]}.pt"


def cache_path(model, cache_dir=None):
    """Where :func:`load_quantized` keeps ``model``'s int8 version: ``vggish-int8-<provenance hash>.pt``."""
    return _cache_file(model, provenance(model), cache_dir)


def _float_model(model):
    params = list(model.parameters())
    if not params or not hasattr(model, "features") or not hasattr(model, "embeddings"):
        raise InvalidArgumentError("model: expected a VGGish module (features, embeddings) with parameters")
    return _Flat(copy.deepcopy(model).float().cpu().eval())


def _prepared(model):
    """The FX-prepared float graph (observers inserted) of ``model``."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx

    mapping = get_default_qconfig_mapping(BACKEND)
    for name in FLOAT_LAYERS:
        mapping.set_module_name(name, None)
    example = torch.zeros(1, 1, spec.NUM_FRAMES, spec.NUM_BANDS).contiguous(memory_format=torch.channels_last)
    return prepare_fx(_float_model(model).to(memory_format=torch.channels_last), mapping, example_inputs=(example,))


def build_quantized(model, *, examples=None):
    """Calibrate and convert ``model`` to int8 (no cache).

    Parameters
    ----------
    model : warblr.model.VGGish
        Not modified.
    examples : array_like, optional, keyword-only
        ``[N, 96, 64]`` calibration examples; default :func:`calibration_examples`.

    Returns
    -------
    QuantizedVGGish
        Bit-identical on every call with the same inputs on one machine.

    Examples
    --------
    >>> from warblr.weights import load_vggish
    >>> net = build_quantized(load_vggish("random"), examples=np.zeros((2, 96, 64), np.float32))
    >>> net(torch.zeros(3, 96, 64)).shape
    torch.Size([3, 128])
    """
    from torch.ao.quantization.quantize_fx import convert_fx

    examples = calibration_examples() if examples is None else torch.as_tensor(np.asarray(examples, np.float32))
    with _quantized_engine(), torch.no_grad():  # not inference mode: its tensors would be unusable outside it
        prepared = _prepared(model)
        batch = examples.unsqueeze(1).contiguous(memory_format=torch.channels_last)
        for start in range(0, batch.shape[0], INT8_CHUNK):  # fixed order: the histograms are order-dependent
            prepared(batch[start:start + INT8_CHUNK])
        graph = convert_fx(prepared)
    return QuantizedVGGish(graph.eval(), provenance(model))


def _read_cached(path, record, model):
    """The cached int8 model at ``path`` if it was built from ``record``, else None."""
    from torch.ao.quantization.quantize_fx import convert_fx

    try:
        with _quantized_engine():
            saved = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, TypeError, pickle.UnpicklingError):
        return None
    if not isinstance(saved, dict) or saved.get("provenance") != json.loads(json.dumps(record)):
        return None
    with _quantized_engine(), torch.no_grad():  # not inference mode: its tensors would be unusable outside it
        graph = convert_fx(_prepared(model))  # the same structure; the saved state fills in every number
        try:
            graph.load_state_dict(saved["state_dict"], strict=True)
        except (RuntimeError, KeyError, TypeError):
            return None
    return QuantizedVGGish(graph.eval(), record, cache_file=str(path), built=False)


def load_quantized(model, *, cache_dir=None, cache=True):
    """``model``'s int8 version: read from the cache when its provenance matches, else built and cached.

    Parameters
    ----------
    model : warblr.model.VGGish
    cache_dir : str or os.PathLike, optional, keyword-only
        Default :func:`default_cache_dir` (next to the float weights).
    cache : bool, keyword-only
        False builds it without reading or writing a file.

    Returns
    -------
    QuantizedVGGish
        ``built`` says whether it was calibrated now; ``cache_file`` where it is kept.

    Examples
    --------
    >>> import tempfile
    >>> from warblr.weights import load_vggish
    >>> folder = tempfile.mkdtemp()
    >>> load_quantized(load_vggish("random"), cache_dir=folder).built
    True
    >>> load_quantized(load_vggish("random"), cache_dir=folder).built
    False
    """
    from .fileio import atomic_write

    if not cache:
        return build_quantized(model)
    record = provenance(model)
    path = _cache_file(model, record, cache_dir)
    if path.is_file():
        cached = _read_cached(path, record, model)
        if cached is not None:
            return cached
    network = build_quantized(model)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: torch.save({"provenance": record, "state_dict": network.graph.state_dict()},
                                                     handle))
        network.cache_file = str(path)
    except OSError as exc:  # a read-only weights folder: run uncached, say so once
        warnings.warn(f"int8 VGGish not cached ({path}: {exc.strerror or exc}); it is rebuilt on every run",
                      RuntimeWarning, stacklevel=2)
    return network
