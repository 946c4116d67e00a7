"""The notebook's figures as a student sees them: scales, colour bars, the bird, and a real browser.

Fast checks draw each figure from closed-form data and read the matplotlib
objects (a colour bar with units on every image, one scale shared by yours
and the reference, a difference panel on a diverging map centred on 0 only
when yours differs, librosa's defaults on a scale of their own, the bird
marked). The browser check renders the solutions' executed notebook (the
session's shared run, ``notebook_runs.py``) with nbconvert, opens it in
headless Chromium and finds no broken image, no flat panel and no error
output; the same check must catch a flattened panel, a broken image and an
error. The rendered page is kept in ``$WARBLR_ARTIFACTS`` (a temporary folder
when unset) for CI to keep.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from warblr import spec
from warblr.lab import notebook as nb
from warblr.lab.notebook import figures

import notebook_runs as runs     # beside this file (pytest puts this folder on sys.path)
import rendered_page as page


SR = spec.SAMPLE_RATE


@pytest.fixture
def shown(monkeypatch):
    """The PNGs the figures display (IPython's display, captured)."""
    import IPython.display

    pngs = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: pngs.append(getattr(obj, "data", obj)))
    return pngs


def _bird_clip(tmp_path, *, seconds=3.0, call=(1.6, 2.0), level=0.3, seed=0, name="bird"):
    """A 16 kHz clip of faint noise with one 4 kHz call, written and decoded like a dataset item."""
    t = np.arange(int(seconds * SR)) / SR
    signal = 0.003 * np.random.default_rng(seed).standard_normal(t.size)
    inside = (t >= call[0]) & (t < call[1])
    signal[inside] += level * np.sin(2 * np.pi * (4000 + 800 * np.sin(2 * np.pi * 8 * t[inside])) * t[inside])
    path = tmp_path / f"{name}.wav"
    sf.write(str(path), signal, SR, subtype="PCM_16")
    from types import SimpleNamespace

    return SimpleNamespace(item_id=name, label=1, path=path)


def _images(figure):
    return [axis for axis in figure.axes if axis.images and not hasattr(axis, "_colorbar")]


def _colour_bars(figure):
    return [axis for axis in figure.axes if hasattr(axis, "_colorbar")]


# --------------------------------------------------------------------------- the figures' scales


def test_yours_and_the_reference_share_one_scale_with_a_colour_bar_and_units(shown, capsys):
    reference = np.random.default_rng(0).uniform(-4.6, 2.0, (300, 64))
    figure = nb.show_log_mel(reference + 1e-9, reference)
    assert "✓ `log_mel_spectrogram`" in capsys.readouterr().out
    yours, theirs = _images(figure)   # no difference panel when yours matches
    assert yours.images[0].get_clim() == theirs.images[0].get_clim() == (reference.min(), reference.max())
    [bar] = _colour_bars(figure)
    assert bar.get_ylabel() == "ln(mel + 0.01)"
    assert yours.get_xlabel() == "time (s)" and yours.get_ylabel() == "mel band centre (Hz)"
    assert len(shown) == 1 and shown[0][:8] == b"\x89PNG\r\n\x1a\n"


def test_a_wrong_result_gets_a_difference_panel_on_a_diverging_map_centred_on_zero(shown, capsys):
    reference = np.random.default_rng(1).uniform(-4.6, 2.0, (300, 64))
    yours = reference * 2.0 + 1.0   # most of it beyond the reference's range
    figure = nb.show_log_mel(yours, reference)
    assert "✗ `log_mel_spectrogram`: differs" in capsys.readouterr().out
    first, _, difference = _images(figure)
    assert "outside the reference's range" in first.get_title()
    low, high = difference.images[0].get_clim()
    assert low == -high and high == pytest.approx(np.max(np.abs(yours - reference)))
    assert difference.images[0].get_cmap().name == figures.DIVERGING_MAP
    shared, own = _colour_bars(figure)
    assert shared._colorbar.extend == "both"   # yours goes beyond both ends of the shared scale
    assert own.get_ylabel() == "difference (ln(mel + 0.01))"
    figure = nb.show_log_mel(reference + 0.5, reference)   # a constant offset: one colour, said in words
    assert _images(figure)[2].get_title() == "yours − reference: +0.5 everywhere"


def test_stft_is_drawn_in_decibels_against_seconds_and_hertz(shown, capsys):
    signal = np.sin(2 * np.pi * 1000 * np.arange(SR) / SR)
    from warblr.features import stft_magnitude

    magnitude = stft_magnitude(signal)
    figure = nb.show_stft(magnitude, magnitude)
    yours, _ = _images(figure)
    low, high = yours.images[0].get_clim()
    assert high == pytest.approx(20 * np.log10(magnitude.max() + 1e-10)) and high - low == pytest.approx(100.0)
    assert yours.get_ylabel() == "frequency (Hz)" and yours.images[0].get_extent()[3] == SR / 2
    assert _colour_bars(figure)[0].get_ylabel() == "magnitude (dB)"


def test_every_image_panel_of_the_embedding_figures_has_units(shown, capsys):
    values = np.random.default_rng(2).uniform(0, 3, (4, 128))
    figure = nb.show_embeddings(values, values, pretrained=False)
    assert _colour_bars(figure)[0].get_ylabel() == "embedding value (RANDOM weights)"
    quantised = np.random.default_rng(3).integers(0, 256, (4, 128)).astype(np.uint8)
    figure = nb.show_postprocessed(quantised, quantised)
    assert _images(figure)[0].images[0].get_clim() == (0, 255)
    assert _colour_bars(figure)[0].get_ylabel() == "quantised value (0-255)"


def test_librosa_defaults_get_a_scale_of_their_own_and_show_structure(tmp_path, shown, capsys):
    pytest.importorskip("librosa")
    from warblr.features import log_mel_spectrogram

    clip = nb.Clip.load(_bird_clip(tmp_path))
    log_mel = log_mel_spectrogram(clip.mono_16k)
    figure = nb.compare_with_librosa(clip.mono_16k, log_mel, clip=clip)
    out = capsys.readouterr().out
    assert "librosa matched" in out and "max difference" in out
    yours, defaults, difference = _images(figure)
    assert "defaults" in defaults.get_title() and "matched" in difference.get_title()
    assert yours.images[0].get_clim() != defaults.images[0].get_clim()
    for axis in (yours, defaults):   # neither saturated nor flat: the data spread over its own scale
        data = np.asarray(axis.images[0].get_array(), dtype=np.float64)
        low, high = axis.images[0].get_clim()
        scaled = np.clip((data - low) / (high - low), 0, 1)
        assert 0.1 < scaled.std() and 0.05 < scaled.mean() < 0.95, axis.get_title()
    low, high = difference.images[0].get_clim()
    assert low == -high and difference.images[0].get_cmap().name == figures.DIVERGING_MAP
    assert len(_colour_bars(figure)) == 3 and all(bar.get_ylabel() for bar in _colour_bars(figure))
    assert [text.get_text() for text in yours.texts] == ["bird"]


# --------------------------------------------------------------------------- the bird


def test_bird_activity_finds_the_call_in_time(tmp_path):
    clip = nb.Clip.load(_bird_clip(tmp_path, call=(1.6, 2.0)))
    found = clip.activity
    assert found.rise_db > 30 and 1.6 <= found.peak_s <= 2.0
    [(start, end)] = clip.bird_spans
    # The level is smoothed over 0.1 s (so that a trill's pulses make one event): the edges are that precise.
    assert start == pytest.approx(1.6, abs=0.1) and end == pytest.approx(2.0, abs=0.1)
    assert f"the bird: {start:.2f}-{end:.2f} s (its 1-8 kHz energy up to {found.rise_db:.0f} dB" in clip.where_bird


def test_the_example_bird_clip_is_the_one_where_the_bird_is_clearest(tmp_path):
    from warblr.lab.notebook.clips import clearest

    items = [_bird_clip(tmp_path, level=level, seed=k, name=f"bird{k}") for k, level in enumerate((0.01, 0.3, 0.05))]
    best, measured = clearest(items)
    assert best.item_id == "bird1" and measured == 3
    best, measured = clearest(items, candidates=1)   # only the first is looked at
    assert best.item_id == "bird0" and measured == 1


def test_figures_mark_the_bird_on_every_time_axis(tmp_path, shown, capsys):
    clip = nb.Clip.load(_bird_clip(tmp_path))
    examples = clip.examples
    figure = nb.show_examples(examples, examples + 0.5, clip=clip)   # differs: three panels
    panels = _images(figure)
    assert len(panels) == 3
    for axis in panels:
        assert [text.get_text() for text in axis.texts] == ["bird"], axis.get_title()
    no_bird = nb.Clip(clip.item_id, 0, clip.waveform, clip.sample_rate)
    figure = nb.show_examples(examples, examples, clip=no_bird)
    assert all(not axis.texts for axis in _images(figure))


# --------------------------------------------------------------------------- the panel check itself


def _png_of(figure_maker, shown):
    figure_maker()
    return shown[-1]


def test_panel_check_passes_real_panels_and_catches_a_flat_one(shown, capsys):
    reference = np.random.default_rng(4).uniform(-4.6, 2.0, (300, 64))
    png = _png_of(lambda: nb.show_log_mel(reference, reference), shown)
    assert page.panel_problems(png, name="log-mel", panels_key=nb.PANELS_KEY) == []
    flat = _png_of(lambda: nb.show_log_mel(np.zeros_like(reference), reference), shown)
    problems = page.panel_problems(flat, name="log-mel", panels_key=nb.PANELS_KEY)
    assert len(problems) == 1 and "panel 'yours: log_mel_spectrogram" in problems[0] and "is flat" in problems[0]


def test_every_panel_of_a_figure_is_listed_where_it_is_in_the_png(shown, capsys):
    from PIL import Image

    reference = np.random.default_rng(5).uniform(-4.6, 2.0, (300, 64))
    png = _png_of(lambda: nb.show_log_mel(reference * 1.5, reference), shown)
    image = Image.open(io.BytesIO(png))
    panels = json.loads(image.info[nb.PANELS_KEY])
    assert [panel["kind"] for panel in panels] == ["image", "image", "image", "colorbar", "colorbar"]
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    for panel in panels:   # inside each box: the panel; just outside its left edge: the white figure
        left, top, right, bottom = panel["box"]
        assert 0 <= left < right <= image.width and 0 <= top < bottom <= image.height
        if panel["kind"] == "image":
            assert grey[top + 3:bottom - 3, left + 3:right - 3].std() > 10
            assert grey[(top + bottom) // 2, left - 2] > 200


# --------------------------------------------------------------------------- in a real browser


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    reason = page.browser_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the browser check must run in CI: {reason}")
        pytest.skip(reason)
    opened = page.Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def reference_notebook(tmp_path_factory):
    pytest.importorskip("ipykernel")
    pytest.importorskip("nbconvert")
    return runs.shared(tmp_path_factory).executed("solutions")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    """Where the rendered pages go: ``$WARBLR_ARTIFACTS`` (CI keeps it), else a temporary folder."""
    folder = Path(os.environ.get("WARBLR_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(browser, notebook, path):
    path.write_text(page.render_html(notebook), encoding="utf-8")
    return browser.problems(path, panels_key=nb.PANELS_KEY)


def _figure_outputs(notebook):
    return [output for c in notebook.cells if c.cell_type == "code" for output in c.outputs
            if "image/png" in output.get("data", {})]


@pytest.mark.slow  # executes the notebook with the solutions in a kernel (13 s); the stubs' run is in the default pass
def test_the_solutions_notebook_renders_with_every_figure_whole(browser, reference_notebook, artifacts):
    images, problems = _open(browser, reference_notebook, artifacts / "lab-notebook-solutions.html")
    assert problems == []
    figures_shown = _figure_outputs(reference_notebook)
    assert len(images) == len(figures_shown) >= 10   # every figure cell drew, and every figure is on the page
    assert all(image["width"] > 0 and image["src"].startswith("data:image/png;base64,") for image in images)


@pytest.mark.slow  # executes the notebook with the solutions in a kernel (13 s); the stubs' run is in the default pass
def test_the_browser_check_fails_on_a_flattened_panel(browser, reference_notebook, tmp_path):
    from PIL import Image, PngImagePlugin

    notebook = copy.deepcopy(reference_notebook)
    [output] = [o for o in next(c for c in notebook.cells if c.get("id") == "log-mel").outputs
                if "image/png" in o.get("data", {})]
    image = Image.open(io.BytesIO(base64.b64decode(output["data"]["image/png"])))
    panels = json.loads(image.info[nb.PANELS_KEY])
    left, top, right, bottom = panels[0]["box"]
    flattened = image.convert("RGB")
    flattened.paste((68, 1, 84), (left, top, right, bottom))   # one viridis colour over the whole panel
    info = PngImagePlugin.PngInfo()
    info.add_text(nb.PANELS_KEY, image.info[nb.PANELS_KEY])
    buffer = io.BytesIO()
    flattened.save(buffer, format="png", pnginfo=info)
    output["data"]["image/png"] = base64.b64encode(buffer.getvalue()).decode()
    _, problems = _open(browser, notebook, tmp_path / "flattened.html")
    assert len(problems) == 1 and f"panel {panels[0]['title']!r} is flat" in problems[0], problems


@pytest.mark.slow  # executes the notebook with the solutions in a kernel (13 s); the stubs' run is in the default pass
def test_the_browser_check_fails_on_a_broken_image_and_on_error_output(browser, reference_notebook, tmp_path):
    notebook = copy.deepcopy(reference_notebook)
    stft = next(c for c in notebook.cells if c.get("id") == "stft")
    [output] = [o for o in stft.outputs if "image/png" in o.get("data", {})]
    output["data"]["image/png"] = base64.b64encode(b"not a png at all").decode()
    auc = next(c for c in notebook.cells if c.get("id") == "auc")
    auc.outputs.append({"output_type": "error", "ename": "ValueError", "evalue": "boom",
                        "traceback": ["Traceback (most recent call last):", "ValueError: boom"]})
    _, problems = _open(browser, notebook, tmp_path / "broken.html")
    assert any("did not load" in problem for problem in problems), problems
    assert any(problem.startswith("error output on the page") and "boom" in problem for problem in problems), problems
