"""Building the student handout: the lab without ``solutions/`` or hidden checks.

The handout is a folder a student can work in offline::

    exercises/                 stubs + visible graded checks + conftest.py + reference.py
                               + the lab notebook lab.ipynb (when the lab has one)
    exercises/reference_data/  reference values computed from solutions/ (exercises.reference.build)
                               at the public input seed only: graded runs use inputs the handout has no
                               answers for (see warblr.grading.plugin, --input-seed)
    conftest.py                registers warblr's grading plugin
    pytest.ini                 runs exercises/, never runs hidden checks (warblr_handout = true)
    requirements.txt           what to install (warblr brings the plugin)
    README.md                  how to work and how to check your work, and a table of the points:
                               those of the checks in the handout and of the hidden ones run only at grading

Hidden checks are kept out of the copy: a test module whose ``pytestmark``
holds ``visibility("hidden")`` is left out, and a test function or class
decorated ``@pytest.mark.visibility("hidden")`` is cut from the source (the
file is re-parsed to make sure it still compiles). As a safety net the
handout's ``pytest.ini`` deselects anything still marked hidden (e.g. a
hidden ``pytest.param``), though its source then stays in the copy.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from ..errors import InvalidArgumentError, WarblrError

#: File in the handout root that marks it as ours (so --force may replace it).
STAMP = ".warblr-handout"

#: Names never copied from exercises/.
_SKIP_NAMES = {"__pycache__", "reference_data", ".pytest_cache", ".hypothesis"}

ROOT_CONFTEST = '''\
"""Registers warblr's grading plugin (points, hints, score table, --impl)."""

pytest_plugins = ["warblr.grading.plugin"]
'''

PYTEST_INI = '''\
[pytest]
testpaths = exercises
addopts = -ra
warblr_handout = true
warblr_hidden_checks = {hidden}
filterwarnings =
    ignore::DeprecationWarning:resampy.*
    ignore::DeprecationWarning:numba.*
'''

REQUIREMENTS = '''\
# CPU torch first (an unpinned torch may pull a multi-GB CUDA build):
#   python -m pip install "torch==2.13.0"
# then warblr with its test extras (the grading plugin, pytest, hypothesis,
# torchvggish, librosa ...); use the wheel or path your instructor gives you
# if warblr is not on your package index.
warblr[test]
'''

README = '''\
# warblr lab: VGGish features, step by step

You implement VGGish's audio front end and embedding, then classify bird
audio with it. Four modules in `exercises/` hold stubs that raise
`NotImplementedError`; each docstring explains the concept, the VGGish
numbers and a pitfall:

1. `exercises/resampling.py` -- mono and 16 kHz
2. `exercises/logmel.py` -- window, STFT, mel matrix, log-mel, 0.96 s examples
3. `exercises/embedding.py` -- the VGG network and the PCA postprocessor
4. `exercises/classify.py` -- pooling, a scikit-learn pipeline, cross-validated AUC

`exercises/lab.ipynb` (when your course ships it) walks through the same
steps interactively.

## Set up (once)

```bash
python -m pip install "torch==2.13.0"
python -m pip install -r requirements.txt
```

## Check your work

```bash
python -m pytest                      # every check, then your score table
python -m pytest exercises/test_logmel.py      # one exercise
python -m pytest -k periodic_hann     # one check
```

Each check is worth points. A failing check prints a **Hint** naming the
likely mistake; a function you have not written yet shows as *not attempted*.
The table at the end gives your points per exercise. Each check has a time
limit (30 s; `--grade-timeout SECONDS` to change it while you work).

The checks compare your results with reference values stored in
`exercises/reference_data/` and with torchvggish and librosa; they run
offline. Here they use the public seeded inputs; when you are graded, the
same checks use inputs drawn from a seed you cannot know, so only code that
computes its answers scores (the first line of your results says which
inputs were used).

{points_table}

Before you upload, check that the autograder will find everything (file
names, functions, imports, no links or huge files); it does not run your code:

```bash
warblr grade check exercises
```

Rules: keep the function names and signatures; import your other modules
relatively (`from . import logmel`); do not print megabytes, call
`sys.exit()` or modify numpy/torch -- such code fails its check.
'''


def write_tree(root, files):
    """Write text files under ``root``.

    Parameters
    ----------
    root : str or os.PathLike
        Folder to write into (created as needed).
    files : dict of str to str
        Relative path -> text.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Examples
    --------
    >>> import tempfile
    >>> [p.name for p in write_tree(tempfile.mkdtemp(), {"a/b.txt": "hi"})]
    ['b.txt']
    """
    written = []
    for relative, text in files.items():
        path = Path(root) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if text.startswith("\n") else text, encoding="utf-8")
        written.append(path)
    return written


def _is_hidden_mark(node):
    """``...visibility("hidden")`` (a call of an attribute or name ``visibility``)."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name != "visibility":
        return False
    values = list(node.args[:1]) + [kw.value for kw in node.keywords]
    return any(isinstance(v, ast.Constant) and v.value == "hidden" for v in values)


def _module_is_hidden(tree):
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in stmt.targets):
            if any(_is_hidden_mark(node) for node in ast.walk(stmt.value)):
                return True
    return False


def _hidden_spans(body):
    spans = []
    for stmt in body:
        if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if any(_is_hidden_mark(dec) for dec in stmt.decorator_list):
            first = min([stmt.lineno] + [dec.lineno for dec in stmt.decorator_list])
            spans.append((first, stmt.end_lineno))
        elif isinstance(stmt, ast.ClassDef):
            spans += _hidden_spans(stmt.body)
    return spans


def strip_hidden(source, *, filename="<test module>"):
    """Remove hidden checks from a test module's source.

    Parameters
    ----------
    source : str
        The module's text.
    filename : str, optional
        For error messages.

    Returns
    -------
    str or None
        The source without hidden test functions/classes; None if the whole
        module is hidden (``pytestmark`` with ``visibility("hidden")``).

    Examples
    --------
    >>> src = '@pytest.mark.visibility("hidden")\\ndef test_a():\\n    pass\\n\\ndef test_b():\\n    pass\\n'
    >>> print(strip_hidden(src))
    <BLANKLINE>
    def test_b():
        pass
    <BLANKLINE>
    """
    tree = ast.parse(source, filename=filename)
    if _module_is_hidden(tree):
        return None
    spans = _hidden_spans(tree.body)
    if not spans:
        return source
    lines = source.splitlines(keepends=True)
    drop = set()
    for first, last in spans:
        drop.update(range(first - 1, last))
    kept = "".join(line for i, line in enumerate(lines) if i not in drop)
    try:
        compile(kept, filename, "exec")
    except SyntaxError as exc:  # pragma: no cover -- a hidden test inside an odd construct
        raise WarblrError(f"{filename}: cannot cut the hidden checks out cleanly ({exc}); "
                          "move them to their own module with pytestmark = visibility('hidden')") from exc
    return kept


def copy_exercises(source, target, *, keep_hidden=False):
    """Copy the lab's ``exercises/`` folder (stubs, checks, ``lab.ipynb``, ...) to ``target``.

    Parameters
    ----------
    source, target : pathlib.Path
    keep_hidden : bool, optional
        Keep the hidden checks (the autograder); by default they are cut out
        (the student handout).

    Returns
    -------
    list of str
        Test modules left out because they are wholly hidden.
    """
    removed = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part in _SKIP_NAMES or part.startswith(".") for part in relative.parts) or path.suffix == ".pyc":
            continue
        destination = target / relative
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".py" and path.name.startswith("test_") and not keep_hidden:
            text = strip_hidden(path.read_text(encoding="utf-8"), filename=str(path))
            if text is None:
                removed.append(str(relative))
                continue
            destination.write_text(text, encoding="utf-8")
        else:
            shutil.copy2(path, destination)
    return removed


def build_reference_data(exercises, solutions, out_dir, *, seeds=None):
    """Run ``exercises/reference.py:build(out_dir, solutions_dir=solutions, seeds=seeds)`` in a fresh interpreter.

    ``seeds`` (input seeds to store) defaults to the public one only: what a
    handout ships. The Gradescope package adds secret ones.
    """
    script = textwrap.dedent("""
        import importlib.util, json, sys
        spec = importlib.util.spec_from_file_location("warblr_handout_reference", sys.argv[1])
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        seeds = json.loads(sys.stdin.read())
        module.build(sys.argv[2], solutions_dir=sys.argv[3], **({} if seeds is None else {"seeds": seeds}))
    """)
    seeds = None if seeds is None else [int(seed) for seed in seeds]
    # The seeds travel on stdin: a command line is world-readable in /proc while the build runs.
    result = subprocess.run([sys.executable, "-c", script, str(exercises / "reference.py"), str(out_dir),
                             str(solutions)], input=json.dumps(seeds), capture_output=True, text=True)
    if result.returncode != 0:
        raise WarblrError(f"{exercises / 'reference.py'}: build() failed:\n{result.stderr[-3000:]}")


def list_checks(source):
    """The lab's graded checks as dicts (name, exercise, points, visibility, partial), hidden ones included.

    Collected by pytest itself (``--collect-only --grade-list``), so parametrized checks count one by one.
    """
    with tempfile.TemporaryDirectory(prefix="warblr-checks-") as scratch:
        listing = Path(scratch) / "checks.json"
        result = subprocess.run([sys.executable, "-m", "pytest", "exercises", "--collect-only", "-q",
                                 "-p", "no:cacheprovider", f"--grade-list={listing}"], cwd=source,
                                capture_output=True, text=True)
        if not listing.is_file():
            raise WarblrError(f"{Path(source) / 'exercises'}: the checks could not be collected:\n"
                              f"{(result.stdout + result.stderr)[-3000:]}")
        return json.loads(listing.read_text(encoding="utf-8"))


def hidden_summary(checks):
    """``"N checks, P points"`` of the hidden checks among ``checks`` (from :func:`list_checks`).

    Examples
    --------
    >>> hidden_summary([{"visibility": "hidden", "points": 2.0}, {"visibility": "visible", "points": 1.0}])
    '1 checks, 2 points'
    """
    hidden = [check for check in checks if check["visibility"] == "hidden"]
    return f"{len(hidden)} checks, {sum(check['points'] for check in hidden):g} points"


def points_table(checks):
    """The handout README's table: per exercise, the checks and points students see, and those run only at grading.

    Examples
    --------
    >>> print(points_table([{"exercise": "logmel", "visibility": "hidden", "points": 2.0, "partial": False},
    ...                     {"exercise": "logmel", "visibility": "visible", "points": 3.0, "partial": True}]))
    | exercise | checks you can run (points) | hidden checks, run only at grading (points) | may give partial credit |
    |---|---:|---:|---:|
    | logmel | 1 (3) | 1 (2) | 1 |
    | **total** | **1 (3)** | **1 (2)** | **1** |
    <BLANKLINE>
    Hidden checks are not in this handout: the autograder runs them after you upload, so your score there can be
    lower than here. A check that may give partial credit awards a fraction of its points for work partly right.
    """
    def cell(group):
        return f"{len(group)} ({sum(check['points'] for check in group):g})"

    rows = ["| exercise | checks you can run (points) | hidden checks, run only at grading (points) | "
            "may give partial credit |", "|---|---:|---:|---:|"]
    exercises = list(dict.fromkeys(check["exercise"] for check in checks))
    for exercise in exercises + [None]:
        group = [check for check in checks if exercise is None or check["exercise"] == exercise]
        visible = [check for check in group if check["visibility"] != "hidden"]
        hidden = [check for check in group if check["visibility"] == "hidden"]
        partial = sum(bool(check.get("partial")) for check in group)
        if exercise is None:
            rows.append(f"| **total** | **{cell(visible)}** | **{cell(hidden)}** | **{partial}** |")
        else:
            rows.append(f"| {exercise} | {cell(visible)} | {cell(hidden)} | {partial} |")
    return "\n".join(rows) + ("\n\nHidden checks are not in this handout: the autograder runs them after you "
                              "upload, so your score there can be\nlower than here. A check that may give partial "
                              "credit awards a fraction of its points for work partly right.")


def build_handout(out, *, source=".", force=False):
    """Build the student handout in ``out``.

    Parameters
    ----------
    out : str or os.PathLike
        Handout folder to create. It must not exist or be empty, unless
        ``force`` and it is an earlier handout (it holds ``.warblr-handout``).
    source : str or os.PathLike, optional
        The instructor's lab folder holding ``exercises/`` and ``solutions/``.
    force : bool, optional
        Replace an earlier handout in ``out``.

    Returns
    -------
    dict
        ``{"out": Path, "removed_modules": [...], "reference_data": Path}``.

    Raises
    ------
    InvalidArgumentError
        If ``source`` lacks ``exercises/`` or ``solutions/``, or ``out`` is in the way.
    """
    def fill(staging, exercises, solutions):
        checks = list_checks(exercises.parent)
        removed = copy_exercises(exercises, staging / "exercises")
        build_reference_data(exercises, solutions, staging / "exercises" / "reference_data")
        write_tree(staging, {"conftest.py": ROOT_CONFTEST, "pytest.ini": PYTEST_INI.format(hidden=hidden_summary(checks)),
                             "requirements.txt": REQUIREMENTS, "README.md": README.format(points_table=points_table(checks)),
                             STAMP: "built by `warblr grade handout`\n"})
        return removed

    out, removed = build_folder(out, source=source, force=force, fill=fill, what="handout")
    return {"out": out, "removed_modules": removed, "reference_data": out / "exercises" / "reference_data"}


def build_folder(out, *, source, force, fill, what):
    """Build a folder derived from the lab (handout, autograder) in a staging copy, then move it to ``out``.

    Parameters
    ----------
    out : path
        Folder to create; it must not exist or be empty, unless ``force`` and
        it holds the :data:`STAMP` file of an earlier build.
    source : path
        The instructor's lab folder holding ``exercises/`` and ``solutions/``.
    force : bool
    fill : callable
        ``fill(staging, exercises, solutions)`` writes the content (and the
        stamp); its return value is passed back.
    what : str
        "handout", "autograder": for messages.

    Returns
    -------
    (pathlib.Path, object)
        ``out`` resolved, and what ``fill`` returned.

    Raises
    ------
    InvalidArgumentError
        If ``source`` lacks ``exercises/``, ``exercises/reference.py`` or
        ``solutions/``, or ``out`` is in the way.
    """
    source, out = Path(source).resolve(), Path(out).resolve()
    exercises, solutions = source / "exercises", source / "solutions"
    for folder in (exercises, solutions):
        if not folder.is_dir():
            raise InvalidArgumentError(f"--source {source}: no {folder.name}/ folder there", parameter="source")
    if not (exercises / "reference.py").is_file():
        raise InvalidArgumentError(f"--source {source}: no exercises/reference.py (it builds the reference data)",
                                   parameter="source")
    if out == source or any(folder == out or folder in out.parents for folder in (exercises, solutions)):
        raise InvalidArgumentError(f"--out {out}: choose a folder outside {source} and its exercises/ and "
                                   "solutions/", parameter="out")
    if out.exists() and any(out.iterdir()):
        if not (force and (out / STAMP).is_file()):
            raise InvalidArgumentError(f"--out {out}: folder exists and is not empty "
                                       f"(use --force to replace an earlier {what})", parameter="out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        result = fill(staging, exercises, solutions)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out, result
