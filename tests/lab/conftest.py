"""Fixtures for the lab's tests: small warblrb10k-layout trees of closed-form clips, with planted bad items.

The seeded random model and its provenance are fixtures in the top-level ``tests/conftest.py``.
"""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16000
#: Every bad item :func:`make_tree` plants with ``bad=True``.
BAD_IDS = {"tooshort", "notaudio", "empty", "missing", "../../escape", "badlabel", "orphan"}


def _clip(label, seed, seconds=2.0, family="chirps"):
    """Closed-form stand-ins: noise of random level and colour, plus calls when ``label`` is 1.

    ``family="chirps"``: six 0.25 s downward sweeps from 3-6 kHz in red-ish noise.
    ``family="trills"``: pulsed 2.5-5 kHz tones (40 ms pulses) in noise of another colour,
    a different signal family for cross-dataset tests.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    if family == "chirps":
        noise = np.cumsum(rng.standard_normal(n)) * rng.uniform(0, 0.02) + rng.standard_normal(n)
    else:
        noise = np.convolve(rng.standard_normal(n), np.ones(3) / 3, mode="same") + 0.3 * rng.standard_normal(n)
    signal = noise / np.std(noise) * 10 ** rng.uniform(-2.5, -1.8)
    if label and family == "chirps":
        t = np.arange(int(0.25 * SR)) / SR
        for start in rng.integers(0, n - t.size, 6):
            f = rng.uniform(3000, 6000) - 4000 * t
            signal[start:start + t.size] += 0.1 * np.hanning(t.size) * np.sin(2 * np.pi * np.cumsum(f) / SR)
    elif label:
        pulse = np.arange(int(0.04 * SR)) / SR
        for start in rng.integers(0, n - pulse.size, 10):
            tone = np.sin(2 * np.pi * rng.uniform(2500, 5000) * pulse)
            signal[start:start + pulse.size] += 0.08 * np.hanning(pulse.size) * tone
    return signal


def _make_tree(root, n_bird=12, n_none=8, *, bad=False, seconds=2.0, family="chirps", seed=0):
    """A warblrb10k-layout tree (``item-000`` ... bird first); with ``bad``, the items of :data:`BAD_IDS`.

    ``family`` and ``seed`` choose the clips (see :func:`_clip`); the defaults give the trees most tests use.
    """
    root = Path(root)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    labels = {f"item-{k:03d}": int(k < n_bird) for k in range(n_bird + n_none)}
    for k, (item_id, label) in enumerate(labels.items()):
        sf.write(str(root / "wav" / f"{item_id}.wav"), _clip(label, seed * 10_000 + k, seconds, family), SR,
                 subtype="PCM_16")
    rows = [f"{i},test,{label}" for i, label in labels.items()]
    if bad:
        sf.write(str(root / "wav" / "tooshort.wav"), np.zeros(4000), SR)   # 0.25 s
        (root / "wav" / "notaudio.wav").write_text("hello, I am not a WAV file")
        (root / "wav" / "empty.wav").write_bytes(b"")
        sf.write(str(root / "wav" / "orphan.wav"), np.zeros(SR), SR)       # a file without a row
        rows += ["tooshort,test,1", "notaudio,test,0", "empty,test,1", "missing,test,1",
                 "../../escape,test,1", "badlabel,test,2"]
    (root / "metadata.csv").write_text("itemid,datasetid,hasbird\n" + "\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="session")
def make_tree():
    """``make_tree(root, n_bird=12, n_none=8, *, bad=False, seconds=2.0, family="chirps", seed=0) -> root``.

    A warblrb10k-layout tree.

    Items ``item-000`` ... (bird first), 16 kHz int16 WAV; with ``bad``, also the items of ``bad_ids``.
    """
    return _make_tree


@pytest.fixture(scope="session")
def bad_ids():
    """Every bad item ``make_tree(..., bad=True)`` plants."""
    return frozenset(BAD_IDS)


@pytest.fixture(scope="session")
def write_clip():
    """``write_clip(path, label, seed, **soundfile_options)``: write one of ``make_tree``'s clips at 16 kHz."""

    def write(path, label, seed, **options):
        sf.write(str(path), _clip(label, seed), SR, **options)

    return write
