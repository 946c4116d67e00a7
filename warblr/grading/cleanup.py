"""The grader's side of confinement: the sandbox user, and ending everything a worker left behind.

After each check the grader kills every process of the check (by user and
session, or every descendant when it is the workers' subreaper, see
:func:`warblr.grading.sandbox.set_child_subreaper`), and where the kernel
refused private tmpfs mounts or a new IPC namespace it deletes the sandbox
user's files in the shared temporary folders and its System V IPC objects.
Linux only; standard library only.
"""

from __future__ import annotations

import os
import signal
import time

from .sandbox import libc

IPC_RMID = 0

__all__ = ["resolve_user", "process_table", "session_of", "sweep_processes", "remove_files_of", "empty_folder",
           "remove_tree", "prune", "remove_ipc_of", "reap"]


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


def session_of(pid):
    """The session id of process ``pid`` (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[3])
    except (OSError, ValueError, IndexError):
        return None


def sweep_processes(*, uid=None, parent=None, keep=(), seconds=10.0, session=None):
    """SIGKILL every process owned by ``uid`` and every descendant of ``parent``, except ``keep``; reap ours.

    With ``session``, only the processes of ``uid`` in that session (and
    their descendants) die: other graders' workers running as the same user
    are spared where no subreaper can collect a check's orphans.

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
        if session is not None:
            victims = {pid for pid in victims if session_of(pid) == session}
            for pid in list(victims):
                victims.update(_descendants(table, pid, keep))
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


def remove_files_of(uid, folders, since=0.0):
    """Delete everything the user ``uid`` created in ``folders`` since ``since``, at any depth.

    The fallback where the kernel refused private tmpfs mounts: the walk
    never follows links, deletes the user's files and links, then its
    (emptied) folders bottom-up. Returns how many entries were deleted.
    """
    def theirs(info):
        return info.st_uid == uid and max(info.st_mtime, info.st_ctime) >= since - 1.0

    return sum(prune(folder, theirs) for folder in folders)


def empty_folder(folder):
    """Delete everything inside ``folder`` (kept itself), at any depth, following no link; errors skipped.

    Returns how many entries were deleted.
    """
    return prune(folder, lambda info: True)


def remove_tree(folder):
    """Delete ``folder`` and everything in it, at any depth, following no link; errors skipped."""
    empty_folder(folder)
    try:
        os.rmdir(folder)
    except OSError:
        pass


_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def prune(folder, chosen):
    """Delete the entries under ``folder`` whose ``os.lstat`` result ``chosen`` accepts; how many were deleted.

    A folder is deleted after its contents, when ``chosen`` accepts it and it
    has become empty. Built for trees a hostile worker made: no recursion
    (``os.walk`` and ``shutil.rmtree`` recurse once per level, and a chain of
    1,500 nested folders raised ``RecursionError`` in the grader), no path
    longer than one name (every step is relative to an open folder, so
    ``PATH_MAX`` never applies), one open folder at a time, every folder
    listed once, links never followed. Errors on single entries are skipped.
    """
    try:
        handle = os.open(folder, _FOLDER_FLAGS)
    except OSError:
        return 0
    removed = _remove_files(handle, chosen)
    stack = [(None, None, _list(handle))]  # (name, lstat, subfolders still to visit) from the top down
    try:
        while True:
            name, info, pending = stack[-1]
            if pending:
                child_name = pending.pop()
                try:
                    child = os.open(child_name, _FOLDER_FLAGS, dir_fd=handle)
                except OSError:
                    continue
                child_info = os.fstat(child)
                os.close(handle)
                handle = child
                removed += _remove_files(handle, chosen)
                stack.append((child_name, child_info, _list(handle)))
                continue
            if len(stack) == 1:
                return removed
            parent = os.open("..", _FOLDER_FLAGS, dir_fd=handle)
            os.close(handle)
            handle = parent
            stack.pop()
            if chosen(info):
                try:
                    os.rmdir(name, dir_fd=handle)
                    removed += 1
                except OSError:
                    pass
    except OSError:
        return removed
    finally:
        os.close(handle)


def _list(handle):
    """The subfolder names of the open folder ``handle`` (its other entries are handled by :func:`_remove_files`)."""
    try:
        with os.scandir(handle) as entries:
            return [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _remove_files(handle, chosen):
    """Delete the non-folder entries of the open folder ``handle`` that ``chosen`` accepts; how many."""
    removed = 0
    try:
        with os.scandir(handle) as entries:
            names = [entry.name for entry in entries if not entry.is_dir(follow_symlinks=False)]
    except OSError:
        return 0
    for name in names:
        try:
            if chosen(os.lstat(name, dir_fd=handle)):
                os.unlink(name, dir_fd=handle)
                removed += 1
        except OSError:
            pass
    return removed


#: System V IPC object tables: (file in /proc/sysvipc, id column, uid column, libc call to remove).
_SYSV_TABLES = (("shm", "shmid", "uid", "shmctl"), ("sem", "semid", "uid", "semctl"), ("msg", "msqid", "uid", "msgctl"))


def remove_ipc_of(uid):
    """Remove the System V shared memory segments, semaphores and message queues owned by ``uid``.

    The fallback where the kernel refused a new IPC namespace. Returns how many were removed.
    """
    removed = 0
    for table, id_column, uid_column, call in _SYSV_TABLES:
        try:
            with open(f"/proc/sysvipc/{table}", encoding="ascii") as handle:
                header, *rows = [line.split() for line in handle if line.strip()]
        except (OSError, ValueError):
            continue
        for row in rows:
            record = dict(zip(header, row))
            try:
                if int(record[uid_column]) != uid:
                    continue
                number = int(record[id_column])
            except (KeyError, ValueError):
                continue
            function = getattr(libc(), call)
            result = function(number, 0, IPC_RMID, None) if call == "semctl" else function(number, IPC_RMID, None)
            removed += result == 0
    return removed


def reap(pids):
    """Collect the exit status of those of ``pids`` that are exited children of this process."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
