"""The lab end to end: ``warblr extract``, ``warblr analyse`` and ``warblr demo``.

``extract`` turns every item of a warblrb10k-layout folder into
``OUT/items/<itemid>.npz`` through the item store (:mod:`warblr.lab.store`:
atomic, validated, resumable). Items are processed in fixed groups (by
position in the id-sorted item list) so a resumed run batches exactly as an
uninterrupted one and gives bit-identical numbers. A group's files are
decoded in a thread pool; a bad file is reported by its item id and the run
goes on. Examples and embeddings come from the batched engine
(:mod:`warblr.embed`) on ``--device`` (CUDA when there is one), float32
unless ``--dtype`` asks for a reduced precision.

``analyse`` pools each clip's examples and embeddings, cross-validates PCA +
logistic regression on each feature set of :data:`FEATURE_SETS`
(:mod:`warblr.analysis`), and
writes the plots and the report (:mod:`warblr.lab.report`). ``demo`` does it all
on the embedded synthetic corpus (:mod:`warblr.lab.corpus`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__, spec
from .lab import store
from .lab.dataset import Problem, display_id, read_dataset
from .errors import InvalidArgumentError, WarblrError, WeightsNotFoundError
from .lab.report import REPORT_JSON, REPORT_MD, summary_table, versions, weights_label, write_report

__all__ = [
    "register",
    "FEATURE_SETS",
    "DTYPES",
    "load_model",
    "Engine",
    "make_engine",
    "extract",
    "analyse",
    "ExtractResult",
]

PLOTS_DIR = "plots"
DEFAULT_GROUP_SIZE = 16
DEFAULT_BATCH_SIZE = 64
#: Network precisions; float32 is the default, the others are opt-in.
DTYPES = ("float32", "bfloat16", "float16")
#: Feature sets compared by ``analyse``: key -> (display name, dimensions, how a clip is pooled).
FEATURE_SETS = {
    "log_mel": ("log-mel (pooled)", spec.NUM_BANDS, "each band's mean over all frames of the clip"),
    "log_mel_stats": ("log-mel (mean, std, max)", 3 * spec.NUM_BANDS,
                      "each band's mean, standard deviation and maximum over all frames of the clip"),
    "vggish": ("VGGish embedding (pooled)", spec.EMBEDDING_SIZE, "the mean of the clip's 0.96 s embeddings"),
}
#: Why the statistics pooling is there, stated in the report.
STATS_NOTE = ("Bird calls are short: a few loud frames barely move a band's mean over a 10 s clip, but they move "
              "its standard deviation and maximum, so mean, std and max pooling keeps what mean pooling washes out.")
_MAX_LISTED = 25  # skipped items listed in the terminal (all are in report.json)


# --------------------------------------------------------------------------- weights


def load_model(weights="auto", *, seed=0, download=False):
    """Load VGGish, falling back to seeded random weights when ``"auto"`` finds none.

    Parameters
    ----------
    weights : {"auto", "random"} or path
    seed : int, keyword-only
        Seed of random weights.
    download : bool, keyword-only
        Let ``"auto"`` download the released weights (off by default: offline).

    Returns
    -------
    model : VGGish
    provenance : dict
        ``source``, ``pretrained`` (bool), ``requested``, ``final_relu``,
        ``sha256`` of the weights file (pretrained only), ``seed`` (random only)
        and ``note`` (why random weights are used, if they are).
    """
    from .model import load_vggish

    requested = str(weights)
    note = None
    try:
        model = load_vggish(weights, seed=seed, download=download)
    except WeightsNotFoundError as exc:
        if requested != "auto":
            raise
        model = load_vggish("random", seed=seed)
        from .model import hub_checkpoint_dir

        parts = str(exc).split(". ")
        looked = (parts[1] if len(parts) > 1 else parts[0]).rstrip(".")
        note = (f"no pretrained VGGish weights found ({looked}), so seeded random "
                "weights are used: VGGish-embedding results are NOT those of pretrained VGGish. For the real ones: "
                f"put {spec.VGGISH_WEIGHTS_FILENAME} in {hub_checkpoint_dir()}, or set ${spec.WEIGHTS_ENV_VAR}, "
                "or pass --weights PATH, or --download when online.")
    else:
        if not model.pretrained:
            note = "seeded RANDOM weights, as requested (--weights random): NOT pretrained VGGish"
    provenance = {"requested": requested, "source": model.weights_source, "pretrained": bool(model.pretrained),
                  "final_relu": bool(getattr(model, "final_relu", True))}
    if model.pretrained:
        provenance["sha256"] = store.file_digest(model.weights_source)  # a replaced file makes old items stale
    else:
        provenance["seed"] = int(seed)
    if note:
        provenance["note"] = note
    return model, provenance


# --------------------------------------------------------------------------- engine options


@dataclass(frozen=True)
class Engine:
    """How extract runs the engine: resolved device, network dtype, batch size, decoding threads."""

    device: object
    dtype: object
    batch_size: int
    workers: int

    @property
    def precision(self):
        """The network dtype's name, e.g. ``"float32"`` (part of every item's fingerprint)."""
        return str(self.dtype).replace("torch.", "")

    def as_dict(self, group_size):
        return {"device": str(self.device), "dtype": self.precision, "batch_size": self.batch_size,
                "group_size": group_size, "workers": self.workers}


def default_workers():
    """Decoding threads by default: one per core, at most 4."""
    return min(4, os.cpu_count() or 1)


def make_engine(*, device="auto", dtype="float32", batch_size=DEFAULT_BATCH_SIZE, workers=None):
    """Check and resolve the engine options of :func:`extract`.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device, keyword-only
        ``"auto"`` (or None): CUDA when available, else CPU.
    dtype : {"float32", "bfloat16", "float16"}, keyword-only
        Network precision. float32 by default; the others are faster on
        recent GPUs and CPUs but change embeddings well beyond float32
        rounding, so they are only used when asked for.
    batch_size : int, keyword-only
        Examples per network call.
    workers : int, optional, keyword-only
        Threads decoding a group's files; 0 decodes in this thread.
        Default :func:`default_workers`.

    Returns
    -------
    Engine

    Raises
    ------
    InvalidArgumentError
        An option of the wrong value, named; CUDA asked for without one.

    Examples
    --------
    >>> make_engine(device="cpu", workers=2).as_dict(16)
    {'device': 'cpu', 'dtype': 'float32', 'batch_size': 64, 'group_size': 16, 'workers': 2}
    """
    import torch

    from .embed import resolve_device, resolve_dtype

    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InvalidArgumentError(f"--batch-size must be a positive integer, got {batch_size!r}")
    workers = default_workers() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise InvalidArgumentError(f"--workers must be a non-negative integer, got {workers!r}")
    allowed = tuple(getattr(torch, name) for name in DTYPES)
    return Engine(device=resolve_device(device), dtype=resolve_dtype(dtype, allowed=allowed, name="--dtype"),
                  batch_size=int(batch_size), workers=int(workers))


# --------------------------------------------------------------------------- extract


@dataclass
class ExtractResult:
    """What :func:`extract` did: finished item ids, bad items, and how much was computed."""

    done: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    computed: int = 0
    reused: int = 0
    seconds: float = 0.0


def _fingerprint(item, provenance, precision):
    """``(item, fingerprint, None)``, or ``(item, None, Problem)`` when the file cannot be read."""
    try:
        return item, store.item_fingerprint(item.path, provenance, precision=precision), None
    except OSError as exc:
        return item, None, Problem(item.item_id, f"{item.path}: cannot read ({exc.strerror or exc})")


def _decode(item):
    """``(item, (waveform, rate), None)``, or ``(item, None, Problem)`` for bad audio."""
    from . import audio

    try:
        return item, audio.load_audio(item.path), None
    except WarblrError as exc:
        return item, None, Problem(item.item_id, str(exc))


def _compute_group(decoded, model, engine):
    """Examples and embeddings for a group's decoded clips; a clip the engine rejects becomes a Problem."""
    from . import embed

    good = [(item, clip) for item, clip, _ in decoded if clip is not None]
    problems = [problem for _, _, problem in decoded if problem is not None]
    if not good:
        return [], problems
    try:
        per_clip = embed.batch_examples([clip for _, clip in good], device=engine.device, workers=0)
    except WarblrError:
        # Find the culprit(s) one clip at a time; the rest still share one batch below.
        per_clip, kept = [], []
        for item, clip in good:
            try:
                per_clip.append(embed.batch_examples([clip], device=engine.device, workers=0)[0])
                kept.append((item, clip))
            except WarblrError as exc:
                problems.append(Problem(item.item_id, f"{item.path}: {str(exc).replace('clips[0]: ', '', 1)}"))
        good = kept
        if not good:
            return [], problems
    flat = embed.embed_examples(model, np.concatenate(per_clip), batch_size=engine.batch_size,
                                device=engine.device, dtype=engine.dtype)
    embeddings = np.split(flat, np.cumsum([len(e) for e in per_clip])[:-1])
    return [(item, examples, emb) for (item, _), examples, emb in zip(good, per_clip, embeddings)], problems


def extract(dataset, out, *, model, provenance, group_size=DEFAULT_GROUP_SIZE, engine=None, progress=True):
    """Compute and store examples and embeddings for every item of ``dataset`` not finished yet.

    Parameters
    ----------
    dataset : warblr.lab.dataset.Dataset
    out : str or os.PathLike
        Output folder; items go to ``out/items/<itemid>.npz``.
    model : VGGish, keyword-only
    provenance : dict, keyword-only
        From :func:`load_model`; part of each item's fingerprint.
    group_size : int, keyword-only
        Clips per group. Groups are fixed by position, so a resumed run
        batches exactly like an uninterrupted one.
    engine : Engine, optional, keyword-only
        Device, dtype, batch size and decoding threads (:func:`make_engine`;
        default ``make_engine()``: CUDA if available, float32). The dtype is
        part of each item's fingerprint.
    progress : bool, keyword-only
        Show a tqdm bar.

    Returns
    -------
    ExtractResult

    Raises
    ------
    OutputError
        The output folder cannot be written (disk full, permissions) or is
        in use by another run; items finished before are kept.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise InvalidArgumentError(f"--group-size must be a positive integer, got {group_size!r}")
    engine = make_engine() if engine is None else engine
    start = time.perf_counter()
    out = Path(os.fspath(out))
    items_dir = out / store.ITEMS_DIR
    try:
        items_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise store.output_error(items_dir, exc, 0) from exc
    result = ExtractResult()
    with contextlib.ExitStack() as stack:
        stack.enter_context(store.exclusive(out))
        store.remove_temporaries(items_dir)  # left by a killed run
        pool = stack.enter_context(ThreadPoolExecutor(engine.workers, thread_name_prefix="warblr-decode")) \
            if engine.workers else None
        each = pool.map if pool else map  # in order either way
        bar = stack.enter_context(tqdm(total=len(dataset.items), desc="extract", unit="clip",
                                       disable=not progress, file=sys.stderr))
        for first in range(0, len(dataset.items), group_size):
            group = dataset.items[first:first + group_size]
            readable, missing = [], set()
            for item, fingerprint, problem in each(lambda i: _fingerprint(i, provenance, engine.precision), group):
                if problem:
                    result.failed.append(problem)
                    continue
                readable.append((item, fingerprint))
                if store.read_item(store.item_path(out, item.item_id), fingerprint=fingerprint) is None:
                    missing.add(item.item_id)
                else:
                    result.done.append(item.item_id)
                    result.reused += 1
            if missing:
                computed, problems = _compute_group(list(each(_decode, [i for i, _ in readable])), model, engine)
                result.failed.extend(problems)
                fingerprints = {item.item_id: fingerprint for item, fingerprint in readable}
                for item, examples, embeddings in computed:
                    if item.item_id not in missing:
                        continue  # finished before; recomputed only to keep the batch as it was
                    path = store.item_path(out, item.item_id)
                    try:
                        store.write_item(path, examples, embeddings, fingerprints[item.item_id])
                    except OSError as exc:
                        raise store.output_error(path, exc, len(result.done)) from exc
                    result.done.append(item.item_id)
                    result.computed += 1
            bar.update(len(group))
    result.done.sort()
    result.seconds = time.perf_counter() - start
    return result


# --------------------------------------------------------------------------- analyse


def _load_features(dataset, out, done):
    """Ids, labels and pooled features of the finished items, their example count, and unreadable items."""
    from .analysis import pool_embeddings, pool_log_mel, pool_log_mel_stats

    by_id = {item.item_id: item for item in dataset.items}
    ids, labels, n_examples, problems = [], [], 0, []
    pooled = {key: [] for key in FEATURE_SETS}
    for item_id in done:
        path = store.item_path(out, item_id)
        stored = store.read_item(path)
        if stored is None:
            problems.append(Problem(item_id, f"{path}: unreadable after extract"))
            continue
        examples, embeddings = stored
        ids.append(item_id)
        labels.append(by_id[item_id].label)
        pooled["log_mel"].append(pool_log_mel(examples))
        pooled["log_mel_stats"].append(pool_log_mel_stats(examples))
        pooled["vggish"].append(pool_embeddings(embeddings))
        n_examples += examples.shape[0]
    features = {key: np.array(rows).reshape(len(ids), -1) for key, rows in pooled.items()}
    return ids, np.array(labels, dtype=int), features, n_examples, problems


def _plot_all(out, ids, labels, features, results, provenance, *, random_state):
    from . import analysis

    plots = out / PLOTS_DIR
    plots.mkdir(parents=True, exist_ok=True)
    tag = weights_label(provenance)
    written = []
    for key, (name, _, _) in FEATURE_SETS.items():
        written.append(analysis.plot_pca_scatter(
            features[key], labels, path=plots / f"pca_{key}.png", random_state=random_state,
            title=f"{name}: first two principal components, {len(ids)} clips\n{tag}"))
    curves = {FEATURE_SETS[k][0]: results[k]["best"] for k in FEATURE_SETS}
    written.append(analysis.plot_roc(curves, labels, path=plots / "roc.png",
                                     title=f"ROC, out-of-fold scores (best PCA size per feature set)\n{tag}"))
    written.append(analysis.plot_auc_sweep({FEATURE_SETS[k][0]: results[k]["sweep"] for k in FEATURE_SETS},
                                           path=plots / "auc_sweep.png",
                                           title=f"Cross-validated ROC AUC against PCA size\n{tag}"))
    # The clearest bird clip and the clearest no-bird clip by the best (mean-pooled) log-mel model.
    scores = results["log_mel"]["best"]["scores"]
    bird = max((i for i in range(len(ids)) if labels[i] == 1), key=lambda i: scores[i])
    no_bird = min((i for i in range(len(ids)) if labels[i] == 0), key=lambda i: scores[i])
    examples = [store.read_item(store.item_path(out, ids[i]))[0] for i in (bird, no_bird)]
    written.append(analysis.plot_log_mel_pair(
        *examples, path=plots / "log_mel_examples.png",
        names=(f"bird (hasbird=1)\n{ids[bird]}", f"no bird (hasbird=0)\n{ids[no_bird]}"),
        title=("Log-mel (VGGish input, examples end to end) of the bird and the no-bird clip the log-mel model "
               f"is surest of\n{tag}")))
    return [str(Path(p).relative_to(out)) for p in written]


def analyse(dataset, out, *, model, provenance, folds=5, seed=0, pca_sizes=None, group_size=DEFAULT_GROUP_SIZE,
            engine=None, progress=True, command="analyse"):
    """Extract (or reuse), pool per clip, cross-validate each feature set, write the report and plots.

    Parameters
    ----------
    dataset : warblr.lab.dataset.Dataset
    out : str or os.PathLike
    model, provenance : keyword-only
        From :func:`load_model`.
    folds : int, keyword-only
        Stratified CV folds (fewer when a class is smaller).
    seed : int, keyword-only
        Seeds the folds and estimators.
    pca_sizes : sequence of int, optional, keyword-only
        Defaults to :data:`warblr.analysis.PCA_SIZES`.
    group_size, engine, progress : keyword-only
        See :func:`extract`.
    command : str, keyword-only
        Recorded in the report.

    Returns
    -------
    dict
        The report (also written to ``out/report.json``).
    """
    from . import analysis

    started = time.perf_counter()
    out = Path(os.fspath(out))
    engine = make_engine() if engine is None else engine
    result = extract(dataset, out, model=model, provenance=provenance, group_size=group_size, engine=engine,
                     progress=progress)
    t0 = time.perf_counter()
    ids, labels, features, n_examples, late = _load_features(dataset, out, result.done)
    skipped = list(dataset.problems) + list(result.failed) + late
    try:
        folds_used = analysis.effective_folds(labels, folds)
    except InvalidArgumentError as exc:
        raise WarblrError(f"--data {dataset.root}: {exc} after skipping {len(skipped)} bad item(s)") from exc
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    sizes = tuple(pca_sizes) if pca_sizes else analysis.PCA_SIZES
    results = {}
    steps = list(FEATURE_SETS)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="cross-validate", unit="feature set", file=sys.stderr)
    for key in steps:
        best, sweep = analysis.pca_sweep(features[key], labels, sizes=sizes, folds=folds_used, random_state=seed)
        results[key] = {"best": best, "sweep": sweep}
    t_cv = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        plots = _plot_all(out, ids, labels, features, results, provenance, random_state=seed)
    except OSError as exc:
        raise store.output_error(out / PLOTS_DIR, exc, len(result.done)) from exc
    t_plots = time.perf_counter() - t0

    def public(r):
        return {k: v for k, v in r.items() if k != "scores"}

    report = {
        "warblr": __version__,
        "command": command,
        "data": str(dataset.root),
        "metadata": str(dataset.metadata),
        "weights": provenance,
        "counts": {"rows": dataset.rows, "items": len(ids), "bird": int(labels.sum()),
                   "no_bird": int(len(ids) - labels.sum()), "examples": int(n_examples),
                   "skipped": len(skipped), "computed": result.computed, "reused": result.reused},
        "cv": {"folds": folds_used, "seed": seed,
               "pooling": "per clip; see each feature set's pooling", "pooling_note": STATS_NOTE,
               "estimator": "StandardScaler + PCA + LogisticRegression, fitted inside each fold",
               "best": "the PCA size with the highest mean AUC in the sweep (chosen on the same folds, "
                       "so slightly optimistic)"},
        "auc": {key: {"name": FEATURE_SETS[key][0], "features": int(features[key].shape[1]),
                      "pooling": FEATURE_SETS[key][2],
                      "best": public(results[key]["best"]), "sweep": [public(r) for r in results[key]["sweep"]]}
                for key in FEATURE_SETS},
        "skipped": [p.as_dict() for p in skipped],
        "plots": plots,
        "timings": {"extract_s": round(result.seconds, 3), "load_s": round(t_load, 3), "cv_s": round(t_cv, 3),
                    "plots_s": round(t_plots, 3), "total_s": round(time.perf_counter() - started, 3)},
        "engine": engine.as_dict(group_size),
        "versions": versions(),
    }
    try:
        write_report(out, report)
    except OSError as exc:
        raise store.output_error(out / REPORT_JSON, exc, len(result.done)) from exc
    return report


# --------------------------------------------------------------------------- command line


def _say(args, *lines):
    if not args.quiet:
        for line in lines:
            print(line)


def _banner(args, provenance, what):
    _say(args, f"warblr {args.command} {__version__}: {what}")
    if provenance["pretrained"]:
        _say(args, f"VGGish weights: pretrained, from {provenance['source']}")
    else:
        # Loud even with --quiet: results must never pass for pretrained ones.
        print(f"WARNING: {weights_label(provenance)}. {provenance.get('note', '')}", file=sys.stderr)


def _list_problems(problems, header):
    if not problems:
        return
    print(f"{header} ({len(problems)}):", file=sys.stderr)
    for p in problems[:_MAX_LISTED]:
        where = f" (line {p.line})" if p.line else ""
        print(f"  {display_id(p.item_id)}{where}: {display_id(p.reason)}", file=sys.stderr)
    if len(problems) > _MAX_LISTED:
        print(f"  ... and {len(problems) - _MAX_LISTED} more (all listed in report.json)", file=sys.stderr)


def _engine(args):
    return make_engine(device=args.device, dtype=args.dtype, batch_size=args.batch_size, workers=args.workers)


def _prepare(args, what):
    dataset = read_dataset(args.data, labels=args.labels, limit=args.limit, seed=args.seed)
    model, provenance = load_model(args.weights, seed=args.weights_seed, download=args.download)
    _banner(args, provenance, what)
    _say(args, f"data: {dataset.root} ({dataset.metadata.name}): {len(dataset.items)} items"
               + (f" (stratified subset, --limit {args.limit})" if args.limit else ""))
    return dataset, model, provenance


def _run_extract(args):
    engine = _engine(args)  # bad options fail before any work
    dataset, model, provenance = _prepare(args, f"extract {args.data} -> {args.out}")
    result = extract(dataset, args.out, model=model, provenance=provenance, group_size=args.group_size,
                     engine=engine, progress=not args.quiet)
    _list_problems(list(dataset.problems) + result.failed, "skipped items")
    print(f"extract: {len(result.done)} items in {Path(args.out) / store.ITEMS_DIR} ({result.computed} computed, "
          f"{result.reused} reused) in {result.seconds:.1f} s; "
          f"{len(dataset.problems) + len(result.failed)} skipped")
    return 0


def _run_analyse(args, engine=None):
    engine = _engine(args) if engine is None else engine
    dataset, model, provenance = _prepare(args, f"analyse {args.data} -> {args.out}")
    report = analyse(dataset, args.out, model=model, provenance=provenance, folds=args.folds, seed=args.seed,
                     pca_sizes=args.pca_sizes, group_size=args.group_size, engine=engine,
                     progress=not args.quiet, command=args.command)
    _list_problems([Problem(p["item_id"], p["reason"], p["line"]) for p in report["skipped"]], "skipped items")
    print()
    print(summary_table(report))
    print(f"report: {Path(args.out) / REPORT_MD}, {Path(args.out) / REPORT_JSON}; plots in "
          f"{Path(args.out) / PLOTS_DIR} ({report['timings']['total_s']:.0f} s)")
    return 0


def _run_demo(args):
    from .lab.corpus import make_corpus

    engine = _engine(args)
    corpus = Path(args.corpus) if args.corpus else Path(args.out) / "corpus"
    started = time.perf_counter()
    root, made = make_corpus(corpus, n_clips=args.size, seed=args.seed, progress=not args.quiet)
    _say(args, f"demo corpus: {root} ({args.size} synthetic 10 s clips, "
               + ("generated" if made else "reused") + f" in {time.perf_counter() - started:.1f} s)")
    args.data, args.labels = str(root), None
    return _run_analyse(args, engine)


def _int_at_least(minimum, what):
    """An argparse ``type`` accepting integers >= ``minimum`` (``what`` names them in the error)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_count = _int_at_least(0, "a non-negative integer")


def _sizes(text):
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return sizes


def _common(parser, *, data=True):
    if data:
        parser.add_argument("--data", required=True, metavar="DIR",
                            help="dataset folder in the warblrb10k layout: wav/<itemid>.wav and a metadata CSV "
                                 "(itemid,datasetid,hasbird or itemid,hasbird)")
        parser.add_argument("--labels", metavar="CSV", default=None,
                            help="the metadata CSV, if it is not the only *.csv in --data")
        parser.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                            help="use a stratified, seeded subset of N items")
    parser.add_argument("--out", required=True, metavar="OUT", help="output folder (created; reruns resume)")
    parser.add_argument("--weights", default="auto", metavar="auto|random|PATH",
                        help="VGGish weights: auto finds the released weights (path in $WARBLR_VGGISH_WEIGHTS or "
                             "the torch hub cache) and falls back to seeded random weights, loudly")
    parser.add_argument("--weights-seed", type=int, default=0, help="seed of random weights")
    parser.add_argument("--download", action="store_true",
                        help="let --weights auto download the released weights when online")
    parser.add_argument("--seed", type=int, default=0, help="seed of --limit, the CV folds and the estimators")
    parser.add_argument("--group-size", type=_positive_int, default=DEFAULT_GROUP_SIZE,
                        help="clips per batch (progress is saved after each clip)")
    _engine_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars or info lines")


def _engine_options(parser):
    parser.add_argument("--device", default="auto", metavar="auto|cpu|cuda|cuda:N",
                        help="where features and the network run: auto is cuda when available, else cpu")
    parser.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE,
                        help="0.96 s examples per network call (batches cross clip boundaries within a group)")
    parser.add_argument("--workers", type=_count, default=default_workers(),
                        help="threads decoding a group's audio files in parallel (0: decode in the main thread)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32",
                        help="network precision. bfloat16 and float16 are opt-in: faster on recent GPUs and CPUs, "
                             "but embeddings differ beyond float32 rounding; items made in another precision are "
                             "redone")


def _analysis_options(parser):
    parser.add_argument("--folds", type=_positive_int, default=5, help="stratified cross-validation folds")
    parser.add_argument("--pca-sizes", type=_sizes, default="2,4,8,16,32,64", metavar="K,K,...",
                        help="PCA sizes to sweep, capped by the features and the training samples")


def register(subparsers):
    """Add ``extract``, ``analyse`` and ``demo`` to the ``warblr`` command line."""
    from .lab.corpus import DEFAULT_SIZE

    from .cli import HelpFormatter as fmt
    demo = subparsers.add_parser(
        "demo", formatter_class=fmt, help="the lab end to end on the embedded synthetic corpus",
        description="Generate (or reuse) the embedded synthetic warblr-like corpus offline, then run `analyse` "
                    "on it: log-mel (mean pooled, and mean/std/max pooled) vs VGGish embeddings for bird "
                    "detection, with report and plots.")
    _common(demo, data=False)
    demo.add_argument("--size", type=_positive_int, default=DEFAULT_SIZE, help="number of 10 s clips to generate")
    demo.add_argument("--corpus", metavar="DIR", default=None, help="where to keep the corpus (default OUT/corpus)")
    _analysis_options(demo)
    demo.set_defaults(func=_run_demo, limit=None)

    ext = subparsers.add_parser(
        "extract", formatter_class=fmt, help="VGGish examples and embeddings for every item, resumable",
        description="Write OUT/items/<itemid>.npz (examples [N,96,64], embeddings [N,128]) for each item; "
                    "finished items are skipped, so a killed run resumes where it stopped.")
    _common(ext)
    ext.set_defaults(func=_run_extract)

    ana = subparsers.add_parser(
        "analyse", aliases=["analyze"], formatter_class=fmt,
        help="extract, then PCA + logistic regression with cross-validated ROC AUC; report and plots",
        description="Extract (or reuse), pool per clip, then compare log-mel (mean pooled, and each band's mean, "
                    "std and max), and mean-pooled VGGish embeddings "
                    "with PCA + logistic regression (stratified CV ROC AUC over a sweep of PCA sizes). "
                    "Writes OUT/report.json, OUT/report.md and OUT/plots/*.png.")
    _common(ana)
    _analysis_options(ana)
    ana.set_defaults(func=_run_analyse)
