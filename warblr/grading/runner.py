"""Running the graded checks in a child pytest, surviving code that kills it.

By default the child pytest grades with ``--isolate``: the student's code
runs in confined worker processes and cannot end the grader (see
:mod:`warblr.grading.remote`). Without isolation (``--no-isolation``, for
debugging) the code shares the grader's process, and the rest of this
module's machinery matters: the plugin already keeps one check's failure, hang (pytest-timeout),
``sys.exit()``, memory error or monkey-patching from touching the others. What
it cannot survive in-process is code that ends the interpreter: ``os._exit()``,
a segfault, the kernel's OOM killer, or a hang that ignores the timeout (the
plugin's watchdog then ends the process itself). :func:`run_checks` runs pytest
in a child process with ``--grade-json``; the plugin rewrites that file before
every check, so after a crash it names the check that was running. The runner
then starts pytest again with ``--grade-resume``, which keeps every finished
check and runs the rest, until all checks have a result. The final
``results.json`` is always well formed, even if pytest never got to write it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import InvalidArgumentError
from .impl import NAMED_IMPLS
from .report import results_json, write_json_atomic


def _progress(path):
    """``(crashed, finished)`` from a results.json: whether a check was left running, how many finished.

    ``(None, 0)`` if the file is missing, unreadable or lists no check.
    """
    try:
        tests = json.loads(Path(path).read_text(encoding="utf-8")).get("tests", [])
    except (OSError, ValueError):
        return None, 0
    if not tests:
        return None, 0
    outcomes = [(t.get("extra_data") or {}).get("outcome") for t in tests]
    return "running" in outcomes, sum(o != "not_run" for o in outcomes)


def pytest_command(*, impl="exercises", grade_json, timeout=30.0, max_memory=None, resume=False,
                   pytest_args=(), isolate=True, sandbox_user=None):
    """The child pytest command line (a list)."""
    command = [sys.executable, "-m", "pytest", "exercises", f"--impl={impl}", f"--grade-json={grade_json}",
               f"--grade-timeout={timeout:g}", "-p", "no:cacheprovider"]
    if isolate:
        command.append("--isolate")
        if sandbox_user:
            command.append(f"--sandbox-user={sandbox_user}")
    command.append(f"--grade-max-memory={max_memory or 'none'}")
    if resume:
        command.append("--grade-resume")
    return command + list(pytest_args)


def run_checks(*, root=".", impl="exercises", grade_json=None, timeout=30.0, max_memory=None,
               pytest_args=(), max_restarts=20, env=None, stdout=None, stderr=None, isolate=True,
               sandbox_user=None):
    """Run the graded checks of the lab in ``root``; restart after crashes.

    Parameters
    ----------
    root : str or os.PathLike
        Folder holding ``exercises/`` and the ``conftest.py`` that registers
        the plugin (the instructor repository or a student handout).
    impl : str
        ``--impl``: ``exercises``, ``solutions`` or a path to a package folder.
    grade_json : str or os.PathLike, optional
        Where to write ``results.json``; a temporary file if None.
    timeout : float
        Seconds per check.
    max_memory : str, optional
        Address-space cap of the code under test (e.g. ``"6G"``): of each
        worker when isolated, else of the child pytest; None for none.
    pytest_args : sequence of str
        More pytest arguments (e.g. ``["-q", "-x"]``).
    max_restarts : int
        Most restarts after crashes.
    env : dict, optional
        Environment of the child (default: this process's).
    stdout, stderr : optional
        Passed to :func:`subprocess.run` (default: inherit).
    isolate : bool
        Run the graded code in confined worker processes (``--isolate``);
        False runs it inside the checks' process (unsafe: for debugging).
    sandbox_user : str, optional
        The worker's user when running as root (default ``nobody``).

    Returns
    -------
    dict
        ``{"returncode": int, "runs": int, "crashes": int, "results": dict}`` --
        the last pytest exit status, how many pytest runs, how many of them
        crashed, and the final results.json contents.
    """
    root = Path(root).resolve()
    if not (root / "exercises").is_dir():
        raise InvalidArgumentError(f"--root {root}: no exercises/ folder there")
    if impl not in NAMED_IMPLS:
        impl = str(Path(impl).resolve())
    cleanup = None
    if grade_json is None:
        handle, cleanup = tempfile.mkstemp(prefix="warblr-results-", suffix=".json")
        os.close(handle)
        os.unlink(cleanup)
        grade_json = cleanup
    grade_json = Path(grade_json).resolve()
    grade_json.unlink(missing_ok=True)
    runs = crashes = 0
    returncode = None
    resume = False
    finished_before = -1
    try:
        while True:
            command = pytest_command(impl=impl, grade_json=grade_json, timeout=timeout, max_memory=max_memory,
                                     resume=resume, pytest_args=pytest_args, isolate=isolate,
                                     sandbox_user=sandbox_user)
            returncode = subprocess.run(command, cwd=root, env=env, stdout=stdout, stderr=stderr).returncode
            runs += 1
            crashed, finished = _progress(grade_json)
            if crashed is None:  # pytest died before writing anything, or no check was collected
                crashes += 1
                _write_crash_report(grade_json, returncode)
                break
            if not crashed:  # pytest ended normally (a -x or Ctrl-C stop is not resumed)
                break
            crashes += 1
            if finished <= finished_before or runs > max_restarts:
                break
            finished_before, resume = finished, True
        results = json.loads(grade_json.read_text(encoding="utf-8"))
    finally:
        if cleanup:
            Path(cleanup).unlink(missing_ok=True)
    return {"returncode": returncode, "runs": runs, "crashes": crashes, "results": results}


def _write_crash_report(path, returncode):
    note = (f"The grading run failed before any check could run (pytest exit status {returncode}); "
            "see the autograder log. Common causes: a missing dependency or an error in the checks' "
            "collection.")
    write_json_atomic(path, results_json([], execution_time=0.0, notes=[note]))
