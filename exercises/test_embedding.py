"""Graded checks for ``embedding``: the VGGish network, batched inference, the PCA postprocessor.

Models are compared with torchvggish's own ``VGG`` carrying the same seeded
random weights (``vggish_state``), and the postprocessor with torchvggish's
``Postprocessor`` given the same PCA parameters. How ``embed`` treats the
network (batches, autograd, eval mode) is read from what it returns: the
checks hand it a stand-in network (``warblr.grading.probes``) whose output
carries the batch size of each forward pass and whether autograd or training
mode was on, and compare every row with the grader's own copy of that network.
"""

import numpy as np
import pytest
import torch
from torchvggish.torchvggish import Postprocessor

from warblr.grading import credit, probes

from .reference import to_numpy

ARCHITECTURE = ("conv 64-M-128-M-256-256-M-512-512-M (3x3, padding 1, ReLU; 2x2 max-pool) named 'features', "
                "then 'embeddings' = Linear 12288->4096, ReLU, 4096->4096, ReLU, 4096->128, ReLU")
STAND_IN_SEED = 17


def student_model(impl, state):
    model = impl.embedding.build_vggish()
    model.load_state_dict(state)
    return model


def stand_in(impl, inputs):
    """The stand-in network next to your code (``impl.probe``) and the grader's own copy of it.

    Its weights come from the session's input seed, like the examples it embeds: no output to look up.
    """
    seed = int(inputs.rng(STAND_IN_SEED).integers(2**31))
    return impl.probe("stand_in_network", seed=seed), probes.stand_in_network(seed=seed)


def read_marks(returned, examples, own_copy):
    """What the stand-in network's output says about the forward passes that made ``returned``.

    Returns a dict: ``batch_size``, ``autograd``, ``training`` (one float per
    row) and ``error`` (per row, the largest difference from the network's
    output once those marks are taken out: large when a row is not the
    network's output for its example).
    """
    got = to_numpy(returned).astype(np.float64)
    examples = to_numpy(examples).reshape(len(examples), 1, 96, 64)
    assert got.shape == (len(examples), 128), (
        f"embed returned shape {got.shape} for {len(examples)} examples; expected {(len(examples), 128)}")
    assert np.all(np.isfinite(got)), "embed returned NaN or Inf"
    with torch.no_grad():
        plain = own_copy.linear(torch.as_tensor(examples, dtype=torch.float32).flatten(1)).double().numpy()
    marks = own_copy.marks.double().numpy()                       # [3, 128]
    flags, *_ = np.linalg.lstsq(marks.T, (got - plain).T, rcond=None)   # [3, rows]
    error = np.abs(got - plain - flags.T @ marks).max(axis=1)
    return dict(zip(probes.STAND_IN_MARKS, flags), error=error)


def assert_rows_are_the_networks_output(marks):
    bad = np.flatnonzero(marks["error"] > 1e-3)
    assert not bad.size, (f"{bad.size} of {len(marks['error'])} rows are not the network's output for their example "
                          f"(largest difference {marks['error'].max():.3g}): embed must run every example through "
                          "the model it is given")


def torchvggish_postprocess(embeddings, eigen_vectors, means):
    post = Postprocessor.__new__(Postprocessor)  # its __init__ downloads the released PCA file
    post._pca_matrix = torch.as_tensor(eigen_vectors).float()
    post._pca_means = torch.as_tensor(means.reshape(-1, 1)).float()
    return post.postprocess(torch.as_tensor(embeddings)).numpy().astype(np.int64)


def code_difference(got, expected):
    """``got - expected`` as int64 after checking ``got`` is uint8 of the expected shape."""
    got = to_numpy(got)
    assert got.shape == np.shape(expected) and got.dtype == np.uint8, (
        f"got {got.dtype} {got.shape}, expected uint8 {np.shape(expected)}")
    return got.astype(np.int64) - np.asarray(expected).astype(np.int64)


def assert_codes_match(got, expected, whose):
    """8-bit codes equal up to rare off-by-one roundings.

    float32 and float64 arithmetic may round a value sitting on a .5 boundary differently: allow 1 % of the
    codes to be off by one, no more.
    """
    difference = np.abs(code_difference(got, expected))
    assert difference.max() <= 1 and np.mean(difference > 0) < 0.01, (
        f"{np.mean(difference > 0):.1%} of the values differ from {whose}, by up to {difference.max()}")


# ------------------------------------------------------------------ the network


@pytest.mark.points(4)
@pytest.mark.hint("build_vggish: the state_dict keys and shapes must equal torchvggish's VGG so the released weights "
                  "load, and its 'features' and 'embeddings' parts must compute what torchvggish's do: "
                  + ARCHITECTURE)
def test_build_vggish_state_dict_matches_torchvggish(impl, vggish_state, torchvggish_model, log_mel_examples):
    model = impl.embedding.build_vggish()
    incompatible = model.load_state_dict(vggish_state)  # strict: names and shapes must match (torch says which not)
    assert not any(incompatible), f"load_state_dict reported {incompatible}"
    examples = torch.from_numpy(log_mel_examples[:2])[:, None]
    maps = torch.randn(2, 512 * 6 * 4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = {"features": torchvggish_model.features(examples).numpy(),
                    "embeddings": torchvggish_model.embeddings(maps).numpy()}
    got = {"features": to_numpy(model.features(examples)), "embeddings": to_numpy(model.embeddings(maps))}
    for part in ("features", "embeddings"):
        assert got[part].shape == expected[part].shape, (
            f"model.{part} gave shape {got[part].shape}, torchvggish's {expected[part].shape}")
        np.testing.assert_allclose(got[part], expected[part], rtol=1e-4, atol=1e-4 * np.abs(expected[part]).max(),
                                   err_msg=f"model.{part} with torchvggish's weights differs from torchvggish's")


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
    got = impl.embedding.embed(impl.probe("vggish_network", vggish_state), log_mel_examples[:3])
    with torch.no_grad():
        expected = torchvggish_model(torch.from_numpy(log_mel_examples[:3])[:, None]).numpy()
    assert to_numpy(got).dtype == np.float32, f"embed returned {to_numpy(got).dtype}, expected float32"
    np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.points(2)
@pytest.mark.hint("embed: accept [N, 96, 64] and [N, 1, 96, 64], numpy arrays and torch tensors (even ones with "
                  "requires_grad=True, as torchvggish's waveform_to_examples returns), one example ([1, 128], not "
                  "[128]: no squeeze) and none ([0, 128]: a clip shorter than 0.96 s); no autograd: wrap inference in "
                  "torch.no_grad() (or inference_mode) so the result carries no graph")
def test_embed_accepts_shapes_and_grad_tensors(impl, inputs):
    model, own_copy = stand_in(impl, inputs)
    examples = inputs.rng(5).standard_normal((5, 96, 64)).astype(np.float32)
    with_channel = impl.embedding.embed(model, torch.tensor(examples[:, None], requires_grad=True))
    plain = impl.embedding.embed(model, examples)
    assert not getattr(with_channel, "requires_grad", False), "embed returned a tensor that tracks gradients"
    for returned, count in ((with_channel, 5), (plain, 5), (impl.embedding.embed(model, examples[:1]), 1)):
        marks = read_marks(returned, examples[:count], own_copy)
        assert_rows_are_the_networks_output(marks)
        graphs = int(np.sum(marks["autograd"] > 0.5))
        assert not graphs, (f"{graphs} of {count} examples went through forward passes that built an autograd "
                            "graph (torch.no_grad() missing; .detach() afterwards does not save the time and memory)")
    none = to_numpy(impl.embedding.embed(model, examples[:0]))
    assert none.shape == (0, 128), f"embed returned shape {none.shape} for no examples; expected (0, 128)"


@pytest.mark.points(2)
@pytest.mark.hint("embed: put the model in eval mode (model.eval()) before inference: in training mode dropout "
                  "(and batch norm) make embeddings random")
def test_embed_uses_eval_mode(impl, inputs):
    examples = inputs.rng(6).standard_normal((8, 96, 64)).astype(np.float32)
    for given, kind in ((examples, "a numpy array"), (torch.from_numpy(examples[:, None]), "a tensor")):
        model, own_copy = stand_in(impl, inputs)  # freshly built for each kind of input: in training mode
        marks = read_marks(impl.embedding.embed(model, given), examples, own_copy)
        assert_rows_are_the_networks_output(marks)
        training = int(np.sum(marks["training"] > 0.5))
        assert not training, (f"{training} of {len(examples)} examples given as {kind} were embedded with the model "
                              "in training mode")


@pytest.mark.points(2)
@pytest.mark.hint("embed: batch the examples (at least 8 per forward pass), not one forward pass per example in a "
                  "Python loop; every example is embedded, including the last, partial batch, and every batch in "
                  "eval mode without autograd (model.eval() and torch.no_grad() around the whole loop)")
def test_embed_is_batched(impl, inputs):
    model, own_copy = stand_in(impl, inputs)
    examples = inputs.rng(7).standard_normal((250, 96, 64)).astype(np.float32)  # no usual batch multiple
    marks = read_marks(impl.embedding.embed(model, examples), examples, own_copy)
    assert_rows_are_the_networks_output(marks)
    sizes = marks["batch_size"]
    assert np.allclose(sizes, np.round(sizes), atol=0.05) and sizes.min() >= 0.95, (
        f"the network's output says batch sizes {sorted(set(np.round(sizes, 2)))}")
    passes = float(np.sum(1.0 / np.round(sizes)))  # a batch of B examples contributes B rows of 1 / B
    assert passes <= 32.5, (
        f"{passes:.0f} forward passes for 250 examples (batch sizes {sorted(set(np.round(sizes).astype(int)))})")
    for mark, what in (("autograd", "an autograd graph (torch.no_grad() missing)"), ("training", "training mode")):
        rows = int(np.sum(marks[mark] > 0.5))
        assert not rows, f"{rows} of 250 examples went through forward passes in {what}"


# ------------------------------------------------------------------ postprocessor


@pytest.mark.points(4, partial=True)
@pytest.mark.hint("postprocess: centre first (subtract pca_means), then project onto the eigenvectors (rows of "
                  "pca_eigen_vectors: (x - mean) @ E.T), then quantise round((x + 2) * 255 / 4) to uint8. "
                  "torchvggish rounds and so do these checks; TensorFlow's vggish_postprocess (which made "
                  "AudioSet's released embeddings) truncates with astype(np.uint8) instead, which moves about half "
                  "the codes down by one: a different convention, not a bug, but here the codes must be rounded")
def test_postprocess_matches_torchvggish(impl, inputs):
    inside, _, eigen_vectors, means = inputs.pca_inputs()
    got = impl.embedding.postprocess(inside, eigen_vectors, means)
    expected = torchvggish_postprocess(inside, eigen_vectors, means)
    difference = code_difference(got, expected)
    projected = (inside.astype(np.float64) - means) @ eigen_vectors.astype(np.float64).T
    truncated = np.floor((np.clip(projected, -2.0, 2.0) + 2.0) * (255.0 / 4.0)).astype(np.int64)
    if np.mean(np.abs(code_difference(got, truncated)) > 0) < 0.01 and np.mean(difference != 0) >= 0.01:
        credit.award(0.5, "your codes are TensorFlow's (truncated, astype(np.uint8)); this lab rounds as torchvggish")
    assert_codes_match(got, expected, "torchvggish's")


@pytest.mark.points(3)
@pytest.mark.hint("postprocess: clip the PCA output to [-2, 2] before quantising (otherwise values wrap around "
                  "in uint8): clip, then round((x + 2) * 255 / 4)")
def test_postprocess_clips_before_quantising(impl, inputs):
    _, beyond, eigen_vectors, means = inputs.pca_inputs()
    got = impl.embedding.postprocess(beyond, eigen_vectors, means)
    expected = torchvggish_postprocess(beyond, eigen_vectors, means)
    assert np.mean(expected == 0) > 0.1 and np.mean(expected == 255) > 0.1  # the input really needs clipping
    assert_codes_match(got, expected, "torchvggish's")


@pytest.mark.points(1)
@pytest.mark.hint("postprocess: pca_means may come as [128] or [128, 1] (the released file): flatten it before "
                  "subtracting from every embedding row")
@pytest.mark.visibility("hidden")
def test_postprocess_accepts_column_means(impl, inputs):
    inside, _, eigen_vectors, means = inputs.pca_inputs()
    got = impl.embedding.postprocess(inside, eigen_vectors, means.reshape(-1, 1))
    assert_codes_match(got, torchvggish_postprocess(inside, eigen_vectors, means), "torchvggish's")


@pytest.mark.points(1)
@pytest.mark.hint("postprocess: on the seeded test embeddings your codes differ from the solution's: centre, project "
                  "with E.T, clip to [-2, 2], round((x + 2) * 255 / 4)")
def test_postprocess_matches_solution(impl, inputs, reference):
    inside, _, eigen_vectors, means = inputs.pca_inputs()
    got = impl.embedding.postprocess(inside, eigen_vectors, means)
    assert_codes_match(got, reference("embedding.postprocess.inside"), "the solution's")
