"""Running the graded checks in a child pytest, surviving code that kills it.

By default the child pytest grades with ``--isolate``: the student's code
runs in confined worker processes and cannot end the grader (see
:mod:`warblr.grading.fork_server` and :mod:`warblr.grading.proxies`). Without isolation (``--no-isolation``, for
debugging) the code shares the grader's process, and the rest of this
module's machinery matters: the plugin already keeps one check's failure, hang (pytest-timeout),
``sys.exit()``, memory error or monkey-patching from touching the others. What
it cannot survive in-process is code that ends the interpreter: ``os._exit()``,
a segfault, the kernel's OOM killer, or a hang that ignores the timeout (the
plugin's watchdog then ends the process itself). :func:`run_checks` runs pytest
in a child process with ``--grade-json``; the plugin rewrites that file before
every check, so after a crash it names the check that was running. The runner
then starts pytest again with ``--grade-resume``, which keeps every finished
check and runs the rest, until all checks have a result. The whole run has
an overall time limit (``total_timeout``): past it the child pytest and
everything it started are killed and the unfinished checks score 0 with a
note. When isolated, the child's own address space is capped
(``grader_max_memory``, a soft limit that its workers lower further for
themselves). The final ``results.json`` is always well formed, even if
pytest never got to write it.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import InvalidArgumentError
from .impl import NAMED_IMPLS
from .report import results_json, write_json_atomic

#: Seconds a whole grading run may take by default (every check, every restart).
TOTAL_TIMEOUT = 3600.0

#: Address-space cap (bytes) of the grading pytest itself when isolated: torch's reservations fit well
#: below it, a reply bomb does not.
GRADER_MAX_MEMORY = 16 << 30


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
               sandbox_user=None, total_timeout=TOTAL_TIMEOUT, grader_max_memory=GRADER_MAX_MEMORY):
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
    total_timeout : float, optional
        Seconds the whole run may take (None or 0: no limit); past it the
        child pytest and its processes are killed and the unfinished checks
        score 0.
    grader_max_memory : int, optional
        Address-space cap (bytes) of the child pytest when isolated (None or
        0: none).

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
    deadline = time.monotonic() + total_timeout if total_timeout else None
    cap = grader_max_memory if isolate and grader_max_memory else None
    try:
        while True:
            command = pytest_command(impl=impl, grade_json=grade_json, timeout=timeout, max_memory=max_memory,
                                     resume=resume, pytest_args=pytest_args, isolate=isolate,
                                     sandbox_user=sandbox_user)
            returncode = _run_until(command, deadline, cwd=root, env=env, stdout=stdout, stderr=stderr,
                                    memory_cap=cap)
            runs += 1
            if returncode is None:
                _close_after_timeout(grade_json, total_timeout)
                break
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


def _limit_address_space(cap):
    def limit():
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))

    return limit


def _run_until(command, deadline, *, memory_cap=None, **kwargs):
    """Run ``command`` in a session of its own; its exit status, or None if ``deadline`` passed (it was killed)."""
    process = subprocess.Popen(command, start_new_session=True,
                               preexec_fn=_limit_address_space(memory_cap) if memory_cap else None, **kwargs)
    try:
        return process.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
        process.wait()
        return None
    except BaseException:
        process.kill()
        process.wait()
        raise


def _close_after_timeout(path, total_timeout):
    """Finish a results.json after the overall time limit: unfinished checks fail with 0 points."""
    note = (f"The grading run passed its overall time limit ({total_timeout:g} s) and was stopped; checks "
            "that had not finished score 0.")
    try:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
        tests = results["tests"]
    except (OSError, ValueError, KeyError, TypeError):
        write_json_atomic(path, results_json([], execution_time=float(total_timeout), notes=[note]))
        return
    for test in tests:
        extra = test.setdefault("extra_data", {}) or {}
        if extra.get("outcome") in ("running", "not_run"):
            extra["outcome"] = "failed"
            test.update(score=0.0, status="failed",
                        output=f"not finished: {note}\n{test.get('output', '')}".rstrip())
    results["score"] = sum(float(test.get("score", 0)) for test in tests)
    results["output"] = f"{note}\n{results.get('output', '')}"
    write_json_atomic(path, results)


def _write_crash_report(path, returncode):
    note = (f"The grading run failed before any check could run (pytest exit status {returncode}); "
            "see the autograder log. Common causes: a missing dependency or an error in the checks' "
            "collection.")
    write_json_atomic(path, results_json([], execution_time=0.0, notes=[note]))
