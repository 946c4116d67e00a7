"""The worker's seccomp filter: kernel calls no check needs, refused to the student's code.

Installed last in :func:`warblr.grading.sandbox.confine` (after the uid
drop and ``no_new_privs``), for the check's process and all it starts:

- the kernel keyring calls (``add_key``, ``request_key``, ``keyctl``): no
  namespace isolates keyrings, and a key a worker added to its user's
  keyring was read by the next check and the next grading;
- new namespaces (``unshare``, ``setns``, ``clone`` with a ``CLONE_NEW*``
  flag): in a user namespace of its own the worker (nobody) could mount a
  FUSE file system it served itself and leave a process waiting on it that
  no signal ends (a red-team check left 240 such tasks and 2 GiB of shared
  memory behind, for good); ``clone3`` answers ``ENOSYS``, since its flags
  are behind a pointer the filter cannot read, and the C library then falls
  back on ``clone``;
- mounts (``mount``, ``umount2``, ``pivot_root`` and the new mount API):
  the worker's mounts are the grader's to make.

Refused calls fail with ``EPERM``; calls of another ABI than the native one
(x32, i386 on x86_64: only hand-made code makes them) fail too.
"""

from __future__ import annotations

import ctypes
import errno
import os

#: The ``CLONE_NEW*`` flags ``clone`` takes in its first argument (``CLONE_NEWTIME`` only exists for ``clone3``).
CLONE_NEW_FLAGS = 0x7E020000

#: Per architecture (``uname -m``): the audit arch seccomp sees, and the numbers of the calls by name.
SYSCALLS = {
    "x86_64": (0xC000003E, {"add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272, "setns": 308,
                            "mount": 165, "umount2": 166, "pivot_root": 155, "open_tree": 428, "move_mount": 429,
                            "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
                            "clone": 56, "clone3": 435}),
    "aarch64": (0xC00000B7, {"add_key": 217, "request_key": 218, "keyctl": 219, "unshare": 97, "setns": 268,
                             "mount": 40, "umount2": 39, "pivot_root": 41, "open_tree": 428, "move_mount": 429,
                             "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
                             "clone": 220, "clone3": 435}),
}

#: Refused outright (``EPERM``).
REFUSED = ("add_key", "request_key", "keyctl", "unshare", "setns", "mount", "umount2", "pivot_root", "open_tree",
           "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr")

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
_LOAD_WORD, _JUMP_EQUAL, _JUMP_AT_LEAST, _JUMP_SET, _RETURN = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW = 0x7FFF0000
_FAIL = 0x00050000  # | errno


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def program(machine):
    """The filter for ``machine`` as ``(code, jump if true, jump if false, constant)`` instructions.

    Jumps are counted from the next instruction, as the kernel reads them.

    Parameters
    ----------
    machine : str
        ``os.uname().machine``.

    Returns
    -------
    list of tuple

    Raises
    ------
    KeyError
        No table of call numbers for ``machine``.

    Examples
    --------
    >>> program("x86_64")[:2]  # the ABI check: another one is refused
    [(32, 0, 0, 4), (21, 0, 23, 3221225534)]
    """
    arch, numbers = SYSCALLS[machine]
    source = [("load", 4), ("equal", arch, None, "refuse"),  # the call's audit arch
              ("load", 0), ("at least", 0x40000000, "refuse", None),  # the call's number; x32's on x86_64
              ("equal", numbers["clone3"], "no such call", None),
              ("equal", numbers["clone"], "clone", None)]
    source += [("equal", numbers[name], "refuse", None) for name in REFUSED]
    source += [("return", _ALLOW),
               "clone", ("load", 16), ("set", CLONE_NEW_FLAGS, "refuse", None), ("return", _ALLOW),  # its flags
               "refuse", ("return", _FAIL | errno.EPERM),
               "no such call", ("return", _FAIL | errno.ENOSYS)]
    return _assemble(source)


def _assemble(source):
    """Instructions from ``source``: labels (str) and ``(op, constant[, label if true, label if false])``."""
    labels, at = {}, 0
    for item in source:
        if isinstance(item, str):
            labels[item] = at
        else:
            at += 1
    codes = {"load": _LOAD_WORD, "equal": _JUMP_EQUAL, "at least": _JUMP_AT_LEAST, "set": _JUMP_SET,
             "return": _RETURN}
    code = []
    for item in source:
        if isinstance(item, str):
            continue
        here = len(code)
        jumps = [labels[label] - here - 1 if label else 0 for label in item[2:4]] or [0, 0]
        code.append((codes[item[0]], jumps[0], jumps[1], item[1]))
    return code


def install():
    """Install the filter on this process (and what it starts). Needs ``no_new_privs`` (or root).

    Returns
    -------
    None or str
        None when the filter is on, else why not.
    """
    machine = os.uname().machine
    if machine not in SYSCALLS:
        return f"no seccomp filter for {machine}"
    code = program(machine)
    filters = (_SockFilter * len(code))(*[_SockFilter(*instruction) for instruction in code])
    fprog = _SockFprog(len(code), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog),
                  ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        return os.strerror(ctypes.get_errno())
    return None
