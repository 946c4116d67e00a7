"""pytest plugin that grades the warblr lab (registered by the root ``conftest.py``).

Graded checks are the tests under an ``exercises`` folder, and any test
marked ``points``. For those (and only those) the plugin:

- loads the implementation chosen by ``--impl`` (``exercises``, ``solutions``
  or a path to any package folder) lazily into the ``impl`` fixture; an
  import failure fails the checks that use that module with one clear line;
- with ``--isolate`` (what ``warblr grade run`` and the Gradescope package
  use), never imports the student's code itself: ``impl`` is a proxy to a
  fresh, confined worker process per check (:mod:`warblr.grading.proxies`),
  which this process kills at the check's deadline; without it (the default
  of ``pytest exercises``, for students checking themselves) the code runs
  in this process;
- gives each check points (``@pytest.mark.points(n)``, default 1; with
  ``partial=True`` the check may award a fraction of them by raising
  :class:`~warblr.grading.credit.PartialCredit` itself -- one raised by the
  student's code, relayed from the worker or raised by a check without
  ``partial=True`` earns nothing), a hint
  shown on failure (``@pytest.mark.hint("...")``) and a Gradescope
  visibility (``@pytest.mark.visibility("hidden")``, default visible);
- reports a check whose failure is a ``NotImplementedError`` raised by the
  student's code as *not attempted* (one line, no traceback);
- puts a timeout on each check (``--grade-timeout``, pytest-timeout's signal
  method), plus a last-resort watchdog that ends the process if the code does
  not respond to the timeout (``warblr grade run`` then resumes the run);
- in-process: undoes monkey-patching of numpy, torch, builtins ... and
  fails the check that did it; trims megabytes of captured output;
- chooses the *input seed* of the checks' seeded inputs (``--input-seed``,
  the ``input_seed`` fixture): the public seed, whose answers the handout
  ships, when students check themselves; when grading counts (``--grade-json``
  or ``--isolate``) a seed the student cannot know -- fresh from ``secrets``
  where ``solutions/`` computes any seed live, else one of the secret seeds
  stored with the Gradescope package -- so a table of the handout's answers
  earns nothing; the results' first output line says which kind was used
  (a batch hands its own seed over in a 0600 file, ``--input-seed-file``:
  command lines are readable by every local user);
- with ``--grade-leaderboard``, collects the figures checks record with
  ``record_property("leaderboard", {"name": "AUC", "value": auc, "order":
  "desc"})`` (measured by the check in the grader, never by the student's
  code) into ``results.json``'s Gradescope ``leaderboard``;
- prints a per-exercise score table and, with ``--grade-json PATH``, writes
  Gradescope's ``results.json`` atomically -- before each check (so a run
  killed mid-check still leaves a report blaming that check) and at the end.

An ordinary test run (``pytest`` in ``tests/``) has no graded checks and is
left untouched: no table, no timeouts, no guards.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from .allocator import steady_allocator
from .credit import PartialCredit
from .guard import LibraryGuard
from .impl import (EXERCISE_MODULES, GradedImpl, ImplImportError, find_submission, is_timeout, not_attempted,
                   resolve_impl, student_file)
from .defaults import CHECKS_FOLDER, DEFAULT_CHECK_TIMEOUT, DEFAULT_SANDBOX_USER, DEFAULT_WORKER_MEMORY
from .failures import clean_text
from .fork_server import ForkServer
from .proxies import RemoteImpl
from .seeds import choose_input_seed
from .timing_lock import TimingLock
from .report import (NOT_ATTEMPTED_TEXT, RUNNING_TEXT, VISIBILITIES, Record, read_finished, results_json,
                     score_table, trim, write_json_atomic)

__all__ = ["DEFAULT_SANDBOX_USER", "DEFAULT_WORKER_MEMORY", "EXERCISE_MODULES", "GradedImpl", "is_graded"]

#: Characters of captured output kept per section in the terminal report.
MAX_CAPTURED = 4000

#: Isolated runs: seconds pytest-timeout adds to a check's limit (the worker is killed at the limit itself).
ISOLATED_TIMEOUT_MARGIN = 60.0

_GRADER = pytest.StashKey()


def pytest_addoption(parser):
    group = parser.getgroup("warblr grading")
    group.addoption("--impl", default="exercises",
                    help="implementation to grade: 'exercises' (default), 'solutions' or a path to a "
                         "package folder holding resampling.py, logmel.py, embedding.py, classify.py")
    group.addoption("--grade-json", metavar="PATH", default=None,
                    help="write a Gradescope results.json to PATH (atomically, also if the run is "
                         "interrupted or crashes)")
    group.addoption("--grade-timeout", metavar="SECONDS", type=float, default=DEFAULT_CHECK_TIMEOUT,
                    help="time limit of each graded check, setup included (0: none; default 30)")
    group.addoption("--grade-max-memory", metavar="SIZE", default=None,
                    help="cap the address space (RLIMIT_AS, Linux) of the code under test, e.g. 4G, or 'none': "
                         "of each worker's processes with --isolate (default there: 6G; and their resident "
                         "memory together where the worker has a control group), else of this pytest process "
                         "(default: none)")
    group.addoption("--isolate", action="store_true", default=False,
                    help="run the graded code in a separate, confined worker process per check (an "
                         "unprivileged user when pytest runs as root, rlimits, no network, answers hidden); "
                         "`warblr grade run` and the Gradescope package always do")
    group.addoption("--sandbox-user", metavar="NAME", default=DEFAULT_SANDBOX_USER,
                    help="with --isolate as root: the unprivileged user the worker runs as (default: nobody)")
    group.addoption("--grade-resume", action="store_true", default=False,
                    help="keep the finished checks recorded in the --grade-json file and run only the "
                         "others (used by `warblr grade run` after a crash)")
    group.addoption("--grade-leaderboard", action="store_true", default=False,
                    help="put the figures checks record with record_property('leaderboard', {'name': ..., "
                         "'value': ..., 'order': 'asc'|'desc'}) into results.json's Gradescope 'leaderboard'")
    group.addoption("--grade-list", metavar="PATH", default=None,
                    help="write the graded checks (name, exercise, points, visibility, partial) as JSON to "
                         "PATH after collection (with --collect-only: the handout's points table)")
    group.addoption("--grade-timing-lock", metavar="PATH", default=None,
                    help="a lock file shared by the graders of one machine (`warblr grade batch` passes one): "
                         "timed checks (marker 'timed') run while no other grader runs a check, and the "
                         "others wait for them (see warblr.grading.timing_lock)")
    group.addoption("--input-seed", metavar="public|random|N", default=None,
                    help="seed of the checks' seeded inputs: 'public' (the handout's inputs; default of a "
                         "self-check), 'random' (default when grading counts: with --grade-json or --isolate; a "
                         "fresh seed where solutions/ is present, else one of the secret seeds stored with the "
                         "autograder) or a number")
    group.addoption("--input-seed-file", metavar="PATH", default=None,
                    help="read the input seed from PATH, a JSON file {\"input_seed\": N} of this user's that no "
                         "one else may read (mode 0600, not a link): how `warblr grade batch` hands its secret "
                         "seed to each grading, since command lines are readable by every local user; not with "
                         "--input-seed")
    parser.addini("warblr_handout", type="bool", default=False,
                  help="student handout: never run checks marked visibility('hidden')")
    parser.addini("warblr_hidden_checks", default="",
                  help="student handout: the hidden checks the autograder adds, e.g. '3 checks, 7 points' "
                       "(said under the score table)")


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n, partial=False): points this graded check is worth (default 1); "
                                       "partial=True: it may award a fraction (warblr.grading.credit)")
    config.addinivalue_line("markers", "hint(text): the likely mistake when this graded check fails")
    config.addinivalue_line(
        "markers", "visibility(kind): Gradescope visibility: visible, hidden, after_due_date, after_published")
    config.addinivalue_line("markers", "timed: a check that times the graded code: with --grade-timing-lock it "
                                       "runs while no other grader on the machine runs a check")
    limit = memory_limit(config)
    if limit and not config.getoption("isolate"):  # isolated: the worker gets the cap, not the grader
        set_memory_limit(limit)
    grader = config.stash[_GRADER] = Grader(config)
    config.pluginmanager.register(grader, "warblr-grader")
    if grader.isolated and not grader.collect_only and any(
            CHECKS_FOLDER in Path(str(arg)).parts or str(arg).rstrip("/") == CHECKS_FOLDER for arg in config.args):
        grader.start_sandbox()  # the worker's fork server imports torch while pytest collects




def memory_limit(config):
    """Bytes of ``--grade-max-memory`` (None: no cap); isolated runs default to :data:`DEFAULT_WORKER_MEMORY`."""
    text = config.getoption("grade_max_memory")
    if text is None and config.getoption("isolate"):
        text = DEFAULT_WORKER_MEMORY
    if text is None or str(text).strip().lower() in ("none", "0", ""):
        return None
    return parse_size(text)


def parse_size(text):
    """Bytes in a size like ``"4G"``, ``"512M"`` or ``"1000000"``.

    Examples
    --------
    >>> parse_size("2G")
    2147483648
    """
    text = str(text).strip().upper().rstrip("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in "KMGT" else text
    try:
        value = int(float(number) * scale)
    except ValueError:
        raise pytest.UsageError(f"--grade-max-memory: not a size: {text!r} (use e.g. 4G)") from None
    if value <= 0:
        raise pytest.UsageError(f"--grade-max-memory: must be positive, got {text!r}")
    return value


def set_memory_limit(nbytes):
    """Lower this process's RLIMIT_AS to ``nbytes`` (no-op where unsupported)."""
    try:
        import resource
    except ImportError:  # pragma: no cover -- not POSIX
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        nbytes = min(nbytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (nbytes, hard))


def is_graded(item):
    """Whether ``item`` is a graded check (under ``exercises/`` or marked ``points``)."""
    return item.get_closest_marker("points") is not None or CHECKS_FOLDER in Path(str(item.path)).parts


def _marker_arg(item, name, default):
    marker = item.get_closest_marker(name)
    if marker is None:
        return default
    if marker.args:
        return marker.args[0]
    return next(iter(marker.kwargs.values()), default)


def _record_for(item):
    points = _marker_arg(item, "points", 1)
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
        raise pytest.UsageError(f"{item.nodeid}: points must be a number >= 0, got {points!r}")
    visibility = _marker_arg(item, "visibility", "visible")
    if visibility not in VISIBILITIES:
        raise pytest.UsageError(f"{item.nodeid}: visibility must be one of {VISIBILITIES}, got {visibility!r}")
    stem = Path(str(item.path)).stem
    exercise = stem[len("test_"):] if stem.startswith("test_") else stem
    marker = item.get_closest_marker("points")
    partial = bool(marker is not None and marker.kwargs.get("partial", False))
    return Record(nodeid=item.nodeid, exercise=exercise, name=f"{exercise}: {item.name}",
                  points=float(points), hint=str(_marker_arg(item, "hint", "")), visibility=visibility,
                  partial=partial)


def partial_fraction(exc, traceback, folder):
    """The fraction a failed check earns: ``exc.fraction`` if the check itself raised :class:`PartialCredit`.

    Parameters
    ----------
    exc : BaseException
        The check's failure.
    traceback : types.TracebackType or None
        Its traceback.
    folder : pathlib.Path
        The graded package folder (the student's code).

    Returns
    -------
    float
        0.0 unless ``exc`` is warblr's own :class:`PartialCredit` and no frame
        of its traceback ran the student's code (a student who raises it, in
        process or relayed from a worker as a look-alike type, earns nothing).
    """
    if type(exc) is not PartialCredit:
        return 0.0
    while traceback is not None:
        if student_file(traceback.tb_frame.f_code.co_filename, folder):
            return 0.0
        traceback = traceback.tb_next
    return exc.fraction



@pytest.fixture(scope="session")
def impl(request):
    """The graded implementation: ``impl.resampling``, ``impl.logmel``, ``impl.embedding``, ``impl.classify``.

    Modules are imported on first use; one that cannot be imported raises
    an ``ImplImportError`` naming the file and the cause. ``impl.probe(name,
    ...)`` runs a trusted helper of :mod:`warblr.grading.probes` next to the
    graded code (in the worker under ``--isolate``).
    """
    return request.config.stash[_GRADER].impl


@pytest.fixture(scope="session")
def input_seed(request):
    """The input seed of this session's seeded inputs (an int; chosen in the grader, see ``--input-seed``)."""
    return request.config.stash[_GRADER].input_seed


@pytest.fixture(scope="session")
def live_input_seed(request):
    """The seed of the inputs whose answers the checks compute live: the input seed, or a fresh one where that is
    one of a package's stored secret seeds (:mod:`warblr.grading.seeds`)."""
    return request.config.stash[_GRADER].live_input_seed


class MonkeyPatchError(AssertionError):
    """Student code replaced a library function; the change was undone."""


def _patch_message(changed):
    names = ", ".join(changed[:8]) + (" ..." if len(changed) > 8 else "")
    return (f"your code replaced {names}: do not monkey-patch numpy, torch, builtins or the test "
            "tools. The change was undone and this check fails.")


def explain(exc, timeout):
    """A sentence for failures caused by how the code behaved rather than what it computed."""
    relayed = getattr(exc, "warblr_explanation", None)  # an isolated worker's failure, classified
    if relayed == "timeout" or is_timeout(exc):
        return (f"this check took longer than its time limit ({timeout:g} s): an endless loop, or "
                "code that needs vectorising/batching")
    if relayed == "memory" or isinstance(exc, MemoryError):
        return "your code ran out of memory: avoid huge intermediate arrays (process in batches)"
    if relayed == "recursion":
        return "your code recursed without end"
    if relayed:
        return relayed
    if isinstance(exc, SystemExit):
        return f"your code called sys.exit({exc.code!r}); return a value or raise an exception instead"
    if isinstance(exc, MemoryError):
        return "your code ran out of memory: avoid huge intermediate arrays (process in batches)"
    if isinstance(exc, RecursionError):
        return "your code recursed without end"
    if is_timeout(exc):
        return (f"this check took longer than its time limit ({timeout:g} s): an endless loop, or "
                "code that needs vectorising/batching")
    return None


class Grader:
    """The state and hooks of one graded session (registered as a plugin by ``pytest_configure``)."""

    def __init__(self, config):
        self.config = config
        self.folder = find_submission(resolve_impl(config.getoption("impl"), rootpath=config.rootpath))
        self.json_path = config.getoption("grade_json")
        self.timeout = float(config.getoption("grade_timeout") or 0)
        self.records = {}
        self.timeouts = {}
        self.started = time.time()
        self.notes = []
        self.isolated = bool(config.getoption("isolate"))
        self.sandbox = None
        self._impl = None
        self.leaderboard = {}
        self.input_seed, self.input_seed_note, self.live_input_seed = choose_input_seed(config)
        self.timing_lock = self._open_timing_lock(config.getoption("grade_timing_lock"))
        self._take_timing_lock()  # shared while this grader starts: collection, check imports, fork server

    def _open_timing_lock(self, path):
        if not path:
            return None
        try:
            lock = TimingLock(path)
        except OSError as exc:
            self.notes.append(f"timing: no lock shared with the other graders ({exc.strerror}: {path}); timed "
                              "checks may run beside other gradings on this machine")
            return None
        return lock  # no note: the results are the same bytes with the lock or without (on Ray)

    def _take_timing_lock(self, *, exclusive=False):
        """Take the timing lock if there is one; a file system refusing flock drops it, with a note."""
        if self.timing_lock is None:
            return
        try:
            self.timing_lock.acquire(exclusive=exclusive)
        except OSError as exc:
            self.timing_lock.close()
            self.timing_lock = None
            self.notes.append(f"timing: the lock shared with the other graders failed ({exc.strerror}); timed "
                              "checks may run beside other gradings on this machine")

    @property
    def impl(self):
        """The lazily created :class:`GradedImpl`, or under ``--isolate`` the :class:`RemoteImpl`."""
        if self._impl is None:
            if self.isolated:
                self._impl = self._isolated_impl()
            else:
                self._impl = GradedImpl(self.folder)
        return self._impl

    @property
    def collect_only(self):
        """True under ``--collect-only``: nothing is graded, so no score table and no results.json."""
        return bool(self.config.getoption("collectonly"))

    def hidden_folders(self):
        """Folders the worker must not see: the lab's answers and checks, and the results folder.

        The whole lab root when the Python in use lives outside it (the
        Gradescope package), else its ``solutions``, ``exercises``, ``tests`` and
        ``.git``. A folder holding the interpreter is never hidden.
        """
        root = Path(self.config.rootpath).resolve()
        prefix = Path(sys.prefix).resolve()
        folders = [root] if not prefix.is_relative_to(root) else [
            root / name for name in ("solutions", CHECKS_FOLDER, "tests", ".git")]
        if self.json_path:
            results = Path(self.json_path).resolve().parent
            if not prefix.is_relative_to(results) and not Path(tempfile.gettempdir()).resolve().is_relative_to(results):
                folders.append(results)
        return [folder for folder in folders if folder.is_dir()]

    def start_sandbox(self):
        """Launch (once per process) the fork server of the isolated workers; does not wait for it."""
        if self.sandbox is None:
            self.sandbox = ForkServer.shared()
        return self.sandbox

    def _isolated_impl(self):
        remote = RemoteImpl(self.folder, user=self.config.getoption("sandbox_user"), hide=self.hidden_folders(),
                            max_memory=memory_limit(self.config), timeout=self.timeout, sandbox_=self.start_sandbox())
        self.notes += ["isolation: " + note for note in remote.notes if note]
        if self.json_path:
            folder = Path(self.json_path).resolve().parent
            if folder.exists() and os.stat(folder).st_mode & 0o002:
                self.notes.append(f"WARNING: the results folder {folder} is writable by every user")
        return remote

    def write(self):
        """Write results.json (if asked for) from the records as they stand."""
        if self.json_path:
            data = results_json(self.records.values(), execution_time=time.time() - self.started,
                                notes=self.notes)
            if self.config.getoption("grade_leaderboard"):
                data["leaderboard"] = list(self.leaderboard.values())
            write_json_atomic(self.json_path, data)

    # -- collection ----------------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        graded = [item for item in items if is_graded(item)]
        if not graded:
            return
        if not steady_allocator():  # the workers get the same setting from their environment
            self.notes.append("timing: the grader could not fix its memory allocator's thresholds (not glibc), "
                              "so timed checks may count page faults the worker does not pay, or the reverse")
        drop = set()
        if config.getini("warblr_handout"):
            drop |= {item for item in graded if _marker_arg(item, "visibility", "visible") == "hidden"}
        finished = read_finished(self.json_path) if config.getoption("grade_resume") and self.json_path else {}
        crashed = []
        for item in graded:
            if item in drop:
                continue
            record = self.records[item.nodeid] = _record_for(item)
            if item.nodeid in finished:
                record.outcome, record.message, record.fraction = finished[item.nodeid]
                record.hint = ""  # already part of the kept output
                if record.outcome == "running":  # the check during which the earlier run died
                    record.outcome, record.message = "failed", RUNNING_TEXT
                    crashed.append(record.name)
                drop.add(item)
        listing = config.getoption("grade_list")
        if listing:
            write_json_atomic(listing, [{"name": r.name, "exercise": r.exercise, "points": r.points,
                                         "visibility": r.visibility, "partial": r.partial}
                                        for r in self.records.values()])
        if finished:
            self.notes.append(f"Resumed after a crash: {len(finished)} finished check(s) kept from "
                              "the earlier run.")
        if crashed:
            self.notes.append("The grading process died during: " + ", ".join(crashed))
        if drop:
            config.hook.pytest_deselected(items=[item for item in items if item in drop])
            items[:] = [item for item in items if item not in drop]
        method = "signal" if hasattr(signal, "SIGALRM") else "thread"
        has_timeout = config.pluginmanager.hasplugin("timeout")
        for item in items:
            if item.nodeid not in self.records:
                continue
            marker = item.get_closest_marker("timeout")
            limit = _timeout_of(marker, self.timeout)
            self.timeouts[item.nodeid] = limit
            if marker is None and self.timeout > 0 and has_timeout:
                # Isolated: the worker is killed at the deadline; pytest-timeout only backs up the grader.
                backup = limit + ISOLATED_TIMEOUT_MARGIN if self.isolated else limit
                item.add_marker(pytest.mark.timeout(backup, method=method))

    def pytest_collection_finish(self, session):
        if not self.records or self.collect_only:  # nothing runs: no sandbox, no results.json
            return
        self.notes.insert(0, self.input_seed_note)  # the results' first line: which inputs the checks used
        if session.config.option.tbstyle == "auto":
            session.config.option.tbstyle = "short"  # students read the checks, not pytest internals
        if self.isolated and any(record.outcome == "not_run" for record in self.records.values()):
            self.impl  # start the sandbox now, outside any check's time limit  # noqa: B018
        elif self.json_path and not self.isolated:
            self.notes.append("not isolated: the graded code ran inside the grading process (--no-isolation / "
                              "no --isolate); do not use these results where grades count")
        self.write()

    # -- running -------------------------------------------------------------------------------------

    def pytest_runtest_logstart(self, nodeid, location):
        record = self.records.get(nodeid)
        if record is None:
            return
        record.outcome, record.message = "running", ""
        self.write()
        limit = self.timeouts.get(nodeid, 0)
        if self.isolated:
            self.impl.begin_check(limit)
        elif limit > 0 and threading.current_thread() is threading.main_thread():
            # Last resort when the code ignores the timeout (a C loop, SIGALRM blocked): end the
            # process. results.json already blames this check; `warblr grade run` resumes after it.
            faulthandler.dump_traceback_later(limit + max(2.0, 0.5 * limit), exit=True,
                                              file=sys.__stderr__)

    def pytest_runtest_logfinish(self, nodeid, location):
        if nodeid in self.records:
            faulthandler.cancel_dump_traceback_later()
            if self.isolated:
                self.impl.end_check()
            self.write()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        """With a timing lock: each graded check holds it, a timed one alone (set-up and teardown included)."""
        if self.timing_lock is None or item.nodeid not in self.records:
            return (yield)
        self._take_timing_lock(exclusive=item.get_closest_marker("timed") is not None)
        try:
            return (yield)
        finally:
            if self.timing_lock is not None:
                self.timing_lock.release()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        if item.nodeid not in self.records or self.isolated:  # isolated: student code cannot patch us
            return (yield)
        guard = LibraryGuard()
        try:
            result = yield
        except BaseException as exc:
            changed = guard.restore()
            if changed and not isinstance(exc, KeyboardInterrupt):
                raise MonkeyPatchError(_patch_message(changed)) from exc
            raise
        changed = guard.restore()
        if changed:
            raise MonkeyPatchError(_patch_message(changed))
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if item.nodeid in self.records:
            self._annotate(item, call, report)
        return report

    def _annotate(self, item, call, report):
        report.sections = [(title, trim(clean_text(content), MAX_CAPTURED)) for title, content in report.sections]
        if report.skipped and call.when == "call" and isinstance(report.longrepr, tuple) \
                and student_file(report.longrepr[0], self.folder):
            report.outcome = "failed"
            report.longrepr = f"your code called pytest.skip(): {report.longrepr[2]}"
        if not report.failed or call.excinfo is None:
            return
        exc = call.excinfo.value
        what = not_attempted(exc, self.folder)
        if what:
            report.warblr_not_attempted = True
            report.warblr_message = report.longrepr = NOT_ATTEMPTED_TEXT.format(what=what)
            report.sections = []
            return
        if isinstance(exc, ImplImportError):  # one line; the check's hint is beside the point
            report.warblr_message = report.longrepr = str(exc)
            report.warblr_import_error = True
            return
        record = self.records[item.nodeid]
        fraction = partial_fraction(exc, call.excinfo.tb, self.folder)
        if fraction and record.partial:
            report.warblr_fraction = fraction
        elif fraction:
            report.warblr_no_partial = (f"{item.nodeid} raised PartialCredit but is not marked "
                                        "@pytest.mark.points(n, partial=True): it scores 0")
        extra = explain(exc, self.timeouts.get(item.nodeid, self.timeout))
        hint = "\n".join(text for text in (extra, record.hint) if text)
        if hint:
            if hasattr(report.longrepr, "addsection"):
                report.longrepr.addsection("Hint", hint)
            else:
                report.longrepr = f"{report.longrepr}\n\nHint: {hint}"
        message = call.excinfo.exconly()
        if extra:
            message = f"{extra}\n\n{message}"
        if self.isolated:
            captured = self.impl.output()
            if captured:
                report.sections.append(("Your code printed (worker)", trim(captured, MAX_CAPTURED)))
        else:
            captured = "".join(content for title, content in report.sections if "stdout" in title)
        if captured:
            message += "\n\nYour code printed:\n" + trim(captured, 1000)
        report.warblr_message = trim(clean_text(message))

    def pytest_runtest_logreport(self, report):
        record = self.records.get(report.nodeid)
        if record is None:
            return
        for key, value in report.user_properties if report.when == "call" else ():
            if key == "leaderboard" and isinstance(value, dict) and "name" in value:
                entry = {"name": str(value["name"]), "value": float(value.get("value", 0.0))}
                if value.get("order") in ("asc", "desc"):
                    entry["order"] = value["order"]
                self.leaderboard[entry["name"]] = entry
        if report.failed:
            if getattr(report, "warblr_not_attempted", False):
                if record.outcome != "failed":
                    record.outcome, record.message = "not_attempted", report.warblr_message
            elif record.outcome != "failed":
                record.outcome = "failed"
                record.fraction = getattr(report, "warblr_fraction", 0.0)
                if getattr(report, "warblr_no_partial", None):
                    self.notes.append(report.warblr_no_partial)
                if getattr(report, "warblr_import_error", False):
                    record.hint = ""
                record.message = getattr(report, "warblr_message", None) or trim(report.longreprtext)
        elif report.skipped and record.outcome == "running":
            if hasattr(report, "wasxfail"):
                record.outcome, record.message = "failed", f"expected to fail: {report.wasxfail}"
            else:
                record.outcome = "skipped"
        elif report.passed and report.when == "call" and record.outcome == "running":
            record.outcome = "passed"

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report, config):
        if getattr(report, "warblr_not_attempted", False):
            return "not attempted", "N", ("NOT ATTEMPTED", {"yellow": True})
        return None

    # -- end of session ------------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus):
        faulthandler.cancel_dump_traceback_later()
        if self._impl is not None and self.isolated:
            self._impl.end_check()
        if self.timing_lock is not None:
            self.timing_lock.close()
        if not (self.records or self.json_path) or self.collect_only:
            return
        stopped = [r for r in self.records.values() if r.outcome in ("running", "not_run")]
        if stopped:
            self.notes.append(f"The grading run stopped early (pytest exit status {int(exitstatus)}): "
                              f"{len(stopped)} check(s) did not finish and score 0.")
        for record in stopped:
            if record.outcome == "running":
                record.outcome, record.message = "failed", "the run was interrupted during this check"
        self.write()

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        if not self.records or self.collect_only:
            return
        tr = terminalreporter
        records = list(self.records.values())
        tr.section("warblr grading", sep="=", bold=True)
        tr.write_line(f"graded implementation: {self.folder}")
        for note in self.notes:
            tr.write_line(note, yellow=True)
        partial = [r for r in records if r.outcome == "failed" and r.score]
        if partial:
            tr.write_line("Partial credit:", yellow=True, bold=True)
            for r in partial:
                tr.write_line(f"  PART {r.name} ({r.score:.3g} of {r.points:g} pt, {r.fraction:.0%})")
        failed = [r for r in records if r.outcome == "failed" and not r.score]
        if failed:
            tr.write_line("Failed checks and hints:", red=True, bold=True)
            for r in failed:
                hint = f" -- hint: {r.hint}" if r.hint else ""
                tr.write_line(clean_text(f"  FAIL {r.name} ({r.points:g} pt){hint}"))
        missing = [r for r in records if r.outcome == "not_attempted"]
        if missing:
            tr.write_line("Not attempted (0 points):", yellow=True, bold=True)
            for r in missing:
                tr.write_line(clean_text(f"  {r.name}: {r.message.removeprefix('not attempted: ')}"))
        for line in score_table(records):
            tr.write_line(line, bold=line.startswith("TOTAL"))
        hidden = config.getini("warblr_hidden_checks")
        if hidden:
            tr.write_line(f"not in this table: {hidden} in hidden checks that run only at grading", yellow=True)
        if self.json_path:
            tr.write_line(f"results written to {self.json_path}")


def _timeout_of(marker, default):
    if marker is None:
        return default
    value = marker.args[0] if marker.args else marker.kwargs.get("timeout", 0)
    return float(value or 0)
