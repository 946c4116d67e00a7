"""Plumbing for the lab notebook (``exercises/lab.ipynb``), so that its cells stay short.

The notebook runs the student's own functions -- the implementation named by
``$WARBLR_IMPL``: ``exercises`` (default), ``solutions`` or a folder -- on a
dataset, and shows each result beside the warblr engine's, an independent
implementation of the same VGGish spec. One job per module:
:mod:`~.settings` (the environment variables), :mod:`~.live` (the student's
modules, imported again when they change), :mod:`~.guard` (a cell never
stops the notebook), :mod:`~.session` (:class:`Lab`: the state cells share),
:mod:`~.clips` (the example clips and where the bird is), :mod:`~.checks`
(the ✓/✗ lines and the AUC table), :mod:`~.figures` (one side-by-side helper
for every figure), :mod:`~.librosa_view` (VGGish against librosa) and
:mod:`~.display` (PNG, Markdown, audio, progress). Cells use the names
re-exported here: ``from warblr.lab import notebook as nb``.
"""

from .checks import EMBEDDING_FEATURES, LOGMEL_FEATURES, auc_table, compare, reference_pool
from .clips import Clip, bird_activity, pretend_stereo
from .display import PANELS_KEY, listen, progress
from .figures import (pca_scatter, show_embeddings, show_examples, show_log_mel, show_mel_matrix, show_postprocessed,
                      show_resampling, show_stft)
from .guard import Skipped, Unfinished, WrongResultError
from .librosa_view import compare_with_librosa
from .live import LiveImpl
from .session import Features, Lab
from .settings import DATA_ENV, DEFAULT_LIMIT, IMPL_ENV, LIMIT_ENV, default_corpus_dir, find_lab_root, parse_limit

__all__ = [
    "IMPL_ENV", "DATA_ENV", "LIMIT_ENV", "DEFAULT_LIMIT", "LOGMEL_FEATURES", "EMBEDDING_FEATURES", "PANELS_KEY",
    "WrongResultError", "Skipped", "Unfinished", "Clip", "Features", "LiveImpl", "Lab",
    "parse_limit", "find_lab_root", "default_corpus_dir", "progress", "bird_activity",
    "compare", "listen", "pretend_stereo", "show_resampling", "show_stft", "show_mel_matrix", "show_log_mel",
    "show_examples", "compare_with_librosa", "show_embeddings", "show_postprocessed", "reference_pool",
    "pca_scatter", "auc_table",
]
