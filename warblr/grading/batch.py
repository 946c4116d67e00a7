"""``warblr grade batch``: grade every submission of a course, resumably, in parallel or on Ray.

Each submission is read by the same intake as ``warblr grade run``
(:func:`warblr.grading.intake.take_in`), copied from the bytes read into a
private staging folder, and graded by :func:`warblr.grading.runner.run_checks`
-- the very function behind ``warblr grade run``, so the same child pytest,
the same sandboxed workers and the same time limits. ``--jobs N`` graders
run at once (each is its own child pytest with its own sandbox, fork server
and scratch folders); ``--ray ADDRESS`` sends the same call to Ray tasks
instead. A submission that hangs, crashes or bombs costs its own checks'
time limits and scores 0 on what it broke; the batch goes on and lists it.

Resuming: a submission's fingerprint is the SHA-256 of warblr's version,
the lab's checks (:func:`checks_digest`), the grading options and the submission's
files. Its ``results.json`` and ``feedback.md`` are written atomically, then
``graded.json`` records the fingerprint: a rerun grades only submissions
without a matching record (``--regrade`` grades all), and a killed run loses
only the submissions in flight. The gradebook (:mod:`warblr.grading.gradebook`)
is rebuilt from the records at the end; it is a function of the results
alone, so every way of running writes the same bytes. Timing, which differs
between runs, is kept apart in ``graded.json`` and the printed throughput.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from .. import __version__
from ..errors import InvalidArgumentError, SubmissionError
from ..fileio import atomic_write, exclusive, remove_temporaries
from ..raycluster import RaySettings, connect, shutdown
from .defaults import DEFAULT_CHECK_TIMEOUT, DEFAULT_SANDBOX_USER, DEFAULT_WORKER_MEMORY
from .failures import clean_text
from .gradebook import Row, feedback_markdown, write_gradebook
from .impl import EXERCISE_MODULES
from .intake import copy_submission, take_in
from .report import results_json, write_json_atomic
from .seeds import (fresh_seed, has_solutions, read_input_seed_file, ships_only_public_answers,
                    submission_input_seed)
from .runner import run_checks
from .submissions import find_submissions, parse_due

#: Memory one grader (child pytest, fork server and one worker with torch) is given when sizing --jobs.
MEMORY_PER_JOB = 2 << 30

#: The state file of a graded submission (written last).
GRADED_FILE = "graded.json"


@dataclass(frozen=True)
class GradingOptions:
    """How each submission is graded (part of the fingerprint).

    Parameters
    ----------
    lab : str
        The lab folder holding ``exercises/`` (checks) and ``conftest.py``.
    timeout : float
        Seconds per check.
    max_memory : str or None
        Address-space cap of the graded code (``"6G"``), None for none.
    sandbox_user : str
        The worker's user when grading as root.
    threads : int
        Math-library threads of each grader (``OMP_NUM_THREADS``...).
    leaderboard : bool
        Put the checks' leaderboard figures into each results.json (``--grade-leaderboard``).
    input_seed : int or None
        The seeded checks' input seed: the batch's secret seed, and in each submission's own options the seed
        derived from it and the submission's files (:func:`warblr.grading.seeds.submission_input_seed`);
        None lets each grading pick (a lab without ``solutions/`` picks one of its stored secret seeds).
        It reaches the grading pytest in a file only this user may read (``--input-seed-file``, written by
        :func:`grade_submission`), never on its command line: every local user may read those
        (``/proc/<pid>/cmdline``).
    timing_lock : str or None
        Lock file shared by the batch's graders on this machine (``--grade-timing-lock``): timed checks
        run while no other grader runs a check (:mod:`warblr.grading.timing_lock`). None on a Ray cluster
        (a private local Ray keeps it): its graders may be on other machines, and a lock on a shared --out
        would stop the whole cluster.
    trusted : bool
        The students' code may run as the grader's own user (``--trust-submissions``). Checked where each
        grading runs (:func:`grade_submission`), on Ray's nodes too: a Ray worker need not be root when
        the driver is (Ray's images run as uid 1000).
    """

    lab: str
    timeout: float = DEFAULT_CHECK_TIMEOUT
    max_memory: str | None = DEFAULT_WORKER_MEMORY
    sandbox_user: str = DEFAULT_SANDBOX_USER
    threads: int = 1
    leaderboard: bool = False
    input_seed: int | None = None
    timing_lock: str | None = None
    trusted: bool = False

    def fingerprint_fields(self):
        """The options that can change a result (not where the lab lives, the threads, the timing lock or trust)."""
        return {"timeout": self.timeout, "max_memory": self.max_memory, "sandbox_user": self.sandbox_user,
                "leaderboard": self.leaderboard, "input_seed": self.input_seed}

    def pytest_args(self, input_seed_file=None):
        """The grading pytest's options these settings add.

        Parameters
        ----------
        input_seed_file : str, optional
            A file holding :attr:`input_seed` (``{"input_seed": N}``, mode 0600), passed as
            ``--input-seed-file``; needed when there is an input seed. The seed itself is never an argument.

        Raises
        ------
        ValueError
            An input seed but no ``input_seed_file``.
        """
        if self.input_seed is not None and not input_seed_file:
            raise ValueError("GradingOptions.pytest_args: the input seed goes to the grading in an input seed file "
                             "(input_seed_file=...), never on its command line")
        return ((["--grade-leaderboard"] if self.leaderboard else [])
                + ([f"--input-seed-file={input_seed_file}"] if self.input_seed is not None else [])
                + ([f"--grade-timing-lock={self.timing_lock}"] if self.timing_lock else []))


def usable_cores():
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_per_grader(jobs):
    """Math-library threads for each of ``jobs`` graders on one machine: the usable cores shared out, at least 1."""
    return max(1, usable_cores() // jobs)


def grader_environment(threads):
    """This process's environment with the math libraries held to ``threads`` threads (``OMP_NUM_THREADS``...)."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    return env


def default_jobs():
    """``(jobs, why)``: graders to run at once on this machine -- one per core, :data:`MEMORY_PER_JOB` each."""
    cores = usable_cores()
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    by_memory = cores if available is None else max(1, available // MEMORY_PER_JOB)
    jobs = max(1, min(cores, by_memory))
    memory = "unknown memory" if available is None else f"{available / (1 << 30):.0f} GiB available"
    return jobs, (f"{jobs} parallel grader(s): {cores} core(s), {memory}, "
                  f"{MEMORY_PER_JOB >> 30} GiB per grader")


#: Files at the lab's top that configure the checks (part of the checks' digest).
LAB_CONFIG = ("conftest.py", "pytest.ini", "pyproject.toml")


def checks_digest(lab):
    """SHA-256 of what decides a grade in the lab: the checks and their data, the pytest configuration.

    That is every Python file of ``exercises/`` except the student modules
    (checks, ``conftest.py``, ``reference.py``), everything under
    ``exercises/reference_data/``, and the lab's :data:`LAB_CONFIG` files --
    not the stubs nor the notebook, which change no score.

    Raises
    ------
    InvalidArgumentError
        ``lab`` has no ``exercises/`` folder (``parameter="lab"``).
    """
    lab = Path(lab)
    exercises = lab / "exercises"
    if not exercises.is_dir():
        raise InvalidArgumentError(f"--lab {lab}: no exercises/ folder there (the checks)", parameter="lab")
    digest = hashlib.sha256()
    student = {f"{name}.py" for name in EXERCISE_MODULES}
    paths = [lab / name for name in LAB_CONFIG] + sorted(exercises.rglob("*"))
    for path in paths:
        relative = path.relative_to(lab)
        decides = relative.parent == Path() or relative.suffix == ".py" or "reference_data" in relative.parts
        if not path.is_file() or not decides or "__pycache__" in relative.parts \
                or path.parent == exercises and path.name in student:
            continue
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def fingerprint(files, *, checks, options):
    """SHA-256 naming everything that can change a submission's grade.

    Parameters
    ----------
    files : dict of str to bytes
        The submission's files as intake read them.
    checks : str
        :func:`checks_digest` of the lab.
    options : GradingOptions

    Returns
    -------
    str

    Examples
    --------
    >>> a = fingerprint({"logmel.py": b"x = 1"}, checks="c", options=GradingOptions(lab="."))
    >>> a == fingerprint({"logmel.py": b"x = 2"}, checks="c", options=GradingOptions(lab="."))
    False
    """
    digest = hashlib.sha256()
    digest.update(json.dumps({"warblr": __version__, "checks": checks, "options": options.fingerprint_fields()},
                             sort_keys=True).encode())
    digest.update(files_digest(files).encode())
    return digest.hexdigest()


def files_digest(files):
    """SHA-256 of a submission's files: their names and contents, in name order.

    Examples
    --------
    >>> files_digest({"a.py": b"x"}) == files_digest({"a.py": b"y"})
    False
    """
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(b"\0" + name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def submission_options(options, files):
    """``options`` for one submission: its own input seed (:func:`warblr.grading.seeds.submission_input_seed`).

    Examples
    --------
    >>> submission_options(GradingOptions(lab="."), {"a.py": b"x"}).input_seed is None
    True
    """
    if options.input_seed is None:
        return options
    return replace(options, input_seed=submission_input_seed(options.input_seed, files_digest(files)))


#: The batch's input seed, drawn once per output folder and kept (a resumed or rerun batch reuses it).
INPUT_SEED_FILE = "input-seed.json"


def batch_input_seed(out, lab):
    """One fresh secret input seed for a whole batch, kept in ``OUT/input-seed.json``; None without ``solutions/``.

    Each submission is graded on inputs drawn from this seed and its own files
    (:func:`warblr.grading.seeds.submission_input_seed`): the same files always get the same inputs (a
    local, Ray or resumed run agree), and no student can table the answers to inputs they saw for other
    files. The seed is drawn with :mod:`secrets` when the batch starts, after the deadline. A lab without ``solutions/`` (a Gradescope-style package) has only its stored secret
    seeds: each grading then picks one of them itself.

    The file is this user's only (0600, written so from its first byte; one an earlier warblr left readable
    is made so), and is read refusing a link or anything but a small regular file of this user's
    (:func:`warblr.grading.seeds.read_input_seed_file`).

    Raises
    ------
    InvalidArgumentError
        ``OUT/input-seed.json`` is there but refused (``parameter="out"``); it is never replaced.

    Examples
    --------
    >>> batch_input_seed(tempfile.mkdtemp(), tempfile.mkdtemp()) is None
    True
    """
    if not has_solutions(lab):
        return None
    path = Path(out) / INPUT_SEED_FILE
    if os.path.lexists(path):
        try:
            return read_input_seed_file(path, make_private=True)
        except ValueError as exc:
            raise InvalidArgumentError(f"--out {out}: the batch's input seed file {INPUT_SEED_FILE}: {exc} (remove "
                                       "it to draw a new seed: every submission is then graded again)",
                                       parameter="out") from None
    seed = fresh_seed()
    write_json_atomic(path, {"input_seed": seed, "note": "the batch's secret: each submission's inputs derive from "
                                                         "it and the submission's files"}, private=True)
    return seed


#: Why a batch will not run students' code as a user other than root without ``--trust-submissions``.
UNTRUSTED_REASON = ("not running as root, so every student's code would run as you, with no uid separation: it could "
                    "read the batch's input seed and change the other submissions' results. Run it as root (the "
                    "worker then runs as --sandbox-user), or pass --trust-submissions for code you trust")


def untrusted_grader(options):
    """:data:`UNTRUSTED_REASON` where this process may not grade with ``options`` (not root, not trusted), else ''."""
    return "" if options.trusted or os.geteuid() == 0 else UNTRUSTED_REASON


def grade_submission(folder, options):
    """Grade one staged submission exactly as ``warblr grade run --impl FOLDER`` does; return a dict.

    Parameters
    ----------
    folder : str
        The submission (a folder holding the student modules).
    options : GradingOptions

    Returns
    -------
    dict
        ``{"results": results.json as a dict, "crashes": int, "seconds": float}``, or ``{"refused": why}``
        without running anything where this process is not root and ``options.trusted`` is False
        (:func:`untrusted_grader`): the batch then stops.

    Notes
    -----
    The batch's input seed goes to the grading pytest in a temporary file only this user may read (mkstemp:
    0600; the sandboxed workers see a private ``/tmp`` of their own, and run as another user), removed once
    every restart of the grading is over -- never on its command line. On Ray the seed travels to the task
    inside ``options`` (Ray's task arguments, not a command line), and the file is written on the node that
    grades, so it needs no shared ``OUT/input-seed.json``.
    """
    refused = untrusted_grader(options)
    if refused:  # on the node that grades: the driver cannot know which user Ray's workers run as
        return {"refused": f"{refused} (this grader runs as uid {os.geteuid()} on {socket.gethostname()})"}
    env = grader_environment(options.threads)
    handle, grade_json = tempfile.mkstemp(prefix="warblr-batch-", suffix=".json")
    os.close(handle)
    seed_file = None
    started = time.monotonic()
    try:
        if options.input_seed is not None:
            handle, seed_file = tempfile.mkstemp(prefix="warblr-seed-", suffix=".json")  # mode 0600, this user's
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump({"input_seed": options.input_seed}, stream)
        outcome = run_checks(root=options.lab, impl=str(folder), grade_json=grade_json, timeout=options.timeout,
                             max_memory=options.max_memory, sandbox_user=options.sandbox_user, env=env,
                             pytest_args=options.pytest_args(input_seed_file=seed_file),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        Path(grade_json).unlink(missing_ok=True)
        if seed_file:
            Path(seed_file).unlink(missing_ok=True)
    return {"results": outcome["results"], "crashes": outcome["crashes"], "seconds": time.monotonic() - started}


def problem_of(graded, *, trusted=False):
    """Why a graded submission needs the instructor's look ('' if it does not): crashes, time limits, and code
    that ran without uid separation unless the batch was told to trust it (``trusted``)."""
    results = graded["results"]
    notes = []
    if graded.get("crashes"):
        notes.append(f"the grader's process stopped {graded['crashes']} time(s) (crash, os._exit or kill)")
    timed_out = [t["name"] for t in results.get("tests", []) if "longer than its time limit" in t.get("output", "")]
    if timed_out:
        notes.append(f"{len(timed_out)} check(s) hit the time limit ({', '.join(timed_out[:3])}"
                     f"{' ...' if len(timed_out) > 3 else ''})")
    died = [t["name"] for t in results.get("tests", []) if (t.get("extra_data") or {}).get("outcome") == "running"
            or "ended its process" in t.get("output", "") or "crashed the worker" in t.get("output", "")]
    if died:
        notes.append(f"{len(died)} check(s) ended by a dead worker")
    if not results.get("tests"):
        notes.append("no check ran: " + str(results.get("output", "")).strip()[:300])
    if not trusted and "uid separation not available" in str(results.get("output", "")).lower():
        notes.append("graded WITHOUT uid separation: the student's code ran as the grader's user and could reach "
                     "the other submissions' results (see its isolation lines)")
    return "; ".join(notes)


def students_in_several(rows):
    """``{key: note}`` for every submission that shares a student id with another one.

    A Gradescope group may list a student who also submitted alone (or in a second group): canvas.csv then has
    a row per submission for that student, and whichever Canvas takes last wins. Flagged, never resolved here.

    Examples
    --------
    >>> from types import SimpleNamespace as S
    >>> students_in_several([S(key="a", students=[S(id="42")]), S(key="b", students=[S(id="42"), S(id="7")])])
    {'a': 'student 42 is also in b: one student, several rows in canvas.csv', \
'b': 'student 42 is also in a: one student, several rows in canvas.csv'}
    """
    where = {}
    for row in rows:
        for student in row.students:
            if student.id:
                where.setdefault(student.id, set()).add(row.key)
    notes = {}
    for student_id, keys in sorted(where.items()):
        for key in sorted(keys) if len(keys) > 1 else ():
            others = ", ".join(sorted(keys - {key}))
            shown = clean_text(student_id).replace("\n", "\\n")  # one line, whatever the export held
            note = f"student {shown} is also in {others}: one student, several rows in canvas.csv"
            notes[key] = "; ".join(filter(None, [notes.get(key), note]))
    return notes


def _refused_results(reason):
    return results_json([], execution_time=0.0, notes=[f"submission refused, not graded: {reason}"])


class _Store:
    """The per-submission files in ``OUT/students/<key>/``."""

    def __init__(self, out):
        self.root = Path(out) / "students"

    def folder(self, key):
        return self.root / key

    def keep_input_seed(self, key, seed):
        """Keep ``key``'s own input seed in ``input-seed.json`` (0600), for ``grade run --input-seed-file``."""
        if seed is None:
            return
        path = self.folder(key) / INPUT_SEED_FILE
        try:
            if read_input_seed_file(path) == seed:
                return
        except ValueError:
            pass  # missing, another seed (the files changed), or refused: written anew
        write_json_atomic(path, {"input_seed": seed, "note": "this submission's inputs: reproduce its grade with "
                                                             "warblr grade run -- --input-seed-file THIS_FILE"},
                          private=True)

    def graded(self, key):
        """The stored record of ``key`` (dict) or None when missing or unreadable."""
        try:
            record = json.loads((self.folder(key) / GRADED_FILE).read_text(encoding="utf-8"))
            record["results"] = json.loads((self.folder(key) / "results.json").read_text(encoding="utf-8"))
            return record
        except (OSError, ValueError, KeyError):
            return None

    def save(self, key, graded, row):
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        remove_temporaries(folder)
        results = dict(graded["results"])
        results.pop("execution_time", None)  # timing differs between runs; it lives in graded.json
        write_json_atomic(folder / "results.json", results)
        row.results = results
        text = feedback_markdown(row)
        atomic_write(folder / "feedback.md", lambda handle: handle.write(text), mode="w")
        record = {key_: value for key_, value in graded.items() if key_ != "results"}
        write_json_atomic(folder / GRADED_FILE, record)  # last: the submission counts as done from here


@dataclass
class BatchSummary:
    """What :func:`grade_batch` did: counts, throughput and the files written."""

    submissions: int
    graded: int
    reused: int
    refused: int
    problems: list
    seconds: float
    files: dict
    jobs: int
    cpu_seconds: float = 0.0

    @property
    def per_minute(self):
        """Submissions graded per minute of wall time (0 when none was graded)."""
        return 60.0 * self.graded / self.seconds if self.graded and self.seconds > 0 else 0.0


class _ThreadBackend:
    """``jobs`` graders in threads of this process (each grader is a child pytest: the GIL is not in the way)."""

    def __init__(self, jobs):
        self.pool = ThreadPoolExecutor(max_workers=jobs)

    def submit(self, folder, options):
        return self.pool.submit(grade_submission, str(folder), options)

    def finished(self, handles):
        """``[(handle, result getter)]`` of the handles done, waiting for at least one."""
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        return [(handle, handle.result) for handle in done]

    def close(self, handles):
        for handle in handles:
            handle.cancel()
        self.pool.shutdown(wait=True)


class _RayBackend:
    """Ray tasks (one CPU each) on the cluster at ``address``, started here if need be."""

    def __init__(self, address):
        self.started, self.shutdown = connect(RaySettings(address=address)), shutdown
        import ray

        self.ray = ray
        self.task = ray.remote(num_cpus=1, max_retries=1)(grade_submission)
        self.cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def submit(self, folder, options):
        return self.task.remote(str(folder), options)

    def finished(self, handles):
        done, _ = self.ray.wait(handles, num_returns=1)
        return [(handle, lambda handle=handle: self.ray.get(handle)) for handle in done]

    def close(self, handles):
        for handle in handles:
            self.ray.cancel(handle, force=True)
        if self.started:
            self.shutdown()


def grade_batch(submissions, *, out, lab=".", jobs=None, ray=None, regrade=False, similarity=False,
                timeout=DEFAULT_CHECK_TIMEOUT, max_memory=DEFAULT_WORKER_MEMORY, sandbox_user=DEFAULT_SANDBOX_USER,
                assignment="warblr lab", leaderboard=False, due=None,
                progress=True, log=print, trust_submissions=False):
    """Grade every submission in ``submissions`` into ``out``; see the module docstring.

    Parameters
    ----------
    submissions : str or os.PathLike
        Folder of submission folders (or zips), a zip of them, or a Gradescope export.
    out : str or os.PathLike
        Output folder (created; held locked for the run).
    lab : str or os.PathLike, keyword-only
        The lab holding ``exercises/`` with the checks (the instructor repository).
    jobs : int, optional
        Graders at once; default :func:`default_jobs`. With ``ray``: tasks in flight.
    ray : str, optional
        Ray address (``local``, ``auto``, ``HOST:PORT``): grade in Ray tasks.
    regrade : bool
        Grade every submission again, even those whose fingerprint is recorded.
    similarity : bool
        Also write the code-similarity report (``similarity.html``); it never changes a score.
    timeout : float
        Seconds per check.
    max_memory : str or None
        Address-space cap of the graded code.
    sandbox_user : str
        The worker's user when grading as root.
    assignment : str
        The assignment column of ``canvas.csv`` (Canvas's ``Name (id)`` form matches an existing one).
    leaderboard : bool
        Put the speed and AUC figures the checks record into each results.json's ``leaderboard``.
    due : str or datetime.datetime, optional
        The deadline: a Gradescope submission created after it is marked late.
    progress : bool
        Show a tqdm bar (submissions/s and ETA).
    log : callable
        Where messages go (one string each).
    trust_submissions : bool
        Grade although this process (or, on Ray, the process grading on a node) is not root: the students'
        code then runs as that user.

    Returns
    -------
    BatchSummary

    Raises
    ------
    InvalidArgumentError
        Not root and not ``trust_submissions``: without uid separation one student's code could read the
        batch's secret input seed and rewrite the other students' results (a red-team review did both).
        Refused before anything is written here and on a private local Ray; on another Ray cluster by the
        first grading on a node whose user is not root (the submissions saved before it are kept).
    """
    started = time.monotonic()
    # A local run or a private local Ray: every grader on this machine, as this user.
    this_machine = not ray or RaySettings(address=str(ray)).private
    # Here for those; on another cluster each grading checks its own node's user (grade_submission) and the
    # first refusal stops the batch.
    if this_machine and os.geteuid() != 0 and not trust_submissions:
        raise InvalidArgumentError(f"warblr grade batch: {UNTRUSTED_REASON}", parameter="trust_submissions",
                                   reason=UNTRUSTED_REASON)
    if due is not None:
        due = parse_due(due)  # a bad --due stops the batch before it makes or locks anything
    out, lab = Path(out).resolve(), Path(lab).resolve()
    if ships_only_public_answers(lab):  # a student's handout given as --lab: answers a table could hold
        reason = (f"{lab} is a student handout (no solutions/, stored answers for the public inputs only): every "
                  "check would run on the public inputs, whose answers it ships. Give the instructor's lab (with "
                  "solutions/) or a Gradescope package built by warblr grade autograder")
        raise InvalidArgumentError(f"--lab: {reason}", parameter="lab", reason=reason)
    checks = checks_digest(lab)
    if jobs is None and ray:
        jobs, why = None, "one Ray task per CPU of the cluster"
    elif jobs is None:
        jobs, why = default_jobs()
    else:
        if int(jobs) < 1:
            raise InvalidArgumentError(f"--jobs: expected an integer >= 1, got {jobs}", parameter="jobs")
        jobs, why = int(jobs), f"{int(jobs)} parallel grader(s) (--jobs)"
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)  # grades and every student's code: not for the sandbox user (nor other users)
    store = _Store(out)
    with exclusive(out, what="warblr grade batch"):
        remove_temporaries(out)
        # The seed is drawn (or read back) under the lock: two batches started at once on one OUT cannot each
        # draw one, the second overwriting the file while the first grades with its own.
        options = GradingOptions(lab=str(lab), timeout=float(timeout), max_memory=max_memory,
                                 sandbox_user=sandbox_user, threads=1 if ray else threads_per_grader(jobs),
                                 leaderboard=leaderboard, input_seed=batch_input_seed(out, lab),
                                 timing_lock=str(out / ".staging" / "timing.lock") if this_machine else None,
                                 trusted=bool(trust_submissions))
        scratch = out / ".staging"
        shutil.rmtree(scratch, ignore_errors=True)
        (scratch / "staged").mkdir(parents=True)
        try:
            entries = find_submissions(submissions, scratch=scratch / "unpacked", due=due, lazy=True)
            rows, todo, refused, files_of = {}, [], 0, {}
            for entry in entries:
                row = rows[entry.key] = Row(key=entry.key, students=entry.students, late=entry.late, results={})
                reason = entry.problem
                if not reason:
                    try:
                        with entry.unpacked() as folder:  # a student's zip: unpacked now, removed after intake
                            taken = take_in(folder)
                    except SubmissionError as exc:
                        reason = str(exc)
                if reason:
                    refused += 1
                    row.problem = f"refused at intake: {reason}"
                    store.save(entry.key, {"results": _refused_results(reason), "fingerprint": None,
                                           "problem": row.problem}, row)
                    continue
                files_of[entry.key] = taken.files
                own = submission_options(options, taken.files)
                mark = fingerprint(taken.files, checks=checks, options=own)
                store.keep_input_seed(entry.key, own.input_seed)
                kept = None if regrade else store.graded(entry.key)
                if kept and kept.get("fingerprint") == mark:
                    row.results, row.problem = kept["results"], kept.get("problem", "")
                    continue
                staged = copy_submission(taken, scratch / "staged" / entry.key)
                todo.append((entry.key, staged, mark, own))
            log(f"warblr grade batch: {len(entries)} submission(s): {len(todo)} to grade, "
                f"{len(entries) - len(todo) - refused} unchanged since the last run, {refused} refused at intake")
            cpu_before = _children_cpu()
            if todo:
                log(f"grading on Ray ({ray}): {why}" if ray else f"grading with {why}")
                jobs = _run_all(todo, rows, store, jobs=jobs, ray=ray, progress=progress)
            cpu_seconds = _children_cpu() - cpu_before
            notes = {entry.key: entry.note for entry in entries if entry.note}  # a bad :created_at: (graded)
            for key, note in [*notes.items(), *students_in_several(rows.values()).items()]:
                rows[key].problem = "; ".join(filter(None, [rows[key].problem, note]))
            ordered = [rows[key] for key in sorted(rows)]
            files = write_gradebook(ordered, out, assignment=assignment)
            if similarity:
                from .similarity import write_similarity_report

                files.update(write_similarity_report(files_of, out, lab=lab))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    problems = [(row.key, row.problem) for row in ordered if row.problem]
    summary = BatchSummary(submissions=len(entries), graded=len(todo), reused=len(entries) - len(todo) - refused,
                           refused=refused, problems=problems, seconds=time.monotonic() - started, files=files,
                           jobs=jobs, cpu_seconds=cpu_seconds)
    for key, problem in problems:  # one line each, whatever a file name or a student's message held
        log(f"  needs a look: {key}: " + clean_text(problem).replace("\n", " | "))
    if summary.graded:
        cpu = "" if ray else f"; {summary.cpu_seconds / summary.graded:.0f} CPU s per submission"
        log(f"graded {summary.graded} submission(s) in {summary.seconds:.1f} s: "
            f"{summary.per_minute:.2f} submissions/minute with {jobs} grader(s){cpu}")
    log(f"gradebook written to {out} (grades.csv, canvas.csv, summary.md, scores.png, pass_rates.png, students/)")
    return summary


def _children_cpu():
    """CPU seconds (user + system) of this process's finished children: the graders' pytests and their workers."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_all(todo, rows, store, *, jobs, ray, progress):
    """Grade ``todo`` (``[(key, staged folder, fingerprint, options)]``) ``jobs`` at a time; save each as it ends.

    Returns the number of graders used (on Ray without ``jobs``: the cluster's CPUs).
    """
    from tqdm.auto import tqdm

    backend = _RayBackend(ray) if ray else _ThreadBackend(jobs)
    jobs = jobs or backend.cpus
    bar = tqdm(total=len(todo), unit="submission", disable=not progress, file=sys.stderr, desc="grading",
               smoothing=0.1)
    pending, running = list(todo), {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                key, folder, mark, options = pending.pop(0)
                running[backend.submit(folder, options)] = (key, mark, options.trusted)
            for handle, result in backend.finished(list(running)):
                key, mark, trusted = running.pop(handle)
                _finish(key, mark, result, rows, store, trusted=trusted)
                bar.update()
    finally:
        backend.close(list(running))
        bar.close()
    return jobs


def _finish(key, mark, result, rows, store, *, trusted=False):
    """Save one submission's grading (or the grader's failure, which scores 0 and is listed)."""
    row = rows[key]
    try:
        graded = result()
    except Exception as exc:  # noqa: BLE001 -- a grader that failed costs this submission only
        graded = {"results": results_json([], execution_time=0.0, notes=[f"grading failed: {exc}"]),
                  "crashes": 1, "seconds": 0.0}
    if "refused" in graded:  # a grader that may not run students' code: the batch stops, what is saved stays
        raise InvalidArgumentError(f"warblr grade batch: {graded['refused']}", parameter="trust_submissions",
                                   reason=graded["refused"])
    row.problem = problem_of(graded, trusted=trusted)
    store.save(key, {**graded, "fingerprint": mark, "problem": row.problem}, row)


__all__ = ["BatchSummary", "GradingOptions", "checks_digest", "default_jobs", "fingerprint", "grade_batch",
           "grade_submission"]
