"""The VGGish network and the postprocessor against torchvggish."""

import numpy as np
import pytest
import torch

from warblr import spec
from warblr.errors import InvalidArgumentError
from warblr.model import VGGish, random_state_dict
from warblr.postprocess import Postprocessor, random_pca_params
from warblr.weights import load_vggish

tv = pytest.importorskip("torchvggish.torchvggish")

REL_TOL = 1e-5  # outputs under shared weights, relative to the output scale


def torchvggish_vgg(state_dict):
    model = tv.VGG(tv.make_layers(), False)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def shared_state():
    return random_state_dict(seed=1)


@pytest.fixture(scope="module")
def examples():
    # Log-mel-like values: ln(0.01) ~ -4.6 up to a few units.
    rng = np.random.default_rng(7)
    return torch.from_numpy(rng.uniform(-4.6, 2.0, (3, 1, 96, 64)).astype(np.float32))


def assert_rel_close(got, expected):
    got, expected = got.detach().double(), expected.detach().double()
    assert got.shape == expected.shape
    scale = expected.abs().max().item()
    assert scale > 0
    assert (got - expected).abs().max().item() <= REL_TOL * scale


def test_state_dict_keys_and_shapes_equal_torchvggish():
    ours = {k: tuple(v.shape) for k, v in VGGish().state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in tv.VGG(tv.make_layers(), False).state_dict().items()}
    assert ours == theirs
    assert list(ours) == list(theirs)


def test_outputs_equal_torchvggish_under_shared_weights(shared_state, examples):
    ours = load_vggish("random", seed=1)
    with torch.no_grad():
        expected = torchvggish_vgg(shared_state)(examples)
        assert_rel_close(ours(examples), expected)
        assert_rel_close(ours(examples[:, 0]), expected)  # [N, 96, 64] is accepted too
    assert expected.shape == (3, 128)


def test_seeded_random_weights_are_reproducible_and_seed_dependent(shared_state):
    a, b, c = shared_state, random_state_dict(seed=1), random_state_dict(seed=2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["features.0.weight"], c["features.0.weight"])


def test_final_relu_false_differs_only_by_the_last_relu(shared_state, examples):
    with_relu = load_vggish("random", seed=1, final_relu=True)
    without = load_vggish("random", seed=1, final_relu=False)
    reference = torchvggish_vgg(shared_state)
    with torch.no_grad():
        pre_activation = without(examples)
        # torchvggish's network minus its last module (the final ReLU).
        maps = reference.features(examples)
        flat = maps.transpose(1, 3).transpose(1, 2).contiguous().view(maps.shape[0], -1)
        expected_pre = reference.embeddings[:5](flat)
        assert_rel_close(pre_activation, expected_pre)
        assert torch.equal(with_relu(examples), torch.relu(pre_activation))
    assert (pre_activation < 0).any()  # the ReLU really changes something
    assert without.state_dict().keys() == with_relu.state_dict().keys()


def test_nchw_flatten_would_differ(shared_state, examples):
    """The NHWC flatten order matters: the test above could see an NCHW mistake."""
    model = torchvggish_vgg(shared_state)
    with torch.no_grad():
        maps = model.features(examples)
        nchw = model.embeddings(maps.reshape(maps.shape[0], -1))
        nhwc = model(examples)
    assert (nchw - nhwc).abs().max() > 1e-3


def torchvggish_postprocessor(params):
    """torchvggish's Postprocessor built without its download, as its __init__ would set it up."""
    post = object.__new__(tv.Postprocessor)
    post._pca_matrix = torch.as_tensor(params[spec.PCA_EIGEN_VECTORS_NAME]).float()
    post._pca_means = torch.as_tensor(params[spec.PCA_MEANS_NAME].reshape(-1, 1)).float()
    return post


@pytest.mark.parametrize("seed", [0, 1])
def test_postprocessor_equals_torchvggish(seed):
    params = random_pca_params(seed=seed)
    rng = np.random.default_rng(seed + 10)
    # Spread wide enough that some values clip at both ends.
    embeddings = rng.normal(0.1, 1.2, (64, 128)).astype(np.float32)
    theirs_pre = torch.mm(torchvggish_postprocessor(params)._pca_matrix,
                          torch.from_numpy(embeddings).t() - torchvggish_postprocessor(params)._pca_means).t()
    expected = torchvggish_postprocessor(params).postprocess(torch.from_numpy(embeddings)).numpy()
    got = Postprocessor(params[spec.PCA_EIGEN_VECTORS_NAME], params[spec.PCA_MEANS_NAME])(embeddings)
    assert got.dtype == np.uint8 and got.shape == expected.shape
    assert got.min() == 0 and got.max() == 255  # clipping exercised
    # Identical except where torchvggish's float32 value sits within float
    # rounding of a .5 quantisation edge (our projection is float64, then float32).
    scaled = (torch.clamp(theirs_pre, -2.0, 2.0) + 2.0).numpy() * (255.0 / 4.0)
    on_edge = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-4
    mismatch = got.astype(int) != expected.astype(int)
    assert not (mismatch & ~on_edge).any()
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    # A single embedding is accepted as [128].
    np.testing.assert_array_equal(
        Postprocessor(params[spec.PCA_EIGEN_VECTORS_NAME], params[spec.PCA_MEANS_NAME])(embeddings[0]), got[0])


def test_postprocessor_accepts_torch_tensors():
    params = random_pca_params(seed=2)
    post = Postprocessor(torch.from_numpy(params[spec.PCA_EIGEN_VECTORS_NAME]),
                         torch.from_numpy(params[spec.PCA_MEANS_NAME]))
    embeddings = np.random.default_rng(0).normal(size=(4, 128))
    np.testing.assert_array_equal(post(torch.from_numpy(embeddings)),
                                  Postprocessor(**params)(embeddings))


def test_forward_rejects_bad_examples(random_model):
    for bad in (torch.zeros(2, 95, 64), torch.zeros(2, 2, 96, 64), torch.zeros(96, 64),
                torch.zeros(1, 96, 64, dtype=torch.int64), torch.full((1, 96, 64), float("nan")),
                "examples", [[1, 2]]):
        with pytest.raises(InvalidArgumentError, match="examples"):
            random_model(bad)


def test_forward_accepts_numpy_float64_and_empty_batches(random_model):
    x = np.random.default_rng(1).uniform(-4, 1, (2, 96, 64))
    with torch.no_grad():
        expected = random_model(torch.from_numpy(x).float())
        np.testing.assert_allclose(random_model(x).numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
        assert random_model(torch.zeros(0, 96, 64)).shape == (0, 128)
