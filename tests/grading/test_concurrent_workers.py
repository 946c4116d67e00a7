"""Isolated gradings side by side: a check's worker cannot see, signal, read or trace another grading's worker.

Every worker of every grading on a machine runs as the same sandbox user
(nobody), so a PID namespace per check keeps them apart. The main test runs
two real ``warblr grade run`` gradings at once (child pytests with
``--isolate``, as root): submission B is honest but stops itself (SIGSTOP)
in ``to_mono`` until the test lets it go on; submission A's ``to_mono``,
run while B is stopped, lists ``/proc`` for other processes of its user,
reads their ``environ``, ``cmdline``, ``cwd`` and ``root``, tries to ptrace
them, kills every process it may (``kill(-1, SIGKILL)``), then leaves a
child in a session of its own, and reports what it achieved in its
exception text. B must keep its mark, A's report must show it reached
nothing, nothing of either may stay running, and both results must say
each check had a PID namespace. Two quick tests take the pieces alone: the
check runs as pid 2 and the worker's pid ends exactly as the check ended
(the grader's crash reports rely on it), and a refused PID namespace is
reported while confinement goes on as before.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import types
from pathlib import Path

import pytest

from warblr.grading import sandbox
from warblr.grading.fork_server import ForkServer
from warblr.grading.runner import run_checks

from test_hostile_gallery import nobody_processes  # noqa: I001 -- a test module beside this one

ROOT = Path(__file__).resolve().parents[2]
EXERCISES = ROOT / "exercises"
CHECK = "test_to_mono_keeps_mono"
pytestmark = pytest.mark.usefixtures("needs_uid_separation")

#: Shared by both submissions: name this process (so the test finds it) and stop it until the test says go.
PAUSE = r'''

import ctypes as _ctypes
import os as _os
import signal as _signal


def _pause(name):
    _ctypes.CDLL(None).prctl(15, _ctypes.c_char_p(name.encode()), 0, 0, 0)  # PR_SET_NAME: the test looks for it
    _os.kill(_os.getpid(), _signal.SIGSTOP)  # the test sends SIGCONT
'''

HONEST_SLOW = PAUSE + r'''

_first = [True]


def to_mono(waveform):
    import numpy as np

    if _first[0]:
        _first[0] = False
        _pause("{token}-b")
    waveform = np.asarray(waveform)
    return waveform if waveform.ndim == 1 else waveform.mean(axis=1)
'''

HOSTILE = PAUSE + r'''

def _others():
    """Pids of the other processes of this user that /proc shows (not this one, not its children)."""
    me, found = _os.getuid(), []
    for entry in _os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == _os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        if int(fields["Uid"].split()[0]) == me and int(fields["PPid"].split()[0]) != _os.getpid():
            found.append(int(entry))
    return found


def to_mono(waveform):
    _pause("{token}-a")
    evidence = []
    others = _others()
    evidence.append(f"pid {_os.getpid()} sees {len(others)} other process(es) of uid {_os.getuid()}: {others}"
                    + (" TAMPERED" if others else ""))
    for pid in others:
        for what in ("environ", "cmdline"):
            try:
                with open(f"/proc/{pid}/{what}", "rb") as handle:
                    evidence.append(f"LEAKED /proc/{pid}/{what}: {handle.read(80)!r}")
            except OSError as exc:
                evidence.append(f"could not read /proc/{pid}/{what}: {exc.strerror}")
        for what in ("root/tmp", "cwd"):
            try:
                evidence.append(f"LEAKED /proc/{pid}/{what}: {sorted(_os.listdir(f'/proc/{pid}/{what}'))[:5]}")
            except OSError as exc:
                evidence.append(f"could not list /proc/{pid}/{what}: {exc.strerror}")
        libc = _ctypes.CDLL(None, use_errno=True)
        if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
            evidence.append(f"TAMPERED ptrace attached to {pid}")
            libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
        else:
            evidence.append(f"could not ptrace {pid}: {_os.strerror(_ctypes.get_errno())}")
    try:
        _os.kill(-1, _signal.SIGKILL)  # every process this user may signal, but this one
        evidence.append("TAMPERED kill(-1, SIGKILL) reached some process")
    except OSError as exc:
        evidence.append(f"kill(-1, SIGKILL) reached nothing: {exc.strerror}")
    if _os.fork() == 0:  # a child hiding in a session of its own, meant to outlive the check
        import time

        _ctypes.CDLL(None).prctl(15, _ctypes.c_char_p(b"{token}-l"), 0, 0, 0)
        _os.setsid()
        _signal.pthread_sigmask(_signal.SIG_BLOCK, range(1, 32))
        while True:
            time.sleep(1)
    raise RuntimeError("ATTEMPTED: " + " | ".join(evidence))
'''


def submission(folder, code):
    """The untouched stubs with ``code`` appended to ``resampling.py`` (its ``to_mono`` replaced)."""
    folder.mkdir()
    for module in ("__init__", "resampling", "logmel", "embedding", "classify"):
        extra = code if module == "resampling" else ""
        (folder / f"{module}.py").write_text((EXERCISES / f"{module}.py").read_text() + extra)
    return folder


def named(prefix):
    """``{comm: pid}`` of the processes whose name starts with ``prefix`` (as this, the host's, /proc shows)."""
    found = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/comm") as handle:
                name = handle.read().strip()
        except OSError:
            continue
        if name.startswith(prefix):
            found[name] = int(entry)
    return found


def stopped(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"T"
    except OSError:
        return False


def outcome_of(results):
    (test,) = [t for t in results["tests"] if t["name"].endswith(CHECK)]
    return test


@pytest.mark.slow  # two whole gradings at once (~15 s); the pid-2 tests below show the namespace in the default pass
def test_a_worker_cannot_reach_a_concurrent_gradings_worker(tmp_path):
    token = "w" + secrets.token_hex(3)  # process names hold at most 15 characters
    folders = {"a": submission(tmp_path / "a", HOSTILE.replace("{token}", token)),
               "b": submission(tmp_path / "b", HONEST_SLOW.replace("{token}", token))}
    outcomes = {}

    def grade(key):
        outcomes[key] = run_checks(root=ROOT, impl=folders[key], grade_json=tmp_path / f"results_{key}.json",
                                   timeout=60.0, pytest_args=["-q", "-k", CHECK], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)

    threads = {key: threading.Thread(target=grade, args=(key,), daemon=True) for key in folders}
    for thread in threads.values():
        thread.start()
    try:
        # Both workers stop themselves inside to_mono; A goes on only once B is surely running.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = named(token)
            if all(f"{token}-{key}" in found and stopped(found[f"{token}-{key}"]) for key in folders):
                break
            assert all(thread.is_alive() for thread in threads.values()), (
                f"a grading ended before both workers were running: {outcomes}")
            time.sleep(0.1)
        else:
            pytest.fail("the workers did not reach to_mono within 120 s")
        b_pid = found[f"{token}-b"]
        os.kill(found[f"{token}-a"], signal.SIGCONT)
        threads["a"].join(90)
        assert not threads["a"].is_alive(), "grading A did not finish"
        if named(f"{token}-b"):  # B's worker is alive (not killed by A): let it finish
            os.kill(b_pid, signal.SIGCONT)
        threads["b"].join(90)
        assert not threads["b"].is_alive(), "grading B did not finish"
    finally:
        for pid in named(token).values():  # never leave a stopped or hidden process of ours on failure
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    a, b = outcome_of(outcomes["a"]["results"]), outcome_of(outcomes["b"]["results"])
    assert b["status"] == "passed" and b["score"] == b["max_score"] > 0, (
        f"the honest submission lost its mark while the other was graded: {b['output'][:2000]}\n"
        f"the other's report: {a['output'][:3000]}")
    assert a["score"] == 0 and "ATTEMPTED" in a["output"], a["output"][:2000]
    assert "sees 0 other process(es)" in a["output"], a["output"][:3000]
    for marker in ("LEAKED", "TAMPERED"):
        assert marker not in a["output"], f"the hostile worker reached the other grading: {a['output'][:3000]}"
    assert "kill(-1, SIGKILL) reached nothing" in a["output"], a["output"][:3000]
    print(f"\nthe hostile worker's report: {a['output'][-1500:]}")
    assert not named(token), f"left running: {named(token)}"
    assert not nobody_processes(), "a grading left processes of the sandbox user running"
    for results in (outcomes["a"]["results"], outcomes["b"]["results"]):
        assert "processes: a new PID namespace per check" in results["output"], results["output"]


def confined_child(before, then):
    """Fork; in the child run ``before()``, :func:`sandbox.confine`, then ``then(report)``; return (what it
    sent, its wait status). The child never returns into pytest."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            before()
            report = sandbox.confine(sandbox.Confinement())
            os.write(write_fd, json.dumps({"pid": os.getpid(), "proc": sorted(
                int(p) for p in os.listdir("/proc") if p.isdigit()), "report": report}).encode())
            then(report)
        finally:
            os._exit(99)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as handle:
        sent = json.loads(handle.read() or b"{}")
    return sent, os.waitpid(pid, 0)[1]


@pytest.mark.parametrize("end", ["exit", "signal"])
def test_the_check_runs_as_pid_2_and_the_worker_ends_as_it_ends(end):
    # The grader only knows the forked pid (the keeper): its status must be the check's, exit code or signal.
    def then(report):
        if end == "exit":
            os._exit(7)
        os.kill(os.getpid(), signal.SIGTERM)  # pid 2, not the namespace's init: the signal is not ignored

    sent, status = confined_child(lambda: None, then)
    assert sent["report"]["namespaces"] == {"mount": None, "ipc": None, "pid": None}
    assert sent["pid"] == 2 and sent["proc"] == [1, 2]  # the init and the check: nothing else is visible
    if end == "exit":
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7
    else:
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM


def test_a_refused_pid_namespace_is_reported_and_confinement_goes_on():
    # A process may enter one new PID namespace for its children only once: the second unshare is refused,
    # which stands for a kernel that refuses them. The worker must go on in the same process and say why.
    def then(report):
        os._exit(0)

    sent, status = confined_child(lambda: sandbox.unshare(sandbox.CLONE_NEWPID), then)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    why = sent["report"]["namespaces"]["pid"]
    assert why and "unshare" in why and sent["report"]["namespaces"]["mount"] is None
    assert sent["pid"] != 2 and len(sent["proc"]) > 2  # no fork happened: the host's processes are visible
    note = ForkServer._process_note(types.SimpleNamespace(), {"confined": sent["report"]}, "nobody")
    assert note.startswith("processes: NOT private, no new PID namespace (") and why in note


def test_a_world_writable_folder_of_dev_is_made_private_for_each_worker():
    """Red team, stop 36: /dev was never searched, so where /dev/mqueue is mounted world-writable (Docker,
    systemd) a worker could create queues there that outlived it: a channel to later checks and students."""
    if os.geteuid() != 0:
        pytest.skip("needs root (to make a folder in /dev)")
    try:
        folder = Path(tempfile.mkdtemp(prefix="warblr-test-", dir="/dev"))  # where /dev/mqueue would be
    except OSError as exc:
        pytest.skip(f"cannot make a folder in /dev here: {exc}")
    try:
        folder.chmod(0o1777)
        deeper = folder / "deeper"
        deeper.mkdir(mode=0o1777)
        deeper.chmod(0o1777)
        found = sandbox.world_writable_folders()
        assert str(folder) in found  # covered by a private tmpfs in each worker, as /tmp is
        assert str(deeper) not in found  # inside a folder already covered
    finally:
        shutil.rmtree(folder, ignore_errors=True)
