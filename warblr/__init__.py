"""warblr: VGGish features and embeddings for bird-audio detection, and a lab to learn them.

The numpy reference (:mod:`warblr.features`) matches torchvggish; the batched
engine (:mod:`warblr.embed`) runs it fast on CPU or GPU.
"""

import os as _os

# oneMKL (inside torch) reads these at its first call. Unpinned, it may pick its code branch and
# thread count per call (MKL_VERBOSE shows "CNR:OFF Dyn:1"), so a batch could round differently
# from one run to the next; pinned, results do not depend on thread timing or thread count. The
# fastest branch of this CPU is kept (AUTO). A value the user set wins.
_os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
_os.environ.setdefault("MKL_DYNAMIC", "FALSE")

from .audio import load_audio, to_mono  # noqa: E402
from .resample import resample
from .errors import (AudioError, AudioFileError, AudioTooShortError, BadItemError, DatasetError, OutputError,
                     InvalidArgumentError, WarblrError, WeightsNotFoundError)
from .features import log_mel_spectrogram, waveform_to_examples, wavfile_to_examples

__version__ = "0.1.0"

_LAZY = {  # torch-heavy names import on first use, so `warblr --help` stays quick
    "load_vggish": "weights", "VGGish": "model", "Postprocessor": "postprocess", "load_pca_params": "postprocess",
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
