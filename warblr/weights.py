"""VGGish's weights: where they are looked for, whether they are the released file, and loading them.

Weight files are never downloaded by tests; see :func:`resolve_weights` for
where they are looked for. A weights file counts as the released
("pretrained") VGGish only when its SHA-256 starts with the hash prefix
torchvggish publishes in the file's name (``vggish-10086976.pth``), the check
``torch.hub`` makes with ``check_hash=True``; any other file that loads is
used, and said to be something else (:class:`WeightsProvenance`).
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from . import spec
from .errors import InvalidArgumentError, WarblrError, WeightsNotFoundError
from .model import VGGish, check_seed, random_state_dict

__all__ = [
    "load_vggish",
    "resolve_weights",
    "hub_checkpoint_dir",
    "WeightsProvenance",
    "load_with_provenance",
    "published_sha256_prefix",
    "is_released_weights",
]

#: torch.hub's rule for the hash in a released file's name (``HASH_REGEX`` in ``torch/hub.py``).
_HASH_IN_NAME = re.compile(r"-([a-f0-9]*)\.")


def published_sha256_prefix(filename):
    """The hex digits a released file's name publishes as the start of its SHA-256, or None.

    Examples
    --------
    >>> published_sha256_prefix("vggish-10086976.pth"), published_sha256_prefix("mine.pth")
    ('10086976', None)
    """
    match = _HASH_IN_NAME.search(Path(os.fspath(filename)).name)
    return match.group(1) if match and match.group(1) else None


def is_released_weights(sha256, *, release=spec.VGGISH_WEIGHTS_FILENAME):
    """Whether a file with digest ``sha256`` is the released file ``release``: its published prefix matches.

    Parameters
    ----------
    sha256 : str
        The file's SHA-256, hex.
    release : str, keyword-only
        The released file's name, holding the prefix (torchvggish's ``vggish-10086976.pth``).

    Examples
    --------
    >>> is_released_weights("10086976" + "0" * 56), is_released_weights("ab" * 32)
    (True, False)
    """
    prefix = published_sha256_prefix(release)
    return bool(prefix) and str(sha256).lower().startswith(prefix)


def _check_device(device):
    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"device: not a torch device ({device!r}: {exc})") from exc


def hub_checkpoint_dir():
    """The torch hub checkpoint folder torchvggish downloads into."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights_file(argument, *, filename, env_var, url, what, download):
    """Find a released weights file: explicit path, environment variable, torch hub cache, download.

    Shared by the VGGish weights (:func:`resolve_weights`) and the PCA
    parameters (:func:`warblr.postprocess.load_pca_params`).

    Parameters
    ----------
    argument : path-like, "auto" or None
        An explicit path wins; ``"auto"`` and None look in the other places.
    filename : str
        The released file's name (its published SHA-256 prefix is part of it).
    env_var : str
        Environment variable that may name the file.
    url : str
        Where the file is published; fetched only when ``download`` is true.
    what : str
        What the file is, for error messages ("VGGish weights").
    download : bool
        Allow a download into the torch hub cache (checked against the published hash).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    WeightsNotFoundError
        No place held the file; the message lists where it looked and what to do.
    InvalidArgumentError
        ``argument`` is neither a path nor ``"auto"``/None.

    Examples
    --------
    >>> find_weights_file("no/such.pth", filename="vggish-10086976.pth", env_var="X", url="u",
    ...                   what="VGGish weights", download=False)
    Traceback (most recent call last):
    ...
    warblr.errors.WeightsNotFoundError: VGGish weights: no such file no/such.pth
    """
    looked = []
    if argument is not None and not isinstance(argument, (str, os.PathLike)):
        raise InvalidArgumentError(f"{what}: expected a file path, 'auto' or 'random', got {argument!r}")
    if argument not in (None, "auto"):
        path = Path(os.fspath(argument)).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"{what}: no such file {path}")
        return path
    from_env = os.environ.get(env_var)
    if from_env:
        path = Path(from_env).expanduser()
        if path.is_file():
            return path
        looked.append(f"${env_var}={path} (no such file)")
    else:
        looked.append(f"${env_var} (not set)")
    cached = hub_checkpoint_dir() / filename
    if cached.is_file():
        return cached
    looked.append(str(cached))
    if download:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(cached), progress=True)
            from .fileio import file_digest

            digest = file_digest(cached)
            if not is_released_weights(digest, release=filename):
                cached.unlink(missing_ok=True)
                looked.append(f"{url} (downloaded, but its SHA-256 {digest} does not start with "
                              f"{published_sha256_prefix(filename)}, the hash published in {filename}; deleted)")
            else:
                return cached
        except Exception as exc:  # offline, proxy, disk: all end in the same advice
            cached.unlink(missing_ok=True)
            looked.append(f"{url} (download failed: {exc})")
    else:
        looked.append(f"{url} (download disabled)")
    raise WeightsNotFoundError(
        f"{what} not found. Looked in: " + "; ".join(looked) + ". "
        f"Put {filename} (from {url}) at {cached}, or point ${env_var} at it, "
        "or pass its path explicitly, or use weights='random' for seeded random weights.",
        searched=tuple(looked),
    )


def resolve_weights(weights="auto", *, download=False):
    """Path of the VGGish ``state_dict`` file.

    Looked for in order: ``weights`` as an explicit path; the file named by
    ``$WARBLR_VGGISH_WEIGHTS``; ``vggish-10086976.pth`` in the torch hub
    checkpoint cache (where torchvggish puts it); a download from
    torchvggish's release URL when ``download`` and online.

    Raises
    ------
    WeightsNotFoundError
        Nothing found; ``searched`` lists every place looked, and the message
        also says where to put which file.
    """
    return find_weights_file(weights, filename=spec.VGGISH_WEIGHTS_FILENAME, env_var=spec.WEIGHTS_ENV_VAR,
                             url=spec.VGGISH_WEIGHTS_URL, what="VGGish weights", download=download)


def _numpy_array_globals():
    """The pickle globals a numpy array needs, allow-listed for ``torch.load(weights_only=True)``.

    torchvggish's released PCA file holds numpy arrays (torchvggish issue #11),
    pickled by numpy 1.x as ``numpy.core.multiarray._reconstruct``; numpy 2
    calls it ``numpy._core.multiarray._reconstruct``. Both names are allowed,
    nothing else is: loading stays free of arbitrary code.
    """
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return [_reconstruct, (_reconstruct, "numpy.core.multiarray._reconstruct"),
            (_reconstruct, "numpy._core.multiarray._reconstruct"), np.ndarray, np.dtype,
            *[getattr(np.dtypes, name) for name in ("Float64DType", "Float32DType") if hasattr(np, "dtypes")]]


def read_state_dict(path):
    """Load a ``state_dict`` saved by torch, with ``weights_only=True`` (no code runs from the file).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict of str to torch.Tensor or numpy.ndarray

    Raises
    ------
    WarblrError
        The file is not a readable torch file, or holds something other than a dict.
    """
    try:
        with torch.serialization.safe_globals(_numpy_array_globals()):
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WarblrError(f"{path}: not a readable torch state_dict ({exc})") from exc
    if not isinstance(state, dict):
        raise WarblrError(f"{path}: expected a state_dict (dict of tensors), got {type(state).__name__}")
    return state


def _assign_state_dict(model, state, source):
    """Load ``state`` into ``model`` strictly (same keys, same shapes) as float32 tensors."""
    try:
        state = {key: value.float() if value.is_floating_point() else value for key, value in state.items()}
        model.load_state_dict(state, strict=True, assign=True)
    except (RuntimeError, AttributeError, TypeError) as exc:
        raise WarblrError(f"{source}: not a VGGish state_dict ({str(exc).splitlines()[0]})") from exc


def load_vggish(weights="auto", *, seed=0, final_relu=True, device="cpu", download=False):
    """Build VGGish and load its weights.

    Parameters
    ----------
    weights : str or os.PathLike
        A ``state_dict`` path, ``"random"`` (seeded, for offline work and
        tests), or ``"auto"`` (see :func:`resolve_weights`).
    seed : int, keyword-only
        Seed for ``weights="random"``.
    final_relu : bool, keyword-only
        See :class:`VGGish`.
    device : str or torch.device, keyword-only
    download : bool, keyword-only
        Allow ``"auto"`` to download when nothing is found locally (off by
        default, as for every warblr loader: nothing downloads unless asked).

    Returns
    -------
    VGGish
        In eval mode, with ``weights_source``, ``weights_sha256`` (files
        only) and ``pretrained`` set: True only for the released file, by
        its SHA-256 (:func:`is_released_weights`).

    Raises
    ------
    WeightsNotFoundError
        ``weights="auto"`` found nothing, or an explicit path is missing.
    InvalidArgumentError
        ``weights``, ``seed`` or ``device`` of the wrong kind.
    WarblrError
        The file is not a VGGish ``state_dict`` (loading is strict).

    Examples
    --------
    >>> model = load_vggish("random", seed=1)
    >>> model.weights_source, model.pretrained
    ('random (seed 1)', False)
    """
    device = _check_device(device)
    seed = check_seed(seed)
    with torch.device("meta"):  # no default initialisation: every tensor is assigned below
        model = VGGish(final_relu=bool(final_relu))
    if isinstance(weights, str) and weights == "random":
        _assign_state_dict(model, random_state_dict(seed=seed), "random weights")
        model.weights_source, model.pretrained = f"random (seed {int(seed)})", False
    else:
        from .fileio import file_digest

        path = resolve_weights(weights, download=download)
        _assign_state_dict(model, read_state_dict(path), path)
        model.weights_sha256 = file_digest(path)
        model.weights_source, model.pretrained = str(path), is_released_weights(model.weights_sha256)
    try:
        model = model.to(device)
    except (RuntimeError, AssertionError) as exc:  # e.g. CUDA asked for on a machine without it
        raise InvalidArgumentError(f"device: cannot use {device} ({exc})") from exc
    return model.eval()


@dataclass(frozen=True)
class WeightsProvenance:
    """Where a model's weights came from, stated in every output that depends on them.

    Attributes
    ----------
    requested : str
        What was asked for: ``"auto"``, ``"random"`` or a path.
    source : str
        The weights file, or ``"random (seed N)"``.
    pretrained : bool
        True only for released VGGish weights.
    final_relu : bool
        See :class:`VGGish`.
    sha256 : str or None
        SHA-256 of the weights file (any file): a replaced file makes older results stale.
    published_sha256_prefix : str or None
        The prefix a file had to match to count as pretrained (files only).
    seed : int or None
        Seed of random weights (random only).
    note : str or None
        Why random weights are used, when they are.
    searched : tuple of str
        Where ``"auto"`` looked before falling back to random weights.
    """

    requested: str
    source: str
    pretrained: bool
    final_relu: bool = True
    sha256: str | None = None
    published_sha256_prefix: str | None = None
    seed: int | None = None
    note: str | None = None
    searched: tuple = ()

    def as_dict(self):
        """The JSON form written to reports (unset fields left out).

        Examples
        --------
        >>> WeightsProvenance("random", "random (seed 0)", False, seed=0).as_dict()
        {'requested': 'random', 'source': 'random (seed 0)', 'pretrained': False, 'final_relu': True, 'seed': 0}
        """
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items() if value not in (None, ())}

    @classmethod
    def from_dict(cls, data):
        """Inverse of :meth:`as_dict` (e.g. for a report read back from JSON)."""
        data = dict(data)
        data["searched"] = tuple(data.get("searched", ()))
        return cls(**data)

    @property
    def label(self):
        """A short statement of the weights for titles and tables.

        Examples
        --------
        >>> WeightsProvenance("random", "random (seed 0)", False, seed=0).label
        'VGGish weights: RANDOM (seed 0), NOT pretrained'
        """
        if self.pretrained:
            return f"VGGish weights: pretrained ({Path(self.source).name}, SHA-256 {self.sha256[:8]}...)"
        if self.seed is not None:
            return f"VGGish weights: RANDOM (seed {self.seed}), NOT pretrained"
        return f"VGGish weights: {self.source}, NOT pretrained"


def load_with_provenance(weights="auto", *, seed=0, final_relu=True, download=False):
    """Load VGGish, falling back to seeded random weights (loudly) when ``"auto"`` finds none.

    Parameters
    ----------
    weights : {"auto", "random"} or path
    seed : int, keyword-only
        Seed of random weights.
    final_relu : bool, keyword-only
        See :class:`VGGish`.
    download : bool, keyword-only
        Let ``"auto"`` download the released weights (off by default: offline).

    Returns
    -------
    model : VGGish
    provenance : WeightsProvenance

    Raises
    ------
    WeightsNotFoundError
        An explicit path that does not exist (``"auto"`` never raises it).

    Examples
    --------
    >>> model, provenance = load_with_provenance("random", seed=3)
    >>> provenance.source, provenance.pretrained
    ('random (seed 3)', False)
    """
    requested = str(weights)
    note, searched = None, ()
    try:
        model = load_vggish(weights, seed=seed, final_relu=final_relu, download=download)
    except WeightsNotFoundError as exc:
        if requested != "auto":
            raise
        model = load_vggish("random", seed=seed, final_relu=final_relu)
        searched = tuple(exc.searched or ())
        note = ("no pretrained VGGish weights found (looked in: " + "; ".join(searched) + "), so seeded random "
                "weights are used: VGGish-embedding results are NOT those of pretrained VGGish. For the real ones: "
                f"put {spec.VGGISH_WEIGHTS_FILENAME} in {hub_checkpoint_dir()}, or set ${spec.WEIGHTS_ENV_VAR}, "
                "or pass --weights PATH, or --download when online.")
    digest = getattr(model, "weights_sha256", None)  # None: random weights
    prefix = published_sha256_prefix(spec.VGGISH_WEIGHTS_FILENAME) if digest else None
    if digest and not model.pretrained:
        note = (f"{model.weights_source} (SHA-256 {digest}) is not the released VGGish file: its SHA-256 does not "
                f"start with {prefix}, the hash torchvggish publishes in {spec.VGGISH_WEIGHTS_FILENAME}. It is "
                "used as given; results are NOT those of pretrained VGGish.")
    elif not digest and note is None:
        note = "seeded RANDOM weights, as requested (--weights random): NOT pretrained VGGish"
    return model, WeightsProvenance(
        requested=requested, source=model.weights_source, pretrained=bool(model.pretrained),
        final_relu=bool(model.final_relu), sha256=digest, published_sha256_prefix=prefix,
        seed=None if digest else int(seed), note=note, searched=searched)
