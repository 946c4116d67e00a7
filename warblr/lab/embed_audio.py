"""``warblr embed PATH... --out OUT``: VGGish embeddings of any audio, no labels, one row per window.

The inputs are audio files, folders of them (``--recursive`` for their
sub-folders) and text files listing paths (``@list.txt`` or ``--paths-from``):
every format the installed libsndfile reads (:mod:`warblr.formats`), any
sample rate and channel count. :func:`collect_audio` turns them into a
label-free :class:`~warblr.lab.dataset.Dataset` whose item ids are made from
the paths (:func:`item_id_for`), and from there ``embed`` is ``extract``:
the same fixed groups, item store, fingerprints, resumption after a kill,
bit-identical reruns, streaming of long files in bounded memory, progress
bar and ``--ray`` runner (:func:`warblr.lab.distributed.run_extract`).
Bad files are reported by path with the reason and never stop the run.
Finally the items become one table, ``OUT/embeddings.<format>``
(:func:`warblr.lab.export.export_table`): path, item id, ``start_s`` and
``end_s`` (exact sample positions), the 128-d embedding and, on request,
the log-mel window, with the run's settings in the table's metadata. The
output folder's lock is held from the first read to the last write.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__, spec
from ..errors import InvalidArgumentError
from .dataset import Dataset, Item, Problem
from .extract import DEFAULT_GROUP_SIZE

__all__ = ["EmbedResult", "collect_audio", "item_id_for", "read_path_list", "embed_audio", "TABLE_NAME"]

#: The table's file name in OUT, without its suffix (``embeddings.parquet``, ``.csv``, ``.npz``).
TABLE_NAME = "embeddings"
#: Characters of a file's stem kept in its item id (the id ends with a digest of the whole path).
_STEM_CHARS = 48
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass
class EmbedResult:
    """What :func:`embed_audio` did.

    Attributes
    ----------
    table : list of Path
        The file(s) written (with CSV, also its ``.json`` metadata).
    items, rows : int
        Files and windows in the table.
    computed, reused : int
        Items computed in this run, and kept from an earlier one.
    problems : list of Problem
        Bad inputs and files, each by path with the reason.
    seconds : float
    """

    table: list = field(default_factory=list)
    items: int = 0
    rows: int = 0
    computed: int = 0
    reused: int = 0
    problems: list = field(default_factory=list)
    seconds: float = 0.0


def item_id_for(path):
    """The item id of an audio file: its stem made safe, and 12 hex digits of its absolute path's SHA-256.

    Two files with one name in different folders get different ids; the
    same path always gets the same id (so a rerun finds its items).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    str
        Letters, digits, ``-`` and ``_`` only (see :func:`warblr.lab.dataset.validate_item_id`).

    Examples
    --------
    >>> item_id_for("/data/Dawn chorus #3.FLAC")
    'Dawn_chorus_3-f3b318428eae'
    """
    absolute = os.path.abspath(os.fspath(path))
    stem = _UNSAFE.sub("_", Path(absolute).stem).strip("_")[:_STEM_CHARS] or "audio"
    digest = hashlib.sha256(os.fsencode(absolute)).hexdigest()[:12]
    return f"{stem}-{digest}"


def read_path_list(list_file):
    """The paths a text file lists, one per line; blank lines and ``#`` comments skipped.

    Relative paths are relative to the list file's folder, so a list can
    travel with its recordings.

    Parameters
    ----------
    list_file : str or os.PathLike

    Returns
    -------
    list of Path

    Raises
    ------
    InvalidArgumentError
        The list cannot be read (``parameter="paths_from"``).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "list.txt").write_text("# field recordings\\na.wav\\n\\n/abs/b.flac\\n")
    >>> [p.name for p in read_path_list(folder / "list.txt")]
    ['a.wav', 'b.flac']
    """
    list_file = Path(os.fspath(list_file))
    try:
        text = list_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = f"{list_file}: cannot read the list of paths ({getattr(exc, 'strerror', None) or exc})"
        raise InvalidArgumentError(f"paths_from: {reason}", parameter="paths_from", reason=reason) from exc
    paths = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            paths.append(list_file.parent / line)  # an absolute line stays absolute
    return paths


def _folder_files(folder, recursive):
    """The audio files of ``folder`` (and its sub-folders when ``recursive``), sorted; links to folders not followed."""
    from ..formats import is_audio_file

    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if recursive and not d.startswith("."))
        found += [Path(root) / name for name in sorted(files) if is_audio_file(Path(root) / name)]
    return found


def collect_audio(inputs, *, recursive=False, paths_from=None):
    """The audio files named by ``inputs``, as a label-free dataset.

    Parameters
    ----------
    inputs : sequence of str or os.PathLike
        Files (taken whatever their suffix: the decoder decides), folders
        (their audio files, see :func:`warblr.formats.is_audio_file`) and
        ``@LIST`` (the paths a text file lists, see :func:`read_path_list`).
    recursive : bool, keyword-only
        Also the audio files of the folders' sub-folders.
    paths_from : str or os.PathLike, optional, keyword-only
        A text file of paths, as ``@LIST``.

    Returns
    -------
    Dataset
        ``items`` (label None) sorted by path, each path once; ``problems``
        the inputs that do not exist, by path.

    Raises
    ------
    InvalidArgumentError
        No input at all, or a list of paths that cannot be read.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("b.FLAC", "a.wav", "notes.txt"):
    ...     _ = (folder / name).write_bytes(b"x")
    >>> dataset = collect_audio([folder, folder / "missing.ogg"])
    >>> [item.path.name for item in dataset.items], [p.reason.split("/")[-1] for p in dataset.problems]
    (['a.wav', 'b.FLAC'], ['missing.ogg'])
    """
    named = []
    for entry in list(inputs) + ([f"@{os.fspath(paths_from)}"] if paths_from is not None else []):
        text = os.fspath(entry)
        named += read_path_list(text[1:]) if isinstance(text, str) and text.startswith("@") else [Path(text)]
    if not named:
        reason = "no audio given: name files, folders or @LIST files"
        raise InvalidArgumentError(f"paths: {reason}", parameter="paths", reason=reason)
    files, problems = [], []
    for path in named:
        if path.is_dir():
            files += _folder_files(path, recursive)
        elif path.exists():
            files.append(path)
        else:
            problems.append(Problem(item_id_for(path), f"no such file: {path}"))
    seen, items = set(), []
    for path in sorted(files, key=lambda p: os.path.abspath(p)):
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            items.append(Item(item_id_for(path), None, path))
    root = Path(os.path.commonpath([os.path.abspath(p) for p in named])) if named else Path.cwd()
    return Dataset(root=root, metadata=None, audio_dir=root, items=items, problems=problems, rows=len(items))


def _by_path(problems, dataset):
    """Problems named by path first (an item id means little to whoever listed the files)."""
    paths = {item.item_id: item.path for item in dataset.items}
    named = []
    for problem in problems:
        path = paths.get(problem.item_id)
        reason = problem.reason if path is None or str(path) in problem.reason else f"{path}: {problem.reason}"
        named.append(Problem(problem.item_id, reason, problem.line))
    return named


def embed_audio(inputs, out, *, model, provenance, recursive=False, paths_from=None, table_format="parquet",
                log_mel=False, hop=spec.EXAMPLE_HOP_SECONDS, group_size=DEFAULT_GROUP_SIZE, engine=None, progress=True,
                ray=None):
    """Embed every audio file ``inputs`` name; write ``OUT/items`` and the table ``OUT/embeddings.<format>``.

    Parameters
    ----------
    inputs : sequence of str or os.PathLike
        See :func:`collect_audio`.
    out : str or os.PathLike
        Output folder (created; a rerun resumes and reuses finished items).
    model : warblr.model.VGGish, keyword-only
    provenance : warblr.weights.WeightsProvenance, keyword-only
    recursive, paths_from : keyword-only
        See :func:`collect_audio`.
    table_format : {"parquet", "csv", "npz"}, keyword-only
        The table's format (:func:`warblr.lab.export.export_table`).
    log_mel : bool, keyword-only
        Add each window's log-mel (96 x 64) to the table (Parquet, NPZ).
    hop : float, keyword-only
        Seconds between window starts: 0.96 (the VGGish spec) by default,
        0.48 for half-overlapping windows; a multiple of 0.01 s.
    group_size : int, keyword-only
        Files per group: the unit of batching and resumption.
    engine : warblr.embed.Engine, optional, keyword-only
        Device, dtype, batch size, decoding threads.
    progress : bool, keyword-only
        A tqdm bar on stderr.
    ray : warblr.lab.distributed.RaySettings, optional, keyword-only
        Run the groups on Ray (bit-identical items).

    Returns
    -------
    EmbedResult

    Raises
    ------
    InvalidArgumentError
        No input, a bad option (``parameter`` names it).
    OutputError
        ``out`` cannot be written or another run holds it; finished items are kept.

    Examples
    --------
    >>> from warblr.weights import load_with_provenance                            # doctest: +SKIP
    >>> model, provenance = load_with_provenance("auto")                         # doctest: +SKIP
    >>> embed_audio(["recordings/"], "out", model=model, provenance=provenance)  # doctest: +SKIP
    """
    from ..embed import make_engine
    from ..features import hop_frames
    from .distributed import run_extract
    from .export import check_table_format, export_table
    from .extract import open_store

    started = time.perf_counter()
    hop_frames(hop)  # bad options fail before any work
    check_table_format(table_format, log_mel=log_mel)
    engine = make_engine() if engine is None else engine
    dataset = collect_audio(inputs, recursive=recursive, paths_from=paths_from)
    result = EmbedResult()
    with open_store(out):  # the folder's lock, held until the table is written
        extracted = run_extract(dataset, out, model=model, provenance=provenance, group_size=group_size,
                                engine=engine, progress=progress, ray=ray, hop=hop)
        done = set(extracted.done)
        finished = Dataset(root=dataset.root, metadata=None, audio_dir=dataset.root,
                           items=[item for item in dataset.items if item.item_id in done])
        settings = {"command": "embed", "warblr": __version__, "hop": hop, "group_size": group_size,
                    "engine": engine.as_dict(), "ray": ray.address if ray is not None else None,
                    "weights": provenance.as_dict(), "inputs": [os.fspath(i) for i in inputs],
                    "recursive": bool(recursive)}
        suffix = {"parquet": ".parquet", "csv": ".csv", "npz": ".npz"}[table_format]
        table = export_table(out, Path(os.fspath(out)) / f"{TABLE_NAME}{suffix}", format=table_format,
                             dataset=finished, log_mel=log_mel, settings=settings)
    result.table, result.items, result.rows = table.files, table.items, table.rows
    result.computed, result.reused = extracted.computed, extracted.reused
    result.problems = list(dataset.problems) + _by_path(list(extracted.failed) + table.problems, dataset)
    result.seconds = time.perf_counter() - started
    return result
