"""``warblr embed``: any audio in (formats, rates, channels, folders, lists), one row per window, the same numbers
as ``extract`` for the same audio, exact timestamps, bad files named, resumable and bit-identical on rerun."""

import hashlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from warblr import cli, spec
from warblr.embed import make_engine
from warblr.features import num_examples
from warblr.lab import store
from warblr.lab.dataset import read_dataset
from warblr.lab.embed_audio import collect_audio, embed_audio, item_id_for
from warblr.lab.extract import extract
from warblr.resample import resampled_length

pq = pytest.importorskip("pyarrow.parquet")

CPU = make_engine(device="cpu", workers=0)

#: (relative path, sample rate, channels, seconds, soundfile subtype): every format, rate and layout embed takes.
RECORDINGS = [
    ("dawn.wav", 44100, 2, 3.3, "PCM_16"),
    ("field.FLAC", 8000, 1, 4.1, "PCM_16"),
    ("night/owl.ogg", 48000, 2, 2.5, "VORBIS"),
    ("night/wren.wav", 22050, 1, 2.0, "FLOAT"),
]


def write_recording(path, rate, channels, seconds, subtype, *, seed):
    """Noise with a few tones, as a recorder would save it."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    mono = 0.05 * rng.standard_normal(n) + 0.2 * np.sin(2 * np.pi * rng.uniform(1000, 3500) * t)
    data = mono if channels == 1 else np.stack([mono, np.roll(mono, 7) * 0.5], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(data, -0.99, 0.99), rate, subtype=subtype)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("embed") / "recordings"
    for seed, (name, rate, channels, seconds, subtype) in enumerate(RECORDINGS):
        write_recording(folder / name, rate, channels, seconds, subtype, seed=seed)
    (folder / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEnot really audio")
    (folder / "notes.txt").write_text("not audio: never picked from a folder")
    return folder


@pytest.fixture(scope="module")
def embedded(recordings, tmp_path_factory, random_model, random_provenance):
    out = tmp_path_factory.mktemp("embed-out") / "out"
    result = embed_audio([recordings], out, model=random_model, provenance=random_provenance, recursive=True,
                         log_mel=True, engine=CPU, progress=False)
    return out, result, pd.read_parquet(result.table[0])


def test_every_format_rate_and_channel_layout_gives_rows_equal_to_extract(embedded, recordings, tmp_path,
                                                                          random_model, random_provenance):
    out, result, rows = embedded
    assert result.items == len(RECORDINGS) and result.computed == len(RECORDINGS)
    # The same audio as a DCASE-style labelled folder (decoded samples saved losslessly as float64 WAV).
    (tmp_path / "data" / "wav").mkdir(parents=True)
    ids = {}
    for k, (name, *_rest) in enumerate(RECORDINGS):
        waveform, rate = sf.read(recordings / name, dtype="float64")
        ids[name] = f"clip-{k}"
        sf.write(tmp_path / "data" / "wav" / f"clip-{k}.wav", waveform, rate, subtype="DOUBLE")
    (tmp_path / "data" / "labels.csv").write_text("itemid,hasbird\n" + "".join(f"clip-{k},{k % 2}\n"
                                                                              for k in range(len(RECORDINGS))))
    extract(read_dataset(tmp_path / "data"), tmp_path / "extracted", model=random_model,
            provenance=random_provenance, engine=CPU, progress=False)
    assert set(rows.columns) >= {"path", "item_id", "example", "start_s", "end_s", "embedding", "log_mel"}
    for name, rate, _, seconds, _ in RECORDINGS:
        mine = rows[rows["path"] == str(recordings / name)]
        examples, embeddings = store.read_item(tmp_path / "extracted" / "items" / f"{ids[name]}.npz")
        assert len(mine) == num_examples(resampled_length(int(rate * seconds), rate, spec.SAMPLE_RATE)) > 0
        np.testing.assert_array_equal(np.stack(mine["embedding"]), embeddings)  # bit for bit
        np.testing.assert_array_equal(np.stack([np.stack(m) for m in mine["log_mel"]]), examples)
        assert set(mine["item_id"]) == {item_id_for(recordings / name)}


def test_timestamps_are_exact_sample_positions(embedded):
    _, _, rows = embedded
    starts = rows["example"].to_numpy() * (spec.NUM_FRAMES * spec.STFT_HOP_LENGTH)  # 15360 samples at 16 kHz
    assert rows["start_s"].tolist() == (starts / spec.SAMPLE_RATE).tolist()
    assert rows["end_s"].tolist() == ((starts + spec.EXAMPLE_SAMPLES) / spec.SAMPLE_RATE).tolist()
    assert np.array_equal(np.round(rows["start_s"] * spec.SAMPLE_RATE), starts)


def test_a_corrupt_file_is_named_with_the_reason_and_the_others_are_embedded(embedded, recordings):
    _, result, rows = embedded
    assert [p.reason.split(":")[0] for p in result.problems] == [str(recordings / "broken.wav")]
    assert "not a readable audio file" in result.problems[0].reason
    assert str(recordings / "notes.txt") not in set(rows["path"])  # a folder gives its audio files only


def test_rerun_reuses_every_item_and_writes_the_same_bytes(embedded, recordings, random_model, random_provenance):
    out, first, _ = embedded
    before = hashlib.sha256(first.table[0].read_bytes()).hexdigest()
    again = embed_audio([recordings], out, model=random_model, provenance=random_provenance, recursive=True,
                        log_mel=True, engine=CPU, progress=False)
    assert (again.computed, again.reused) == (0, len(RECORDINGS))
    assert hashlib.sha256(again.table[0].read_bytes()).hexdigest() == before
    metadata = pq.ParquetFile(again.table[0]).schema_arrow.metadata
    assert b'"hop": 0.96' in metadata[b"warblr"] and b'"command": "embed"' in metadata[b"warblr_run"]


def test_half_hop_windows_at_even_positions_equal_the_default_windows(embedded, recordings, tmp_path,
                                                                      random_model, random_provenance):
    _, _, default = embedded
    half = pd.read_parquet(embed_audio([recordings], tmp_path / "half", model=random_model,
                                       provenance=random_provenance, recursive=True, hop=0.48, log_mel=True,
                                       engine=CPU, progress=False).table[0])
    for name, rate, _, seconds, _ in RECORDINGS:
        mine, base = half[half["path"] == str(recordings / name)], default[default["path"] == str(recordings / name)]
        samples = resampled_length(int(rate * seconds), rate, spec.SAMPLE_RATE)
        assert len(mine) == num_examples(samples, hop_frames=48) >= 2 * len(base) - 1
        np.testing.assert_array_equal(np.stack(mine["embedding"][0::2]), np.stack(base["embedding"]))
        np.testing.assert_array_equal(np.stack([np.stack(m) for m in mine["log_mel"][0::2]]),
                                      np.stack([np.stack(m) for m in base["log_mel"]]))
        starts = np.arange(len(mine)) * 7680  # 16 kHz samples: 0.48 s apart, exactly
        assert mine["start_s"].tolist() == (starts / 16000).tolist()
        assert mine["end_s"].tolist() == ((starts + 15600) / 16000).tolist()
    assert b'"hop": 0.48' in pq.ParquetFile(tmp_path / "half" / "embeddings.parquet").schema_arrow.metadata[b"warblr"]


def test_csv_and_npz_hold_the_parquet_rows(embedded, recordings, tmp_path, random_model, random_provenance):
    _, _, rows = embedded
    for table_format in ("csv", "npz"):
        result = embed_audio([recordings], tmp_path / table_format, model=random_model,
                             provenance=random_provenance, recursive=True, table_format=table_format, engine=CPU,
                             progress=False)
        if table_format == "csv":
            table = pd.read_csv(result.table[0])
            embeddings = table[[f"e{k:03d}" for k in range(spec.EMBEDDING_SIZE)]].to_numpy(np.float32)
            assert result.table[1].name == "embeddings.csv.json" and '"hop": 0.96' in result.table[1].read_text()
        else:
            with np.load(result.table[0]) as table:
                table = {name: table[name] for name in table.files}
            embeddings = table["embedding"]
            assert '"command": "embed"' in str(table["meta"])
        np.testing.assert_array_equal(embeddings, np.stack(rows["embedding"]))  # %.9g round-trips float32
        assert list(table["path"]) == rows["path"].tolist()
        assert np.array_equal(np.asarray(table["start_s"]), rows["start_s"].to_numpy())


def test_lists_of_paths_and_missing_inputs(recordings, tmp_path):
    listing = recordings / "list.txt"
    listing.write_text("# two recordings, one twice, one missing\ndawn.wav\nnight/owl.ogg\n./dawn.wav\n"
                       "gone.flac\n")
    dataset = collect_audio([f"@{listing}", recordings / "field.FLAC"])
    assert [item.path.name for item in dataset.items] == ["dawn.wav", "field.FLAC", "owl.ogg"]
    assert [p.reason for p in dataset.problems] == [f"no such file: {recordings / 'gone.flac'}"]
    assert [item.path.name for item in collect_audio([], paths_from=listing).items] == ["dawn.wav", "owl.ogg"]
    top = collect_audio([recordings])  # not --recursive: the sub-folder's files are left
    assert sorted(item.path.name for item in top.items) == ["broken.wav", "dawn.wav", "field.FLAC"]
    assert item_id_for(recordings / "night" / "owl.ogg") != item_id_for(tmp_path / "owl.ogg")


def test_command_line(recordings, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["embed", str(recordings), "--recursive", "--out", str(out), "--weights", "random", "--device", "cpu",
            "--quiet", "--format", "npz"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert f"{recordings / 'broken.wav'}: not a readable audio file" in captured.err
    assert "embed: " in captured.out and (out / "embeddings.npz").is_file()
    with pytest.raises(SystemExit):
        cli.main(argv + ["--hop", "0.015"])
    assert "--hop" in capsys.readouterr().err
    assert cli.main(argv + ["--format", "csv", "--log-mel", "--out", str(tmp_path / "never")]) == 1
    assert "--log-mel: a log-mel column" in capsys.readouterr().err and not (tmp_path / "never").exists()
    assert cli.main(["embed", "--out", str(out), "--weights", "random", "--quiet"]) == 1
    assert "no audio given" in capsys.readouterr().err  # no input named: the error says what to give


def finished_items(out):
    """Item files (not an atomic write's hidden temporary)."""
    return [p for p in (out / "items").glob("*.npz") if not p.name.startswith(".")]


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_clean_result(recordings, tmp_path, random_model, random_provenance):
    clean = embed_audio([recordings], tmp_path / "clean", model=random_model, provenance=random_provenance,
                        recursive=True, group_size=1, engine=CPU, progress=False)
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "warblr", "embed", str(recordings), "--recursive", "--out", str(out),
               "--weights", "random", "--device", "cpu", "--workers", "0", "--group-size", "1", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not finished_items(out) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    kept = len(finished_items(out))
    resumed = embed_audio([recordings], out, model=random_model, provenance=random_provenance, recursive=True,
                          group_size=1, engine=CPU, progress=False)
    assert resumed.reused == kept >= 1 and resumed.computed == len(RECORDINGS) - kept
    assert not list((out / "items").glob(".tmp-*"))
    first, second = pd.read_parquet(clean.table[0]), pd.read_parquet(resumed.table[0])
    np.testing.assert_array_equal(np.stack(first["embedding"]), np.stack(second["embedding"]))
    assert first[["path", "start_s", "end_s"]].equals(second[["path", "start_s", "end_s"]])


@pytest.mark.slow
def test_a_one_hour_recording_streams_in_bounded_memory_to_extracts_numbers(tmp_path, random_model,
                                                                           random_provenance):
    """One hour of 44.1 kHz stereo (1.3 GB as float64 if decoded whole): peak memory under 1 GB, and the
    windows equal extract's on the same audio (its first minute, decoded whole)."""
    rate, seconds = 44100, 3600
    path = tmp_path / "dawn-to-dusk.flac"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=rate, channels=2, subtype="PCM_16") as sound:
        for start in range(0, seconds, 60):  # written a minute at a time
            t = (start * rate + np.arange(60 * rate)) / rate
            tone = 0.2 * np.sin(2 * np.pi * (1500 + 500 * np.sin(2 * np.pi * t / 97)) * t)
            sound.write(np.stack([tone, 0.5 * tone], axis=1) + 0.01 * rng.standard_normal((60 * rate, 2)))
    # VmHWM is the peak of this process's own address space. getrusage's ru_maxrss is not: exec folds the
    # peak of the address space it replaces into it, and subprocess's vfork lends the child pytest's own.
    script = ("import sys\nfrom warblr import cli\n"
              "code = cli.main(sys.argv[1:])\n"
              "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
              "print('peak_kb', status.split()[0])\n"
              "sys.exit(code)\n")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", script, "embed", str(path), "--out", str(out), "--weights", "random",
                           "--device", "cpu", "--quiet"], capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stdout.split("peak_kb")[1].split()[0]) / 1024
    print(f"one-hour 44.1 kHz stereo FLAC: peak RSS {peak_mb:.0f} MB")  # shown with -s
    assert peak_mb < 1024
    rows = pd.read_parquet(out / "embeddings.parquet")
    assert len(rows) == num_examples(resampled_length(seconds * rate, rate, spec.SAMPLE_RATE))
    # The first minute as a labelled folder, decoded whole by extract: its windows away from the cut are the same.
    first_minute, _ = sf.read(path, frames=60 * rate, dtype="float64")
    (tmp_path / "data" / "wav").mkdir(parents=True)
    for k in range(2):
        sf.write(tmp_path / "data" / "wav" / f"m{k}.wav", first_minute, rate, subtype="DOUBLE")
    (tmp_path / "data" / "labels.csv").write_text("itemid,hasbird\nm0,0\nm1,1\n")
    extract(read_dataset(tmp_path / "data"), tmp_path / "extracted", model=random_model,
            provenance=random_provenance, engine=CPU, progress=False)
    _, embeddings = store.read_item(tmp_path / "extracted" / "items" / "m0.npz")
    np.testing.assert_array_equal(np.stack(rows["embedding"][:55]), embeddings[:55])


@pytest.mark.slow
def test_ray_local_gives_the_same_bytes(embedded, recordings, tmp_path, random_model, random_provenance):
    pytest.importorskip("ray")
    from warblr.lab.distributed import RaySettings

    out, _, rows = embedded
    result = embed_audio([recordings], tmp_path / "ray", model=random_model, provenance=random_provenance,
                         recursive=True, log_mel=True, engine=CPU, progress=False,
                         ray=RaySettings("local", cpus=2, actors=1))
    assert result.computed == len(RECORDINGS) and [p.reason.split(":")[0] for p in result.problems] == [
        str(recordings / "broken.wav")]
    for local in sorted((out / "items").glob("*.npz")):
        local_arrays = store.read_item(local)
        ray_arrays = store.read_item(tmp_path / "ray" / "items" / local.name)
        for a, b in zip(local_arrays, ray_arrays):
            np.testing.assert_array_equal(a, b)
    on_ray = pd.read_parquet(result.table[0])
    np.testing.assert_array_equal(np.stack(on_ray["embedding"]), np.stack(rows["embedding"]))
