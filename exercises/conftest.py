"""Fixtures for the graded checks: reference values and a shared, seeded VGGish.

The ``impl`` fixture (the implementation being graded) and the ``points``,
``hint`` and ``visibility`` markers come from the grading plugin.
"""

import pytest

from . import reference as _reference


@pytest.fixture(scope="session")
def reference():
    """Reference values by name (``reference("logmel.log_mel_spectrogram.noise_16k")``).

    Computed from ``solutions/`` when it sits next to ``exercises/``,
    otherwise loaded from ``exercises/reference_data/`` (the student handout).
    """
    return _reference.Reference.discover()


@pytest.fixture(scope="session")
def vggish_state():
    """A seeded random torchvggish state_dict shared by every model comparison (read-only)."""
    return _reference.seeded_vggish_state(seed=0)


@pytest.fixture(scope="session")
def torchvggish_model():
    """torchvggish's own ``VGG`` (no postprocessing) with the shared weights, in eval mode."""
    return _reference.torchvggish_vgg(seed=0)


@pytest.fixture(scope="session")
def log_mel_examples():
    """Six realistic float32 ``[6, 96, 64]`` examples: torchvggish's front end on seeded audio."""
    import numpy as np
    from torchvggish import vggish_input

    noise = _reference.noise_16k()
    parts = [vggish_input.waveform_to_examples(audio, 16000, return_tensor=False)
             for audio in (noise, noise[::-1].copy())]
    return np.concatenate(parts).astype(np.float32)
