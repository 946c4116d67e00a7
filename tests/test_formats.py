"""The audio-suffix rule of warblr.formats against what libsndfile really writes and reads."""

import numpy as np
import pytest
import soundfile as sf

from warblr import formats

# Containers libsndfile writes here, with the suffix each is saved under (independent of warblr's table).
WRITABLE = {"WAV": "wav", "FLAC": "flac", "OGG": "ogg", "AIFF": "aiff", "AU": "au", "CAF": "caf", "W64": "w64",
            "RF64": "rf64"}


@pytest.mark.parametrize("container", sorted(WRITABLE))
@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_a_file_libsndfile_reads_is_audio_in_any_case(tmp_path, container, case):
    if container not in sf.available_formats():
        pytest.skip(f"this libsndfile has no {container}")
    path = tmp_path / f"clip.{case(WRITABLE[container])}"
    sf.write(path, np.zeros(1600, dtype=np.float32), 16000, format=container)
    assert sf.info(str(path)).frames == 1600  # really readable
    assert formats.is_audio_file(path)
    assert formats.audio_suffix(path) == f".{WRITABLE[container]}"


def test_mp3_and_opus_count_exactly_when_libsndfile_has_them():
    assert (".mp3" in formats.AUDIO_SUFFIXES) == ("MP3" in sf.available_formats())
    assert (".opus" in formats.AUDIO_SUFFIXES) == ("OPUS" in sf.available_subtypes("OGG"))


def test_every_suffix_belongs_to_an_available_format():
    available = sf.available_formats()
    listed = {suffix for name in available for suffix in formats.SUFFIXES_BY_FORMAT.get(name, ())}
    assert formats.AUDIO_SUFFIXES - {".opus"} == listed
    assert all(suffix == suffix.lower() and suffix.startswith(".") for suffix in formats.AUDIO_SUFFIXES)


@pytest.mark.parametrize("name", ["notes.txt", "features.mat", "dump.raw", "frames.htk", "noext", "wav",
                                  "._clip.wav", "__MACOSX/set/._clip.wav", "__MACOSX/clip.wav", "dir.wav/notes"])
def test_not_audio(name):
    assert not formats.is_audio_file(name)
    assert not formats.is_wav_file(name)


def test_wav_rule_is_narrower():
    assert formats.is_wav_file("wav/64486.WAV") and formats.is_wav_file("a/b.wav")
    assert not formats.is_wav_file("clip.flac") and formats.is_audio_file("clip.flac")
    assert formats.WAV_SUFFIX in formats.AUDIO_SUFFIXES
