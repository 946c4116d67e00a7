"""Fixtures of the grading meta-tests: the mistake, lazy and hostile galleries and a grading harness.

The galleries are data modules next to this file (``mutants.py``,
``lazy.py``, ``attacks.py``); they are loaded here by path and handed to the
tests as fixtures and as parameters (``pytest_generate_tests``): a test that
takes a ``mutant``, an ``alternative``, a ``lazy`` or an ``attack`` argument
runs once per gallery entry. The lazy gallery's verdicts are tallied per
check and printed at the end of the run (:data:`LAZY_REJECTIONS`).
"""

import gc
import importlib.util
import json
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"warblr_grading_tests_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


MUTANTS = _load("mutants")
ATTACKS = _load("attacks")
LAZY = _load("lazy")

#: check -> {"rejected": [lazy entry names], "accepted": [...]}: filled by test_lazy.py, printed at the end.
LAZY_REJECTIONS = {}


#: Gallery entries the default pass grades (one per module, the classic shortcuts); the slow pass grades every
#: entry. Each grading costs a second or more, and the galleries hold about 60 (the test budget, issue 20).
DEFAULT_PASS = {
    "mutant": {"first_channel", "symmetric_hann", "training_mode", "fit_on_all_data"},
    "alternative": set(),
    "lazy": {"none", "embed_never_calls_the_model", "dummy_classifier_auc_half"},
}


def pytest_configure(config):
    config.addinivalue_line("markers", "input_seed(kind): the --input-seed grade_in_process grades with in this "
                                       "test ('public' unless marked: meta-tests stay deterministic)")


def pytest_generate_tests(metafunc):
    galleries = {"mutant": MUTANTS.MUTANTS, "alternative": MUTANTS.ALTERNATIVES, "attack": ATTACKS.ATTACKS,
                 "lazy": LAZY.LAZY}
    for name, entries in galleries.items():
        if name in metafunc.fixturenames:
            default = DEFAULT_PASS.get(name)
            metafunc.parametrize(name, [
                pytest.param(entry, id=entry.name, marks=_marks(entry, default)) for entry in entries])


def _marks(entry, default):
    marks = [] if default is None or entry.name in default else [pytest.mark.slow]
    seed = getattr(entry, "input_seed", None)  # e.g. the lookup table of the handout's answers: graded at random
    return marks + ([pytest.mark.input_seed(seed)] if seed else [])


@pytest.fixture
def galleries():
    """The gallery entries by kind: ``{"mutant": [...], "alternative": [...], "attack": [...]}``."""
    return {"mutant": MUTANTS.MUTANTS, "alternative": MUTANTS.ALTERNATIVES, "attack": ATTACKS.ATTACKS,
            "lazy": LAZY.LAZY}


@pytest.fixture(scope="session")
def lab_handout(tmp_path_factory):
    """The real lab's student handout (``build_handout`` of this checkout), built once per session."""
    from warblr.grading.handout import build_handout

    return build_handout(tmp_path_factory.mktemp("handout") / "lab", source=ROOT)["out"]


@pytest.fixture
def default_pass():
    """:data:`DEFAULT_PASS`: the gallery entries graded in the default pass."""
    return DEFAULT_PASS


@pytest.fixture
def lazy_rejections():
    """The per-check tally of the lazy gallery (:data:`LAZY_REJECTIONS`), printed at the end of the run."""
    return LAZY_REJECTIONS


def pytest_terminal_summary(terminalreporter):
    """Per graded check: how many lazy answers reached it and how many it rejected (scored 0)."""
    if not LAZY_REJECTIONS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("lazy answers rejected per graded check")
    width = max(len(check) for check in LAZY_REJECTIONS)
    write(f"{'check':<{width}}  rejected / reached")
    for check in sorted(LAZY_REJECTIONS):
        tally = LAZY_REJECTIONS[check]
        reached = len(tally["rejected"]) + len(tally["accepted"])
        accepted = f"   ACCEPTED: {', '.join(tally['accepted'])}" if tally["accepted"] else ""
        write(f"{check:<{width}}  {len(tally['rejected']):>8} / {reached}{accepted}")


@pytest.fixture
def apply_mutant(tmp_path):
    """``apply_mutant(mutant)``: a copy of ``solutions/`` with the mutant's change; returns the folder."""

    def apply(mutant):
        folder = tmp_path / f"impl_{mutant.name}"
        shutil.copytree(SOLUTIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
        path = folder / f"{mutant.module}.py"
        text = path.read_text()
        count = text.count(mutant.old)
        if count != 1:
            raise AssertionError(f"mutant {mutant.name}: {mutant.old!r} occurs {count} times in "
                                 f"solutions/{mutant.module}.py (the solutions changed: update "
                                 "tests/grading/mutants.py)")
        path.write_text(text.replace(mutant.old, mutant.new))
        return folder

    return apply


@pytest.fixture
def stubs_with(tmp_path):
    """``stubs_with(extra)``: a copy of the untouched stubs with ``{module: code}`` appended; returns the folder."""

    def make(extra, name="submission"):
        folder = tmp_path / name
        folder.mkdir()
        for module in ("__init__", "resampling", "logmel", "embedding", "classify"):
            text = (EXERCISES / f"{module}.py").read_text()
            (folder / f"{module}.py").write_text(text + extra.get(module, ""))
        return folder

    return make


class _FailedHints:
    """pytest plugin: the hint marker of every graded check that did not pass."""

    def __init__(self):
        self.failed = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if report.failed:
            marker = item.get_closest_marker("hint")
            self.failed[item.name] = marker.args[0] if marker else ""
        return report


@pytest.fixture
def grade_in_process(tmp_path, request):
    """``grade_in_process(folder, selection, isolate=True, timeout=0, input_seed=None)``: run graded checks here.

    ``selection`` are paths relative to ``exercises/`` (``"test_logmel.py::test_periodic_hann"``).
    With ``isolate`` the checks run as under ``warblr grade run``: the graded
    code runs in confined workers (this test process is the grader; its fork
    server is shared by every call). ``input_seed`` is passed as
    ``--input-seed``; by default ``public`` (verdicts stay deterministic), or
    the test's ``@pytest.mark.input_seed(kind)``. Returns ``{"failed":
    {check: hint}, "results": results.json, "exit_code": int}``.
    """
    marker = request.node.get_closest_marker("input_seed")
    default_seed = str(marker.args[0]) if marker else "public"

    def grade(folder, selection, *, isolate=True, timeout=0.0, results_path=None, input_seed=None):
        results_path = results_path or tmp_path / f"results_{Path(folder).name}.json"
        hints = _FailedHints()
        before = set(sys.modules)
        args = [str(EXERCISES / item) for item in selection] + [
            "--impl", str(folder), "--grade-json", str(results_path), f"--grade-timeout={timeout:g}",
            f"--input-seed={input_seed if input_seed is not None else default_seed}",
            "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT)]
        # This process's objects (torch, the test session, ...) sit in a permanent generation while the inner
        # run goes on: its full collections (pytest's unraisable-exception plugin runs two per session) then
        # walk only what the inner run allocated, ~0.3-0.5 s less each here. Nothing is collected later than
        # it would be for the graded code: only the objects that were already here are left out meanwhile.
        gc.freeze()
        try:
            exit_code = pytest.main(args + (["--isolate"] if isolate else []), plugins=[hints])
        finally:
            gc.unfreeze()
            for name in set(sys.modules) - before:  # forget the graded copy (its alias) and what it imported
                if name.startswith("warblr_graded") or str(folder) in str(getattr(sys.modules[name], "__file__", "")):
                    del sys.modules[name]
        results = json.loads(results_path.read_text()) if results_path.is_file() else {}
        return {"failed": hints.failed, "results": results, "exit_code": int(exit_code)}

    return grade


def uid_separation_available():
    """Why isolated grading cannot drop to ``nobody`` here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root (the grader drops the worker to the user nobody); CI runs as root"
    try:
        import pwd

        pwd.getpwnam("nobody")
    except KeyError:
        return "no user nobody on this machine"
    from warblr.grading.fork_server import ForkServer

    problem = ForkServer.shared().user("nobody")[3]
    if "NOT available" in problem:
        return problem
    return None


@pytest.fixture(scope="session")
def needs_uid_separation():
    """Skip (saying why) where the worker cannot run as an unprivileged user."""
    reason = uid_separation_available()
    if reason:
        pytest.skip(reason)


class CommandLines:
    """Every process command line on the machine, read from /proc every 20 ms while it runs (what any local
    user of a grading machine can do)."""

    def __init__(self):
        self.seen, self.stop = set(), threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        while not self.stop.wait(0.02):
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    self.seen.add(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
                except OSError:
                    continue  # the process ended

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


@pytest.fixture(scope="session")
def command_lines():
    """``with command_lines() as watched:`` gathers in ``watched.seen`` every command line seen meanwhile."""
    return CommandLines
