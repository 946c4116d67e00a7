"""`warblr extract | analyse | demo` end to end on small generated trees, with seeded random weights."""

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from warblr import cli
from warblr.embed import make_engine
from warblr.lab import store
from warblr.lab.analyse import analyse
from warblr.lab.extract import extract
from warblr.lab.feature_sets import FEATURE_SETS, STATS_NOTE
from warblr.weights import load_with_provenance
from warblr.audio import load_audio
from warblr.lab.dataset import read_dataset
from warblr.embed import batch_examples
from warblr.errors import InvalidArgumentError
from warblr.features import waveform_to_examples
from warblr.lab.report import weights_label

CPU = make_engine(device="cpu")


def test_extract_stores_the_reference_examples_and_embeddings(tmp_path, random_model, random_provenance, make_tree):
    dataset = read_dataset(make_tree(tmp_path / "data", 3, 2))
    result = extract(dataset, tmp_path / "out", model=random_model, provenance=random_provenance,
                              group_size=2, engine=CPU, progress=False)
    assert result.done == sorted(i.item_id for i in dataset.items) and result.computed == 5
    for item in dataset.items:
        examples, embeddings = store.read_item(tmp_path / "out" / "items" / f"{item.item_id}.npz")
        waveform, rate = load_audio(item.path)
        np.testing.assert_array_equal(examples, batch_examples([(waveform, rate)])[0])  # what the engine gives
        # ... which is the numpy reference within the engine's documented float32 error (2.5e-4).
        np.testing.assert_allclose(examples, waveform_to_examples(waveform, rate), rtol=0, atol=2.5e-4)
        with torch.inference_mode():
            expected = random_model(torch.from_numpy(examples)).numpy()
        # Same network, other batch composition: float32 summation order only.
        np.testing.assert_allclose(embeddings, expected, rtol=1e-4, atol=1e-5)
        assert examples.shape == (2, 96, 64) and embeddings.shape == (2, 128)
    again = extract(dataset, tmp_path / "out", model=random_model, provenance=random_provenance,
                             engine=CPU, progress=False)
    assert again.computed == 0 and again.reused == 5


def test_analyse_writes_everything_lists_bad_items_and_beats_chance(tmp_path, random_model, random_provenance, make_tree, bad_ids):
    root = make_tree(tmp_path / "data", 14, 10, bad=True)
    out = tmp_path / "out"
    report = analyse(read_dataset(root), out, model=random_model, provenance=random_provenance, folds=4,
                              engine=make_engine(device="cpu", workers=3), progress=False)
    assert report["auc"]["log_mel"]["best"]["mean"] > 0.75
    assert list(report["auc"]) == [e.key for e in FEATURE_SETS] == ["log_mel", "log_mel_stats", "vggish",
                                                                     "vggish_stats"]
    assert report["auc"]["log_mel_stats"]["features"] == 192
    assert report["auc"]["log_mel_stats"]["best"]["mean"] > 0.75  # the planted chirps are above chance
    assert {p["item_id"] for p in report["skipped"]} == bad_ids
    why = {p["item_id"]: p["reason"] for p in report["skipped"]}
    assert "shorter than one" in why["tooshort"] and "not a readable audio file" in why["notaudio"]
    assert "empty" in why["empty"] and "no audio file" in why["missing"] and "has no row" in why["orphan"]
    assert report["counts"] == {**report["counts"], "items": 24, "bird": 14, "no_bird": 10, "examples": 48}
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["auc"]["vggish"]["best"]["pca"] == report["auc"]["vggish"]["best"]["pca"]
    assert on_disk["weights"]["pretrained"] is False
    for key in ("log_mel", "log_mel_stats", "vggish", "vggish_stats"):
        assert [r["pca"] for r in on_disk["auc"][key]["sweep"]] == [2, 4, 8, 16]
        assert len(on_disk["auc"][key]["best"]["folds"]) == 4
    md = (out / "report.md").read_text()
    assert "RANDOM" in md and "NOT pretrained" in md and "../../escape" in md
    for entry in FEATURE_SETS:
        name = entry.name
        assert md.count(f"\n| {name} | {entry.dims} | {entry.description} | ") == 1  # its row in the AUC table
        assert f" | {name} " in md.split("### PCA sweep")[1]  # its column in the sweep table
    assert STATS_NOTE in md
    assert sorted(on_disk["plots"]) == sorted(f"plots/{n}.png" for n in
                                              ("pca_log_mel", "pca_log_mel_stats", "pca_vggish", "pca_vggish_stats", "roc", "auc_sweep",
                                               "log_mel_examples"))
    for plot in on_disk["plots"]:
        with Image.open(out / plot) as image:
            assert "RANDOM" in image.text["Title"] and "NOT pretrained" in image.text["Title"]
    assert sorted(p.name for p in (out / "items").iterdir() if not p.name.startswith(".")) == \
        sorted(f"item-{k:03d}.npz" for k in range(24))
    assert not (tmp_path / "escape.npz").exists() and not list(tmp_path.glob("**/escape*"))


@pytest.mark.slow  # a whole analyse run; the random-weights labels are checked by test_analyse_writes_everything...
def test_cli_analyse_falls_back_to_random_weights_loudly(tmp_path, monkeypatch, capsys, make_tree):
    monkeypatch.setenv("WARBLR_VGGISH_WEIGHTS", str(tmp_path / "nowhere.pth"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    root = make_tree(tmp_path / "data", 6, 4)
    out = tmp_path / "out"
    assert cli.main(["analyse", "--data", str(root), "--out", str(out), "--folds", "3"]) == 0
    captured = capsys.readouterr()
    assert "RANDOM" in captured.err and "NOT pretrained" in captured.err
    assert "log-mel (pooled)" in captured.out and "VGGish embedding (pooled)" in captured.out
    assert "log-mel (mean, std, max)" in captured.out
    weights = json.loads((out / "report.json").read_text())["weights"]
    assert weights["pretrained"] is False and weights["requested"] == "auto" and "nowhere.pth" in weights["note"]
    assert cli.main(["extract", "--data", str(root), "--out", str(out), "--weights", "random", "--quiet"]) == 0
    assert "10 reused" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["demo", "extract", "analyse"])
def test_help_explains_options_with_defaults(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--out" in text and "--weights" in text and "(default: auto)" in text and "--quiet" in text
    for option in ("--device auto|cpu|cuda|cuda:N", "--batch-size BATCH_SIZE", "--workers WORKERS"):
        assert option in text
    assert "(default: 64)" in text and "(default: float32)" in text and "opt-in" in text


def test_cli_reports_bad_arguments_as_warblr_errors(tmp_path, capsys):
    assert cli.main(["analyse", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "o")]) == 1
    assert "warblr: error: --data" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["extract", "--data", str(tmp_path), "--out", str(tmp_path), "--limit", "0"])


def test_demo_generates_then_reuses_its_corpus(tmp_path, capsys):
    args = ["demo", "--out", str(tmp_path / "demo"), "--size", "8", "--weights", "random", "--folds", "2"]
    assert cli.main(args) == 0
    first = capsys.readouterr()
    assert "generated" in first.out and "ROC AUC" in first.out
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["counts"]["items"] == 8 and report["counts"]["examples"] == 80
    assert cli.main(args + ["--quiet"]) == 0
    second = capsys.readouterr()
    assert "generated" not in second.out and "ROC AUC" in second.out
    assert json.loads((tmp_path / "demo" / "report.json").read_text())["counts"]["reused"] == 8


@pytest.mark.slow  # loads the model several times; tests/engine/test_weights.py covers provenance in the default pass
def test_weights_provenance(tmp_path, random_provenance):
    import warblr.model
    from warblr.errors import WeightsNotFoundError

    with pytest.raises(WeightsNotFoundError, match="nope.pth"):
        load_with_provenance(tmp_path / "nope.pth")  # an explicit path never falls back
    # A file that loads but is not the released one (its SHA-256 does not start with 10086976).
    path = tmp_path / "vggish.pth"
    torch.save(warblr.model.random_state_dict(seed=4), path)
    _, provenance = load_with_provenance(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert provenance.pretrained is False and provenance.sha256 == digest and provenance.seed is None
    assert digest in provenance.note and "10086976" in provenance.note
    assert weights_label(provenance.as_dict()) == f"VGGish weights: {path}, NOT pretrained"
    # A pretrained label names the file and the start of its hash (built from a report, as report.md does).
    released = {**provenance.as_dict(), "pretrained": True, "note": None}
    assert weights_label(released) == f"VGGish weights: pretrained (vggish.pth, SHA-256 {digest[:8]}...)"
    _, provenance = load_with_provenance("random", seed=3)
    assert provenance.pretrained is False and provenance.seed == 3 and "NOT pretrained" in provenance.note
    # The shared test fixture states what load_with_provenance states.
    _, provenance = load_with_provenance("random", seed=0)
    assert provenance.as_dict() == {**random_provenance.as_dict(), "note": provenance.note}


def items_of(out):
    return {p.name: store.read_item(p) for p in sorted((out / "items").glob("*.npz"))}


def test_parallel_decoding_gives_the_serial_result_and_names_bad_items(tmp_path, random_model, random_provenance, make_tree):
    dataset = read_dataset(make_tree(tmp_path / "data", 4, 3, bad=True))
    runs = {}
    for workers in (0, 3):
        engine = make_engine(device="cpu", workers=workers)
        runs[workers] = extract(dataset, tmp_path / f"out{workers}", model=random_model,
                                         provenance=random_provenance, group_size=4, engine=engine, progress=False)
    serial, parallel = runs[0], runs[3]
    assert parallel.done == serial.done == [f"item-{k:03d}" for k in range(7)]
    assert [(p.item_id, p.reason) for p in parallel.failed] == [(p.item_id, p.reason) for p in serial.failed]
    assert {p.item_id for p in parallel.failed} == {"tooshort", "notaudio", "empty"}
    assert all(p.item_id in p.reason for p in parallel.failed)  # named by the item's file
    a, b = items_of(tmp_path / "out0"), items_of(tmp_path / "out3")
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name][0], b[name][0])
        np.testing.assert_array_equal(a[name][1], b[name][1])


def test_the_network_precision_is_part_of_each_items_fingerprint(tmp_path, random_model, random_provenance, make_tree):
    dataset = read_dataset(make_tree(tmp_path / "data", 1, 1))

    def run(dtype):
        engine = make_engine(device="cpu", dtype=dtype, workers=0)
        result = extract(dataset, tmp_path / "out", model=random_model, provenance=random_provenance,
                                  engine=engine, progress=False)
        return result.computed, items_of(tmp_path / "out")

    computed, fp32 = run("float32")
    assert computed == 2
    computed, bf16 = run("bfloat16")
    assert computed == 2  # float32 items are stale for a bfloat16 run ...
    for name in fp32:
        np.testing.assert_array_equal(bf16[name][0], fp32[name][0])  # ... features stay float32 ...
        assert not np.array_equal(bf16[name][1], fp32[name][1])       # ... the network's output does not
    assert run("float32")[0] == 2 and run("float32")[0] == 0


def test_the_hop_and_where_the_log_mel_ran_are_part_of_each_items_fingerprint(tmp_path, random_model,
                                                                              random_provenance, make_tree):
    dataset = read_dataset(make_tree(tmp_path / "data", 1, 1))

    def run(hop):
        return extract(dataset, tmp_path / "out", model=random_model, provenance=random_provenance, engine=CPU,
                       progress=False, hop=hop).computed

    assert (run(0.96), run(0.48), run(0.48), run(0.96)) == (2, 2, 0, 2)  # another hop: every item redone
    item = next((tmp_path / "out" / "items").glob("*.npz"))
    meta = json.loads(str(np.load(item)["meta"]))
    assert (meta["hop"], meta["log_mel_device"]) == (0.96, "cpu")
    audio = dataset.items[0].path
    on_gpu = store.item_fingerprint(audio, random_provenance, log_mel_device=torch.device("cuda", 1))
    assert on_gpu["log_mel_device"] == "cuda" and on_gpu != store.item_fingerprint(audio, random_provenance)
    with pytest.raises(InvalidArgumentError) as info:
        run(0.015)  # not a whole number of 10 ms frames
    assert info.value.parameter == "hop"


def test_analyse_reports_its_hop(tmp_path, random_model, random_provenance, make_tree):
    report = analyse(read_dataset(make_tree(tmp_path / "data", 4, 4)), tmp_path / "out", model=random_model,
                     provenance=random_provenance, engine=CPU, progress=False, folds=2, pca_sizes=(2,), hop=0.48)
    assert report["engine"]["hop"] == 0.48
    assert json.loads((tmp_path / "out" / "report.json").read_text())["engine"]["hop"] == 0.48
    assert "an example every 0.48 s" in (tmp_path / "out" / "report.md").read_text()
    assert not list((tmp_path / "out").glob(".tmp-*"))  # the report set was published, no staging left


def test_engine_options_are_checked_and_named():
    assert make_engine(device="auto").device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert make_engine(workers=None).workers >= 1
    for kwargs, name in [({"batch_size": 0}, "batch_size"), ({"batch_size": 2.5}, "batch_size"),
                         ({"workers": -1}, "workers"), ({"dtype": "float64"}, "dtype"),
                         ({"device": "abacus"}, "device")]:
        with pytest.raises(InvalidArgumentError, match=f"^{name}: ") as caught:
            make_engine(**kwargs)
        assert caught.value.parameter == name  # the library names its parameter ...


def test_the_command_line_names_the_flag_of_a_bad_library_argument(tmp_path, capsys, make_tree):
    root = make_tree(tmp_path / "data", 1, 1)
    assert cli.main(["extract", "--data", str(root), "--out", str(tmp_path / "out"), "--device", "abacus"]) == 1
    err = capsys.readouterr().err
    assert "warblr: error: --device: 'abacus' is not a torch device" in err  # ... the CLI names its flag
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cli_refuses_cuda_without_one_before_any_work(tmp_path, capsys, make_tree):
    root = make_tree(tmp_path / "data", 1, 1)
    assert cli.main(["extract", "--data", str(root), "--out", str(tmp_path / "out"), "--device", "cuda"]) == 1
    assert "CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_extract_resumes_bit_identically(tmp_path, monkeypatch, random_model, random_provenance, make_tree):
    dataset = read_dataset(make_tree(tmp_path / "data", 3, 2))
    cuda = make_engine(device="cuda")

    def run(out):
        return extract(dataset, out, model=random_model, provenance=random_provenance, group_size=2,
                                engine=cuda, progress=False)

    def killed_at_item_3(path, *args):
        if path.name == "item-003.npz":
            raise KeyboardInterrupt
        real(path, *args)

    run(tmp_path / "clean")
    real = store.write_item
    monkeypatch.setattr(store, "write_item", killed_at_item_3)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed")
    monkeypatch.undo()
    assert run(tmp_path / "resumed").reused == 3
    clean, resumed = items_of(tmp_path / "clean"), items_of(tmp_path / "resumed")
    for item in dataset.items:
        name = f"{item.item_id}.npz"
        np.testing.assert_array_equal(resumed[name][0], clean[name][0])
        np.testing.assert_array_equal(resumed[name][1], clean[name][1])
        # On the GPU too, the examples are the numpy reference within the engine's float32 error.
        reference = waveform_to_examples(*load_audio(item.path))
        np.testing.assert_allclose(clean[name][0], reference, rtol=0, atol=2.5e-4)


def test_a_bad_test_set_is_named_by_its_own_flag(tmp_path, capsys, make_tree):
    root = make_tree(tmp_path / "data", 2, 2)
    assert cli.main(["analyse", "--data", str(root), "--test-data", str(tmp_path / "absent"),
                     "--out", str(tmp_path / "o"), "--weights", "random", "--quiet"]) == 1
    assert f"warblr: error: --test-data {tmp_path / 'absent'}: not a directory" in capsys.readouterr().err
