"""solutions/ against torchvggish, librosa and scikit-learn directly (no grading plugin), and the exercise contract."""

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.model_selection import StratifiedKFold, cross_val_score
from torchvggish import mel_features, vggish_input
from torchvggish.torchvggish import VGG, Postprocessor, make_layers

from exercises import reference
from solutions import classify, embedding, logmel, resampling

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = {
    "resampling": ["to_mono", "resample"],
    "logmel": ["periodic_hann", "stft_magnitude", "mel_matrix", "log_mel_spectrogram", "frame_examples",
               "waveform_to_examples"],
    "embedding": ["build_vggish", "embed", "postprocess"],
    "classify": ["pool", "make_classifier", "cross_validated_auc"],
}
LOG_MEL = dict(audio_sample_rate=16000, log_offset=0.01, window_length_secs=0.025, hop_length_secs=0.010,
               num_mel_bins=64, lower_edge_hertz=125.0, upper_edge_hertz=7500.0)


@pytest.mark.parametrize("module", sorted(CONTRACT))
def test_exercises_and_solutions_share_the_contract(module):
    import importlib

    exercise = importlib.import_module(f"exercises.{module}")
    solution = importlib.import_module(f"solutions.{module}")
    for name in CONTRACT[module]:
        assert inspect.signature(getattr(exercise, name)) == inspect.signature(getattr(solution, name)), name
        stub = getattr(exercise, name)
        assert len(inspect.getdoc(stub)) > 200, f"exercises.{module}.{name} needs a teaching docstring"
        assert "raise NotImplementedError" in inspect.getsource(stub), f"exercises.{module}.{name} is not a stub"


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
def test_lab_code_never_imports_warblr(folder):
    """Stubs, solutions and reference data never use the engine; the checks use only the grader (warblr.grading)."""
    import re

    for path in sorted((ROOT / folder).glob("*.py")):
        text = path.read_text()
        if path.name.startswith("test_"):
            imports = re.findall(r"^\s*(?:from|import) (warblr\S*)", text, flags=re.MULTILINE)
            assert all(name == "warblr.grading" or name.startswith("warblr.grading.") for name in imports), (path,
                                                                                                          imports)
        else:
            assert "import warblr" not in text and "from warblr" not in text, path


def test_probes_only_build_objects():
    """The worker-side probes construct trusted objects; none imports the engine or a reference library."""
    from warblr.grading import probes

    text = Path(probes.__file__).read_text()
    for forbidden in ("warblr.", "torchvggish", "resampy", "librosa", "sklearn", "time"):
        assert f"import {forbidden}" not in text and f"from {forbidden}" not in text, forbidden
    assert probes.PROBES == ("stand_in_network", "vggish_network", "carrier")


def test_log_mel_equals_torchvggish():
    signal = reference.noise_16k()
    np.testing.assert_allclose(logmel.log_mel_spectrogram(signal), mel_features.log_mel_spectrogram(signal, **LOG_MEL),
                               rtol=1e-12, atol=1e-12)
    expected = mel_features.spectrogram_to_mel_matrix(64, 257, 16000, 125, 7500)
    np.testing.assert_array_equal(logmel.mel_matrix(), expected)
    np.testing.assert_allclose(logmel.periodic_hann(400), mel_features.periodic_hann(400), atol=1e-15)


def test_stft_equals_librosa():
    import librosa

    signal = reference.noise_16k()[:8000]
    expected = np.abs(librosa.stft(np.pad(signal, 56), n_fft=512, hop_length=160, win_length=400, window="hann",
                                   center=False)).T
    np.testing.assert_allclose(logmel.stft_magnitude(signal, 512, 160, 400), expected, rtol=1e-5, atol=1e-5)


def test_examples_equal_torchvggish_at_16k_stereo():
    stereo = np.stack([reference.noise_16k(), 0.3 * reference.noise_16k()[::-1]], axis=1)
    got = logmel.waveform_to_examples(stereo, 16000)
    expected = vggish_input.waveform_to_examples(stereo, 16000, return_tensor=False)
    assert got.dtype == np.float32 and got.shape == expected.shape == (3, 96, 64)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)


def test_examples_close_to_torchvggish_at_44k():
    # torchvggish resamples with resampy, the solution with scipy's resample_poly: equal below ~6.3 kHz.
    got = logmel.waveform_to_examples(reference.stereo_44k(), 44100)
    expected = vggish_input.waveform_to_examples(reference.stereo_44k(), 44100, return_tensor=False)
    assert got.shape == expected.shape == (2, 96, 64)
    np.testing.assert_allclose(got[:, :, :56], expected[:, :, :56], atol=0.05)


def test_resample_agrees_with_soxr():
    import soxr

    signal = reference.tone(3000, 44100, 22050) + reference.tone(500, 44100, 22050, amplitude=0.3)
    ours, theirs = resampling.resample(signal, 44100, 16000), soxr.resample(signal, 44100, 16000)
    assert abs(len(ours) - len(theirs)) <= 1
    n = min(len(ours), len(theirs))
    np.testing.assert_allclose(ours[n // 5:n - n // 5], theirs[n // 5:n - n // 5], atol=5e-3)


def test_vggish_equals_torchvggish():
    torch.manual_seed(0)
    theirs = VGG(make_layers(), postprocess=False).eval()
    ours = embedding.build_vggish()
    ours.load_state_dict(theirs.state_dict())
    examples = vggish_input.waveform_to_examples(reference.noise_16k(), 16000)  # [3, 1, 96, 64], requires_grad
    with torch.no_grad():
        expected = theirs(examples).numpy()
    got = embedding.embed(ours, examples)
    assert got.dtype == np.float32 and got.shape == (3, 128)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(embedding.embed(ours, examples[:, 0].detach().numpy()), got, rtol=1e-6, atol=1e-7)


def test_postprocess_equals_torchvggish():
    inside, beyond, eigen_vectors, means = reference.pca_inputs()
    post = Postprocessor.__new__(Postprocessor)
    post._pca_matrix = torch.as_tensor(eigen_vectors)
    post._pca_means = torch.as_tensor(means.reshape(-1, 1))
    for embeddings in (inside, beyond):
        got = embedding.postprocess(embeddings, eigen_vectors, means).astype(int)
        expected = post.postprocess(torch.as_tensor(embeddings)).numpy().astype(int)
        assert np.abs(got - expected).max() <= 1 and np.mean(got != expected) < 0.01


def test_cross_validated_auc_equals_sklearn():
    X, y = reference.classification_data()
    expected = cross_val_score(classify.make_classifier(3, random_state=4), X, y, scoring="roc_auc",
                               cv=StratifiedKFold(4, shuffle=True, random_state=4)).mean()
    assert classify.cross_validated_auc(X, y, 3, n_splits=4, random_state=4) == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(classify.pool(reference.clip_features()), reference.clip_features().mean(axis=(0, 1)))


def test_reference_data_round_trip(tmp_path):
    """build() stores exactly what the live reference computes at each input seed, and the stored copy loads back."""
    path = reference.build(tmp_path, seeds=[reference.PUBLIC_SEED, 77])
    stored, live = reference.Reference.from_data(tmp_path), reference.Reference.from_solutions()
    assert path.is_file() and (tmp_path / "manifest.json").is_file()
    assert stored.seeds == [reference.PUBLIC_SEED, 77] and live.seeds is None
    for name in reference.REFERENCE_CASES:
        np.testing.assert_array_equal(stored(name), live(name))
        np.testing.assert_array_equal(stored(name, 77), live(name, 77))
        assert not np.array_equal(stored(name, 77), stored(name)), name  # the seed reaches every case


def test_vggish_probe_equals_torchvggish():
    """The VGGish the checks hand to embed (built from torch.nn in the worker) computes torchvggish's forward pass."""
    from warblr.grading import probes

    examples = torch.as_tensor(np.random.default_rng(3).standard_normal((2, 1, 96, 64)), dtype=torch.float32)
    with torch.no_grad():
        got = probes.vggish_network(reference.seeded_vggish_state(0))(examples)
        expected = reference.torchvggish_vgg(0)(examples)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_stand_in_network_output_tells_how_it_was_called():
    """The checks read batch size, autograd and training mode back from the stand-in's output, row by row."""
    from exercises.test_embedding import read_marks
    from warblr.grading import probes

    network, own_copy = probes.stand_in_network(seed=4), probes.stand_in_network(seed=4)
    examples = np.random.default_rng(4).standard_normal((7, 96, 64)).astype(np.float32)
    batch = torch.from_numpy(examples)[:, None]
    trained = torch.cat([network(batch[:3]), network(batch[3:])]).detach()   # training mode, autograd on
    with torch.no_grad():
        inferred = network.eval()(batch)
    for returned, sizes, flag in ((trained, [3] * 3 + [4] * 4, 1.0), (inferred, [7] * 7, 0.0)):
        marks = read_marks(returned, examples, own_copy)
        np.testing.assert_allclose(marks["batch_size"], sizes, atol=1e-3)
        np.testing.assert_allclose(marks["autograd"], flag, atol=1e-3)
        np.testing.assert_allclose(marks["training"], flag, atol=1e-3)
        assert marks["error"].max() < 1e-4
    wrong = read_marks(np.zeros((7, 128), dtype=np.float32), examples, own_copy)
    assert wrong["error"].min() > 1e-2  # zeros are not the network's output
