"""What ``warblr analyse`` tells people: ``report.json``, ``report.md`` and the terminal table.

The report is one JSON-serialisable dict (built by :func:`warblr.lab.analyse.analyse`);
this module renders it. Every rendering states the weights' provenance
(:func:`weights_label`) so random-weight results never pass for pretrained ones,
and every feature set in ``report["auc"]`` gets a row, whatever the registry holds.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

from .. import __version__
from ..fileio import TMP_PREFIX, atomic_write, current_umask
from .dataset import display_id
from .plots import PLOTS_DIR

__all__ = ["REPORT_JSON", "REPORT_MD", "weights_label", "versions", "summary_table", "render_markdown",
           "write_report", "publish_report", "remove_stale_staging"]

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


def weights_label(provenance):
    """A short statement of the weights for titles and tables.

    Parameters
    ----------
    provenance : dict
        A report's ``weights`` entry (:meth:`warblr.weights.WeightsProvenance.as_dict`).

    Returns
    -------
    str

    Examples
    --------
    >>> weights_label({"requested": "random", "source": "random (seed 0)", "pretrained": False, "seed": 0})
    'VGGish weights: RANDOM (seed 0), NOT pretrained'
    """
    from ..weights import WeightsProvenance

    return WeightsProvenance.from_dict(provenance).label


def versions():
    """Versions of warblr, Python and the libraries behind the numbers, and the platform.

    Returns
    -------
    dict of str
    """
    import numpy
    import sklearn
    import torch

    return {"warblr": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "torch": torch.__version__, "scikit-learn": sklearn.__version__, "platform": platform.platform()}


def summary_table(report):
    """The terminal comparison table of a report.

    Parameters
    ----------
    report : dict

    Returns
    -------
    str

    Examples
    --------
    >>> r = {"weights": {"requested": "random", "source": "random (seed 0)", "pretrained": False, "seed": 0},
    ...      "cv": {"folds": 5},
    ...      "auc": {"log_mel": {"name": "log-mel (pooled)", "features": 64, "source": "examples",
    ...                          "best": {"pca": 8, "mean": 0.8, "std": 0.05}}},
    ...      "counts": {"items": 10, "bird": 7, "no_bird": 3, "examples": 100, "skipped": 1}}
    >>> print(summary_table(r).splitlines()[2])
    log-mel (pooled)              64         8  0.800 ± 0.050
    """
    test = "test" in report
    lines = [f"{'feature set':<26}{'dims':>6}{'best PCA':>10}  ROC AUC ({report['cv']['folds']}-fold CV, mean ± std)"
             + ("  test AUC" if test else ""),
             "-" * (90 if test else 78)]
    for entry in report["auc"].values():
        best = entry["best"]
        random_weights = entry.get("source") == "embeddings" and not report["weights"]["pretrained"]
        flag = "   <- RANDOM weights, not pretrained" if random_weights else ""
        score = f"{entry['test']['auc']:.3f}" if test and entry["test"]["auc"] is not None else "n/a"
        lines.append(f"{entry['name']:<26}{entry['features']:>6}{best['pca']:>10}  "
                     f"{best['mean']:.3f} ± {best['std']:.3f}" + (f"{score:>18}" if test else "") + flag)
    c = report["counts"]
    lines.append(f"items: {c['items']} ({c['bird']} bird, {c['no_bird']} no-bird), {c['examples']} examples; "
                 f"skipped: {c['skipped']}")
    if test:
        t = report["test"]["counts"]
        lines.append(f"test set {report['test']['data']}: {t['items']} items ({t['bird']} bird, {t['no_bird']} "
                     f"no-bird); skipped: {t['skipped']}; fitted on the training set only")
    lines.append(weights_label(report["weights"]))
    return "\n".join(lines)


def _md_escape(text):
    return display_id(text).replace("|", "\\|").replace("`", "'")


def _engine_line(engine):
    if not engine:
        return []
    threads = (f"; torch {engine['torch_threads']} intra-op / {engine['torch_interop_threads']} inter-op threads"
               if "torch_threads" in engine else "")
    hop = f", an example every {engine['hop']} s" if "hop" in engine else ""
    return [f"- engine: {engine['device']}, network in {engine['dtype']}, {engine['batch_size']} examples per "
            f"batch, {engine['group_size']} clips per group, {engine['workers']} decoding thread(s){threads}{hop}"]


def render_markdown(report):
    """``report.md``: the same content as ``report.json``, for people.

    Parameters
    ----------
    report : dict
        As :func:`warblr.pipeline.analyse` returns it.

    Returns
    -------
    str
        Markdown, with the provenance warning first when the weights are random.
    """
    w, c = report["weights"], report["counts"]
    md = ["# warblr report: does a feature set tell bird from no bird?", ""]
    if not w["pretrained"]:
        md += [f"> **{weights_label(w)}.** {w.get('note', '')}", ""]
    md += [f"- data: `{report['data']}` (metadata `{Path(report['metadata']).name}`)",
           f"- weights: `{w['source']}` (pretrained: {str(w['pretrained']).lower()})",
           f"- items: {c['items']} ({c['bird']} bird, {c['no_bird']} no-bird), {c['examples']} examples "
           f"of 0.96 s; {c['skipped']} skipped; {c['computed']} computed, {c['reused']} reused",
           f"- method: {report['cv']['estimator']}; {report['cv']['folds']}-fold stratified CV "
           f"(seed {report['cv']['seed']}); features pooled {report['cv']['pooling']}",
           *_engine_line(report.get("engine")),
           "", "## ROC AUC", "",
           "| feature set | dims | pooled per clip | best PCA | AUC mean ± std over folds |"
           + (" test AUC |" if "test" in report else ""),
           "|---|---:|---|---:|---|" + ("---:|" if "test" in report else "")]
    for entry in report["auc"].values():
        b = entry["best"]
        test = ""
        if "test" in report:
            test = f" {entry['test']['auc']:.3f} |" if entry["test"]["auc"] is not None else " n/a |"
        md.append(f"| {entry['name']} | {entry['features']} | {entry.get('pooling', '')} | {b['pca']} | "
                  f"{b['mean']:.3f} ± {b['std']:.3f} |{test}")
    md += ["", f"Best: {report['cv']['best']}."]
    if "test" in report:
        t = report["test"]
        md += ["", f"Test set: `{t['data']}`, {t['counts']['items']} items ({t['counts']['bird']} bird, "
                   f"{t['counts']['no_bird']} no-bird), {t['counts']['skipped']} skipped. Method: {t['method']}."]
    if report["cv"].get("pooling_note"):
        md += ["", report["cv"]["pooling_note"]]
    md += ["", "### PCA sweep", "",
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
    if report.get("test", {}).get("skipped"):
        md += ["", f"### Skipped test items ({len(report['test']['skipped'])})", "",
               "| item id | line | reason |", "|---|---:|---|"]
        md += [f"| `{_md_escape(p['item_id'])}` | {p['line'] or ''} | {_md_escape(p['reason'])} |"
               for p in report["test"]["skipped"]]
    t = report["timings"]
    md += ["", "## Timings and versions", "",
           f"extract {t['extract_s']:.1f} s, load {t['load_s']:.1f} s, cross-validation {t['cv_s']:.1f} s, "
           f"plots {t['plots_s']:.1f} s, total {t['total_s']:.1f} s.", "",
           ", ".join(f"{k} {v}" for k, v in report["versions"].items()), ""]
    return "\n".join(md)


def write_report(out, report):
    """Write ``OUT/report.json`` and ``OUT/report.md``, each atomically.

    Parameters
    ----------
    out : str or os.PathLike
    report : dict

    Returns
    -------
    list of Path
        The two files written.

    Raises
    ------
    OSError
        A file cannot be written; nothing partial is left under its name.
    """
    out = Path(out)
    text = json.dumps(report, indent=2, ensure_ascii=True) + "\n"
    atomic_write(out / REPORT_JSON, lambda handle: handle.write(text), mode="w")
    atomic_write(out / REPORT_MD, lambda handle: handle.write(render_markdown(report)), mode="w")
    return [out / REPORT_JSON, out / REPORT_MD]


def publish_report(out, report, *, make_plots):
    """Write the report and its plots as one set: built aside, then moved into ``out`` together.

    The plots are drawn into a private staging folder inside ``out``, the
    report (which lists them) is written beside them, then the plots folder
    is swapped in and ``report.md`` and ``report.json`` are renamed over the
    old ones, report.json last. The caller holds the folder's lock
    (:func:`warblr.fileio.exclusive`), so no other run writes in between,
    and a killed run leaves the previous set in place (or, killed during the
    swap, a staging folder that :func:`remove_stale_staging` clears).

    Parameters
    ----------
    out : str or os.PathLike
        The output folder (it exists).
    report : dict
        Everything but ``plots``, which is filled in here.
    make_plots : callable
        ``make_plots(folder) -> list of str``: draws every plot into
        ``folder/plots`` and returns the files relative to ``folder``.

    Returns
    -------
    list of Path
        ``report.json`` and ``report.md``.

    Raises
    ------
    OSError
        Something cannot be written; the previous report and plots are kept.
    """
    out = Path(out)
    staging = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}report-", dir=out))
    try:
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp's 0700 would lock others out of plots/
        report["plots"] = make_plots(staging)
        write_report(staging, report)
        old = out / f"{TMP_PREFIX}{PLOTS_DIR}-old"
        shutil.rmtree(old, ignore_errors=True)
        if (out / PLOTS_DIR).exists():
            os.replace(out / PLOTS_DIR, old)
        if (staging / PLOTS_DIR).exists():
            os.replace(staging / PLOTS_DIR, out / PLOTS_DIR)
        os.replace(staging / REPORT_MD, out / REPORT_MD)
        os.replace(staging / REPORT_JSON, out / REPORT_JSON)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / REPORT_JSON, out / REPORT_MD]


def remove_stale_staging(out):
    """Delete the staging folders a killed :func:`publish_report` left in ``out`` (best effort)."""
    for stale in Path(out).glob(f"{TMP_PREFIX}*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
