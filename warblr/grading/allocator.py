"""One memory-allocator setting for the grader and every worker, so a timed check compares code, not page faults.

The speed checks time torchvggish in the grader and the student's code in an
isolated worker. glibc's malloc hands large freed blocks back to the kernel
(``munmap``, heap trimming) and its threshold for that moves with each
process's history, so one process reused warm pages while the other faulted
fresh ones in on every call: after the lab's log-mel checks had run, the
grader's reference log-mel took 3.1 ms on 10 s of audio against 4.7-5.0 ms in
a fresh process, and the same code in the worker measured 1.5x torchvggish.
With both processes keeping freed memory mapped (thresholds fixed below), the
reference took 3.1-3.3 ms and the same code in the worker 1.0x, whatever ran
before.

The worker gets the setting through its environment (glibc reads
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` at start-up); the
grader, already running, through ``mallopt``. The cost is memory held after
it is freed: at most :data:`TRIM_THRESHOLD` bytes at the heap's top and
blocks under :data:`MMAP_THRESHOLD` reused from the heap.
"""

from __future__ import annotations

import ctypes

from .sandbox import libc

#: Blocks under this many bytes come from the heap (reused after ``free``), not a fresh ``mmap`` each time.
MMAP_THRESHOLD = 64 << 20
#: Free memory at the heap's top kept mapped up to this many bytes.
TRIM_THRESHOLD = 256 << 20

#: ``mallopt`` parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def worker_environment():
    """Environment variables that give a new process this allocator setting (glibc reads them at start-up)."""
    return {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD), "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD)}


def steady_allocator():
    """Give this process the same setting as the workers; ``False`` where the C library is not glibc.

    Returns
    -------
    bool
        Whether both thresholds were set.
    """
    try:
        mallopt = libc().mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
