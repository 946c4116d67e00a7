"""Timed checks run alone among the graders of one machine: a fair reader-writer lock on ``flock(2)``.

``warblr grade batch --jobs N`` runs N graders at once. A speed check times
torchvggish's reference and then the student's code; when another grader's
checks run on the same cores meanwhile, the ratio measures the neighbour as
much as the submission (a neighbour that burns CPU could push an honest
submission past the limit). With one lock file shared by the graders, every
check holds it shared and a timed check (marker ``timed``) holds it
exclusive: it starts once the checks running elsewhere end, and no other
check starts until it ends. A grader also holds it shared from its
plugin's configuration to its first check (collection, the checks'
imports, its fork server's start-up); the interpreter's own start before
that, and its exit after the last check, run outside the lock.

``flock`` gives no writer preference: readers arriving back to back could
starve a writer. A second file, the turnstile, queues them: every taker
passes through it, and a writer keeps it while it waits, so readers that
come later queue behind the writer. Locks end with the process that holds
them (a grader killed mid-check frees them); the descriptors are close-on-exec,
so no worker or fork server inherits them.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class TimingLock:
    """The machine's timing lock at ``path`` (and ``path.turnstile``), created mode 0600 if missing.

    Parameters
    ----------
    path : path
        The lock file; its folder must exist and be private to the graders
        (the batch uses its own staging folder).

    Raises
    ------
    OSError
        The file cannot be opened (its folder is missing, it is a link, ...).

    Examples
    --------
    >>> import tempfile
    >>> lock = TimingLock(Path(tempfile.mkdtemp()) / "timing.lock")
    >>> with lock.held(exclusive=True):
    ...     pass
    >>> lock.close()
    """

    def __init__(self, path):
        self.path = Path(path)
        self._main = os.open(self.path, _FLAGS, 0o600)
        try:
            self._turnstile = os.open(self.path.with_name(self.path.name + ".turnstile"), _FLAGS, 0o600)
        except OSError:
            os.close(self._main)
            raise
        self.mode = None  # None, "shared" or "exclusive": what this process holds now

    def acquire(self, *, exclusive=False):
        """Take the lock (shared, or exclusive for a timed check); waits for it."""
        self.release()  # never wait while holding: a writer queued in the turnstile would wait for us
        fcntl.flock(self._turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._main, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        self.mode = "exclusive" if exclusive else "shared"

    def release(self):
        """Let go of the lock (nothing happens if it is not held)."""
        if self.mode is not None:
            fcntl.flock(self._main, fcntl.LOCK_UN)
            self.mode = None

    @contextmanager
    def held(self, *, exclusive=False):
        """``with lock.held(exclusive=...):`` the lock for the block's duration."""
        self.acquire(exclusive=exclusive)
        try:
            yield self
        finally:
            self.release()

    def close(self):
        """Release and close both files."""
        self.release()
        for fd in (self._main, self._turnstile):
            try:
                os.close(fd)
            except OSError:
                pass
