"""`warblr extract | analyse | demo` end to end on small generated trees, with seeded random weights."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import torch

from warblr import cli, pipeline
from warblr.audio import load_audio
from warblr.embed import batch_examples
from warblr.dataset import read_dataset
from warblr.features import waveform_to_examples
from warblr.model import load_vggish

SR = 16000


def clip(label, seed, seconds=2.0):
    """Closed-form stand-ins: noise of random level and colour, plus 3-6 kHz chirps when ``label`` is 1."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    noise = np.cumsum(rng.standard_normal(n)) * rng.uniform(0, 0.02) + rng.standard_normal(n)
    signal = noise / np.std(noise) * 10 ** rng.uniform(-2.5, -1.8)
    if label:
        t = np.arange(int(0.25 * SR)) / SR
        for start in rng.integers(0, n - t.size, 6):
            f = rng.uniform(3000, 6000) - 4000 * t
            signal[start:start + t.size] += 0.1 * np.hanning(t.size) * np.sin(2 * np.pi * np.cumsum(f) / SR)
    return signal


def make_tree(root, n_bird=12, n_none=8, *, bad=False, seconds=2.0):
    """A warblrb10k-layout tree; with ``bad``, planted bad items of every kind."""
    root = Path(root)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    labels = {f"item-{k:03d}": int(k < n_bird) for k in range(n_bird + n_none)}
    for k, (item_id, label) in enumerate(labels.items()):
        sf.write(str(root / "wav" / f"{item_id}.wav"), clip(label, k, seconds), SR, subtype="PCM_16")
    rows = [f"{i},test,{label}" for i, label in labels.items()]
    if bad:
        sf.write(str(root / "wav" / "tooshort.wav"), np.zeros(4000), SR)   # 0.25 s
        (root / "wav" / "notaudio.wav").write_text("hello, I am not a WAV file")
        (root / "wav" / "empty.wav").write_bytes(b"")
        sf.write(str(root / "wav" / "orphan.wav"), np.zeros(SR), SR)       # a file without a row
        rows += ["tooshort,test,1", "notaudio,test,0", "empty,test,1", "missing,test,1",
                 "../../escape,test,1", "badlabel,test,2"]
    (root / "metadata.csv").write_text("itemid,datasetid,hasbird\n" + "\n".join(rows) + "\n")
    return root


BAD_IDS = {"tooshort", "notaudio", "empty", "missing", "../../escape", "badlabel", "orphan"}


@pytest.fixture(scope="session")
def model():
    return load_vggish("random", seed=0)


@pytest.fixture(scope="session")
def provenance(model):
    return {"requested": "random", "source": model.weights_source, "pretrained": False, "final_relu": True,
            "seed": 0}


def test_extract_stores_the_reference_examples_and_embeddings(tmp_path, model, provenance):
    dataset = read_dataset(make_tree(tmp_path / "data", 3, 2))
    result = pipeline.extract(dataset, tmp_path / "out", model=model, provenance=provenance, group_size=2,
                              progress=False)
    assert result.done == sorted(i.item_id for i in dataset.items) and result.computed == 5
    for item in dataset.items:
        examples, embeddings = pipeline.read_item(tmp_path / "out" / "items" / f"{item.item_id}.npz")
        waveform, rate = load_audio(item.path)
        np.testing.assert_array_equal(examples, batch_examples([(waveform, rate)])[0])  # what the engine gives
        # ... which is the numpy reference within the engine's documented float32 error (2.5e-4).
        np.testing.assert_allclose(examples, waveform_to_examples(waveform, rate), rtol=0, atol=2.5e-4)
        with torch.inference_mode():
            expected = model(torch.from_numpy(examples)).numpy()
        # Same network, other batch composition: float32 summation order only.
        np.testing.assert_allclose(embeddings, expected, rtol=1e-4, atol=1e-5)
        assert examples.shape == (2, 96, 64) and embeddings.shape == (2, 128)
    again = pipeline.extract(dataset, tmp_path / "out", model=model, provenance=provenance, progress=False)
    assert again.computed == 0 and again.reused == 5


def test_analyse_writes_everything_lists_bad_items_and_beats_chance(tmp_path, model, provenance):
    root = make_tree(tmp_path / "data", 14, 10, bad=True)
    out = tmp_path / "out"
    report = pipeline.analyse(read_dataset(root), out, model=model, provenance=provenance, folds=4,
                              progress=False)
    assert report["auc"]["log_mel"]["best"]["mean"] > 0.75
    assert {p["item_id"] for p in report["skipped"]} == BAD_IDS
    why = {p["item_id"]: p["reason"] for p in report["skipped"]}
    assert "shorter than one" in why["tooshort"] and "not a readable audio file" in why["notaudio"]
    assert "empty" in why["empty"] and "no audio file" in why["missing"] and "has no row" in why["orphan"]
    assert report["counts"] == {**report["counts"], "items": 24, "bird": 14, "no_bird": 10, "examples": 48}
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["auc"]["vggish"]["best"]["pca"] == report["auc"]["vggish"]["best"]["pca"]
    assert on_disk["weights"]["pretrained"] is False
    for key in ("log_mel", "vggish"):
        assert [r["pca"] for r in on_disk["auc"][key]["sweep"]] == [2, 4, 8, 16]
        assert len(on_disk["auc"][key]["best"]["folds"]) == 4
    md = (out / "report.md").read_text()
    assert "RANDOM" in md and "NOT pretrained" in md and "../../escape" in md
    assert sorted(on_disk["plots"]) == sorted(f"plots/{n}.png" for n in
                                              ("pca_log_mel", "pca_vggish", "roc", "auc_sweep", "log_mel_examples"))
    for plot in on_disk["plots"]:
        with Image.open(out / plot) as image:
            assert "RANDOM" in image.text["Title"] and "NOT pretrained" in image.text["Title"]
    assert sorted(p.name for p in (out / "items").iterdir() if not p.name.startswith(".")) == \
        sorted(f"item-{k:03d}.npz" for k in range(24))
    assert not (tmp_path / "escape.npz").exists() and not list(tmp_path.glob("**/escape*"))


def test_cli_analyse_falls_back_to_random_weights_loudly(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WARBLR_VGGISH_WEIGHTS", str(tmp_path / "nowhere.pth"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    root = make_tree(tmp_path / "data", 6, 4)
    out = tmp_path / "out"
    assert cli.main(["analyse", "--data", str(root), "--out", str(out), "--folds", "3"]) == 0
    captured = capsys.readouterr()
    assert "RANDOM" in captured.err and "NOT pretrained" in captured.err
    assert "log-mel (pooled)" in captured.out and "VGGish embedding (pooled)" in captured.out
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


def test_weights_provenance(tmp_path, monkeypatch, model):
    import hashlib

    import warblr.model
    from warblr.errors import WeightsNotFoundError

    with pytest.raises(WeightsNotFoundError, match="nope.pth"):
        pipeline.load_model(tmp_path / "nope.pth")  # an explicit path never falls back
    fake = tmp_path / "vggish.pth"
    fake.write_bytes(b"pretend weights")

    def pretend(weights, **kwargs):
        model.weights_source, model.pretrained = str(fake), True
        return model

    monkeypatch.setattr(warblr.model, "load_vggish", pretend)
    try:
        _, provenance = pipeline.load_model(fake)
    finally:
        model.weights_source, model.pretrained = "random (seed 0)", False
    assert provenance["pretrained"] is True and "note" not in provenance
    assert provenance["sha256"] == hashlib.sha256(b"pretend weights").hexdigest()
    assert pipeline.weights_label(provenance) == "VGGish weights: pretrained (vggish.pth)"
    monkeypatch.undo()
    _, provenance = pipeline.load_model("random", seed=3)
    assert provenance["pretrained"] is False and provenance["seed"] == 3 and "NOT pretrained" in provenance["note"]
