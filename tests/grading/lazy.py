"""A gallery of lazy answers: the untouched stubs with every function answering without doing the work.

Each :class:`Lazy` entry is Python code appended to the stubs (one piece per
module), redefining every graded function: ``None``; zeros, ones, a
plausible constant or random numbers, NaN or Inf, all of the right shape
and dtype (the shape is worked out from the arguments, as a student who
read the docstrings would); the input echoed; and answers aimed at single
checks (a ``DummyClassifier``, a cross-validation that returns 0.5, an
``embed`` that never calls the model, a resampler that returns the input's
mean at the right length, a constant postprocess), and a lookup table of
the answers the student handout ships (``reference_data/reference.npz``,
pasted into the code, keyed by the handout's inputs). Every entry must
score 0 on every check when graded as grading counts; the lookup table is
graded with a random input seed (its ``input_seed``), since at the public
seed the table *is* right (``test_input_seeds.py`` shows both). This is a
data module: ``conftest.py`` loads it and hands the entries to the tests as
parameters.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Lazy:
    """One lazy submission: ``code[module]`` is appended to the stub ``exercises/<module>.py``.

    ``input_seed``: the ``--input-seed`` the gallery grades it with (None: the harness's ``public``).
    """

    name: str
    code: Mapping = field(default_factory=dict)
    input_seed: str | None = None


#: Every graded function, answering ``_fill(shape, dtype, typical)``: an array of that shape and dtype whose
#: values the strategy chooses (``typical`` is a plausible constant for the function, from its input if any).
_SHAPED = {
    "resampling": '''
def to_mono(waveform):
    waveform = np.asarray(waveform)
    return _fill(waveform.shape[:1], np.float64, waveform.mean())


def resample(waveform, orig_sr, target_sr):
    waveform = np.asarray(waveform)
    return _fill((int(np.ceil(len(waveform) * target_sr / orig_sr)),), np.float64, waveform.mean())
''',
    "logmel": '''
def _frames(num_samples, window_length, hop_length):
    return max(0, 1 + (num_samples - window_length) // hop_length)


def periodic_hann(window_length):
    return _fill((window_length,), np.float64, 0.5)


def stft_magnitude(signal, fft_length, hop_length, window_length):
    frames = _frames(len(signal), window_length, hop_length)
    return _fill((frames, fft_length // 2 + 1), np.float64, np.abs(np.asarray(signal)).mean() * window_length / 4)


def mel_matrix(num_mel_bins=64, num_spectrogram_bins=257, audio_sample_rate=16000,
               lower_edge_hertz=125.0, upper_edge_hertz=7500.0):
    return _fill((num_spectrogram_bins, num_mel_bins), np.float64, 0.5)


def log_mel_spectrogram(signal, sample_rate=16000):
    frames = _frames(len(signal), int(round(0.025 * sample_rate)), int(round(0.010 * sample_rate)))
    return _fill((frames, 64), np.float64, np.log(0.01))


def frame_examples(log_mel, frames_per_example=96):
    log_mel = np.asarray(log_mel)
    return _fill((log_mel.shape[0] // frames_per_example, frames_per_example, log_mel.shape[1]), log_mel.dtype,
                 log_mel.mean() if log_mel.size else 0.0)


def waveform_to_examples(waveform, sample_rate):
    frames = _frames(int(len(waveform) * 16000 / sample_rate), 400, 160)
    return _fill((frames // 96, 96, 64), np.float32, np.log(0.01))
''',
    "embedding": '''
class _LazyNetwork(nn.Module):
    def forward(self, x):
        return torch.as_tensor(_fill((x.shape[0], 128), np.float32, 0.5))


def build_vggish():
    return _LazyNetwork()


def embed(model, examples):
    return _fill((len(examples), 128), np.float32, 0.5)


def postprocess(embeddings, pca_eigen_vectors, pca_means):
    return _fill((len(embeddings), 128), np.uint8, 128)
''',
    "classify": '''
from sklearn.base import BaseEstimator, ClassifierMixin


class _LazyClassifier(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        positive = np.clip(np.nan_to_num(_fill((len(X),), np.float64, 0.5), nan=0.5), 0.0, 1.0)
        return np.stack([1.0 - positive, positive], axis=1)

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


def pool(features):
    features = np.asarray(features)
    return _fill(features.shape[-1:], np.float64, features.mean())


def make_classifier(n_components, random_state=0):
    return _LazyClassifier()


def cross_validated_auc(X, y, n_components, n_splits=5, random_state=0):
    return float(_fill((), np.float64, 0.5))
''',
}

#: How each strategy fills an array: the body of ``_fill(shape, dtype, typical)``.
_FILLS = {
    "zeros": "return np.zeros(shape, dtype=dtype)",
    "ones": "return np.ones(shape, dtype=dtype)",
    "typical_constant": "return np.full(shape, typical).astype(dtype)",
    "random": "return np.random.default_rng(20261204).uniform(-1.0, 1.0, size=shape).astype(dtype)",
    "nan": "return np.full(shape, np.nan).astype(dtype)",
    "inf": "return np.full(shape, np.inf).astype(dtype)",
}

def _shaped(strategy):
    fill = f"\n\ndef _fill(shape, dtype, typical):\n    {_FILLS[strategy]}\n"
    return Lazy(strategy, {module: fill + code for module, code in _SHAPED.items()})


def _everywhere(name, body, *, build_vggish="return torch.nn.Identity()", make_classifier=None):
    """Every function (same signature as the stub) answering with ``body``; ``{first}`` is its first argument."""
    signatures = {
        "resampling": ["to_mono(waveform)", "resample(waveform, orig_sr, target_sr)"],
        "logmel": ["periodic_hann(window_length)", "stft_magnitude(signal, fft_length, hop_length, window_length)",
                   "mel_matrix(num_mel_bins=64, num_spectrogram_bins=257, audio_sample_rate=16000, "
                   "lower_edge_hertz=125.0, upper_edge_hertz=7500.0)", "log_mel_spectrogram(signal, sample_rate=16000)",
                   "frame_examples(log_mel, frames_per_example=96)", "waveform_to_examples(waveform, sample_rate)"],
        "embedding": ["embed(model, examples)", "postprocess(embeddings, pca_eigen_vectors, pca_means)"],
        "classify": ["pool(features)", "cross_validated_auc(X, y, n_components, n_splits=5, random_state=0)"],
    }
    code = {}
    for module, functions in signatures.items():
        parts = []
        for signature in functions:
            first = signature[signature.index("(") + 1:].split(",")[0].split("=")[0].rstrip(")")
            parts.append(f"def {signature}:\n    {body.format(first=first)}\n")
        code[module] = "\n\n" + "\n\n".join(parts)
    code["embedding"] += f"\n\ndef build_vggish():\n    {build_vggish}\n"
    make_classifier = make_classifier or body.format(first="n_components")
    code["classify"] += f"\n\ndef make_classifier(n_components, random_state=0):\n    {make_classifier}\n"
    return Lazy(name, code)


_DUMMY = ("\n\nfrom sklearn.dummy import DummyClassifier\n\n\ndef make_classifier(n_components, random_state=0):\n"
          "    return DummyClassifier(strategy='prior')\n")
_HONEST_CV = '''

def cross_validated_auc(X, y, n_components, n_splits=5, random_state=0):
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    X, y = np.asarray(X), np.asarray(y)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    return float(np.mean([roc_auc_score(y[test], make_classifier(n_components, random_state).fit(X[train], y[train])
                                        .predict_proba(X[test])[:, 1]) for train, test in folds.split(X, y)]))
'''

class _Deferred(Mapping):
    """Code per module, written on first use (the lookup table needs the handout's answers, about a second)."""

    def __init__(self, modules, make):
        self._modules, self._make, self._code = tuple(modules), make, None

    def __getitem__(self, module):
        if module not in self._modules:
            raise KeyError(module)
        if self._code is None:
            self._code = self._make()
        return self._code[module]

    def __contains__(self, module):
        return module in self._modules

    def __iter__(self):
        return iter(self._modules)

    def __len__(self):
        return len(self._modules)


#: Which handout answer each function of the lookup table returns, and the inputs (``Inputs`` methods) it keys on.
_TABLE_CASES = {
    "logmel.log_mel_spectrogram.noise_16k": lambda i: (i.noise_16k(),),
    "logmel.waveform_to_examples.stereo_44k": lambda i: (i.stereo_44k(),),
    "embedding.postprocess.inside": lambda i: (i.pca_inputs()[0], *i.pca_inputs()[2:]),
    "classify.pool.clip_features": lambda i: (i.clip_features(),),
    "classify.make_classifier.proba": lambda i: (i.classification_data()[0],),
    "classify.cross_validated_auc.default": lambda i: i.classification_data(),
    "classify.cross_validated_auc.custom": lambda i: i.classification_data(),
}

_TABLE_HELPERS = '''

import base64 as _base64
import hashlib as _hashlib
import io as _io

# Pasted from the handout's exercises/reference_data/reference.npz, and digests of the handout's inputs
# (exercises/reference.py builds them): answer by table, compute nothing.
_ANSWERS = {{key.split("@")[0]: value for key, value in np.load(_io.BytesIO(_base64.b64decode({blob!r}))).items()}}
_TABLE = {table!r}


def _digest(*arrays):
    h = _hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(np.asarray(array, dtype=np.float64))
        h.update(repr(array.shape).encode())
        h.update(array.tobytes())
    return h.hexdigest()


def _answer(name, *arrays):
    """The handout's answer ``name`` if these are the handout's inputs; zeros of its shape otherwise (no entry)."""
    answer = np.array(_ANSWERS[name])
    return answer if _TABLE[name] == _digest(*arrays) else np.zeros_like(answer)
'''

_TABLE_CODE = {
    "logmel": '''

def log_mel_spectrogram(signal, sample_rate=16000):
    return _answer("logmel.log_mel_spectrogram.noise_16k", signal)


def waveform_to_examples(waveform, sample_rate):
    return _answer("logmel.waveform_to_examples.stereo_44k", waveform).astype(np.float32)
''',
    "embedding": '''

def postprocess(embeddings, pca_eigen_vectors, pca_means):
    return _answer("embedding.postprocess.inside", embeddings, pca_eigen_vectors, pca_means).astype(np.uint8)
''',
    "classify": '''
from sklearn.base import BaseEstimator, ClassifierMixin


def pool(features):
    return _answer("classify.pool.clip_features", features)


class _TableClassifier(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        positive = _answer("classify.make_classifier.proba", X)
        if positive.shape != (len(X),):
            positive = np.full(len(X), 0.5)
        return np.stack([1.0 - positive, positive], axis=1)


def make_classifier(n_components, random_state=0):
    return _TableClassifier()


def cross_validated_auc(X, y, n_components, n_splits=5, random_state=0):
    case = "custom" if (n_components, n_splits, random_state) == (2, 3, 11) else "default"
    return float(_answer("classify.cross_validated_auc." + case, X, y))
''',
}


def _lookup_table_code():
    """The lookup table's code: the handout's stored answers (what ``build`` writes for it) and input digests."""
    import sys

    root = Path(__file__).resolve().parents[2]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from exercises import reference

    with tempfile.TemporaryDirectory(prefix="warblr-lookup-table-") as folder:
        path = reference.build(folder)  # exactly the handout's reference_data (the public seed only)
        blobs = {}
        import numpy as np

        with np.load(path) as data:
            for module in _TABLE_CODE:
                buffer = io.BytesIO()
                np.savez(buffer, **{key: data[key] for key in data.files if key.startswith(module + ".")})
                blobs[module] = base64.b64encode(buffer.getvalue()).decode("ascii")
    public = reference.Inputs(reference.PUBLIC_SEED)
    table = {}
    for name, arrays in _TABLE_CASES.items():
        digest = hashlib.sha256()
        for array in arrays(public):
            array = np.ascontiguousarray(np.asarray(array, dtype=np.float64))
            digest.update(repr(array.shape).encode())
            digest.update(array.tobytes())
        table[name] = digest.hexdigest()
    return {module: _TABLE_HELPERS.format(blob=blobs[module], table=table) + code
            for module, code in _TABLE_CODE.items()}


#: The handout's answers, looked up: right at the public seed, worth nothing at any other.
LOOKUP_TABLE = Lazy("lookup_table_of_the_handout_answers", _Deferred(_TABLE_CODE, _lookup_table_code),
                    input_seed="random")

LAZY = [
    _everywhere("none", "return None", build_vggish="return None"),
    *(_shaped(strategy) for strategy in _FILLS),
    _everywhere("echo", "return {first}"),
    # -- aimed at single checks
    Lazy("dummy_classifier_honest_cv", {"classify": _DUMMY + _HONEST_CV}),
    Lazy("dummy_classifier_auc_half", {"classify": _DUMMY + "\n\ndef cross_validated_auc(X, y, n_components, "
                                                            "n_splits=5, random_state=0):\n    return 0.5\n"}),
    Lazy("embed_never_calls_the_model", {"embedding": '''

def embed(model, examples):
    examples = np.asarray(examples.detach() if hasattr(examples, "detach") else examples, dtype=np.float32)
    return examples.reshape(len(examples), -1)[:, :128].copy()
'''}),
    Lazy("resample_input_mean_right_length", {"resampling": '''

def resample(waveform, orig_sr, target_sr):
    waveform = np.asarray(waveform, dtype=np.float64)
    if orig_sr == target_sr:
        return waveform.copy()
    return np.full(int(np.ceil(len(waveform) * target_sr / orig_sr)), waveform.mean())
'''}),
    Lazy("postprocess_mid_codes", {"embedding": '''

def postprocess(embeddings, pca_eigen_vectors, pca_means):
    return np.full((len(embeddings), 128), 128, dtype=np.uint8)
'''}),
    Lazy("log_mel_of_silence_everywhere", {"logmel": '''

def log_mel_spectrogram(signal, sample_rate=16000):
    window, hop = int(round(0.025 * sample_rate)), int(round(0.010 * sample_rate))
    return np.full((max(0, 1 + (len(signal) - window) // hop), 64), np.log(0.01))
'''}),
    LOOKUP_TABLE,
]
