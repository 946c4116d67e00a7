"""Which file names are audio: the one rule for audio-file suffixes that ``fetch``, ``dataset`` and ``embed`` share.

A file is audio when its suffix, compared case-insensitively, belongs to a
container format the installed libsndfile reads (:func:`soundfile.available_formats`,
so MP3 counts only where libsndfile 1.1 or later was built with it, Opus only
where its Ogg supports it). Header-less and non-audio containers libsndfile
also opens (RAW, MATLAB ``.mat``, HTK feature files, the Akai ``.mpc``
sampler format that shares Musepack's suffix) are left out: a folder of
recordings would otherwise pick up data files that only decode by accident.
macOS "AppleDouble" resource forks (``._name.wav``, anything under
``__MACOSX/``) are never audio whatever their suffix. The DCASE bird sets
``warblr fetch`` installs are WAV only: :func:`is_wav_file` is that narrower
rule, and :data:`WAV_SUFFIX` the suffix their ``wav/<itemid>.wav`` layout uses.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath

import soundfile

__all__ = ["SUFFIXES_BY_FORMAT", "AUDIO_SUFFIXES", "WAV_SUFFIX", "audio_suffix", "is_audio_file", "is_wav_file"]

#: libsndfile's container formats (the keys of :func:`soundfile.available_formats`) that hold
#: recordings, with the file suffixes each is saved under (lower case, with the dot).
SUFFIXES_BY_FORMAT = {
    "WAV": (".wav", ".wave"),
    "WAVEX": (".wav",),
    "RF64": (".rf64",),
    "W64": (".w64",),
    "AIFF": (".aiff", ".aif", ".aifc"),
    "AU": (".au", ".snd"),
    "CAF": (".caf",),
    "FLAC": (".flac",),
    "OGG": (".ogg", ".oga"),
    "MP3": (".mp3",),
    "NIST": (".nist", ".sph"),
    "IRCAM": (".sf", ".ircam"),
    "VOC": (".voc",),
    "SVX": (".8svx", ".16svx", ".svx"),
    "PAF": (".paf",),
    "PVF": (".pvf",),
    "SD2": (".sd2",),
    "AVR": (".avr",),
    "WVE": (".wve",),
}

#: The suffix of every file of a DCASE-style dataset folder (``wav/<itemid>.wav``).
WAV_SUFFIX = ".wav"


def _readable_suffixes():
    available = soundfile.available_formats()
    suffixes = {suffix for name, names in SUFFIXES_BY_FORMAT.items() if name in available for suffix in names}
    if "OGG" in available and "OPUS" in soundfile.available_subtypes("OGG"):
        suffixes.add(".opus")  # Ogg Opus files carry their own suffix
    return frozenset(suffixes)


#: Every suffix (lower case, with the dot) of a format the installed libsndfile reads.
AUDIO_SUFFIXES = _readable_suffixes()


def _parts(path):
    """The path's components, whether a local path or a zip member name (always ``/``-separated)."""
    text = os.fspath(path)
    return PurePosixPath(text.replace(os.sep, "/") if os.sep != "/" else text).parts


def audio_suffix(path):
    """The lower-case suffix of ``path`` when it names an audio file (see the module docstring), else None.

    Parameters
    ----------
    path : str or os.PathLike
        A file path or an archive member name; only the name is looked at.

    Returns
    -------
    str or None

    Examples
    --------
    >>> audio_suffix("field/Dawn.FLAC"), audio_suffix("notes.txt"), audio_suffix("__MACOSX/._a.wav")
    ('.flac', None, None)
    """
    parts = _parts(path)
    if not parts or "__MACOSX" in parts[:-1] or parts[-1].startswith("._"):
        return None
    suffix = PurePosixPath(parts[-1]).suffix.lower()
    return suffix if suffix in AUDIO_SUFFIXES else None


def is_audio_file(path):
    """Whether ``path`` names a file in a format the installed libsndfile reads (case-insensitive suffix).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    bool

    Examples
    --------
    >>> is_audio_file("a.wav"), is_audio_file("B.Ogg"), is_audio_file("c.mat"), is_audio_file("._d.wav")
    (True, True, False, False)
    """
    return audio_suffix(path) is not None


def is_wav_file(path):
    """:func:`is_audio_file` narrowed to WAV (``.wav`` in any case): the files a DCASE bird set is made of.

    Examples
    --------
    >>> is_wav_file("wav/64486.WAV"), is_wav_file("x.flac")
    (True, False)
    """
    return audio_suffix(path) == WAV_SUFFIX
