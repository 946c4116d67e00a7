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


# --------------------------------------------------------------------------- feature-set registry, test sets


def _analyse(root, out, model, provenance, **kwargs):
    from warblr.embed import make_engine
    from warblr.lab.analyse import analyse
    from warblr.lab.dataset import read_dataset

    return analyse(read_dataset(root), out, model=model, provenance=provenance, folds=3,
                   engine=make_engine(device="cpu", workers=0), progress=False, pca_sizes=(2, 4, 8), **kwargs)


def test_a_feature_set_is_one_registry_entry_and_reaches_every_output(tmp_path, random_model, random_provenance,
                                                                        make_tree):
    from warblr.lab.feature_sets import FEATURE_SETS, FeatureSet, feature_set
    from warblr.lab.report import summary_table

    # One new entry, defined here and nowhere else: each band's loudest frame only.
    peak = FeatureSet("log_mel_peak", "log-mel (max only)", "examples",
                      lambda values, what: pool_mean_std_max(values, what=what)[128:], 64, 1,
                      "each band's maximum over the clip")
    out = tmp_path / "out"
    report = _analyse(make_tree(tmp_path / "data", 8, 6), out, random_model, random_provenance,
                      feature_sets=FEATURE_SETS + (peak,))
    md, table = (out / "report.md").read_text(), summary_table(report)
    for entry in (feature_set("vggish_stats"), peak):  # the registry's own new entry, and an ad-hoc one
        assert report["auc"][entry.key]["features"] == entry.dims and report["auc"][entry.key]["name"] == entry.name
        assert f"\n| {entry.name} | {entry.dims} | {entry.description} | " in md
        assert entry.name in table
        assert f"plots/pca_{entry.key}.png" in report["plots"]
        with Image.open(out / f"plots/pca_{entry.key}.png") as image:
            assert entry.name in image.text["Title"]
    assert feature_set("vggish_stats").dims == 384
    # Embedding-based sets carry the random-weights flag in the table; example-based ones do not.
    flagged = [line for line in table.splitlines() if "RANDOM weights" in line]
    assert sorted(line.split("  ")[0] for line in flagged) == ["VGGish (mean, std, max)", "VGGish embedding (pooled)"]


def _relabel(root, new_labels):
    rows = (root / "metadata.csv").read_text().splitlines()
    body = [f"{row.rsplit(',', 1)[0]},{label}" for row, label in zip(rows[1:], new_labels)]
    (root / "metadata.csv").write_text("\n".join([rows[0], *body]) + "\n")


@pytest.mark.slow  # two datasets extracted and analysed (7 s)
def test_cross_dataset_test_auc_is_reported_and_never_fits_on_the_test_labels(tmp_path, random_model,
                                                                               random_provenance, make_tree):
    from warblr.lab.report import summary_table

    train = make_tree(tmp_path / "train", 14, 10)
    test = make_tree(tmp_path / "test", 30, 30, seconds=1.0, family="trills", seed=7)
    from warblr.lab.dataset import read_dataset

    out = tmp_path / "out"
    report = _analyse(train, out, random_model, random_provenance, test_dataset=read_dataset(test))
    auc = {key: entry["test"]["auc"] for key, entry in report["auc"].items()}
    assert max(auc.values()) > 0.75, auc  # another signal family, still found by the better feature set
    assert report["test"]["counts"]["items"] == 60 and report["test"]["data"] == str(test)
    for entry in report["auc"].values():
        assert entry["test"]["pca"] == entry["best"]["pca"]  # the size chosen on the training set only
    assert "plots/roc_test.png" in report["plots"] and (out / "plots/roc_test.png").is_file()
    assert "test AUC" in summary_table(report) and "test AUC |" in (out / "report.md").read_text()
    assert len(list((out / "test" / "items").glob("*.npz"))) == 60

    # The test labels only score: flipping them all gives exactly 1 - AUC (same scores) ...
    labels = [1] * 30 + [0] * 30
    _relabel(test, [1 - label for label in labels])
    flipped = _analyse(train, out, random_model, random_provenance, test_dataset=read_dataset(test))
    for key, entry in flipped["auc"].items():
        assert entry["test"]["auc"] == pytest.approx(1 - auc[key], abs=1e-12)
        assert entry["best"] == report["auc"][key]["best"]  # ... and the training side does not move
    # ... and shuffled labels leave nothing to find, while cross-validation on the training set still works.
    _relabel(test, np.random.default_rng(3).permutation(labels))
    shuffled = _analyse(train, out, random_model, random_provenance, test_dataset=read_dataset(test))
    best_key = max(auc, key=auc.get)
    assert abs(shuffled["auc"][best_key]["test"]["auc"] - 0.5) < 0.2
    assert shuffled["auc"]["log_mel"]["best"]["mean"] > 0.75


@pytest.mark.slow  # a second cross-dataset run; the default pass keeps the cross-dataset AUC test
def test_cross_dataset_reports_the_test_sets_bad_items(tmp_path, random_model, random_provenance, make_tree,
                                                       bad_ids):
    from warblr.lab.dataset import read_dataset

    train = make_tree(tmp_path / "train", 8, 6)
    test = make_tree(tmp_path / "test", 6, 6, bad=True, family="trills", seed=2)
    report = _analyse(train, tmp_path / "out", random_model, random_provenance, test_dataset=read_dataset(test))
    assert {p["item_id"] for p in report["test"]["skipped"]} == bad_ids
    assert report["skipped"] == [] and report["test"]["counts"]["items"] == 12
    assert "Skipped test items (7)" in (tmp_path / "out" / "report.md").read_text()
