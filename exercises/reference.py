"""Fixed, seeded inputs for the graded checks and the reference values computed from them.

In the instructor repository the ``reference`` fixture (``conftest.py``)
computes every value live from ``solutions/``. A student handout has no
``solutions/``: :func:`build` computes the same values once and stores them
in ``reference_data/reference.npz``, which the fixture then loads, so the
handout's checks run offline.

Only inputs built here (seeded, deterministic) are compared with the
solutions; hypothesis-driven checks compare with torchvggish, librosa or
closed-form properties instead. This module also holds the small numeric
helpers the checks share. It never imports ``warblr``.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

EXERCISE_MODULES = ("resampling", "logmel", "embedding", "classify")
DATA_DIR = Path(__file__).resolve().parent / "reference_data"
DATA_FILE = "reference.npz"
SOLUTIONS_DIR = Path(__file__).resolve().parent.parent / "solutions"


# ---------------------------------------------------------------- shared helpers


def to_numpy(value):
    """A numpy array from a numpy array, a list or a (possibly grad-tracking, GPU) torch tensor."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def tone(frequency, sample_rate, num_samples, *, amplitude=1.0, phase=0.0):
    """``amplitude * sin(2 pi f t + phase)`` sampled at ``sample_rate``."""
    t = np.arange(num_samples) / sample_rate
    return amplitude * np.sin(2.0 * np.pi * frequency * t + phase)


def fit_tone(signal, frequency, sample_rate, *, trim=0.2, max_stretch=0.0):
    """Least-squares fit of a tone at ``frequency`` plus DC to the middle of ``signal``.

    Returns ``(amplitude, residual_rms)``; the first and last ``trim`` of the
    signal (filter transients) are ignored. With ``max_stretch`` > 0 the tone
    may be off by up to that relative frequency (the best of 41 candidates
    counts): a resampler that maps the clip onto a whole number of output
    samples (FFT resampling) stretches time by up to half a sample over the
    clip, which shifts a tone's phase by a radian or more at the far end.
    """
    signal = np.asarray(signal, dtype=np.float64)
    cut = int(len(signal) * trim)
    middle = slice(cut, len(signal) - cut)
    t = np.arange(len(signal))[middle] / sample_rate
    best = None
    for scale in 1.0 + np.linspace(-max_stretch, max_stretch, 41 if max_stretch > 0 else 1):
        omega = 2 * np.pi * frequency * scale
        basis = np.stack([np.cos(omega * t), np.sin(omega * t), np.ones_like(t)], axis=1)
        coef, *_ = np.linalg.lstsq(basis, signal[middle], rcond=None)
        residual = float(np.sqrt(np.mean((signal[middle] - basis @ coef) ** 2)))
        if best is None or residual < best[1]:
            best = (float(np.hypot(coef[0], coef[1])), residual)
    return best


def middle_rms(signal, *, trim=0.2):
    """RMS of ``signal`` without its first and last ``trim`` (filter transients)."""
    signal = np.asarray(signal, dtype=np.float64)
    cut = int(len(signal) * trim)
    return float(np.sqrt(np.mean(signal[cut:len(signal) - cut] ** 2)))


@functools.lru_cache(maxsize=2)
def seeded_vggish_state(seed=0):
    """A seeded random torchvggish ``VGG`` state_dict (He-normal weights, small random biases).

    torchvggish's default initialisation shrinks activations layer by layer;
    this keeps every layer alive so a wrong flatten order or a missing layer
    changes the embedding clearly. Built once per process: treat it as read-only.
    """
    import torch
    from torchvggish.torchvggish import VGG, make_layers

    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in VGG(make_layers(), postprocess=False).state_dict().items():
        if key.endswith("bias"):
            state[key] = 0.01 * torch.randn(value.shape, generator=generator)
        else:
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=generator) * (2.0 / fan_in) ** 0.5
    return state


@functools.lru_cache(maxsize=2)
def torchvggish_vgg(seed=0):
    """torchvggish's own ``VGG`` (no postprocessing) with :func:`seeded_vggish_state`, in eval mode.

    Built once per process (checks only run it forward under ``torch.no_grad``).
    """
    from torchvggish.torchvggish import VGG, make_layers

    model = VGG(make_layers(), postprocess=False)
    model.load_state_dict(seeded_vggish_state(seed))
    return model.eval()


# ---------------------------------------------------------------- fixed inputs


@functools.lru_cache(maxsize=None)
def noise_16k():
    """3.3 s of white noise plus a 1 kHz tone at 16 kHz (mono)."""
    rng = np.random.default_rng(1601)
    return 0.1 * rng.standard_normal(52800) + tone(1000.0, 16000, 52800, amplitude=0.3)


@functools.lru_cache(maxsize=None)
def stereo_44k():
    """2.5 s of 44.1 kHz stereo: tones in the passband, noise, and a loud 12 kHz tone that must not alias."""
    rng = np.random.default_rng(4410)
    n, sr = 110250, 44100
    left = tone(440, sr, n, amplitude=0.3) + tone(5000, sr, n, amplitude=0.1) + 0.05 * rng.standard_normal(n)
    right = (tone(1500, sr, n, amplitude=0.2, phase=1.0) + tone(12000, sr, n, amplitude=0.3)
             + 0.05 * rng.standard_normal(n))
    return np.stack([left, right], axis=1)


@functools.lru_cache(maxsize=None)
def clip_features():
    """``[3, 7, 16]`` features: three files of seven frames each, 16 dimensions."""
    return np.random.default_rng(7).normal(loc=2.0, scale=3.0, size=(3, 7, 16))


@functools.lru_cache(maxsize=None)
def classification_data():
    """A seeded, imbalanced (40 % positive), partly learnable data set ``(X [90, 12], y [90])``.

    Columns have very different scales (so standardisation matters) and the
    signal sits in a few of them.
    """
    rng = np.random.default_rng(90)
    y = (rng.random(90) < 0.4).astype(int)
    X = rng.standard_normal((90, 12))
    X[:, :3] += 0.9 * y[:, None] * np.array([1.0, -0.7, 0.5])
    X *= np.geomspace(0.01, 100.0, 12)
    return X, y


@functools.lru_cache(maxsize=None)
def pca_inputs():
    """Embeddings, orthonormal PCA eigenvectors (rows) and means for the postprocessor: in range and beyond."""
    rng = np.random.default_rng(128)
    eigen_vectors, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    means = rng.normal(0.5, 0.3, size=128)
    inside = means + rng.uniform(-1.8, 1.8, size=(24, 128)) @ eigen_vectors  # projections within (-2, 2)
    beyond = means + rng.uniform(-6.0, 6.0, size=(24, 128)) @ eigen_vectors  # many projections need clipping
    return tuple(array.astype(np.float32) for array in (inside, beyond, eigen_vectors, means))


# ---------------------------------------------------------------- reference values

REFERENCE_CASES = {
    "logmel.log_mel_spectrogram.noise_16k":
        lambda s: s.logmel.log_mel_spectrogram(noise_16k(), 16000),
    "logmel.waveform_to_examples.stereo_44k":
        lambda s: s.logmel.waveform_to_examples(stereo_44k(), 44100),
    "embedding.postprocess.inside":
        lambda s: s.embedding.postprocess(pca_inputs()[0], *pca_inputs()[2:]),
    "classify.pool.clip_features":
        lambda s: s.classify.pool(clip_features()),
    "classify.make_classifier.proba":
        lambda s: s.classify.make_classifier(4).fit(*classification_data())
        .predict_proba(classification_data()[0])[:, 1],
    "classify.cross_validated_auc.default":
        lambda s: s.classify.cross_validated_auc(*classification_data(), n_components=4),
    "classify.cross_validated_auc.custom":
        lambda s: s.classify.cross_validated_auc(*classification_data(), n_components=2, n_splits=3, random_state=11),
}


def load_package(folder, alias):
    """Import the package in ``folder`` (its modules may import each other relatively) as ``alias``."""
    folder = Path(folder)
    spec = importlib.util.spec_from_file_location(alias, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[alias] = package
    spec.loader.exec_module(package)
    return SimpleNamespace(**{name: importlib.import_module(f"{alias}.{name}") for name in EXERCISE_MODULES})


def compute(solutions, name):
    """Reference value ``name`` computed with the ``solutions`` namespace (float64 numpy)."""
    return np.asarray(REFERENCE_CASES[name](solutions), dtype=np.float64)


class Reference:
    """Reference values by name: computed live from ``solutions/`` or loaded from stored data.

    Examples
    --------
    >>> Reference.from_solutions()("classify.pool.clip_features").shape  # doctest: +SKIP
    (16,)
    """

    def __init__(self, source, *, solutions=None, stored=None):
        self.source = source
        self._solutions = solutions
        self._stored = stored
        self._cache = {}

    @classmethod
    def from_solutions(cls, folder=SOLUTIONS_DIR):
        return cls(f"solutions ({folder})", solutions=load_package(folder, "warblr_reference_solutions"))

    @classmethod
    def from_data(cls, folder=DATA_DIR):
        with np.load(Path(folder) / DATA_FILE) as data:
            stored = {name: data[name] for name in data.files}
        return cls(f"stored reference data ({folder})", stored=stored)

    @classmethod
    def discover(cls):
        """Solutions when they are next to ``exercises/`` (the repository), else the stored data (a handout)."""
        if (SOLUTIONS_DIR / "__init__.py").is_file():
            return cls.from_solutions()
        if (DATA_DIR / DATA_FILE).is_file():
            return cls.from_data()
        raise FileNotFoundError(
            f"no reference: neither {SOLUTIONS_DIR} nor {DATA_DIR / DATA_FILE} exists "
            "(instructors: build the handout with exercises.reference.build)")

    def __call__(self, name):
        if name not in self._cache:
            if self._stored is not None:
                if name not in self._stored:
                    raise KeyError(f"{name}: not in the stored reference data; "
                                   "rebuild it with exercises.reference.build")
                self._cache[name] = self._stored[name]
            else:
                self._cache[name] = compute(self._solutions, name)
        return self._cache[name]


def build(out_dir, solutions_dir=SOLUTIONS_DIR):
    """Compute every reference value from the solutions and store them for a handout.

    Parameters
    ----------
    out_dir : path
        Where to write ``reference.npz`` and ``manifest.json``; for a handout,
        ``<handout>/exercises/reference_data``.
    solutions_dir : path
        The solutions package folder.

    Returns
    -------
    pathlib.Path
        The ``reference.npz`` written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    solutions = load_package(solutions_dir, "warblr_reference_solutions_build")
    values = {name: compute(solutions, name) for name in REFERENCE_CASES}
    path = out_dir / DATA_FILE
    np.savez(path, **values)
    manifest = {"cases": sorted(values), "numpy": np.__version__,
                "note": "generated from solutions/ by exercises/reference.py:build; do not edit"}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return path
