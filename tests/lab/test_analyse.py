"""Pooling per clip, PCA + logistic regression with cross-validated ROC AUC, and the plots."""

import numpy as np
import pytest
from PIL import Image
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from warblr.errors import InvalidArgumentError
from warblr.lab import analyse as analysis
from warblr.lab import plots
from warblr.lab.feature_sets import pool_mean, pool_mean_std_max


def test_pooling_is_the_mean_over_examples():
    rng = np.random.default_rng(0)
    examples = rng.standard_normal((3, 96, 64))
    embeddings = rng.standard_normal((3, 128))
    np.testing.assert_allclose(pool_mean(examples), examples.reshape(-1, 64).mean(axis=0))
    np.testing.assert_allclose(pool_mean(embeddings, what="embeddings"), embeddings.sum(axis=0) / 3)
    with pytest.raises(InvalidArgumentError, match="examples"):
        pool_mean(np.zeros((0, 96, 64)))
    with pytest.raises(InvalidArgumentError, match="embeddings"):
        pool_mean(np.zeros(128), what="embeddings")


def test_stats_pooling_is_each_bands_mean_std_and_max_over_all_frames():
    rng = np.random.default_rng(5)
    examples = rng.standard_normal((3, 96, 64))
    pooled = pool_mean_std_max(examples)
    frames = np.transpose(examples, (2, 0, 1)).reshape(64, -1)  # [bands, all frames of the clip]
    mean = frames.sum(axis=1) / frames.shape[1]
    std = np.sqrt(((frames - mean[:, None]) ** 2).sum(axis=1) / frames.shape[1])  # ddof=0
    expected = np.concatenate([mean, std, np.sort(frames, axis=1)[:, -1]])
    assert pooled.shape == (192,) and pooled.dtype == np.float64
    np.testing.assert_allclose(pooled, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(pooled[:64], pool_mean(examples))
    # Frames of all examples together: a per-example std averaged over examples would differ.
    assert not np.allclose(pooled[64:128], examples.std(axis=1).mean(axis=0))
    with pytest.raises(InvalidArgumentError, match="examples"):
        pool_mean_std_max(np.zeros((0, 96, 64)))
    with pytest.raises(InvalidArgumentError, match="examples"):
        pool_mean_std_max(np.zeros((96, 64)))


def test_one_loud_frame_moves_the_max_and_std_but_hardly_the_mean():
    quiet = np.full((10, 96, 64), -4.0)  # 960 frames of a quiet clip, log(mel + 0.01) scale
    call = quiet.copy()
    call[7, 40, 20] = 2.0  # a single loud frame in band 20
    before, after = pool_mean_std_max(quiet), pool_mean_std_max(call)
    change = (after - before).reshape(3, 64)  # rows: mean, std, max
    assert change[0, 20] == pytest.approx(6.0 / 960)
    assert change[1, 20] == pytest.approx(np.sqrt(959) * 6.0 / 960)  # one outlier of 6 among 960 frames
    assert change[2, 20] == pytest.approx(6.0)
    assert np.all(np.delete(change, 20, axis=1) == 0)
    assert change[2, 20] > 900 * change[0, 20]


def test_cv_auc_matches_a_hand_written_fold_loop():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], [15, 45])
    X = rng.standard_normal((60, 10)) + 0.6 * y[:, None]
    result = analysis.cross_validated_auc(X, y, n_components=3, folds=4, random_state=5)
    expected = []
    for train, test in StratifiedKFold(4, shuffle=True, random_state=5).split(X, y):
        scaler = StandardScaler().fit(X[train])
        pca = PCA(3, random_state=5).fit(scaler.transform(X[train]))
        model = LogisticRegression(max_iter=2000).fit(pca.transform(scaler.transform(X[train])), y[train])
        scores = model.decision_function(pca.transform(scaler.transform(X[test])))
        expected.append(roc_auc_score(y[test], scores))
    np.testing.assert_allclose(result["folds"], expected, rtol=1e-9)
    assert result["mean"] == pytest.approx(np.mean(expected)) and result["std"] == pytest.approx(np.std(expected))
    assert result["scores"].shape == (60,)


def test_random_labels_give_chance_auc():
    """Leakage check: with labels unrelated to the features the cross-validated AUC stays near 0.5."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((160, 64))
    y = rng.permutation(np.repeat([0, 1], [40, 120]))
    best, sweep = analysis.pca_sweep(X, y, folds=5, random_state=0)
    means = [r["mean"] for r in sweep]
    assert abs(np.mean(means) - 0.5) < 0.08
    assert all(abs(m - 0.5) < 0.15 for m in means)
    # The same model scored on its own training data is far above chance: CV is what keeps it honest.
    model = analysis.make_classifier(64).fit(X, y)
    assert roc_auc_score(y, model.decision_function(X)) > 0.8


def test_sweep_caps_sizes_and_picks_the_best():
    assert analysis.pca_sizes(64, 160, 5) == [2, 4, 8, 16, 32, 64]
    assert analysis.pca_sizes(128, 20, 5) == [2, 4, 8, 16]
    assert analysis.pca_sizes(3, 100, 5) == [2]
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 30)
    X = rng.standard_normal((60, 12))
    X[:, :6] += 1.5 * y[:, None]  # a shared direction: high variance, so PCA keeps it
    best, sweep = analysis.pca_sweep(X, y, folds=3)
    assert [r["pca"] for r in sweep] == [2, 4, 8]
    assert best["mean"] == max(r["mean"] for r in sweep) and best["mean"] > 0.8


def test_folds_adapt_to_small_classes_and_refuse_single_items():
    assert analysis.effective_folds([0, 0, 1, 1, 1], 5) == 2
    with pytest.raises(InvalidArgumentError, match="at least 2 items of each class"):
        analysis.effective_folds([0, 1, 1, 1], 5)
    with pytest.raises(InvalidArgumentError, match="labels"):
        analysis.cross_validated_auc(np.zeros((4, 2)), [0, 2, 1, 1], n_components=1)


def test_plots_are_pngs_with_their_title(tmp_path):
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1], 10)
    X = rng.standard_normal((20, 6)) + y[:, None]
    result = analysis.cross_validated_auc(X, y, n_components=2, folds=2)
    paths = [
        plots.plot_pca_scatter(X, y, title="scatter T1", path=tmp_path / "a.png"),
        plots.plot_roc({"x": result}, y, title="roc T2", path=tmp_path / "b.png"),
        plots.plot_auc_sweep({"x": [result]}, title="sweep T3", path=tmp_path / "c.png"),
        plots.plot_log_mel_pair(rng.standard_normal((2, 96, 64)), rng.standard_normal((1, 96, 64)),
                                   title="mel T4", path=tmp_path / "d.png"),
    ]
    for path, title in zip(paths, ["scatter T1", "roc T2", "sweep T3", "mel T4"]):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 300
            assert image.text["Title"] == title
