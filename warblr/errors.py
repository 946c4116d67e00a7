"""The warblr error types.

Every public entry point raises a subclass of :class:`WarblrError` whose
message names the file or argument at fault and what is wrong with it, so a
batch job can report the item and carry on.
"""


class WarblrError(Exception):
    """Base class of every error warblr raises on purpose."""


class AudioError(WarblrError):
    """An audio file or waveform that cannot be turned into examples."""


class AudioFileError(AudioError):
    """A file that is missing, empty, not audio, truncated or unsupported."""


class AudioTooShortError(AudioError):
    """Audio shorter than one 0.96 s VGGish example."""


class InvalidArgumentError(WarblrError, ValueError):
    """An argument of the wrong type, shape or value."""


class WeightsNotFoundError(WarblrError, FileNotFoundError):
    """No VGGish weights could be found or downloaded."""


class DatasetError(WarblrError):
    """A dataset folder or metadata file that cannot be read."""


class BadItemError(DatasetError):
    """One dataset item (a CSV row or an item id) that is unusable."""


class OutputError(WarblrError):
    """An output folder or file that cannot be written (disk full, permissions); finished work is kept."""
