"""The lab end to end: ``warblr extract``, ``warblr analyse`` and ``warblr demo``.

``extract`` turns every item of a warblrb10k-layout folder into
``OUT/items/<itemid>.npz`` (``examples`` float32 ``[N, 96, 64]``,
``embeddings`` float32 ``[N, 128]``, and ``meta``, the JSON fingerprint of the
source audio and the weights). Each file is written atomically (temporary
file in the same folder, fsync, rename) and checked in full when read, so a
rerun skips finished items, a killed run resumes and loses nothing, and a
half-written file is never taken as finished. Items are processed in fixed
groups (by position in the id-sorted item list) so a resumed run batches
exactly as an uninterrupted one and gives the same numbers.

``analyse`` pools each clip's examples and embeddings, cross-validates PCA +
logistic regression on both feature sets, and writes ``report.json``,
``report.md`` and PNG plots. ``demo`` does it all on the embedded synthetic
corpus (:mod:`warblr.corpus`).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__, spec
from .dataset import Problem, display_id, read_dataset, validate_item_id
from .errors import BadItemError, InvalidArgumentError, WarblrError, WeightsNotFoundError

__all__ = [
    "register",
    "FORMAT_VERSION",
    "FEATURE_SETS",
    "load_model",
    "item_path",
    "item_fingerprint",
    "read_item",
    "write_item",
    "atomic_write",
    "extract",
    "analyse",
    "ExtractResult",
]

#: Version of the ``items/<id>.npz`` layout (part of every fingerprint).
FORMAT_VERSION = 1
ITEMS_DIR = "items"
PLOTS_DIR = "plots"
_TMP_PREFIX = ".tmp-"
DEFAULT_GROUP_SIZE = 16
#: Feature sets compared by ``analyse``: key -> (display name, dimensions).
FEATURE_SETS = {
    "log_mel": ("log-mel (pooled)", spec.NUM_BANDS),
    "vggish": ("VGGish embedding (pooled)", spec.EMBEDDING_SIZE),
}
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
        provenance["sha256"] = _file_digest(model.weights_source)  # a replaced file makes old items stale
    else:
        provenance["seed"] = int(seed)
    if note:
        provenance["note"] = note
    return model, provenance


def weights_label(provenance):
    """A short statement of the weights for titles and tables.

    Examples
    --------
    >>> weights_label({"source": "random (seed 0)", "pretrained": False})
    'VGGish weights: RANDOM (seed 0), NOT pretrained'
    """
    if provenance["pretrained"]:
        return f"VGGish weights: pretrained ({Path(provenance['source']).name})"
    return f"VGGish weights: RANDOM ({provenance['source'].replace('random ', '').strip('()')}), NOT pretrained" \
        if provenance["source"].startswith("random") else f"VGGish weights: {provenance['source']}, NOT pretrained"


# --------------------------------------------------------------------------- the item store


def item_path(out, item_id):
    """``OUT/items/<item_id>.npz`` for a validated id (never a path outside ``OUT/items``).

    Raises
    ------
    BadItemError
        ``item_id`` is not a safe id (see :func:`warblr.dataset.validate_item_id`).
    """
    items = Path(os.fspath(out)) / ITEMS_DIR
    path = items / f"{validate_item_id(item_id)}.npz"
    if path.parent != items:  # cannot happen for a valid id; kept as a second lock
        raise BadItemError(f"item id '{display_id(item_id)}': would be written outside {items}")
    return path


def _file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def item_fingerprint(source_path, provenance):
    """What a finished item must have been made from: the audio's SHA-256 and the weights.

    Raises
    ------
    OSError
        The audio file cannot be read.
    """
    return {"format": FORMAT_VERSION, "source_sha256": _file_digest(source_path),
            "weights": provenance["source"], "weights_sha256": provenance.get("sha256"),
            "final_relu": provenance.get("final_relu", True)}


def read_item(path, *, fingerprint=None):
    """Read a finished item, or ``None`` if it is missing, half-written, corrupt or stale.

    Parameters
    ----------
    path : Path
    fingerprint : dict, optional, keyword-only
        When given, the item's stored fingerprint must equal it.

    Returns
    -------
    (examples, embeddings) or None
        float32 ``[N, 96, 64]`` and ``[N, 128]`` with the same ``N >= 1``.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            if sorted(data.files) != ["embeddings", "examples", "meta"]:
                return None
            meta = json.loads(str(data["meta"]))
            if fingerprint is not None and meta != fingerprint:
                return None
            examples, embeddings = data["examples"], data["embeddings"]  # reading checks the zip CRCs
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile):
        return None
    if (examples.dtype != np.float32 or embeddings.dtype != np.float32 or examples.ndim != 3
            or examples.shape[1:] != (spec.NUM_FRAMES, spec.NUM_BANDS) or examples.shape[0] < 1
            or embeddings.shape != (examples.shape[0], spec.EMBEDDING_SIZE)
            or not np.all(np.isfinite(examples)) or not np.all(np.isfinite(embeddings))):
        return None
    return examples, embeddings


def _fsync_dir(folder):
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def atomic_write(path, write, *, mode="wb"):
    """Write ``path`` all or nothing: ``write(handle)`` into a temporary file in the same folder, fsync, rename.

    Parameters
    ----------
    path : str or os.PathLike
    write : callable
        Called with the open temporary file.
    mode : {"wb", "w"}, keyword-only
        Binary, or UTF-8 text.

    Raises
    ------
    OSError
        Disk full, permission denied, ...; no partial file is left under any name.
    """
    path = Path(path)
    text = {} if "b" in mode else {"encoding": "utf-8"}
    handle = tempfile.NamedTemporaryFile(mode, dir=path.parent, prefix=_TMP_PREFIX, suffix=path.suffix,
                                         delete=False, **text)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        raise
    _fsync_dir(path.parent)


def write_item(path, examples, embeddings, fingerprint):
    """Write one item atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda handle: np.savez(
        handle, examples=np.asarray(examples, dtype=np.float32),
        embeddings=np.asarray(embeddings, dtype=np.float32), meta=np.array(json.dumps(fingerprint))))


def _output_error(path, exc, done):
    reason = exc.strerror or str(exc)
    hint = {errno.ENOSPC: "free some disk space", errno.EDQUOT: "free some quota",
            errno.EACCES: "fix the permissions", errno.EPERM: "fix the permissions",
            errno.EROFS: "choose a writable --out"}.get(exc.errno, "fix the cause")
    return WarblrError(f"{path}: cannot write ({reason}). {done} finished item(s) are kept; {hint} and rerun "
                       "the same command to resume.")


@contextlib.contextmanager
def _exclusive(out):
    """Hold ``OUT/.lock`` so two runs never write the same output folder."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    lock = Path(out) / ".lock"
    try:
        handle = open(lock, "a")
    except OSError as exc:
        raise _output_error(lock, exc, 0) from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise WarblrError(f"{out}: another warblr run is writing this folder; wait for it or "
                              "choose another --out") from exc
        yield


# --------------------------------------------------------------------------- extract


@dataclass
class ExtractResult:
    """What :func:`extract` did: finished item ids, bad items, and how much was computed."""

    done: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    computed: int = 0
    reused: int = 0
    seconds: float = 0.0


def _embed(model, per_clip):
    """One forward pass over a group's examples, split back per clip."""
    from .embed import embed_examples

    flat = embed_examples(model, np.concatenate(per_clip))
    return np.split(flat, np.cumsum([len(e) for e in per_clip])[:-1])


def _compute_group(group, model):
    """Examples and embeddings for a group of items; bad audio becomes a Problem."""
    from . import embed
    from .audio import load_audio

    clips, good, problems = [], [], []
    for item in group:
        try:
            clips.append(load_audio(item.path))
            good.append(item)
        except WarblrError as exc:
            problems.append(Problem(item.item_id, str(exc)))
    if not good:
        return [], problems
    try:
        per_clip = embed.batch_examples(clips)
    except WarblrError:
        # Find the culprit(s) one clip at a time; the rest still share one batch below.
        per_clip, kept = [], []
        for item, clip in zip(good, clips):
            try:
                per_clip.append(embed.batch_examples([clip])[0])
                kept.append(item)
            except WarblrError as exc:
                problems.append(Problem(item.item_id, f"{item.path}: {str(exc).replace('clips[0]: ', '', 1)}"))
        good = kept
        if not good:
            return [], problems
    embeddings = _embed(model, per_clip)
    return list(zip(good, per_clip, embeddings)), problems


def extract(dataset, out, *, model, provenance, group_size=DEFAULT_GROUP_SIZE, progress=True):
    """Compute and store examples and embeddings for every item of ``dataset`` not finished yet.

    Parameters
    ----------
    dataset : warblr.dataset.Dataset
    out : str or os.PathLike
        Output folder; items go to ``out/items/<itemid>.npz``.
    model : VGGish, keyword-only
    provenance : dict, keyword-only
        From :func:`load_model`; part of each item's fingerprint.
    group_size : int, keyword-only
        Clips per batch. Groups are fixed by position, so a resumed run
        batches exactly like an uninterrupted one.
    progress : bool, keyword-only
        Show a tqdm bar.

    Returns
    -------
    ExtractResult

    Raises
    ------
    WarblrError
        The output folder cannot be written (disk full, permissions); items
        finished before are kept.
    """
    from tqdm import tqdm

    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise InvalidArgumentError(f"--group-size must be a positive integer, got {group_size!r}")
    start = time.perf_counter()
    out = Path(os.fspath(out))
    items_dir = out / ITEMS_DIR
    try:
        items_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _output_error(items_dir, exc, 0) from exc
    result = ExtractResult()
    with _exclusive(out):
        for stale in items_dir.glob(f"{_TMP_PREFIX}*"):  # left by a killed run
            with contextlib.suppress(OSError):
                stale.unlink()
        bar = tqdm(total=len(dataset.items), desc="extract", unit="clip", disable=not progress, file=sys.stderr)
        with bar:
            for first in range(0, len(dataset.items), group_size):
                group = dataset.items[first:first + group_size]
                fingerprints, missing = {}, set()
                for item in group:
                    try:
                        fingerprints[item.item_id] = item_fingerprint(item.path, provenance)
                    except OSError as exc:
                        result.failed.append(Problem(item.item_id, f"{item.path}: cannot read "
                                                     f"({exc.strerror or exc})"))
                        continue
                    if read_item(item_path(out, item.item_id), fingerprint=fingerprints[item.item_id]) is None:
                        missing.add(item.item_id)
                    else:
                        result.done.append(item.item_id)
                        result.reused += 1
                if missing:
                    computed, problems = _compute_group([i for i in group if i.item_id in fingerprints], model)
                    result.failed.extend(problems)
                    for item, examples, embeddings in computed:
                        if item.item_id not in missing:
                            continue  # finished before; recomputed only to keep the batch as it was
                        path = item_path(out, item.item_id)
                        try:
                            write_item(path, examples, embeddings, fingerprints[item.item_id])
                        except OSError as exc:
                            raise _output_error(path, exc, len(result.done)) from exc
                        result.done.append(item.item_id)
                        result.computed += 1
                bar.update(len(group))
    result.done.sort()
    result.seconds = time.perf_counter() - start
    return result


# --------------------------------------------------------------------------- analyse


def _versions():
    import sklearn
    import torch

    return {"warblr": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__, "scikit-learn": sklearn.__version__, "platform": platform.platform()}


def _load_features(dataset, out, done):
    """Pooled features per finished item, plus the examples of the first bird and no-bird clip."""
    from .analysis import pool_embeddings, pool_log_mel

    by_id = {item.item_id: item for item in dataset.items}
    ids, labels, log_mel, vggish, n_examples, problems = [], [], [], [], 0, []
    for item_id in done:
        stored = read_item(item_path(out, item_id))
        if stored is None:
            problems.append(Problem(item_id, f"{item_path(out, item_id)}: unreadable after extract"))
            continue
        examples, embeddings = stored
        ids.append(item_id)
        labels.append(by_id[item_id].label)
        log_mel.append(pool_log_mel(examples))
        vggish.append(pool_embeddings(embeddings))
        n_examples += examples.shape[0]
    features = {"log_mel": np.array(log_mel).reshape(len(ids), -1),
                "vggish": np.array(vggish).reshape(len(ids), -1)}
    return ids, np.array(labels, dtype=int), features, n_examples, problems


def _plot_all(out, ids, labels, features, results, provenance, *, random_state):
    from . import analysis

    plots = out / PLOTS_DIR
    plots.mkdir(parents=True, exist_ok=True)
    tag = weights_label(provenance)
    written = []
    for key, (name, _) in FEATURE_SETS.items():
        written.append(analysis.plot_pca_scatter(
            features[key], labels, path=plots / f"pca_{key}.png", random_state=random_state,
            title=f"{name}: first two principal components, {len(ids)} clips\n{tag}"))
    curves = {FEATURE_SETS[k][0]: results[k]["best"] for k in FEATURE_SETS}
    written.append(analysis.plot_roc(curves, labels, path=plots / "roc.png",
                                     title=f"ROC, out-of-fold scores (best PCA size per feature set)\n{tag}"))
    written.append(analysis.plot_auc_sweep({FEATURE_SETS[k][0]: results[k]["sweep"] for k in FEATURE_SETS},
                                           path=plots / "auc_sweep.png",
                                           title=f"Cross-validated ROC AUC against PCA size\n{tag}"))
    # The clearest bird clip and the clearest no-bird clip by the best log-mel model.
    scores = results["log_mel"]["best"]["scores"]
    bird = max((i for i in range(len(ids)) if labels[i] == 1), key=lambda i: scores[i])
    no_bird = min((i for i in range(len(ids)) if labels[i] == 0), key=lambda i: scores[i])
    examples = [read_item(item_path(out, ids[i]))[0] for i in (bird, no_bird)]
    written.append(analysis.plot_log_mel_pair(
        *examples, path=plots / "log_mel_examples.png",
        names=(f"bird (hasbird=1)\n{ids[bird]}", f"no bird (hasbird=0)\n{ids[no_bird]}"),
        title=("Log-mel (VGGish input, examples end to end) of the bird and the no-bird clip the log-mel model "
               f"is surest of\n{tag}")))
    return [str(Path(p).relative_to(out)) for p in written]


def analyse(dataset, out, *, model, provenance, folds=5, seed=0, pca_sizes=None, group_size=DEFAULT_GROUP_SIZE,
            progress=True, command="analyse"):
    """Extract (or reuse), pool per clip, cross-validate both feature sets, write the report and plots.

    Parameters
    ----------
    dataset : warblr.dataset.Dataset
    out : str or os.PathLike
    model, provenance : keyword-only
        From :func:`load_model`.
    folds : int, keyword-only
        Stratified CV folds (fewer when a class is smaller).
    seed : int, keyword-only
        Seeds the folds and estimators.
    pca_sizes : sequence of int, optional, keyword-only
        Defaults to :data:`warblr.analysis.PCA_SIZES`.
    group_size, progress : keyword-only
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
    result = extract(dataset, out, model=model, provenance=provenance, group_size=group_size, progress=progress)
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
        raise _output_error(out / PLOTS_DIR, exc, len(result.done)) from exc
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
        "cv": {"folds": folds_used, "seed": seed, "pooling": "mean over a clip's 0.96 s examples",
               "estimator": "StandardScaler + PCA + LogisticRegression, fitted inside each fold",
               "best": "the PCA size with the highest mean AUC in the sweep (chosen on the same folds, "
                       "so slightly optimistic)"},
        "auc": {key: {"name": FEATURE_SETS[key][0], "features": int(features[key].shape[1]),
                      "best": public(results[key]["best"]), "sweep": [public(r) for r in results[key]["sweep"]]}
                for key in FEATURE_SETS},
        "skipped": [p.as_dict() for p in skipped],
        "plots": plots,
        "timings": {"extract_s": round(result.seconds, 3), "load_s": round(t_load, 3), "cv_s": round(t_cv, 3),
                    "plots_s": round(t_plots, 3), "total_s": round(time.perf_counter() - started, 3)},
        "versions": _versions(),
    }
    try:
        text = json.dumps(report, indent=2, ensure_ascii=True) + "\n"
        atomic_write(out / "report.json", lambda handle: handle.write(text), mode="w")
        atomic_write(out / "report.md", lambda handle: handle.write(render_markdown(report)), mode="w")
    except OSError as exc:
        raise _output_error(out / "report.json", exc, len(result.done)) from exc
    return report


# --------------------------------------------------------------------------- rendering


def summary_table(report):
    """The terminal comparison table of a report.

    Examples
    --------
    >>> r = {"weights": {"source": "random (seed 0)", "pretrained": False}, "cv": {"folds": 5},
    ...      "auc": {"log_mel": {"name": "log-mel (pooled)", "features": 64,
    ...                          "best": {"pca": 8, "mean": 0.8, "std": 0.05}}},
    ...      "counts": {"items": 10, "bird": 7, "no_bird": 3, "examples": 100, "skipped": 1}}
    >>> print(summary_table(r).splitlines()[2])
    log-mel (pooled)              64         8  0.800 ± 0.050
    """
    lines = [f"{'feature set':<26}{'dims':>6}{'best PCA':>10}  ROC AUC ({report['cv']['folds']}-fold CV, mean ± std)",
             "-" * 78]
    for key, entry in report["auc"].items():
        best = entry["best"]
        flag = "" if key != "vggish" or report["weights"]["pretrained"] else "   <- RANDOM weights, not pretrained"
        lines.append(f"{entry['name']:<26}{entry['features']:>6}{best['pca']:>10}  "
                     f"{best['mean']:.3f} ± {best['std']:.3f}{flag}")
    c = report["counts"]
    lines.append(f"items: {c['items']} ({c['bird']} bird, {c['no_bird']} no-bird), {c['examples']} examples; "
                 f"skipped: {c['skipped']}")
    lines.append(weights_label(report["weights"]))
    return "\n".join(lines)


def _md_escape(text):
    return display_id(text).replace("|", "\\|").replace("`", "'")


def render_markdown(report):
    """``report.md``: the same content as ``report.json``, for people."""
    w, c = report["weights"], report["counts"]
    md = ["# warblr report: does a feature set tell bird from no bird?", ""]
    if not w["pretrained"]:
        md += [f"> **{weights_label(w)}.** {w.get('note', '')}", ""]
    md += [f"- data: `{report['data']}` (metadata `{Path(report['metadata']).name}`)",
           f"- weights: `{w['source']}` (pretrained: {str(w['pretrained']).lower()})",
           f"- items: {c['items']} ({c['bird']} bird, {c['no_bird']} no-bird), {c['examples']} examples "
           f"of 0.96 s; {c['skipped']} skipped; {c['computed']} computed, {c['reused']} reused",
           f"- method: {report['cv']['estimator']}; {report['cv']['folds']}-fold stratified CV "
           f"(seed {report['cv']['seed']}); features pooled as the {report['cv']['pooling']}",
           "", "## ROC AUC", "",
           "| feature set | dims | best PCA | AUC mean ± std over folds |", "|---|---:|---:|---|"]
    for entry in report["auc"].values():
        b = entry["best"]
        md.append(f"| {entry['name']} | {entry['features']} | {b['pca']} | {b['mean']:.3f} ± {b['std']:.3f} |")
    md += ["", f"Best: {report['cv']['best']}.", "", "### PCA sweep", "",
           "| PCA size | " + " | ".join(e["name"] for e in report["auc"].values()) + " |",
           "|---:|" + "---|" * len(report["auc"])]
    sizes = sorted({r["pca"] for e in report["auc"].values() for r in e["sweep"]})
    for size in sizes:
        cells = []
        for entry in report["auc"].values():
            hit = [r for r in entry["sweep"] if r["pca"] == size]
            cells.append(f"{hit[0]['mean']:.3f} ± {hit[0]['std']:.3f}" if hit else "-")
        md.append(f"| {size} | " + " | ".join(cells) + " |")
    md += ["", "## Plots", ""]
    md += [f"![{Path(p).stem}]({p})" for p in report["plots"]]
    md += ["", f"## Skipped items ({len(report['skipped'])})", ""]
    if report["skipped"]:
        md += ["| item id | line | reason |", "|---|---:|---|"]
        md += [f"| `{_md_escape(p['item_id'])}` | {p['line'] or ''} | {_md_escape(p['reason'])} |"
               for p in report["skipped"]]
    else:
        md.append("None.")
    t = report["timings"]
    md += ["", "## Timings and versions", "",
           f"extract {t['extract_s']:.1f} s, load {t['load_s']:.1f} s, cross-validation {t['cv_s']:.1f} s, "
           f"plots {t['plots_s']:.1f} s, total {t['total_s']:.1f} s.", "",
           ", ".join(f"{k} {v}" for k, v in report["versions"].items()), ""]
    return "\n".join(md)


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


def _prepare(args, what):
    dataset = read_dataset(args.data, labels=args.labels, limit=args.limit, seed=args.seed)
    model, provenance = load_model(args.weights, seed=args.weights_seed, download=args.download)
    _banner(args, provenance, what)
    _say(args, f"data: {dataset.root} ({dataset.metadata.name}): {len(dataset.items)} items"
               + (f" (stratified subset, --limit {args.limit})" if args.limit else ""))
    return dataset, model, provenance


def _run_extract(args):
    dataset, model, provenance = _prepare(args, f"extract {args.data} -> {args.out}")
    result = extract(dataset, args.out, model=model, provenance=provenance, group_size=args.group_size,
                     progress=not args.quiet)
    _list_problems(list(dataset.problems) + result.failed, "skipped items")
    print(f"extract: {len(result.done)} items in {Path(args.out) / ITEMS_DIR} ({result.computed} computed, "
          f"{result.reused} reused) in {result.seconds:.1f} s; "
          f"{len(dataset.problems) + len(result.failed)} skipped")
    return 0


def _run_analyse(args, dataset=None, model=None, provenance=None):
    if dataset is None:
        dataset, model, provenance = _prepare(args, f"analyse {args.data} -> {args.out}")
    report = analyse(dataset, args.out, model=model, provenance=provenance, folds=args.folds, seed=args.seed,
                     pca_sizes=args.pca_sizes, group_size=args.group_size, progress=not args.quiet,
                     command=args.command)
    _list_problems([Problem(p["item_id"], p["reason"], p["line"]) for p in report["skipped"]], "skipped items")
    print()
    print(summary_table(report))
    print(f"report: {Path(args.out) / 'report.md'}, {Path(args.out) / 'report.json'}; plots in "
          f"{Path(args.out) / PLOTS_DIR} ({report['timings']['total_s']:.0f} s)")
    return 0


def _run_demo(args):
    from .corpus import make_corpus

    corpus = Path(args.corpus) if args.corpus else Path(args.out) / "corpus"
    started = time.perf_counter()
    root, made = make_corpus(corpus, n_clips=args.size, seed=args.seed, progress=not args.quiet)
    _say(args, f"demo corpus: {root} ({args.size} synthetic 10 s clips, "
               + ("generated" if made else "reused") + f" in {time.perf_counter() - started:.1f} s)")
    args.data, args.labels = str(root), None
    return _run_analyse(args)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


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
    parser.add_argument("--quiet", action="store_true", help="no progress bars or info lines")


def _analysis_options(parser):
    parser.add_argument("--folds", type=_positive_int, default=5, help="stratified cross-validation folds")
    parser.add_argument("--pca-sizes", type=_sizes, default="2,4,8,16,32,64", metavar="K,K,...",
                        help="PCA sizes to sweep, capped by the features and the training samples")


def register(subparsers):
    """Add ``extract``, ``analyse`` and ``demo`` to the ``warblr`` command line."""
    from .corpus import DEFAULT_SIZE

    fmt = argparse.ArgumentDefaultsHelpFormatter
    demo = subparsers.add_parser(
        "demo", formatter_class=fmt, help="the lab end to end on the embedded synthetic corpus",
        description="Generate (or reuse) the embedded synthetic warblr-like corpus offline, then run `analyse` "
                    "on it: log-mel vs VGGish embeddings for bird detection, with report and plots.")
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
        description="Extract (or reuse), pool per clip, then compare pooled log-mel and pooled VGGish embeddings "
                    "with PCA + logistic regression (stratified CV ROC AUC over a sweep of PCA sizes). "
                    "Writes OUT/report.json, OUT/report.md and OUT/plots/*.png.")
    _common(ana)
    _analysis_options(ana)
    ana.set_defaults(func=_run_analyse)
