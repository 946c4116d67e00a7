"""``warblr export OUT --parquet PATH``: the item store as a table, one row per example (Parquet, CSV or NPZ).

Columns:

==========  ==========================================  =============================================
column      Arrow type                                  what
==========  ==========================================  =============================================
item_id     string                                      the item (file name without ``.wav``)
path        string (only with a dataset)                the item's audio file
label       int8 (only with labels)                     ``hasbird`` 0/1 from the dataset's CSV
example     int32                                       index of the example within its item
start_s     float64                                     ``example * hop``: where it starts in the audio
end_s       float64                                     ``start_s + 0.975``: the end of the last sample it reads
embedding   fixed_size_list<float32>[128]               the VGGish embedding
log_mel     fixed_size_list<fixed_size_list<float32>    the example (with ``--log-mel``)
            [64]>[96]
==========  ==========================================  =============================================

Timestamps are exact sample positions: example ``k`` reads the 16 kHz
samples ``[k * hop * 16000, k * hop * 16000 + 15600)``, and ``start_s`` and
``end_s`` are those integers divided by 16000 (correctly rounded). The hop
is each item's own (``--hop`` of extract, analyse and embed; in its fingerprint).

Labels are not in the item store (an item is audio + numbers), so export
learns them from the dataset: with ``--data DIR`` the dataset's items are
exported in id order with their labels, and an item whose stored
fingerprint no longer matches its audio file (the file changed since
extract) is **stale**: reported, never exported. Without ``--data`` every
readable item of the store is exported, without a ``label`` column. Either
way an item whose weights, precision or format differ from the first
exported item's is reported as stale (one file never mixes two models), and
unreadable (half-written, corrupt) or missing items are reported by id.
The fingerprint shared by the exported rows is in the file's schema
metadata under ``warblr``.

The file is written with pyarrow in bounded memory: items are read one at a
time and rows go out one row group at a time (``--row-group-size``), so
peak memory is about one row group whatever the store's size. ``PATH``
ending in ``.parquet`` is one file; any other ``PATH`` is a dataset folder of
``part-NNNNN.parquet`` files of at most ``--rows-per-file`` rows each (what
pandas, polars, pyarrow and Hugging Face ``datasets`` read as one table).
Every file is written atomically (:func:`warblr.fileio.atomic_write`) and
a folder is assembled under a temporary name and renamed at the end, so a
killed export leaves no partial output. The same rows can be written as
CSV (one ``e000``..``e127`` column per embedding value, ``%.9g``, which
round-trips float32; the fingerprint in ``PATH.json`` beside it) or as one
NPZ (arrays named as the columns, the fingerprint in ``meta``; held in
memory, so for embeddings rather than large log-mel tables). Export holds
the output folder's lock, so it never reads items a running extract is
still writing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import spec
from ..errors import BadItemError, InvalidArgumentError, OutputError
from ..fileio import TMP_PREFIX, atomic_write, atomic_write_json, exclusive, file_digest
from ..validation import argparse_type, check_scalar
from .dataset import Problem

__all__ = ["ExportResult", "export_parquet", "export_table", "check_table_format", "register", "TABLE_FORMATS", "DEFAULT_ROW_GROUP_ROWS",
           "DEFAULT_ROWS_PER_FILE", "window_times"]

#: Rows (examples) per Parquet row group: ~2 MB of embeddings; with log-mel see :func:`_row_group_rows`.
DEFAULT_ROW_GROUP_ROWS = 4096
#: Rows per file when exporting to a folder (~0.5 GB of embeddings).
DEFAULT_ROWS_PER_FILE = 1_000_000
#: Log-mel rows per row group by default (~25 MB per row group).
_LOG_MEL_ROW_GROUP_ROWS = 1024
#: Fingerprint fields every exported row must share (the model, the numbers' format, the windows).
_SHARED_FIELDS = ("format", "weights", "weights_sha256", "final_relu", "precision", "hop", "log_mel_device")
#: What :func:`export_table` writes: Parquet (streamed), CSV (streamed) or one NPZ (in memory).
TABLE_FORMATS = ("parquet", "csv", "npz")

#: Dictionary-encode the ids only: float columns never repeat, and their dictionaries would grow to
#: the page limit and be thrown away (3x the peak memory, measured).
_WRITER_OPTIONS = {"use_dictionary": ["item_id"]}

_PANDAS_EXAMPLE = """\
import numpy as np, pandas as pd
df = pd.read_parquet("features.parquet")                     # one row per 0.96 s example
X, y = np.stack(df["embedding"]), df["label"].to_numpy()     # [rows, 128] float32, 0/1 (with --data)"""


@dataclass
class ExportResult:
    """What :func:`export_parquet` wrote and what it left out.

    Attributes
    ----------
    files : list of Path
        The Parquet file(s) written.
    items : int
        Items exported.
    rows : int
        Rows (examples) exported.
    row_groups : int
        Row groups written (peak memory is about one row group).
    problems : list of Problem
        Items left out, by id: missing, unreadable or stale.
    """

    files: list = field(default_factory=list)
    items: int = 0
    rows: int = 0
    row_groups: int = 0
    problems: list = field(default_factory=list)


def window_times(count, hop):
    """``start_s`` and ``end_s`` of ``count`` examples one every ``hop`` seconds: exact sample positions / 16 kHz.

    Examples
    --------
    >>> start, end = window_times(3, 0.48)
    >>> start.tolist(), end.tolist()
    ([0.0, 0.48, 0.96], [0.975, 1.455, 1.935])
    """
    from ..features import hop_frames, window_start_samples

    starts = window_start_samples(count, hop_frames=hop_frames(hop))
    return starts / spec.SAMPLE_RATE, (starts + spec.EXAMPLE_SAMPLES) / spec.SAMPLE_RATE


def _schema(*, paths, labels, log_mel, fingerprint, settings):
    import pyarrow as pa

    fields = [pa.field("item_id", pa.string(), nullable=False)]
    if paths:
        fields.append(pa.field("path", pa.string(), nullable=False))
    if labels:
        fields.append(pa.field("label", pa.int8(), nullable=False))
    fields += [pa.field("example", pa.int32(), nullable=False), pa.field("start_s", pa.float64(), nullable=False),
               pa.field("end_s", pa.float64(), nullable=False),
               pa.field("embedding", pa.list_(pa.float32(), spec.EMBEDDING_SIZE), nullable=False)]
    if log_mel:
        fields.append(pa.field("log_mel", pa.list_(pa.list_(pa.float32(), spec.NUM_BANDS), spec.NUM_FRAMES),
                               nullable=False))
    return pa.schema(fields, metadata=_metadata(fingerprint, settings))


def _metadata(fingerprint, settings):
    """The table's metadata: the fingerprint every row shares, and the run's settings when known."""
    metadata = {"warblr": json.dumps(fingerprint, sort_keys=True)}
    if settings:
        metadata["warblr_run"] = json.dumps(settings, sort_keys=True)
    return metadata


def _fixed_list(array, shape_tail):
    """A numpy float32 ``[rows, *shape_tail]`` as nested Arrow fixed-size lists (no copy of the values)."""
    import pyarrow as pa

    values = pa.array(np.ascontiguousarray(array, dtype=np.float32).reshape(-1))
    for size in reversed(shape_tail):
        values = pa.FixedSizeListArray.from_arrays(values, size)
    return values


class _RowGroups:
    """Collects rows item by item and hands them to ``sink`` one full row group at a time."""

    def __init__(self, *, schema, row_group_rows, sink):
        self.schema, self.row_group_rows, self.sink = schema, row_group_rows, sink
        self.pending, self.pending_rows, self.row_groups = [], 0, 0

    def add(self, columns, rows):
        import pyarrow as pa

        self.pending.append(pa.Table.from_pydict(columns, schema=self.schema))
        self.pending_rows += rows
        while self.pending_rows >= self.row_group_rows:
            self._flush(self.row_group_rows)

    def close(self):
        if self.pending_rows:
            self._flush(self.pending_rows)

    def _flush(self, rows):
        import pyarrow as pa

        table = pa.concat_tables(self.pending)
        self.sink.write(table.slice(0, rows).combine_chunks())
        self.row_groups += 1
        rest = table.slice(rows)  # less than one row group: the memory bound
        self.pending = [rest.combine_chunks()] if rest.num_rows else []
        self.pending_rows = rest.num_rows


class _FileSink:
    """Every row group into one Parquet file (an open handle from :func:`atomic_write`)."""

    def __init__(self, handle, schema):
        import pyarrow.parquet as pq

        self.writer = pq.ParquetWriter(handle, schema, **_WRITER_OPTIONS)

    def write(self, table):
        self.writer.write_table(table, row_group_size=table.num_rows)

    def close(self):
        self.writer.close()


class _FolderSink:
    """Row groups into ``part-NNNNN.parquet`` files of at most ``rows_per_file`` rows (more if one group is)."""

    def __init__(self, folder, schema, rows_per_file):
        self.folder, self.schema, self.rows_per_file = folder, schema, rows_per_file
        self.writer, self.rows, self.files = None, 0, []

    def write(self, table):
        import pyarrow.parquet as pq

        if self.writer is None or self.rows + table.num_rows > self.rows_per_file:
            self.close()
            self.files.append(self.folder / f"part-{len(self.files):05d}.parquet")
            self.writer, self.rows = pq.ParquetWriter(self.files[-1], self.schema, **_WRITER_OPTIONS), 0
        self.writer.write_table(table, row_group_size=table.num_rows)
        self.rows += table.num_rows

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@dataclass(frozen=True)
class _Exported:
    """One item's rows: what every writer gets."""

    item_id: str
    label: object
    audio_path: object
    examples: np.ndarray
    embeddings: np.ndarray
    meta: dict

    def columns(self, *, paths, labels, log_mel, arrow=True):
        """The item's rows as columns (Arrow fixed-size lists for Parquet, numpy arrays otherwise)."""
        n = self.embeddings.shape[0]
        columns = {"item_id": [self.item_id] * n}
        if paths:
            columns["path"] = [os.fspath(self.audio_path)] * n
        if labels:
            columns["label"] = np.full(n, self.label, dtype=np.int8)
        start, end = window_times(n, self.meta["hop"])
        columns.update(example=np.arange(n, dtype=np.int32), start_s=start, end_s=end)
        columns["embedding"] = _fixed_list(self.embeddings, (spec.EMBEDDING_SIZE,)) if arrow else self.embeddings
        if log_mel:
            columns["log_mel"] = (_fixed_list(self.examples, (spec.NUM_FRAMES, spec.NUM_BANDS)) if arrow
                                  else self.examples)
        return columns


def _stored(out, dataset):
    """``(item_id, label or None, audio path or None)`` for every item to export, in the dataset's order."""
    from . import store

    if dataset is not None:
        return [(item.item_id, item.label, item.path) for item in dataset.items]
    items_dir = Path(os.fspath(out)) / store.ITEMS_DIR
    return [(path.stem, None, None) for path in sorted(items_dir.glob("*.npz"))
            if not path.name.startswith(TMP_PREFIX)]


def _read(out, item_id, audio_path):
    """``(examples, embeddings, meta, None)`` or ``(None, None, None, reason)``."""
    from . import store

    try:
        path = store.item_path(out, item_id)
    except BadItemError:  # a stray file in items/ (backup.old.npz): never an item warblr wrote
        return None, None, None, (f"{Path(os.fspath(out)) / store.ITEMS_DIR / (item_id + '.npz')}: not an item "
                                  "file (its name is not an item id); left out")
    if not path.exists():
        return None, None, None, f"not extracted (no {path})"
    arrays = store.read_item(path)
    if arrays is None:
        return None, None, None, f"{path}: unreadable (half-written or corrupt); rerun extract"
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
    if audio_path is not None:
        try:
            current = file_digest(audio_path)
        except OSError as exc:
            return None, None, None, f"{audio_path}: cannot read ({exc.strerror or exc})"
        if meta.get("source_sha256") != current:
            return None, None, None, f"{path}: stale (its audio {audio_path} changed since extract); rerun extract"
    return arrays[0], arrays[1], meta, None


def _exportable(out, dataset, result):
    """Yield each exportable item as :class:`_Exported`, one in memory at a time; report the others.

    The first readable item fixes the fingerprint every later item must share.
    """
    shared = None
    for item_id, label, audio_path in _stored(out, dataset):
        examples, embeddings, meta, reason = _read(out, item_id, audio_path)
        if reason is None:
            fingerprint = {k: meta.get(k) for k in _SHARED_FIELDS}
            shared = fingerprint if shared is None else shared
            if fingerprint != shared:
                reason = (f"stale: made with {meta.get('weights')} ({meta.get('precision')}, hop {meta.get('hop')}, "
                          f"log-mel on {meta.get('log_mel_device')}), the exported rows with {shared['weights']} "
                          f"({shared['precision']}, hop {shared['hop']}, log-mel on {shared['log_mel_device']}); "
                          "rerun extract")
        if reason is not None:
            result.problems.append(Problem(item_id, reason))
            continue
        yield _Exported(item_id, label, audio_path, examples, embeddings, meta)


def check_table_format(table_format, *, log_mel=False):
    """Return ``table_format`` if :func:`export_table` can write it (with ``log_mel``), else raise.

    Raises
    ------
    InvalidArgumentError
        Not one of :data:`TABLE_FORMATS` (``parameter="table_format"``), a log-mel column asked of CSV
        (``parameter="log_mel"``), or Parquet without pyarrow.

    Examples
    --------
    >>> check_table_format("csv")
    'csv'
    """
    if table_format not in TABLE_FORMATS:
        reason = f"expected one of {', '.join(TABLE_FORMATS)}, got {table_format!r}"
        raise InvalidArgumentError(f"table_format: {reason}", parameter="table_format", reason=reason)
    if table_format == "csv" and log_mel:
        reason = "a log-mel column (6144 values per row) needs parquet or npz, not csv"
        raise InvalidArgumentError(f"log_mel: {reason}", parameter="log_mel", reason=reason)
    if table_format == "parquet":
        try:
            import pyarrow  # noqa: F401  (the writer; an optional dependency)
        except ImportError as exc:
            reason = "Parquet needs pyarrow: pip install 'warblr[parquet]'"
            raise InvalidArgumentError(f"table_format: {reason}", parameter="table_format", reason=reason) from exc
    return table_format


def _check_options(out, path, table_format, log_mel):
    from . import store

    items_dir = Path(os.fspath(out)) / store.ITEMS_DIR
    if not items_dir.is_dir():
        reason = f"{items_dir} does not exist: run `warblr extract` first"
        raise InvalidArgumentError(f"out: {reason}", parameter="out", reason=reason)
    path = Path(os.fspath(path))
    table_format = table_format or {".csv": "csv", ".npz": "npz"}.get(path.suffix.lower(), "parquet")
    return path, check_table_format(table_format, log_mel=log_mel)


def export_table(out, path, *, format=None, dataset=None, log_mel=False, settings=None, row_group_rows=None,
                 rows_per_file=DEFAULT_ROWS_PER_FILE):
    """Write the item store ``out/items`` as a table, one row per example.

    Parameters
    ----------
    out : str or os.PathLike
        The output folder of ``warblr extract``, ``analyse`` or ``embed``.
    path : str or os.PathLike
        Parquet: a ``*.parquet`` file (replaced atomically) or a new folder
        of ``part-NNNNN.parquet`` files. CSV and NPZ: one file.
    format : {"parquet", "csv", "npz"}, optional, keyword-only
        Default: from ``path``'s suffix (``.csv``, ``.npz``), else Parquet.
    dataset : warblr.lab.dataset.Dataset, optional, keyword-only
        Gives the items to export (in its order), the ``path`` column, the
        ``label`` column when its items have labels, and the audio against
        which stale items are found. None: every readable item, by id.
    log_mel : bool, keyword-only
        Add the ``log_mel`` column (96 x 64 float32 per row: 48x the size);
        Parquet and NPZ only.
    settings : dict, optional, keyword-only
        The run's settings (JSON-ready), stored in the table's metadata.
    row_group_rows, rows_per_file : int, keyword-only
        Parquet only; see :func:`export_parquet`.

    Returns
    -------
    ExportResult

    Raises
    ------
    InvalidArgumentError
        A bad option (``parameter`` names it; see :func:`check_table_format`), or ``out`` has no item store.
    OutputError
        ``path`` cannot be written, an existing folder, or another run holds ``out``.
    """
    path, fmt = _check_options(out, path, format, log_mel)
    default_rows = _LOG_MEL_ROW_GROUP_ROWS if log_mel else DEFAULT_ROW_GROUP_ROWS
    row_group_rows = default_rows if row_group_rows is None else check_scalar(row_group_rows, "row_group_rows",
                                                                                min_val=1)
    rows_per_file = check_scalar(rows_per_file, "rows_per_file", min_val=1)
    result = ExportResult()
    shape = {"paths": dataset is not None,
             "labels": dataset is not None and all(item.label is not None for item in dataset.items),
             "log_mel": log_mel}
    with exclusive(out, what="warblr export"):
        items = _exportable(out, dataset, result)
        try:
            if fmt == "parquet":
                _write_parquet(path, items, result, shape=shape, settings=settings, row_group_rows=row_group_rows,
                               rows_per_file=rows_per_file)
            elif fmt == "csv":
                _write_csv(path, items, result, shape=shape, settings=settings)
            else:
                _write_npz(path, items, result, shape=shape, settings=settings)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})", path=path) from exc
    return result


def export_parquet(out, path, *, dataset=None, log_mel=False, row_group_rows=None,
                   rows_per_file=DEFAULT_ROWS_PER_FILE, settings=None):
    """Write the item store ``out/items`` as Parquet, one row per example, in bounded memory.

    Parameters
    ----------
    out : str or os.PathLike
        The output folder of ``warblr extract``.
    path : str or os.PathLike
        ``*.parquet``: one file (replaced atomically). Anything else: a new
        folder of ``part-NNNNN.parquet`` files.
    dataset : warblr.lab.dataset.Dataset, optional, keyword-only
        See :func:`export_table`.
    log_mel : bool, keyword-only
        Add the ``log_mel`` column (96 x 64 float32 per row: 48x the size).
    row_group_rows : int, optional, keyword-only
        Rows per row group (default 4096, 1024 with ``log_mel``): the memory bound.
    rows_per_file : int, keyword-only
        Rows per file when ``path`` is a folder.
    settings : dict, optional, keyword-only
        The run's settings, in the schema metadata under ``warblr_run``.

    Returns
    -------
    ExportResult

    Raises
    ------
    InvalidArgumentError
        A bad option (``parameter`` names it), or ``out`` has no item store.
    OutputError
        ``path`` cannot be written, or is an existing folder.

    Examples
    --------
    >>> result = export_parquet("out", "out/features.parquet")                   # doctest: +SKIP
    >>> import pandas as pd; list(pd.read_parquet("out/features.parquet"))      # doctest: +SKIP
    ['item_id', 'example', 'start_s', 'end_s', 'embedding']
    """
    return export_table(out, path, format="parquet", dataset=dataset, log_mel=log_mel, settings=settings,
                        row_group_rows=row_group_rows, rows_per_file=rows_per_file)


def _write_parquet(path, items, result, *, shape, settings, row_group_rows, rows_per_file):
    # The first item fixes the fingerprint, hence the schema: read it before opening any output.
    first = next(items, None)
    fingerprint = {k: first.meta.get(k) for k in _SHARED_FIELDS} if first else {}
    schema = _schema(fingerprint=fingerprint, settings=settings, **shape)

    def write_rows(sink):
        groups = _RowGroups(schema=schema, row_group_rows=row_group_rows, sink=sink)
        for item in _chain(first, items):  # one item in memory at a time
            groups.add(item.columns(**shape), len(item.embeddings))
            result.items += 1
            result.rows += len(item.embeddings)
        groups.close()
        result.row_groups = groups.row_groups

    if path.suffix == ".parquet":
        def write_file(handle):
            sink = _FileSink(handle, schema)
            write_rows(sink)
            sink.close()

        atomic_write(path, write_file)
        result.files = [path]
    else:
        _write_folder(path, schema, rows_per_file, write_rows, result)


def _chain(first, rest):
    if first is not None:
        yield first
    yield from rest


def _write_csv(path, items, result, *, shape, settings):
    """One CSV (streamed, ``%.9g`` floats) and its fingerprint and settings in ``PATH.json``."""
    import csv

    fingerprint = {}

    def write(handle):
        writer = csv.writer(handle, lineterminator="\n")
        header = ["item_id"] + ["path"] * shape["paths"] + ["label"] * shape["labels"]
        writer.writerow(header + ["example", "start_s", "end_s"]
                        + [f"e{k:03d}" for k in range(spec.EMBEDDING_SIZE)])
        for item in items:
            fingerprint.update({k: item.meta.get(k) for k in _SHARED_FIELDS})
            columns = item.columns(arrow=False, **shape)
            for row in range(len(item.embeddings)):
                writer.writerow([columns[name][row] for name in header]
                                + [int(columns["example"][row]), repr(float(columns["start_s"][row])),
                                   repr(float(columns["end_s"][row]))]
                                + ["%.9g" % value for value in item.embeddings[row]])
            result.items += 1
            result.rows += len(item.embeddings)

    atomic_write(path, write, mode="w")
    sidecar = path.with_name(path.name + ".json")
    atomic_write_json(sidecar, {"warblr": fingerprint, "warblr_run": settings or {}})
    result.files = [path, sidecar]


def _write_npz(path, items, result, *, shape, settings):
    """One NPZ: arrays named as the columns, ``meta`` the fingerprint and settings (all rows in memory)."""
    columns, fingerprint = {}, {}
    for item in items:
        fingerprint = fingerprint or {k: item.meta.get(k) for k in _SHARED_FIELDS}
        for name, values in item.columns(arrow=False, **shape).items():
            columns.setdefault(name, []).append(np.asarray(values))
        result.items += 1
        result.rows += len(item.embeddings)
    empty = {"item_id": np.zeros(0, dtype=str), "path": np.zeros(0, dtype=str), "label": np.zeros(0, np.int8),
             "example": np.zeros(0, np.int32), "start_s": np.zeros(0), "end_s": np.zeros(0),
             "embedding": np.zeros((0, spec.EMBEDDING_SIZE), np.float32),
             "log_mel": np.zeros((0, spec.NUM_FRAMES, spec.NUM_BANDS), np.float32)}
    names = ["item_id"] + ["path"] * shape["paths"] + ["label"] * shape["labels"] + [
        "example", "start_s", "end_s", "embedding"] + ["log_mel"] * shape["log_mel"]
    arrays = {name: np.concatenate(columns[name]) if name in columns else empty[name] for name in names}
    arrays["meta"] = np.array(json.dumps({"warblr": fingerprint, "warblr_run": settings or {}}, sort_keys=True))
    atomic_write(path, lambda handle: np.savez(handle, **arrays))
    result.files = [path]


def _write_folder(path, schema, rows_per_file, write_rows, result):
    """Parts into ``.tmp-NAME/``, renamed to ``path`` at the end: a killed export leaves no partial folder."""
    if path.exists():
        raise OutputError(f"{path}: already exists; choose a new folder (or a *.parquet file name)", path=path)
    staging = path.with_name(f"{TMP_PREFIX}{path.name}")
    shutil.rmtree(staging, ignore_errors=True)  # a killed export's leftovers
    staging.mkdir(parents=True)
    try:
        sink = _FolderSink(staging, schema, rows_per_file)
        write_rows(sink)
        if not sink.files:  # nothing to export: still one valid, empty part
            import pyarrow.parquet as pq

            pq.write_table(schema.empty_table(), staging / "part-00000.parquet")
            sink.files.append(staging / "part-00000.parquet")
        sink.close()
        os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result.files = [path / part.name for part in sink.files]


# --------------------------------------------------------------------------- command line


def _run_export(args):
    from .dataset import display_id, read_dataset

    dataset = read_dataset(args.data, labels=args.labels) if args.data else None
    result = export_parquet(args.out, args.parquet, dataset=dataset, log_mel=args.log_mel,
                            row_group_rows=args.row_group_size, rows_per_file=args.rows_per_file)
    if result.problems:
        print(f"items not exported ({len(result.problems)}):", file=sys.stderr)
        for problem in result.problems:
            print(f"  {display_id(problem.item_id)}: {display_id(problem.reason)}", file=sys.stderr)
    where = result.files[0] if len(result.files) == 1 else f"{Path(args.parquet)} ({len(result.files)} files)"
    if not args.quiet:
        print(f"export: {result.rows} rows ({result.items} items, {result.row_groups} row groups) -> {where}; "
              f"{len(result.problems)} items not exported")
    return 0


def register(subparsers):
    """Add ``export`` to the ``warblr`` command line."""
    from ..cli_support import HelpFormatter

    class Formatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
        """Keeps the description's code lines as written; shows defaults like the other commands."""

    parser = subparsers.add_parser(
        "export", formatter_class=Formatter, help="the item store as Parquet (pandas, polars, HF datasets)",
        description="Write OUT/items as Parquet, one row per example: item_id, path and label (with --data), "
                    "example,\nstart_s, end_s (exact sample positions), embedding (128 float32) and, with --log-mel, log_mel (96 x 64 float32). "
                    "Streamed one row\ngroup at a time (bounded memory); written atomically. Stale, unreadable "
                    "and missing items are\nreported by id and never exported. Read it with pandas:\n\n"
                    + _PANDAS_EXAMPLE)
    parser.add_argument("out", metavar="OUT", help="the output folder of `warblr extract` (holding items/)")
    parser.add_argument("--parquet", required=True, metavar="PATH",
                        help="a *.parquet file, or a new folder of part-NNNNN.parquet files (large stores)")
    parser.add_argument("--data", metavar="DIR", default=None,
                        help="the dataset that was extracted: adds the label column, exports its items in id order "
                             "and leaves out items whose audio changed since extract (stale)")
    parser.add_argument("--labels", metavar="CSV", default=None,
                        help="the label CSV of --data, if it is not the only *.csv there")
    parser.add_argument("--log-mel", action="store_true", help="add the log_mel column (48x larger)")
    parser.add_argument("--row-group-size", type=argparse_type(int, min_val=1), default=None, metavar="ROWS",
                        help=f"rows per row group, the memory bound (default {DEFAULT_ROW_GROUP_ROWS}, "
                             f"{_LOG_MEL_ROW_GROUP_ROWS} with --log-mel)")
    parser.add_argument("--rows-per-file", type=argparse_type(int, min_val=1), default=DEFAULT_ROWS_PER_FILE,
                        metavar="ROWS", help="rows per part file when --parquet is a folder")
    parser.add_argument("--quiet", action="store_true", help="no summary line")
    parser.set_defaults(func=_run_export, parameter_flags={"root": "--data", "row_group_rows": "--row-group-size",
                                                           "out": "OUT", "path": "--parquet"})
