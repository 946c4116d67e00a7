"""The notebook's settings: the environment variables a student sets, and where things live.

``$WARBLR_IMPL`` names whose functions run (``exercises``, ``solutions`` or a
folder, as ``--impl``), ``$WARBLR_DATA`` a warblrb10k-layout dataset (the demo
corpus when unset) and ``$WARBLR_LIMIT`` how many clips to use. This module
turns them into values and finds the lab folder and the demo corpus's cache;
nothing here touches the student's code or the data.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import InvalidArgumentError

__all__ = ["IMPL_ENV", "DATA_ENV", "LIMIT_ENV", "DEFAULT_LIMIT", "ALL_CLIPS", "SEED", "parse_limit",
           "find_lab_root", "default_corpus_dir"]

IMPL_ENV = "WARBLR_IMPL"
DATA_ENV = "WARBLR_DATA"
LIMIT_ENV = "WARBLR_LIMIT"
#: Clips used by default: a laptop runs the whole notebook in minutes.
DEFAULT_LIMIT = 400
#: Values of ``$WARBLR_LIMIT`` that mean "every clip".
ALL_CLIPS = ("all", "0")
#: Seed of the sample, the demo corpus, the random weights and the cross-validation.
SEED = 0


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
