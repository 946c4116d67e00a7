"""The example clips the notebook shows: decoded once, and the bird found in time.

A field recording with a bird is mostly background; the figures only teach
if the student can see the bird. :func:`bird_activity` measures, frame by
frame, the energy between 1 and 8 kHz (where most birdsong is) and finds its
largest rise over the clip's median and where in time that rise is;
:func:`clearest` picks the bird clip whose rise is largest. Figures mark the
spans (:attr:`Clip.bird_spans`), and :class:`Clip` keeps the engine's 16 kHz
audio and examples so every cell uses the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ... import load_audio, resample, spec, to_mono, waveform_to_examples
from ...errors import AudioError

__all__ = ["BIRD_BAND_HZ", "BirdActivity", "bird_activity", "Clip", "clearest", "pretend_stereo"]

#: Where most birdsong is, and little wind, traffic or handling noise.
BIRD_BAND_HZ = (1000.0, 8000.0)
#: Frames are this long (rounded up to a power of two samples), half-overlapping.
_FRAME_S = 0.02
#: The level is smoothed over this long, so that one click does not count as a bird.
_SMOOTH_S = 0.1


@dataclass(frozen=True)
class BirdActivity:
    """How clearly a clip's 1-8 kHz energy stands out, and where.

    Attributes
    ----------
    rise_db : float
        Peak of the smoothed 1-8 kHz level above its median over the clip, in dB.
    spans_s : tuple of (float, float)
        Start and end (seconds) of each event whose level comes within
        ``rise_db / 2`` of the peak, in time order.
    peak_s : float
        When the level peaks.
    """

    rise_db: float
    spans_s: tuple
    peak_s: float


def bird_activity(waveform, sample_rate, *, band_hz=BIRD_BAND_HZ):
    """The largest rise of a clip's 1-8 kHz energy over its median, and where the loud events are.

    Parameters
    ----------
    waveform : np.ndarray
        ``[samples]`` or ``[samples, channels]``.
    sample_rate : int
    band_hz : (float, float), keyword-only
        The band (its top is capped at the Nyquist frequency).

    Returns
    -------
    BirdActivity

    Examples
    --------
    >>> sr = 16000
    >>> t = np.arange(2 * sr) / sr
    >>> quiet = 0.001 * np.random.default_rng(0).standard_normal(t.size)
    >>> call = np.where((t > 1.2) & (t < 1.5), np.sin(2 * np.pi * 4000 * t), 0.0)
    >>> found = bird_activity(quiet + call, sr)
    >>> found.rise_db > 30, 1.1 < found.peak_s < 1.6, len(found.spans_s)
    (True, True, 1)
    """
    mono = np.asarray(to_mono(waveform), dtype=np.float64)
    length = 1 << int(np.ceil(np.log2(_FRAME_S * sample_rate)))
    hop = length // 2
    if mono.shape[0] < length:
        return BirdActivity(0.0, (), 0.0)
    frames = np.lib.stride_tricks.sliding_window_view(mono, length)[::hop] * np.hanning(length)
    freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
    inside = (freqs >= band_hz[0]) & (freqs <= min(band_hz[1], sample_rate / 2))
    power = (np.abs(np.fft.rfft(frames, axis=1)[:, inside]) ** 2).sum(axis=1)
    smooth = max(1, int(round(_SMOOTH_S * sample_rate / hop)))
    level = 10 * np.log10(np.convolve(power, np.ones(smooth) / smooth, mode="same") + 1e-20)
    peak = int(np.argmax(level))
    rise = float(level[peak] - np.median(level))
    loud = np.concatenate([[0], (level >= level[peak] - rise / 2).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(loud))  # starts and ends of the loud runs, alternating
    # Frame k covers samples [k hop, k hop + length): a run of frames covers its first start to its last end.
    spans = tuple((start * hop / sample_rate, ((end - 1) * hop + length) / sample_rate)
                  for start, end in zip(edges[::2], edges[1::2]))
    return BirdActivity(rise, spans, (peak * hop + length / 2) / sample_rate)


@dataclass(frozen=True, eq=False)
class Clip:
    """One decoded clip of the dataset, with the engine's views of it (computed once, on first use)."""

    item_id: str
    label: int
    waveform: np.ndarray
    sample_rate: int

    @classmethod
    def load(cls, item):
        """Decode a dataset item (:class:`warblr.lab.dataset.Item`) with the engine."""
        waveform, sample_rate = load_audio(item.path)
        return cls(item.item_id, item.label, waveform, sample_rate)

    @property
    def seconds(self):
        return self.waveform.shape[0] / self.sample_rate

    @property
    def title(self):
        return f"{'bird' if self.label else 'no bird'}: {self.item_id}"

    @cached_property
    def activity(self):
        """:func:`bird_activity` of the clip."""
        return bird_activity(self.waveform, self.sample_rate)

    @property
    def bird_spans(self):
        """``((start, end), ...)`` seconds of the bird's loudest calls; empty for a clip without a bird."""
        return self.activity.spans_s if self.label else ()

    @property
    def where_bird(self):
        """``"; the bird: 3.2-3.9 s, ... (its 1-8 kHz energy 21 dB above the median)"``, or ``""`` without one."""
        if not self.label:
            return ""
        spans = self.bird_spans
        where = (", ".join(f"{start:.2f}-{end:.2f} s" for start, end in spans) if len(spans) <= 3 else
                 f"{len(spans)} calls from {spans[0][0]:.2f} to {spans[-1][1]:.2f} s")
        return (f"; the bird: {where} (its 1-8 kHz energy up to {self.activity.rise_db:.0f} dB above the clip's "
                "median; marked under the figures' time axes)")

    @cached_property
    def mono_16k(self):
        """The clip as VGGish hears it: mono, 16 kHz (warblr's resampler, torchvggish's filter)."""
        return resample(to_mono(self.waveform), self.sample_rate, spec.SAMPLE_RATE)

    @cached_property
    def examples(self):
        """The engine's VGGish examples of the clip, float32 ``[N, 96, 64]``."""
        return waveform_to_examples(self.waveform, self.sample_rate)


def clearest(items, *, candidates=100):
    """The bird clip among the first ``candidates`` of ``items`` whose bird is clearest (largest rise).

    Parameters
    ----------
    items : sequence of warblr.lab.dataset.Item
        Clips with a bird; one that cannot be decoded is passed over.
    candidates : int, keyword-only
        How many to measure (each is decoded, one at a time): the rest are not looked at.

    Returns
    -------
    (Clip, int)
        The clearest clip, and how many were measured.

    Raises
    ------
    AudioError
        Not one of them could be decoded (the last error).
    """
    best, measured, error = None, 0, None
    for item in items[:candidates]:
        try:
            clip = Clip.load(item)
        except AudioError as exc:
            error = exc
            continue
        measured += 1
        if best is None or clip.activity.rise_db > best.activity.rise_db:
            best = clip
    if best is None:
        raise error
    return best, measured


def pretend_stereo(clip, *, delay_s=0.0005, gain=0.5):
    """The clip as a two-microphone recording: itself, and a quieter copy a little later.

    Parameters
    ----------
    clip : Clip
    delay_s : float, keyword-only
        How much later the second microphone hears it.
    gain : float, keyword-only
        How loud it is there.

    Returns
    -------
    np.ndarray
        ``[samples, 2]``.
    """
    mono = clip.waveform if clip.waveform.ndim == 1 else clip.waveform.mean(axis=1)
    delay = int(round(delay_s * clip.sample_rate))
    return np.stack([mono, gain * np.concatenate([np.zeros(delay), mono[:mono.shape[0] - delay]])], axis=1)
