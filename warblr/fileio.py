"""Safe files: atomic writes, file digests and the one-run-per-folder lock.

Everything warblr writes that someone might read half-way (items, reports,
the corpus, bench and grading JSON) goes through :func:`atomic_write`: a
temporary file in the same folder, fsync, rename. A reader sees the old
file or the new one, never a torn one, and a killed writer leaves only a
temporary file that :func:`remove_temporaries` clears.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from .errors import OutputError

__all__ = ["TMP_PREFIX", "atomic_write", "atomic_write_json", "file_digest", "remove_temporaries", "exclusive"]

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


def atomic_write(path, write, *, mode="wb"):
    """Write ``path`` all or nothing: ``write(handle)`` into a temporary file in the same folder, fsync, rename.

    Parameters
    ----------
    path : str or os.PathLike
    write : callable
        Called with the open temporary file.
    mode : {"wb", "w"}, keyword-only
        Binary, or UTF-8 text.

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


@contextlib.contextmanager
def exclusive(folder, *, what="warblr run"):
    """Hold ``FOLDER/.lock`` so two runs never write the same folder.

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
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    lock = Path(folder) / ".lock"
    try:
        handle = open(lock, "a")
    except OSError as exc:
        raise OutputError(f"{lock}: cannot write ({exc.strerror or exc})", path=lock) from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise OutputError(f"{folder}: another {what} is writing this folder; wait for it or choose another "
                              "output folder", path=folder) from exc
        yield
