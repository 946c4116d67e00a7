"""Faults: interrupted and killed extracts resume to the clean result; half-written, corrupt or stale
items are redone; disk-full and permission errors stop with a clear message and keep finished items;
hostile item ids are never opened or written."""

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import warblr.audio
import warblr.fileio
from warblr import cli
from warblr.embed import make_engine
from warblr.lab import store
from warblr.lab.analyse import analyse
from warblr.lab.extract import extract
from warblr.lab.dataset import read_dataset
from warblr.errors import OutputError

ENGINE = make_engine(device="cpu", workers=2)


def run(dataset, out, model, provenance, **kwargs):
    return extract(dataset, out, model=model, provenance=provenance, group_size=3, engine=ENGINE,
                            progress=False, **kwargs)


def snapshot(out):
    """Every finished item's arrays and fingerprint."""
    items = {}
    for path in sorted((Path(out) / "items").glob("*.npz")):
        with np.load(path) as data:
            items[path.name] = {key: data[key].copy() for key in data.files}
    return items


def assert_same(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        assert str(a[name]["meta"]) == str(b[name]["meta"])
        np.testing.assert_array_equal(a[name]["examples"], b[name]["examples"])
        np.testing.assert_array_equal(a[name]["embeddings"], b[name]["embeddings"])


@pytest.fixture(scope="module")
def tree(tmp_path_factory, make_tree):
    return make_tree(tmp_path_factory.mktemp("faults") / "data", 5, 3)


@pytest.fixture(scope="module")
def clean(tree, tmp_path_factory, random_model, random_provenance):
    out = tmp_path_factory.mktemp("clean")
    run(read_dataset(tree), out, random_model, random_provenance)
    return snapshot(out)


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("after", [1, 4, 7])
def test_interrupted_extract_resumes_to_the_clean_result(after, tree, clean, tmp_path, monkeypatch, random_model,
                                                         random_provenance):
    real, written = store.write_item, []

    def flaky(path, *args):
        if len(written) == after:
            raise Interrupted
        real(path, *args)
        written.append(path)

    monkeypatch.setattr(store, "write_item", flaky)
    with pytest.raises(Interrupted):
        run(read_dataset(tree), tmp_path, random_model, random_provenance)
    assert len(snapshot(tmp_path)) == after
    monkeypatch.undo()
    result = run(read_dataset(tree), tmp_path, random_model, random_provenance)
    assert (result.reused, result.computed) == (after, 8 - after)
    assert_same(snapshot(tmp_path), clean)


def test_half_written_corrupt_and_stale_items_are_redone(tree, clean, tmp_path, random_model, random_provenance, write_clip):
    dataset = read_dataset(tree)
    run(dataset, tmp_path, random_model, random_provenance)
    items = sorted((tmp_path / "items").glob("*.npz"))
    items[0].write_bytes(items[0].read_bytes()[: items[0].stat().st_size // 2])  # cut in half
    items[1].write_bytes(b"\x00" * 100)                                           # garbage
    np.savez(items[2], examples=np.zeros((2, 96, 64), np.float32),                # wrong shapes
             embeddings=np.zeros((3, 128), np.float32), meta=np.array("{}"))
    data = bytearray(items[3].read_bytes())
    data[2000] ^= 0xFF                                                            # one flipped byte
    items[3].write_bytes(bytes(data))
    (tmp_path / "items" / ".tmp-leftover.npz").write_bytes(b"PK")                 # a killed run's temp file
    for path in items[:4]:
        assert store.read_item(path) is None
    result = run(dataset, tmp_path, random_model, random_provenance)
    assert (result.computed, result.reused) == (4, 4)
    assert not list((tmp_path / "items").glob(".tmp-*"))
    assert_same(snapshot(tmp_path), clean)
    # Changed audio makes its item stale: redone, the others reused.
    item = dataset.items[0]
    write_clip(item.path, 1, 99, subtype="PCM_16")
    try:
        result = run(read_dataset(tree), tmp_path, random_model, random_provenance)
        assert (result.computed, result.reused) == (1, 7)
    finally:
        write_clip(item.path, 1, 0, subtype="PCM_16")  # restore for the other tests


def test_disk_full_stops_clearly_and_keeps_finished_items(tree, clean, tmp_path, monkeypatch, capsys, random_model,
                                                          random_provenance):
    real, calls = np.savez, []

    def full_disk(file, **arrays):
        calls.append(1)
        if len(calls) > 2:
            file.write(b"PK\x03\x04 half an npz")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(file, **arrays)

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OutputError) as info:
        run(read_dataset(tree), tmp_path, random_model, random_provenance)
    message = str(info.value)
    assert "No space left on device" in message and "free some disk space" in message
    assert str(tmp_path / "items") in message and "2 finished item(s) are kept" in message
    assert len(snapshot(tmp_path)) == 2
    assert all(store.read_item(p) is not None for p in (tmp_path / "items").glob("*.npz"))
    assert not list((tmp_path / "items").glob(".tmp-*"))
    # Through the command line: exit status 1 and the message on stderr.
    calls.clear()
    calls.extend([1, 1])
    assert cli.main(["extract", "--data", str(tree), "--out", str(tmp_path), "--weights", "random", "--quiet",
                     "--group-size", "3"]) == 1
    assert "warblr: error:" in capsys.readouterr().err
    monkeypatch.undo()
    run(read_dataset(tree), tmp_path, random_model, random_provenance)
    assert_same(snapshot(tmp_path), clean)


def test_permission_error_stops_clearly(tree, tmp_path, monkeypatch, random_model, random_provenance):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(warblr.fileio.tempfile, "NamedTemporaryFile", denied)
    with pytest.raises(OutputError, match="Permission denied.*0 finished item.*fix the permissions"):
        run(read_dataset(tree), tmp_path, random_model, random_provenance)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_items_folder(tree, tmp_path, random_model, random_provenance):
    (tmp_path / "items").mkdir()
    (tmp_path / "items").chmod(0o555)
    try:
        with pytest.raises(OutputError, match="Permission denied"):
            run(read_dataset(tree), tmp_path, random_model, random_provenance)
    finally:
        (tmp_path / "items").chmod(0o755)


def test_unwritable_output_folder(tmp_path, tree, random_model, random_provenance):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OutputError, match="cannot write"):
        run(read_dataset(tree), tmp_path / "file" / "out", random_model, random_provenance)


def test_hostile_ids_are_never_opened_or_written(tmp_path, monkeypatch, random_model, random_provenance, make_tree, write_clip):
    base = tmp_path / "deep" / "er"
    root = make_tree(base / "data", 2, 2)
    hostile = ["../../x", "../../../x", "/tmp/x", "..", "a/../../x", "x\x00y"]
    with open(root / "metadata.csv", "a") as handle:
        handle.writelines(f'"{i}",test,1\n' for i in hostile)
    for target in (base / "x.wav", tmp_path / "deep" / "x.wav", base / "data" / "x.wav"):
        write_clip(target, 1, 5)  # where the hostile ids would lead
    before = {p for p in tmp_path.rglob("*")}
    opened, written = [], []
    real_load, real_write = warblr.audio.load_audio, store.write_item
    monkeypatch.setattr(warblr.audio, "load_audio", lambda path, **k: opened.append(Path(path)) or real_load(path))
    monkeypatch.setattr(store, "write_item", lambda path, *a: written.append(Path(path)) or real_write(path, *a))
    out = base / "out"
    report = analyse(read_dataset(root), out, model=random_model, provenance=random_provenance, folds=2,
                              engine=ENGINE, progress=False)
    assert {p["item_id"] for p in report["skipped"]} >= set(hostile)
    assert opened and all(p.parent == root / "wav" for p in opened)
    assert written and all(p.parent == out / "items" for p in written)
    new = {p for p in tmp_path.rglob("*")} - before
    assert all(out in p.parents or p == out for p in new)


def test_a_second_run_on_the_same_folder_is_refused(tree, tmp_path, random_model, random_provenance):
    fcntl = pytest.importorskip("fcntl")
    tmp_path.mkdir(exist_ok=True)
    with open(tmp_path / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(OutputError, match="another warblr run"):
            run(read_dataset(tree), tmp_path, random_model, random_provenance)


def extract_command(data, out):
    return [sys.executable, "-m", "warblr", "extract", "--data", str(data), "--out", str(out),
            "--weights", "random", "--group-size", "2", "--quiet"]


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_equals_a_clean_run(tmp_path, make_tree):
    data = make_tree(tmp_path / "data", 10, 6)
    started = time.monotonic()
    subprocess.run(extract_command(data, tmp_path / "clean"), check=True, capture_output=True, timeout=300)
    duration = time.monotonic() - started
    rng = random.Random(1234)
    out = tmp_path / "killed"
    killed = 0
    for _ in range(3):
        process = subprocess.Popen(extract_command(data, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * duration)
        process.send_signal(signal.SIGKILL)
        killed += process.wait(timeout=60) == -signal.SIGKILL
    assert killed  # at least one run really died mid-way
    subprocess.run(extract_command(data, out), check=True, capture_output=True, timeout=300)
    assert_same(snapshot(out), snapshot(tmp_path / "clean"))
    assert len(snapshot(out)) == 16


# ----------------------------------------------------------------------------- one owner, shared folders


@pytest.fixture
def umask_022():
    """A typical user's umask for the test, the previous one restored after."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_written_files_follow_the_umask_not_the_temporary_files_0600(tmp_path, umask_022):
    for mask, expected in ((0o022, 0o644), (0o002, 0o664), (0o077, 0o600)):
        os.umask(mask)
        path = tmp_path / f"note-{mask:o}.txt"
        warblr.fileio.atomic_write(path, lambda handle: handle.write("x"), mode="w")
        plain = tmp_path / f"plain-{mask:o}.txt"
        plain.write_text("x")  # what open() gives: the reference
        assert oct(path.stat().st_mode & 0o777) == oct(plain.stat().st_mode & 0o777) == oct(expected)


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/sbin/runuser").exists(),
                    reason="needs root to run a reader as the unprivileged user nobody")
def test_another_user_reads_what_extract_analyse_and_export_wrote(tree, random_model, random_provenance,
                                                                  umask_022):
    import tempfile

    from warblr.lab.export import export_parquet

    shared = Path(tempfile.mkdtemp(prefix="warblr-shared-"))
    try:
        shared.chmod(0o755)  # a shared folder: others may enter and read
        dataset = read_dataset(tree)
        analyse(dataset, shared / "out", model=random_model, provenance=random_provenance, group_size=3,
                engine=ENGINE, progress=False, folds=2, pca_sizes=(2,))
        export_parquet(shared / "out", shared / "out" / "features.parquet", dataset=dataset)
        reader = ("import sys, json, numpy as np, pyarrow.parquet as pq\nfrom pathlib import Path\n"
                  "out = Path(sys.argv[1])\n"
                  "items = sorted((out / 'items').glob('*.npz'))\n"
                  "for item in items:\n    np.load(item)['embeddings']\n"
                  "json.loads((out / 'report.json').read_text()); (out / 'report.md').read_text()\n"
                  "[p.read_bytes() for p in (out / 'plots').glob('*.png')]\n"
                  "print(len(items), pq.read_table(out / 'features.parquet').num_rows)\n")
        done = subprocess.run(["/usr/sbin/runuser", "-u", "nobody", "--", sys.executable, "-c", reader,
                               str(shared / "out")], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert int(done.stdout.split()[0]) == len(dataset.items)
    finally:
        import shutil

        shutil.rmtree(shared, ignore_errors=True)


@pytest.mark.slow  # waits on a running analyse; the folder lock itself is tested in the default pass
def test_a_concurrent_extract_cannot_mix_into_a_running_analyse(tmp_path, make_tree, random_model,
                                                                random_provenance):
    data = make_tree(tmp_path / "data", 3, 3)
    out = tmp_path / "out"
    analyse_command = [sys.executable, "-m", "warblr", "analyse", "--data", str(data), "--out", str(out),
                       "--weights", "random", "--device", "cpu", "--group-size", "4", "--quiet"]
    process = subprocess.Popen(analyse_command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    refused_after_extraction, mixed = 0, False
    dataset = read_dataset(data)
    try:
        while not list((out / "items").glob("*.npz")) and process.poll() is None:
            time.sleep(0.02)  # analyse has started writing, so it holds the folder
        while process.poll() is None:
            extracted = len(list((out / "items").glob("[!.]*.npz"))) == len(dataset.items)
            try:  # a bfloat16 extract on the same folder, while analyse runs: must be refused
                extract(dataset, out, model=random_model, provenance=random_provenance, group_size=4,
                        engine=make_engine(device="cpu", dtype="bfloat16", workers=0), progress=False)
                # analyse publishes report.json last, under its lock: an extract that got in before it mixed runs
                mixed = mixed or not (out / "report.json").exists()
            except OutputError as exc:
                assert "another warblr" in str(exc)
                refused_after_extraction += extracted and process.poll() is None
            time.sleep(0.05)
    finally:
        process.kill()
    assert process.wait() == 0, process.stderr.read()
    assert not mixed
    # analyse keeps the folder from its first read to its last plot: refused also while it cross-validates.
    assert refused_after_extraction >= 1
