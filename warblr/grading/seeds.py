"""Input seeds of the seeded checks: the public one, fresh secret ones, and which one a grading session uses.

The checks that compare with ``solutions/`` (and the live checks fed the same
inputs) build their inputs from an input seed. A self-check uses the public
seed, whose answers the handout ships; a graded run uses a seed no student
can know: fresh from :mod:`secrets` where the solutions compute any seed live,
else one of the secret seeds a Gradescope package stored when it was built
(:func:`draw_secret_seeds`). A ``grade batch`` draws one fresh seed per course.

A stored pool repeats: a red-team student printed the inputs a check gave
their code, and after a few resubmissions a table of answers (computed
offline with torchvggish) for the inputs seen so far scored. So a session
has a second seed, the *live seed*, for the inputs whose answers the grader
computes itself (``Inputs.rng``, the property checks, the speed checks):
the input seed, except for a stored one, where it is fresh for every run.
Only the inputs of the stored answers repeat.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import NamedTuple

from .defaults import CHECKS_FOLDER

#: The input seed whose inputs (and stored answers) the handout ships (``exercises/reference.py: PUBLIC_SEED``).
PUBLIC_INPUT_SEED = 0

#: Fresh random input seeds are drawn below this bound (``exercises/reference.py`` accepts [0, 2**63)).
INPUT_SEED_BOUND = 2**62


def fresh_seed():
    """A fresh secret input seed in [1, :data:`INPUT_SEED_BOUND`), never the public one.

    Examples
    --------
    >>> PUBLIC_INPUT_SEED < fresh_seed() < INPUT_SEED_BOUND
    True
    """
    return secrets.randbelow(INPUT_SEED_BOUND - 1) + 1


def draw_secret_seeds(count):
    """``count`` distinct fresh input seeds (:func:`fresh_seed`), sorted.

    Examples
    --------
    >>> len(set(draw_secret_seeds(16)))
    16
    """
    seeds = set()
    while len(seeds) < count:
        seeds.add(fresh_seed())
    return sorted(seeds)


def _usage_error(message):
    import pytest

    return pytest.UsageError(message)


class ChosenSeed(NamedTuple):
    """A session's input seed, the line that says which kind it is, and its live seed (see the module's text)."""

    seed: int
    note: str
    live: int


def choose_input_seed(config, *, choose=None):
    """The input seed of a session, the line that says which kind it is, and its live seed.

    Parameters
    ----------
    config : pytest.Config
        Reads ``--input-seed`` (None: ``random`` when the run grades, i.e.
        ``--grade-json`` or ``--isolate``, else ``public``), the lab root
        (``rootpath``) and its ``exercises/reference_data/manifest.json``.
    choose : callable, optional
        ``choose(seeds)`` picks one stored secret seed (default
        :func:`secrets.choice`); for tests.

    Returns
    -------
    ChosenSeed
        ``(seed, note, live)``: the seed, a line for the results' output
        that names its kind (the value only for a fresh seed, never for a
        given or a stored secret one), and the live seed: ``seed``, or a
        fresh one when ``seed`` is a stored secret one.
    """
    text = config.getoption("input_seed")
    graded = bool(config.getoption("grade_json") or config.getoption("isolate"))
    mode = (text if text is not None else "random" if graded else "public").strip().lower()
    if mode == "public":
        return ChosenSeed(PUBLIC_INPUT_SEED, "input seed: public (the handout's inputs)", PUBLIC_INPUT_SEED)
    if mode != "random":
        try:
            seed = int(mode)
        except ValueError:
            raise _usage_error(f"--input-seed: 'public', 'random' or a number, got {text!r}") from None
        if not 0 <= seed < 2**63:
            raise _usage_error(f"--input-seed: must be in [0, 2**63), got {text!r}")
        # Not named: a batch passes its seed this way, reuses it when it resumes or regrades, and its students'
        # results.json may reach them (whoever gave the number knows it; warblr grade batch keeps it in its OUT).
        return ChosenSeed(seed, "input seed: the one given with --input-seed (not named here)", seed)
    root = Path(config.rootpath)
    if (root / "solutions" / "__init__.py").is_file():  # the reference is computed live: any seed will do
        seed = fresh_seed()
        return ChosenSeed(seed, f"input seed: random ({seed}, fresh for this run)", seed)
    secret = [seed for seed in stored_input_seeds(root / CHECKS_FOLDER / "reference_data") if seed != PUBLIC_INPUT_SEED]
    if secret:
        return ChosenSeed((choose or secrets.choice)(secret),
                          f"input seed: secret (one of the {len(secret)} stored for grading; the inputs of the "
                          "checks whose answers are computed live are fresh for this run)", fresh_seed())
    return ChosenSeed(PUBLIC_INPUT_SEED, "input seed: public (no secret input seeds here: no solutions/, and no "
                                         "reference data with secret seeds)", PUBLIC_INPUT_SEED)


def stored_input_seeds(folder):
    """The input seeds listed in ``folder/manifest.json`` (written by ``exercises/reference.py: build``); [] if none."""
    try:
        seeds = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8")).get("seeds", [])
        return sorted({int(seed) for seed in seeds})
    except (OSError, ValueError, TypeError, AttributeError):
        return []
