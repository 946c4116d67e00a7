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

import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path
from typing import NamedTuple

from .defaults import CHECKS_FOLDER

#: The input seed whose inputs (and stored answers) the handout ships (``exercises/reference.py: PUBLIC_SEED``).
PUBLIC_INPUT_SEED = 0

#: Fresh random input seeds are drawn below this bound (``exercises/reference.py`` accepts [0, 2**63)).
INPUT_SEED_BOUND = 2**62

#: Most bytes an input seed file (``--input-seed-file``) may hold: ``{"input_seed": N, "note": ...}`` is ~100.
INPUT_SEED_FILE_LIMIT = 4096


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


def submission_input_seed(batch_seed, files_digest):
    """The input seed one submission of a batch is graded on: an HMAC of its files under the batch's secret seed.

    A student may learn the inputs their code was given (it may print them, and feedback shows what it
    printed or raised); with one seed for the whole batch, a table of answers to those inputs, added to any
    later submission graded into the same OUT (a late one, a resubmission, a classmate's), then scored. Keyed
    on the files, a submission that adds such a table is another submission with other inputs, while the
    same files always get the same inputs (a resumed, Ray or regraded batch agrees with itself).

    Parameters
    ----------
    batch_seed : int
        The batch's secret seed (``OUT/input-seed.json``).
    files_digest : str
        A digest of the submission's files (:func:`warblr.grading.batch.files_digest`).

    Returns
    -------
    int
        In [1, :data:`INPUT_SEED_BOUND`), never the public seed.

    Examples
    --------
    >>> a = submission_input_seed(12345, "digest-a")
    >>> a == submission_input_seed(12345, "digest-a"), a == submission_input_seed(12345, "digest-b")
    (True, False)
    >>> 1 <= a < INPUT_SEED_BOUND
    True
    """
    key = int(batch_seed).to_bytes(8, "big")
    mac = hmac.new(key, b"warblr submission input seed\0" + files_digest.encode(), hashlib.sha256).digest()
    return 1 + int.from_bytes(mac[:8], "big") % (INPUT_SEED_BOUND - 1)


def read_input_seed_file(path, *, make_private=False):
    """The input seed kept in the JSON file ``path`` (``{"input_seed": N, ...}``), read as only its owner may.

    How ``warblr grade batch`` hands its secret seed to each grading: a
    command line is readable by every local user (``/proc/<pid>/cmdline``),
    a file of mode 0600 only by its owner (and the sandbox user, another
    user, cannot reach it). So the file must be a regular file -- not a
    symbolic link (the name itself is not followed), a FIFO (it would block),
    a device or a folder -- of at most :data:`INPUT_SEED_FILE_LIMIT` bytes,
    owned by this process's user and without any permission for its group
    or others: a seed others may read is no secret, and one others may
    write they may choose (the public seed, whose answers the handout ships).

    Parameters
    ----------
    path : str or os.PathLike
    make_private : bool, keyword-only
        Make a file of this user's that others may read or write private
        (0600) instead of refusing it (the ``OUT/input-seed.json`` of an
        earlier warblr, which kept it in its private OUT).

    Returns
    -------
    int
        The seed, in [0, 2**63).

    Raises
    ------
    ValueError
        Why the file was refused; the message never quotes what it holds.
    """
    try:
        seen = os.lstat(path)
    except FileNotFoundError:
        where = "" if os.path.isabs(path) else f" (a relative path: taken from {os.getcwd()})"
        raise ValueError(f"no such file{where}") from None
    except OSError as exc:
        raise ValueError(f"cannot read it ({exc.strerror})") from None
    if stat.S_ISLNK(seen.st_mode):
        raise ValueError("a symbolic link (refused: name the file itself)")
    if not stat.S_ISREG(seen.st_mode):
        raise ValueError("not a regular file")
    try:  # O_NOFOLLOW and the inode check: the name may not be swapped for a link or another file meanwhile
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise ValueError(f"cannot read it ({exc.strerror})") from None
    try:
        info = os.fstat(handle)
        if (info.st_dev, info.st_ino) != (seen.st_dev, seen.st_ino) or not stat.S_ISREG(info.st_mode):
            raise ValueError("replaced while it was read")
        if info.st_uid != os.geteuid():
            raise ValueError(f"owned by uid {info.st_uid}, not by this grader's user (uid {os.geteuid()}): "
                             "whoever may write it could choose the inputs")
        if info.st_size > INPUT_SEED_FILE_LIMIT:
            raise ValueError(f"larger than {INPUT_SEED_FILE_LIMIT} bytes")
        if stat.S_IMODE(info.st_mode) & 0o077:
            if not make_private:
                raise ValueError(f"its mode {stat.S_IMODE(info.st_mode):04o} lets others than its owner read or "
                                 "write it, so the seed is no secret (chmod 600 it, or draw a new seed)")
            os.fchmod(handle, 0o600)
        data = b""
        while len(data) <= INPUT_SEED_FILE_LIMIT:
            chunk = os.read(handle, INPUT_SEED_FILE_LIMIT + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise ValueError(f"cannot read it ({exc.strerror})") from None
    finally:
        os.close(handle)
    if len(data) > INPUT_SEED_FILE_LIMIT:
        raise ValueError(f"larger than {INPUT_SEED_FILE_LIMIT} bytes")
    try:
        content = json.loads(data.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError alike; the bytes are not quoted (a seed's digits)
        raise ValueError('not JSON (expected {"input_seed": N})') from None
    if not isinstance(content, dict) or "input_seed" not in content:
        raise ValueError('not of the form {"input_seed": N}')
    seed = content["input_seed"]
    if type(seed) is not int:  # not a bool, a float or a string of digits
        raise ValueError("its input_seed must be an integer")
    if not 0 <= seed < 2**63:
        raise ValueError("its input_seed must be in [0, 2**63)")
    return seed


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
        ``--grade-json`` or ``--isolate``, else ``public``) or
        ``--input-seed-file`` (a seed given in a file:
        :func:`read_input_seed_file`; not with ``--input-seed``), the lab root
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
    seed_file = config.getoption("input_seed_file")
    if seed_file is not None:
        if text is not None:
            raise _usage_error("--input-seed and --input-seed-file: give one of them, not both")
        try:
            seed = read_input_seed_file(seed_file)
        except ValueError as exc:
            raise _usage_error(f"--input-seed-file {seed_file}: {exc}") from None
        # A batch's way (its seed on a command line was readable by every local user): not named, as below.
        return ChosenSeed(seed, "input seed: the one given with --input-seed-file (not named here)", seed)
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
    if has_solutions(root):  # the reference is computed live: any seed will do
        seed = fresh_seed()
        return ChosenSeed(seed, f"input seed: random ({seed}, fresh for this run)", seed)
    secret = secret_input_seeds(root)
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


def secret_input_seeds(lab):
    """The stored input seeds of ``lab`` other than the public one: [] for a student's handout."""
    return [seed for seed in stored_input_seeds(Path(lab) / CHECKS_FOLDER / "reference_data")
            if seed != PUBLIC_INPUT_SEED]


def ships_only_public_answers(lab):
    """Whether ``lab`` is a student's handout: no ``solutions/``, and stored answers for the public inputs only.

    Grading there could only draw the public inputs, whose answers it ships. A lab with ``solutions/``
    (answers computed live on fresh inputs), with stored secret seeds (a Gradescope package), or with no
    stored answers at all (checks of its own) is not one.
    """
    if has_solutions(lab):
        return False
    stored = stored_input_seeds(Path(lab) / CHECKS_FOLDER / "reference_data")
    return bool(stored) and set(stored) == {PUBLIC_INPUT_SEED}


def has_solutions(lab):
    """Whether ``lab`` holds the answers (``solutions/``), so checks compute them live on any inputs."""
    return (Path(lab) / "solutions" / "__init__.py").is_file()
