"""Resumable, verified HTTP downloads for ``warblr fetch`` (standard library and tqdm only).

:func:`download` streams a URL into ``<file>.part``, resumes an interrupted
transfer with an HTTP ``Range`` request (within one run after a dropped
connection, and across runs from the kept ``.part``), hashes the bytes as they
arrive, and renames the part to its final name only when the size and the
digest match what the publisher states. A mismatch deletes the part and
raises :class:`ChecksumError` naming the file, the expected and the actual
digest.

Why not pooch's ``HTTPDownloader`` (what librosa and scipy use): pooch 1.9 has
no ``Range`` resume, its downloader cannot tell a ``206 Partial Content`` from
a server that ignored the range and sent the whole file again (appending
that would corrupt the file), and its hash mismatch is a ``ValueError`` whose
details exist only in the message. Multi-gigabyte archives need all three, so
this module is the small piece pooch lacks; pooch is not a dependency.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .. import __version__
from ..errors import ChecksumError, FetchError, OutputError
from ..validation import check_scalar

__all__ = ["PART_SUFFIX", "TIMEOUT_S", "MIN_TIMEOUT_S", "RETRIES", "RETRY_WAIT_S", "check_transfer_options",
           "download", "partial_path"]

#: Suffix of a download in progress; its bytes are kept for the next run to resume.
PART_SUFFIX = ".part"
#: Seconds without data before a connection counts as dropped.
TIMEOUT_S = 60.0
#: The least ``timeout`` accepted, by :func:`download`, ``fetch`` and ``warblr fetch --timeout`` alike.
MIN_TIMEOUT_S = 1.0
#: Reconnections (resuming with HTTP Range) after a dropped connection.
RETRIES = 3
#: Seconds before the first reconnection (then twice that, and so on).
RETRY_WAIT_S = 2.0

_CHUNK = 1 << 20
_USER_AGENT = f"warblr/{__version__} (dataset fetch; Python urllib)"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def partial_path(path):
    """Where :func:`download` keeps the bytes of ``path`` while it is not complete.

    Examples
    --------
    >>> partial_path("data/ff1010bird_wav.zip").name
    'ff1010bird_wav.zip.part'
    """
    path = Path(path)
    return path.with_name(path.name + PART_SUFFIX)


def check_transfer_options(*, timeout, retries, retry_wait):
    """The one rule for ``timeout``, ``retries`` and ``retry_wait``, for the API and the command line.

    Returns
    -------
    dict
        ``timeout`` (float >= :data:`MIN_TIMEOUT_S`), ``retries`` (int >= 0),
        ``retry_wait`` (float >= 0).

    Raises
    ------
    InvalidArgumentError
        With ``parameter`` naming the option.

    Examples
    --------
    >>> check_transfer_options(timeout=30, retries=2, retry_wait=0)
    {'timeout': 30.0, 'retries': 2, 'retry_wait': 0.0}
    >>> check_transfer_options(timeout=30, retries=2, retry_wait=-1)
    Traceback (most recent call last):
    ...
    warblr.errors.InvalidArgumentError: retry_wait: expected a number >= 0, got -1
    """
    return {"timeout": check_scalar(timeout, "timeout", float, min_val=MIN_TIMEOUT_S),
            "retries": check_scalar(retries, "retries", int, min_val=0),
            "retry_wait": check_scalar(retry_wait, "retry_wait", float, min_val=0)}


def download(url, path, *, size=None, digest=None, source=None, progress=True, timeout=TIMEOUT_S, retries=RETRIES,
             retry_wait=RETRY_WAIT_S):
    """Download ``url`` to ``path``, resuming a kept partial download, and verify it.

    Parameters
    ----------
    url : str
        ``http://`` or ``https://`` URL (redirects are followed, ``Range`` kept).
    path : str or os.PathLike
        The final file; it appears only once complete and verified.
    size : int, optional, keyword-only
        The published size in bytes.
    digest : (str, str), optional, keyword-only
        ``(algorithm, hex digest)`` as published, e.g. ``("md5", "9e10...")``.
    source : str, optional, keyword-only
        Where ``size`` and ``digest`` come from, for messages.
    progress : bool, keyword-only
        Show a tqdm bar (bytes) on stderr.
    timeout : float, keyword-only
        Seconds without data before a connection counts as dropped.
    retries : int, keyword-only
        Reconnections (each resuming with ``Range``) after a dropped or failed
        connection, waiting ``retry_wait * attempt`` seconds before each.
    retry_wait : float, keyword-only
        Checked with ``timeout`` and ``retries`` by :func:`check_transfer_options`
        before anything is opened.

    Returns
    -------
    str or None
        The hex digest when ``digest`` was given (it matched), else None.

    Raises
    ------
    InvalidArgumentError
        A bad ``timeout``, ``retries`` or ``retry_wait`` (``parameter`` names it).
    FetchError
        No network, an HTTP error status, or the connection kept dropping;
        the bytes received are kept in ``path + ".part"`` for the next run.
    ChecksumError
        The complete file has the wrong size or digest; the download is deleted.
    OutputError
        The part file cannot be written (disk full, permissions); the bytes
        written so far are kept.

    Examples
    --------
    What ``warblr fetch ff1010bird`` does with the size and MD5 archive.org
    publishes for the archive (values elided; needs the network):

    >>> download("https://archive.org/download/ff1010bird/ff1010bird_wav.zip",  # doctest: +SKIP
    ...          "ff1010bird_wav.zip", size=..., digest=("md5", "..."), source="archive.org metadata")
    """
    from tqdm.auto import tqdm

    options = check_transfer_options(timeout=timeout, retries=retries, retry_wait=retry_wait)
    timeout, retries, retry_wait = options["timeout"], options["retries"], options["retry_wait"]
    path = Path(path)
    part = partial_path(path)
    algorithm, expected = digest if digest is not None else ("md5", None)
    hasher = hashlib.new(algorithm)
    offset = _hash_existing(part, hasher)
    if size is not None and offset > size:  # a stale part from another file: start again
        part.unlink()
        hasher, offset = hashlib.new(algorithm), 0
    attempt = 0
    with tqdm(total=size, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=path.name,
              disable=not progress, leave=False) as bar:
        while size is None or offset < size:
            try:
                response = _open(url, offset, timeout)
            except urllib.error.HTTPError as exc:
                if exc.code == 416 and offset and size is None:
                    break  # the kept part already holds the whole file
                if exc.code >= 500 and attempt < retries:
                    attempt += 1
                    time.sleep(retry_wait * attempt)
                    continue
                raise FetchError(f"{url}: the server answered HTTP {exc.code} {exc.reason}"
                                 + _kept(part, offset), url=url, path=path) from exc
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                if attempt < retries:
                    attempt += 1
                    time.sleep(retry_wait * attempt)
                    continue
                reason = getattr(exc, "reason", None) or exc
                host = urllib.parse.urlsplit(url).netloc
                raise FetchError(f"could not download {path.name} from {host} ({str(reason) or type(reason).__name__}) "
                                 f"after {attempt + 1} attempts; check the network, or fetch from a mirror"
                                 + _kept(part, offset), url=url, path=path) from exc
            with response:
                start = _start_of(response, offset, url, path)
                if start == 0 and offset:
                    # The server ignored Range and sends the whole file: start the part again.
                    hasher, offset = hashlib.new(algorithm), 0
                    bar.reset(total=size)
                    _truncate(part)
                length = response.headers.get("Content-Length")
                if size is not None and length is not None and offset + int(length) != size:
                    raise FetchError(f"{url}: the server sends {offset + int(length)} bytes, the published size "
                                     f"is {size} ({source or 'expected'}); is the mirror serving another file?"
                                     + _kept(part, offset), url=url, path=path)
                received, dropped = _stream(response, part, hasher, bar)
                offset += received
            if dropped is None and (size is None or offset >= size):
                break
            if received:
                attempt = 0  # progress was made: the retry budget is per stall, not per file
            if attempt >= retries:
                total = f" of {size}" if size is not None else ""
                raise FetchError(f"{url}: the connection dropped after {offset}{total} bytes "
                                 f"({dropped or 'closed early'}), {retries + 1} attempts" + _kept(part, offset),
                                 url=url, path=path)
            attempt += 1
            time.sleep(retry_wait * attempt)
    return _verify(part, path, offset, size, algorithm, expected, hasher, url, source)


def _open(url, offset, timeout):
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}  # byte offsets need the raw bytes
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _start_of(response, offset, url, path):
    """The offset the response body starts at: ``offset`` for a 206, 0 for a full 200 answer."""
    if response.status != 206:
        return 0
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if not match or int(match.group(1)) != offset:
        raise FetchError(f"{url}: asked for bytes from {offset}, the server sent "
                         f"{response.headers.get('Content-Range')!r}", url=url, path=path)
    return offset


def _stream(response, part, hasher, bar):
    """Append the body to ``part``; ``(bytes received, None)`` or ``(bytes, why it dropped)``."""
    received = 0
    try:
        handle = open(part, "ab")
    except OSError as exc:
        raise _write_error(part, exc) from exc
    with handle:
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:  # reset, timeout, IncompleteRead
                return received, type(exc).__name__
            if not chunk:
                return received, None
            try:
                handle.write(chunk)
                handle.flush()  # what was received survives a kill, for the resume
            except OSError as exc:
                raise _write_error(part, exc) from exc
            hasher.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))


def _verify(part, path, offset, size, algorithm, expected, hasher, url, source):
    where = f" ({source})" if source else ""
    if offset == 0 and not part.exists():  # a published size of 0: nothing to receive, the file is empty
        try:
            open(part, "ab").close()
        except OSError as exc:
            raise _write_error(part, exc) from exc
    held = part.stat().st_size
    if held != offset:  # the digest covers the bytes received; the file must hold exactly those
        part.unlink()
        raise FetchError(f"{part}: holds {held} bytes, {offset} were received; the download was deleted, rerun to "
                         "download it again", url=url, path=path)
    if size is not None and offset != size:
        part.unlink()
        raise ChecksumError(f"{path.name}: {offset} bytes downloaded, the published size is {size}{where}; "
                            "the download was deleted", url=url, path=path, algorithm="size",
                            expected=size, actual=offset)
    actual = hasher.hexdigest()
    if expected is not None and actual != expected.lower():
        part.unlink()
        raise ChecksumError(f"{path.name}: {algorithm.upper()} {actual} does not match the published "
                            f"{expected}{where}; the download was deleted. Rerun to download it again; if it "
                            "fails again the host or mirror serves a different file", url=url, path=path,
                            algorithm=algorithm, expected=expected, actual=actual)
    os.replace(part, path)
    return actual if expected is not None else None


def _hash_existing(part, hasher):
    """Feed the kept bytes of ``part`` to ``hasher``; their count (0 when there is no part)."""
    try:
        handle = open(part, "rb")
    except FileNotFoundError:
        return 0
    with handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            hasher.update(block)
        return handle.tell()


def _truncate(part):
    with contextlib.suppress(FileNotFoundError):
        os.truncate(part, 0)


def _kept(part, offset):
    return f"; {offset} bytes are kept in {part}: rerun to resume" if offset else ""


def _write_error(part, exc):
    what = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
    return OutputError(f"{part}: cannot write ({what}); the bytes written so far are kept: free space and rerun "
                       "to resume", path=part)
