"""The warblrb10k-layout reader: both CSV forms, every bad row kind, hostile ids, missing files."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from warblr.lab.dataset import (MAX_ID_LENGTH, Item, Problem, find_metadata, read_dataset, read_metadata,
                                stratified_subset, validate_item_id)
from warblr.errors import BadItemError, DatasetError, InvalidArgumentError

SR = 16000


def write_wav(path, seconds=1.0, *, seed=0, sample_rate=SR):
    """A short noise WAV (the reader never decodes audio; extract does)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    signal = 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * sample_rate))
    sf.write(str(path), signal, sample_rate, subtype="PCM_16")
    return path


def write_tree(root, csv_text, wav_ids, *, csv_name="metadata.csv"):
    """A warblrb10k-layout folder: ``csv_text`` as the metadata and a WAV per id in ``wav_ids``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / csv_name).write_text(csv_text, encoding="utf-8")
    for k, item_id in enumerate(wav_ids):
        write_wav(root / "wav" / f"{item_id}.wav", seed=k)
    return root


def reasons(dataset):
    return {p.item_id: p.reason for p in dataset.problems}


# ----------------------------------------------------------------------------- good input


@pytest.mark.parametrize("text", [
    "itemid,datasetid,hasbird\na1,warblrb10k,1\nb2,warblrb10k,0\n",   # 2018 form
    "itemid,hasbird\na1,1\nb2,0\n",                                     # 2016 form
    "hasbird,datasetid,itemid\n1,warblrb10k,a1\n0,warblrb10k,b2\n",   # shuffled header
    "\ufeffItemID , HasBird,notes\na1,1,loud\nb2,0,\n",                  # BOM, case, spaces, extra column
    "itemid,hasbird\r\na1,1\r\n\r\nb2, 0 \r\n",                          # CRLF, blank line, padded value
])
def test_both_forms_and_any_column_order(tmp_path, text):
    dataset = read_dataset(write_tree(tmp_path, text, ["a1", "b2"]))
    assert [(i.item_id, i.label) for i in dataset.items] == [("a1", 1), ("b2", 0)]
    assert dataset.problems == []
    assert all(i.path == tmp_path / "wav" / f"{i.item_id}.wav" for i in dataset.items)


def test_datasetid_is_kept(tmp_path):
    dataset = read_dataset(write_tree(tmp_path, "itemid,datasetid,hasbird\na1,ff1010bird,1\n", ["a1"]))
    assert dataset.items[0].datasetid == "ff1010bird"


# ----------------------------------------------------------------------------- bad rows


def test_every_bad_row_kind_is_reported_and_the_rest_is_read(tmp_path):
    text = ("itemid,datasetid,hasbird\n"
            "good1,w,1\n"
            "good0,w,0\n"
            "label2,w,2\n"
            "labelyes,w,yes\n"
            "labelempty,w,\n"
            "labelfloat,w,1.0\n"
            "labelneg,w,-1\n"
            "short,w\n"
            "long,w,1,extra\n"
            "dup,w,1\n"
            "dup,w,1\n"
            "clash,w,1\n"
            "clash,w,0\n"
            "nofile,w,1\n"
            ",w,1\n")
    wavs = ["good1", "good0", "label2", "labelyes", "labelempty", "labelfloat", "labelneg", "short", "long",
            "dup", "clash", "orphan"]
    dataset = read_dataset(write_tree(tmp_path, text, wavs))
    assert [i.item_id for i in dataset.items] == ["dup", "good0", "good1"]
    why = reasons(dataset)
    for item_id in ("label2", "labelyes", "labelempty", "labelfloat", "labelneg"):
        assert "hasbird must be 0 or 1" in why[item_id]
    assert "missing fields" in why["short"]
    assert "extra fields" in why["long"]
    assert "duplicated id" in why["dup"]
    assert "conflicting" in why["clash"]
    assert "no audio file" in why["nofile"]
    assert "has no row" in why["orphan"]
    assert "empty" in why[""]
    lines = {p.item_id: p.line for p in dataset.problems}
    assert lines["label2"] == 4 and lines["orphan"] is None


@pytest.mark.parametrize("text, what", [
    ("", "empty metadata"),
    ("itemid,label\na,1\n", "no 'hasbird' column"),
    ("id,hasbird\na,1\n", "no 'itemid' column"),
    ("itemid,hasbird,hasbird\na,1,1\n", "twice"),
])
def test_unusable_metadata_raises_naming_the_file(tmp_path, text, what):
    root = write_tree(tmp_path, text, [])
    with pytest.raises(DatasetError, match=what) as info:
        read_dataset(root)
    assert "metadata.csv" in str(info.value)


def test_binary_metadata_raises(tmp_path):
    root = write_tree(tmp_path, "", [])
    (root / "metadata.csv").write_bytes(b"itemid,hasbird\n\xff\xfe\x00\x81,1\n")
    with pytest.raises(DatasetError, match="metadata.csv.*UTF-8"):
        read_dataset(root)


def test_finding_the_metadata(tmp_path):
    with pytest.raises(DatasetError, match="absent: not a directory") as info:
        read_dataset(tmp_path / "absent")
    assert (info.value.parameter, info.value.path) == ("root", tmp_path / "absent")
    root = write_tree(tmp_path / "d", "itemid,hasbird\na,1\n", ["a"])
    (root / "metadata.csv").rename(root / "labels.txt")
    with pytest.raises(DatasetError, match="no metadata CSV") as info:
        find_metadata(root)
    assert (info.value.parameter, info.value.path) == ("root", root)
    assert read_dataset(root, labels=root / "labels.txt").items[0].item_id == "a"
    with pytest.raises(DatasetError, match="nope.csv: no such labels file") as info:
        read_dataset(root, labels=root / "nope.csv")
    assert (info.value.parameter, info.value.path) == ("labels", root / "nope.csv")
    (root / "a.csv").write_text("itemid,hasbird\n")
    (root / "b.csv").write_text("itemid,hasbird\n")
    with pytest.raises(DatasetError, match="several CSV files"):
        find_metadata(root)


def test_library_errors_never_name_command_line_flags(tmp_path):
    """The CLI maps parameters to its flags; the library names only its own parameters."""
    root = write_tree(tmp_path / "d", "itemid,hasbird\na,1\n", ["a"])
    calls = [lambda: read_dataset(tmp_path / "absent"), lambda: read_dataset(root, labels=root / "nope.csv"),
             lambda: find_metadata(tmp_path), lambda: stratified_subset([], 0)]
    for call in calls:
        with pytest.raises((DatasetError, InvalidArgumentError)) as info:
            call()
        assert "--" not in str(info.value)
    assert info.value.parameter == "limit"


def test_header_errors_carry_the_file_and_line(tmp_path):
    root = write_tree(tmp_path, "itemid,label\na,1\n", [])
    with pytest.raises(DatasetError) as info:
        read_dataset(root)
    assert info.value.path == root / "metadata.csv" and info.value.line == 1


def test_problem_from_a_bad_item_error():
    with pytest.raises(BadItemError) as info:
        validate_item_id("../../x")
    assert info.value.item_id == "../../x"
    problem = Problem.from_error(info.value, line=7)
    assert (problem.item_id, problem.line) == ("../../x", 7) and "only letters" in problem.reason


def test_wav_directly_in_the_folder(tmp_path):
    (tmp_path / "metadata.csv").write_text("itemid,hasbird\na,1\n")
    write_wav(tmp_path / "a.wav")
    assert read_dataset(tmp_path).items[0].path == tmp_path / "a.wav"


def test_upper_case_wav_files_are_found_and_orphans_reported_by_the_one_suffix_rule(tmp_path):
    (tmp_path / "metadata.csv").write_text("itemid,hasbird\na,1\nb,0\n")
    write_wav(tmp_path / "a.WAV")
    write_wav(tmp_path / "b.Wav")
    write_wav(tmp_path / "c.WAV")   # no row
    write_wav(tmp_path / "d.flac")  # audio, but not the WAV a DCASE set is made of: not an orphan
    dataset = read_dataset(tmp_path)
    assert [(item.item_id, item.path.name) for item in dataset.items] == [("a", "a.WAV"), ("b", "b.Wav")]
    assert reasons(dataset) == {"c": f"file {tmp_path / 'c.WAV'} has no row in metadata.csv"}


def test_a_directory_named_like_a_wav_is_reported(tmp_path):
    root = write_tree(tmp_path, "itemid,hasbird\na,1\nb,0\n", ["a"])
    (root / "wav" / "b.wav").mkdir()
    assert "not a regular file" in reasons(read_dataset(root))["b"]


# ----------------------------------------------------------------------------- hostile ids

HOSTILE = ["../../x", "..", "/etc/passwd", "a/b", "a\\b", "a\x00b", "a b", "x.wav", "~root", "$(rm -rf)",
           "é", "a" * (MAX_ID_LENGTH + 1), "a\nb"]


@pytest.mark.parametrize("item_id", HOSTILE)
def test_hostile_ids_are_refused(item_id):
    with pytest.raises(BadItemError, match="item id"):
        validate_item_id(item_id)


def test_hostile_rows_are_reported_and_never_opened(tmp_path, monkeypatch):
    root = tmp_path / "data"
    rows = "".join(f'"{i}",1\n' for i in HOSTILE if "\n" not in i)
    write_tree(root, "itemid,hasbird\n" + rows + "ok,1\n", ["ok"])
    write_wav(tmp_path / "x.wav")  # what ../../x would reach from data/wav
    opened = []
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda self: opened.append(self) or real_exists(self))
    dataset = read_dataset(root)
    assert [i.item_id for i in dataset.items] == ["ok"]
    assert {p.item_id for p in dataset.problems} == {i for i in HOSTILE if "\n" not in i}
    assert all(p.parent == root / "wav" for p in opened if p.suffix == ".wav")


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_valid_ids_always_stay_in_their_folder(text):
    try:
        item_id = validate_item_id(text)
    except BadItemError:
        return
    base = Path("/base/items")
    target = (base / f"{item_id}.npz").resolve()
    assert target.parent == base and "\x00" not in item_id


# ----------------------------------------------------------------------------- --limit


def make_items(n_bird, n_none):
    return [Item(f"i{k:03d}", int(k < n_bird), Path(f"i{k:03d}.wav")) for k in range(n_bird + n_none)]


@pytest.mark.parametrize("limit", [2, 5, 10, 33])
def test_limit_is_stratified_and_seeded(limit):
    items = make_items(75, 25)
    subset = stratified_subset(items, limit, seed=3)
    assert len(subset) == limit
    birds = sum(i.label for i in subset)
    assert abs(birds - 0.75 * limit) <= 1 and 0 < birds < limit
    assert subset == stratified_subset(items, limit, seed=3)
    assert [i.item_id for i in subset] == sorted(i.item_id for i in subset)
    assert set(subset) <= set(items)


def test_limit_seed_changes_the_subset_and_large_limit_keeps_all():
    items = make_items(30, 10)
    assert stratified_subset(items, 8, seed=0) != stratified_subset(items, 8, seed=1)
    assert stratified_subset(items, 100, seed=0) == sorted(items, key=lambda i: i.item_id)
    with pytest.raises(InvalidArgumentError, match="limit"):
        stratified_subset(items, 0)


def test_read_dataset_applies_limit(tmp_path):
    ids = [f"id{k}" for k in range(12)]
    text = "itemid,hasbird\n" + "".join(f"{i},{int(k % 4 != 0)}\n" for k, i in enumerate(ids))
    dataset = read_dataset(write_tree(tmp_path, text, ids), limit=4, seed=0)
    assert len(dataset.items) == 4 and dataset.labels.sum() == 3


def test_read_metadata_keeps_file_order(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("itemid,hasbird\nz,1\na,0\n")
    rows, problems = read_metadata(path)
    assert [r[0] for r in rows] == ["z", "a"] and problems == []


# ----------------------------------------------------------------------------- the DCASE 2018 sets' real layouts

#: set -> (ids shaped like its real ones, its 2018 label file, the name soundata saves it under, its datasetid)
LAYOUTS = {
    "warblrb10k": (["759808e5-f824-401e-9058", "0c603a84-2e93-47d1-af3d", "e9f165f2-630a-4de8-b2b0"],
                   "warblrb10k_public_metadata_2018.csv", "warblrb10k_public_metadata.csv", "warblrb10k"),
    "ff1010bird": (["64486", "1044", "188031"], "ff1010bird_metadata_2018.csv", "ff1010bird_metadata_2018.csv",
                   "ff1010bird"),
    "BirdVox-DCASE-20k": (["00053d90-e4b9-4045-a2f1-f39efc90cfa9", "000db435-a40f-4ad9-a74e-d1af284d2c44",
                           "001059c0-e04f-42fc-a8e2-11aad24dc6fb"], "BirdVoxDCASE20k_csvpublic.csv",
                          "BirdVoxDCASE20k_csvpublic.csv", "BirdVox-DCASE-20k"),
}


def write_set(root, name, layout):
    """``name`` as published (``wav/`` + the 2018 CSV) or as soundata leaves it (WAVs moved up, its CSV name)."""
    ids, published_csv, soundata_csv, datasetid = LAYOUTS[name]
    root = Path(root)
    root.mkdir(parents=True)
    rows = "".join(f"{item_id},{datasetid},{k % 2}\n" for k, item_id in enumerate(ids))
    audio = root / "wav" if layout == "published" else root
    (root / (published_csv if layout == "published" else soundata_csv)).write_text("itemid,datasetid,hasbird\n" + rows)
    for k, item_id in enumerate(ids):
        write_wav(audio / f"{item_id}.wav", 0.2, seed=k)
    if layout == "soundata":
        (root / f"{name.lower()}_index_1.0.json").write_text('{"version": "1.0", "clips": {}}')
    return root, audio


@pytest.mark.parametrize("layout", ["published", "soundata"])
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_each_sets_real_layout_reads_as_it_is(tmp_path, name, layout):
    root, audio = write_set(tmp_path / name, name, layout)
    ids, _, _, datasetid = LAYOUTS[name]
    dataset = read_dataset(root)
    assert dataset.problems == [] and dataset.rows == len(ids)
    assert [(i.item_id, i.label) for i in dataset.items] == sorted((item_id, k % 2) for k, item_id in enumerate(ids))
    assert all(i.path == audio / f"{i.item_id}.wav" and i.datasetid == datasetid for i in dataset.items)


def test_soundata_warblrb10k_with_its_unlabelled_test_clips(tmp_path):
    """soundata unpacks the 2018 test clips beside the labelled ones: reported, never used."""
    root, _ = write_set(tmp_path / "w", "warblrb10k", "soundata")
    for k in range(3):
        write_wav(root / f"test-clip-{k}.wav", 0.2, seed=10 + k)
    dataset = read_dataset(root)
    assert len(dataset.items) == 3 and dataset.metadata.name == "warblrb10k_public_metadata.csv"
    assert sorted(p.item_id for p in dataset.problems) == ["test-clip-0", "test-clip-1", "test-clip-2"]
    assert all("has no row in warblrb10k_public_metadata.csv" in p.reason for p in dataset.problems)


def test_the_2016_ff1010bird_labels(tmp_path):
    root = write_tree(tmp_path, "itemid,hasbird\n64486,1\n1044,0\n", ["64486", "1044"],
                      csv_name="ff1010bird_metadata.csv")
    dataset = read_dataset(root)
    assert [(i.item_id, i.label, i.datasetid) for i in dataset.items] == [("1044", 0, None), ("64486", 1, None)]


def test_a_folder_fetched_and_a_label_file_beside_it(tmp_path):
    """Several CSVs (say the 2016 and 2018 files) are not guessed between: labels picks one."""
    root, _ = write_set(tmp_path / "ff", "ff1010bird", "published")
    (root / "ff1010bird_metadata.csv").write_text("itemid,hasbird\n64486,1\n")
    with pytest.raises(DatasetError, match="several CSV files") as info:
        read_dataset(root)
    assert info.value.path == root
    assert len(read_dataset(root, labels=root / "ff1010bird_metadata_2018.csv").items) == 3
