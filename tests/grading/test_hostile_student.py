"""Grading under hostile student code: each bad check fails alone, the report survives.

Mostly in-process grading (students' ``pytest exercises``, ``--no-isolation``),
where the plugin's own guards must hold; the last test grades the same code
isolated, as ``warblr grade run`` does. A fake student package whose functions loop forever, eat memory, call
``sys.exit``/``os._exit``, ignore the timeout signal, print megabytes or
monkey-patch numpy and builtins, graded by a tiny check module. Every hostile
check must fail (0 points), every honest check after it must still pass, and
the score table and results.json must still be written.

Memory safety: the memory hog reserves 200 MB blocks (``np.empty``, pages
never touched) in a loop; the child pytest runs under ``--grade-max-memory``
(RLIMIT_AS), so it meets a MemoryError after a few blocks, exactly as a
real hog would, and never uses the machine's RAM (the 2 s timeout would stop
it too).

The last tests take the isolation boundary's pieces one at a time: intake
refusing links, FIFOs, sockets, hard links and devices (naming the file,
reading nothing) and enforcing its limits; the reply channel refusing a
forged 100 MB reply and a million-element header without building them;
feedback text losing escape sequences; and, for kernels that refuse
namespaces, the walk that deletes the sandbox user's files and its System
V IPC objects.
"""

import ctypes
import importlib.util
import json
import os
import socket
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from warblr.errors import SubmissionError
from warblr.grading.failures import clean_text
from warblr.grading.handout import ROOT_CONFTEST, write_tree
from warblr.grading.intake import IntakeLimits, copy_submission, take_in
from warblr.grading.report import RUNNING_TEXT
from warblr.grading.runner import run_checks
from warblr.grading.cleanup import remove_files_of, remove_ipc_of, resolve_user
from warblr.grading.wire import Reader, ReplyLimits, WireError

ROOT = Path(__file__).resolve().parents[2]

HOSTILE_LOGMEL = '''\
import os
import signal
import sys

import numpy as np


def spin(x):
    while True:
        x += 1


def hog(x):
    blocks = []
    while True:
        blocks.append(np.empty(25_000_000))  # 200 MB of address space each, until RLIMIT_AS says no


def leave(x):
    sys.exit(3)


def vanish(x):
    os._exit(0)


def deaf(x):
    signal.signal(signal.SIGALRM, signal.SIG_IGN)  # the timeout cannot interrupt us
    while True:
        x += 1


def shout(x):
    for _ in range(50):
        print("la" * 50_000)  # 5 MB in all
    return x + 1


def cheat(x):
    np.testing.assert_allclose = lambda *args, **kwargs: None
    return -1


def rebind(x):
    import builtins
    builtins.abs = lambda value: 0
    return -1


def good(x):
    return x + 1
'''

CHECKS = '''\
import numpy as np
import pytest


def test_spin(impl):
    assert impl.logmel.spin(0) == 1


def test_hog(impl):
    assert impl.logmel.hog(0) == 1


def test_leave(impl):
    assert impl.logmel.leave(0) == 1


def test_shout(impl):
    assert impl.logmel.shout(0) == 2


def test_cheat(impl):
    np.testing.assert_allclose(impl.logmel.cheat(0), 1)


def test_after_cheat_numpy_is_restored(impl):
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(2, 1)
    assert impl.logmel.good(0) == 1


def test_rebind(impl):
    assert impl.logmel.rebind(0) == 1 and abs(-1) == 1


def test_after_rebind_builtins_are_restored(impl):
    assert abs(-3) == 3 and impl.logmel.good(1) == 2


@pytest.mark.hint("should never be needed")
def test_good(impl):
    assert impl.logmel.good(1) == 2
'''

CRASHERS = '''\
def test_before(impl):
    assert impl.logmel.good(0) == 1


def test_vanish(impl):
    assert impl.logmel.vanish(0) == 1


def test_deaf(impl):
    assert impl.logmel.deaf(0) == 1


def test_after(impl):
    assert impl.logmel.good(2) == 3
'''

HONEST = ("test_after_cheat_numpy_is_restored", "test_after_rebind_builtins_are_restored", "test_good",
          "test_before", "test_after")


def make_hostile_lab(root, checks):
    write_tree(root, {"conftest.py": ROOT_CONFTEST, "pytest.ini": "[pytest]\n", "exercises/__init__.py": "",
                      "exercises/logmel.py": HOSTILE_LOGMEL, "exercises/test_logmel.py": checks})
    return root


def outcomes(results):
    return {t["name"].split(": ", 1)[1]: t for t in results["tests"]}


def test_hostile_checks_fail_alone_and_the_report_survives(tmp_path):
    make_hostile_lab(tmp_path, CHECKS)
    run = subprocess.run([sys.executable, "-m", "pytest", "exercises", "-p", "no:cacheprovider",
                          "--grade-timeout=2", "--grade-max-memory=3G", "--grade-json=results.json"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "warblr grading" in run.stdout  # the score table was printed
    assert len(run.stdout) < 100_000, "5 MB of printing reached the terminal"
    tests = outcomes(json.loads((tmp_path / "results.json").read_text()))
    for name in ("test_spin", "test_hog", "test_leave", "test_shout", "test_cheat", "test_rebind"):
        assert tests[name]["status"] == "failed" and tests[name]["score"] == 0, name
    for name in HONEST[:3]:
        assert tests[name]["status"] == "passed", (name, tests[name]["output"])
    assert "time limit (2 s)" in tests["test_spin"]["output"]
    assert "ran out of memory" in tests["test_hog"]["output"]
    assert "sys.exit(3)" in tests["test_leave"]["output"]
    assert "replaced numpy.testing.assert_allclose" in tests["test_cheat"]["output"]
    assert "replaced builtins.abs" in tests["test_rebind"]["output"]
    assert 0 < len(tests["test_shout"]["output"]) < 4000


def test_a_crash_leaves_a_report_blaming_the_running_check(tmp_path):
    make_hostile_lab(tmp_path, CRASHERS)
    run = subprocess.run([sys.executable, "-m", "pytest", "exercises", "-p", "no:cacheprovider",
                          "--grade-timeout=2", "--grade-json=results.json"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0  # os._exit(0) ended pytest itself: its exit status cannot be trusted
    results = json.loads((tmp_path / "results.json").read_text())
    tests = outcomes(results)
    assert tests["test_before"]["status"] == "passed"
    assert tests["test_vanish"]["status"] == "failed" and tests["test_vanish"]["output"] == RUNNING_TEXT
    assert tests["test_after"]["extra_data"]["outcome"] == "not_run"
    assert results["score"] == 1 and results["max_score"] == 4


@pytest.mark.slow  # waits out hangs
def test_grade_run_resumes_after_crashes_and_hangs_that_ignore_the_timeout(tmp_path):
    make_hostile_lab(tmp_path, CRASHERS)
    outcome = run_checks(root=tmp_path, grade_json=tmp_path / "out" / "results.json", timeout=1.0,
                         max_memory="3G", pytest_args=["-q"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, isolate=False)
    assert outcome["runs"] == 3 and outcome["crashes"] == 2  # os._exit, then the watchdog on the deaf loop
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results == outcome["results"]
    tests = outcomes(results)
    assert [tests[name]["status"] for name in ("test_before", "test_vanish", "test_deaf", "test_after")] == \
        ["passed", "failed", "failed", "passed"]
    assert tests["test_deaf"]["output"] == RUNNING_TEXT
    assert results["score"] == 2 and results["max_score"] == 4
    assert "died during: logmel: test_deaf" in results["output"]


@pytest.mark.parametrize("broken", ["syntax", "collection"])
def test_grade_run_always_leaves_a_well_formed_results_json(tmp_path, broken):
    checks = "def test_x(impl)\n    pass\n" if broken == "syntax" else "import no_such_module_xyz\n"
    make_hostile_lab(tmp_path, checks)
    outcome = run_checks(root=tmp_path, grade_json=tmp_path / "results.json", timeout=2.0,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["score"] == 0 and results["tests"] == []
    assert "failed before any check could run" in results["output"]
    assert outcome["returncode"] == 2


@pytest.mark.slow  # grades every hostile check twice; the gallery's default entries cover isolation
def test_isolated_grading_stops_the_same_code_without_a_restart(tmp_path):
    make_hostile_lab(tmp_path, CHECKS + "\n\n" + CRASHERS.replace("def test_before", "def test_honest_before"))
    outcome = run_checks(root=tmp_path, grade_json=tmp_path / "out" / "results.json", timeout=2.0,
                         max_memory="3G", pytest_args=["-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert outcome["runs"] == 1 and outcome["crashes"] == 0  # the grader itself never died
    tests = outcomes(outcome["results"])
    for name in ("test_spin", "test_hog", "test_leave", "test_shout", "test_cheat", "test_rebind", "test_vanish",
                 "test_deaf"):
        assert tests[name]["status"] == "failed" and tests[name]["score"] == 0, name
    for name in ("test_after_cheat_numpy_is_restored", "test_after_rebind_builtins_are_restored", "test_good",
                 "test_honest_before", "test_after"):
        assert tests[name]["status"] == "passed", (name, tests[name]["output"])
    assert "time limit (2 s)" in tests["test_spin"]["output"] and "time limit (2 s)" in tests["test_deaf"]["output"]
    assert "ran out of memory" in tests["test_hog"]["output"]
    assert "sys.exit(3)" in tests["test_leave"]["output"]
    assert "ended the worker process" in tests["test_vanish"]["output"]
    assert "Your code printed" in tests["test_shout"]["output"] and len(tests["test_shout"]["output"]) < 4000
    assert "isolation: " in outcome["results"]["output"]


@pytest.mark.slow  # waits out the overall limit
def test_the_whole_run_stops_at_its_overall_time_limit(tmp_path):
    make_hostile_lab(tmp_path, CHECKS)
    outcome = run_checks(root=tmp_path, grade_json=tmp_path / "results.json", timeout=60.0, total_timeout=6.0,
                         isolate=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results == outcome["results"] and outcome["runs"] == 1
    assert "overall time limit (6 s)" in results["output"]
    tests = outcomes(results)
    assert tests["test_spin"]["status"] == "failed" and tests["test_spin"]["score"] == 0
    assert "not finished" in tests["test_spin"]["output"]
    assert results["score"] == sum(test["score"] for test in results["tests"]) == 0


# ---------------------------------------------------------------- the boundary's pieces, one at a time


def submission_folder(tmp_path, **extra):
    folder = tmp_path / "submission"
    write_tree(folder, {"resampling.py": "import numpy as np\n", "logmel.py": "from . import resampling\n",
                        "helpers/util.py": "X = 1\n", **extra})
    return folder


@pytest.mark.parametrize("kind", ["link_to_file", "link_to_folder", "dangling_link", "fifo", "socket", "hard_link",
                                  "device"])
def test_intake_refuses_anything_but_regular_files_naming_it(tmp_path, kind):
    folder = submission_folder(tmp_path)
    path = folder / "helpers" / "odd"
    if kind == "link_to_file":
        path.symlink_to("/etc/passwd")
    elif kind == "link_to_folder":
        path.symlink_to(ROOT / "solutions")
    elif kind == "dangling_link":
        path.symlink_to(tmp_path / "nowhere")
    elif kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block: intake must not
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    elif kind == "hard_link":
        os.link(folder / "resampling.py", path)
    else:
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root (CI runs as root)")
        os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 5))  # like /dev/zero
    with pytest.raises(SubmissionError) as raised:
        take_in(folder)
    assert raised.value.path in ("helpers/odd", "resampling.py"), raised.value.path  # a hard link has two names
    assert raised.value.path in str(raised.value)
    assert not (tmp_path / "copy").exists()


@pytest.mark.parametrize("name", ["resampling.cpython-311-x86_64-linux-gnu.so", "resampling.abi3.so",
                                  "helpers/fast.so", "helpers/util.pyc", "UTIL.PYC", "helpers/libdsp.so.1.2",
                                  "fast.pyd", "fast.dylib"])
def test_intake_refuses_compiled_code_naming_it(tmp_path, name):
    """An extension module is imported before the .py of the same name: the source read would not be what runs."""
    folder = submission_folder(tmp_path, **{name: "\x7fELF"})
    with pytest.raises(SubmissionError, match="compiled code") as raised:
        take_in(folder)
    assert raised.value.path == name


def test_every_suffix_python_imports_compiled_code_from_is_refused_by_name():
    from importlib.machinery import BYTECODE_SUFFIXES, EXTENSION_SUFFIXES

    from warblr.grading.intake import compiled_code

    assert all(compiled_code(f"resampling{suffix}") for suffix in EXTENSION_SUFFIXES + BYTECODE_SUFFIXES)


def test_intake_refuses_a_package_folder_beside_a_module_of_its_name(tmp_path):
    """``resampling/__init__.py`` is imported as ``resampling``; the ``resampling.py`` beside it never runs."""
    folder = submission_folder(tmp_path, **{"resampling/__init__.py": "from scipy.signal import resample_poly\n"})
    with pytest.raises(SubmissionError, match="package folder beside resampling.py") as raised:
        take_in(folder)
    assert raised.value.path == "resampling"
    nested = submission_folder(tmp_path / "nested", **{"helpers/util/__init__.py": "X = 2\n"})
    with pytest.raises(SubmissionError, match="beside util.py"):
        take_in(nested)


@pytest.mark.parametrize("source, refused", [
    (b"# coding: utf-7\nimport numpy as np\n# checksum: +AAo-import os+AAo-os.getcwd()\n", "'utf-7' (line 1)"),
    (b"#!/usr/bin/env python\n# -*- coding: latin-1 -*-\nNAME = 'caf\xe9'\n", "'iso-8859-1' (line 2)"),
    (b"# coding: latin-1\nX = 1\n", None),  # the same text either way
    (b"\xef\xbb\xbfX = '\xc3\xa9'\r\nY = 2\r\n", None),  # a UTF-8 byte order mark and CRLF line ends
    (b"X = '\xff'\n", None),  # Python cannot read it either: its import fails and says why
    # A codec the student's __init__.py registers (codecs.register) before importing the file would decode it.
    (b"#!/usr/bin/env python\n# coding: warblr_hidden\nX = 1\n", "'warblr_hidden' (line 2); only UTF-8"),
    (b"X = 1\n# the coding: of this file is plain\n", None),  # line 1 is code: line 2 is a comment, not a coding line
    # koi8-u reads ASCII as UTF-8 does, but student code can replace a registry codec at run time (a red-team
    # __init__.py re-registered koi8-u to decode '#|' comment lines as code).
    (b"# coding: koi8-u\nX = 1\n", "'koi8-u' (line 1); only UTF-8"),
    # unicode_escape after a Latin-1 byte on line 1: tokenize gives up, the import's C tokenizer does not, and
    # '\x0a' in a comment becomes a line end (a red-team submission hid all of solutions/ this way: 21/21).
    (b"# R\xe9sum\xe9\n# coding: unicode_escape\n# checksum: \\x0aimport os\n", "'unicode_escape' (line 2)"),
    (b"# R\xe9sum\xe9\n# coding: latin-1\nX = 1\n", "the way Python's import reads it"),
    (b"# -*- coding: utf-8 -*-\nX = 1\n", None),
    (b"# vim: set fileencoding=iso-8859-1 :\nX = 1\n", None),
])
def test_intake_refuses_source_that_python_reads_as_other_code(tmp_path, source, refused):
    """Under ``# coding: utf-7``, ``+AAo-`` is a line end: code hides in what an editor shows as one comment."""
    folder = submission_folder(tmp_path)
    (folder / "helpers" / "coded.py").write_bytes(source)
    if refused is None:
        assert take_in(folder).files["helpers/coded.py"] == source
        return
    with pytest.raises(SubmissionError) as raised:
        take_in(folder)
    assert raised.value.path == "helpers/coded.py" and refused in str(raised.value), str(raised.value)


def portable_executable():
    """The first bytes of a Windows DLL: the MZ header pointing at a PE signature."""
    header = bytearray(b"MZ" + bytes(0x3A) + (0x40).to_bytes(4, "little"))
    return bytes(header) + b"PE\0\0" + bytes(20)


@pytest.mark.parametrize("data, kind", [
    (b"\x7fELF\x02\x01\x01\x00" + bytes(56), "an ELF"),  # a shared library ctypes.CDLL loads, whatever its name
    (bytes.fromhex("cffaedfe") + bytes(28), "a Mach-O"),
    (portable_executable(), "a Windows executable"),
    (importlib.util.MAGIC_NUMBER + bytes(12) + b"\xe3", "Python bytecode"),  # marshal.loads + exec would run it
])
def test_intake_refuses_native_code_and_bytecode_whatever_the_file_is_called(tmp_path, data, kind):
    folder = submission_folder(tmp_path)
    (folder / "helpers" / "tables.dat").write_bytes(data)
    with pytest.raises(SubmissionError, match=kind) as raised:
        take_in(folder)
    assert raised.value.path == "helpers/tables.dat"
    (folder / "helpers" / "tables.dat").write_bytes(b"MZ: notes that merely start like a DOS header\n" * 3)
    take_in(folder)


def test_intake_takes_folders_that_shadow_nothing(tmp_path):
    """A folder without ``__init__.py`` beside a module (Python imports the module) and a lone package are fine."""
    folder = submission_folder(tmp_path, **{"resampling/notes.txt": "data\n", "dsp/__init__.py": "Y = 1\n"})
    assert sorted(take_in(folder).files) == ["dsp/__init__.py", "helpers/util.py", "logmel.py", "resampling.py",
                                             "resampling/notes.txt"]


@pytest.mark.parametrize("limit, extra, expected", [
    (IntakeLimits(max_files=3), {"more.py": "Y = 2\n"}, "more than 3 files"),
    (IntakeLimits(max_depth=1), {"a/b/deep.py": "Z = 3\n"}, "deeper than 1"),
    (IntakeLimits(max_file_bytes=100), {"big.py": "#" * 101}, "per file"),
    (IntakeLimits(max_total_bytes=100), {"b1.py": "#" * 60, "b2.py": "#" * 60}, "in all"),
])
def test_intake_limits_are_enforced_and_configurable(tmp_path, limit, extra, expected):
    folder = submission_folder(tmp_path, **extra)
    with pytest.raises(SubmissionError, match=expected):
        take_in(folder, limits=limit)
    take_in(folder, limits=IntakeLimits(max_files=10, max_depth=3))  # the defaults are wider


def test_intake_copies_contents_only_and_finds_forbidden_imports(tmp_path):
    folder = submission_folder(tmp_path, **{
        "classify.py": "import importlib\nfeatures = importlib.import_module('warblr.features')\n",
        "helpers/sneaky.py": "from librosa.core import resample\nm = __import__('torchvggish')\n",
        "test_mine.py": "raise SystemExit", ".git/config": "x", "__pycache__/x.pyc": "x"})
    submission = take_in(folder)
    assert sorted(submission.files) == ["classify.py", "helpers/sneaky.py", "helpers/util.py", "logmel.py",
                                        "resampling.py"]
    assert submission.forbidden == {"classify.py": [("warblr", 2)],
                                    "helpers/sneaky.py": [("librosa", 1), ("torchvggish", 2)]}
    by_module = submission.forbidden_by_module()
    assert set(by_module) == {"resampling", "logmel", "embedding", "classify"}  # a helper may serve any module
    assert "classify.py imports warblr (line 2)" in by_module["classify"]
    copy = copy_submission(submission, tmp_path / "copy")
    for relative, data in submission.files.items():
        path = copy / relative
        assert path.read_bytes() == data and not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o644
        assert path.stat().st_nlink == 1


def test_a_reply_bomb_is_refused_before_it_is_read_or_parsed():
    def bomb(size):
        body = b"[" + b"[]," * ((size - 2) // 3) + b"[]]"
        return struct.pack("<Q", len(body)) + body

    class Stream:
        def __init__(self, data):
            self.data, self.read = memoryview(data), 0

        def recv_exact(self, count):
            chunk = bytearray(self.data[self.read:self.read + count])
            self.read += count
            return chunk

    limits = ReplyLimits()
    huge = Stream(bomb(100 << 20))
    with pytest.raises(WireError, match="header of 104857600 bytes"):
        Reader(huge.recv_exact, limits=limits).read()
    assert huge.read == 8  # only the length was read
    reset_peak_memory()
    before = peak_memory()
    with pytest.raises(WireError, match="more than 2000000 elements"):
        Reader(Stream(bomb(8 << 20)).recv_exact, limits=limits).read()
    assert peak_memory() - before < 64 << 20  # a million lists were never built
    deep = b'{"ok": true, "value": ' + b"[" * 100 + b"]" * 100 + b"}"
    with pytest.raises(WireError, match="deeper than 64"):
        Reader(Stream(struct.pack("<Q", len(deep)) + deep).recv_exact, limits=limits).read()
    empty_but_huge = b'{"ok": true, "value": 1, "blobs": [{"dtype": "<f4", "shape": [0, 4611686018427387904, 2]}]}'
    with pytest.raises(WireError, match="dimension past"):  # no bytes to read, but numpy refuses the shape
        Reader(Stream(struct.pack("<Q", len(empty_but_huge)) + empty_but_huge).recv_exact, limits=limits).read()
    fine = b'{"ok": true, "value": [[1, 2], "[[[[,,,,"], "blobs": []}'
    header, blobs = Reader(Stream(struct.pack("<Q", len(fine)) + fine).recv_exact, limits=limits).read()
    assert header == {"ok": True, "value": [[1, 2], "[[[[,,,,"]} and blobs == []


def reset_peak_memory():
    """Reset this process's peak resident size (``VmHWM``), so the next reading is of what follows."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def peak_memory():
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) << 10 for line in handle if line.startswith("VmHWM:"))


def test_feedback_text_loses_escape_sequences_and_shows_control_characters():
    text = "\x1b[2J\x1b[H\x1b]0;title\x07\x1b[32mok\x1b[0m 1/1\r\x00\x9b1m\u202eevil\tend\n"
    cleaned = clean_text(text)
    assert cleaned == "ok 1/1\\r\\x00\\u202eevil\tend\n"
    assert not [c for c in cleaned if ord(c) < 32 and c not in "\t\n"]


def test_without_namespaces_the_sandbox_users_files_and_ipc_objects_are_removed(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to act as the sandbox user nobody (CI runs as root)")
    uid, gid = resolve_user("nobody")
    shared = tmp_path / "shared"
    write_tree(shared, {"root_file": "keep", "ray/session_1/inputs": "x", "lock/deep/er/file": "x"})
    for path in [shared / "ray", shared / "ray" / "session_1", shared / "ray" / "session_1" / "inputs",
                 shared / "lock" / "deep", shared / "lock" / "deep" / "er", shared / "lock" / "deep" / "er" / "file"]:
        os.lchown(path, uid, gid)
    (shared / "lock" / "deep" / "link").symlink_to("/etc/passwd")
    os.lchown(shared / "lock" / "deep" / "link", uid, gid)
    pid = os.fork()
    if pid == 0:  # a process of the sandbox user makes a SysV shared memory segment and leaves
        try:
            os.setgid(gid)
            os.setuid(uid)
            libc = ctypes.CDLL(None, use_errno=True)
            os._exit(0 if libc.shmget(0, ctypes.c_size_t(4096), ctypes.c_int(0o1600)) >= 0 else 1)
        finally:
            os._exit(2)
    assert os.waitpid(pid, 0)[1] == 0
    assert nobody_shm()
    assert remove_files_of(uid, [str(shared)]) == 7
    assert sorted(p.name for p in shared.rglob("*")) == ["lock", "root_file"]  # root's own files stay
    assert (Path("/etc/passwd")).exists()  # the link was removed, not followed
    assert remove_ipc_of(uid) >= 1 and not nobody_shm()


def nobody_shm():
    uid = resolve_user("nobody")[0]
    with open("/proc/sysvipc/shm") as handle:
        header, *rows = [line.split() for line in handle if line.strip()]
    return [row for row in rows if int(dict(zip(header, row))["uid"]) == uid]
