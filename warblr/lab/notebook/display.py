"""What the notebook shows besides figures' contents: PNG output, Markdown, audio players, progress bars.

Figures are made without pyplot (the student's own matplotlib state is left
alone) and shown as PNGs whose metadata lists where each panel is, so a test
can look at every panel of a rendered figure (:data:`PANELS_KEY`). Progress
bars print to stdout: in a notebook, stderr is drawn like an error.
"""

from __future__ import annotations

import io
import json
import sys

from ... import spec

__all__ = ["PANELS_KEY", "FIGURE_DPI", "markdown", "show", "subplots", "panel_boxes", "listen", "progress",
           "say_weights"]

#: PNG text chunk holding the panels of a figure: JSON ``[{"kind", "title", "box": [left, top, right, bottom]}]``
#: in pixels of the PNG; ``kind`` is ``"image"``, ``"plot"`` or ``"colorbar"``.
PANELS_KEY = "warblr:panels"
FIGURE_DPI = 90


def markdown(text):
    """Display ``text`` as Markdown."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def subplots(ncols, *, height=3.4, width=6.0):
    """A figure of ``ncols`` panels in a row, made without pyplot.

    Returns
    -------
    (matplotlib.figure.Figure, list of matplotlib.axes.Axes)
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * ncols, height), layout="constrained", dpi=FIGURE_DPI)
    return figure, list(figure.subplots(1, ncols, squeeze=False)[0])


def panel_boxes(figure):
    """Where each panel of ``figure`` is in its PNG (at :data:`FIGURE_DPI`), for :data:`PANELS_KEY`.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        Already laid out (drawn).

    Returns
    -------
    list of dict
        ``kind``, ``title`` and ``box`` (left, top, right, bottom pixels); twin
        axes sharing a panel are listed once.
    """
    height = figure.bbox.height
    panels, seen = [], set()
    for axis in figure.axes:
        if not axis.get_visible() or not axis.axison:
            continue
        box = axis.get_window_extent()
        pixels = (int(round(box.x0)), int(round(height - box.y1)), int(round(box.x1)), int(round(height - box.y0)))
        if pixels in seen:  # a twin axis: the same panel
            continue
        seen.add(pixels)
        kind = "colorbar" if hasattr(axis, "_colorbar") else "image" if axis.images else "plot"
        panels.append({"kind": kind, "title": axis.get_title(), "box": list(pixels)})
    return panels


def show(figure):
    """Display ``figure`` as a PNG (whatever matplotlib's backend) that lists its panels; returns the figure."""
    from IPython.display import Image, display

    figure.set_dpi(FIGURE_DPI)
    figure.draw_without_rendering()  # runs the layout, so the panel boxes are the PNG's
    metadata = {PANELS_KEY: json.dumps(panel_boxes(figure))}
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, metadata=metadata)
    display(Image(data=buffer.getvalue(), format="png"))
    return figure


def listen(clip):
    """Display an audio player for ``clip`` under a one-line caption.

    Parameters
    ----------
    clip : warblr.lab.notebook.clips.Clip
    """
    from IPython.display import Audio, display

    print(f"{clip.title} ({clip.seconds:.1f} s at {clip.sample_rate} Hz){clip.where_bird}")
    display(Audio(clip.waveform.T if clip.waveform.ndim == 2 else clip.waveform, rate=clip.sample_rate))


def progress(iterable=None, *, total=None, desc=None):
    """A progress bar over clips: a widget in Jupyter when ipywidgets is installed, else text on stdout.

    Parameters
    ----------
    iterable : iterable, optional
    total : int, keyword-only
    desc : str, keyword-only

    Returns
    -------
    tqdm.tqdm
    """
    try:
        import ipywidgets  # noqa: F401  (tqdm's notebook bar needs it)
        from tqdm.auto import tqdm

        options = {}
    except ImportError:
        from tqdm import tqdm

        # A notebook draws stderr like an error; a saved notebook keeps every redraw, so redraw once a second.
        options = {"file": sys.stdout, "mininterval": 1.0}
    return tqdm(iterable, total=total, desc=desc, unit="clip", leave=True, **options)


def say_weights(provenance):
    """Say which VGGish weights the embeddings come from: random ones in bold, with how to get the real ones."""
    if provenance.pretrained:
        markdown(f"Released VGGish weights: `{provenance.source}`.")
    else:
        markdown(f"**RANDOM weights (seed {provenance.seed}): the released VGGish weights were not found, so the "
                 "embeddings below come from an untrained network. They are a baseline, not VGGish.** "
                 f"To use the real ones, put `{spec.VGGISH_WEIGHTS_FILENAME}` in the torch hub checkpoint folder "
                 f"or point `${spec.WEIGHTS_ENV_VAR}` at it, then re-run.")
