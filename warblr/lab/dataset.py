"""Reading a bird-audio dataset folder: the DCASE 2018 bird sets as published and as soundata lays them out.

A dataset is a folder holding the audio as ``<itemid>.wav`` files and one
metadata CSV. Columns are found by header name, in any order and case (other
columns are ignored): the 2018 form ``itemid,datasetid,hasbird`` or the 2016
form ``itemid,hasbird``. The WAVs are in a ``wav/`` sub-folder when there is
one, else directly in the folder.

The layouts read as they are (``warblr fetch`` writes the first one):

============================  =================================================  ======================================
set (clips)                   published / ``warblr fetch`` layout                soundata layout
============================  =================================================  ======================================
warblrb10k (8,000)            ``wav/759808e5-f824-401e-9058.wav``: the id is     the WAVs moved up into the folder;
                              the first 23 characters of a UUID;                 labels named
                              ``warblrb10k_public_metadata_2018.csv``            ``warblrb10k_public_metadata.csv``
                              (``datasetid`` ``warblrb10k``)                     (the 2018 file under its 2016 name)
ff1010bird (7,690)            ``wav/64486.wav``: the id is a Freesound number;   the WAVs moved up into the folder;
                              ``ff1010bird_metadata_2018.csv``                   same CSV name
                              (``datasetid`` ``ff1010bird``; the 2016 file
                              ``ff1010bird_metadata.csv`` has no datasetid)
BirdVox-DCASE-20k (20,000)    ``wav/00053d90-e4b9-4045-a2f1-f39efc90cfa9.wav``:  the WAVs moved up into the folder;
                              a full 36-character UUID;                          same CSV name
                              ``BirdVoxDCASE20k_csvpublic.csv``
                              (``datasetid`` ``BirdVox-DCASE-20k``)
============================  =================================================  ======================================

soundata moves each archive's ``wav/`` contents up into its ``data_home``,
so its folders are the "WAVs directly in the folder" case (an index JSON
beside them is ignored: only ``*.csv`` is metadata). Its warblrb10k
download also unpacks the 2,000 unlabelled 2018 test clips into the same
folder: they are listed as problems ("no row in ...") and never used.
These layouts come from the DCASE 2018 task page and soundata's loaders;
the real archives were not opened (this was written offline).

Every problem with a row or a file is collected as a :class:`Problem` (item
id + reason) and the rest of the dataset is still usable; only a dataset
that cannot be read at all raises. Errors carry the argument at fault as
``parameter`` (``root``, ``labels``, ``limit``) and the file as ``path``,
and never name a command-line flag: the command line maps parameters to its
options.

Item ids are used to build file names, so they are validated before any path
is made from them: letters, digits, ``-`` and ``_`` only (at most
:data:`MAX_ID_LENGTH` characters). A hostile id such as ``../../x``, an
absolute path or one holding a NUL byte is reported and never opened or written.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BadItemError, DatasetError
from ..formats import WAV_SUFFIX, is_wav_file
from ..validation import check_scalar

__all__ = [
    "Item",
    "Problem",
    "Dataset",
    "MAX_ID_LENGTH",
    "validate_item_id",
    "display_id",
    "find_metadata",
    "read_metadata",
    "read_dataset",
    "stratified_subset",
]

#: The longest item id accepted (file names stay well under NAME_MAX).
MAX_ID_LENGTH = 128

_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
_ID_COLUMN, _LABEL_COLUMN, _DATASET_COLUMN = "itemid", "hasbird", "datasetid"


@dataclass(frozen=True)
class Item:
    """One usable dataset item: a valid id, a 0/1 label and its audio file."""

    item_id: str
    label: int
    path: Path
    datasetid: str | None = None


@dataclass(frozen=True)
class Problem:
    """A row or file that was left out, with the reason (``line`` is the CSV line, if any)."""

    item_id: str
    reason: str
    line: int | None = None

    @classmethod
    def from_error(cls, error, *, item_id=None, line=None):
        """The problem a :class:`~warblr.errors.BadItemError` (or any dataset error) describes.

        Parameters
        ----------
        error : warblr.errors.DatasetError
            Its ``item_id`` and ``line`` attributes are used unless given here.
        item_id : str, optional, keyword-only
        line : int, optional, keyword-only

        Examples
        --------
        >>> Problem.from_error(BadItemError("item id 'a b': not allowed", item_id="a b"), line=3)
        Problem(item_id='a b', reason="item id 'a b': not allowed", line=3)
        """
        return cls(item_id if item_id is not None else (error.item_id or ""), str(error),
                   line if line is not None else error.line)

    def as_dict(self):
        return {"item_id": self.item_id, "reason": self.reason, "line": self.line}


@dataclass
class Dataset:
    """A read dataset: the usable items (sorted by id) and every problem found."""

    root: Path
    metadata: Path
    audio_dir: Path
    items: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    rows: int = 0

    @property
    def labels(self):
        """The items' labels as an int array."""
        return np.array([item.label for item in self.items], dtype=int)


def display_id(item_id):
    """A printable form of an item id (control characters and non-ASCII escaped).

    Examples
    --------
    >>> display_id("a\\x00b")
    'a\\\\x00b'
    """
    text = str(item_id)
    if text.isprintable() and text.isascii():
        return text
    return text.encode("unicode_escape").decode("ascii")


def validate_item_id(item_id):
    """Return ``item_id`` if it is safe to use in a file name, else raise.

    Parameters
    ----------
    item_id : str

    Returns
    -------
    str
        The id unchanged.

    Raises
    ------
    BadItemError
        Empty, too long, or holding anything but letters, digits, ``-`` and ``_``
        (so no ``/``, ``\\``, ``..``, NUL, spaces or absolute paths); its
        ``item_id`` attribute is the id as given.

    Examples
    --------
    >>> validate_item_id("759808e5-f824-401e-9058")
    '759808e5-f824-401e-9058'
    >>> validate_item_id("../../x")
    Traceback (most recent call last):
    ...
    warblr.errors.BadItemError: item id '../../x': only letters, digits, '-' and '_' are allowed
    """
    if not isinstance(item_id, str):
        raise BadItemError(f"item id {item_id!r}: expected a string", item_id=item_id)
    reason = _id_problem(item_id)
    if reason is not None:
        shown = display_id(item_id) if len(item_id) <= MAX_ID_LENGTH else f"{display_id(item_id[:40])}..."
        raise BadItemError(f"item id '{shown}': {reason}", item_id=item_id)
    return item_id


def _id_problem(item_id):
    """Why the string ``item_id`` is not a safe id, or None (the reason alone, for :class:`Problem`)."""
    if not item_id:
        return "empty"
    if len(item_id) > MAX_ID_LENGTH:
        return f"longer than {MAX_ID_LENGTH} characters"
    if not _ID_PATTERN.fullmatch(item_id):
        return "only letters, digits, '-' and '_' are allowed"
    return None


def find_metadata(root, *, labels=None):
    """Locate the metadata CSV of a dataset folder.

    Parameters
    ----------
    root : str or os.PathLike
        The dataset folder.
    labels : str or os.PathLike, optional, keyword-only
        An explicit CSV path; used as given.

    Returns
    -------
    Path

    Raises
    ------
    DatasetError
        ``root`` is not a directory, ``labels`` is not a file, or ``root``
        holds no CSV or several (give ``labels``); ``parameter`` names the
        argument at fault and ``path`` what it named.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "ff1010bird_metadata_2018.csv").write_text("itemid,datasetid,hasbird\\n")
    >>> find_metadata(root).name
    'ff1010bird_metadata_2018.csv'
    """
    if labels is not None:
        path = Path(os.fspath(labels))
        if not path.is_file():
            raise DatasetError(f"{path}: no such labels file", path=path, parameter="labels")
        return path
    root = _existing_folder(root)
    found = sorted(p for p in root.glob("*.csv") if p.is_file())
    if not found:
        raise DatasetError(f"{root}: no metadata CSV (*.csv) in the dataset folder; give the labels CSV explicitly",
                           path=root, parameter="root")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise DatasetError(f"{root}: several CSV files ({names}); give the labels CSV explicitly", path=root,
                           parameter="root")
    return found[0]


def _existing_folder(root):
    root = Path(os.fspath(root))
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory", path=root, parameter="root")
    return root


def read_metadata(path):
    """Read a warblrb10k metadata CSV row by row.

    Parameters
    ----------
    path : str or os.PathLike
        CSV with a header naming ``itemid`` and ``hasbird`` (and optionally
        ``datasetid`` or other columns), in any order, any case.

    Returns
    -------
    rows : list of (item_id, label, datasetid, line)
        The good rows in file order; ``label`` is 0 or 1.
    problems : list of Problem
        Rows left out: hostile or malformed ids, missing or extra fields,
        labels other than 0/1, duplicated ids.

    Raises
    ------
    DatasetError
        The file cannot be read or decoded, is empty, or its header lacks
        ``itemid`` or ``hasbird``; ``path`` is the file (``line`` is 1 for a
        header problem).

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "labels.csv")
    >>> _ = open(path, "w").write("hasbird,itemid\\n1,a1\\n7,b2\\n")
    >>> rows, problems = read_metadata(path)
    >>> rows, [p.reason for p in problems]
    ([('a1', 1, None, 2)], ["hasbird must be 0 or 1, got '7'"])
    """
    path = Path(os.fspath(path))
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            records = list(csv.reader(handle))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not a UTF-8 text CSV ({exc.reason} at byte {exc.start})", path=path) from exc
    except csv.Error as exc:
        raise DatasetError(f"{path}: not a readable CSV ({exc})", path=path) from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})", path=path) from exc
    if not records:
        raise DatasetError(f"{path}: empty metadata file (expected a header with itemid and hasbird)", path=path)
    header = [name.strip().lower() for name in records[0]]
    for required in (_ID_COLUMN, _LABEL_COLUMN):
        if required not in header:
            raise DatasetError(f"{path}: header {records[0]!r} has no '{required}' column", path=path, line=1)
        if header.count(required) > 1:
            raise DatasetError(f"{path}: header names the '{required}' column twice", path=path, line=1)
    id_col, label_col = header.index(_ID_COLUMN), header.index(_LABEL_COLUMN)
    dataset_col = header.index(_DATASET_COLUMN) if _DATASET_COLUMN in header else None

    rows, problems, first_seen = [], [], {}
    for line, record in enumerate(records[1:], start=2):
        if not record or all(not value.strip() for value in record):
            continue  # blank line
        raw_id = record[id_col].strip() if id_col < len(record) else ""
        if len(record) != len(header):
            what = "missing" if len(record) < len(header) else "extra"
            problems.append(Problem(raw_id, f"{what} fields: {len(record)} values for {len(header)} columns", line))
            continue
        reason = _id_problem(raw_id)
        if reason is not None:
            problems.append(Problem(raw_id, reason, line))
            continue
        item_id = raw_id
        raw_label = record[label_col].strip()
        if raw_label not in ("0", "1"):
            problems.append(Problem(item_id, f"hasbird must be 0 or 1, got {raw_label!r}", line))
            continue
        label = int(raw_label)
        if item_id in first_seen:
            index = first_seen[item_id]
            if index is not None and rows[index][1] != label:
                # Contradictory labels: neither row can be trusted.
                first_line = rows[index][3]
                rows[index] = None
                first_seen[item_id] = None
                problems.append(Problem(item_id, f"duplicated id with conflicting hasbird (line {first_line})", line))
            else:
                problems.append(Problem(item_id, "duplicated id (row ignored; first row kept)"
                                        if index is not None else "duplicated id with conflicting hasbird", line))
            continue
        datasetid = record[dataset_col].strip() if dataset_col is not None else None
        first_seen[item_id] = len(rows)
        rows.append((item_id, label, datasetid, line))
    return [row for row in rows if row is not None], problems


def _audio_dir(root):
    wav = root / "wav"
    return wav if wav.is_dir() else root


def read_dataset(root, *, labels=None, limit=None, seed=0):
    """Read a dataset folder in any of the layouts of the module docstring.

    Parameters
    ----------
    root : str or os.PathLike
        Folder with ``wav/<itemid>.wav`` (or the WAVs directly in it when it
        has no ``wav/`` sub-folder, as soundata leaves them) and the metadata CSV.
    labels : str or os.PathLike, optional, keyword-only
        The metadata CSV, when it is elsewhere or the folder holds several.
    limit : int, optional, keyword-only
        Keep a stratified, seeded subset of at most ``limit`` usable items.
    seed : int, keyword-only
        Seed of the subset.

    Returns
    -------
    Dataset
        ``items`` sorted by id; ``problems`` lists bad rows, rows without a
        file and files without a row, each by id with the reason.

    Raises
    ------
    DatasetError
        ``root`` is not a directory or ``labels`` not a file (``parameter``
        names which), the metadata cannot be found or read at all, or the
        audio folder cannot be listed (``path`` names the file or folder).
    InvalidArgumentError
        ``limit`` is not a positive integer (``parameter="limit"``).

    Examples
    --------
    A folder as soundata leaves ff1010bird (WAVs beside the CSV):

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "ff1010bird_metadata_2018.csv").write_text("itemid,datasetid,hasbird\\n64486,ff1010bird,1\\n")
    >>> _ = (root / "64486.wav").write_bytes(b"")  # the reader never decodes audio
    >>> dataset = read_dataset(root)
    >>> [(item.item_id, item.label, item.path.name) for item in dataset.items], dataset.problems
    ([('64486', 1, '64486.wav')], [])
    """
    root = _existing_folder(root)
    metadata = find_metadata(root, labels=labels)
    rows, problems = read_metadata(metadata)
    audio_dir = _audio_dir(root)
    try:
        listed = sorted(os.listdir(audio_dir))
    except OSError as exc:
        raise DatasetError(f"{audio_dir}: cannot list ({exc.strerror or exc})", path=audio_dir) from exc
    # "<id>.wav" in any case (a recorder's "<id>.WAV" too); the lower-case name wins when both exist.
    wav_names = {}
    for name in sorted(listed, key=lambda n: n != n.lower()):
        if is_wav_file(name):
            wav_names.setdefault(os.path.splitext(name)[0], name)
    items = []
    for item_id, label, datasetid, line in rows:
        # item_id is validated: no separators
        path = audio_dir / wav_names.get(item_id, f"{item_id}{WAV_SUFFIX}")
        if not path.exists():
            problems.append(Problem(item_id, f"no audio file {path}", line))
        elif not path.is_file():
            problems.append(Problem(item_id, f"{path} is not a regular file", line))
        else:
            items.append(Item(item_id, label, path, datasetid))
    known = {row[0] for row in rows} | {p.item_id for p in problems}
    for stem, name in sorted(wav_names.items()):
        if stem not in known:
            problems.append(Problem(stem, f"file {audio_dir / name} has no row in {metadata.name}"))
    items.sort(key=lambda item: item.item_id)
    dataset = Dataset(root=root, metadata=metadata, audio_dir=audio_dir, items=items,
                      problems=problems, rows=len(rows))
    if limit is not None:
        dataset.items = stratified_subset(items, limit, seed=seed)
    return dataset


def stratified_subset(items, limit, *, seed=0):
    """A seeded subset of ``items`` keeping the label proportions.

    Parameters
    ----------
    items : sequence of Item
    limit : int
        Subset size; ``limit >= len(items)`` keeps everything.
    seed : int, keyword-only

    Returns
    -------
    list of Item
        Sorted by id. Each label gets ``round(limit * share)`` items, at least
        one of each label present when ``limit >= 2``.

    Examples
    --------
    >>> items = [Item(f"i{k:02d}", int(k < 30), Path(f"i{k:02d}.wav")) for k in range(40)]
    >>> subset = stratified_subset(items, 8, seed=0)
    >>> len(subset), sum(item.label for item in subset)
    (8, 6)
    """
    limit = check_scalar(limit, "limit", int, min_val=1)
    items = sorted(items, key=lambda item: item.item_id)
    if limit >= len(items):
        return items
    rng = np.random.default_rng(seed)
    groups = {label: [item for item in items if item.label == label] for label in (0, 1)}
    groups = {label: group for label, group in groups.items() if group}
    counts = {label: int(round(limit * len(group) / len(items))) for label, group in groups.items()}
    if len(groups) == 2 and limit >= 2:
        for label in counts:
            counts[label] = max(1, counts[label])
    # Fix rounding so the counts add up to limit, within each group's size.
    while sum(counts.values()) > limit:
        label = max(counts, key=lambda k: counts[k])
        counts[label] -= 1
    while sum(counts.values()) < limit:
        label = max(counts, key=lambda k: len(groups[k]) - counts[k])
        counts[label] += 1
    chosen = []
    for label, group in sorted(groups.items()):
        picks = rng.choice(len(group), size=min(counts[label], len(group)), replace=False)
        chosen.extend(group[i] for i in picks)
    return sorted(chosen, key=lambda item: item.item_id)
