"""Streaming long files: chunked examples equal whole-file examples, in bounded memory."""

import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import torch

from warblr.embed import batch_examples
from warblr.errors import AudioFileError, AudioTooShortError, InvalidArgumentError
from warblr.fast import log_mel_torch
from warblr.features import frame_examples, log_mel_spectrogram, num_examples, wavfile_to_examples
from warblr.resample import resample
from warblr.stream import chunk_plan, iter_file_examples

ATOL = 1e-5  # promised: streamed examples equal whole-file ones


def assert_stream_equals_whole(path, **kwargs):
    blocks = list(iter_file_examples(path, **kwargs))
    assert all(b.dtype == np.float32 and b.ndim == 3 and b.shape[0] >= 1 and b.shape[1:] == (96, 64)
               for b in blocks)
    expected = wavfile_to_examples(path)
    got = np.concatenate(blocks)
    assert got.shape == expected.shape  # exactly the same number of examples
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    return blocks


def test_forty_seconds_44k_stereo_in_small_chunks(make_wav, noise, chirp):
    sample_rate, seconds = 44100, 40.3
    signal = chirp(100, 8000, seconds, sample_rate) + noise(seconds, sample_rate, amplitude=0.1)
    stereo = np.stack([signal, noise(seconds, sample_rate, seed=1)], axis=1)
    path = make_wav(stereo, sample_rate, subtype="PCM_16")
    blocks = assert_stream_equals_whole(path, chunk_seconds=3.7)
    assert len(blocks) >= 10  # it really streamed


def engine_log_mel(signal):
    """The batched engine's float32 torch log-mel, as ``warblr extract`` computes it."""
    with torch.inference_mode():
        return log_mel_torch(torch.from_numpy(signal).to(torch.float32)).numpy()


@pytest.mark.parametrize("sample_rate, channels", [(44100, 2), (8000, 1), (48000, 1)])
def test_streamed_with_the_engines_log_mel_equals_the_batched_path_bit_for_bit(make_wav, noise, sample_rate,
                                                                              channels):
    # What lets `warblr embed` stream a long file and still give extract's numbers.
    signal = noise(21.7, sample_rate, seed=3, amplitude=0.3)
    waveform = signal if channels == 1 else np.stack([signal, noise(21.7, sample_rate, seed=4)], axis=1)
    path = make_wav(waveform, sample_rate, subtype="FLOAT")
    streamed = np.concatenate(list(iter_file_examples(path, chunk_seconds=2.3, log_mel=engine_log_mel,
                                                      resample_dtype=np.float32)))
    np.testing.assert_array_equal(streamed, batch_examples([path], device="cpu")[0])


def test_half_hop_windows_at_even_positions_are_the_default_windows(make_wav, noise):
    path = make_wav(noise(9.3, 22050, seed=5), 22050, subtype="FLOAT")
    default = np.concatenate(list(iter_file_examples(path, chunk_seconds=1.9, log_mel=engine_log_mel)))
    half = np.concatenate(list(iter_file_examples(path, chunk_seconds=1.9, hop=0.48, log_mel=engine_log_mel)))
    samples = len(resample(sf.read(path)[0], 22050, 16000))
    assert len(half) == num_examples(samples, hop_frames=48) == 2 * len(default)  # 930 frames: 9 and 18 windows
    np.testing.assert_array_equal(half[0::2], default)
    # Odd windows start half a window later: frames 48.. of the whole file's log-mel (numpy reference, float64).
    reference = frame_examples(log_mel_spectrogram(resample(sf.read(path)[0], 22050, 16000)), hop_frames=48)
    np.testing.assert_allclose(half[1::2], reference[1::2], rtol=0, atol=2.5e-4)


@pytest.mark.parametrize("sample_rate, chunk_seconds", [(16000, 3.7), (48000, 3.7), (22050, 1.3), (8000, 2.0)])
def test_other_rates(make_wav, noise, sample_rate, chunk_seconds):
    path = make_wav(noise(12.345, sample_rate, seed=sample_rate), sample_rate, subtype="FLOAT")
    assert_stream_equals_whole(path, chunk_seconds=chunk_seconds)


@pytest.mark.parametrize("sample_rate", [16000, 44100, 48000])
def test_file_ending_exactly_on_a_chunk_boundary(make_wav, noise, sample_rate):
    step, _ = chunk_plan(sample_rate, 1.0)
    path = make_wav(noise(3 * step / sample_rate, sample_rate), sample_rate)
    assert sf.info(str(path)).frames == 3 * step
    assert_stream_equals_whole(path, chunk_seconds=1.0)


def test_chunks_shorter_than_the_filter_context(make_wav, noise):
    # 0.02 s chunks at 44.1 kHz: the 441-sample context spans several chunks.
    path = make_wav(noise(2.0, 44100, seed=4), 44100)
    assert_stream_equals_whole(path, chunk_seconds=0.02)


def test_default_chunk_reads_a_short_file_in_one_block(make_wav, noise):
    path = make_wav(noise(3.5, 44100), 44100)
    assert len(assert_stream_equals_whole(path)) == 1


def test_resampy_resampler_streams_exactly_too(make_wav, noise):
    path = make_wav(noise(4.0, 22050, channels=2), 22050)
    expected = wavfile_to_examples(path, resampler="resampy")
    got = np.concatenate(list(iter_file_examples(path, chunk_seconds=1.1, resampler="resampy")))
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


def test_chunk_plan_alignment():
    for orig_sr in (8000, 11025, 22050, 44100, 48000, 96000, 44101):
        step, margin = chunk_plan(orig_sr, 2.5)
        assert step * 16000 % orig_sr == 0 and margin * 16000 % orig_sr == 0
        assert margin >= 64 * max(1.0, orig_sr / 16000)  # covers kaiser_best's half-width
    assert chunk_plan(16000, 2.5) == (40000, 0)


def test_bad_arguments_and_files(tmp_path, make_wav, noise):
    path = make_wav(noise(2.0, 16000), 16000)
    for chunk_seconds in (0, -1, float("nan"), "60", None):
        with pytest.raises(InvalidArgumentError, match="chunk_seconds"):
            iter_file_examples(path, chunk_seconds=chunk_seconds)
    with pytest.raises(InvalidArgumentError, match="resampler"):
        iter_file_examples(path, resampler="linear")
    with pytest.raises(AudioFileError, match="missing.wav"):  # raised by the call, before iterating
        iter_file_examples(tmp_path / "missing.wav")
    short = make_wav(noise(0.5, 16000), 16000, name="short.wav")
    with pytest.raises(AudioTooShortError, match="short.wav"):
        list(iter_file_examples(short))


def write_long_file(path, seconds, sample_rate, *, block_seconds=30, seed=0):
    """Write ``seconds`` of PCM_16 noise block by block, so the test itself stays small in memory."""
    rng = np.random.default_rng(seed)
    block = int(block_seconds * sample_rate)
    with sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=1, subtype="PCM_16") as out:
        for start in range(0, int(seconds * sample_rate), block):
            frames = min(block, int(seconds * sample_rate) - start)
            out.write(rng.integers(-8000, 8000, frames).astype(np.int16))


def streamed_peak_bytes(path, **kwargs):
    count = 0
    tracemalloc.start()
    try:
        for block in iter_file_examples(path, **kwargs):
            count += block.shape[0]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, peak


def test_memory_is_bounded_for_a_ten_minute_file(tmp_path):
    sample_rate, seconds = 16000, 600
    path = tmp_path / "ten_minutes.wav"
    write_long_file(path, seconds, sample_rate)
    decoded_bytes = seconds * sample_rate * 8  # what load_audio would hold: float64 samples
    count, peak = streamed_peak_bytes(path, chunk_seconds=15)
    assert count == (1 + (seconds * sample_rate - 400) // 160) // 96
    assert peak < decoded_bytes / 4, f"peak {peak / 1e6:.1f} MB vs decoded {decoded_bytes / 1e6:.1f} MB"


@pytest.mark.slow
def test_memory_does_not_grow_with_file_length_44k(tmp_path):
    """Peak memory for 2 and 8 minutes at 44.1 kHz with the default 60 s chunks: about the same."""
    from warblr.resample import resample

    resample(np.zeros(44100), 44100, 16000)  # any one-off filter tables are built before measuring
    peaks = []
    for minutes in (2, 8):
        path = tmp_path / f"{minutes}.wav"
        write_long_file(path, minutes * 60, 44100)
        peaks.append(streamed_peak_bytes(path)[1])
        path.unlink()
    assert peaks[1] < 1.25 * peaks[0]


@pytest.mark.slow
def test_one_hour_file_with_default_chunks(tmp_path):
    sample_rate, seconds = 16000, 3600
    path = tmp_path / "one_hour.wav"
    write_long_file(path, seconds, sample_rate)
    count, peak = streamed_peak_bytes(path)
    assert count == (1 + (seconds * sample_rate - 400) // 160) // 96
    assert peak < seconds * sample_rate * 8 / 8  # under an eighth of the decoded float64 samples
