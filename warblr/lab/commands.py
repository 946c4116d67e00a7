"""The lab's sub-commands: ``warblr demo``, ``extract``, ``analyse`` and ``embed``.

Wiring only: options are parsed here and handed to
:func:`warblr.lab.extract.extract`, :func:`warblr.lab.analyse.analyse` and
:func:`warblr.lab.embed_audio.embed_audio`. Every default is read from the
library constant it mirrors, never written twice. Library errors name
parameters (``group_size``); :func:`warblr.cli.error_message` turns them
into this command's flags (``--group-size``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .. import __version__, spec
from ..validation import argparse_type
from .analyse import DEFAULT_FOLDS, PCA_SIZES
from .extract import DEFAULT_GROUP_SIZE

__all__ = ["register"]

_MAX_LISTED = 25  # skipped items listed in the terminal (all are in report.json)
_positive_int = argparse_type(int, min_val=1)
_count = argparse_type(int, min_val=0)
#: Library parameters whose flag is not simply ``--name-with-dashes``.
_PARAMETER_FLAGS = {"root": "--data", "test_root": "--test-data"}
#: embed's parameters spelt differently on its command line.
_EMBED_FLAGS = {"paths": "PATH", "table_format": "--format"}


def _say(args, *lines):
    if not args.quiet:
        for line in lines:
            print(line)


def _banner(args, provenance, what):
    _say(args, f"warblr {args.command} {__version__}: {what}")
    if provenance.pretrained:
        _say(args, f"VGGish weights: pretrained, from {provenance.source}")
    else:
        # Loud even with --quiet: results must never pass for pretrained ones.
        print(f"WARNING: {provenance.label}. {provenance.note or ''}", file=sys.stderr)


def _list_problems(problems, header):
    from .dataset import display_id

    if not problems:
        return
    print(f"{header} ({len(problems)}):", file=sys.stderr)
    for p in problems[:_MAX_LISTED]:
        where = f" (line {p.line})" if p.line else ""
        print(f"  {display_id(p.item_id)}{where}: {display_id(p.reason)}", file=sys.stderr)
    if len(problems) > _MAX_LISTED:
        print(f"  ... and {len(problems) - _MAX_LISTED} more (all listed in report.json)", file=sys.stderr)


def _engine(args):
    from ..embed import make_engine

    return make_engine(device=args.device, dtype=args.dtype, batch_size=args.batch_size, workers=args.workers)


def _load_model(args, what):
    from ..weights import load_with_provenance

    model, provenance = load_with_provenance(args.weights, seed=args.weights_seed, download=args.download)
    _banner(args, provenance, what)
    return model, provenance


def _read(args, root, labels, what, *, prefix=""):
    """Read a dataset; ``prefix="test_"`` makes its errors name --test-data / --test-labels."""
    from ..errors import DatasetError
    from .dataset import read_dataset

    try:
        dataset = read_dataset(root, labels=labels, limit=args.limit, seed=args.seed)
    except DatasetError as exc:
        if exc.parameter in ("root", "labels"):
            exc.parameter = prefix + exc.parameter
        raise
    _say(args, f"{what}: {dataset.root} ({dataset.metadata.name}): {len(dataset.items)} items"
               + (f" (stratified subset, --limit {args.limit})" if args.limit else ""))
    return dataset


def _prepare(args, what):
    model, provenance = _load_model(args, what)
    return _read(args, args.data, args.labels, "data"), model, provenance


def _ray(args):
    """The Ray settings of ``--ray`` and its options, or None (then Ray is never imported)."""
    if getattr(args, "ray", None) is None:
        return None
    from .distributed import ray_settings_from_args

    return ray_settings_from_args(args)


def _run_extract(args):
    from .distributed import run_extract

    engine = _engine(args)  # bad options fail before any work
    dataset, model, provenance = _prepare(args, f"extract {args.data} -> {args.out}")
    result = run_extract(dataset, args.out, model=model, provenance=provenance, group_size=args.group_size,
                         engine=engine, progress=not args.quiet, ray=_ray(args), hop=args.hop)
    _list_problems(list(dataset.problems) + result.failed, "skipped items")
    from .store import ITEMS_DIR

    print(f"extract: {len(result.done)} items in {Path(args.out) / ITEMS_DIR} ({result.computed} computed, "
          f"{result.reused} reused) in {result.seconds:.1f} s; "
          f"{len(dataset.problems) + len(result.failed)} skipped")
    if result.computed_here:
        print(f"extract: {result.computed_here} of the {result.computed} computed here while Ray started "
              "(--ray-no-local-start leaves all to Ray)")
    return 0


def _run_analyse(args, engine=None):
    from .analyse import analyse
    from .dataset import Problem
    from .plots import PLOTS_DIR
    from .report import REPORT_JSON, REPORT_MD, summary_table

    engine = _engine(args) if engine is None else engine
    dataset, model, provenance = _prepare(args, f"analyse {args.data} -> {args.out}")
    test = _read(args, args.test_data, args.test_labels, "test data", prefix="test_") if getattr(args, "test_data", None) else None
    report = analyse(dataset, args.out, model=model, provenance=provenance, folds=args.folds, seed=args.seed,
                     pca_sizes=args.pca_sizes, group_size=args.group_size, engine=engine,
                     progress=not args.quiet, command=args.command, test_dataset=test, ray=_ray(args), hop=args.hop)
    _list_problems([Problem(p["item_id"], p["reason"], p["line"]) for p in report["skipped"]], "skipped items")
    if test is not None:
        _list_problems([Problem(p["item_id"], p["reason"], p["line"]) for p in report["test"]["skipped"]],
                       "skipped test items")
    print()
    print(summary_table(report))
    print(f"report: {Path(args.out) / REPORT_MD}, {Path(args.out) / REPORT_JSON}; plots in "
          f"{Path(args.out) / PLOTS_DIR} ({report['timings']['total_s']:.0f} s)")
    return 0


def _run_embed(args):
    from .embed_audio import embed_audio

    engine = _engine(args)  # bad options fail before any work
    model, provenance = _load_model(args, f"embed -> {args.out}")
    result = embed_audio(args.paths, args.out, model=model, provenance=provenance, recursive=args.recursive,
                         paths_from=args.paths_from, table_format=args.format, log_mel=args.log_mel, hop=args.hop,
                         group_size=args.group_size, engine=engine, progress=not args.quiet, ray=_ray(args))
    if result.problems:
        print(f"files not embedded ({len(result.problems)}):", file=sys.stderr)
        for problem in result.problems[:_MAX_LISTED]:
            print(f"  {problem.reason}", file=sys.stderr)
        if len(result.problems) > _MAX_LISTED:
            print(f"  ... and {len(result.problems) - _MAX_LISTED} more", file=sys.stderr)
    print(f"embed: {result.rows} windows of {result.items} files ({result.computed} computed, {result.reused} "
          f"reused) -> {result.table[0]} in {result.seconds:.1f} s; {len(result.problems)} not embedded")
    return 0


def _run_demo(args):
    from .corpus import make_corpus

    engine = _engine(args)
    corpus = Path(args.corpus) if args.corpus else Path(args.out) / "corpus"
    started = time.perf_counter()
    root, made = make_corpus(corpus, n_clips=args.size, seed=args.seed, progress=not args.quiet)
    _say(args, f"demo corpus: {root} ({args.size} synthetic 10 s clips, "
               + ("generated" if made else "reused") + f" in {time.perf_counter() - started:.1f} s)")
    args.data, args.labels, args.test_data = str(root), None, None
    return _run_analyse(args, engine)


def _sizes(text):
    import argparse

    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return sizes


def _data_options(parser):
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="dataset folder: warblrb10k, ff1010bird or BirdVox-DCASE-20k as published (or as "
                             "`warblr fetch` or soundata lay it out): audio files and a label CSV "
                             "(itemid,datasetid,hasbird or itemid,hasbird)")
    parser.add_argument("--labels", metavar="CSV", default=None,
                        help="the label CSV, if it is not the only *.csv in --data")
    parser.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                        help="use a stratified, seeded subset of N items")


def _hop_seconds(text):
    """``--hop``: seconds, the library's rule (:func:`warblr.features.hop_frames`)."""
    import argparse

    from ..errors import InvalidArgumentError
    from ..features import hop_frames
    from ..validation import parse_scalar

    try:
        seconds = parse_scalar(text, "hop", float)
        hop_frames(seconds)
        return seconds
    except InvalidArgumentError as exc:
        raise argparse.ArgumentTypeError(exc.reason) from None


def _common(parser, *, seeded=True):
    parser.add_argument("--out", required=True, metavar="OUT",
                        help="output folder (created; reruns resume). Items go to OUT/items/<itemid>.npz")
    parser.add_argument("--hop", type=_hop_seconds, default=spec.EXAMPLE_HOP_SECONDS, metavar="SECONDS",
                        help="seconds between example starts: 0.96 is the VGGish spec (non-overlapping), 0.48 "
                             "half-overlapping; a multiple of 0.01 s. Part of each item's fingerprint")
    parser.add_argument("--weights", default="auto", metavar="auto|random|PATH",
                        help="VGGish weights: auto finds the released weights (path in $WARBLR_VGGISH_WEIGHTS or "
                             "the torch hub cache) and falls back to seeded random weights, loudly")
    parser.add_argument("--weights-seed", type=int, default=0, help="seed of random weights")
    parser.add_argument("--download", action="store_true",
                        help="let --weights auto download the released weights when online")
    if seeded:
        parser.add_argument("--seed", type=int, default=0, help="seed of --limit, the CV folds and the estimators")
    parser.add_argument("--group-size", type=_positive_int, default=DEFAULT_GROUP_SIZE,
                        help="clips per group: the unit of batching and of resumption (progress is saved after "
                             "each clip)")
    parser.add_argument("--device", default="auto", metavar="auto|cpu|cuda|cuda:N",
                        help="where features and the network run: auto is cuda when available, else cpu")
    parser.add_argument("--batch-size", type=_positive_int, default=spec.DEFAULT_BATCH_SIZE,
                        help="0.96 s examples per network call (batches cross clip boundaries within a group)")
    parser.add_argument("--workers", type=_count, default=None,
                        help="threads decoding a group's audio files in parallel (0: decode in the main thread; "
                             "default: one per core, at most 4). Results do not depend on it")
    parser.add_argument("--dtype", choices=spec.NETWORK_DTYPES, default=spec.NETWORK_DTYPES[0],
                        help="network precision. bfloat16 and float16 are opt-in: faster on recent GPUs and CPUs, "
                             "but embeddings differ beyond float32 rounding; items made in another precision are "
                             "redone")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or info lines")


def _analysis_options(parser):
    parser.add_argument("--folds", type=argparse_type(int, min_val=2), default=DEFAULT_FOLDS,
                        help="stratified cross-validation folds")
    parser.add_argument("--pca-sizes", type=_sizes, default=",".join(map(str, PCA_SIZES)), metavar="K,K,...",
                        help="PCA sizes to sweep, capped by the features and the training samples")


def register(subparsers):
    """Add ``demo``, ``extract`` and ``analyse`` to the ``warblr`` command line."""
    from .corpus import DEFAULT_SIZE
    from .distributed import add_ray_options  # defines the options only: Ray itself is imported when used

    demo = subparsers.add_parser(
        "demo", help="the lab end to end on the embedded synthetic corpus",
        description="Generate (or reuse) the embedded synthetic warblr-like corpus offline, then run `analyse` "
                    "on it: log-mel and VGGish embeddings, each mean pooled and mean/std/max pooled, for bird "
                    "detection, with report and plots.")
    _common(demo)
    demo.add_argument("--size", type=argparse_type(int, min_val=2), default=DEFAULT_SIZE,
                      help="number of 10 s clips to generate")
    demo.add_argument("--corpus", metavar="DIR", default=None, help="where to keep the corpus (default OUT/corpus)")
    _analysis_options(demo)
    demo.set_defaults(func=_run_demo, limit=None, parameter_flags=_PARAMETER_FLAGS)

    ext = subparsers.add_parser(
        "extract", help="VGGish examples and embeddings for every item, resumable",
        description="Write OUT/items/<itemid>.npz (examples [N,96,64], embeddings [N,128]) for each item; "
                    "finished items are skipped, so a killed run resumes where it stopped. Same inputs and "
                    "settings give bit-identical items, whatever --workers or the progress bar.")
    _data_options(ext)
    _common(ext)
    add_ray_options(ext)
    ext.set_defaults(func=_run_extract, parameter_flags=_PARAMETER_FLAGS)

    ana = subparsers.add_parser(
        "analyse", aliases=["analyze"],
        help="extract, then PCA + logistic regression with cross-validated ROC AUC; report and plots",
        description="Extract (or reuse), pool per clip, then compare the feature sets (log-mel and VGGish "
                    "embeddings, each mean pooled and mean/std/max pooled) with PCA + logistic regression "
                    "(stratified CV ROC AUC over a sweep of PCA sizes). With --test-data, each feature set's "
                    "pipeline (PCA size chosen on --data only) is fitted on --data and scored on the test set. "
                    "Writes OUT/report.json, OUT/report.md and OUT/plots/*.png.")
    _data_options(ana)
    ana.add_argument("--test-data", metavar="DIR", default=None,
                     help="a second dataset to test on (e.g. train on warblrb10k, test on ff1010bird); its items "
                          "go to OUT/test/items and its labels are used only to score")
    ana.add_argument("--test-labels", metavar="CSV", default=None,
                     help="the label CSV of --test-data, if it is not the only *.csv there")
    _common(ana)
    _analysis_options(ana)
    add_ray_options(ana)
    ana.set_defaults(func=_run_analyse, parameter_flags=_PARAMETER_FLAGS)

    emb = subparsers.add_parser(
        "embed", help="VGGish embeddings of any audio files, one row per window, resumable",
        description="Embed every audio file named: files, folders (--recursive for sub-folders) and @LIST text "
                    "files of paths; any format libsndfile reads (WAV, FLAC, OGG, MP3 where it has it), any sample "
                    "rate and channel count, no labels. Long recordings are streamed in bounded memory. Items go "
                    "to OUT/items (a killed run resumes; reruns are bit-identical) and the table to "
                    "OUT/embeddings.<format>: path, item_id, example, start_s, end_s (exact sample positions), "
                    "embedding [128] (and log_mel with --log-mel), with the run's settings in its metadata. Bad "
                    "files are listed by path with the reason; the others are embedded.")
    emb.add_argument("paths", nargs="*", metavar="PATH", help="audio files, folders, or @LIST (a text file of paths)")
    emb.add_argument("--paths-from", metavar="LIST", default=None,
                     help="a text file of paths, one per line (relative to its folder; # comments)")
    emb.add_argument("--recursive", action="store_true", help="also the audio files in the folders' sub-folders")
    emb.add_argument("--format", choices=("parquet", "csv", "npz"), default="parquet",
                     help="the table's format (CSV: its metadata in OUT/embeddings.csv.json)")
    emb.add_argument("--log-mel", action="store_true", help="add each window's 96 x 64 log-mel (parquet, npz)")
    _common(emb, seeded=False)
    add_ray_options(emb)
    emb.set_defaults(func=_run_embed, parameter_flags=_EMBED_FLAGS)
