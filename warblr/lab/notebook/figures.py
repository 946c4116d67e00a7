"""The figures that put the student's result beside the reference, one side-by-side helper for all of them.

:func:`side_by_side` prints the :func:`~warblr.lab.notebook.checks.compare`
line, then draws *yours* and *the reference (warblr)* on one shared colour
scale (comparison is the point) with its colour bar and units, and, when
yours differs, a third panel ``yours − reference`` on a diverging map
centred on 0. What differs between the ``show_*`` functions is only how an
array is drawn: an :class:`ImageStyle` (time on x, with the bird marked) or
:class:`TriangleStyle` (the mel filters). :func:`show_resampling` and
:func:`pca_scatter` are figures of their own kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import spec
from .checks import as_numbers, compare, feature_note, kind_of
from .display import show, subplots
from .settings import SEED

__all__ = ["ImageStyle", "TriangleStyle", "side_by_side", "mark_bird", "mel_band_centres", "band_ticks", "draw_image", "diverging",
           "show_stft", "show_mel_matrix", "show_log_mel", "show_examples", "show_embeddings", "show_postprocessed",
           "show_resampling", "pca_scatter"]

#: The colour map of differences: white at 0, blue below, red above.
DIVERGING_MAP = "RdBu_r"
#: A share of yours outside the shared colour range worth saying in the panel's title.
_OUTSIDE_WORTH_SAYING = 0.01


def mel_band_centres(*, bands=spec.NUM_MEL_BINS, low=spec.MEL_MIN_HZ, high=spec.MEL_MAX_HZ):
    """The centre frequencies (Hz) of VGGish's mel bands: evenly spaced on the HTK mel scale."""
    from ...features import hertz_to_mel

    edges = np.linspace(hertz_to_mel(low), hertz_to_mel(high), bands + 2)
    return spec.MEL_BREAK_FREQUENCY_HERTZ * (np.exp(edges[1:-1] / spec.MEL_HIGH_FREQUENCY_Q) - 1.0)


def band_ticks(axis, *, bands=spec.NUM_MEL_BINS, centres_hz=None):
    """Label mel-band rows (``-0.5 .. bands - 0.5``) with their centre frequencies in Hz (VGGish's by default)."""
    centres_hz = mel_band_centres(bands=bands) if centres_hz is None else np.asarray(centres_hz)
    ticks = sorted({int(np.argmin(np.abs(centres_hz - hz))) for hz in (250, 500, 1000, 2000, 4000, 7000)})
    axis.set_yticks(ticks, [f"{centres_hz[t]:.0f}" for t in ticks])
    axis.set_ylabel("mel band centre (Hz)")


def diverging(values):
    """Colour limits symmetric about 0 that hold every finite value: ``(-m, m)``."""
    finite = np.abs(values[np.isfinite(values)])
    top = float(finite.max()) if finite.size else 0.0
    return (-top, top) if top > 0 else (-1.0, 1.0)


def draw_image(axis, data, *, title, extent, limits, cmap=None, xlabel="time (s)", ylabel=None):
    """``data`` ``[time, rows]`` as an image with time on x; returns the mappable for a colour bar."""
    shown = axis.imshow(np.asarray(data).T, origin="lower", aspect="auto", extent=extent, interpolation="nearest",
                        vmin=limits[0], vmax=limits[1], cmap=cmap)
    axis.set(title=title, xlabel=xlabel)
    if ylabel:
        axis.set_ylabel(ylabel)
    return shown


def mark_bird(axis, spans):
    """Mark where the bird is: a strip along the panel's bottom edge under each span (seconds), labelled once.

    The strip covers only the lowest few rows (below 150 Hz, where no bird sings), so the calls stay visible;
    white edged with black, it reads on any colour map.
    """
    left, right = axis.get_xlim()
    shown = [(max(start, left), min(end, right)) for start, end in spans or () if min(end, right) > max(start, left)]
    for start, end in shown:  # a call in a part this panel does not show (a dropped tail) is left out
        axis.axvspan(start, end, ymin=0.0, ymax=0.05, facecolor="white", edgecolor="black", linewidth=0.8)
    if shown:
        axis.text(shown[0][0], 0.06, "bird", transform=axis.get_xaxis_transform(), ha="left", va="bottom",
                  fontsize=8, bbox={"facecolor": "white", "edgecolor": "black", "pad": 1.2})
    axis.set_xlim(left, right)


def _finite_range(values):
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)


@dataclass(frozen=True)
class ImageStyle:
    """How a result ``[time, rows]`` (or examples ``[N, frames, rows]``, laid end to end) is drawn.

    Attributes
    ----------
    units : str
        What the colour means, for the colour bar.
    step_s : float
        Seconds per time step.
    rows : str
        ``"mel"`` (band centres in Hz), ``"hz"`` (0 to the Nyquist frequency) or a label for plain indices.
    decibels : bool
        Draw ``20 log10 |x|`` (compared in dB too).
    limits : (float, float) or None
        Fixed colour limits; None: the reference's range.
    boundaries_s : float or None
        Draw a boundary every so many seconds (the examples).
    """

    units: str
    step_s: float
    rows: str = "mel"
    decibels: bool = False
    limits: tuple = None
    boundaries_s: float = None

    def prepare(self, data):
        """The array as drawn: time-major 2-D, in dB when asked."""
        data = np.asarray(data, dtype=np.float64)
        data = data.reshape(-1, data.shape[-1]) if data.ndim == 3 else data
        return 20 * np.log10(np.abs(data) + 1e-10) if self.decibels else data

    def scale(self, reference):
        """The shared colour limits: fixed, else the reference's range (its top 100 dB for dB images)."""
        if self.limits is not None:
            return self.limits
        low, high = _finite_range(reference)
        return (max(low, high - 100.0), high) if self.decibels else (low, high)

    def draw(self, axis, data, *, title, limits, cmap=None, clip=None):
        """Draw prepared ``data`` in ``axis`` (the bird of ``clip`` marked); returns the image for a colour bar."""
        if self.rows == "mel":
            extent_rows, ylabel = (-0.5, data.shape[1] - 0.5), None
        elif self.rows == "hz":
            extent_rows, ylabel = (0, spec.SAMPLE_RATE / 2), "frequency (Hz)"
        else:
            extent_rows, ylabel = (-0.5, data.shape[1] - 0.5), self.rows
        shown = draw_image(axis, data, title=title, extent=[0, data.shape[0] * self.step_s, *extent_rows],
                           limits=limits, cmap=cmap, ylabel=ylabel)
        if self.rows == "mel":
            band_ticks(axis, bands=data.shape[1])
        if self.boundaries_s:
            axis.set_title(f"{title}\n{data.shape[0] * self.step_s / self.boundaries_s:.0f} examples "
                           f"(white lines: their boundaries)")
            for boundary in np.arange(1, round(data.shape[0] * self.step_s / self.boundaries_s)) * self.boundaries_s:
                axis.axvline(boundary, color="white", linewidth=1)
        mark_bird(axis, None if clip is None else clip.bird_spans)
        return shown


@dataclass(frozen=True)
class TriangleStyle:
    """How a mel matrix ``[257, bands]`` is drawn: one triangle per band, against frequency in Hz."""

    units: str = "weight"
    sample_rate: int = spec.SAMPLE_RATE

    def prepare(self, data):
        """The matrix as drawn: float64, as it is."""
        return np.asarray(data, dtype=np.float64)

    def scale(self, reference):
        """The shared weight axis: from 0 (or below) to the reference's largest weight."""
        low, high = _finite_range(reference)
        return (min(0.0, low), high)

    def draw(self, axis, data, *, title, limits, cmap=None, clip=None):
        """Draw one line per band in ``axis``; returns None (lines need no colour bar)."""
        axis.plot(np.linspace(0, self.sample_rate / 2, data.shape[0]), data, linewidth=0.8)
        margin = 0.05 * (limits[1] - limits[0])  # the triangles' tips stay inside the frame
        axis.set(title=f"{title} ({data.shape[1]} bands)", xlabel="frequency (Hz)", ylabel=self.units,
                 ylim=(limits[0] - margin, limits[1] + margin))
        return None


def side_by_side(name, yours, reference, *, style, tolerance=None, clip=None):
    """Print the compare line, then draw yours and the reference on one scale, and their difference if any.

    Parameters
    ----------
    name : str
        The student's function.
    yours, reference : array_like
        The student's result and warblr's, on the same input.
    style : ImageStyle or TriangleStyle
        How one array is drawn.
    tolerance : dict, keyword-only
        ``rtol``/``atol`` of :func:`~warblr.lab.notebook.checks.compare`.
    clip : warblr.lab.notebook.clips.Clip, keyword-only
        The clip shown: its bird is marked on time axes.

    Returns
    -------
    matplotlib.figure.Figure
        Also displayed.
    """
    matches = compare(name, yours, reference, **(tolerance or {}))
    values, reference = as_numbers(yours), np.asarray(reference, dtype=np.float64)
    drawable = (values is not None and values.ndim == reference.ndim and values.shape[1:] == reference.shape[1:]
                and values.shape[0] > 0)
    differs = drawable and values.shape == reference.shape and not matches
    figure, axes = subplots(3 if differs else 2)
    shown_reference = style.prepare(reference)
    limits = style.scale(shown_reference)
    shared = axes[:2]
    if drawable:
        shown_yours = style.prepare(values)
        low, high = _finite_range(shown_reference)
        outside = float(np.mean((shown_yours < low) | (shown_yours > high)))
        note = f"\n{outside:.0%} of it outside the reference's range" if outside > _OUTSIDE_WORTH_SAYING else ""
        style.draw(axes[0], shown_yours, title=f"yours: {name}{note}", limits=limits, clip=clip)
    else:
        shape = None if values is None else values.shape
        axes[0].text(0.5, 0.5, f"yours: {kind_of(yours)} of shape {shape}\n"
                     f"cannot be drawn like the reference {reference.shape}", ha="center", va="center",
                     transform=axes[0].transAxes)
        axes[0].set_axis_off()
        shared = axes[1:2]
    mappable = style.draw(axes[1], shown_reference, title="reference (warblr)", limits=limits, clip=clip)
    if mappable is not None:
        extend = _extend(np.concatenate([shown_reference.ravel(), shown_yours.ravel() if drawable else []]), limits)
        figure.colorbar(mappable, ax=shared, label=style.units, extend=extend)
    if differs:
        difference = shown_yours - shown_reference
        title = "yours − reference"
        finite = difference[np.isfinite(difference)]
        if finite.size and np.ptp(finite) <= 1e-9 * max(1.0, float(np.max(np.abs(finite)))):
            title += f": {finite[0]:+.3g} everywhere"   # one colour is the answer here: say it in words
        mappable = style.draw(axes[2], difference, title=title, limits=diverging(difference),
                              cmap=DIVERGING_MAP, clip=clip)
        if mappable is not None:
            figure.colorbar(mappable, ax=axes[2], label=f"difference ({style.units})")
    return show(figure)


def _extend(values, limits):
    """Which ends of the colour bar need an arrow: values beyond them are drawn in the end colour."""
    finite = values[np.isfinite(values)]
    below = bool(finite.size) and finite.min() < limits[0]
    above = bool(finite.size) and finite.max() > limits[1]
    return "both" if below and above else "min" if below else "max" if above else "neither"


def show_stft(yours, reference, *, clip=None):
    """Your STFT magnitude ``[frames, 257]`` beside the reference, in dB, with axes in seconds and Hz.

    Parameters
    ----------
    yours, reference : array_like
        The student's result and warblr's, on the same input.
    clip : Clip, keyword-only
        The clip shown: its bird is marked.

    Returns
    -------
    matplotlib.figure.Figure
    """
    style = ImageStyle("magnitude (dB)", spec.STFT_HOP_LENGTH_SECONDS, rows="hz", decibels=True)
    return side_by_side("stft_magnitude", yours, reference, style=style, clip=clip)


def show_mel_matrix(yours, reference):
    """Your mel filters ``[257, 64]`` beside the reference: one triangle per band, against frequency in Hz.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return side_by_side("mel_matrix", yours, reference, style=TriangleStyle())


def show_log_mel(yours, reference, *, clip=None):
    """Your log-mel spectrogram ``[frames, 64]`` beside the reference, with axes in seconds and Hz.

    Returns
    -------
    matplotlib.figure.Figure
    """
    style = ImageStyle("ln(mel + 0.01)", spec.STFT_HOP_LENGTH_SECONDS)
    return side_by_side("log_mel_spectrogram", yours, reference, style=style, clip=clip)


def show_examples(yours, reference, *, name="frame_examples", clip=None):
    """Your examples ``[N, 96, 64]`` beside the reference's, laid end to end with their boundaries marked.

    Returns
    -------
    matplotlib.figure.Figure
    """
    style = ImageStyle("ln(mel + 0.01)", spec.STFT_HOP_LENGTH_SECONDS, boundaries_s=spec.EXAMPLE_WINDOW_SECONDS)
    return side_by_side(name, yours, reference, style=style, clip=clip)


def show_embeddings(yours, reference, *, pretrained=False, clip=None):
    """Your embeddings ``[N, 128]`` beside the engine's (same weights, same examples), one column per 0.96 s.

    Returns
    -------
    matplotlib.figure.Figure
    """
    weights = "pretrained weights" if pretrained else "RANDOM weights"
    style = ImageStyle(f"embedding value ({weights})", spec.EXAMPLE_WINDOW_SECONDS, rows="embedding dimension")
    scale = float(np.max(np.abs(reference))) if np.size(reference) else 1.0
    return side_by_side("embed", yours, reference, style=style, tolerance={"rtol": 1e-3, "atol": 1e-4 * scale},
                        clip=clip)


def show_postprocessed(yours, reference, *, clip=None):
    """Your postprocessed uint8 embeddings beside the engine's (same inputs); off-by-one rounding is allowed.

    Returns
    -------
    matplotlib.figure.Figure
    """
    style = ImageStyle("quantised value (0-255)", spec.EXAMPLE_WINDOW_SECONDS, rows="PCA component", limits=(0, 255))
    return side_by_side("postprocess", yours, reference, style=style, tolerance={"rtol": 0.0, "atol": 1.0},
                        clip=clip)


def _spectrum_db(signal, sample_rate):
    """Welch power spectrum in dB with 64 ms segments (same resolution whatever the rate)."""
    from scipy.signal import welch

    segment = min(signal.shape[0], int(round(0.064 * sample_rate)))
    freqs, power = welch(signal, fs=sample_rate, nperseg=segment)
    return freqs, 10 * np.log10(power + 1e-20)


def show_resampling(clip, yours, reference, *, target_sr=spec.SAMPLE_RATE, band_hz=(100.0, 7000.0), tolerance_db=1.0):
    """Your resampled clip against the original and warblr's ``kaiser_best``: length, spectrum, a close-up.

    Parameters
    ----------
    clip : Clip
        The original.
    yours, reference : array_like
        ``[samples]`` at ``target_sr``: the student's and the engine's.
    target_sr : int, keyword-only
    band_hz : (float, float), keyword-only
        Where two good resamplers must agree (below the transition band).
    tolerance_db : float, keyword-only
        Largest spectral difference in that band that still counts as a match.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when ``yours`` is not 1-D audio.
    """
    values, reference = as_numbers(yours), np.asarray(reference, dtype=np.float64)
    if values is None or values.ndim != 1 or values.size < 16:
        shape = None if values is None else values.shape
        print(f"✗ `resample`: expected mono audio [samples], got {kind_of(yours)} of shape {shape}")
        return None
    length_ok = abs(values.shape[0] - reference.shape[0]) <= 1
    print(f"{'✓' if length_ok else '✗'} `resample`: {values.shape[0]} samples; "
          f"{reference.shape[0]} expected ({clip.seconds:.2f} s at {target_sr} Hz)")
    original = clip.waveform if clip.waveform.ndim == 1 else clip.waveform.mean(axis=1)
    spectra = {"original": _spectrum_db(original, clip.sample_rate), "yours": _spectrum_db(values, target_sr),
               "warblr (kaiser_best)": _spectrum_db(reference, target_sr)}
    freqs, ref_db = spectra["warblr (kaiser_best)"]
    your_freqs, your_db = spectra["yours"]
    band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    if your_freqs.shape == freqs.shape:
        worst = float(np.max(np.abs(your_db[band] - ref_db[band])))
        print(f"{'✓' if worst <= tolerance_db else '✗'} `resample`: spectrum within {worst:.2g} dB of warblr's "
              f"between {band_hz[0]:.0f} and {band_hz[1]:.0f} Hz (tolerance {tolerance_db} dB)")
    else:
        print(f"✗ `resample`: too short ({values.shape[0]} samples) to compare its spectrum with warblr's")
    figure, (close_up, spectrum) = subplots(2)
    if clip.label:  # the bird's loudest moment: where resampling errors are easiest to hear and see
        centre_s, moment = clip.activity.peak_s, "the bird's loudest moment"
    else:
        centre_s, moment = float(np.argmax(np.abs(original))) / clip.sample_rate, "the clip's loudest sample"
    seconds = 0.005
    for label, signal, rate, style in (("original", original, clip.sample_rate, "-"),
                                       ("yours", values, target_sr, "o"),
                                       ("warblr", reference, target_sr, "x")):
        lo = int(max(0, (centre_s - seconds) * rate))
        hi = min(int((centre_s + seconds) * rate), signal.shape[0])
        close_up.plot(np.arange(lo, hi) / rate * 1000, signal[lo:hi], style, label=label, markersize=4,
                      linewidth=1)
    close_up.set(xlabel="time (ms)", ylabel="amplitude (full scale = 1)", title=f"10 ms around {moment}")
    close_up.legend(fontsize=8)
    for (label, (f, db)), style in zip(spectra.items(), ("-", "--", ":")):
        spectrum.plot(f / 1000, db, style, linewidth=1, label=label)
    spectrum.axvline(target_sr / 2000, color="grey", linestyle=":", label="new Nyquist frequency")
    spectrum.set(xlabel="frequency (kHz)", ylabel="power (dB re full scale²/Hz)",
                 title="spectrum: nothing above 8 kHz may fold back")
    spectrum.legend(fontsize=8)
    return show(figure)


def pca_scatter(features):
    """Each clip as a point on its first two principal components (standardised features), coloured by label.

    Parameters
    ----------
    features : Features
        One panel per feature set.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    figure, axes = subplots(len(features.sets), width=5.0, height=4.2)
    for axis, (name, values) in zip(axes, features.sets.items()):
        pca = PCA(n_components=2, random_state=SEED)
        points = pca.fit_transform(StandardScaler().fit_transform(values))
        for label, colour, text in ((0, "tab:blue", "no bird"), (1, "tab:orange", "bird")):
            chosen = features.labels == label
            axis.scatter(points[chosen, 0], points[chosen, 1], s=12, alpha=0.7, color=colour, label=text)
        share = pca.explained_variance_ratio_
        axis.set(title=name + feature_note(features, name), xlabel=f"PC 1 ({share[0]:.0%} of the variance)", ylabel=f"PC 2 ({share[1]:.0%})")
        axis.legend(fontsize=8)
    return show(figure)
