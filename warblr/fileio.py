"""Safe files: atomic writes, file digests and the one-run-per-folder lock.

Everything warblr writes that someone might read half-way (items, reports,
the corpus, bench and grading JSON) goes through :func:`atomic_write`: a
temporary file in the same folder, fsync, rename. A reader sees the old
file or the new one, never a torn one, and a killed writer leaves only a
temporary file that :func:`remove_temporaries` clears. The file gets the
permissions any new file gets under the user's umask (a shared folder stays
readable by the group or by everyone, as the user chose). An output folder
belongs to one command at a time: :func:`exclusive` holds its lock for the
whole command, re-entrantly within the thread that holds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

from .errors import OutputError

__all__ = ["TMP_PREFIX", "atomic_write", "atomic_write_json", "file_digest", "remove_temporaries", "exclusive",
           "current_umask", "new_file_mode"]

#: Prefix of the temporary files of :func:`atomic_write`.
TMP_PREFIX = ".tmp-"


def file_digest(path):
    """SHA-256 hex digest of a file, read in 1 MiB blocks.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    str
        64 lowercase hex digits.

    Raises
    ------
    OSError
        The file cannot be read.

    Examples
    --------
    >>> path = Path(tempfile.mkdtemp()) / "empty"
    >>> path.write_bytes(b"")
    0
    >>> file_digest(path)[:16]
    'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(folder):
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def current_umask():
    """The process's umask, read without changing it (``/proc/self/status`` on Linux).

    ``os.umask`` can only be read by setting it, which would briefly give every
    other thread's new files the wrong permissions; it is the fallback only.

    Examples
    --------
    >>> 0 <= current_umask() <= 0o777
    True
    """
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode():
    """The mode ``open()`` gives a new file: ``0o666`` less the umask.

    Examples
    --------
    >>> new_file_mode() == 0o666 & ~current_umask()
    True
    """
    return 0o666 & ~current_umask()


def atomic_write(path, write, *, mode="wb", private=False):
    """Write ``path`` all or nothing: ``write(handle)`` into a temporary file in the same folder, fsync, rename.

    The file ends with the mode a plain ``open(path, "w")`` would give it
    (``0o666`` less the umask), not the temporary file's private ``0o600``,
    unless ``private``.

    Parameters
    ----------
    path : str or os.PathLike
    write : callable
        Called with the open temporary file.
    mode : {"wb", "w"}, keyword-only
        Binary, or UTF-8 text.
    private : bool, keyword-only
        Keep ``0o600``: readable by this user only, from the first byte (a secret).

    Raises
    ------
    OSError
        Disk full, permission denied, ...; no partial file is left under any name.

    Examples
    --------
    >>> path = Path(tempfile.mkdtemp()) / "note.txt"
    >>> atomic_write(path, lambda handle: handle.write("hello"), mode="w")
    >>> path.read_text()
    'hello'
    """
    path = Path(path)
    text = {} if "b" in mode else {"encoding": "utf-8"}
    handle = tempfile.NamedTemporaryFile(mode, dir=path.parent, prefix=TMP_PREFIX, suffix=path.suffix,
                                         delete=False, **text)
    try:
        with handle:
            write(handle)
            handle.flush()
            if not private:
                os.fchmod(handle.fileno(), new_file_mode())
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path, data, *, indent=2):
    """Write ``data`` as JSON (ASCII, trailing newline) to ``path`` with :func:`atomic_write`.

    Examples
    --------
    >>> path = Path(tempfile.mkdtemp()) / "a.json"
    >>> atomic_write_json(path, {"a": 1}, indent=None)
    >>> path.read_text()
    '{"a": 1}\\n'
    """
    text = json.dumps(data, indent=indent, ensure_ascii=True) + "\n"
    atomic_write(path, lambda handle: handle.write(text), mode="w")


def remove_temporaries(folder):
    """Delete the temporary files a killed :func:`atomic_write` left in ``folder`` (best effort)."""
    for stale in Path(folder).glob(f"{TMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            stale.unlink()


_HELD = {}  # (real folder, thread id) -> depth: the locks this process holds
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def exclusive(folder, *, what="warblr run"):
    """Hold ``FOLDER/.lock`` so two runs never write the same folder.

    A command takes the lock once for its whole run (read, compute, write
    the items, the report and the plots); the functions it calls take it
    again, which within the same thread is a no-op, so nothing can slip in
    between their steps. Another thread or process is refused.

    Parameters
    ----------
    folder : str or os.PathLike
        An existing folder.
    what : str, keyword-only
        Who holds it, for the error message.

    Raises
    ------
    OutputError
        The lock file cannot be created, or another run holds it.

    Examples
    --------
    >>> folder = tempfile.mkdtemp()
    >>> with exclusive(folder), exclusive(folder):  # re-entrant in one thread
    ...     pass
    """
    key = (os.path.realpath(folder), threading.get_ident())
    with _HELD_GUARD:
        depth = _HELD.get(key, 0)
        if depth:
            _HELD[key] = depth + 1
    if depth:
        try:
            yield
        finally:
            with _HELD_GUARD:
                _HELD[key] -= 1
        return
    busy = OutputError(f"{folder}: another {what} is writing this folder; wait for it or choose another "
                       "output folder", path=folder)
    with locked_file(Path(folder) / ".lock", busy=busy):
        with _HELD_GUARD:
            _HELD[key] = 1
        try:
            yield
        finally:
            with _HELD_GUARD:
                del _HELD[key]


@contextlib.contextmanager
def locked_file(path, *, busy=None, waiting=None):
    """Hold an exclusive ``flock`` on the file ``path`` (created if missing, never deleted).

    Parameters
    ----------
    path : str or os.PathLike
        The lock file.
    busy : Exception, keyword-only
        Raised when another process holds the lock; ``None`` waits for it instead.
    waiting : str, keyword-only
        Printed to stderr once before waiting (with ``busy=None``).

    Raises
    ------
    OutputError
        The lock file cannot be created or locked; or ``busy`` as given.

    Examples
    --------
    >>> with locked_file(Path(tempfile.mkdtemp()) / "lock"):
    ...     pass
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        handle = open(path, "a")
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the lock file ({exc.strerror or exc})", path=path) from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if busy is not None:
                raise busy from None
            if waiting:
                print(waiting, file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as exc:
            raise OutputError(f"{path}: cannot lock ({exc.strerror or exc})", path=path) from exc
        yield  # closing the file releases the lock
