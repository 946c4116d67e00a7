"""A control group per worker: the check's processes are capped together, not per user or per process.

Every worker of every grading runs as the sandbox user nobody. With only
the kernel's rlimits, one check holding its cap of processes (counted per
user) stopped another grading's check from starting a thread, and a check
that forked held ``--max-memory`` once per process (red-team review, stop
36: four children held 8 GiB under a 6 GiB cap). These tests run real
workers of one fork server as two gradings would, with small caps, and
fail on a grader without control groups. They need root and writable
cgroup controllers (CI has both); where the kernel refuses them the
grading's notes say so, which a last test checks from the same report.
"""

import doctest
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from warblr.grading import control_groups
from warblr.grading.fork_server import ForkServer
from warblr.grading.proxies import RemoteImpl, WorkerDied

pytestmark = pytest.mark.usefixtures("needs_uid_separation")

#: The student's module: functions that hold processes, start threads, and fork children that hold memory.
HOSTILE = r'''
import os
import threading
import time


def hold_processes(count):
    """Fork up to ``count`` children that sleep; return how many the kernel allowed."""
    started = 0
    for _ in range(count):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(600)
            os._exit(0)
        started += 1
    return started


def start_threads(count):
    """Start ``count`` threads that wait together; return how many started."""
    release, started = threading.Event(), 0
    threads = []
    for _ in range(count):
        thread = threading.Thread(target=release.wait)
        try:
            thread.start()
        except RuntimeError:
            break
        threads.append(thread)
        started += 1
    release.set()
    for thread in threads:
        thread.join()
    return started


def new_user_namespace():
    """What unshare and clone say to a new user namespace (errno names), and what /dev/fuse is."""
    import ctypes
    import errno
    import signal
    import subprocess

    libc = ctypes.CDLL(None, use_errno=True)
    said = {}
    pid = libc.syscall(56, 0x10000000 | signal.SIGCHLD, 0, 0, 0, 0)  # clone(CLONE_NEWUSER) on x86_64
    if pid == 0:
        os._exit(0)
    if pid > 0:
        os.waitpid(pid, 0)
    said["clone"] = errno.errorcode.get(ctypes.get_errno(), "?") if pid < 0 else "done"
    # After clone: once in a user namespace without a uid map, a nested one is refused for that reason
    said["unshare"] = errno.errorcode.get(ctypes.get_errno(), "?") if libc.unshare(0x10000000) else "done"
    said["fuse is null"] = (not os.path.exists("/dev/fuse")
                            or os.stat("/dev/fuse").st_rdev == os.stat("/dev/null").st_rdev)
    said["thread"] = start_threads(3) == 3  # clone3 answers ENOSYS: the C library falls back on clone
    said["subprocess"] = subprocess.run(["true"], check=False).returncode
    return said


def sleep_in_a_child():
    """Leave a sleeping child and return (as a grading's check would, before its time is up)."""
    if os.fork() == 0:
        time.sleep(600)
        os._exit(0)
    return os.getpid()


def spin_in_children(count, seconds):
    """Leave ``count`` children spinning on the CPUs for ``seconds``, and return at once."""
    end = time.monotonic() + seconds
    for _ in range(count):
        if os.fork() == 0:
            while time.monotonic() < end:
                pass
            os._exit(0)
    return count


def busy_share(seconds):
    """Spin for ``seconds`` of wall time; return the CPU time this process got per second."""
    start, used = time.monotonic(), time.process_time()
    while time.monotonic() - start < seconds:
        pass
    return (time.process_time() - used) / (time.monotonic() - start)


def children_holding(megabytes, count):
    """Fork ``count`` children that each fill ``megabytes`` and hold them together; their wait statuses."""
    pids = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            block = bytearray(b"\x01") * (megabytes << 20)  # written, so resident
            time.sleep(1)
            os._exit(0 if block[-1] == 1 else 1)
        pids.append(pid)
    return [os.waitpid(pid, 0)[1] for pid in pids]
'''


def test_the_parsers_examples():
    assert doctest.testmod(control_groups).failed == 0


@pytest.fixture
def fork_server():
    server = ForkServer.shared().ready()  # this process's, as the gradings of a batch or a test run share it
    if not server.control_groups:
        pytest.skip("no writable cgroup controllers here (see the grading's worker-limits note for why)")
    return server


@pytest.fixture
def hostile(tmp_path):
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "classify.py").write_text(HOSTILE)
    return folder


def grading(folder, fork_server, *, processes=None, memory=None):
    """A RemoteImpl as a grading makes one, with its worker's caps lowered for the test."""
    impl = RemoteImpl(folder, sandbox_=fork_server, timeout=60.0)
    if processes is not None:
        impl.confinement["limits"]["processes"] = processes
    if memory is not None:
        impl.confinement["limits"].update(memory=memory, address_space=None)
    impl.begin_check(60.0)
    return impl


def test_a_check_holding_its_process_cap_leaves_another_gradings_threads_alone(fork_server, hostile):
    holder, neighbour = grading(hostile, fork_server, processes=40), grading(hostile, fork_server, processes=40)
    try:
        held = holder.exercise_module("classify").hold_processes(100)
        assert 30 <= held < 40  # the cap holds for the check's processes (the keeper and init count too)
        # A grader without a group per check caps nobody's processes together: 0 threads start here.
        assert neighbour.exercise_module("classify").start_threads(30) == 30
    finally:
        holder.end_check()
        neighbour.end_check()


def test_the_memory_cap_holds_for_the_checks_processes_together(fork_server, hostile):
    impl = grading(hostile, fork_server, memory=300 << 20)
    try:
        statuses = impl.exercise_module("classify").children_holding(128, 4)  # 512 MiB together
        assert any(os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9 for status in statuses), statuses
    except WorkerDied as exc:  # the kernel chose the check's own process: the grader says why
        assert "out of memory" in str(exc) and "more memory than the check's limit" in exc.warblr_explanation
    finally:
        impl.end_check()


def test_the_checks_processes_end_with_the_check_and_no_group_is_left(fork_server, hostile):
    impl = grading(hostile, fork_server)
    try:
        assert impl.exercise_module("classify").hold_processes(5) == 5
        groups = [Path(folder) for folder in fork_server.control_groups.values()]
        workers = [group for parent in groups for group in parent.iterdir() if group.is_dir()]
        assert workers and all(len(control_groups.processes_in(group)) >= 6 for group in workers)
    finally:
        impl.end_check()
    assert not [group for parent in groups for group in parent.iterdir() if group.is_dir()]
    assert "tasks for the check's processes together" in " ".join(impl.notes)


def test_a_killed_fork_server_leaves_no_group(hostile):
    server = ForkServer().ready()
    parents = [Path(folder) for folder in server.control_groups.values()]
    if not parents:
        server.close()
        pytest.skip("no writable cgroup controllers here")
    impl = grading(hostile, server)
    assert impl.exercise_module("classify").hold_processes(3) == 3
    server.close()  # kills the fork server outright: its groups (and the check's processes) go with the grader
    assert not any(parent.exists() for parent in parents)


def test_every_controller_is_used_or_the_notes_say_why(fork_server, hostile):
    impl = grading(hostile, fork_server)
    impl.end_check()
    note = next(note for note in impl.notes if note.startswith("worker limits:"))
    for controller in control_groups.CONTROLLERS:
        if controller in fork_server.control_groups:
            continue
        assert f"{controller}: " in note and "NOT capped together" in note
    if set(control_groups.CONTROLLERS) <= set(fork_server.control_groups):
        assert "NOT capped together" not in note and "resident for the check's processes together" in note
        assert "one equal CPU share for the check's processes together" in note


#: Run as a grader of its own inside a cpu group (a container, a Ray node, a systemd service): a check spinning
#: in many children beside another grading's check that spins in one thread; prints the latter's CPU share.
CPU_NEIGHBOURS = """
import json, os, sys
from pathlib import Path
(Path(sys.argv[1]) / "cgroup.procs").write_text(str(os.getpid()))
from warblr.grading.fork_server import ForkServer
from warblr.grading.proxies import RemoteImpl
server = ForkServer().ready()
hog, honest = (RemoteImpl(sys.argv[2], sandbox_=server, timeout=60.0) for _ in range(2))
for impl in (hog, honest):
    impl.begin_check(60.0)
hog.exercise_module("classify").spin_in_children(int(sys.argv[3]), 8.0)
share = honest.exercise_module("classify").busy_share(3.0)
hog.end_check()
honest.end_check()
print(json.dumps({"share": share, "cpu": sorted(server.control_groups)}))
server.close()
"""


def test_a_check_spinning_in_many_processes_takes_one_cpu_share(hostile):
    """Red team, stop 37: inside a cpu group of its own, a grader's checks shared the CPUs per process, so
    a check forking 200 busy processes slowed another grading's checks 22x."""
    hierarchies, _ = control_groups.find_hierarchies(Path("/proc/self/mountinfo").read_text(),
                                                     Path("/proc/self/cgroup").read_text(), controllers=("cpu",))
    if "cpu" not in hierarchies or os.geteuid() != 0:
        pytest.skip("no writable cpu hierarchy here")
    group = hierarchies["cpu"].folder / f"warblr-test-{os.getpid()}"
    group.mkdir()
    cpus = os.cpu_count() or 1
    try:
        run = subprocess.run([sys.executable, "-c", CPU_NEIGHBOURS, str(group), str(hostile), str(4 * cpus)],
                             capture_output=True, text=True, timeout=120)
    finally:
        control_groups.remove_group(group)
    assert run.returncode == 0, run.stderr[-3000:]
    measured = json.loads(run.stdout.strip().splitlines()[-1])
    # Two groups of equal share: the one spinning thread gets a CPU (all of one, or half of the only one);
    # sharing per process among 4 x cpus + 1 it got a quarter of that.
    assert measured["share"] > 0.6 * min(1.0, cpus / 2), measured
    assert "cpu" in measured["cpu"]


def test_a_group_that_cannot_be_made_is_reported(tmp_path):
    mountinfo = f"40 31 0:37 / {tmp_path} rw,relatime - cgroup2 cgroup2 rw"
    groups = control_groups.WorkerGroups(mountinfo=mountinfo, process_groups="0::/missing\n")
    assert not groups.available()
    assert set(groups.missing) == set(control_groups.CONTROLLERS)
    assert all("not visible" in why for why in groups.missing.values())
    group, missing = groups.create(processes=10, memory=1 << 20)
    assert group.paths() == [] and missing == groups.missing


def test_threads_of_the_grader_are_not_in_a_workers_group(fork_server, hostile):
    # Joining moves the forked worker only: the grader and its fork server stay where they were.
    impl = grading(hostile, fork_server)
    try:
        impl.exercise_module("classify").start_threads(2)
        mine = Path("/proc/self/cgroup").read_text()
        assert control_groups.PARENT_PREFIX not in mine
        server = Path(f"/proc/{fork_server.server_pid}/cgroup").read_text()
        assert control_groups.PARENT_PREFIX not in server
    finally:
        impl.end_check()


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the check calls clone by its x86_64 number")
def test_the_worker_cannot_make_a_user_namespace(fork_server, hostile):
    """Red team, stop 37: as nobody in a user namespace of its own, a worker mounted a FUSE file system it
    served itself and left processes no signal ends (240 tasks and 2 GiB held after the grading)."""
    impl = grading(hostile, fork_server)
    try:
        said = impl.exercise_module("classify").new_user_namespace()
    finally:
        impl.end_check()
    assert said == {"unshare": "EPERM", "clone": "EPERM", "fuse is null": True, "thread": True, "subprocess": 0}
    assert "new namespaces and mounts: refused to the worker (seccomp)" in " ".join(impl.notes)


def test_a_killed_fork_server_takes_its_running_checks_with_it(hostile):
    """Red team, stop 37: a grading killed at its overall time limit (the grader and the fork server, one
    process group) left the running check alive, in a session of its own, with nobody to end it."""
    server = ForkServer().ready()
    if "pids" not in server.control_groups:
        server.close()
        pytest.skip("no writable pids hierarchy here")
    impl = grading(hostile, server)
    impl.exercise_module("classify").sleep_in_a_child()
    [group] = [child for child in Path(server.control_groups["pids"]).iterdir()
               if child.is_dir() and control_groups.processes_in(child)]
    assert len(control_groups.processes_in(group)) >= 4  # the keeper, the init, the check and its child
    os.kill(server.server_pid, signal.SIGKILL)  # as the overall time limit does, without the grader's close()
    deadline = time.monotonic() + 10
    while control_groups.processes_in(group) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert control_groups.processes_in(group) == []
    server.close()
    assert not group.exists()


def test_groups_of_fork_servers_gone_are_removed_when_empty():
    hierarchies, _ = control_groups.find_hierarchies(Path("/proc/self/mountinfo").read_text(),
                                                     Path("/proc/self/cgroup").read_text())
    if "pids" not in hierarchies or os.geteuid() != 0:
        pytest.skip("no writable pids hierarchy here")
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid no process has now
    folder = hierarchies["pids"].folder
    stale, live = folder / f"{control_groups.PARENT_PREFIX}{gone.pid}", folder / f"{control_groups.PARENT_PREFIX}1"
    for parent in (stale, live):
        (parent / "w1").mkdir(parents=True)
    try:
        control_groups.remove_stale(folder)
        assert not stale.exists() and (live / "w1").exists()  # pid 1 is alive: its groups stay
    finally:
        for parent in (stale, live):
            for path in (parent / "w1", parent):
                if path.exists():
                    path.rmdir()
