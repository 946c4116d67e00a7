"""A control group per worker: one process cap, one memory cap and one CPU share for everything a check runs.

Every worker of every grading on a machine runs as the same sandbox user,
and the kernel's per-process limits do not fit that: ``RLIMIT_NPROC``
counts *every* process of the user (one check holding its cap of processes
stopped another grading's check from starting a thread), and
``RLIMIT_AS`` caps each process alone (a check that forks four children
held four times ``--max-memory``), and nothing shared the CPUs per check
(200 busy processes of one check against one thread of another's). A
control group per worker caps the check's tasks (``pids``) and resident
memory (``memory``) and gives it one equal CPU share (``cpu``) together,
whoever forked them, and lets the fork server kill everything the check left,
however it hid (a new session, a double fork): a process cannot leave its
group without writing to a group's files, which only root may.

Both cgroup versions are used where the fork server (root) may write
them: v1 (a hierarchy per controller, ``/sys/fs/cgroup/pids``...) and v2
(one unified hierarchy, where the grader's own group must be able to hand
its controllers down). The fork server makes one parent group beside its
own group (:class:`WorkerGroups`), a child per worker
(:meth:`WorkerGroups.create`) that the forked worker joins before
anything else (:func:`join`), and removes it when the worker has ended
(:meth:`WorkerGroup.remove`). Where a controller cannot be used the
reason is kept and reported, and the worker falls back on the rlimits.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

#: The controllers a worker's group uses: its tasks, its memory, and one equal share of the CPUs for all its
#: processes together (a check that forked 200 busy processes slowed a concurrent grading's checks 22x where
#: the grader ran in a cpu group of its own: a container, a Ray node, a systemd service).
CONTROLLERS = ("pids", "memory", "cpu")

#: The CPU share of every worker group, the kernels' defaults: all equal whatever each one forks.
CPU_SHARES, CPU_WEIGHT = 1024, 100

#: Prefix of the parent group a fork server makes (``warblr-grading-PID``).
PARENT_PREFIX = "warblr-grading-"


@dataclass(frozen=True)
class Hierarchy:
    """Where one controller's groups live: ``folder`` is the calling process's own group in it."""

    controller: str
    version: int
    folder: Path


def parse_mountinfo(text):
    """Cgroup mounts in ``/proc/self/mountinfo`` text: ``[(fstype, mount root, mount point, super options)]``.

    The super options (sorted) name a v1 hierarchy's controllers.

    Examples
    --------
    >>> line = "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids"
    >>> parse_mountinfo(line)
    [('cgroup', '/', '/sys/fs/cgroup/pids', ('pids', 'rw'))]
    """
    mounts = []
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, after = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(after) < 3 or after[0] not in ("cgroup", "cgroup2"):
            continue
        mounts.append((after[0], _unescape(fields[3]), _unescape(fields[4]), tuple(sorted(after[2].split(",")))))
    return mounts


def _unescape(path):
    """mountinfo writes space, tab, newline and backslash as octal escapes (``\\040``)."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        path = path.replace(code, chr(int(code[1:], 8)))
    return path


def parse_process_groups(text):
    """``/proc/PID/cgroup`` text as ``{controller: path}``; the v2 group is under the key ``""``.

    Examples
    --------
    >>> parse_process_groups("8:pids:/\\n4:memory:/a/b\\n0::/\\n")
    {'pids': '/', 'memory': '/a/b', '': '/'}
    """
    groups = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            groups[controller] = parts[2]
    return groups


def _inside(mount_root, mount_point, path):
    """The folder of group ``path`` under a mount of the hierarchy's ``mount_root``, or None."""
    if mount_root != "/" and path != mount_root and not path.startswith(mount_root.rstrip("/") + "/"):
        return None
    relative = path[len(mount_root):] if mount_root != "/" else path
    return Path(mount_point) / relative.lstrip("/")


def find_hierarchies(mountinfo, process_groups, controllers=CONTROLLERS):
    """Where each controller's groups are for a process, from its mountinfo and cgroup texts.

    A controller bound to a v1 hierarchy is found there; any other is looked
    for in the v2 hierarchy (listed in its group's ``cgroup.controllers``).

    Returns
    -------
    (dict, dict)
        ``{controller: Hierarchy}`` and ``{controller: why not}``.
    """
    mounts, groups = parse_mountinfo(mountinfo), parse_process_groups(process_groups)
    found, missing = {}, {}
    for controller in controllers:
        v1 = [(root, point) for kind, root, point, options in mounts if kind == "cgroup" and controller in options]
        v2 = [(root, point) for kind, root, point, _ in mounts if kind == "cgroup2"]
        if v1:
            root, point = v1[0]
            folder = _inside(root, point, groups.get(controller, ""))
            version = 1
        elif v2:
            root, point = v2[0]
            folder = _inside(root, point, groups.get("", ""))
            version = 2
        else:
            missing[controller] = "no cgroup hierarchy mounted with it"
            continue
        if folder is None or not folder.is_dir():
            missing[controller] = f"this process's cgroup v{version} group is not visible under {point}"
            continue
        if version == 2:
            try:
                available = (folder / "cgroup.controllers").read_text().split()
            except OSError as exc:
                missing[controller] = f"cgroup v2: {exc}"
                continue
            if controller not in available:
                missing[controller] = f"cgroup v2: not available in {folder} (not delegated to it)"
                continue
        found[controller] = Hierarchy(controller, version, folder)
    return found, missing


def _write(path, text):
    with open(path, "w") as handle:  # one write: the kernel parses each write on its own
        handle.write(text)


def _reason(exc):
    return f"{os.strerror(exc.errno)} ({exc.filename})" if exc.errno else str(exc)


@dataclass
class WorkerGroup:
    """One worker's group: a folder per hierarchy (v2: one for both controllers)."""

    folders: dict = field(default_factory=dict)  # controller -> Path
    memory_version: int = 0

    def paths(self):
        """The distinct folders, as strings (what the worker joins)."""
        return sorted({str(folder) for folder in self.folders.values()})

    def memory_kills(self):
        """``(processes the kernel killed for memory, whether the group reached its own cap)``.

        The kernel counts a kill in the victim's group whichever group ran
        out (the machine, a container's group above the grader); only a group
        that reached its own cap ran out because of its own processes.
        """
        folder = self.folders.get("memory")
        if folder is None:
            return 0, False
        if self.memory_version == 1:
            kills = _counters(folder / "memory.oom_control").get("oom_kill", 0)
            try:
                at_cap = int((folder / "memory.failcnt").read_text()) > 0
            except (OSError, ValueError):
                at_cap = False
        else:
            events = _counters(folder / "memory.events")
            kills, at_cap = events.get("oom_kill", 0), events.get("max", 0) > 0 or events.get("oom", 0) > 0
        return kills, at_cap

    def remove(self, *, seconds=10.0):
        """Kill every process left in the group, then remove its folders. Returns None or why not."""
        problems = [problem for folder in self.paths() if (problem := remove_group(Path(folder), seconds=seconds))]
        return "; ".join(problems) or None


def _counters(path):
    """A flat-keyed cgroup file (``name value`` lines) as ``{name: int}``; empty where unreadable."""
    counters = {}
    try:
        for line in Path(path).read_text().splitlines():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                counters[key] = int(value)
    except OSError:
        pass
    return counters


def processes_in(folder):
    """Pids in a group (as this process's PID namespace numbers them); empty when it is gone."""
    try:
        return [int(pid) for pid in (Path(folder) / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _kill_member(pid, folder):
    """SIGKILL ``pid`` only if it is (still) in ``folder``'s group: a pidfd holds the process while we look."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # gone already
        return
    try:
        if any(str(folder).endswith(path) for path in _group_paths_of(pid)):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(pidfd)


def _group_paths_of(pid):
    """The groups of ``pid`` in every hierarchy, the root groups left out."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return []
    return [path for path in parse_process_groups(text).values() if path not in ("", "/")]


def remove_group(folder, *, seconds=10.0):
    """Kill the processes of group ``folder`` and its sub-groups, then remove them. Returns None or why not."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for child in [entry for entry in folder.iterdir() if entry.is_dir()]:
        remove_group(child, seconds=seconds)
    end = time.monotonic() + seconds
    kill = folder / "cgroup.kill"  # v2 (Linux 5.14): every process at once, forks included
    while True:
        if kill.exists():
            try:
                _write(kill, "1")
            except OSError:
                pass
        for pid in processes_in(folder):
            _kill_member(pid, folder)
        try:
            folder.rmdir()
            return None
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > end:
                return f"could not remove the control group {folder}: {_reason(exc)}"
        time.sleep(0.01)  # killed processes leave the group once the kernel has reaped them


def join(paths, pid=None):
    """Move process ``pid`` (default: this one) into each of the groups ``paths``. Returns None or why not.

    Run by a forked worker before it confines itself further: its children,
    threads and the check's PID namespace are then in the group too.
    """
    pid = os.getpid() if pid is None else pid
    for path in paths:
        try:
            _write(Path(path) / "cgroup.procs", str(pid))
        except OSError as exc:
            return f"could not join the control group {path}: {_reason(exc)}"
    return None


class WorkerGroups:
    """The fork server's groups: a parent beside its own group in each hierarchy, a child per worker.

    Parameters
    ----------
    name : str, optional
        The parent group's name (default ``warblr-grading-PID`` of this process).
    mountinfo, process_groups : str, optional
        This process's ``/proc/self/mountinfo`` and ``/proc/self/cgroup`` (read when not given).

    Attributes
    ----------
    parents : dict
        ``{controller: Path}`` of the parent groups made.
    missing : dict
        ``{controller: why not}`` for controllers that cannot be used here.
    """

    def __init__(self, name=None, *, mountinfo=None, process_groups=None):
        name = name or f"{PARENT_PREFIX}{os.getpid()}"
        self.parents, self.missing = {}, {}
        self.versions = {}
        self.swap_note = None
        self._count = 0
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text() if mountinfo is None else mountinfo
            process_groups = Path("/proc/self/cgroup").read_text() if process_groups is None else process_groups
        except OSError as exc:
            self.missing = {controller: f"cannot read /proc/self: {exc}" for controller in CONTROLLERS}
            return
        found, self.missing = find_hierarchies(mountinfo, process_groups)
        for controller, hierarchy in found.items():
            remove_stale(hierarchy.folder)
            parent = hierarchy.folder / name
            try:
                if hierarchy.version == 2:  # a group hands a controller down only where its parent does
                    _enable(hierarchy.folder, controller)
                _make_parent(parent, controller, hierarchy.version)
            except OSError as exc:
                why = _reason(exc)
                if hierarchy.version == 2 and exc.errno == errno.EBUSY:
                    why = (f"cgroup v2: the grader's group {hierarchy.folder} holds processes, so it cannot hand "
                           "its controllers down (run the grader in a delegated group of its own, e.g. "
                           "systemd-run --scope -p Delegate=yes)")
                self.missing[controller] = why
                continue
            self.parents[controller] = parent
            self.versions[controller] = hierarchy.version
        self.swap_note = _swap_note(self.parents.get("memory"), self.versions.get("memory"))

    def available(self):
        """Whether any controller can be used."""
        return bool(self.parents)

    def create(self, *, processes=None, memory=None):
        """A new worker group with at most ``processes`` tasks and ``memory`` bytes resident (None: no cap).

        Returns
        -------
        (WorkerGroup, dict)
            The group (no folders where nothing could be made) and ``{controller: why not}``.
        """
        self._count += 1
        group = WorkerGroup(memory_version=self.versions.get("memory", 0))
        problems = dict(self.missing)
        settings = {"pids": [("pids.max", processes)],
                    "cpu": [("cpu.shares", CPU_SHARES) if self.versions.get("cpu") == 1
                            else ("cpu.weight", CPU_WEIGHT)],
                    "memory": ([("memory.limit_in_bytes", memory), ("memory.memsw.limit_in_bytes", memory)]
                               if self.versions.get("memory") == 1 else
                               [("memory.max", memory), ("memory.swap.max", 0 if memory else None)])}
        made = {}
        for controller, parent in self.parents.items():
            folder = parent / f"w{self._count}"
            try:
                if folder not in made.values():
                    _make_parent(parent, controller, self.versions[controller])  # gone if pruned as stale
                    folder.mkdir(mode=0o755)
                made[controller] = folder
                for name, value in settings[controller]:
                    if value is None or not (folder / name).exists():  # no swap accounting: nothing to cap
                        continue
                    _write(folder / name, str(int(value)))
                group.folders[controller] = folder
            except OSError as exc:
                problems[controller] = f"could not set up {folder}: {_reason(exc)}"
        for controller, folder in made.items():  # a folder whose caps failed must not be joined
            if controller not in group.folders and folder not in group.folders.values():
                remove_group(folder, seconds=1.0)
        return group, problems

    def close(self):
        """Remove every worker group left, killing their processes, and the parents."""
        for parent in set(self.parents.values()):
            remove_group(parent)
        self.parents = {}


def _make_parent(parent, controller, version):
    """Make the fork server's parent group (if it is not there) and, on v2, hand ``controller`` down in it."""
    parent.mkdir(mode=0o755, exist_ok=True)
    if version == 2:
        _enable(parent, controller)


def remove_stale(folder):
    """Remove the empty groups that fork servers no longer running left in ``folder`` (killed with their grader).

    Only empty groups go (``rmdir`` refuses a group with processes), and
    nothing is killed: a fork server in another PID namespace, whose pid
    this one cannot see, loses at most an empty parent, which it makes again.
    """
    for parent in Path(folder).glob(f"{PARENT_PREFIX}*"):
        pid = parent.name[len(PARENT_PREFIX):]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        for child in parent.glob("w*"):
            with contextlib.suppress(OSError):
                child.rmdir()
        with contextlib.suppress(OSError):
            parent.rmdir()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _swap_note(memory_parent, version):
    """None, or why swap is not under the memory cap (a kernel without swap accounting, on a machine with swap)."""
    if memory_parent is None:
        return None
    name = "memory.memsw.limit_in_bytes" if version == 1 else "memory.swap.max"
    if (memory_parent / name).exists():
        return None
    try:
        swap = len(Path("/proc/swaps").read_text().splitlines()) > 1
    except OSError:
        swap = False
    return f"swap is not capped (no {name} in this kernel): a check may also fill swap" if swap else None


def _enable(folder, controller):
    """Hand ``controller`` down to ``folder``'s children (cgroup v2), if it is not already."""
    control = folder / "cgroup.subtree_control"
    if controller not in control.read_text().split():
        _write(control, f"+{controller}")
