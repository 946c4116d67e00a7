"""Confinement primitives of the grading worker (Linux; standard library only).

Used on both sides of an isolated grading run:

* the worker, just after it is forked and before it imports student code,
  calls :func:`confine`: a new session, a private mount namespace in which
  the grader's secrets (answers, checks, results folder) are covered by empty
  read-only tmpfs mounts where the kernel allows it, rlimits (address space,
  CPU seconds, processes, open files, file size, no core dumps), then -- when
  started as root -- no supplementary groups, the sandbox user's gid and uid
  and ``no_new_privs`` (set-uid programs cannot give privileges back);
* the grader uses :func:`resolve_user`, :func:`sweep_processes` and
  :func:`set_child_subreaper` to pick the unprivileged user and to kill every
  process a check left behind.

Each step that the kernel refuses is reported, never silently skipped: the
grader prints what was and was not confined.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import resource
import signal
import time
from dataclasses import dataclass, field

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REC, MS_PRIVATE = 0x4000, 1 << 18
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

_libc = None


def _lib():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return _libc


def _check(result, what):
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def unshare(flags):
    """``unshare(2)`` (``os.unshare`` exists only from Python 3.12)."""
    _check(_lib().unshare(ctypes.c_int(flags)), "unshare")


def mount(source, target, fstype, flags, data=None):
    """``mount(2)``."""
    encode = lambda text: None if text is None else os.fsencode(text)  # noqa: E731
    _check(_lib().mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)),
           f"mount {target}")


def prctl(option, value):
    """``prctl(2)`` with one argument."""
    _check(_lib().prctl(ctypes.c_int(option), ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0),
                        ctypes.c_ulong(0)), "prctl")


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
    """Resource limits of one worker (0 or None: leave as is)."""

    address_space: int | None = 6 << 30
    cpu_seconds: int | None = 120
    processes: int | None = 256
    open_files: int | None = 256
    file_size: int | None = 256 << 20

    def to_json(self):
        return dict(vars(self))


@dataclass
class Confinement:
    """What one worker asks for (sent by the grader to the fork server as JSON)."""

    uid: int | None = None
    gid: int | None = None
    hide: list = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    scratch: str = ""

    @classmethod
    def from_json(cls, data):
        return cls(uid=data.get("uid"), gid=data.get("gid"), hide=list(data.get("hide", [])),
                   limits=Limits(**data.get("limits", {})), scratch=str(data.get("scratch", "")))

    def to_json(self):
        return {"uid": self.uid, "gid": self.gid, "hide": list(self.hide), "limits": self.limits.to_json(),
                "scratch": self.scratch}


def _set_limit(kind, value):
    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value if hard == resource.RLIM_INFINITY or value <= hard else hard))


def hide_paths(paths):
    """Cover each existing folder in ``paths`` with an empty read-only tmpfs, in a private mount namespace.

    Returns
    -------
    str or None
        None when every folder is hidden, else why not.
    """
    folders = [p for p in paths if os.path.isdir(p)]
    if not folders:
        return None
    try:
        unshare(CLONE_NEWNS)
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        for folder in folders:
            mount("tmpfs", folder, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=000")
    except OSError as exc:
        return str(exc)
    return None


def confine(request):
    """Confine the calling (freshly forked) worker as ``request`` (a :class:`Confinement`) says.

    Order matters: mounts need the privileges that dropping the uid gives up.

    Returns
    -------
    dict
        ``{"hidden": None or why not, "scratch": folder}``.
    """
    os.setsid()  # its own process group: the grader kills the group
    hidden = hide_paths(request.hide) if request.hide else None
    limits = request.limits
    for kind, value in ((resource.RLIMIT_AS, limits.address_space), (resource.RLIMIT_CPU, limits.cpu_seconds),
                        (resource.RLIMIT_NOFILE, limits.open_files), (resource.RLIMIT_FSIZE, limits.file_size),
                        (resource.RLIMIT_CORE, 0)):
        if value is not None and (value > 0 or kind == resource.RLIMIT_CORE):
            _set_limit(kind, int(value))
    if request.uid is not None and os.geteuid() == 0:
        if limits.processes:  # counted per user: only meaningful for a user of its own
            _set_limit(resource.RLIMIT_NPROC, int(limits.processes))
        os.setgroups([])
        os.setgid(request.gid)
        os.setuid(request.uid)
        if os.getuid() != request.uid or os.geteuid() != request.uid:  # pragma: no cover -- kernel refused
            raise OSError(errno.EPERM, "could not drop to the sandbox user")
    try:
        prctl(PR_SET_NO_NEW_PRIVS, 1)
    except OSError:  # pragma: no cover -- very old kernels
        pass
    scratch = request.scratch
    if scratch:
        import tempfile

        scratch = tempfile.mkdtemp(prefix="w", dir=scratch)
        os.chdir(scratch)
    return {"hidden": hidden, "scratch": scratch}


# ---------------------------------------------------------------- the grader's side


def resolve_user(name):
    """``(uid, gid)`` of the user ``name`` (a name or a number).

    Raises
    ------
    KeyError
        No such user.
    """
    import pwd

    entry = pwd.getpwuid(int(name)) if str(name).isdigit() else pwd.getpwnam(str(name))
    return entry.pw_uid, entry.pw_gid


def process_table():
    """``{pid: (ppid, real uid)}`` of every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="utf-8", errors="replace") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
            table[int(entry)] = (int(fields["PPid"].split()[0]), int(fields["Uid"].split()[0]))
        except (OSError, KeyError, ValueError, IndexError):
            continue
    return table


def _descendants(table, root, keep):
    """Pids below ``root`` in ``table``, not entering the subtrees of ``keep``."""
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in keep:
                found.append(child)
                stack.append(child)
    return found


def sweep_processes(*, uid=None, parent=None, keep=(), seconds=10.0):
    """SIGKILL every process owned by ``uid`` and every descendant of ``parent``, except ``keep``; reap ours.

    Repeats until none is left (for at most ``seconds``), so processes forking
    while they are killed (a fork bomb) are caught too: a whole tree below
    ``parent`` is killed in one round, not one generation per round.

    Returns
    -------
    int
        How many processes were killed.
    """
    killed = 0
    keep = set(keep) | {os.getpid()}
    deadline = time.monotonic() + seconds
    while True:
        table = process_table()
        victims = {pid for pid, (_, owner) in table.items() if uid is not None and owner == uid} - keep
        if parent is not None:
            victims.update(_descendants(table, parent, keep))
        if not victims or time.monotonic() > deadline:
            break
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        time.sleep(0.005)
        reap(victims)
    return killed


#: World-writable folders where a worker may leave files behind.
SHARED_TEMP_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")


def remove_files_of(uid, folders=SHARED_TEMP_FOLDERS, since=0.0):
    """Delete what the user ``uid`` left at the top of the world-writable ``folders`` since ``since``.

    Returns how many entries were deleted.

    Only for a sandbox user of the grader's own (nobody): the worker's files
    in shared temporary folders would otherwise outlive the check and could
    fill the disk under the grader.
    """
    import shutil

    removed = 0
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
                if info.st_uid != uid or max(info.st_mtime, info.st_ctime) < since:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
    return removed


def reap(pids):
    """Collect the exit status of those of ``pids`` that are exited children of this process."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
