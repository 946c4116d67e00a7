"""int8 VGGish (warblr.quantize): deterministic, cached with its provenance, within a measured bound of float32.

One int8 network is built per session (the calibration pass is the costly
part); rebuilding from scratch to compare bytes is in the slow pass.
"""

import json

import numpy as np
import pytest
import torch

from warblr import quantize
from warblr.embed import batch_embeddings, batch_examples, embed_examples
from warblr.errors import InvalidArgumentError
from warblr.lab.corpus import synthesize_clip
from warblr.weights import load_vggish

#: Measured on held-out demo-corpus clips (seeds 777..., 3 clips), seeded random weights 0 and 1:
#: max 3.1-3.5 %, mean 0.35-0.41 % of max |float32|. The bounds are the issue's 5 % and 1.5x the mean.
MAX_RELATIVE, MEAN_RELATIVE = 0.05, 0.006


#: Every check of the calibrated network: its calibration (~8 s on 2 cores) is too much for the README's test command.
SLOW = pytest.mark.slow


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("int8-cache")


@pytest.fixture(scope="session")
def model():
    return load_vggish("random", seed=0)


@pytest.fixture(scope="session")
def int8(model, cache_dir):
    return quantize.load_quantized(model, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def held_out():
    """Examples of demo-corpus clips that are not in the calibration set."""
    seeds = np.random.SeedSequence(777).spawn(3)
    clips = [(synthesize_clip(has_bird=i != 1, seed=seed, duration=4.0).mixture, 44100) for i, seed in enumerate(seeds)]
    return torch.from_numpy(np.concatenate(batch_examples(clips)))


def relative_errors(ours, reference):
    scale = np.abs(reference).max()
    error = np.abs(np.asarray(ours, np.float64) - reference)
    return error.max() / scale, error.mean() / scale


@SLOW
def test_built_once_then_read_from_the_cache_bit_identical(model, int8, cache_dir, held_out):
    assert int8.built and int8.cache_file == str(quantize.cache_path(model, cache_dir))
    again = quantize.load_quantized(model, cache_dir=cache_dir)
    assert not again.built and again.cache_file == int8.cache_file
    with torch.inference_mode():
        assert torch.equal(int8(held_out), again(held_out))


@SLOW
def test_provenance_names_every_input(model, int8):
    record = int8.provenance
    assert record["weights_sha256"] == quantize.weights_digest(model)
    assert record["torch"] == str(torch.__version__) and record["backend"] == quantize.BACKEND
    assert record["calibration"]["clips"] == quantize.CALIBRATION["clips"]
    assert "generator_version" in record["calibration"]
    saved = torch.load(int8.cache_file, weights_only=True)
    assert saved["provenance"] == json.loads(json.dumps(record))


@SLOW
def test_error_against_float32_within_the_measured_bound(model, int8, held_out):
    with torch.inference_mode():
        reference = model.eval()(held_out).numpy()
        ours = int8(held_out).numpy()
    worst, mean = relative_errors(ours, reference)
    assert 0 < worst <= MAX_RELATIVE and mean <= MEAN_RELATIVE
    assert not np.array_equal(ours, reference)  # it really is the quantised network


@SLOW
def test_int8_rows_do_not_depend_on_the_batch(int8, held_out):
    """A lone example in an int8 chunk (33 = 32 + 1, or a batch of one) took another conv kernel, as in float32."""
    examples = torch.cat([held_out] * 3)[:quantize.INT8_CHUNK + 1]
    with torch.inference_mode():
        whole = int8(examples)
        alone = torch.cat([int8(examples[row:row + 1]) for row in range(len(examples))])
    # 1e-6 off in the float first convolution moved some int8 roundings: rows came out up to 0.13 off.
    differing = (alone != whole).any(dim=1).nonzero().flatten().tolist()
    assert not differing, f"rows {differing} differ when run alone"


@SLOW
def test_engine_runs_int8_through_the_same_cache(model, int8, cache_dir, held_out, monkeypatch):
    monkeypatch.setattr(quantize, "default_cache_dir", lambda _model: cache_dir)
    ours = embed_examples(model, held_out, dtype="int8", batch_size=48)  # batches cross the int8 chunks
    with torch.inference_mode():
        assert np.array_equal(ours, int8(held_out).numpy())
    clip = [(synthesize_clip(has_bird=True, seed=5, duration=2.0).mixture, 44100)]
    assert batch_embeddings(clip, model, dtype="int8")[0].shape == (2, 128)


@pytest.mark.slow  # calibrates a second int8 network
def test_a_changed_weight_names_another_cache_file(model, cache_dir):
    changed = load_vggish("random", seed=0)
    with torch.no_grad():
        changed.embeddings[4].bias[0] += 1e-3
    assert quantize.cache_path(changed, cache_dir) != quantize.cache_path(model, cache_dir)
    assert quantize.cache_path(load_vggish("random", seed=0), cache_dir) == quantize.cache_path(model, cache_dir)


@pytest.mark.slow  # loads a second int8 network; the cache key is checked by test_built_once_then_read_from_the_cache_bit_identical
def test_a_cache_file_with_other_provenance_is_not_used(model, int8, tmp_path):
    saved = torch.load(int8.cache_file, weights_only=True)
    record = quantize.provenance(model)
    stale = dict(record, torch="0.0.0")
    path = tmp_path / "stale.pt"
    torch.save({"provenance": stale, "state_dict": saved["state_dict"]}, path)
    assert quantize._read_cached(path, record, model) is None
    path.write_bytes(b"not a torch file")
    assert quantize._read_cached(path, record, model) is None
    torch.save({"provenance": record, "state_dict": saved["state_dict"]}, path)
    assert quantize._read_cached(path, record, model) is not None


def test_int8_on_cuda_is_refused_by_name(model):
    from warblr.embed import make_engine

    if torch.cuda.is_available():
        with pytest.raises(InvalidArgumentError, match="dtype"):
            make_engine(device="cuda", dtype="int8")
    assert make_engine(device="cpu", dtype="int8").precision == "int8"


def flat_state(state):
    """``state_dict`` values as plain tensors (int8 values, scales, zero points), tuples unpacked."""
    out = []
    for key, value in sorted(state.items()):
        for i, item in enumerate(value if isinstance(value, tuple) else (value,)):
            if torch.is_tensor(item) and item.is_quantized:
                scales = (item.q_per_channel_scales() if item.qscheme() in (torch.per_channel_affine,
                                                                            torch.per_channel_symmetric)
                          else torch.tensor(item.q_scale()))
                out += [(f"{key}[{i}].int", item.int_repr()), (f"{key}[{i}].scale", scales)]
            elif torch.is_tensor(item):
                out.append((f"{key}[{i}]", item))
            else:
                out.append((f"{key}[{i}]", repr(item)))
    return out


@pytest.mark.slow
def test_rebuilding_from_scratch_is_bit_identical(model, int8, held_out):
    rebuilt = quantize.build_quantized(model)
    ours, theirs = flat_state(int8.graph.state_dict()), flat_state(rebuilt.graph.state_dict())
    assert [k for k, _ in ours] == [k for k, _ in theirs]
    for (key, a), (_, b) in zip(ours, theirs):
        assert (torch.equal(a, b) if torch.is_tensor(a) else a == b), key
    with torch.inference_mode():
        assert torch.equal(int8(held_out), rebuilt(held_out))
