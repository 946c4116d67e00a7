"""The FC head through oneDNN (non-Intel CPUs): same embeddings as nn.Linear, same bits every time, chosen by rule."""

import copy

import numpy as np
import pytest
import torch

from warblr import cpu, fc_head, runtime
from warblr.bench import gemm_gflops
from warblr.embed import embed_examples
from warblr.errors import InvalidArgumentError
from warblr.model import VGGish, random_state_dict

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch has no oneDNN")


@pytest.fixture(scope="module")
def seeded_model():
    """Built once (VGGish() and random_state_dict take ~0.9 s): tests get copies, never this one."""
    model = VGGish()
    model.load_state_dict(random_state_dict(seed=3))
    return model.eval()


@pytest.fixture
def model(seeded_model):
    """A fresh copy per test: some tests change the weights in place or append a layer."""
    return copy.deepcopy(seeded_model)


@pytest.fixture
def flat():
    return torch.randn(40, 12288, generator=torch.Generator().manual_seed(1)).relu()


@pytest.fixture
def library(monkeypatch):
    def choose(name):
        monkeypatch.setenv(fc_head.FC_LIBRARY_VARIABLE, name)
    return choose


@pytest.mark.parametrize("vendor, expected", [("GenuineIntel", "MKL"), ("AuthenticAMD", "oneDNN"), (None, "oneDNN")])
def test_the_library_follows_the_cpu_vendor(monkeypatch, vendor, expected):
    monkeypatch.delenv(fc_head.FC_LIBRARY_VARIABLE, raising=False)
    features = cpu.cpu_features()
    monkeypatch.setattr(cpu, "cpu_features", lambda: {**features, "vendor": vendor})
    assert fc_head.fc_library() == expected


def test_the_variable_overrides_and_a_bad_value_names_it(library):
    library("mkl")
    assert fc_head.fc_library() == "MKL"
    library("OneDNN")
    assert fc_head.fc_library() == "oneDNN"
    assert runtime.runtime_settings()["fc_library"] == "oneDNN"
    library("openblas")
    with pytest.raises(InvalidArgumentError, match="WARBLR_FC_LIBRARY.*openblas"):
        fc_head.fc_library()


def test_onednn_head_equals_the_torch_layers(model, flat, library):
    library("oneDNN")
    with torch.inference_mode():
        expected = model.embeddings(flat)
        got = fc_head.run_head(model, flat)
    scale = expected.abs().max()
    assert scale > 0 and (got - expected).abs().max() <= 1e-5 * scale


def test_onednn_head_gives_the_same_bits_for_any_threads_and_batch_split(model, flat, library):
    library("oneDNN")
    before = torch.get_num_threads()
    outputs = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            with torch.inference_mode():
                outputs.append(fc_head.run_head(model, flat))
                split = torch.cat([fc_head.run_head(model, flat[:7]), fc_head.run_head(model, flat[7:])])
            assert torch.equal(split, outputs[0]), f"a batch split changed the bits on {threads} threads"
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(o, outputs[0]) for o in outputs)


def test_new_weights_are_used_at_once(model, flat, library):
    library("oneDNN")
    with torch.inference_mode():
        before = fc_head.run_head(model, flat)
    with torch.no_grad():
        model.embeddings[-2].bias.add_(1.0)  # in place: the cached oneDNN copy must notice
    with torch.inference_mode():
        after = fc_head.run_head(model, flat)
        expected = model.embeddings(flat)
    assert not torch.equal(after, before)
    assert (after - expected).abs().max() <= 1e-5 * expected.abs().max()


def test_other_heads_and_dtypes_take_torchs_layers(model, flat, library):
    library("oneDNN")
    model.embeddings.append(torch.nn.Dropout(0.0))  # not Linear/ReLU/Identity: no oneDNN copy
    with torch.inference_mode():
        assert torch.equal(fc_head.run_head(model, flat), model.embeddings(flat))
        double = VGGish().double().eval()
        assert torch.equal(fc_head.run_head(double, flat.double()), double.embeddings(flat.double()))


@pytest.mark.parametrize("name", ["MKL", "oneDNN"])
def test_the_engine_gives_the_same_embeddings_with_either_library(model, library, name):
    examples = torch.randn(20, 96, 64, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        expected = model(examples).numpy()
    library(name)
    got = embed_examples(model, examples, batch_size=8)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_either_gemm_library_can_be_timed_and_others_are_refused():
    mkl = gemm_gflops(size=512, repeats=1, library="MKL")
    onednn = gemm_gflops(size=512, repeats=1, library="oneDNN")
    assert mkl > 0 and onednn > 0
    with pytest.raises(InvalidArgumentError, match="library"):
        gemm_gflops(size=64, library="openblas")
    with pytest.raises(InvalidArgumentError, match="oneDNN"):
        gemm_gflops(size=64, dtype=torch.float64, library="oneDNN")
