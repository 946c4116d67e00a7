"""Graded checks for ``embedding``: the VGGish network, batched inference, the PCA postprocessor.

Models are compared with torchvggish's own ``VGG`` carrying the same seeded
random weights (``vggish_state``), and the postprocessor with torchvggish's
``Postprocessor`` given the same PCA parameters.
"""

import numpy as np
import pytest
import torch
from torchvggish.torchvggish import VGG, Postprocessor, make_layers

from .reference import pca_inputs, to_numpy

ARCHITECTURE = ("conv 64-M-128-M-256-256-M-512-512-M (3x3, padding 1, ReLU; 2x2 max-pool) named 'features', "
                "then 'embeddings' = Linear 12288->4096, ReLU, 4096->4096, ReLU, 4096->128, ReLU")


def student_model(impl, state):
    model = impl.embedding.build_vggish()
    model.load_state_dict(state)
    return model


def probe_network(impl, dropout=0.0):
    """A cheap network ``[N, 1, 96, 64] -> [N, 128]`` next to your code.

    ``.calls`` lists the input shape of each forward pass, ``.graphs`` whether each built an autograd graph.
    """
    return impl.probe("flat", dropout=dropout)


def torchvggish_postprocess(embeddings, eigen_vectors, means):
    post = Postprocessor.__new__(Postprocessor)  # its __init__ downloads the released PCA file
    post._pca_matrix = torch.as_tensor(eigen_vectors).float()
    post._pca_means = torch.as_tensor(means.reshape(-1, 1)).float()
    return post.postprocess(torch.as_tensor(embeddings)).numpy().astype(np.int64)


def assert_codes_match(got, expected, whose):
    """8-bit codes equal up to rare off-by-one roundings.

    float32 and float64 arithmetic may round a value sitting on a .5 boundary differently: allow 1 % of the
    codes to be off by one, no more.
    """
    difference = np.abs(to_numpy(got).astype(np.int64) - np.asarray(expected).astype(np.int64))
    assert difference.max() <= 1 and np.mean(difference > 0) < 0.01, (
        f"{np.mean(difference > 0):.1%} of the values differ from {whose}, by up to {difference.max()}")


# ------------------------------------------------------------------ the network


@pytest.mark.points(4)
@pytest.mark.hint("build_vggish: the state_dict keys and shapes must equal torchvggish's VGG so the released weights "
                  "load: " + ARCHITECTURE)
def test_build_vggish_state_dict_matches_torchvggish(impl):
    got = {key: tuple(shape) for key, shape in impl.probe("state_shapes", impl.embedding.build_vggish()).items()}
    expected = {key: tuple(value.shape) for key, value in VGG(make_layers(), postprocess=False).state_dict().items()}
    assert sorted(got) == sorted(expected), (
        f"missing {sorted(set(expected) - set(got))}, unexpected {sorted(set(got) - set(expected))}")
    wrong = {key: (got[key], expected[key]) for key in expected if got[key] != expected[key]}
    assert not wrong, f"wrong shapes (yours, expected): {wrong}"


@pytest.mark.points(6)
@pytest.mark.hint("VGGish forward: flatten the [N, 512, 6, 4] feature maps in NHWC order (permute to [N, 6, 4, 512] "
                  "before flattening, as TensorFlow did; NCHW order scrambles the released FC weights); keep the "
                  "ReLU after every layer including the last; " + ARCHITECTURE)
def test_embeddings_match_torchvggish(impl, vggish_state, torchvggish_model, log_mel_examples):
    model = student_model(impl, vggish_state)
    got = to_numpy(impl.embedding.embed(model, log_mel_examples))
    with torch.no_grad():
        expected = torchvggish_model(torch.from_numpy(log_mel_examples)[:, None]).numpy()
    assert got.shape == (6, 128)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.points(3)
@pytest.mark.hint("embed: add the channel axis ([N, 96, 64] -> [N, 1, 96, 64]) and return float32 [N, 128], one "
                  "row per example (keep the last, partial batch); with torchvggish's own VGG the result must equal "
                  "its forward pass")
def test_embed_with_torchvggish_model(impl, vggish_state, torchvggish_model, log_mel_examples):
    got = impl.embedding.embed(impl.probe("torchvggish_vgg", vggish_state), log_mel_examples[:3])
    with torch.no_grad():
        expected = torchvggish_model(torch.from_numpy(log_mel_examples[:3])[:, None]).numpy()
    assert to_numpy(got).dtype == np.float32, f"embed returned {to_numpy(got).dtype}, expected float32"
    np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.points(2)
@pytest.mark.hint("embed: accept [N, 96, 64] and [N, 1, 96, 64], numpy arrays and torch tensors (even ones with "
                  "requires_grad=True, as torchvggish's waveform_to_examples returns); no autograd: wrap inference in "
                  "torch.no_grad() (or inference_mode) so the result carries no graph")
def test_embed_accepts_shapes_and_grad_tensors(impl):
    model = probe_network(impl)
    examples = np.random.default_rng(5).standard_normal((5, 96, 64)).astype(np.float32)
    plain = to_numpy(impl.embedding.embed(model, examples))
    with_channel = impl.embedding.embed(model, torch.tensor(examples[:, None], requires_grad=True))
    assert not getattr(with_channel, "requires_grad", False), "embed returned a tensor that tracks gradients"
    assert not any(model.graphs), (
        f"{sum(model.graphs)} of {len(model.graphs)} forward passes built an autograd graph (torch.no_grad() missing; "
        ".detach() afterwards does not save the time and memory)")
    assert plain.shape == (5, 128)
    np.testing.assert_allclose(to_numpy(with_channel), plain, rtol=1e-6, atol=1e-6)


@pytest.mark.points(2)
@pytest.mark.hint("embed: put the model in eval mode (model.eval()) before inference: in training mode dropout "
                  "(and batch norm) make embeddings random")
def test_embed_uses_eval_mode(impl):
    model = probe_network(impl, dropout=0.5).train()
    examples = np.random.default_rng(6).standard_normal((8, 96, 64)).astype(np.float32)
    first = to_numpy(impl.embedding.embed(model, examples))
    second = to_numpy(impl.embedding.embed(model, examples))
    expected = to_numpy(model.eval()(torch.from_numpy(examples)[:, None]))
    np.testing.assert_allclose(first, second, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.points(2)
@pytest.mark.hint("embed: batch the examples (at least 8 per forward pass), not one forward pass per example in a "
                  "Python loop; every example is embedded, including the last, partial batch")
def test_embed_is_batched(impl):
    model = probe_network(impl)
    examples = np.zeros((250, 96, 64), dtype=np.float32)  # not a multiple of any usual batch size
    out = to_numpy(impl.embedding.embed(model, examples))
    assert out.shape == (250, 128), f"{out.shape[0]} embeddings for 250 examples (the last, partial batch dropped?)"
    assert len(model.calls) <= 32, (
        f"{len(model.calls)} forward passes for 250 examples (batch sizes {sorted(set(model.calls))})")


# ------------------------------------------------------------------ postprocessor


@pytest.mark.points(4)
@pytest.mark.hint("postprocess: centre first (subtract pca_means), then project onto the eigenvectors (rows of "
                  "pca_eigen_vectors: (x - mean) @ E.T), then quantise round((x + 2) * 255 / 4) to uint8. "
                  "torchvggish rounds and so do these checks; TensorFlow's vggish_postprocess (which made "
                  "AudioSet's released embeddings) truncates with astype(np.uint8) instead, which moves about half "
                  "the codes down by one: a different convention, not a bug, but here the codes must be rounded")
def test_postprocess_matches_torchvggish(impl):
    inside, _, eigen_vectors, means = pca_inputs()
    got = to_numpy(impl.embedding.postprocess(inside, eigen_vectors, means))
    expected = torchvggish_postprocess(inside, eigen_vectors, means)
    assert got.shape == (24, 128) and got.dtype == np.uint8, f"got {got.dtype} {got.shape}, expected uint8 (24, 128)"
    assert_codes_match(got, expected, "torchvggish's")


@pytest.mark.points(3)
@pytest.mark.hint("postprocess: clip the PCA output to [-2, 2] before quantising (otherwise values wrap around "
                  "in uint8): clip, then round((x + 2) * 255 / 4)")
def test_postprocess_clips_before_quantising(impl):
    _, beyond, eigen_vectors, means = pca_inputs()
    got = to_numpy(impl.embedding.postprocess(beyond, eigen_vectors, means)).astype(np.int64)
    expected = torchvggish_postprocess(beyond, eigen_vectors, means)
    assert np.mean(expected == 0) > 0.1 and np.mean(expected == 255) > 0.1  # the input really needs clipping
    assert_codes_match(got, expected, "torchvggish's")


@pytest.mark.points(1)
@pytest.mark.hint("postprocess: pca_means may come as [128] or [128, 1] (the released file): flatten it before "
                  "subtracting from every embedding row")
@pytest.mark.visibility("hidden")
def test_postprocess_accepts_column_means(impl):
    inside, _, eigen_vectors, means = pca_inputs()
    got = to_numpy(impl.embedding.postprocess(inside, eigen_vectors, means.reshape(-1, 1)))
    flat = to_numpy(impl.embedding.postprocess(inside, eigen_vectors, means))
    np.testing.assert_array_equal(got, flat)


@pytest.mark.points(1)
@pytest.mark.hint("postprocess: on the fixed test embeddings your codes differ from the solution's: centre, project "
                  "with E.T, clip to [-2, 2], round((x + 2) * 255 / 4)")
def test_postprocess_matches_solution(impl, reference):
    inside, _, eigen_vectors, means = pca_inputs()
    got = to_numpy(impl.embedding.postprocess(inside, eigen_vectors, means)).astype(np.int64)
    assert_codes_match(got, reference("embedding.postprocess.inside"), "the solution's")
