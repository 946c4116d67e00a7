"""``warblr export``: the item store as Parquet, row for row, in bounded memory; bad items reported, not exported."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from warblr import cli, spec
from warblr.embed import make_engine
from warblr.errors import InvalidArgumentError
from warblr.lab import store
from warblr.lab.dataset import read_dataset
from warblr.lab.export import export_parquet
from warblr.lab.extract import extract

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, make_tree, random_model, random_provenance):
    """A tree with bad items, extracted locally: ``(tree, out)``."""
    root = tmp_path_factory.mktemp("export")
    tree = make_tree(root / "data", 4, 3, bad=True)
    extract(read_dataset(tree), root / "out", model=random_model, provenance=random_provenance, group_size=3,
            engine=make_engine(device="cpu", workers=0), progress=False)
    return tree, root / "out"


def stored_items(out):
    """``{item_id: (examples, embeddings)}`` of every readable item."""
    return {path.stem: store.read_item(path) for path in sorted((out / "items").glob("*.npz"))}


def test_rows_equal_the_item_store(extracted, tmp_path):
    tree, out = extracted
    dataset = read_dataset(tree)
    result = export_parquet(out, tmp_path / "features.parquet", dataset=dataset, log_mel=True)
    items = stored_items(out)
    assert result.items == len(items) == 7
    # The dataset's bad audio never became items: reported by id, like extract reports them.
    assert {p.item_id for p in result.problems} == {"empty", "notaudio", "tooshort"}
    table = pq.read_table(tmp_path / "features.parquet")
    assert table.column_names == ["item_id", "path", "label", "example", "start_s", "end_s", "embedding", "log_mel"]
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 128)
    assert table.schema.field("log_mel").type == pa.list_(pa.list_(pa.float32(), 64), 96)
    assert json.loads(table.schema.metadata[b"warblr"])["precision"] == "float32"
    assert table.num_rows == result.rows == sum(len(e) for _, e in items.values())
    labels = {item.item_id: item.label for item in dataset.items}
    frame = table.to_pandas()
    for item_id, (examples, embeddings) in items.items():
        rows = frame[frame["item_id"] == item_id]
        assert rows["example"].tolist() == list(range(len(embeddings)))
        starts = np.arange(len(embeddings)) * 15360  # 16 kHz samples: 0.96 s apart
        np.testing.assert_array_equal(rows["start_s"], starts / 16000)
        np.testing.assert_array_equal(rows["end_s"], (starts + 15600) / 16000)
        assert set(rows["path"]) == {str(tree / "wav" / f"{item_id}.wav")}
        assert set(rows["label"]) == {labels[item_id]}
        np.testing.assert_array_equal(np.stack(rows["embedding"]), embeddings)
        np.testing.assert_array_equal(np.stack([np.stack(m) for m in rows["log_mel"]]), examples)
    assert frame["item_id"].tolist() == sorted(frame["item_id"])  # id order, examples in order


def test_read_back_with_pandas_polars_and_datasets(extracted, tmp_path):
    _, out = extracted
    path = tmp_path / "features.parquet"
    export_parquet(out, path)
    expected = np.concatenate([e for _, e in stored_items(out).values()])
    frame = pd.read_parquet(path)
    assert list(frame.columns) == ["item_id", "example", "start_s", "end_s", "embedding"]  # no --data: no labels
    np.testing.assert_array_equal(np.stack(frame["embedding"]), expected)
    import datasets  # Hugging Face
    import polars

    np.testing.assert_array_equal(polars.read_parquet(path)["embedding"].to_numpy(), expected)
    np.testing.assert_array_equal(np.array(datasets.Dataset.from_parquet(str(path))["embedding"]), expected)


def test_stale_unreadable_and_missing_items_are_reported_never_exported(tmp_path, make_tree, write_clip,
                                                                        random_model, random_provenance):
    tree = make_tree(tmp_path / "data", 3, 2)
    out = tmp_path / "out"
    extract(read_dataset(tree), out, model=random_model, provenance=random_provenance, group_size=2,
            engine=make_engine(device="cpu", workers=0), progress=False)
    write_clip(tree / "wav" / "item-000.wav", 1, 99, subtype="PCM_16")          # audio changed: stale
    (out / "items" / "item-001.npz").write_bytes(b"PK half an item")            # unreadable
    (out / "items" / "item-002.npz").unlink()                                   # missing
    result = export_parquet(out, tmp_path / "f.parquet", dataset=read_dataset(tree))
    reasons = {p.item_id: p.reason for p in result.problems}
    assert set(reasons) == {"item-000", "item-001", "item-002"}
    assert "stale" in reasons["item-000"] and "unreadable" in reasons["item-001"]
    assert "not extracted" in reasons["item-002"]
    assert sorted(set(pd.read_parquet(tmp_path / "f.parquet")["item_id"])) == ["item-003", "item-004"]
    # Without --data the changed audio is not known, the unreadable item still is.
    result = export_parquet(out, tmp_path / "g.parquet")
    assert [p.item_id for p in result.problems] == ["item-001"]
    # An item made with other weights never joins the rows of the first one.
    examples, embeddings = store.read_item(out / "items" / "item-003.npz")
    store.write_item(out / "items" / "item-004.npz", examples, embeddings,
                     {**store.item_fingerprint(tree / "wav" / "item-004.wav", random_provenance),
                      "weights": "other.pth"})
    result = export_parquet(out, tmp_path / "h.parquet")
    assert {p.item_id: "other.pth" in p.reason for p in result.problems} == {"item-001": False, "item-004": True}


def fake_store(out, n_items, n_examples):
    """An item store of random (valid) items, without running the network."""
    rng = np.random.default_rng(0)
    (out / "items").mkdir(parents=True)
    fingerprint = {"format": store.FORMAT_VERSION, "weights": "random (seed 0)", "weights_sha256": None,
                   "final_relu": True, "precision": "float32", "source_sha256": "0" * 64, "hop": 0.96,
                   "log_mel_device": "cpu"}
    for k in range(n_items):
        store.write_item(out / "items" / f"clip-{k:04d}.npz",
                         rng.standard_normal((n_examples, spec.NUM_FRAMES, spec.NUM_BANDS), dtype=np.float32),
                         rng.standard_normal((n_examples, spec.EMBEDDING_SIZE), dtype=np.float32), fingerprint)


def test_memory_is_bounded_by_one_row_group(tmp_path):
    fake_store(tmp_path / "out", 200, 10)  # 2,000 rows of log-mel: 49 MB
    script = ("import pyarrow as pa, sys\nfrom warblr.lab.export import export_parquet\n"
              "r = export_parquet(sys.argv[1], sys.argv[2], log_mel=True, row_group_rows=32)\n"
              "print(r.rows, r.row_groups, pa.default_memory_pool().max_memory())\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "out"), str(tmp_path / "f.parquet")],
                          capture_output=True, text=True, timeout=300, check=True)
    rows, row_groups, peak = map(int, done.stdout.split())
    assert (rows, row_groups) == (2000, math.ceil(2000 / 32))
    metadata = pq.ParquetFile(tmp_path / "f.parquet").metadata
    assert metadata.num_row_groups == row_groups
    assert max(metadata.row_group(i).num_rows for i in range(row_groups)) == 32
    whole = 2000 * spec.NUM_FRAMES * spec.NUM_BANDS * 4
    row_group = 32 * spec.NUM_FRAMES * spec.NUM_BANDS * 4
    assert peak < 8 * row_group < whole / 4, (peak, row_group, whole)  # streamed, never the whole store


def test_a_folder_of_parts_reads_as_one_table(tmp_path):
    fake_store(tmp_path / "out", 30, 3)
    result = export_parquet(tmp_path / "out", tmp_path / "features", row_group_rows=8, rows_per_file=32)
    assert [f.name for f in result.files] == [f"part-{k:05d}.parquet" for k in range(3)]
    assert len(pd.read_parquet(tmp_path / "features")) == 90
    assert not list(tmp_path.glob(".tmp-*"))
    with pytest.raises(Exception, match="already exists"):
        export_parquet(tmp_path / "out", tmp_path / "features")


def test_command_line(extracted, tmp_path, capsys):
    tree, out = extracted
    path = tmp_path / "f.parquet"
    assert cli.main(["export", str(out), "--parquet", str(path), "--data", str(tree), "--row-group-size", "5"]) == 0
    assert "export:" in capsys.readouterr().out and pq.ParquetFile(path).metadata.num_row_groups > 1
    assert cli.main(["export", str(tmp_path / "nothing"), "--parquet", str(path)]) == 1
    assert "warblr: error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["export", "--help"])
    assert 'pd.read_parquet("features.parquet")' in capsys.readouterr().out
    with pytest.raises(InvalidArgumentError) as info:
        export_parquet(out, path, row_group_rows=0)
    assert info.value.parameter == "row_group_rows"


def test_a_stray_file_in_the_store_is_reported_not_fatal(tmp_path):
    fake_store(tmp_path / "out", 3, 2)
    (tmp_path / "out" / "items" / "backup.old.npz").write_bytes(b"someone's backup")
    result = export_parquet(tmp_path / "out", tmp_path / "f.parquet")
    assert result.items == 3 and [p.item_id for p in result.problems] == ["backup.old"]
    assert "not an item file" in result.problems[0].reason
    assert pd.read_parquet(tmp_path / "f.parquet")["item_id"].nunique() == 3


def test_export_is_refused_while_another_run_holds_the_folder(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    fake_store(tmp_path / "out", 2, 2)
    with open(tmp_path / "out" / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # an extract still writing items
        with pytest.raises(Exception, match="another warblr export"):
            export_parquet(tmp_path / "out", tmp_path / "f.parquet")
    assert not (tmp_path / "f.parquet").exists()
