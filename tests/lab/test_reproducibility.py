"""Same inputs and settings give bit-identical items: across fresh processes, progress bar or not, any --workers.

Each run is a fresh ``python -m warblr extract`` process, run the way people
run it (progress bar on, stderr a pipe), so thread start-up, library
initialisation and the first group of the run are all exercised again.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf

from warblr.lab import store

#: Fresh processes compared in the slow test.
RUNS = 20


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Six 44.1 kHz clips (so resampling runs), in two groups of four and two."""
    root = tmp_path_factory.mktemp("repro") / "data"
    (root / "wav").mkdir(parents=True)
    rng = np.random.default_rng(11)
    rows = []
    for k in range(6):
        t = np.arange(int(2.5 * 44100)) / 44100
        clip = 0.05 * rng.standard_normal(t.size) + (k % 2) * 0.2 * np.sin(2 * np.pi * rng.uniform(2e3, 6e3) * t)
        sf.write(str(root / "wav" / f"clip-{k}.wav"), clip, 44100, subtype="PCM_16")
        rows.append(f"clip-{k},test,{k % 2}")
    (root / "metadata.csv").write_text("itemid,datasetid,hasbird\n" + "\n".join(rows) + "\n")
    return root


def extract_in_a_fresh_process(data, out, *extra):
    command = [sys.executable, "-m", "warblr", "extract", "--data", str(data), "--out", str(out),
               "--weights", "random", "--device", "cpu", "--group-size", "4", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MKL_", "OMP_"))}  # warblr's own defaults
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "extract:" in done.stderr  # the progress bar was on
    return {path.name: tuple(array.tobytes() for array in store.read_item(path))
            for path in sorted((out / "items").glob("*.npz"))}


@pytest.mark.slow
def test_twenty_fresh_processes_give_identical_bytes(tree, tmp_path):
    with ThreadPoolExecutor(2) as pool:  # two at a time: thread timing varies more on a busy machine
        runs = list(pool.map(lambda k: extract_in_a_fresh_process(tree, tmp_path / f"run-{k}"), range(RUNS)))
    assert len(runs[0]) == 6
    for k, run in enumerate(runs[1:], start=1):
        differing = sorted(name for name in run if run[name] != runs[0][name])
        assert run.keys() == runs[0].keys() and not differing, (
            f"run {k} differs from run 0 in {differing}: {describe(run, runs[0], differing)}")


def describe(run, first, names):
    """Which arrays of each differing item differ, and by how much (read as float32: examples, embeddings)."""
    found = []
    for name in names:
        for index, (ours, theirs) in enumerate(zip(run[name], first[name])):
            if ours != theirs and len(ours) == len(theirs) and len(ours) % 4 == 0:
                gap = np.abs(np.frombuffer(ours, np.float32) - np.frombuffer(theirs, np.float32))
                found.append(f"{name} array {index}: {int((gap > 0).sum())} values differ, largest {gap.max():.3g}")
            elif ours != theirs:
                found.append(f"{name} array {index}: {len(ours)} against {len(theirs)} bytes")
    return "; ".join(found)


@pytest.mark.slow  # two extract runs
def test_decoding_threads_do_not_change_a_bit(tree, tmp_path):
    serial = extract_in_a_fresh_process(tree, tmp_path / "serial", "--workers", "0")
    threaded = extract_in_a_fresh_process(tree, tmp_path / "threaded", "--workers", "4")
    assert len(serial) == 6 and serial == threaded
