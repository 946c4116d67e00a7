"""Plumbing for the lab notebook (``exercises/lab.ipynb``), so that its cells stay short.

The notebook runs the student's own functions -- the implementation named by
``$WARBLR_IMPL``, with the meaning of ``--impl``: ``exercises`` (default),
``solutions`` or a folder -- on a dataset, and shows each result beside the
warblr engine's, an independent implementation of the same VGGish spec.

* :class:`Lab` reads the settings (``$WARBLR_IMPL``, ``$WARBLR_DATA``,
  ``$WARBLR_LIMIT``), imports the student's modules (again whenever one of
  their files changes, so "edit, re-run the cell" works), picks the dataset
  and holds the results that cells hand to later cells (``lab.model``).
* :meth:`Lab.step` guards a cell: a function that still raises
  ``NotImplementedError`` prints one "not attempted yet" line, any other
  error in the student's code prints one line naming the file and line, and a
  later cell that needs a missing result prints one "skipped" line naming
  the unfinished function. A cell never stops the notebook with a traceback.
* :func:`compare` and the ``show_*`` helpers put the student's result and
  the reference side by side, so a wrong answer is visible, never hidden.
"""

from __future__ import annotations

import importlib
import io
import math
import os
import sys
import traceback
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .. import load_audio, resample, spec, to_mono, waveform_to_examples
from ..errors import AudioError, DatasetError, InvalidArgumentError, WarblrError, WeightsNotFoundError
from ..grading.impl import (EXERCISE_MODULES, ExerciseNamespace, GradedImpl, ImplImportError, describe_exception,
                            resolve_impl, student_file)
from .corpus import DEFAULT_SIZE as DEMO_CORPUS_SIZE, make_corpus
from .dataset import read_dataset, stratified_subset

__all__ = [
    "IMPL_ENV", "DATA_ENV", "LIMIT_ENV", "DEFAULT_LIMIT", "LOGMEL_FEATURES", "EMBEDDING_FEATURES",
    "WrongResultError", "Skipped", "Unfinished", "Clip", "Features", "LiveImpl", "Lab",
    "parse_limit", "find_lab_root", "default_corpus_dir", "progress",
    "compare", "listen", "pretend_stereo", "show_resampling", "show_stft", "show_mel_matrix", "show_log_mel",
    "show_examples", "compare_with_librosa", "show_embeddings", "show_postprocessed", "reference_pool",
    "pca_scatter", "auc_table",
]

IMPL_ENV = "WARBLR_IMPL"
DATA_ENV = "WARBLR_DATA"
LIMIT_ENV = "WARBLR_LIMIT"
#: Clips used by default: a laptop runs the whole notebook in minutes.
DEFAULT_LIMIT = 400
#: Values of ``$WARBLR_LIMIT`` that mean "every clip".
ALL_CLIPS = ("all", "0")
#: PCA size and folds of the classifier in the AUC table (fewer when the dataset is small).
PCA_COMPONENTS = 16
FOLDS = 5
SEED = 0
LOGMEL_FEATURES = "log-mel (pooled)"
EMBEDDING_FEATURES = "VGGish embedding (pooled)"

_TRACEBACK_TIP = " (`raise lab.last_error` in a new cell shows the traceback)"
# Kinds of Unfinished.
NOT_ATTEMPTED, RAISED, WRONG, NOT_IMPORTED, FAILED = "not attempted", "raised", "wrong", "not imported", "failed"


# --------------------------------------------------------------------------- settings


def parse_limit(text):
    """The number of clips ``$WARBLR_LIMIT`` asks for.

    Parameters
    ----------
    text : str or None
        Unset or empty: :data:`DEFAULT_LIMIT`; ``"all"`` or ``"0"``: every
        clip; otherwise a positive whole number.

    Returns
    -------
    int or None
        None means every clip.

    Raises
    ------
    InvalidArgumentError
        Anything else, named.

    Examples
    --------
    >>> parse_limit(None), parse_limit("all"), parse_limit(" 40 ")
    (400, None, 40)
    """
    if text is None or not str(text).strip():
        return DEFAULT_LIMIT
    text = str(text).strip().lower()
    if text in ALL_CLIPS:
        return None
    if not text.isdigit():
        raise InvalidArgumentError(f"{LIMIT_ENV}={text!r}: expected a number of clips, or 'all' for every clip",
                                   parameter=LIMIT_ENV)
    return int(text)


def find_lab_root(start):
    """The folder holding ``exercises/``: ``start`` or the nearest parent that does.

    Jupyter starts a notebook's kernel in the notebook's folder
    (``exercises/``), so the lab root is usually its parent.

    Parameters
    ----------
    start : str or os.PathLike

    Returns
    -------
    pathlib.Path
        Resolved; ``start`` itself when no parent holds ``exercises/``.
    """
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / "exercises").is_dir():
            return folder
    return start


def default_corpus_dir(environ=None):
    """Where the demo corpus is generated: ``$XDG_CACHE_HOME/warblr/demo-corpus`` (``~/.cache`` by default).

    Parameters
    ----------
    environ : mapping, optional
        Default ``os.environ``.

    Returns
    -------
    pathlib.Path
    """
    environ = os.environ if environ is None else environ
    cache = environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "warblr" / "demo-corpus"


def progress(iterable=None, *, total=None, desc=None):
    """A progress bar over clips: a widget in Jupyter when ipywidgets is installed, else text.

    Parameters
    ----------
    iterable : iterable, optional
    total : int, keyword-only
    desc : str, keyword-only

    Returns
    -------
    tqdm.tqdm
    """
    try:
        import ipywidgets  # noqa: F401  (tqdm's notebook bar needs it)
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, unit="clip", leave=True)


# --------------------------------------------------------------------------- the guard


class WrongResultError(WarblrError):
    """A student's function returned something a later step cannot use (wrong type or shape)."""

    fields = ("function", "module")


@dataclass(frozen=True)
class Unfinished:
    """Why a step did not finish: what its cell prints, and what later cells say.

    Attributes
    ----------
    kind : str
        ``"not attempted"``, ``"raised"``, ``"wrong"``, ``"not imported"`` or ``"failed"``.
    function : str or None
        The student's function at fault.
    where : str or None
        Its file (and line), as the student sees it: ``exercises/logmel.py, line 88``.
    detail : str or None
        ``Type: message`` or what is wrong with the result.
    """

    kind: str
    function: str | None = None
    where: str | None = None
    detail: str | None = None

    @property
    def message(self):
        """The line the failing cell prints."""
        if self.kind == NOT_ATTEMPTED:
            return f"not attempted yet: implement `{self.function}` in `{self.where}`, then re-run this cell"
        if self.kind == RAISED:
            return (f"✗ `{self.function}` raised {self.detail} ({self.where}): fix it, then re-run this cell"
                    + _TRACEBACK_TIP)
        if self.kind == WRONG:
            return f"✗ `{self.function}`: {self.detail}; fix it in `{self.where}`, then re-run this cell"
        if self.kind == NOT_IMPORTED:
            return f"✗ {self.detail}; fix it, then re-run this cell"
        return f"✗ this cell failed: {self.detail}" + _TRACEBACK_TIP

    @property
    def cause(self):
        """Why a later cell cannot run, in a few words."""
        if self.kind == NOT_ATTEMPTED:
            return f"`{self.function}` is not attempted yet (implement it in `{self.where}`)"
        if self.kind == RAISED:
            return f"`{self.function}` raised {self.detail.split(':')[0]} ({self.where})"
        if self.kind == WRONG:
            return f"`{self.function}` returned something unusable (`{self.where}`)"
        if self.kind == NOT_IMPORTED:
            return self.detail
        return f"a cell above failed ({self.detail})"


class Skipped(AttributeError):
    """A cell needs a result (``lab.<name>``) that an earlier cell did not make.

    An ``AttributeError``, so ``hasattr(lab, name)`` stays False.
    """

    def __init__(self, name, unfinished=None):
        self.name, self.unfinished = name, unfinished
        super().__init__(self.message)

    @property
    def reason(self):
        """Why the result is missing, in a few words."""
        return "no cell has made it yet" if self.unfinished is None else self.unfinished.cause

    @property
    def message(self):
        if self.unfinished is None:
            return f"skipped: needs `{self.name}`, which no cell has made yet: run the cells above first"
        return f"skipped: needs `{self.name}`, but {self.unfinished.cause}; re-run from there once it is done"


class _Step:
    """The context manager behind :meth:`Lab.step`."""

    def __init__(self, lab, makes):
        self._lab, self._makes = lab, makes

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or not isinstance(exc, Exception):
            return False  # success, or KeyboardInterrupt / SystemExit: not ours to swallow
        lab = self._lab
        object.__setattr__(lab, "_last_error", exc)
        if isinstance(exc, Skipped):
            print(exc.message)
            unfinished = exc.unfinished
        else:
            unfinished = lab.diagnose(exc)
            print(unfinished.message)
        for name in self._makes:  # a stale result from an earlier run must not live on
            lab._results.pop(name, None)
            lab._unfinished[name] = unfinished
        return True


# --------------------------------------------------------------------------- the student's code


class LiveImpl(ExerciseNamespace):
    """The student's package, imported again whenever one of its ``.py`` files changes.

    ``impl.logmel`` is the module ``FOLDER/logmel.py``, imported with
    :class:`warblr.grading.impl.GradedImpl` (so relative imports between
    the four modules work, and a module that cannot be imported raises
    :class:`~warblr.grading.impl.ImplImportError` with the reason).

    Parameters
    ----------
    folder : str or os.PathLike
        The package folder.
    root : str or os.PathLike, keyword-only
        The lab folder: file names are shown relative to it (``exercises/logmel.py``).
    """

    def __init__(self, folder, *, root):
        self.folder = Path(folder).resolve()
        self.root = Path(root).resolve()
        self._graded = None
        self._stamp = None

    def __repr__(self):
        return f"LiveImpl({str(self.folder)!r})"

    def exercise_module(self, name):
        return self._current().module(name)

    def _current(self):
        stamp = self._files_stamp()
        if self._graded is None or stamp != self._stamp:
            self._forget_modules()
            self._graded, self._stamp = GradedImpl(self.folder), stamp
        return self._graded

    def _files_stamp(self):
        files = sorted(self.folder.glob("*.py")) if self.folder.is_dir() else []
        return tuple((path.name, path.stat().st_mtime_ns, path.stat().st_size) for path in files)

    def _forget_modules(self):
        """Drop every imported module that lives in the folder, so the next access reads the files again."""
        folder = str(self.folder)
        for name, module in list(sys.modules.items()):
            paths = [getattr(module, "__file__", None)]
            try:
                paths += list(getattr(module, "__path__", None) or ())
            except TypeError:  # some extension modules have a __path__ that is not a list of folders
                pass
            if any(isinstance(path, str) and (path == folder or Path(path).parent == self.folder) for path in paths):
                del sys.modules[name]
        importlib.invalidate_caches()

    def where(self, filename):
        """``filename`` as the student sees it: relative to the lab root when inside it."""
        path = Path(filename).resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


# --------------------------------------------------------------------------- clips and features


@dataclass(frozen=True, eq=False)
class Clip:
    """One decoded clip of the dataset, with the engine's views of it (computed once, on first use)."""

    item_id: str
    label: int
    waveform: np.ndarray
    sample_rate: int

    @property
    def seconds(self):
        return self.waveform.shape[0] / self.sample_rate

    @property
    def title(self):
        return f"{'bird' if self.label else 'no bird'}: {self.item_id}"

    @cached_property
    def mono_16k(self):
        """The clip as VGGish hears it: mono, 16 kHz (warblr's resampler, torchvggish's filter)."""
        return resample(to_mono(self.waveform), self.sample_rate, spec.SAMPLE_RATE)

    @cached_property
    def examples(self):
        """The engine's VGGish examples of the clip, float32 ``[N, 96, 64]``."""
        return waveform_to_examples(self.waveform, self.sample_rate)


@dataclass
class Features:
    """One vector per clip for each feature set, made with the student's functions.

    Attributes
    ----------
    sets : dict of str to np.ndarray
        Feature-set name to float64 ``[clips, dims]``.
    labels : np.ndarray
        ``[clips]`` 0/1.
    item_ids : list of str
    skipped : list of (str, str)
        Clips left out, with the reason.
    pretrained : bool or None
        Whether the embeddings come from released weights; None without embeddings.
    """

    sets: dict
    labels: np.ndarray
    item_ids: list
    skipped: list = field(default_factory=list)
    pretrained: bool | None = None


# --------------------------------------------------------------------------- the lab


class Lab:
    """The notebook's state: settings, the student's code, the dataset and the results of each step.

    Results are attributes: a cell stores ``lab.model = ...`` inside
    ``with lab.step("model"):``; a later cell reading ``lab.model`` when it is
    missing is skipped with a line saying which function to finish.

    Parameters
    ----------
    impl : str or os.PathLike, keyword-only
        ``"exercises"``, ``"solutions"`` or a package folder (as ``--impl``).
    data : str or os.PathLike, keyword-only
        A warblrb10k-layout folder; None: the demo corpus.
    limit : int or None, keyword-only
        Clips to use: a stratified, seeded sample; None: every clip.
    root : str or os.PathLike, keyword-only
        The lab folder (holding ``exercises/``); default: found from the working folder.
    corpus_dir : str or os.PathLike, keyword-only
        Where the demo corpus is generated (default :func:`default_corpus_dir`).
    corpus_size : int, keyword-only
        Clips in the demo corpus.
    seed : int, keyword-only
        Seed of the sample, the demo corpus and the random weights.

    Raises
    ------
    InvalidArgumentError
        ``impl`` names no folder, or ``limit`` is not a positive integer.
    """

    def __init__(self, *, impl="exercises", data=None, limit=DEFAULT_LIMIT, root=None, corpus_dir=None,
                 corpus_size=DEMO_CORPUS_SIZE, seed=SEED):
        root = find_lab_root(Path.cwd()) if root is None else Path(root).resolve()
        folder = resolve_impl(impl, rootpath=root)
        if not folder.is_dir():
            raise InvalidArgumentError(
                f"{IMPL_ENV}={impl}: no folder {folder} (use 'exercises', 'solutions' or the path of a folder "
                f"holding {', '.join(name + '.py' for name in EXERCISE_MODULES)})", parameter=IMPL_ENV)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidArgumentError(f"limit: expected a positive number of clips or None, got {limit!r}",
                                       parameter="limit")
        own = {"_impl_choice": str(impl), "_impl": LiveImpl(folder, root=root), "_data": data, "_limit": limit,
               "_corpus_dir": Path(corpus_dir) if corpus_dir else default_corpus_dir(), "_corpus_size": corpus_size,
               "_seed": seed, "_results": {}, "_unfinished": {}, "_last_error": None, "_reference": None}
        for name, value in own.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_environment(cls, environ=None, **options):
        """A lab configured by ``$WARBLR_IMPL``, ``$WARBLR_DATA`` and ``$WARBLR_LIMIT``.

        Parameters
        ----------
        environ : mapping, optional
            Default ``os.environ``.
        **options
            Other keyword options of :class:`Lab`.
        """
        environ = os.environ if environ is None else environ
        options.setdefault("corpus_dir", default_corpus_dir(environ))
        return cls(impl=environ.get(IMPL_ENV) or "exercises", data=environ.get(DATA_ENV) or None,
                   limit=parse_limit(environ.get(LIMIT_ENV)), **options)

    # -- results as attributes

    def __setattr__(self, name, value):
        if name.startswith("_") or hasattr(type(self), name):
            raise AttributeError(f"Lab.{name} cannot be set")
        self._results[name] = value
        self._unfinished.pop(name, None)

    def __getattr__(self, name):  # only called when normal lookup fails: a result
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._results:
            return self._results[name]
        raise Skipped(name, self._unfinished.get(name))

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._results))

    def step(self, *makes):
        """Guard one cell: ``with lab.step("model"): lab.model = ...``.

        Parameters
        ----------
        *makes : str
            The results (``lab.<name>``) the cell makes; if the cell does not
            finish, they are marked missing with the reason, so later cells
            that read them are skipped with a line naming what to finish.

        Returns
        -------
        context manager
            Swallows any ``Exception`` raised in the cell and prints one line:
            "not attempted yet: implement `f` in `exercises/m.py` ..." for a
            stub, "✗ `f` raised ..." for an error in the student's code,
            "skipped: needs ..." when an earlier result is missing.
        """
        return _Step(self, makes)

    def optional(self, name):
        """``lab.<name>``, or None with a one-line note when it is missing."""
        try:
            return getattr(self, name)
        except Skipped as exc:
            print(f"note: no `{name}`: {exc.reason}; this cell goes on without it")
            return None

    @property
    def impl(self):
        """The student's modules: ``lab.impl.logmel.mel_matrix(...)`` (:class:`LiveImpl`)."""
        return self._impl

    @property
    def last_error(self):
        """The exception the last unfinished cell swallowed (``raise lab.last_error`` shows its traceback)."""
        return self._last_error

    def diagnose(self, exc):
        """Turn an exception raised in a cell into an :class:`Unfinished`.

        Parameters
        ----------
        exc : Exception

        Returns
        -------
        Unfinished
        """
        if isinstance(exc, ImplImportError):
            return Unfinished(NOT_IMPORTED, detail=str(exc))
        if isinstance(exc, WrongResultError):
            return Unfinished(WRONG, exc.function, self._impl.where(self._impl.folder / f"{exc.module}.py"), str(exc))
        frames = [frame for frame in traceback.extract_tb(exc.__traceback__)
                  if student_file(frame.filename, self._impl.folder)]
        if not frames:
            return Unfinished(FAILED, detail=describe_exception(exc))
        frame = frames[-1]  # the innermost: a stub called by a finished function is the one to implement
        where = self._impl.where(frame.filename)
        if isinstance(exc, NotImplementedError):
            return Unfinished(NOT_ATTEMPTED, frame.name, where)
        return Unfinished(RAISED, frame.name, f"{where}, line {frame.lineno}", describe_exception(exc))

    # -- what the notebook runs on

    def describe(self):
        """Print whose functions run and on which data."""
        choice = self._impl_choice
        print(f"your functions: {self._impl.where(self._impl.folder)}/ ({IMPL_ENV}={choice}; "
              "'exercises', 'solutions' or a folder)")
        data = f"{DATA_ENV}={self._data}" if self._data else f"the demo corpus ({DATA_ENV} is not set)"
        sample = ("every clip" if self._limit is None else
                  f"a stratified sample of at most {self._limit} ({LIMIT_ENV}=all uses every clip)")
        print(f"clips: {data}; {sample}")

    def load_dataset(self):
        """Read the dataset of ``$WARBLR_DATA``, else the demo corpus (generated the first time).

        Prints which, how many clips of each label, and the sample used.

        Returns
        -------
        warblr.lab.dataset.Dataset
            ``items`` holds the sample.

        Raises
        ------
        DatasetError
            ``$WARBLR_DATA`` is not a folder, the dataset cannot be read, or
            it lacks clips of either label.
        """
        if self._data:
            root = Path(self._data).expanduser()
            if not root.is_dir():
                raise DatasetError(f"{DATA_ENV}={root}: not a folder (expected warblrb10k's layout: "
                                   "wav/<itemid>.wav and a metadata CSV)", path=root)
            origin = f"{root} ({DATA_ENV})"
        else:
            root, made = make_corpus(self._corpus_dir, n_clips=self._corpus_size, seed=self._seed, progress=True)
            origin = (f"the embedded demo corpus: {self._corpus_size} synthetic warblrb10k-like clips, "
                      f"{'generated now' if made else 'generated earlier'} in {root} ({DATA_ENV} is not set)")
        dataset = read_dataset(root)
        everything = len(dataset.items)
        if self._limit is not None:
            dataset.items = stratified_subset(dataset.items, self._limit, seed=self._seed)
        labels = dataset.labels
        print(f"dataset: {origin}")
        print(f"{everything} usable clips; using "
              + ("all of them" if len(labels) == everything else
                 f"a stratified sample of {len(labels)} ({LIMIT_ENV}={self._limit}; {LIMIT_ENV}=all uses every clip)")
              + f": {int(labels.sum())} with a bird, {int((labels == 0).sum())} without")
        if dataset.problems:
            first = dataset.problems[0]
            print(f"{len(dataset.problems)} rows or files left out (first: {first.item_id}: {first.reason})")
        if len(set(labels.tolist())) < 2:
            raise DatasetError(f"{root}: the clips used have only one label; the lab needs clips with and without "
                               "a bird", path=root)
        return dataset

    def example_clips(self):
        """The first clip with a bird and the first without, decoded by the engine.

        Returns
        -------
        (Clip, Clip)
            Needs ``lab.dataset``.
        """
        clips = []
        for label in (1, 0):
            item = next(item for item in self.dataset.items if item.label == label)
            waveform, sample_rate = load_audio(item.path)
            clips.append(Clip(item.item_id, item.label, waveform, sample_rate))
        return tuple(clips)

    @property
    def reference_model(self):
        """The engine's VGGish: released weights when found (nothing downloads), else seeded random ones."""
        if self._reference is None:
            from ..model import load_with_provenance

            object.__setattr__(self, "_reference", load_with_provenance("auto", seed=self._seed, download=False))
        return self._reference[0]

    @property
    def weights(self):
        """:class:`warblr.model.WeightsProvenance` of :attr:`reference_model` (and of the student's model)."""
        self.reference_model
        return self._reference[1]

    def load_weights(self, model):
        """Load the reference model's weights into the student's network and say, in bold if random, which.

        Parameters
        ----------
        model : torch.nn.Module
            What ``build_vggish()`` returned.

        Returns
        -------
        torch.nn.Module
            ``model``, in eval mode.

        Raises
        ------
        WrongResultError
            Not a module, or its ``state_dict`` keys or shapes differ from torchvggish's.
        """
        import torch

        if not isinstance(model, torch.nn.Module):
            raise WrongResultError(f"returned {type(model).__name__}, not a torch.nn.Module",
                                   function="build_vggish", module="embedding")
        try:
            model.load_state_dict(self.reference_model.state_dict())
        except RuntimeError as exc:
            problems = "; ".join(line.strip() for line in str(exc).splitlines()[1:4])
            raise WrongResultError(f"its layers do not match torchvggish's VGG, so the weights cannot load "
                                   f"({problems})", function="build_vggish", module="embedding") from exc
        _say_weights(self.weights)
        return model.eval()

    def pca_params(self):
        """The postprocessor's PCA parameters: released when found (nothing downloads), else seeded random ones.

        Random ones are said in bold.

        Returns
        -------
        dict
            ``pca_eigen_vectors`` ``[128, 128]`` and ``pca_means`` ``[128, 1]``.
        """
        from ..model import load_pca_params

        try:
            params = load_pca_params("auto", download=False)
            _markdown(f"Released VGGish PCA parameters (`{spec.PCA_PARAMS_FILENAME}`).")
        except WeightsNotFoundError:
            params = load_pca_params("random", seed=self._seed)
            _markdown(f"**RANDOM PCA parameters (seed {self._seed}): `{spec.PCA_PARAMS_FILENAME}` was not found, "
                      "so the postprocessed values below are not AudioSet's.**")
        return params

    def extract_features(self, *, model=None, chunk_size=16):
        """One log-mel vector and (with ``model``) one embedding vector per clip, with the student's functions.

        The engine decodes the files; the student's ``waveform_to_examples``,
        ``embed`` and ``pool`` do the rest.

        Parameters
        ----------
        model : torch.nn.Module or None, keyword-only
            The student's VGGish with weights; None: log-mel features only.
        chunk_size : int, keyword-only
            Clips embedded per call of ``embed``.

        Returns
        -------
        Features
            Needs ``lab.dataset``.

        Raises
        ------
        WrongResultError
            A student's function returned the wrong shape.
        """
        code = self._impl
        items = self.dataset.items
        rows = {LOGMEL_FEATURES: [], EMBEDDING_FEATURES: []}
        kept, skipped = [], []
        with progress(total=len(items), desc="features (your code)") as bar:
            for start in range(0, len(items), chunk_size):
                group, examples = [], []
                for item in items[start:start + chunk_size]:
                    clip_examples = self._clip_examples(item, skipped)
                    if clip_examples is not None:
                        group.append(item)
                        examples.append(clip_examples)
                        rows[LOGMEL_FEATURES].append(_pooled(code, clip_examples, spec.NUM_BANDS))
                    bar.update(1)
                if model is not None and group:
                    embeddings = _checked(code.embedding.embed(model, np.concatenate(examples)), "embed", "embedding",
                                          (sum(len(e) for e in examples), spec.EMBEDDING_SIZE))
                    bounds = np.cumsum([len(e) for e in examples])[:-1]
                    rows[EMBEDDING_FEATURES] += [_pooled(code, part, spec.EMBEDDING_SIZE)
                                                 for part in np.split(embeddings, bounds)]
                kept += group
        if skipped:
            print(f"{len(skipped)} clips left out (first: {skipped[0][0]}: {skipped[0][1]})")
        sets = {name: np.array(values) for name, values in rows.items() if values}
        return Features(sets=sets, labels=np.array([item.label for item in kept]),
                        item_ids=[item.item_id for item in kept], skipped=skipped,
                        pretrained=None if model is None else bool(self.weights.pretrained))


    def _clip_examples(self, item, skipped):
        """The student's examples of one dataset item, or None (and a note in ``skipped``) for an unusable clip."""
        try:
            waveform, sample_rate = load_audio(item.path)
        except AudioError as exc:
            skipped.append((item.item_id, str(exc)))
            return None
        examples = _checked(self._impl.logmel.waveform_to_examples(waveform, sample_rate), "waveform_to_examples",
                            "logmel", (None, *_EXAMPLE_SHAPE))
        if examples.shape[0] == 0:
            skipped.append((item.item_id, "shorter than one 0.96 s example"))
            return None
        return examples

_EXAMPLE_SHAPE = (spec.NUM_FRAMES, spec.NUM_BANDS)


def _checked(result, function, module, shape):
    """``result`` as a float array of ``shape`` (None: any length), else :class:`WrongResultError`."""
    array = _as_numbers(result)
    if array is None:
        raise WrongResultError(f"returned {_kind(result)}, not an array of real numbers",
                               function=function, module=module)
    expected = "[" + ", ".join("N" if size is None else str(size) for size in shape) + "]"
    if array.ndim != len(shape) or any(size not in (None, got) for size, got in zip(shape, array.shape)):
        raise WrongResultError(f"returned shape {list(array.shape)}, expected {expected}",
                               function=function, module=module)
    return array


def _pooled(code, values, size):
    return _checked(code.classify.pool(values), "pool", "classify", (size,))


def reference_pool(values):
    """The mean over every axis but the last (what ``pool`` computes), for comparisons.

    Parameters
    ----------
    values : array_like
        ``[..., D]``.

    Returns
    -------
    np.ndarray
        float64 ``[D]``.
    """
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(-1, values.shape[-1]).mean(axis=0)


# --------------------------------------------------------------------------- output helpers


def _markdown(text):
    from IPython.display import Markdown, display

    display(Markdown(text))


def _say_weights(provenance):
    if provenance.pretrained:
        _markdown(f"Released VGGish weights: `{provenance.source}`.")
    else:
        _markdown(f"**RANDOM weights (seed {provenance.seed}): the released VGGish weights were not found, so the "
                  "embeddings below come from an untrained network. They are a baseline, not VGGish.** "
                  f"To use the real ones, put `{spec.VGGISH_WEIGHTS_FILENAME}` in the torch hub checkpoint folder "
                  f"or point `${spec.WEIGHTS_ENV_VAR}` at it, then re-run.")


def _show(figure):
    """Display ``figure`` as a PNG, whatever matplotlib's backend; returns it."""
    from IPython.display import Image, display

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    display(Image(data=buffer.getvalue(), format="png"))
    return figure


def _subplots(ncols, *, height=3.4, width=6.0):
    """A figure of ``ncols`` panels, made without pyplot: the notebook's own matplotlib state is left alone."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * ncols, height), layout="constrained")
    return figure, list(figure.subplots(1, ncols, squeeze=False)[0])


def _as_numbers(result):
    """``result`` as a float64 array, or None unless it holds real numbers (None, strings, complex...)."""
    if result is None:
        return None
    try:
        array = np.asarray(result)
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: a torch tensor that requires grad
        return None
    return array.astype(np.float64) if array.dtype.kind in "biuf" else None


def _kind(result):
    """What ``result`` is, for messages: ``complex128 array`` or ``NoneType``."""
    dtype = getattr(result, "dtype", None)
    return f"{dtype} {type(result).__name__}" if dtype is not None else type(result).__name__


def compare(name, yours, reference, *, rtol=1e-5, atol=1e-5):
    """Print one line saying whether ``yours`` matches ``reference``, and by how much.

    Parameters
    ----------
    name : str
        The student's function.
    yours, reference : array_like
    rtol, atol : float, keyword-only
        As :func:`numpy.allclose`.

    Returns
    -------
    bool

    Examples
    --------
    >>> compare("pool", [1.0, 2.0], [1.0, 2.5])
    ✗ `pool`: differs from the reference (shape (2,), max difference 0.5 at index (1,))
    False
    """
    values, reference = _as_numbers(yours), np.asarray(reference, dtype=np.float64)
    if values is None:
        print(f"✗ `{name}`: returned {_kind(yours)}, not an array of real numbers")
        return False
    if values.shape != reference.shape:
        print(f"✗ `{name}`: shape {values.shape}, the reference has shape {reference.shape}")
        return False
    if values.size == 0:
        print(f"✓ `{name}`: empty, as the reference (shape {values.shape})")
        return True
    if not np.all(np.isfinite(values)):
        print(f"✗ `{name}`: your result holds NaN or inf (shape {values.shape})")
        return False
    difference = np.abs(values - reference)
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(difference), difference.shape))
    matches = bool(np.allclose(values, reference, rtol=rtol, atol=atol))
    print(f"{'✓' if matches else '✗'} `{name}`: {'matches' if matches else 'differs from'} the reference "
          f"(shape {values.shape}, max difference {difference.max():.3g} at index {worst})")
    return matches


def listen(clip):
    """Display an audio player for ``clip`` under a one-line caption.

    Parameters
    ----------
    clip : Clip
    """
    from IPython.display import Audio, display

    print(f"{clip.title} ({clip.seconds:.1f} s at {clip.sample_rate} Hz)")
    display(Audio(clip.waveform.T if clip.waveform.ndim == 2 else clip.waveform, rate=clip.sample_rate))


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


def _spectrum_db(signal, sample_rate):
    """Welch power spectrum in dB with 64 ms segments (same resolution whatever the rate)."""
    from scipy.signal import welch

    segment = min(signal.shape[0], int(round(0.064 * sample_rate)))
    freqs, power = welch(signal, fs=sample_rate, nperseg=segment)
    return freqs, 10 * np.log10(power + 1e-20)


def show_resampling(clip, yours, reference, *, target_sr=spec.SAMPLE_RATE, band_hz=(100.0, 7000.0), tolerance_db=1.0):
    """Your resampled clip against the original and warblr's ``kaiser_best``: length, spectrum, a close-up.

    Parameters
    ----------
    clip : Clip
        The original.
    yours, reference : array_like
        ``[samples]`` at ``target_sr``: the student's and the engine's.
    target_sr : int, keyword-only
    band_hz : (float, float), keyword-only
        Where two good resamplers must agree (below the transition band).
    tolerance_db : float, keyword-only
        Largest spectral difference in that band that still counts as a match.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when ``yours`` is not 1-D audio.
    """
    values, reference = _as_numbers(yours), np.asarray(reference, dtype=np.float64)
    if values is None or values.ndim != 1 or values.size < 16:
        shape = None if values is None else values.shape
        print(f"✗ `resample`: expected mono audio [samples], got {_kind(yours)} of shape {shape}")
        return None
    length_ok = abs(values.shape[0] - reference.shape[0]) <= 1
    print(f"{'✓' if length_ok else '✗'} `resample`: {values.shape[0]} samples; "
          f"{reference.shape[0]} expected ({clip.seconds:.2f} s at {target_sr} Hz)")
    original = clip.waveform if clip.waveform.ndim == 1 else clip.waveform.mean(axis=1)
    spectra = {"original": _spectrum_db(original, clip.sample_rate), "yours": _spectrum_db(values, target_sr),
               "warblr (kaiser_best)": _spectrum_db(reference, target_sr)}
    freqs, ref_db = spectra["warblr (kaiser_best)"]
    your_freqs, your_db = spectra["yours"]
    band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    if your_freqs.shape == freqs.shape:
        worst = float(np.max(np.abs(your_db[band] - ref_db[band])))
        print(f"{'✓' if worst <= tolerance_db else '✗'} `resample`: spectrum within {worst:.2g} dB of warblr's "
              f"between {band_hz[0]:.0f} and {band_hz[1]:.0f} Hz (tolerance {tolerance_db} dB)")
    else:
        print(f"✗ `resample`: too short ({values.shape[0]} samples) to compare its spectrum with warblr's")
    figure, (close_up, spectrum) = _subplots(2)
    centre = int(np.argmax(np.abs(original)))  # the loudest moment: the bird, if any
    seconds = 0.005
    for label, signal, rate, style in (("original", original, clip.sample_rate, "-"),
                                       ("yours", values, target_sr, "o"),
                                       ("warblr", reference, target_sr, "x")):
        middle = centre * rate / clip.sample_rate
        lo, hi = int(max(0, middle - seconds * rate)), int(middle + seconds * rate)
        close_up.plot(np.arange(lo, min(hi, signal.shape[0])) / rate * 1000, signal[lo:hi], style, label=label,
                      markersize=4, linewidth=1)
    close_up.set(xlabel="time (ms)", ylabel="amplitude", title="10 ms around the clip's loudest moment")
    close_up.legend(fontsize=8)
    for (label, (f, db)), style in zip(spectra.items(), ("-", "--", ":")):
        spectrum.plot(f / 1000, db, style, linewidth=1, label=label)
    spectrum.axvline(target_sr / 2000, color="grey", linestyle=":", label="new Nyquist frequency")
    spectrum.set(xlabel="frequency (kHz)", ylabel="power (dB)", title="spectrum: nothing above 8 kHz may fold back")
    spectrum.legend(fontsize=8)
    return _show(figure)


def _image(axis, data, *, title, extent=None, limits=None, xlabel="time (s)", ylabel="frequency (Hz)"):
    shown = axis.imshow(np.asarray(data).T, origin="lower", aspect="auto", extent=extent, interpolation="nearest",
                        vmin=None if limits is None else limits[0], vmax=None if limits is None else limits[1])
    axis.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return shown


def _side_by_side(name, yours, reference, *, draw, tolerance=None):
    """Compare, then draw ``yours`` and ``reference`` with ``draw(axis, data, title)`` in two panels."""
    compare(name, yours, reference, **(tolerance or {}))
    values, reference = _as_numbers(yours), np.asarray(reference, dtype=np.float64)
    drawable = values is not None and values.ndim == reference.ndim and values.shape[1:] == reference.shape[1:] \
        and values.shape[0] > 0
    figure, axes = _subplots(2)
    if drawable:
        draw(axes[0], values, f"yours: {name}")
    else:
        shape = None if values is None else values.shape
        axes[0].text(0.5, 0.5, f"yours: shape {shape}\ncannot be drawn like the reference {reference.shape}",
                     ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_axis_off()
    draw(axes[1], reference, "reference (warblr)")
    return _show(figure)


def _limits(reference):
    finite = reference[np.isfinite(reference)]
    return (float(finite.min()), float(finite.max())) if finite.size else None


def show_stft(yours, reference, *, sample_rate=spec.SAMPLE_RATE, hop_length=spec.STFT_HOP_LENGTH):
    """Your STFT magnitude beside the reference, in dB, with axes in seconds and Hz.

    Parameters
    ----------
    yours : array_like
        The student's result.
    reference : array_like
        warblr's, on the same input.

    Returns
    -------
    matplotlib.figure.Figure
        Also displayed, after a :func:`compare` line.
    """
    reference = np.asarray(reference, dtype=np.float64)
    limits = _limits(20 * np.log10(reference + 1e-10))

    def draw(axis, data, title):
        extent = [0, data.shape[0] * hop_length / sample_rate, 0, sample_rate / 2]
        _image(axis, 20 * np.log10(np.abs(data) + 1e-10), title=title + " (dB)", extent=extent, limits=limits)

    return _side_by_side("stft_magnitude", yours, reference, draw=draw)


def show_mel_matrix(yours, reference, *, sample_rate=spec.SAMPLE_RATE):
    """Your mel filters beside the reference: one triangle per band, against frequency in Hz.

    Parameters
    ----------
    yours : array_like
        The student's result.
    reference : array_like
        warblr's, on the same input.

    Returns
    -------
    matplotlib.figure.Figure
        Also displayed, after a :func:`compare` line.
    """
    reference = np.asarray(reference, dtype=np.float64)
    values = _as_numbers(yours)
    top = max(1.0, float(np.nanmax(np.abs(values)))) if values is not None and values.size else 1.0

    def draw(axis, data, title):
        axis.plot(np.linspace(0, sample_rate / 2, data.shape[0]), data, linewidth=0.8)
        axis.set(title=f"{title} ({data.shape[1]} bands)", xlabel="frequency (Hz)", ylabel="weight",
                 ylim=(min(0.0, float(np.nanmin(data))) - 0.05, top * 1.05))

    return _side_by_side("mel_matrix", yours, reference, draw=draw)


def _band_ticks(axis, *, low=spec.MEL_MIN_HZ, high=spec.MEL_MAX_HZ, bands=spec.NUM_MEL_BINS):
    """Label mel-band rows with their centre frequencies in Hz."""
    from ..features import hertz_to_mel

    edges = np.linspace(hertz_to_mel(low), hertz_to_mel(high), bands + 2)
    centres_hz = spec.MEL_BREAK_FREQUENCY_HERTZ * (np.exp(edges[1:-1] / spec.MEL_HIGH_FREQUENCY_Q) - 1.0)
    ticks = [int(np.argmin(np.abs(centres_hz - hz))) for hz in (250, 500, 1000, 2000, 4000, 7000)]
    axis.set_yticks(ticks, [f"{centres_hz[t]:.0f}" for t in ticks])
    axis.set_ylabel("mel band centre (Hz)")


def show_log_mel(yours, reference, *, hop_s=spec.STFT_HOP_LENGTH_SECONDS):
    """Your log-mel spectrogram beside the reference, with axes in seconds and Hz.

    Parameters
    ----------
    yours : array_like
        The student's result.
    reference : array_like
        warblr's, on the same input.

    Returns
    -------
    matplotlib.figure.Figure
        Also displayed, after a :func:`compare` line.
    """
    reference = np.asarray(reference, dtype=np.float64)
    limits = _limits(reference)

    def draw(axis, data, title):
        _image(axis, data, title=title, extent=[0, data.shape[0] * hop_s, -0.5, data.shape[1] - 0.5], limits=limits)
        _band_ticks(axis, bands=data.shape[1])

    return _side_by_side("log_mel_spectrogram", yours, reference, draw=draw)


def show_examples(yours, reference, *, name="frame_examples", example_s=spec.EXAMPLE_WINDOW_SECONDS):
    """Your examples ``[N, 96, 64]`` beside the reference's, laid end to end with their boundaries marked.

    Parameters
    ----------
    yours : array_like
        The student's result.
    reference : array_like
        warblr's, on the same input.

    Returns
    -------
    matplotlib.figure.Figure
        Also displayed, after a :func:`compare` line.
    """
    reference = np.asarray(reference, dtype=np.float64)
    limits = _limits(reference)

    def draw(axis, data, title):
        joined = data.reshape(-1, data.shape[-1])
        _image(axis, joined, title=f"{title}: {data.shape[0]} examples",
               extent=[0, data.shape[0] * example_s, -0.5, data.shape[-1] - 0.5], limits=limits)
        for boundary in range(1, data.shape[0]):
            axis.axvline(boundary * example_s, color="white", linewidth=1)
        _band_ticks(axis, bands=data.shape[-1])

    return _side_by_side(name, yours, reference, draw=draw)


def compare_with_librosa(signal, log_mel, *, sample_rate=spec.SAMPLE_RATE):
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

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..features import mel_matrix

    try:
        import librosa
    except ImportError:
        raise WarblrError("this comparison needs librosa: `pip install librosa` (or the lab extra), "
                          "then re-run this cell") from None

    yours = _checked(log_mel, "log_mel_spectrogram", "logmel", (None, spec.NUM_MEL_BINS))
    common = dict(sr=sample_rate, n_fft=spec.FFT_LENGTH, hop_length=spec.STFT_HOP_LENGTH,
                  win_length=spec.STFT_WINDOW_LENGTH, n_mels=spec.NUM_MEL_BINS, fmin=spec.MEL_MIN_HZ,
                  fmax=spec.MEL_MAX_HZ)
    # librosa centres the 400-tap window in a 512-sample frame: 56 zeros in front line the frames up.
    pad = (spec.FFT_LENGTH - spec.STFT_WINDOW_LENGTH) // 2
    with warnings.catch_warnings():  # librosa pulls in tqdm.auto, which warns when ipywidgets is missing
        warnings.filterwarnings("ignore", message="IProgress not found")
        defaults = np.log(librosa.feature.melspectrogram(y=signal, **common).T + spec.LOG_OFFSET)
        matched = np.log(librosa.feature.melspectrogram(
            y=np.pad(signal, pad), center=False, power=1.0, htk=True, norm=None, **common).T + spec.LOG_OFFSET)
    frames = min(len(yours), len(defaults), len(matched))
    default_gap = float(np.max(np.abs(defaults[:frames] - yours[:frames])))
    matched_gap = float(np.max(np.abs(matched[:frames] - yours[:frames])))
    print(f"librosa's defaults vs your log-mel: max difference {default_gap:.3g} "
          "(power instead of magnitude, Slaney mel, area-normalised filters, centred frames)")
    print(f"librosa matched (power=1, htk=True, norm=None, frames aligned) vs your log-mel: max difference "
          f"{matched_gap:.3g} (the reference log-mel: under 0.02, all of it from the triangles' shape)")
    figure, axes = _subplots(4, width=4.2)
    limits = _limits(matched)
    extent = [0, frames * spec.STFT_HOP_LENGTH_SECONDS, -0.5, spec.NUM_MEL_BINS - 0.5]
    for axis, data, title, scale in ((axes[0], yours[:frames], "yours (VGGish)", limits),
                                     (axes[1], defaults[:frames], "librosa, defaults", limits),
                                     (axes[2], matched[:frames] - yours[:frames], "librosa matched − yours", None)):
        shown = _image(axis, data, title=title, extent=extent, limits=scale)
        _band_ticks(axis)
    figure.colorbar(shown, ax=axes[2])  # the difference image's own scale
    band = spec.NUM_MEL_BINS - 4  # a wide band near the top: the curvature is easiest to see
    freqs = np.linspace(0, sample_rate / 2, spec.NUM_SPECTROGRAM_BINS)
    librosa_filters = librosa.filters.mel(sr=sample_rate, n_fft=spec.FFT_LENGTH, n_mels=spec.NUM_MEL_BINS,
                                          fmin=spec.MEL_MIN_HZ, fmax=spec.MEL_MAX_HZ, htk=True, norm=None)
    vggish_filters = mel_matrix()
    inside_band = vggish_filters[:, band] > 0
    axes[3].plot(freqs[inside_band], vggish_filters[inside_band, band], "o-", label="VGGish: linear in mel")
    axes[3].plot(freqs[inside_band], librosa_filters[band, inside_band], "x--", label="librosa: linear in Hz")
    axes[3].set(title=f"band {band}: one triangle, two shapes", xlabel="frequency (Hz)", ylabel="weight")
    axes[3].legend(fontsize=8, loc="lower center")
    gap = axes[3].twinx()  # the shapes differ by about 1 %: show the difference on its own scale
    gap.plot(freqs[inside_band], librosa_filters[band, inside_band] - vggish_filters[inside_band, band], ":",
             color="grey")
    gap.set_ylabel("librosa − VGGish (dotted)", color="grey")
    return _show(figure)


def show_embeddings(yours, reference, *, pretrained=False):
    """Your embeddings ``[N, 128]`` beside the engine's (same weights, same examples).

    Parameters
    ----------
    yours : array_like
        The student's result.
    reference : array_like
        warblr's, on the same input.

    Returns
    -------
    matplotlib.figure.Figure
        Also displayed, after a :func:`compare` line.
    """
    reference = np.asarray(reference, dtype=np.float64)
    limits = _limits(reference)
    weights = "pretrained" if pretrained else "RANDOM weights"

    def draw(axis, data, title):
        _image(axis, data.T, title=f"{title} ({weights})", extent=[-0.5, data.shape[1] - 0.5, 0, data.shape[0] * 0.96],
               limits=limits, xlabel="embedding dimension", ylabel="time (s)")

    scale = float(np.max(np.abs(reference))) if reference.size else 1.0
    return _side_by_side("embed", yours, reference, draw=draw, tolerance={"rtol": 1e-3, "atol": 1e-4 * scale})


def show_postprocessed(yours, reference):
    """Your postprocessed uint8 embeddings beside the engine's (same inputs); off-by-one rounding is allowed.

    Parameters
    ----------
    yours : array_like
        The student's result.
    reference : array_like
        warblr's, on the same input.

    Returns
    -------
    matplotlib.figure.Figure
        Also displayed, after a :func:`compare` line.
    """

    def draw(axis, data, title):
        _image(axis, data.T, title=title, extent=[-0.5, data.shape[1] - 0.5, 0, data.shape[0] * 0.96],
               limits=(0, 255), xlabel="PCA component", ylabel="time (s)")

    return _side_by_side("postprocess", yours, reference, draw=draw, tolerance={"rtol": 0.0, "atol": 1.0})


def _title_note(features, name):
    return " (RANDOM weights)" if name == EMBEDDING_FEATURES and not features.pretrained else ""


def pca_scatter(features):
    """Each clip as a point on its first two principal components (standardised features), coloured by label.

    Parameters
    ----------
    features : Features
        One panel per feature set.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    figure, axes = _subplots(len(features.sets), width=5.0, height=4.2)
    for axis, (name, values) in zip(axes, features.sets.items()):
        pca = PCA(n_components=2, random_state=SEED)
        points = pca.fit_transform(StandardScaler().fit_transform(values))
        for label, colour, text in ((0, "tab:blue", "no bird"), (1, "tab:orange", "bird")):
            chosen = features.labels == label
            axis.scatter(points[chosen, 0], points[chosen, 1], s=12, alpha=0.7, color=colour, label=text)
        share = pca.explained_variance_ratio_
        axis.set(title=name + _title_note(features, name), xlabel=f"PC 1 ({share[0]:.0%} of the variance)",
                 ylabel=f"PC 2 ({share[1]:.0%})")
        axis.legend(fontsize=8)
    return _show(figure)


def _cv_settings(labels, dims):
    """Folds and PCA size that fit the data: every fold has both labels, PCA fits every training part."""
    smallest_class = int(min(np.sum(labels == 0), np.sum(labels == 1)))
    folds = min(FOLDS, smallest_class)
    if folds < 2:
        raise DatasetError(f"cross-validation needs at least 2 clips of each label; the sample has {smallest_class} "
                           f"of one (raise {LIMIT_ENV})")
    smallest_train = len(labels) - math.ceil(len(labels) / folds) - 1
    return folds, max(1, min(PCA_COMPONENTS, dims, smallest_train))


def _reference_auc(values, labels, *, n_components, folds):
    """Cross-validated ROC AUC of scaler -> PCA -> logistic regression, with scikit-learn's own helpers."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), PCA(n_components=n_components, random_state=SEED),
                          LogisticRegression(max_iter=1000, random_state=SEED))
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    return float(np.mean(cross_val_score(model, values, labels, cv=splits, scoring="roc_auc")))


def auc_table(features, classify):
    """The cross-validated ROC AUC of each feature set: yours (``cross_validated_auc``) beside scikit-learn's.

    Parameters
    ----------
    features : Features
    classify : module
        The student's ``classify`` module.

    Returns
    -------
    list of dict
        One row per feature set: ``name``, ``dims``, ``pca``, ``folds``, ``yours``, ``reference``, ``matches``.
    """
    rows = []
    for name, values in features.sets.items():
        folds, n_components = _cv_settings(features.labels, values.shape[1])
        yours = classify.cross_validated_auc(values, features.labels, n_components, n_splits=folds,
                                             random_state=SEED)
        reference = _reference_auc(values, features.labels, n_components=n_components, folds=folds)
        number = _as_numbers(yours)
        matches = number is not None and number.shape == () and abs(float(number) - reference) < 1e-6
        rows.append({"name": name, "dims": values.shape[1], "pca": n_components, "folds": folds,
                     "yours": float(number) if number is not None and number.shape == () else yours,
                     "reference": reference, "matches": matches})
    lines = ["| feature set | dims | PCA | your ROC AUC | reference (scikit-learn) | |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        yours = f"{row['yours']:.3f}" if isinstance(row["yours"], float) else f"`{row['yours']!r}`"
        verdict = "✓" if row["matches"] else "✗ differs from the reference"
        lines.append(f"| {row['name']}{_title_note(features, row['name'])} | {row['dims']} | {row['pca']} | {yours} "
                     f"| {row['reference']:.3f} | {verdict} |")
    folds = rows[0]["folds"] if rows else FOLDS
    lines.append("")
    lines.append(f"{len(features.labels)} clips, {folds}-fold stratified cross-validation (seed {SEED}).")
    if features.pretrained is False:
        lines.append("**The VGGish row uses RANDOM weights: a baseline, not VGGish.**")
    _markdown("\n".join(lines))
    return rows
