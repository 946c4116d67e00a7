"""The batched engine against torchvggish's pipeline (resampy + mel_features + VGG)."""

import itertools

import numpy as np
import pytest
import torch

from warblr import spec
from warblr.embed import batch_embeddings, batch_examples, embed_examples, load_clips
from warblr.errors import AudioFileError, AudioTooShortError, InvalidArgumentError
from warblr.resample import resample_kaiser_best_torch
from warblr.weights import load_vggish

vggish_input = pytest.importorskip("torchvggish.vggish_input")
tv = pytest.importorskip("torchvggish.torchvggish")


@pytest.fixture(scope="module")
def model():
    return load_vggish("random", seed=3)


@pytest.fixture(scope="module")
def reference_model(model):
    network = tv.VGG(tv.make_layers(), postprocess=False)
    network.load_state_dict(model.state_dict())
    return network.eval()


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(11)
    specs = [(44100, 3.0, None), (22050, 2.2, None), (48000, 1.1, None), (16000, 2.0, None), (44100, 2.5, 2),
             (8000, 1.3, None)]
    out = []
    for rate, seconds, channels in specs:
        n = int(rate * seconds)
        t = np.arange(n) / rate
        tone = 0.3 * np.sin(2 * np.pi * rng.uniform(300, 3500) * t)
        wave = tone + rng.uniform(-0.2, 0.2, n)
        out.append((np.stack([wave, -0.5 * wave], axis=1) if channels else wave, rate))
    return out


def reference_examples(clips):
    return [vggish_input.waveform_to_examples(w, sr, return_tensor=False) for w, sr in clips]


def relative(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


def test_examples_match_torchvggish(clips):
    ours = batch_examples(clips)
    for got, expected in zip(ours, reference_examples(clips)):
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3)


def test_float64_examples_are_exact(clips):
    ours = batch_examples(clips[:3], dtype="float64")
    for got, expected in zip(ours, reference_examples(clips[:3])):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_clips_of_one_rate_and_length_are_grouped_without_mixing(monkeypatch):
    import warblr.embed as embed

    rng = np.random.default_rng(5)
    same = [(rng.uniform(-0.5, 0.5, 30000), 22050) for _ in range(5)] + [(rng.uniform(-0.5, 0.5, 25000), 22050)]
    monkeypatch.setattr(embed, "GROUP_SIZE", 3)
    together = batch_examples(same)
    for got, expected in zip(together, reference_examples(same)):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3)
    for got, (w, sr) in zip(together, same):
        np.testing.assert_allclose(got, batch_examples([(w, sr)])[0], rtol=0, atol=1e-5)


def test_embeddings_match_torchvggish_across_batch_boundaries(clips, model, reference_model):
    ours = batch_embeddings(clips, model, batch_size=3)
    assert [e.shape for e in ours] == [(len(x), 128) for x in reference_examples(clips)]
    with torch.no_grad():
        expected = [reference_model(vggish_input.waveform_to_examples(w, sr)).numpy() for w, sr in clips]
    for got, exp in zip(ours, expected):
        assert got.dtype == np.float32
        assert relative(got, exp) < 1e-3
    big = batch_embeddings(clips, model, batch_size=64)
    for a, b in zip(ours, big):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(b).max())


def test_embed_examples_equals_the_model(model):
    examples = np.random.default_rng(0).normal(-2, 1, (37, 96, 64)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(examples)).numpy()
    for batch_size in (5, 64):  # 64: one batch whose conv stack runs in chunks on CPU
        got = embed_examples(model, examples, batch_size=batch_size)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    assert embed_examples(model, np.zeros((0, 96, 64), np.float32)).shape == (0, 128)


@pytest.mark.parametrize("batch_size", [1, 2, 16, 17])  # 1: every example alone; 17: chunks of 16 and 1, then 1
def test_an_example_gets_the_same_bits_in_any_batch(model, batch_size):
    """Items must not depend on how clips fell into batches: a lone example once took another conv kernel (its
    [1, 1, 96, 64] layout is NCHW and channels-last at once) and came out up to 2e-5 off, which a killed Ray
    run's items showed against a local run's."""
    examples = np.random.default_rng(1).normal(-2, 1, (18, 96, 64)).astype(np.float32)
    whole = embed_examples(model, examples, batch_size=64)  # one batch, conv chunks of 16 and 2
    np.testing.assert_array_equal(embed_examples(model, examples, batch_size=batch_size), whole)


def test_reduced_precision_is_opt_in_and_leaves_the_model_alone(clips, model):
    fp32 = batch_embeddings(clips[:2], model)
    bf16 = batch_embeddings(clips[:2], model, dtype="bfloat16")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    for a, b in zip(bf16, fp32):
        assert a.dtype == np.float32
        assert 0 < relative(a, b) < 0.1  # bf16 is close but not the fp32 result
    np.testing.assert_array_equal(batch_embeddings(clips[:2], model, dtype=torch.float32)[0], fp32[0])


def test_paths_and_workers_give_the_same_result(clips, make_wav):
    mono = [(w, sr) for w, sr in clips if w.ndim == 1][:3]
    paths = [make_wav(w, sr, name=f"c{i}.wav", subtype="FLOAT") for i, (w, sr) in enumerate(mono)]
    direct = batch_examples(mono, workers=0)
    for got, exp in zip(batch_examples(paths, workers=2), direct):  # the files hold float32 samples
        np.testing.assert_allclose(got, exp, rtol=0, atol=1e-5)
    for got, exp in zip(batch_examples(mono, workers=2), direct):  # threads may round differently
        np.testing.assert_allclose(got, exp, rtol=0, atol=1e-5)
    loaded = load_clips(paths, workers=2)
    assert [sr for _, sr in loaded] == [sr for _, sr in mono]


def test_other_resamplers_are_options(clips):
    # float64: where kaiser_best runs in resampy's own precision (float32 features resample in float32).
    kaiser = batch_examples(clips[:1], dtype="float64")[0]
    np.testing.assert_allclose(batch_examples(clips[:1], resampler="resampy", dtype="float64")[0], kaiser,
                               rtol=0, atol=1e-5)
    with pytest.raises(InvalidArgumentError, match="resampler"):
        batch_examples(clips[:1], resampler="linear")


def test_float32_features_stay_within_the_float32_bound_of_the_float64_path(clips):
    """float32 features resample in float32 (1.5-2x faster than float64). Against the float64 path they stay
    within the float32 log-mel's documented ~2.5e-4 (reached in the empty bands above 4 kHz of an 8 kHz clip,
    where ln(mel + 0.01) magnifies rounding: 2.5e-4 there before float32 resampling too), and where every band
    carries signal (the downsampled clips) within 5e-5."""
    assert {44100, 22050, 48000, 8000} <= {sr for _, sr in clips}
    for (waveform, sample_rate), got, exact in zip(clips, batch_examples(clips), batch_examples(clips, dtype="float64")):
        error = np.abs(got - exact).max()
        assert error <= (5e-5 if sample_rate > spec.SAMPLE_RATE else 2.5e-4), (sample_rate, error)


def test_too_short_clip_is_named(model):
    clips = [(np.zeros(44100), 44100), (np.zeros(20000), 44100)]
    with pytest.raises(AudioTooShortError, match=r"clips\[1\]"):
        batch_examples(clips)
    with pytest.raises(AudioTooShortError, match=r"clips\[1\]"):
        batch_embeddings(clips, model)


@pytest.mark.parametrize("sample_rate", [44100, 48000, 22050, 8000, 16000, 44101])  # 44101: outputs one by one
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_input_sample_reaches_the_resampled_batch(sample_rate, dtype):
    """Why the engine may check finiteness on its 16 kHz batch, not on the input (a pass over it cost ~20 % of
    the features stage): a NaN or Inf anywhere, the first and the last sample included, spoils some output."""
    length = 6000
    spoilt = list(itertools.product([0, 1, 777, length - 2, length - 1], [np.nan, np.inf, -np.inf]))
    rows = np.random.default_rng(2).uniform(-0.5, 0.5, (len(spoilt), length))
    for row, (where, bad) in zip(rows, spoilt):
        row[where] = bad
    out = resample_kaiser_best_torch(torch.from_numpy(rows), sample_rate, spec.SAMPLE_RATE, dtype=dtype)
    assert not torch.isfinite(out).all(dim=1).any()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_non_finite_sample_is_refused_naming_its_clip(bad, dtype):
    good = np.random.default_rng(2).uniform(-0.5, 0.5, 48510)
    spoilt = good.copy()
    spoilt[-1] = bad
    with pytest.raises(InvalidArgumentError, match=r"^clips\[1\]: contains NaN or Inf samples$"):
        batch_examples([(good, 44100), (spoilt, 44100), (good, 44100)], dtype=dtype)


@pytest.mark.parametrize("resampler", ["resampy", "soxr"])
def test_other_resamplers_check_the_input_for_non_finite_samples(resampler):
    good = np.random.default_rng(2).uniform(-0.5, 0.5, 48510)
    spoilt = good.copy()
    spoilt[-1] = np.nan
    with pytest.raises(InvalidArgumentError, match=r"^clips\[1\]: contains NaN or Inf samples$"):
        batch_examples([(good, 44100), (spoilt, 44100)], resampler=resampler)


def test_samples_too_large_for_float32_are_refused_not_turned_into_inf():
    loud = np.full(20000, 1e300)  # finite in float64, Inf in float32: was silently a NaN/Inf log-mel
    with pytest.raises(InvalidArgumentError, match=r"^clips\[0\]: samples too large to resample in float32"):
        batch_examples([(loud, 44100)])


def test_bad_files_and_clips_are_named(tmp_path, model):
    missing = tmp_path / "nope.wav"
    with pytest.raises(AudioFileError, match="nope.wav"):
        batch_examples([missing])
    with pytest.raises(InvalidArgumentError, match=r"clips\[0\]"):
        batch_examples([np.zeros(16000)])
    with pytest.raises(InvalidArgumentError, match=r"clips\[0\]"):
        batch_examples([(np.full(16000, np.nan), 16000)])
    with pytest.raises(InvalidArgumentError, match="sample_rate"):
        batch_examples([(np.zeros(16000), -1)])


@pytest.mark.parametrize("options, word", [({"batch_size": 0}, "batch_size"), ({"dtype": "int4"}, "dtype"),
                                           ({"workers": -1}, "workers"), ({"device": "tpu"}, "device")])
def test_bad_options_raise(options, word, model):
    with pytest.raises(InvalidArgumentError, match=word):
        batch_embeddings([(np.zeros(16000), 16000)], model, **options)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_without_a_device_says_so(model):
    with pytest.raises(InvalidArgumentError, match="CUDA is not available"):
        batch_examples([(np.zeros(16000), 16000)], device="cuda")


def test_empty_input(model):
    assert batch_examples([]) == []
    assert batch_embeddings([], model) == []


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(clips, model):
    cpu = batch_embeddings(clips, model)
    for dtype, bound in ((torch.float32, 1e-3), (torch.bfloat16, 0.1)):
        gpu = batch_embeddings(clips, model, device="cuda", dtype=dtype)
        for a, b in zip(gpu, cpu):
            assert relative(a, b) < bound
    for a, b in zip(batch_examples(clips, device="cuda"), batch_examples(clips)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_embed_examples_refuses_non_finite_examples(random_model, bad):
    examples = np.zeros((3, 96, 64), np.float32)
    examples[1, 5, 7] = bad
    with pytest.raises(InvalidArgumentError, match="NaN or Inf"):
        embed_examples(random_model, examples)


def test_embed_examples_refuses_non_numeric_input(random_model):
    with pytest.raises(InvalidArgumentError, match="examples"):
        embed_examples(random_model, [[1.0, 2.0], [3.0]])


def test_features_on_one_thread_equal_all_threads_and_the_count_is_restored(clips, monkeypatch):
    from warblr import embed

    before = torch.get_num_threads()
    monkeypatch.setattr(embed, "feature_threads", lambda: 1)  # as on a busy machine
    single = batch_examples(clips[:2])
    assert torch.get_num_threads() == before
    monkeypatch.setattr(embed, "feature_threads", lambda: None)  # as on a quiet one: the caller's own count
    together = batch_examples(clips[:2])
    assert torch.get_num_threads() == before
    for a, b in zip(single, together):
        assert np.array_equal(a, b)
    with embed.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_feature_threads_follow_the_load(monkeypatch):
    from warblr import embed

    monkeypatch.setattr(embed.os, "getloadavg", lambda: (embed.BUSY_LOAD_PER_CPU * embed.os.cpu_count() + 1.0, 0.0, 0.0))
    assert embed.feature_threads() == embed.BUSY_FEATURE_THREADS
    monkeypatch.setattr(embed.os, "getloadavg", lambda: (embed.os.cpu_count() * 1.0, 0.0, 0.0))
    assert embed.feature_threads() is None
