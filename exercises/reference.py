"""Seeded inputs for the graded checks, the reference values computed from them, and shared helpers.

Every fixed input of the checks (``noise_16k``, ``stereo_44k``,
``clip_features``, ``classification_data``, ``pca_inputs``) is built from an
*input seed*. The grader chooses it (``--input-seed``, in
:mod:`warblr.grading.plugin`) and the checks get the session's inputs from
the ``inputs`` fixture (:class:`Inputs`): the public seed
(:data:`PUBLIC_SEED`, the inputs a handout ships answers for) when students
check themselves, a seed they cannot know when grading counts, so a table of
the handout's answers earns nothing. Called without a seed, each builder
returns the public inputs, bit for bit as before seeds existed.

:class:`Reference` gives the solutions' value of each case in
:data:`REFERENCE_CASES` at a seed: live from ``solutions/`` in the
instructor repository (any seed), or from stored data where there is no
``solutions/`` (only the seeds stored): :func:`build` writes
``reference_data/reference.npz``, with the public seed for the handout and
also secret seeds for the Gradescope package.

Only inputs built here (seeded) are compared with the solutions;
hypothesis-driven checks compare with torchvggish, librosa or closed-form
properties instead. This module never imports ``warblr``.
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
    """A numpy array from a numpy array, numbers, a list or a (possibly grad-tracking, GPU) torch tensor.

    Only a plain ``torch.Tensor`` (or ``Parameter``) is converted by its
    methods, and anything but data is refused: any other object with a
    ``detach`` or an ``__array__`` (a model returned where data was expected,
    a tensor subclass) would run its own code here, after a timed call had
    returned.

    Raises
    ------
    TypeError
        ``value`` is not data.
    """
    import torch

    if type(value) in (torch.Tensor, torch.nn.Parameter):
        value = value.detach().cpu().numpy()
    elif not (type(value) in (np.ndarray, list, tuple, int, float, bool) or isinstance(value, np.generic)):
        raise TypeError(f"expected an array, a tensor or numbers, got a {type(value).__module__}."
                        f"{type(value).__qualname__}")
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


def tone_delay(signal, frequency, sample_rate, *, phase, trim=0.2):
    """How many samples ``signal`` lags ``sin(2 pi frequency t + phase)``, from a fit over its middle.

    Unambiguous within half a period either way (use a slow tone); the first
    and last ``trim`` of the signal (filter transients) are ignored.

    Examples
    --------
    >>> round(tone_delay(tone(50.0, 8000, 4000, phase=0.3)[:-3], 50.0, 8000, phase=0.3), 6)
    0.0
    >>> round(tone_delay(np.r_[np.zeros(7), tone(50.0, 8000, 4000, phase=0.3)], 50.0, 8000, phase=0.3), 6)
    7.0
    """
    signal = np.asarray(signal, dtype=np.float64)
    cut = int(len(signal) * trim)
    middle = slice(cut, len(signal) - cut)
    omega = 2 * np.pi * frequency
    t = np.arange(len(signal))[middle] / sample_rate
    basis = np.stack([np.cos(omega * t), np.sin(omega * t), np.ones_like(t)], axis=1)
    (cos, sin, _), *_ = np.linalg.lstsq(basis, signal[middle], rcond=None)  # A sin(wt + p) = A sin p cos + A cos p sin
    lag = np.angle(np.exp(1j * (phase - np.arctan2(cos, sin))))
    return float(lag / omega * sample_rate)


def middle_rms(signal, *, trim=0.2):
    """RMS of ``signal`` without its first and last ``trim`` (filter transients)."""
    signal = np.asarray(signal, dtype=np.float64)
    cut = int(len(signal) * trim)
    return float(np.sqrt(np.mean(signal[cut:len(signal) - cut] ** 2)))


def assert_matches_reference(got, expected, *, atol, rtol=0.0, what="the solution's"):
    """Assert ``got`` equals ``expected`` within ``atol + rtol * |expected|``, without printing ``expected``.

    The message gives shapes and how many values differ, never the expected
    values: at a secret input seed they would let a student collect the
    answers over repeated submissions.
    """
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise AssertionError(f"shape {got.shape}, expected {expected.shape} (as {what})")
    bad = ~(np.abs(got - expected) <= atol + rtol * np.abs(expected))  # NaN counts as bad
    if bad.any():
        raise AssertionError(f"{int(bad.sum())} of {bad.size} values differ from {what} "
                             f"by more than atol={atol:g}" + (f" + rtol={rtol:g}" if rtol else ""))


def seeded_vggish_state(seed=0):
    """A seeded random torchvggish ``VGG`` state_dict (He-normal weights, small random biases).

    torchvggish's default initialisation shrinks activations layer by layer;
    this keeps every layer alive so a wrong flatten order or a missing layer
    changes the embedding clearly. Built once per process and seed (however
    the seed is passed): treat it as read-only.
    """
    return _seeded_vggish_state(int(seed))


@functools.lru_cache(maxsize=2)
def _seeded_vggish_state(seed):
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


# ---------------------------------------------------------------- seeded inputs

#: The input seed of the handout and of plain self-checks: the inputs every earlier version of the lab used.
PUBLIC_SEED = 0


def _rng(salt, seed):
    """The generator of one input builder: ``default_rng(salt)`` for the public seed, else ``(salt, seed)``."""
    seed = check_seed(seed)
    return np.random.default_rng(salt if seed == PUBLIC_SEED else [salt, seed])


def check_seed(seed):
    """``seed`` as an int in ``[0, 2**63)``; anything else is a ``ValueError``.

    Examples
    --------
    >>> check_seed(7)
    7
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"input seed must be an int in [0, 2**63), got {seed!r}")
    return int(seed)


@functools.lru_cache(maxsize=8)
def noise_16k(seed=PUBLIC_SEED):
    """3.3 s of white noise plus a 1 kHz tone at 16 kHz (mono); the noise depends on ``seed``."""
    rng = _rng(1601, seed)
    return 0.1 * rng.standard_normal(52800) + tone(1000.0, 16000, 52800, amplitude=0.3)


@functools.lru_cache(maxsize=8)
def stereo_44k(seed=PUBLIC_SEED):
    """2.5 s of 44.1 kHz stereo: tones in the passband, noise (from ``seed``), and a loud 12 kHz tone that must not alias."""
    rng = _rng(4410, seed)
    n, sr = 110250, 44100
    left = tone(440, sr, n, amplitude=0.3) + tone(5000, sr, n, amplitude=0.1) + 0.05 * rng.standard_normal(n)
    right = (tone(1500, sr, n, amplitude=0.2, phase=1.0) + tone(12000, sr, n, amplitude=0.3)
             + 0.05 * rng.standard_normal(n))
    return np.stack([left, right], axis=1)


@functools.lru_cache(maxsize=8)
def clip_features(seed=PUBLIC_SEED):
    """``[3, 7, 16]`` features: three files of seven frames each, 16 dimensions."""
    return _rng(7, seed).normal(loc=2.0, scale=3.0, size=(3, 7, 16))


@functools.lru_cache(maxsize=8)
def classification_data(seed=PUBLIC_SEED):
    """A seeded, imbalanced (about 40 % positive), partly learnable data set ``(X [90, 12], y [90])``.

    Columns have very different scales (so standardisation matters) and the
    signal sits in a few of them.
    """
    rng = _rng(90, seed)
    y = (rng.random(90) < 0.4).astype(int)
    X = rng.standard_normal((90, 12))
    X[:, :3] += 0.9 * y[:, None] * np.array([1.0, -0.7, 0.5])
    X *= np.geomspace(0.01, 100.0, 12)
    return X, y


@functools.lru_cache(maxsize=8)
def pca_inputs(seed=PUBLIC_SEED):
    """Embeddings, orthonormal PCA eigenvectors (rows) and means for the postprocessor: in range and beyond."""
    rng = _rng(128, seed)
    eigen_vectors, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    means = rng.normal(0.5, 0.3, size=128)
    inside = means + rng.uniform(-1.8, 1.8, size=(24, 128)) @ eigen_vectors  # projections within (-2, 2)
    beyond = means + rng.uniform(-6.0, 6.0, size=(24, 128)) @ eigen_vectors  # many projections need clipping
    return tuple(array.astype(np.float32) for array in (inside, beyond, eigen_vectors, means))


class Inputs:
    """The seeded inputs of one grading session: every builder above, at one seed.

    The grader chooses the seed (``--input-seed``; see
    :mod:`warblr.grading.plugin`): the public one for self-checks, one the
    student cannot know when grading counts. Built arrays are cached: treat
    them as read-only.

    Parameters
    ----------
    seed : int
        The input seed; :data:`PUBLIC_SEED` gives the handout's inputs.
    live_seed : int, optional
        The seed of the inputs whose answers the checks compute themselves
        (:meth:`rng`; default ``seed``). Where ``seed`` is one of a package's
        stored secret seeds the grader makes it fresh for each run, so
        those inputs never repeat (the builders above, whose answers are
        stored, keep ``seed``).

    Examples
    --------
    >>> Inputs().clip_features().shape
    (3, 7, 16)
    >>> bool((Inputs(5).clip_features() != clip_features()).any())
    True
    """

    def __init__(self, seed=PUBLIC_SEED, *, live_seed=None):
        self.seed = check_seed(seed)
        self.live_seed = self.seed if live_seed is None else check_seed(live_seed)

    @property
    def public(self):
        """Whether these are the public inputs (whose answers the handout ships): checks may then show expected values."""
        return self.seed == PUBLIC_SEED

    def __repr__(self):
        return "Inputs(public)" if self.seed == PUBLIC_SEED else "Inputs(<seed>)"  # never print a secret seed

    def rng(self, salt):
        """A fresh generator for one check's own inputs: ``default_rng(salt)`` for the public seed, else live-seeded.

        Examples
        --------
        >>> bool(Inputs().rng(3).integers(10**6) == np.random.default_rng(3).integers(10**6))
        True
        """
        return _rng(salt, self.live_seed)

    def noise_16k(self):
        return noise_16k(self.seed)

    def stereo_44k(self):
        return stereo_44k(self.seed)

    def clip_features(self):
        return clip_features(self.seed)

    def classification_data(self):
        return classification_data(self.seed)

    def pca_inputs(self):
        return pca_inputs(self.seed)


# ---------------------------------------------------------------- reference values

REFERENCE_CASES = {
    "logmel.log_mel_spectrogram.noise_16k":
        lambda s, i: s.logmel.log_mel_spectrogram(i.noise_16k(), 16000),
    "logmel.waveform_to_examples.stereo_44k":
        lambda s, i: s.logmel.waveform_to_examples(i.stereo_44k(), 44100),
    "embedding.postprocess.inside":
        lambda s, i: s.embedding.postprocess(i.pca_inputs()[0], *i.pca_inputs()[2:]),
    "classify.pool.clip_features":
        lambda s, i: s.classify.pool(i.clip_features()),
    "classify.make_classifier.proba":
        lambda s, i: s.classify.make_classifier(4).fit(*i.classification_data())
        .predict_proba(i.classification_data()[0])[:, 1],
    "classify.cross_validated_auc.default":
        lambda s, i: s.classify.cross_validated_auc(*i.classification_data(), n_components=4),
    "classify.cross_validated_auc.custom":
        lambda s, i: s.classify.cross_validated_auc(*i.classification_data(), n_components=2, n_splits=3,
                                                    random_state=11),
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


def compute(solutions, name, seed=PUBLIC_SEED):
    """Reference value ``name`` at input seed ``seed``, computed with the ``solutions`` namespace (float64 numpy)."""
    return np.asarray(REFERENCE_CASES[name](solutions, Inputs(seed)), dtype=np.float64)


def _key(name, seed):
    return f"{name}@{seed}"


class Reference:
    """Reference values by name and input seed: computed live from ``solutions/`` or loaded from stored data.

    Live, any seed can be computed; stored data answers only the seeds it
    holds (the handout: the public seed; the Gradescope package: the public
    seed and its secret ones) and raises ``LookupError`` for any other.

    Examples
    --------
    >>> Reference.from_solutions()("classify.pool.clip_features", seed=3).shape  # doctest: +SKIP
    (16,)
    """

    def __init__(self, source, *, solutions=None, stored=None):
        self.source = source
        self._solutions = solutions
        self._stored = stored  # {seed: {name: array}}
        self._cache = {}

    @classmethod
    def from_solutions(cls, folder=SOLUTIONS_DIR):
        return cls(f"solutions ({folder})", solutions=load_package(folder, "warblr_reference_solutions"))

    @classmethod
    def from_data(cls, folder=DATA_DIR):
        stored = {}
        with np.load(Path(folder) / DATA_FILE) as data:
            for key in data.files:
                name, _, seed = key.rpartition("@")
                if not name:  # written before input seeds existed: the public seed's values
                    name, seed = key, PUBLIC_SEED
                stored.setdefault(int(seed), {})[name] = data[key]
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

    @property
    def seeds(self):
        """The input seeds this reference can answer: None for any (live), else the stored ones (sorted)."""
        return None if self._stored is None else sorted(self._stored)

    def bind(self, seed):
        """``reference(name)`` at input seed ``seed``: what the checks' ``reference`` fixture hands out."""
        seed = check_seed(seed)
        if self._stored is not None and seed not in self._stored:
            raise LookupError(self._missing(seed))
        return functools.partial(self, seed=seed)

    def _missing(self, seed):
        # Never name the stored seeds: this message can reach a student's results page.
        which = "the public input seed" if seed == PUBLIC_SEED else "this input seed"
        return (f"{which} is not in {self.source} (it holds {len(self._stored)} seed(s)); "
                "rebuild it with exercises.reference.build(..., seeds=...), or grade with --input-seed public")

    def __call__(self, name, seed=PUBLIC_SEED):
        seed = check_seed(seed)
        if (name, seed) not in self._cache:
            if self._stored is not None:
                if seed not in self._stored:
                    raise LookupError(self._missing(seed))
                if name not in self._stored[seed]:
                    raise KeyError(f"{name}: not in the stored reference data; "
                                   "rebuild it with exercises.reference.build")
                self._cache[name, seed] = self._stored[seed][name]
            else:
                self._cache[name, seed] = compute(self._solutions, name, seed)
        return self._cache[name, seed]


def build(out_dir, solutions_dir=SOLUTIONS_DIR, seeds=(PUBLIC_SEED,)):
    """Compute every reference value from the solutions at each input seed and store them.

    Parameters
    ----------
    out_dir : path
        Where to write ``reference.npz`` and ``manifest.json``; for a handout,
        ``<handout>/exercises/reference_data``.
    solutions_dir : path
        The solutions package folder.
    seeds : sequence of int, optional
        The input seeds to store: the handout stores only the public one
        (its checks run offline with it); the Gradescope package also stores
        secret ones, so a graded run can use inputs the students never saw.

    Returns
    -------
    pathlib.Path
        The ``reference.npz`` written.
    """
    seeds = sorted({check_seed(seed) for seed in seeds})
    if not seeds:
        raise ValueError("build: no input seed to store")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    solutions = load_package(solutions_dir, "warblr_reference_solutions_build")
    values = {_key(name, seed): compute(solutions, name, seed) for seed in seeds for name in REFERENCE_CASES}
    path = out_dir / DATA_FILE
    np.savez(path, **values)
    manifest = {"cases": sorted(REFERENCE_CASES), "seeds": seeds, "numpy": np.__version__,
                "note": "generated from solutions/ by exercises/reference.py:build; do not edit"}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def stored_seeds(folder=DATA_DIR):
    """The input seeds stored in ``folder``'s manifest (``[]`` if there is none)."""
    try:
        manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return sorted(int(seed) for seed in manifest.get("seeds", [PUBLIC_SEED]))
