"""warblr: VGGish features and embeddings for bird-audio detection, and a lab to learn them.

The numpy reference (:mod:`warblr.features`) matches torchvggish; the batched
engine (:mod:`warblr.embed`) runs it fast on CPU or GPU.
"""

from .audio import load_audio, to_mono
from .resample import resample
from .errors import (AudioError, AudioFileError, AudioTooShortError, BadItemError, DatasetError, OutputError,
                     InvalidArgumentError, WarblrError, WeightsNotFoundError)
from .features import log_mel_spectrogram, waveform_to_examples, wavfile_to_examples

__version__ = "0.1.0"

_LAZY = {  # torch-heavy names import on first use, so `warblr --help` stays quick
    "load_vggish": "model", "VGGish": "model", "Postprocessor": "model", "load_pca_params": "model",
    "batch_examples": "embed", "batch_embeddings": "embed", "embed_examples": "embed", "load_clips": "embed",
    "iter_file_examples": "stream",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'warblr' has no attribute {name!r}")


__all__ = [
    "load_audio", "resample", "to_mono", "log_mel_spectrogram", "waveform_to_examples",
    "wavfile_to_examples", "WarblrError", "AudioError", "AudioFileError", "AudioTooShortError",
    "InvalidArgumentError", "WeightsNotFoundError", "DatasetError", "BadItemError", "OutputError", *_LAZY,
]
