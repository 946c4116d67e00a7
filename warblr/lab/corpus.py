"""The embedded demo corpus: synthetic warblr-like clips, generated offline and seeded.

Each clip is 10 s of 44.1 kHz mono audio, like warblrb10k's. About three in
four hold bird-like vocalisations (FM sweeps, trills, harmonic stacks between
2 and 8 kHz, varied in number, timing and level); every clip has a realistic
background (wind rumble, rain clicks, traffic hum, babble, silence with
hiss), sometimes a second one, sometimes insect stridulation (a tonal
confuser in the bird band), at varied levels and signal-to-noise ratios, so
the detection task is not trivial.

The corpus is written in the warblrb10k layout (``wav/<itemid>.wav`` + a
2018-form metadata CSV) so :func:`warblr.lab.dataset.read_dataset` reads it like
the real thing. It is cached: a ``manifest.json`` holds a hash of the
generator's parameters and the folder is regenerated only when they change.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidArgumentError, OutputError
from ..fileio import atomic_write

__all__ = [
    "GENERATOR_VERSION",
    "DEFAULT_SIZE",
    "BACKGROUNDS",
    "BIRD_BAND_HZ",
    "ClipParts",
    "synthesize_clip",
    "corpus_parameters",
    "make_corpus",
]

#: Bump when the generator's output changes, so cached corpora are rebuilt.
GENERATOR_VERSION = 1
#: Default number of clips of ``warblr demo`` (fits its < 3 min budget on 2 cores).
DEFAULT_SIZE = 200
#: Background kinds; each clip has one main background.
BACKGROUNDS = ("wind", "rain", "traffic", "babble", "hiss")
#: Where the vocalisations live.
BIRD_BAND_HZ = (2000.0, 8000.0)
#: Range of the bird's signal-to-noise ratio in dB (broadband, over the samples where it sings).
SNR_DB = (0.0, 25.0)
#: The bird's SNR in its own 2-8 kHz band, over the samples where it sings, is at least this.
MIN_BAND_SNR_DB = 3.0
#: Number of phrases in a bird clip (low inclusive, high exclusive).
PHRASES_PER_CLIP = (4, 30)
METADATA_NAME = "metadata.csv"
MANIFEST_NAME = "manifest.json"
DATASET_ID = "warblr-synth"
GENERATOR_NAME = "warblr.lab.corpus"


@dataclass
class ClipParts:
    """A synthetic clip kept as its separate parts: ``mixture = background + bird``."""

    background: np.ndarray
    bird: np.ndarray
    sample_rate: int
    has_bird: bool
    info: dict = field(default_factory=dict)

    @property
    def mixture(self):
        return self.background + self.bird


# --------------------------------------------------------------------------- helpers


def _shaped_noise(rng, n, sample_rate, gain):
    """White noise shaped in the frequency domain by ``gain(freqs)``; unit RMS."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    signal = np.fft.irfft(spectrum * gain(freqs), n)
    return signal / (np.sqrt(np.mean(signal**2)) + 1e-20)


def _band_filter(signal, sample_rate, low, high):
    """Brick-wall band-pass in the frequency domain."""
    spectrum = np.fft.rfft(signal)
    freqs = np.fft.rfftfreq(signal.shape[0], 1.0 / sample_rate)
    spectrum[(freqs < low) | (freqs > high)] = 0.0
    return np.fft.irfft(spectrum, signal.shape[0])


def _smooth_envelope(rng, n, sample_rate, rate_hz, depth):
    """A slowly varying positive envelope (log-normal random walk at ``rate_hz``)."""
    knots = max(2, int(n / sample_rate * rate_hz) + 2)
    values = rng.standard_normal(knots) * depth
    return np.exp(np.interp(np.arange(n), np.linspace(0, n - 1, knots), values))


def _db(value):
    return 10.0 ** (value / 20.0)


# --------------------------------------------------------------------------- backgrounds


def _wind(rng, n, sr):
    cutoff = rng.uniform(80, 400)
    rumble = _shaped_noise(rng, n, sr, lambda f: 1.0 / (1.0 + (f / cutoff) ** 2))
    return rumble * _smooth_envelope(rng, n, sr, rng.uniform(0.3, 1.5), rng.uniform(0.3, 0.8))


def _rain(rng, n, sr):
    from scipy.signal import oaconvolve  # lazy: scipy.signal costs ~0.6 s on every `warblr --help`

    bed = _shaped_noise(rng, n, sr, lambda f: np.where(f > 300, 1.0, 0.0) / np.sqrt(1 + f / 4000))
    clicks = np.zeros(n)
    count = rng.poisson(rng.uniform(20, 250) * n / sr)
    clicks[rng.integers(0, n, count)] = rng.pareto(2.5, count) + 0.2
    decay = np.exp(-np.arange(int(0.004 * sr)) / (rng.uniform(0.0003, 0.0015) * sr))
    drops = oaconvolve(clicks, decay * rng.standard_normal(decay.shape[0]), mode="same")
    drops = _band_filter(drops, sr, rng.uniform(800, 2500), rng.uniform(9000, 16000))
    drops /= np.sqrt(np.mean(drops**2)) + 1e-20
    return 0.5 * bed + drops


def _traffic(rng, n, sr):
    t = np.arange(n) / sr
    f0 = rng.uniform(25, 60) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    hum = sum(np.sin(h * phase + rng.uniform(0, 6)) / h for h in range(1, 9))
    cutoff = rng.uniform(600, 2500)
    roar = _shaped_noise(rng, n, sr, lambda f: 1.0 / np.sqrt(1.0 + (f / cutoff) ** 4))
    swell = np.full(n, 0.3)
    for _ in range(rng.integers(1, 5)):  # cars passing by
        centre, width = rng.uniform(0, t[-1]), rng.uniform(0.8, 3.0)
        swell += rng.uniform(0.5, 2.0) * np.exp(-0.5 * ((t - centre) / width) ** 2)
    return (0.4 * hum / np.sqrt(np.mean(hum**2)) + roar) * swell


def _babble(rng, n, sr):
    from scipy.signal import oaconvolve

    t = np.arange(n) / sr
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    total = np.zeros(n)
    for _ in range(rng.integers(3, 9)):
        f0 = rng.uniform(90, 250) * np.exp(0.15 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t + rng.uniform(0, 6)))
        buzz = 2.0 * ((np.cumsum(f0) / sr + rng.uniform()) % 1.0) - 1.0  # sawtooth: all harmonics
        formants = sum(np.exp(-0.5 * ((freqs - fc) / bw) ** 2) for fc, bw in
                       ((rng.uniform(300, 900), 120), (rng.uniform(900, 2300), 180), (rng.uniform(2300, 3300), 250)))
        voiced = np.fft.irfft(np.fft.rfft(buzz) * formants * (freqs < 5000), n)
        syllables = (_smooth_envelope(rng, n, sr, rng.uniform(3, 6), 1.5) > rng.uniform(0.8, 1.5)).astype(float)
        syllables = oaconvolve(syllables, np.hanning(int(0.03 * sr)) / (0.015 * sr), mode="same")
        total += voiced / (np.sqrt(np.mean(voiced**2)) + 1e-20) * syllables * rng.uniform(0.3, 1.0)
    return total


def _hiss(rng, n, sr):
    return _shaped_noise(rng, n, sr, lambda f: np.ones_like(f))


def _insects(rng, n, sr):
    """Cricket-like stridulation: a pulsed tone in the bird band (a label-free confuser)."""
    t = np.arange(n) / sr
    carrier = np.sin(2 * np.pi * rng.uniform(3500, 7000) * t)
    pulses = (np.sin(2 * np.pi * rng.uniform(15, 50) * t) > rng.uniform(0.0, 0.6)).astype(float)
    chirps = (np.sin(2 * np.pi * rng.uniform(0.5, 3.0) * t) > rng.uniform(-0.5, 0.5)).astype(float)
    return carrier * pulses * chirps


_BACKGROUND_MAKERS = {"wind": _wind, "rain": _rain, "traffic": _traffic, "babble": _babble, "hiss": _hiss}
# Typical RMS level (dBFS) of each background kind, varied +-8 dB per clip.
_BACKGROUND_LEVEL_DB = {"wind": -40.0, "rain": -44.0, "traffic": -42.0, "babble": -46.0, "hiss": -62.0}


# --------------------------------------------------------------------------- vocalisations


def _tone(freq, sr, envelope, harmonics=(1.0,)):
    phase = 2 * np.pi * np.cumsum(freq) / sr
    return envelope * sum(a * np.sin((h + 1) * phase) for h, a in enumerate(harmonics)
                          if (h + 1) * freq.max() < BIRD_BAND_HZ[1])


def _sweep(rng, sr, low, high):
    duration = rng.uniform(0.05, 0.4)
    m = int(duration * sr)
    start, stop = rng.uniform(low, high, size=2)
    freq = start + (stop - start) * np.linspace(0, 1, m) ** rng.uniform(0.5, 2.0)
    return _tone(freq, sr, np.hanning(m) ** rng.uniform(0.5, 2), (1.0, rng.uniform(0, 0.3)))


def _trill(rng, sr, low, high):
    note = int(rng.uniform(0.015, 0.05) * sr)
    gap = int(rng.uniform(0.01, 0.08) * sr)
    top = rng.uniform((low + high) / 2, high)
    bottom = rng.uniform(low, top)
    one = np.concatenate([_tone(np.linspace(top, bottom, note), sr, np.hanning(note)), np.zeros(gap)])
    return np.tile(one, rng.integers(4, 25))


def _stack(rng, sr, low, high):
    m = int(rng.uniform(0.1, 0.6) * sr)
    t = np.arange(m) / sr
    depth = min(rng.uniform(50, 300), (high - low) / 2)
    f0 = rng.uniform(low + depth, high - depth + 1) + depth * np.sin(2 * np.pi * rng.uniform(5, 30) * t)
    return _tone(f0, sr, np.hanning(m), (1.0, rng.uniform(0.2, 0.7), rng.uniform(0.05, 0.4)))


_PHRASES = (_sweep, _trill, _stack)


def _song(rng, n, sr):
    """A bird's song: 1-3 phrase types in the bird's own frequency range, repeated at random times.

    Returns the signal and the sung spans (sample ranges), sorted.
    """
    width = rng.uniform(1500, 4500)
    low = rng.uniform(BIRD_BAND_HZ[0], BIRD_BAND_HZ[1] - width)
    motifs = [_PHRASES[rng.integers(len(_PHRASES))](rng, sr, low, low + width)[: n // 2]
              for _ in range(rng.integers(1, 4))]
    song = np.zeros(n)
    spans = []
    for _ in range(rng.integers(*PHRASES_PER_CLIP)):
        phrase = motifs[rng.integers(len(motifs))]
        start = int(rng.integers(0, n - phrase.shape[0]))
        song[start:start + phrase.shape[0]] += phrase * _db(rng.uniform(-6, 0))
        spans.append((start, start + phrase.shape[0]))
    return song, sorted(spans)


# --------------------------------------------------------------------------- clips


def synthesize_clip(*, has_bird, seed, duration=10.0, sample_rate=44100, snr_db=SNR_DB):
    """Generate one synthetic clip, keeping its background and bird parts apart.

    Parameters
    ----------
    has_bird : bool, keyword-only
    seed : int or np.random.SeedSequence, keyword-only
        Everything about the clip follows from it.
    duration : float, keyword-only
        Seconds.
    sample_rate : int, keyword-only
        Hz; at least 16000 so the 2-8 kHz band fits.
    snr_db : (float, float), keyword-only
        Range of the bird's broadband signal-to-noise ratio over the samples
        where it sings; raised when needed so that its SNR in the 2-8 kHz band
        is at least :data:`MIN_BAND_SNR_DB`.

    Returns
    -------
    ClipParts
        ``background`` and ``bird`` float64 ``[samples]`` (``bird`` all zeros
        when ``has_bird`` is false); ``info`` names the backgrounds, the SNRs
        (``snr_db`` broadband, ``band_snr_db`` in 2-8 kHz) and the sung spans.

    Examples
    --------
    >>> parts = synthesize_clip(has_bird=True, seed=3, duration=2.0, sample_rate=16000)
    >>> parts.mixture.shape, parts.info["snr_db"] > 0
    ((32000,), True)
    """
    if sample_rate < 2 * BIRD_BAND_HZ[1]:
        raise InvalidArgumentError(f"sample_rate must be at least {2 * BIRD_BAND_HZ[1]:.0f} Hz, got {sample_rate}")
    if duration < 1.0:
        raise InvalidArgumentError(f"duration must be at least 1 s, got {duration}")
    rng = np.random.default_rng(seed)
    n, sr = int(round(duration * sample_rate)), int(sample_rate)
    kinds = [BACKGROUNDS[rng.integers(len(BACKGROUNDS))]]
    if rng.random() < 0.35:
        kinds.append(BACKGROUNDS[rng.integers(len(BACKGROUNDS))])
    background = np.zeros(n)
    for i, kind in enumerate(kinds):
        level = _BACKGROUND_LEVEL_DB[kind] + rng.uniform(-5, 5) - 8.0 * i
        background += _BACKGROUND_MAKERS[kind](rng, n, sr) * _db(level)
    insects = rng.random() < 0.25
    if insects:
        kinds.append("insects")
        background += _insects(rng, n, sr) * _db(rng.uniform(-60, -40))
    background += _hiss(rng, n, sr) * _db(rng.uniform(-80, -70))  # microphone self-noise
    info = {"backgrounds": kinds, "snr_db": None, "spans": []}
    bird = np.zeros(n)
    if has_bird:
        song, spans = _song(rng, n, sr)
        sung = np.zeros(n, dtype=bool)
        for start, stop in spans:
            sung[start:stop] = True
        level = rng.uniform(*snr_db)  # broadband SNR over the sung samples
        scale = np.sqrt(np.mean(background[sung] ** 2) / (np.mean(song[sung] ** 2) + 1e-30)) * _db(level)
        in_band_bg = np.mean(_band_filter(background, sr, *BIRD_BAND_HZ)[sung] ** 2)
        in_band_song = np.mean(_band_filter(song, sr, *BIRD_BAND_HZ)[sung] ** 2)
        band_snr = 10 * np.log10(scale**2 * in_band_song / (in_band_bg + 1e-30))
        if band_snr < MIN_BAND_SNR_DB:  # a bird clip's bird always stands out in its own band
            scale *= _db(MIN_BAND_SNR_DB - band_snr)
            band_snr = MIN_BAND_SNR_DB
        bird = song * scale
        snr = 10 * np.log10(np.mean(bird[sung] ** 2) / (np.mean(background[sung] ** 2) + 1e-30))
        info.update(snr_db=float(snr), band_snr_db=float(band_snr), spans=spans)
    peak = np.max(np.abs(background + bird))
    if peak > 0.9:  # keep clear of clipping; scale both parts alike
        background, bird = background * (0.9 / peak), bird * (0.9 / peak)
    return ClipParts(background=background, bird=bird, sample_rate=sr, has_bird=bool(has_bird), info=info)


# --------------------------------------------------------------------------- the corpus on disk


def corpus_parameters(*, n_clips=DEFAULT_SIZE, seed=0, duration=10.0, sample_rate=44100, bird_fraction=0.75):
    """The parameters that define a corpus (hashed into its manifest).

    Returns
    -------
    dict
    """
    if isinstance(n_clips, bool) or not isinstance(n_clips, (int, np.integer)) or n_clips < 2:
        raise InvalidArgumentError(f"n_clips must be an integer >= 2, got {n_clips!r}")
    if not 0.0 < bird_fraction < 1.0:
        raise InvalidArgumentError(f"bird_fraction must be between 0 and 1, got {bird_fraction!r}")
    return {"generator_version": GENERATOR_VERSION, "n_clips": int(n_clips), "seed": int(seed),
            "duration": float(duration), "sample_rate": int(sample_rate), "bird_fraction": float(bird_fraction),
            "snr_db": list(SNR_DB), "min_band_snr_db": MIN_BAND_SNR_DB, "phrases": list(PHRASES_PER_CLIP)}


def _parameters_hash(params):
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def _plan(params):
    """Item ids, labels and per-clip seeds, all from the corpus seed."""
    n = params["n_clips"]
    root_seq = np.random.SeedSequence(params["seed"])
    plan_seq, *clip_seqs = root_seq.spawn(n + 1)
    rng = np.random.default_rng(plan_seq)
    labels = np.zeros(n, dtype=int)
    labels[: int(round(params["bird_fraction"] * n))] = 1
    labels = rng.permutation(labels)
    ids = [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n)]
    return ids, labels, clip_seqs


def _read_manifest(root):
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("generator") == GENERATOR_NAME else None


def _cached(root, digest):
    manifest = _read_manifest(root)
    if manifest is None or manifest.get("hash") != digest:
        return False
    files = manifest.get("files", {})
    return bool(files) and all((root / name).is_file() and (root / name).stat().st_size == size
                               for name, size in files.items())


def _write_clip(task):
    """Generate one clip and write it atomically; returns its relative name and size."""
    import soundfile as sf

    root, item_id, label, seq, duration, sample_rate = task
    clip = synthesize_clip(has_bird=bool(label), seed=seq, duration=duration, sample_rate=sample_rate)
    name = f"wav/{item_id}.wav"
    atomic_write(root / name, lambda handle: sf.write(handle, clip.mixture, sample_rate, subtype="PCM_16",
                                                      format="WAV"))
    return name, (root / name).stat().st_size


def make_corpus(root, *, n_clips=DEFAULT_SIZE, seed=0, duration=10.0, sample_rate=44100,
                bird_fraction=0.75, progress=False):
    """Write (or reuse) the synthetic corpus in the warblrb10k layout.

    Parameters
    ----------
    root : str or os.PathLike
        Folder to hold ``wav/<itemid>.wav``, ``metadata.csv`` (2018 form) and
        ``manifest.json``. Reused as it is when the manifest's parameter
        hash matches and every file is there; otherwise rebuilt.
    n_clips, seed, duration, sample_rate, bird_fraction : keyword-only
        See :func:`corpus_parameters`.
    progress : bool, keyword-only
        Show a tqdm progress bar while generating.

    Returns
    -------
    (Path, bool)
        The folder, and whether it was (re)generated.

    Raises
    ------
    OutputError
        ``root`` cannot be written, or holds files that are not a warblr
        demo corpus (never overwritten).

    Examples
    --------
    >>> import tempfile
    >>> folder, made = make_corpus(tempfile.mkdtemp(), n_clips=4, duration=1.0, sample_rate=16000)
    >>> made, sorted(p.name for p in folder.iterdir())
    (True, ['manifest.json', 'metadata.csv', 'wav'])
    """
    params = corpus_parameters(n_clips=n_clips, seed=seed, duration=duration, sample_rate=sample_rate,
                               bird_fraction=bird_fraction)
    digest = _parameters_hash(params)
    root = Path(os.fspath(root))
    if _cached(root, digest):
        return root, False
    if root.is_dir() and any(root.iterdir()) and _read_manifest(root) is None:
        # Never delete files that a previous make_corpus did not write.
        raise OutputError(f"{root}: not empty and not a warblr demo corpus (no {MANIFEST_NAME}); "
                          "refusing to overwrite it, choose another folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        in_progress = {"generator": GENERATOR_NAME, "hash": None}
        atomic_write(root / MANIFEST_NAME, lambda handle: handle.write(json.dumps(in_progress)), mode="w")
        if (root / "wav").is_dir():
            shutil.rmtree(root / "wav")
        (root / "wav").mkdir(parents=True, exist_ok=True)
        ids, labels, seqs = _plan(params)
        tasks = [(root, i, label, seq, duration, sample_rate) for i, label, seq in zip(ids, labels, seqs)]
        done = map(_write_clip, tasks)
        if progress:
            from tqdm import tqdm

            done = tqdm(done, total=len(tasks), desc="generating demo corpus", unit="clip")
        files = dict(done)
        rows = "".join(f"{i},{DATASET_ID},{label}\n" for i, label in zip(ids, labels))
        atomic_write(root / METADATA_NAME, lambda handle: handle.write("itemid,datasetid,hasbird\n" + rows), mode="w")
        files[METADATA_NAME] = (root / METADATA_NAME).stat().st_size
        manifest = {"generator": GENERATOR_NAME, "hash": digest, "parameters": params, "files": files}
        atomic_write(root / MANIFEST_NAME, lambda handle: handle.write(json.dumps(manifest, indent=1)), mode="w")
    except OSError as exc:
        raise OutputError(f"{root}: cannot write the demo corpus ({exc.strerror or exc})") from exc
    return root, True
