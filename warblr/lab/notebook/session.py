"""The notebook's session: one :class:`Lab` holding the settings, the student's code, the data and each step's result.

A cell stores what it makes as an attribute (``lab.model = ...``) inside
``with lab.step("model"):``; a later cell reading a missing result is
skipped with a line naming the function to finish. The lab reads the
dataset (``$WARBLR_DATA`` or the demo corpus), picks the example clips (the
bird clip where the bird is clearest), loads the reference weights (never
downloading) and runs the student's front end, ``embed`` and ``pool`` over
every clip of the sample to make :class:`Features` for the AUC table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ... import load_audio, spec
from ...errors import AudioError, DatasetError, InvalidArgumentError, WeightsNotFoundError
from ..corpus import DEFAULT_SIZE as DEMO_CORPUS_SIZE, make_corpus
from ..dataset import read_dataset, stratified_subset
from .checks import EMBEDDING_FEATURES, LOGMEL_FEATURES, checked
from .clips import Clip, clearest
from .display import markdown, progress, say_weights
from .guard import Skipped, Step, WrongResultError
from .live import EXERCISE_MODULES, LiveImpl, resolve_impl
from .settings import (DATA_ENV, DEFAULT_LIMIT, IMPL_ENV, LIMIT_ENV, SEED, default_corpus_dir, find_lab_root,
                       parse_limit)

__all__ = ["Features", "Lab", "BIRD_CANDIDATES"]

#: Bird clips measured to find the clearest one (each is decoded once).
BIRD_CANDIDATES = 100
_EXAMPLE_SHAPE = (spec.NUM_FRAMES, spec.NUM_BANDS)


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


@dataclass
class Results:
    """What the cells made (``values``), why the missing ones are missing, and the last swallowed error."""

    values: dict = field(default_factory=dict)
    unfinished: dict = field(default_factory=dict)
    last_error: Exception | None = None


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
        Where the demo corpus is generated (default :func:`~warblr.lab.notebook.settings.default_corpus_dir`).
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
               "_seed": seed, "_results": Results(), "_reference": None}
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
        self._results.values[name] = value
        self._results.unfinished.pop(name, None)

    def __getattr__(self, name):  # only called when normal lookup fails: a result
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._results.values:
            return self._results.values[name]
        raise Skipped(name, self._results.unfinished.get(name))

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._results.values))

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
        return Step(self._results, self._impl, makes)

    def optional(self, name):
        """``lab.<name>``, or None with a one-line note when it is missing."""
        try:
            return getattr(self, name)
        except Skipped as exc:
            print(f"note: no `{name}`: {exc.reason}; this cell goes on without it")
            return None

    @property
    def impl(self):
        """The student's modules: ``lab.impl.logmel.mel_matrix(...)`` (:class:`~warblr.lab.notebook.live.LiveImpl`)."""
        return self._impl

    @property
    def last_error(self):
        """The exception the last unfinished cell swallowed (``raise lab.last_error`` shows its traceback)."""
        return self._results.last_error

    # -- what the notebook runs on

    def describe(self):
        """Print whose functions run and on which data."""
        print(f"your functions: {self._impl.where(self._impl.folder)}/ ({IMPL_ENV}={self._impl_choice}; "
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

    def example_clips(self, *, candidates=BIRD_CANDIDATES):
        """The bird clip where the bird is clearest, and the first clip without one, decoded by the engine.

        "Clearest": the largest rise of the 1-8 kHz energy over the clip's
        median (:func:`~warblr.lab.notebook.clips.bird_activity`), among the
        first ``candidates`` bird clips of the sample.

        Returns
        -------
        (Clip, Clip)
            Needs ``lab.dataset``.
        """
        items = self.dataset.items
        bird, measured = clearest([item for item in items if item.label == 1], candidates=candidates)
        print(f"bird clip: {bird.item_id}, the clearest of {measured} bird clips (largest rise of the 1-8 kHz "
              f"energy over the clip's median: {bird.activity.rise_db:.0f} dB)")
        no_bird = Clip.load(next(item for item in items if item.label == 0))
        return bird, no_bird

    @property
    def reference_model(self):
        """The engine's VGGish: released weights when found (nothing downloads), else seeded random ones."""
        if self._reference is None:
            from ...weights import load_with_provenance

            object.__setattr__(self, "_reference", load_with_provenance("auto", seed=self._seed, download=False))
        return self._reference[0]

    @property
    def weights(self):
        """:class:`warblr.weights.WeightsProvenance` of :attr:`reference_model` (and of the student's model)."""
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
        say_weights(self.weights)
        return model.eval()

    def pca_params(self):
        """The postprocessor's PCA parameters: released when found (nothing downloads), else seeded random ones.

        Random ones are said in bold.

        Returns
        -------
        dict
            ``pca_eigen_vectors`` ``[128, 128]`` and ``pca_means`` ``[128, 1]``.
        """
        from ...postprocess import load_pca_params

        try:
            params = load_pca_params("auto", download=False)
            markdown(f"Released VGGish PCA parameters (`{spec.PCA_PARAMS_FILENAME}`).")
        except WeightsNotFoundError:
            params = load_pca_params("random", seed=self._seed)
            markdown(f"**RANDOM PCA parameters (seed {self._seed}): `{spec.PCA_PARAMS_FILENAME}` was not found, "
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
                    embeddings = checked(code.embedding.embed(model, np.concatenate(examples)), "embed", "embedding",
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
        examples = checked(self._impl.logmel.waveform_to_examples(waveform, sample_rate), "waveform_to_examples",
                           "logmel", (None, *_EXAMPLE_SHAPE))
        if examples.shape[0] == 0:
            skipped.append((item.item_id, "shorter than one 0.96 s example"))
            return None
        return examples


def _pooled(code, values, size):
    return checked(code.classify.pool(values), "pool", "classify", (size,))
