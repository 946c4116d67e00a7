"""Worker confinement (Linux; standard library only): what a worker may see, keep and reach.

The worker, just after it is forked and before it imports student code,
calls :func:`confine`: its control group (made by the fork server,
:mod:`warblr.grading.control_groups`); a new session; a private mount
namespace and a new IPC namespace in which every world-writable folder (:func:`world_writable_folders`)
is a fresh private tmpfs and the grader's secrets and the forbidden modules'
folders are covered by empty read-only mounts; a new PID namespace with its
own ``/proc`` (:func:`new_pid_namespace`: the check's code sees, signals and
traces only its own processes, all of which end with the check, while the
worker's pid, still the grader's handle, ends as the check's process ended);
rlimits; as root, the sandbox user and ``no_new_privs``; a seccomp filter
(:mod:`warblr.grading.syscall_filter`); the forbidden modules unimportable.
Every refused step is reported, never silently skipped. What the grader
does after a worker (ending its processes, removing its files and IPC
objects where namespaces were refused) is in :mod:`warblr.grading.cleanup`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import resource
import select
import signal
import socket
import stat
from dataclasses import dataclass, field

from . import control_groups, syscall_filter

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 1 << 18
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG, PR_GET_PDEATHSIG = 1, 2

_LIBC = None


def libc():
    """The C library through ctypes with ``use_errno``, loaded once (unshare, mount, prctl, IPC removal)."""
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return _LIBC


def _check(result, what):
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def unshare(flags):
    """``unshare(2)`` (``os.unshare`` exists only from Python 3.12)."""
    _check(libc().unshare(ctypes.c_int(flags)), "unshare")


def mount(source, target, fstype, flags, data=None):
    """``mount(2)``."""
    encode = lambda text: None if text is None else os.fsencode(text)  # noqa: E731
    _check(libc().mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)),
           f"mount {target}")


def prctl(option, value):
    """``prctl(2)`` with one argument."""
    _check(libc().prctl(ctypes.c_int(option), ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0),
                        ctypes.c_ulong(0)), "prctl")


def parent_death_signal():
    """The signal this process gets when its parent ends (``PR_SET_PDEATHSIG``; 0: none)."""
    value = ctypes.c_int(0)
    _check(libc().prctl(ctypes.c_int(PR_GET_PDEATHSIG), ctypes.byref(value), ctypes.c_ulong(0), ctypes.c_ulong(0),
                        ctypes.c_ulong(0)), "prctl")
    return value.value


def set_child_subreaper():
    """Make this process adopt its orphaned descendants (so a check's escaped processes can be found)."""
    try:
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        return True
    except OSError:
        return False


def new_network_namespace():
    """Move this process into a new, empty network namespace (no interface is up: no network).

    Returns
    -------
    str or None
        None on success, else why not (e.g. ``"unshare: Operation not permitted"``).
    """
    try:
        unshare(CLONE_NEWNET)
        return None
    except OSError as exc:
        return str(exc)


@dataclass
class Limits:
    """Resource limits of one worker (0 or None: leave as is).

    ``address_space``: bytes of each process's address space;
    ``memory``: bytes resident for all the check's processes together, in
    its control group (None: ``address_space``); ``processes``: tasks of the
    check together where it has a control group, else of the sandbox user;
    ``temp_size``: bytes of each private tmpfs.
    """

    address_space: int | None = 6 << 30
    memory: int | None = None
    cpu_seconds: int | None = 120
    processes: int | None = 256
    open_files: int | None = 256
    file_size: int | None = 256 << 20
    temp_size: int | None = 128 << 20

    @property
    def group_memory(self):
        """Bytes resident for the check's processes together (its control group's cap), or None."""
        return self.memory or self.address_space or None

    def to_json(self):
        return dict(vars(self))


@dataclass
class Confinement:
    """What one worker asks for (sent by the grader to the fork server as JSON).

    ``private_temp``: world-writable folders to replace by a private tmpfs;
    ``keep``: folders inside those that must stay visible (the sandbox's own:
    the submission copy and scratch), bound back in; ``hide``: folders to
    cover with an empty read-only tmpfs; ``forbidden``: modules the student's
    code may not import; ``pid_namespace``: run the check in a new PID
    namespace (needs the private mount namespace for its ``/proc``).
    """

    uid: int | None = None
    gid: int | None = None
    hide: list = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    scratch: str = ""
    private_temp: list = field(default_factory=list)
    keep: list = field(default_factory=list)
    forbidden: list = field(default_factory=list)
    pid_namespace: bool = True
    control_group: dict = field(default_factory=dict)
    control_group_missing: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, data):
        return cls(uid=data.get("uid"), gid=data.get("gid"), hide=list(data.get("hide", [])),
                   limits=Limits(**data.get("limits", {})), scratch=str(data.get("scratch", "")),
                   private_temp=list(data.get("private_temp", [])), keep=list(data.get("keep", [])),
                   forbidden=list(data.get("forbidden", [])), pid_namespace=bool(data.get("pid_namespace", True)),
                   control_group=dict(data.get("control_group", {})),
                   control_group_missing=dict(data.get("control_group_missing", {})))

    def to_json(self):
        return {"uid": self.uid, "gid": self.gid, "hide": list(self.hide), "limits": self.limits.to_json(),
                "scratch": self.scratch, "private_temp": list(self.private_temp), "keep": list(self.keep),
                "forbidden": list(self.forbidden), "pid_namespace": self.pid_namespace,
                "control_group": dict(self.control_group), "control_group_missing": dict(self.control_group_missing)}


def _set_limit(kind, value):
    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value if hard == resource.RLIM_INFINITY or value <= hard else hard))


#: Folders never searched for world-writable ones (virtual file systems, the system's own programs).
_NOT_SEARCHED = frozenset({"/proc", "/sys", "/usr", "/boot", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                           "/snap"})

#: World-writable folders that exist on most Linux systems (searched first, on their own file systems).
KNOWN_WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/run/shm", "/var/lock")


def world_writable_folders(*, depth=4, skip=()):
    """Folders every user may write to: the usual ones and any found in the top ``depth`` levels of ``/``.

    A folder inside one already found is not listed (covering the outer one
    covers it). Links are resolved to their folder (``/var/lock`` is
    ``/run/lock``). ``skip``: folders not to search (e.g. the interpreter's
    prefix).

    Returns
    -------
    list of str
    """
    skip = {os.path.realpath(p) for p in skip} | _NOT_SEARCHED
    found = []

    def add(path):
        real = os.path.realpath(path)
        try:
            info = os.stat(real)
        except OSError:
            return
        if stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_IWOTH and real not in found:
            found.append(real)

    for path in KNOWN_WORLD_WRITABLE:
        add(path)

    def walk(folder, levels):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            try:
                if not entry.is_dir(follow_symlinks=False) or entry.path in skip:
                    continue
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if mode & stat.S_IWOTH:
                add(entry.path)
            elif levels > 1:  # /dev one level only: its folders of its own (/dev/mqueue, /dev/shm), no deeper
                walk(entry.path, 1 if entry.path == "/dev" else levels - 1)

    walk("/", depth)
    return sorted(p for p in found if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in found))


def _mount_private_temp(folders, keep, size):
    """Cover each of ``folders`` with a fresh tmpfs; bind ``keep`` folders lying inside them back in.

    Returns ``(covered, refused)``: the folders made private, and ``{folder: why not}``.
    """
    covered, refused = [], {}
    kept = {}
    for path in keep:  # open before covering: afterwards their path leads into the new, empty tmpfs
        try:
            kept[path] = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            refused[path] = f"cannot keep {path}: {exc.strerror}"
    options = f"mode=1777,size={int(size)}" if size else "mode=1777"
    for folder in folders:
        inside = [path for path in kept if path.startswith(folder.rstrip("/") + "/")]
        try:
            mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, options)
            for path in inside:
                os.makedirs(path, mode=0o711, exist_ok=True)
                mount(f"/proc/self/fd/{kept[path]}", path, None, MS_BIND | MS_REC)
            covered.append(folder)
        except OSError as exc:
            refused[folder] = str(exc)
    for fd in kept.values():
        os.close(fd)
    return covered, refused


#: Devices no check needs that open kernel machinery to the sandbox user (``/dev/fuse``: serve a file system,
#: which with a user namespace of its own a worker once used to leave processes no signal ends).
HIDDEN_DEVICES = ("/dev/fuse",)


def _hide(folders):
    """Cover each existing folder in ``folders`` with an empty read-only tmpfs, and each of
    :data:`HIDDEN_DEVICES` with ``/dev/null``; ``{path: why not}``."""
    refused = {}
    for folder in folders:
        if os.path.isdir(folder):
            try:
                mount("tmpfs", folder, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=000")
            except OSError as exc:
                refused[folder] = str(exc)
    for device in HIDDEN_DEVICES:
        if os.path.exists(device):
            try:
                mount("/dev/null", device, None, MS_BIND)
            except OSError as exc:
                refused[device] = str(exc)
    return refused


def new_namespaces():
    """Move this process into a private mount namespace and a new IPC namespace.

    Returns
    -------
    dict
        ``{"mount": None or why not, "ipc": None or why not}``.
    """
    report = {}
    for name, flag in (("mount", CLONE_NEWNS), ("ipc", CLONE_NEWIPC)):
        try:
            unshare(flag)
            report[name] = None
        except OSError as exc:
            report[name] = str(exc)
    if report["mount"] is None:
        try:
            mount(None, "/", None, MS_REC | MS_PRIVATE)
        except OSError as exc:
            report["mount"] = str(exc)
    return report


def new_pid_namespace():
    """Go on in a new PID namespace, with a ``/proc`` of its own; the calling process stays outside as its keeper.

    ``unshare(CLONE_NEWPID)`` only moves the caller's future children, so
    this forks twice. The caller (the *keeper*: the pid the grader knows,
    still privileged) never returns: it waits for the namespace and then
    ends exactly as the check's process ended (its exit status or signal),
    holding every descriptor it had until then, so the grader sees the
    worker's socket close only once every process of the check is gone. Its
    child is the namespace's init (pid 1, privileged, never runs student
    code): it mounts the new ``/proc``, dies with the keeper
    (``PR_SET_PDEATHSIG``) and, when the check's process ends, tells the
    keeper how and exits, and the kernel kills every process left in the
    namespace. The init's child (pid 2) returns: it goes on with the
    confinement and runs the check. Must run in a private mount namespace,
    before the uid is dropped.

    Returns
    -------
    str or None
        In the check's process: None, or why ``/proc`` shows more than the
        namespace. In the caller, where the kernel refused the namespace:
        why (nothing changed then, and no process was forked).

    Raises
    ------
    OSError
        A fork failed after the namespace was made (the check cannot run).
    """
    try:
        unshare(CLONE_NEWPID)
    except OSError as exc:
        return str(exc)
    keeper_end, init_end = socket.socketpair()
    init = os.fork()
    if init:
        try:  # the keeper never returns into the confinement (it would run the check outside the namespace)
            init_end.close()
            _keep(init, keeper_end)
        finally:
            os._exit(1)
    try:  # nor does the init: only its child, pid 2, runs the check
        keeper_end.close()
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if select.select([init_end], [], [], 0)[0]:  # the keeper died before the line above: nobody would wait
            os._exit(1)
        try:
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            problem = None
        except OSError as exc:
            problem = f"{exc} (other processes stay visible in /proc)"
        check = os.fork()
        if check:
            _init(check, init_end)
    except BaseException:
        os._exit(1)
    init_end.close()
    return problem


def _keep(init, channel):
    """The keeper: wait for the namespace's init, then end as the check's process ended."""
    try:
        message = channel.recv(32)
    except OSError:
        message = b""
    _, status = os.waitpid(init, 0)  # the init is gone once every process of the namespace is
    try:
        status = int(message)
    except ValueError:  # the init died without a word (killed): end as it ended
        pass
    end_as(status)


def _init(check, channel):
    """The namespace's pid 1: reap every orphan; when ``check`` ends, send its wait status and exit."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:  # pragma: no cover -- the check's process is our child until reaped
            status = 0
            break
        if pid == check:
            break
    try:
        channel.sendall(str(status).encode())
    except OSError:
        pass
    os._exit(0)


def end_as(status):
    """End this process as a process with wait status ``status`` ended: same exit code, or same signal.

    No core file is written; never returns.
    """
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL, SIGSTOP: cannot be caught anyway
            pass
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [number])
        os.kill(os.getpid(), number)
        os._exit(128 + number)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


class ForbiddenModuleError(ImportError):
    """Student code imported a module the assignment forbids."""


class ForbiddenImports:
    """A meta-path finder that refuses the forbidden modules (and their submodules).

    Installed first on ``sys.meta_path`` in the worker, after the forbidden
    modules were dropped from ``sys.modules``; a determined student can
    remove it, which is why their package folders are also hidden.

    Parameters
    ----------
    modules : sequence of str
        Top-level names, e.g. ``("warblr", "librosa")``.
    """

    def __init__(self, modules):
        self.modules = frozenset(modules)

    def find_spec(self, name, path=None, target=None):
        root = name.partition(".")[0]
        if root in self.modules:
            raise ForbiddenModuleError(f"importing {root} is forbidden in this assignment (your code must not use "
                                       f"{root}: write it yourself)", name=name)
        return None

    def install(self):
        """Drop the forbidden modules' top packages from ``sys.modules`` and refuse new imports of them.

        Submodules already loaded (warblr's grading infrastructure in the
        worker) cannot be imported (their parent is gone, and their folder is
        hidden) but stay reachable as objects (``sys.modules``, ``__main__``,
        the garbage collector): nothing loaded in the worker may know an
        answer (the probes' code is sent with each probe request instead).
        """
        import sys

        for name in list(sys.modules):
            if name in self.modules:
                del sys.modules[name]
        sys.meta_path.insert(0, self)
        return self


def join_control_group(request):
    """Join the worker's control group (:mod:`warblr.grading.control_groups`) as ``request`` names it.

    Returns
    -------
    dict
        ``{controller: None (its cap holds) or why not}`` for each of
        :data:`warblr.grading.control_groups.CONTROLLERS`.
    """
    why = {controller: request.control_group_missing.get(controller, "no control group given")
           for controller in control_groups.CONTROLLERS}
    folders = sorted(set(request.control_group.values()))
    if folders:
        problem = control_groups.join(folders)
        for controller in request.control_group:
            why[controller] = problem
    return why


def confine(request):
    """Confine the calling (freshly forked) worker as ``request`` (a :class:`Confinement`) says.

    Order matters: mounts need the privileges that dropping the uid gives up.
    With a new PID namespace the caller never returns: it stays outside as
    the keeper, and this returns in the check's process
    (:func:`new_pid_namespace`); everything after it (rlimits, the uid)
    applies to that process only.

    Returns
    -------
    dict
        ``{"control_group": {"pids": why not, "memory": why not, "cpu": why not}, "namespaces": {"mount": why
        not, "ipc": why not, "pid": why not}, "private_temp": [covered, the scratch folder among them],
        "refused": {folder: why not}, "syscalls": why not (the seccomp filter,
        :mod:`warblr.grading.syscall_filter`), "scratch": folder}`` (None: done).
    """
    report = {"control_group": join_control_group(request)}  # first: all that follows is in the group
    os.setsid()  # its own process group: the grader kills the group (the keeper and the namespace's init)
    report.update({"namespaces": {"mount": "not asked", "ipc": "not asked"}, "private_temp": [], "refused": {}})
    if request.hide or request.private_temp or request.pid_namespace:
        report["namespaces"] = new_namespaces()
        if report["namespaces"]["mount"] is None:
            covered, refused = _mount_private_temp(request.private_temp, request.keep, request.limits.temp_size)
            report["private_temp"], report["refused"] = covered, refused
            report["refused"].update(_hide(request.hide))
            if request.scratch:  # the working folder too: on the real disk it had no size cap, and what a
                # dead worker left there reached the next check's
                try:
                    mount("tmpfs", request.scratch, "tmpfs", MS_NOSUID | MS_NODEV,
                          f"mode=1777,size={int(request.limits.temp_size)}" if request.limits.temp_size
                          else "mode=1777")
                    report["private_temp"].append(request.scratch)
                except OSError as exc:
                    report["refused"][request.scratch] = str(exc)
    if not request.pid_namespace:
        report["namespaces"]["pid"] = "not asked"
    elif report["namespaces"]["mount"] is not None:  # a new /proc needs a mount namespace of its own
        report["namespaces"]["pid"] = f"no private mount namespace for its /proc ({report['namespaces']['mount']})"
    else:
        report["namespaces"]["pid"] = new_pid_namespace()
    limits = request.limits
    for kind, value in ((resource.RLIMIT_AS, limits.address_space), (resource.RLIMIT_CPU, limits.cpu_seconds),
                        (resource.RLIMIT_NOFILE, limits.open_files), (resource.RLIMIT_FSIZE, limits.file_size),
                        (resource.RLIMIT_CORE, 0)):
        if value is not None and (value > 0 or kind == resource.RLIMIT_CORE):
            _set_limit(kind, int(value))
    if request.uid is not None and os.geteuid() == 0:
        if limits.processes and report["control_group"]["pids"] is not None:
            # counted per user, every worker of the machine's gradings together: only where no group caps the
            # check's own (one check holding the cap stopped another grading's check from starting threads)
            _set_limit(resource.RLIMIT_NPROC, int(limits.processes))
        death_signal = parent_death_signal()
        os.setgroups([])
        os.setgid(request.gid)
        os.setuid(request.uid)
        if os.getuid() != request.uid or os.geteuid() != request.uid:  # pragma: no cover -- kernel refused
            raise OSError(errno.EPERM, "could not drop to the sandbox user")
        if death_signal:  # the kernel clears it when the credentials change (no PID namespace: this is the worker)
            prctl(PR_SET_PDEATHSIG, death_signal)
    try:
        prctl(PR_SET_NO_NEW_PRIVS, 1)
    except OSError:  # pragma: no cover -- very old kernels
        pass
    report["syscalls"] = syscall_filter.install()
    scratch = request.scratch
    if scratch:
        import tempfile

        scratch = tempfile.mkdtemp(prefix="w", dir=scratch)
        os.chdir(scratch)
    report["scratch"] = scratch
    if request.forbidden:
        ForbiddenImports(request.forbidden).install()
    return report
