"""What int8 does to the downstream result: ``analyse`` AUCs in int8 against float32 (slow pass).

The demo corpus (``warblr demo``'s 200 clips, seed 0) is analysed twice with
the same weights, folds and PCA grid, once per network precision. The
log-mel feature sets never touch the network, so their AUCs must be equal to
the last digit (int8 changes only the network); every embedding feature set
must land within 0.01 of float32, the bound the README's int8 table quotes.
With ``WARBLR_DATA`` pointing at a labelled real-recording tree the same
comparison runs on it too.
"""

import os

import pytest

from warblr.embed import make_engine
from warblr.lab.analyse import analyse
from warblr.lab.corpus import make_corpus
from warblr.lab.dataset import read_dataset

pytestmark = pytest.mark.slow

#: The largest AUC change int8 may cause, per feature set (issue 21; the README's int8 section).
AUC_TOLERANCE = 0.01


def aucs_by_precision(dataset, out, model, provenance):
    """``{dtype: {feature set: mean CV AUC}}`` of one dataset analysed in float32 and in int8."""
    aucs = {}
    for dtype in ("float32", "int8"):
        report = analyse(dataset, out / dtype, model=model, provenance=provenance, progress=False,
                         engine=make_engine(device="cpu", dtype=dtype))
        assert report["engine"]["dtype"] == dtype
        aucs[dtype] = {key: entry["best"]["mean"] for key, entry in report["auc"].items()}
    print(f"\n{'feature set':<16}{'float32':>9}{'int8':>9}{'change':>9}")
    for key, value in aucs["float32"].items():
        print(f"{key:<16}{value:>9.4f}{aucs['int8'][key]:>9.4f}{aucs['int8'][key] - value:>+9.4f}")
    return aucs


def assert_int8_keeps_the_result(aucs, feature_sets):
    float32, int8 = aucs["float32"], aucs["int8"]
    assert float32.keys() == int8.keys()
    for key, feature_set in feature_sets.items():
        if feature_set.uses_weights:
            assert abs(int8[key] - float32[key]) <= AUC_TOLERANCE, (key, float32[key], int8[key])
        else:   # log-mel: computed before the network, so unchanged
            assert int8[key] == float32[key], key


@pytest.fixture(scope="module")
def feature_sets():
    from warblr.lab.feature_sets import FEATURE_SETS

    return {feature_set.key: feature_set for feature_set in FEATURE_SETS}


def test_int8_gives_the_demo_corpus_auc_of_float32(tmp_path, random_model, random_provenance, feature_sets):
    root, _ = make_corpus(tmp_path / "corpus", seed=0, progress=False)
    aucs = aucs_by_precision(read_dataset(root), tmp_path / "out", random_model, random_provenance)
    assert_int8_keeps_the_result(aucs, feature_sets)
    embedding_aucs = [aucs["int8"][key] for key, feature_set in feature_sets.items() if feature_set.uses_weights]
    assert embedding_aucs and min(embedding_aucs) > 0.6, "int8 embeddings should separate the demo classes well"


@pytest.mark.skipif(not os.environ.get("WARBLR_DATA"), reason="set WARBLR_DATA to a labelled real-recording tree")
def test_int8_gives_a_real_trees_auc_of_float32(tmp_path, random_model, random_provenance, feature_sets):
    dataset = read_dataset(os.environ["WARBLR_DATA"])
    aucs = aucs_by_precision(dataset, tmp_path / "out", random_model, random_provenance)
    assert_int8_keeps_the_result(aucs, feature_sets)
