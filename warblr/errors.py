"""The warblr error types.

Every public entry point raises a subclass of :class:`WarblrError` whose
message names the file or argument at fault and what is wrong with it, so a
batch job can report the item and carry on. What a caller may need to act on
is an attribute, never something to parse out of the message:

========================  ==========================================================
error                     attributes (``None`` when not known)
========================  ==========================================================
InvalidArgumentError      ``parameter``: the library's name of the argument
AudioError and subtypes   ``path``: the file; ``clip``: index in a batch of clips;
                          ``reason``: the message without the file or clip prefix
WeightsNotFoundError      ``searched``: the locations looked at, in order
DatasetError, BadItem...  ``path``; ``item_id`` and ``line`` for one bad item;
                          ``parameter``: the argument that named the folder or file
OutputError               ``path``: what could not be written; ``kept``: finished items kept
FetchError                ``url``: what was requested (and DatasetError's ``path``)
ChecksumError             ``algorithm``, ``expected``, ``actual`` of the failed check
========================  ==========================================================
"""


class WarblrError(Exception):
    """Base class of every error warblr raises on purpose.

    Keyword arguments become attributes (see the module docstring).

    Examples
    --------
    >>> error = InvalidArgumentError("batch_size: expected an integer >= 1, got 0", parameter="batch_size")
    >>> error.parameter
    'batch_size'
    """

    #: Attributes every instance of the class has (``None`` unless given).
    fields = ()

    def __init__(self, message, **attributes):
        super().__init__(message)
        unknown = set(attributes) - set(self.fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no attribute(s) {sorted(unknown)}")
        for name in self.fields:
            setattr(self, name, attributes.get(name))

    def __reduce__(self):  # keep the attributes across processes (Ray, multiprocessing)
        return _rebuild, (type(self), str(self), {name: getattr(self, name) for name in self.fields})


def _rebuild(cls, message, attributes):
    return cls(message, **attributes)


class AudioError(WarblrError):
    """An audio file or waveform that cannot be turned into examples."""

    fields = ("path", "clip", "reason")


class AudioFileError(AudioError):
    """A file that is missing, empty, not audio, truncated or unsupported."""


class AudioTooShortError(AudioError):
    """Audio shorter than one 0.96 s VGGish example."""


class InvalidArgumentError(WarblrError, ValueError):
    """An argument of the wrong type, shape or value."""

    fields = ("parameter", "reason")


class WeightsNotFoundError(WarblrError, FileNotFoundError):
    """No VGGish weights could be found or downloaded."""

    fields = ("searched",)


class DatasetError(WarblrError):
    """A dataset folder or metadata file that cannot be read."""

    fields = ("path", "item_id", "line", "parameter")


class BadItemError(DatasetError):
    """One dataset item (a CSV row or an item id) that is unusable."""


class OutputError(WarblrError):
    """An output folder or file that cannot be written (disk full, permissions); finished work is kept."""

    fields = ("path", "kept")


class SubmissionError(WarblrError):
    """A submission refused at intake (a link, a device, a FIFO, too many, too deep or too large files).

    ``path`` is the offending file relative to the submission, ``reason`` what is wrong with it.
    """

    fields = ("path", "reason")


class FetchError(DatasetError):
    """A file that could not be downloaded: no network, a host error, a dropped connection.

    ``url`` is what was requested and ``path`` the file being written (its
    ``.part`` holds the bytes kept for a resume).
    """

    fields = DatasetError.fields + ("url",)


class ChecksumError(FetchError):
    """A download whose size or digest is not the published one; the bad file was deleted.

    ``algorithm`` is ``"size"`` or a :mod:`hashlib` name, ``expected`` and
    ``actual`` the two values.
    """

    fields = FetchError.fields + ("algorithm", "expected", "actual")
