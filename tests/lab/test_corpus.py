"""The synthetic demo corpus: deterministic, labelled right, cached, readable as warblrb10k."""

import json

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from warblr.lab.corpus import BIRD_BAND_HZ, make_corpus, synthesize_clip
from warblr.lab.dataset import read_dataset
from warblr.errors import InvalidArgumentError, WarblrError

SR = 22050


def band_energy(signal, low, high, sample_rate=SR):
    """Energy in [low, high] Hz by an 8th-order Butterworth band-pass (independent of the generator's FFT mask)."""
    sos = butter(8, [low, high], btype="bandpass", fs=sample_rate, output="sos")
    return float(np.sum(sosfiltfilt(sos, signal) ** 2))


def test_same_seed_same_clip_other_seed_other_clip():
    a = synthesize_clip(has_bird=True, seed=7, duration=2.0, sample_rate=SR)
    b = synthesize_clip(has_bird=True, seed=7, duration=2.0, sample_rate=SR)
    c = synthesize_clip(has_bird=True, seed=8, duration=2.0, sample_rate=SR)
    np.testing.assert_array_equal(a.mixture, b.mixture)
    assert a.info == b.info
    assert not np.allclose(a.mixture, c.mixture)


@pytest.mark.parametrize("seed", range(12))
def test_a_bird_clips_bird_outweighs_its_background_in_2_to_8_khz(seed):
    clip = synthesize_clip(has_bird=True, seed=seed, duration=3.0, sample_rate=SR)
    sung = np.zeros(clip.bird.shape[0], dtype=bool)
    for start, stop in clip.info["spans"]:
        sung[start:stop] = True
    assert sung.any() and np.all(clip.bird[~sung] == 0)
    bird = band_energy(clip.bird * sung, *BIRD_BAND_HZ)
    background = band_energy(clip.background * sung, *BIRD_BAND_HZ)
    assert bird > background
    # The vocalisations live in the bird band: little of their energy is outside it.
    assert band_energy(clip.bird, 50, 1500) < 0.01 * bird


@pytest.mark.parametrize("seed", range(4))
def test_a_no_bird_clip_has_no_bird(seed):
    clip = synthesize_clip(has_bird=False, seed=seed, duration=2.0, sample_rate=SR)
    assert not clip.bird.any() and clip.info["snr_db"] is None
    assert np.all(np.isfinite(clip.mixture)) and np.max(np.abs(clip.mixture)) <= 0.9 + 1e-12
    assert np.std(clip.background) > 0


def test_backgrounds_vary():
    kinds = {synthesize_clip(has_bird=False, seed=s, duration=1.0, sample_rate=SR).info["backgrounds"][0]
             for s in range(30)}
    assert kinds == {"wind", "rain", "traffic", "babble", "hiss"}


def test_corpus_layout_labels_and_cache(tmp_path):
    root, made = make_corpus(tmp_path / "c", n_clips=8, seed=1, duration=1.0, sample_rate=16000)
    assert made
    dataset = read_dataset(root)
    assert len(dataset.items) == 8 and dataset.problems == []
    assert dataset.labels.sum() == 6  # three in four
    stamps = {p: p.stat().st_mtime_ns for p in (root / "wav").iterdir()}
    again, made = make_corpus(root, n_clips=8, seed=1, duration=1.0, sample_rate=16000)
    assert again == root and not made
    assert stamps == {p: p.stat().st_mtime_ns for p in (root / "wav").iterdir()}
    _, made = make_corpus(root, n_clips=8, seed=2, duration=1.0, sample_rate=16000)
    assert made
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["parameters"]["seed"] == 2
    assert len(read_dataset(root).items) == 8


def test_corpus_is_the_same_wherever_it_is_made(tmp_path):
    a, _ = make_corpus(tmp_path / "a", n_clips=4, seed=3, duration=1.0, sample_rate=16000)
    b, _ = make_corpus(tmp_path / "b", n_clips=4, seed=3, duration=1.0, sample_rate=16000)
    assert (a / "metadata.csv").read_text() == (b / "metadata.csv").read_text()
    for wav in (a / "wav").iterdir():
        assert wav.read_bytes() == (b / "wav" / wav.name).read_bytes()


def test_a_damaged_cache_is_rebuilt(tmp_path):
    root, _ = make_corpus(tmp_path / "c", n_clips=4, duration=1.0, sample_rate=16000)
    victim = sorted((root / "wav").iterdir())[0]
    victim.write_bytes(b"oops")
    _, made = make_corpus(root, n_clips=4, duration=1.0, sample_rate=16000)
    assert made and victim.stat().st_size > 4


def test_never_overwrites_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "wav").mkdir()
    (tmp_path / "wav" / "precious.wav").write_bytes(b"data")
    with pytest.raises(WarblrError, match="refusing to overwrite"):
        make_corpus(tmp_path, n_clips=4, duration=1.0, sample_rate=16000)
    assert (tmp_path / "wav" / "precious.wav").read_bytes() == b"data"


@pytest.mark.parametrize("kwargs, what", [
    ({"sample_rate": 8000}, "sample_rate"), ({"duration": 0.5}, "duration")])
def test_bad_parameters(kwargs, what):
    with pytest.raises(InvalidArgumentError, match=what):
        synthesize_clip(has_bird=True, seed=0, **{"duration": 2.0, "sample_rate": SR, **kwargs})
    with pytest.raises(InvalidArgumentError, match="n_clips"):
        make_corpus("unused", n_clips=1)
