"""Bad and odd input, files and arrays: right examples or a WarblrError naming the culprit.

Good files are checked against ``waveform_to_examples`` of the float data
that was written (computed here from the integers/floats handed to
soundfile, not read back through warblr); bad ones must raise a
``WarblrError`` subclass whose message names the file. Every public entry
point is fuzzed with junk: what its documented rule accepts must give an answer,
everything else a ``WarblrError`` (junk silently accepted fails the test).
"""

import math
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from warblr import spec
from warblr.audio import load_audio, to_mono, validate_waveform
from warblr.resample import resample, resampled_length
from warblr.errors import AudioFileError, AudioTooShortError, InvalidArgumentError, WarblrError
from warblr.features import num_examples, waveform_to_examples, wavfile_to_examples
from warblr.postprocess import Postprocessor, load_pca_params, random_pca_params
from warblr.weights import load_vggish
from warblr.stream import iter_file_examples

FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def stream_examples(path, **kwargs):
    blocks = list(iter_file_examples(path, **kwargs))
    return np.concatenate(blocks) if blocks else np.zeros((0, 96, 64), np.float32)


FILE_READERS = {"wavfile_to_examples": wavfile_to_examples, "iter_file_examples": stream_examples,
                "load_audio": load_audio}


def assert_file_error(path, error=WarblrError, readers=FILE_READERS):
    """Every file reader raises ``error`` (a WarblrError) naming ``path``."""
    for name, read in readers.items():
        with pytest.raises(error) as info:
            read(path)
        assert isinstance(info.value, WarblrError), name
        assert str(path) in str(info.value), f"{name}: message does not name the file: {info.value}"


# ---------------------------------------------------------------------------
# Bad files


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert_file_error(path, AudioFileError)


def test_text_named_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 100)
    assert_file_error(path, AudioFileError)


@FUZZ
@given(data=st.binary(min_size=1, max_size=4096))
def test_random_bytes_named_wav(tmp_path_factory, data):
    # A fixed "junk" lead-in keeps the bytes from opening with a real format's
    # magic number or an MPEG frame sync (libsndfile reads MP3 too); files with
    # a real header and a random body are the next test.
    path = tmp_path_factory.mktemp("junk") / "junk.wav"
    path.write_bytes(b"junk" + data)
    assert_file_error(path, AudioFileError)


@FUZZ
@given(body=st.binary(min_size=0, max_size=40000), declared=st.integers(0, 2**32 - 1))
def test_wav_header_with_random_body(tmp_path_factory, body, declared):
    """A plausible RIFF/WAVE header with any data size claim: examples or a WarblrError, nothing else."""
    header = (b"RIFF" + (36 + len(body)).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
              + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (16000).to_bytes(4, "little")
              + (32000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
              + b"data" + declared.to_bytes(4, "little"))
    path = tmp_path_factory.mktemp("hdr") / "header.wav"
    path.write_bytes(header + body)
    for read in FILE_READERS.values():
        try:
            result = read(path)
        except WarblrError as exc:
            assert str(path) in str(exc)
        else:
            values = result[0] if isinstance(result, tuple) else result
            assert np.all(np.isfinite(values))


def write_int16_wav(path, samples, sample_rate=16000):
    sf.write(str(path), samples, sample_rate, subtype="PCM_16")
    return path


@FUZZ
@given(keep=st.integers(0, 200_000), channels=st.sampled_from([1, 2]))
def test_truncated_wav_loads_what_is_there_or_fails_clearly(tmp_path_factory, keep, channels):
    """Cut a WAV anywhere: the samples read are an exact prefix of those written, or a clear error."""
    folder = tmp_path_factory.mktemp("trunc")
    written = np.random.default_rng(keep).integers(-32768, 32768, (40000, channels)).astype(np.int16)
    full = write_int16_wav(folder / "full.wav", written).read_bytes()
    path = folder / "truncated.wav"
    path.write_bytes(full[:keep])
    try:
        waveform, sample_rate = load_audio(path)
    except AudioFileError as exc:
        assert str(path) in str(exc)
        assert keep <= 44 + 2 * channels  # only a cut in or right after the header may fail
        return
    waveform = waveform.reshape(waveform.shape[0], -1)
    assert sample_rate == 16000 and waveform.shape[1] == channels
    assert 0 < waveform.shape[0] <= written.shape[0]
    np.testing.assert_array_equal(waveform, written[:waveform.shape[0]] / 32768.0)  # never garbage
    # ...and every whole frame that is there is read.
    assert waveform.shape[0] == (min(keep, len(full)) - 44) // (2 * channels)


def test_truncated_wav_examples_equal_the_prefix(tmp_path):
    written = np.random.default_rng(1).integers(-20000, 20000, (60000, 2)).astype(np.int16)
    full = write_int16_wav(tmp_path / "full.wav", written).read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(full[:44 + 4 * 35000 + 3])  # header claims 60000 frames; 35000 and a bit are there
    expected = waveform_to_examples(written[:35000] / 32768.0, 16000)
    np.testing.assert_allclose(wavfile_to_examples(path), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(stream_examples(path, chunk_seconds=0.7), expected, rtol=0, atol=1e-5)


def test_header_only_wav(tmp_path):
    full = write_int16_wav(tmp_path / "full.wav", np.zeros(20000, np.int16)).read_bytes()
    path = tmp_path / "header_only.wav"
    path.write_bytes(full[:44])
    assert_file_error(path, AudioFileError)


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_in_float_wav(tmp_path, subtype, bad):
    data = np.random.default_rng(0).uniform(-0.5, 0.5, (40000, 2))
    data[31234, 1] = bad  # past the first 1 s chunk, so the stream meets it mid-file
    path = tmp_path / f"bad_{subtype}.wav"
    sf.write(str(path), data, 16000, subtype=subtype)
    assert_file_error(path, AudioFileError)
    with pytest.raises(AudioFileError, match="31234"):  # where, as well as what
        stream_examples(path, chunk_seconds=1.0)


@pytest.mark.parametrize("sample_rate", [16000, 44100])
def test_shorter_than_one_example(tmp_path, sample_rate):
    # The shortest audio with one example gives 15600 samples at 16 kHz
    # (resampy's output length is int(n * 16000 / sr)).
    shortest = math.ceil(spec.EXAMPLE_SAMPLES * sample_rate / spec.SAMPLE_RATE)
    while int(shortest * spec.SAMPLE_RATE / sample_rate) >= spec.EXAMPLE_SAMPLES:
        shortest -= 1
    shortest += 1
    rng = np.random.default_rng(2)
    good = write_int16_wav(tmp_path / "just_enough.wav", rng.integers(-999, 999, shortest).astype(np.int16),
                           sample_rate)
    assert wavfile_to_examples(good).shape == (1, 96, 64)
    assert stream_examples(good).shape == (1, 96, 64)
    short = write_int16_wav(tmp_path / "too_short.wav", rng.integers(-999, 999, shortest - 1).astype(np.int16),
                            sample_rate)
    assert_file_error(short, AudioTooShortError, readers={"wavfile_to_examples": wavfile_to_examples,
                                                          "iter_file_examples": stream_examples})
    tiny = write_int16_wav(tmp_path / "one_sample.wav", np.array([5], np.int16), sample_rate)
    assert_file_error(tiny, AudioTooShortError, readers={"wavfile_to_examples": wavfile_to_examples,
                                                         "iter_file_examples": stream_examples})


def test_directory_and_missing_path(tmp_path):
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    assert_file_error(folder, AudioFileError)
    assert_file_error(tmp_path / "missing.wav", AudioFileError)


@pytest.mark.parametrize("path", [None, 17, 3.5, ["a.wav"]])
def test_non_path_arguments(path):
    for read in FILE_READERS.values():
        with pytest.raises(InvalidArgumentError, match="path"):
            read(path)


def test_unreadable_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    path = write_int16_wav(tmp_path / "locked.wav", np.zeros(20000, np.int16))
    path.chmod(0)
    assert_file_error(path, AudioFileError)


# ---------------------------------------------------------------------------
# Good files: sample formats, channels, rates, FLAC, OGG


def written_reference(subtype, rng, frames, channels):
    """Data handed to soundfile and the float waveform the file then holds, by the PCM convention."""
    shape = (frames, channels)
    if subtype == "PCM_U8":  # libsndfile keeps the top 8 bits of int16 input
        data = rng.integers(-32768, 32768, shape).astype(np.int16)
        return data, (data >> 8) / 128.0
    if subtype == "PCM_16":
        data = rng.integers(-32768, 32768, shape).astype(np.int16)
        return data, data / 32768.0
    if subtype == "PCM_24":  # the top 24 bits of int32 input
        data = rng.integers(-2**31, 2**31, shape, dtype=np.int64).astype(np.int32)
        return data, (data >> 8) / 2.0**23
    if subtype == "PCM_32":
        data = rng.integers(-2**31, 2**31, shape, dtype=np.int64).astype(np.int32)
        return data, data / 2.0**31
    if subtype == "FLOAT":
        data = rng.uniform(-1, 1, shape).astype(np.float32)
        return data, data.astype(np.float64)
    data = rng.uniform(-1, 1, shape)
    return data, data


def check_good_file(path, reference, sample_rate, *, atol=1e-5):
    mono_reference = reference[:, 0] if reference.shape[1] == 1 else reference
    expected = waveform_to_examples(mono_reference, sample_rate)
    got = wavfile_to_examples(path)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
    np.testing.assert_allclose(stream_examples(path, chunk_seconds=0.5), expected, rtol=0, atol=atol)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wav_sample_formats(tmp_path, subtype):
    data, reference = written_reference(subtype, np.random.default_rng(3), 17000, 2)
    path = tmp_path / f"{subtype}.wav"
    sf.write(str(path), data, 16000, subtype=subtype)
    check_good_file(path, reference, 16000)


def test_pcm16_matches_torchvggish_wavfile_to_examples(tmp_path):
    vggish_input = pytest.importorskip("torchvggish.vggish_input")
    data, _ = written_reference("PCM_16", np.random.default_rng(4), 50000, 2)
    path = tmp_path / "tv.wav"
    sf.write(str(path), data, 44100, subtype="PCM_16")
    expected = vggish_input.wavfile_to_examples(str(path), return_tensor=False)
    np.testing.assert_allclose(wavfile_to_examples(path), expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("channels", range(1, 9))
def test_channel_counts(tmp_path, channels):
    data, reference = written_reference("PCM_16", np.random.default_rng(channels), 16000, channels)
    path = tmp_path / f"ch{channels}.wav"
    sf.write(str(path), data, 16000, subtype="PCM_16")
    check_good_file(path, reference, 16000)


@pytest.mark.parametrize("sample_rate", [8000, 11025, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000])
def test_sample_rates(tmp_path, sample_rate):
    data, reference = written_reference("PCM_16", np.random.default_rng(sample_rate),
                                        int(1.05 * sample_rate), 1)
    path = tmp_path / f"sr{sample_rate}.wav"
    sf.write(str(path), data, sample_rate, subtype="PCM_16")
    check_good_file(path, reference, sample_rate)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24"])
@pytest.mark.parametrize("channels", [1, 2])
def test_flac_is_lossless(tmp_path, subtype, channels):
    data, reference = written_reference(subtype, np.random.default_rng(5), 24000, channels)
    path = tmp_path / f"{subtype}_{channels}.flac"
    sf.write(str(path), data, 22050, subtype=subtype, format="FLAC")
    check_good_file(path, reference, 22050)


@pytest.mark.parametrize("channels", [1, 2])
def test_ogg_vorbis(tmp_path, chirp, noise, channels):
    sample_rate = 44100
    signal = chirp(200, 3200, 2.1, sample_rate, amplitude=0.4) + noise(2.1, sample_rate, amplitude=0.05, seed=6)
    data = signal[:, None] if channels == 1 else np.stack([signal, np.roll(signal, 100)], axis=1)
    path = tmp_path / f"ch{channels}.ogg"
    sf.write(str(path), data, sample_rate, format="OGG", subtype="VORBIS")
    # Exact against the decoded samples...
    decoded, decoded_rate = sf.read(str(path), always_2d=True)
    assert decoded_rate == sample_rate and decoded.shape == data.shape
    check_good_file(path, decoded, sample_rate)
    # ...and close to what was encoded: Vorbis moves quiet bands a lot, so
    # compare the mean log-mel error (measured ~0.1), against a wrong signal's.
    got = wavfile_to_examples(path)
    encoded = waveform_to_examples(data[:, 0] if channels == 1 else data, sample_rate)
    other = waveform_to_examples(chirp(3200, 200, 2.1, sample_rate, amplitude=0.4), sample_rate)
    assert np.abs(got - encoded).mean() < 0.25 < np.abs(got - other).mean()


# ---------------------------------------------------------------------------
# Arrays


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_arrays(bad):
    x = np.zeros((20000, 2))
    x[123, 1] = bad
    with pytest.raises(InvalidArgumentError, match="clip_7.*NaN or Inf"):
        waveform_to_examples(x, 16000, name="clip_7")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_finite_samples_whose_sum_overflows_are_not_called_non_finite(dtype):
    x = np.full(20000, np.finfo(dtype).max / 2, dtype=dtype)  # the sum is Inf; every sample is finite
    with np.errstate(over="ignore"):
        assert not np.isfinite(x.sum())
    assert validate_waveform(x, name="loud").shape == x.shape
    x[-1] = np.nan
    with pytest.raises(InvalidArgumentError, match="loud.*NaN or Inf"):
        validate_waveform(x, name="loud")


@pytest.mark.parametrize("rate", [0, -16000, 16000.5, float("nan"), float("inf"), "16000", None, True, [16000]])
def test_bad_sample_rates(rate):
    with pytest.raises(InvalidArgumentError, match="sample_rate"):
        waveform_to_examples(np.zeros(20000), rate)
    with pytest.raises(InvalidArgumentError, match="orig_sr"):
        resample(np.zeros(20000), rate, 16000)


def test_integral_float_and_numpy_rates_are_accepted(noise):
    x = noise(1.0, 16000)
    expected = waveform_to_examples(x, 16000)
    for rate in (16000.0, np.int32(16000), np.float64(16000)):
        np.testing.assert_array_equal(waveform_to_examples(x, rate), expected)


@pytest.mark.parametrize("shape", [(), (0,), (0, 2), (20000, 0), (20000, 2, 2), (2, 2, 20000), (1, 1, 1, 20000)])
def test_bad_shapes(shape):
    with pytest.raises(InvalidArgumentError, match="waveform"):
        waveform_to_examples(np.zeros(shape), 16000)


def test_channels_first_mistake():
    with pytest.raises(InvalidArgumentError, match="transpose"):
        waveform_to_examples(np.zeros((2, 20000)), 16000)


@pytest.mark.parametrize("dtype, scale, offset", [
    (np.int8, 128.0, 0.0), (np.uint8, 128.0, 128.0), (np.int16, 32768.0, 0.0), (np.int32, 2.0**31, 0.0)])
def test_integer_arrays_equal_their_scaled_floats(dtype, scale, offset):
    info = np.iinfo(dtype)
    pcm = np.random.default_rng(8).integers(info.min, info.max, (17000, 2), endpoint=True).astype(dtype)
    np.testing.assert_array_equal(waveform_to_examples(pcm, 16000),
                                  waveform_to_examples((pcm.astype(np.float64) - offset) / scale, 16000))


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.uint32, np.uint64, bool, np.complex128, np.str_, object])
def test_refused_dtypes(dtype):
    with pytest.raises(InvalidArgumentError, match="dtype"):
        waveform_to_examples(np.zeros(20000, dtype=dtype), 16000)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int16])
def test_torch_tensors(noise, dtype):
    x = torch.from_numpy(noise(1.0, 16000, channels=2))
    if dtype == torch.int16:
        x = (x * 32767).round()
        expected = waveform_to_examples(x.numpy() / 32768.0, 16000)
    else:
        expected = waveform_to_examples(x.to(dtype).float().numpy().astype(np.float64), 16000)
    got = waveform_to_examples(x.to(dtype), 16000)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_ragged_and_non_numeric_sequences():
    for bad in ([[0.0], [1.0, 2.0]], [0.0, "a"], {"a": 1}, object(), None):
        with pytest.raises(InvalidArgumentError, match="waveform"):
            waveform_to_examples(bad, 16000)


# ---------------------------------------------------------------------------
# Every public entry point answers junk with a WarblrError, never another exception.

JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5), st.binary(max_size=5),
    st.lists(st.one_of(st.floats(), st.text(max_size=1), st.none()), max_size=5),
    st.lists(st.lists(st.floats(-1, 1), max_size=3), max_size=3),
    hnp.arrays(st.sampled_from([np.float32, np.float64, np.int16, np.int64, np.uint8, bool, np.complex64]),
               hnp.array_shapes(min_dims=0, max_dims=4, max_side=4)),
)

ENTRY_POINTS = {
    "load_audio": lambda junk: load_audio(junk),
    "wavfile_to_examples": lambda junk: wavfile_to_examples(junk),
    "iter_file_examples": lambda junk: stream_examples(junk),
    "waveform_to_examples(waveform)": lambda junk: waveform_to_examples(junk, 16000),
    "waveform_to_examples(sample_rate)": lambda junk: waveform_to_examples(np.zeros(16000), junk),
    "resample(waveform)": lambda junk: resample(junk, 44100, 16000),
    "resample(orig_sr)": lambda junk: resample(np.zeros(1000), junk, 16000),
    "to_mono": lambda junk: to_mono(junk),
    "load_vggish(weights)": lambda junk: load_vggish(junk, download=False),
    "load_pca_params(params)": lambda junk: load_pca_params(junk, download=False),
    "Postprocessor(pca_eigen_vectors)": lambda junk: Postprocessor(junk, np.zeros(128)),
    "Postprocessor(pca_means)": lambda junk: Postprocessor(np.eye(128), junk),
    "Postprocessor.__call__": lambda junk: Postprocessor(**random_pca_params())(junk),
}


def accepted_waveform(junk, *, mono=False):
    """The documented waveform rule, written out here: a non-empty, finite array of real numbers (float, or int8,
    uint8, int16, int32 PCM), ``[samples]`` or ``[samples, channels<=64]`` (``[samples]`` only when ``mono``)."""
    try:
        array = np.asarray(junk)
    except (ValueError, TypeError):
        return False
    pcm = array.dtype in (np.int8, np.uint8, np.int16, np.int32)
    if not (array.dtype.kind == "f" or pcm) or array.ndim not in ((1,) if mono else (1, 2)) or array.size == 0:
        return False
    return (array.ndim == 1 or array.shape[1] <= 64) and bool(np.all(np.isfinite(array.astype(np.float64))))


def accepted_rate(junk):
    """A sample rate: a positive whole number of Hz (Python int or integral float, never a bool or an array)."""
    if isinstance(junk, bool) or not isinstance(junk, (int, float)):
        return False
    return math.isfinite(junk) and junk == int(junk) and junk > 0


def never(junk):
    """Junk is never a valid value here (no junk is an existing audio file, a 128-wide matrix or a batch)."""
    return False


#: Entry point -> which junk it must accept. Everything else must raise a WarblrError: junk silently accepted fails.
ACCEPTS = {
    "load_audio": never, "wavfile_to_examples": never, "iter_file_examples": never,
    "waveform_to_examples(waveform)": never,  # JUNK arrays are at most 4 samples long: shorter than one example
    "waveform_to_examples(sample_rate)": lambda junk: accepted_rate(junk) and num_examples(
        resampled_length(16000, int(junk), 16000)) > 0,
    "resample(waveform)": lambda junk: accepted_waveform(junk, mono=True) and resampled_length(
        len(np.asarray(junk)), 44100, 16000) >= 1,
    "resample(orig_sr)": lambda junk: accepted_rate(junk) and resampled_length(1000, int(junk), 16000) >= 1,
    "to_mono": accepted_waveform,
    "load_vggish(weights)": never, "load_pca_params(params)": never,
    "Postprocessor(pca_eigen_vectors)": never, "Postprocessor(pca_means)": never, "Postprocessor.__call__": never,
}


def test_every_entry_point_has_an_acceptance_rule():
    assert sorted(ACCEPTS) == sorted(ENTRY_POINTS)


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
@FUZZ
@given(junk=JUNK)
def test_entry_points_answer_junk_with_warblr_errors(entry_point, junk, tmp_path_factory, monkeypatch):
    if entry_point.startswith(("load_vggish", "load_pca_params")):
        if isinstance(junk, str) and junk in ("random", "auto"):
            return  # valid values
        monkeypatch.delenv(spec.WEIGHTS_ENV_VAR, raising=False)
        monkeypatch.delenv(spec.PCA_ENV_VAR, raising=False)
        monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path_factory.mktemp("hub")))
    if ACCEPTS[entry_point](junk):
        result = ENTRY_POINTS[entry_point](junk)  # valid input: an answer, never an error
        assert np.all(np.isfinite(np.asarray(result, dtype=np.float64)))
    else:
        with pytest.raises(WarblrError):
            ENTRY_POINTS[entry_point](junk)


@FUZZ
@given(junk=JUNK)
def test_forward_answers_junk_with_warblr_errors(random_model, junk):
    with pytest.raises(WarblrError):  # no junk is a [N, 1, 96, 64] batch
        random_model(junk)


@pytest.mark.parametrize("shape", [(2, 4, 4, 4), (1, 128), (64, 2), (128, 1, 1)])
def test_pca_means_of_another_shape_are_refused(shape):
    """128 values shaped otherwise are not the means of the 128 dimensions (the fuzz found a [2, 4, 4, 4])."""
    with pytest.raises(InvalidArgumentError, match=r"pca_means: expected shape \(128,\) or \(128, 1\)"):
        Postprocessor(np.eye(128), np.zeros(shape))


@pytest.mark.parametrize("shape", [(128,), (128, 1)])
def test_pca_means_as_torchvggish_stores_them_are_taken(shape):
    post = Postprocessor(np.eye(128), np.full(shape, 0.5))
    assert post.pca_means.shape == (128,)


def test_load_vggish_bad_options():
    for kwargs in ({"seed": "x"}, {"seed": 1.5}, {"device": "nodevice"}, {"device": 3.5}):
        with pytest.raises(InvalidArgumentError):
            load_vggish("random", **kwargs)
