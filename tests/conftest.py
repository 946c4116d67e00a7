"""Shared fixtures for warblr's tests: test-signal generators, a WAV writer, a seeded random model.

Every signal is generated here from a formula and a seed; nothing is
downloaded and no expected output is stored.
"""

import numpy as np
import pytest


def _times(seconds, sample_rate):
    return np.arange(int(round(seconds * sample_rate))) / sample_rate


@pytest.fixture
def tone():
    """``tone(freq, seconds, sample_rate, *, amplitude=0.5, phase=0.0)``: a float64 sine ``[samples]``."""

    def make(freq, seconds, sample_rate, *, amplitude=0.5, phase=0.0):
        return amplitude * np.sin(2 * np.pi * freq * _times(seconds, sample_rate) + phase)

    return make


@pytest.fixture
def noise():
    """``noise(seconds, sample_rate, *, channels=None, amplitude=0.5, seed=0)``: uniform white noise.

    ``[samples]`` when ``channels`` is None, else ``[samples, channels]``.
    """

    def make(seconds, sample_rate, *, channels=None, amplitude=0.5, seed=0):
        shape = (int(round(seconds * sample_rate)),) + (() if channels is None else (channels,))
        return np.random.default_rng(seed).uniform(-amplitude, amplitude, shape)

    return make


@pytest.fixture
def chirp():
    """``chirp(f0, f1, seconds, sample_rate, *, amplitude=0.5)``: a linear sweep from f0 to f1 Hz."""

    def make(f0, f1, seconds, sample_rate, *, amplitude=0.5):
        t = _times(seconds, sample_rate)
        return amplitude * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * seconds)))

    return make


@pytest.fixture
def make_wav(tmp_path):
    """``make_wav(data, sample_rate, *, name="audio.wav", subtype=None, format=None) -> Path``.

    Writes ``data`` (``[samples]`` or ``[samples, channels]`` floats) with
    soundfile into ``tmp_path``; ``subtype``/``format`` as in ``soundfile.write``.
    """
    import soundfile as sf

    def make(data, sample_rate, *, name="audio.wav", subtype=None, format=None):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), data, sample_rate, subtype=subtype, format=format)
        return path

    return make


@pytest.fixture(scope="session")
def random_model():
    """VGGish with seeded random weights (seed 0), ReLU kept, eval mode, CPU."""
    from warblr.weights import load_vggish

    return load_vggish("random", seed=0)


@pytest.fixture(scope="session")
def random_provenance(random_model):
    """The weights provenance of ``random_model``, as :func:`warblr.weights.load_with_provenance` states it."""
    from warblr.weights import WeightsProvenance

    return WeightsProvenance(requested="random", source=random_model.weights_source, pretrained=False,
                             final_relu=True, seed=0)
