"""VGGish's log-mel beside librosa's mel spectrogram: what librosa's defaults change, and what is left.

librosa's defaults differ from VGGish in four ways (power instead of
magnitude, Slaney's mel scale, area-normalised filters, centred frames).
The figure shows each part on a scale of its own: your log-mel, librosa's
defaults on their own log scale (with VGGish's ``+ 0.01`` they would be one
flat colour: the values are that small), the band-by-band levels of both,
then librosa matched to VGGish minus yours on a diverging map centred on 0,
and the one thing matching cannot remove: the shape of the triangles.
"""

from __future__ import annotations

import warnings

import numpy as np

from ... import spec
from ...errors import WarblrError
from .checks import checked
from .display import FIGURE_DPI, show
from .figures import DIVERGING_MAP, band_ticks, diverging, draw_image, mark_bird, mel_band_centres

__all__ = ["compare_with_librosa"]

#: The floor of librosa's default (power) values on their own log scale: far below any recording's level.
_POWER_FLOOR = 1e-12


def _librosa():
    try:
        import librosa
    except ImportError:
        raise WarblrError("this comparison needs librosa: `pip install librosa` (or the lab extra), "
                          "then re-run this cell") from None
    return librosa


def compare_with_librosa(signal, log_mel, *, sample_rate=spec.SAMPLE_RATE, clip=None):
    """librosa's mel spectrogram beside your VGGish log-mel: where they differ, and why.

    Two librosa versions: its defaults (power, Slaney mel, area-normalised
    filters, centred frames), then matched to VGGish (magnitude, HTK mel,
    no normalisation, frames aligned by padding 56 samples). What remains
    is the filter shape: librosa's triangles are linear in Hz, VGGish's in mel.

    Parameters
    ----------
    signal : np.ndarray
        ``[samples]`` at 16 kHz.
    log_mel : array_like
        Your ``log_mel_spectrogram(signal)``, ``[frames, 64]``.
    sample_rate : int, keyword-only
    clip : Clip, keyword-only
        The clip shown: its bird is marked.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    from ...features import mel_matrix

    librosa = _librosa()
    yours = checked(log_mel, "log_mel_spectrogram", "logmel", (None, spec.NUM_MEL_BINS))
    common = dict(sr=sample_rate, n_fft=spec.FFT_LENGTH, hop_length=spec.STFT_HOP_LENGTH,
                  win_length=spec.STFT_WINDOW_LENGTH, n_mels=spec.NUM_MEL_BINS, fmin=spec.MEL_MIN_HZ,
                  fmax=spec.MEL_MAX_HZ)
    # librosa centres the 400-tap window in a 512-sample frame: 56 zeros in front line the frames up.
    pad = (spec.FFT_LENGTH - spec.STFT_WINDOW_LENGTH) // 2
    with warnings.catch_warnings():  # librosa pulls in tqdm.auto, which warns when ipywidgets is missing
        warnings.filterwarnings("ignore", message="IProgress not found")
        defaults_power = librosa.feature.melspectrogram(y=signal, **common).T
        matched = np.log(librosa.feature.melspectrogram(
            y=np.pad(signal, pad), center=False, power=1.0, htk=True, norm=None, **common).T + spec.LOG_OFFSET)
        librosa_filters = librosa.filters.mel(sr=sample_rate, n_fft=spec.FFT_LENGTH, n_mels=spec.NUM_MEL_BINS,
                                              fmin=spec.MEL_MIN_HZ, fmax=spec.MEL_MAX_HZ, htk=True, norm=None)
    defaults = np.log(defaults_power + spec.LOG_OFFSET)
    frames = min(len(yours), len(defaults), len(matched))
    default_gap = float(np.max(np.abs(defaults[:frames] - yours[:frames])))
    matched_gap = float(np.max(np.abs(matched[:frames] - yours[:frames])))
    print(f"librosa's defaults vs your log-mel: max difference {default_gap:.3g} "
          "(power instead of magnitude, Slaney mel, area-normalised filters, centred frames); "
          f"librosa's default values have median {np.median(defaults_power):.2g}, so VGGish's + 0.01 hides them")
    print(f"librosa matched (power=1, htk=True, norm=None, frames aligned) vs your log-mel: max difference "
          f"{matched_gap:.3g} (the reference log-mel: under 0.02, all of it from the triangles' shape)")

    figure = Figure(figsize=(16, 7.2), layout="constrained", dpi=FIGURE_DPI)
    axes = figure.subplot_mosaic([["yours", "defaults", "bands"], ["matched", "matched", "triangle"]])
    spans = None if clip is None else clip.bird_spans
    extent = [0, frames * spec.STFT_HOP_LENGTH_SECONDS, -0.5, spec.NUM_MEL_BINS - 0.5]
    own_log = np.log(defaults_power[:frames] + _POWER_FLOOR)
    vggish_centres = mel_band_centres()
    slaney_centres = librosa.mel_frequencies(spec.NUM_MEL_BINS + 2, fmin=spec.MEL_MIN_HZ, fmax=spec.MEL_MAX_HZ)[1:-1]
    for key, data, title, units, centres in (
            ("yours", yours[:frames], "yours (VGGish): ln(magnitude mel + 0.01)", "ln(mel + 0.01)", vggish_centres),
            ("defaults", own_log, "librosa, defaults: ln(power mel)\n(Slaney bands, area-normalised, centred)",
             "ln(power mel), its own scale", slaney_centres)):
        low, high = float(np.min(data)), float(np.max(data))
        shown = draw_image(axes[key], data, title=title, extent=extent, limits=(max(low, high - 25.0), high))
        band_ticks(axes[key], centres_hz=centres)
        mark_bird(axes[key], spans)
        figure.colorbar(shown, ax=axes[key], label=units)

    bands = axes["bands"]
    for data, centres, label, style in (
            (yours, vggish_centres, "VGGish: ln(magnitude + 0.01)", "-"),
            (np.log(defaults_power + _POWER_FLOOR), slaney_centres, "librosa defaults: ln(power)", "--"),
            (defaults, slaney_centres, "librosa defaults, ln(power + 0.01)", ":")):
        bands.plot(centres, data[:frames].mean(axis=0), style, linewidth=1.5, label=label)
    bands.set_xscale("log")
    bands.set_xticks([250, 500, 1000, 2000, 4000, 7000], ["250", "500", "1000", "2000", "4000", "7000"])
    bands.minorticks_off()
    bands.set(title="mean level of each band over the clip", xlabel="mel band centre (Hz)", ylabel="mean ln(value)")
    bands.legend(fontsize=8)

    difference = matched[:frames] - yours[:frames]
    shown = draw_image(axes["matched"], difference, title="librosa matched to VGGish − yours", extent=extent,
                       limits=diverging(difference), cmap=DIVERGING_MAP)
    band_ticks(axes["matched"])
    mark_bird(axes["matched"], spans)
    figure.colorbar(shown, ax=axes["matched"], label="difference (ln units)")

    band = spec.NUM_MEL_BINS - 4  # a wide band near the top: the curvature is easiest to see
    freqs = np.linspace(0, sample_rate / 2, spec.NUM_SPECTROGRAM_BINS)
    vggish_filters = mel_matrix()
    inside_band = vggish_filters[:, band] > 0
    triangle = axes["triangle"]
    triangle.plot(freqs[inside_band], vggish_filters[inside_band, band], "o-", label="VGGish: linear in mel")
    triangle.plot(freqs[inside_band], librosa_filters[band, inside_band], "x--", label="librosa: linear in Hz")
    triangle.set(title=f"band {band}: one triangle, two shapes", xlabel="frequency (Hz)", ylabel="weight")
    triangle.legend(fontsize=8, loc="lower center")
    gap = triangle.twinx()  # the shapes differ by about 1 %: show the difference on its own scale
    gap.plot(freqs[inside_band], librosa_filters[band, inside_band] - vggish_filters[inside_band, band], ":",
             color="grey")
    gap.set_ylabel("librosa − VGGish (dotted)", color="grey")
    return show(figure)
