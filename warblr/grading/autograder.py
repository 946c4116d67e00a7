"""Building the Gradescope autograder package (``warblr grade autograder``).

The package (a folder, or a zip of it to upload)::

    setup.sh         Gradescope runs it once to build the image: a venv in /opt/warblr-venv
                     (outside /autograder/source, so the sandbox user can run it), CPU torch, warblr
    run_autograder   grades $AUTOGRADER_ROOT/submission into $AUTOGRADER_ROOT/results/results.json
    lab/             conftest.py, pytest.ini, exercises/ with every check (hidden ones included)
                     and reference_data/ computed from solutions/ -- no solutions/ source
    warblr-src/      warblr's source (pyproject.toml + warblr/), installed by setup.sh
    README.md        for the instructor

Gradescope unpacks the package into ``/autograder/source`` and runs a *copy*
of ``run_autograder`` placed at ``/autograder/run_autograder``, so the script
finds the package next to itself or, failing that, in
``$AUTOGRADER_ROOT/source``. It first makes the package folder and the
results folder unreadable to other users (``chmod 700``), then runs ``warblr
grade run``, which takes the submission in (:mod:`warblr.grading.intake`:
Gradescope keeps the symbolic links of GitHub and zip submissions; a link
is refused, never followed) and isolates it (:mod:`warblr.grading.proxies`).

The package's reference data holds the solutions' answers at the public
input seed and at :data:`SECRET_INPUT_SEEDS` secret ones drawn with
:mod:`secrets` at build time; a graded run picks one secret seed at random
(:func:`warblr.grading.plugin.choose_input_seed`), so the answers a handout
ships for the public inputs earn nothing here. Students never see the
package (``run_autograder`` makes it readable by root only).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import InvalidArgumentError
from .defaults import SECRET_INPUT_SEEDS
from .seeds import PUBLIC_INPUT_SEED, draw_secret_seeds
from .handout import ROOT_CONFTEST, STAMP, build_folder, build_reference_data, copy_exercises, write_tree



AUTOGRADER_INI = '''\
[pytest]
testpaths = exercises
addopts = -ra
filterwarnings =
    ignore::DeprecationWarning:resampy.*
    ignore::DeprecationWarning:numba.*
'''

SETUP_SH = '''\
#!/usr/bin/env bash
# Gradescope runs this once, as root, on its Ubuntu image.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${WARBLR_VENV:-/opt/warblr-venv}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q python3 python3-venv python3-pip libsndfile1
# The venv lives outside the autograder folder: the sandbox user (nobody) must be able to run it,
# and must not be able to read the autograder folder.
/usr/bin/python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu
"$VENV/bin/python" -m pip install -q "$HERE/warblr-src[test]"
chmod -R a+rX "$VENV"
'''

RUN_AUTOGRADER = '''\
#!/usr/bin/env bash
# Gradescope runs this as root for every submission.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
# Gradescope runs a copy of this script at $ROOT/run_autograder; the package itself is in $ROOT/source.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -d "$HERE/lab" ]; then SOURCE="$HERE"; else SOURCE="$ROOT/source"; fi
if [ ! -d "$SOURCE/lab" ]; then
    echo "run_autograder: the autograder package (lab/) is neither next to this script nor in $ROOT/source" >&2
    exit 2
fi
PYTHON="${WARBLR_PYTHON:-/opt/warblr-venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3)"
# The checks and reference data, and the results, must stay unreadable to the sandbox user.
chmod 700 "$SOURCE"
mkdir -p "$ROOT/results"
chmod 700 "$ROOT/results"
cd "$SOURCE/lab"
"$PYTHON" -m warblr grade run --root "$SOURCE/lab" --impl "$ROOT/submission" \\
    --grade-json "$ROOT/results/results.json" --timeout TIMEOUT -- "$@"
# Not full marks is not an error of the autograder; a missing results.json is.
[ -s "$ROOT/results/results.json" ]
'''

README = '''\
# warblr lab: Gradescope autograder

Built by `warblr grade autograder` from the instructor's lab. Upload the zip
as a Gradescope autograder (base image: Ubuntu). Students submit the four
modules (`resampling.py`, `logmel.py`, `embedding.py`, `classify.py`) at the
top level of their submission or inside an `exercises/` folder.

* `setup.sh` installs Python, CPU torch and warblr (from `warblr-src/`) into
  `/opt/warblr-venv` (outside this folder, readable by every user).
* `run_autograder` grades `$AUTOGRADER_ROOT/submission` (default
  `/autograder/submission`) into `$AUTOGRADER_ROOT/results/results.json`.
  It finds this package next to itself or in `$AUTOGRADER_ROOT/source`
  (Gradescope runs a copy of it at `/autograder/run_autograder`).
* A submission holding a symbolic link, a device, a FIFO, a hard link, or
  too many, too deep or too large files is refused before anything is read
  (every check scores 0 and says which file); links are never followed.
* `lab/` holds every check, the hidden ones included, and the reference
  values computed from `solutions/`; the solutions' source is not here.
  The reference values cover the public input seed (the handout's inputs)
  and SECRET_COUNT secret seeds drawn when this package was built; each graded
  run uses one secret seed at random, so answers copied from the handout
  score nothing. Rebuild the package to draw new ones.

How the submission is isolated: the checks and the results writer run in a
trusted grader process that never imports the submission. Each check gets a
fresh worker process that imports and runs it and exchanges only plain data
with the grader (arrays without pickle, JSON); models and estimators stay in
the worker behind handles. Gradescope runs the autograder as root, so the
worker runs as `nobody`, in an empty folder, with a scrubbed environment,
under rlimits (memory, CPU time, processes, open files, file size), without
network where the kernel allows a new network namespace. `run_autograder`
makes this folder and the results folder readable by root only, so the
worker cannot read the checks or the reference data nor touch
`results.json`; the grader kills the worker at each check's time limit.
The top of every results page says what was and was not confined.

Try it locally (as root for the uid separation):

```bash
mkdir -p /tmp/ag/submission && cp path/to/submission/*.py /tmp/ag/submission/
AUTOGRADER_ROOT=/tmp/ag WARBLR_PYTHON=$(command -v python) bash run_autograder
```
'''


def _project_root():
    """The folder holding warblr's ``pyproject.toml`` and ``warblr/`` (an editable or source install)."""
    import warblr

    root = Path(warblr.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise InvalidArgumentError(f"warblr's source (pyproject.toml next to {root / 'warblr'}) was not found: "
                                   "build the autograder from a source checkout of warblr", parameter="source")
    return root


def _copy_warblr_source(target):
    root = _project_root()
    target.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        if (root / name).is_file():
            shutil.copy2(root / name, target / name)
    shutil.copytree(root / "warblr", target / "warblr", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def build_autograder(out, *, source=".", force=False, timeout=30.0, make_zip=False,
                     secret_seeds=SECRET_INPUT_SEEDS):
    """Build the Gradescope autograder package in ``out``.

    Parameters
    ----------
    out : str or os.PathLike
        Folder to create (must not exist or be empty, unless ``force`` and it
        is an earlier package).
    source : str or os.PathLike, optional
        The instructor's lab folder holding ``exercises/`` and ``solutions/``.
    force : bool, optional
        Replace an earlier package in ``out``.
    timeout : float, optional
        Per-check time limit on Gradescope.
    make_zip : bool, optional
        Also write ``<out>.zip`` (the files at the top level of the zip, as
        Gradescope expects).
    secret_seeds : int, optional
        How many secret input seeds (drawn with :mod:`secrets`) to store
        besides the public one; a graded run uses one of them.

    Returns
    -------
    dict
        ``{"out": Path, "zip": Path or None}``.

    Raises
    ------
    InvalidArgumentError
        Bad ``source``/``out`` (see :func:`warblr.grading.handout.build_folder`)
        or a time limit that is not positive, or fewer than one secret seed.
    """
    if not isinstance(secret_seeds, int) or secret_seeds < 1:
        raise InvalidArgumentError(f"--secret-seeds: must be an int >= 1, got {secret_seeds!r}",
                                   parameter="secret_seeds")
    if not timeout > 0:
        raise InvalidArgumentError(f"--timeout: must be > 0 seconds, got {timeout!r}", parameter="timeout")
    import torch

    def fill(staging, exercises, solutions):
        lab = staging / "lab"
        copy_exercises(exercises, lab / "exercises", keep_hidden=True)
        build_reference_data(exercises, solutions, lab / "exercises" / "reference_data",
                             seeds=[PUBLIC_INPUT_SEED, *draw_secret_seeds(secret_seeds)])
        _copy_warblr_source(staging / "warblr-src")
        torch_version = torch.__version__.split("+")[0]
        write_tree(staging, {
            "lab/conftest.py": ROOT_CONFTEST, "lab/pytest.ini": AUTOGRADER_INI, "README.md": README.replace("SECRET_COUNT", str(secret_seeds)),
            "setup.sh": SETUP_SH.replace("TORCH_VERSION", torch_version),
            "run_autograder": RUN_AUTOGRADER.replace("TIMEOUT", f"{float(timeout):g}"),
            STAMP: "built by `warblr grade autograder`\n"})
        for script in ("setup.sh", "run_autograder"):
            (staging / script).chmod(0o755)

    out, _ = build_folder(out, source=source, force=force, fill=fill, what="autograder")
    archive = None
    if make_zip:
        archive = Path(shutil.make_archive(str(out), "zip", root_dir=out))
    return {"out": out, "zip": archive}

