"""The steps of one fetch, in order: lock, host metadata, archive download, extraction, labels, manifest, install.

:func:`fetch` works in a hidden sibling folder ``.<DEST name>.warblr-fetch``
(the staging folder) and renames the finished dataset folder into ``DEST``
in one step, so ``DEST`` is absent or empty, or complete. One fetch into a
``DEST`` at a time: each takes the lock file ``.<DEST name>.warblr-fetch.lock``
beside it, which lives outside the staging folder and is never deleted, so
removing the staging folder at the end cannot free the lock while it is
held. A second fetch waits for the first, then finds ``DEST`` complete and
only verifies it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ...errors import DatasetError, FetchError, InvalidArgumentError, OutputError
from ...fileio import atomic_write_json, file_digest, locked_file
from ..dataset import read_dataset
from ..download import RETRIES, RETRY_WAIT_S, TIMEOUT_S, check_transfer_options, download, partial_path
from .archive import AUDIO_DIR, check_space, extract_wavs
from .manifest import MANIFEST_NAME, build_manifest, dest_is_complete, verify_fetched
from .sets import SETS

__all__ = ["STAGING_SUFFIX", "LOCK_SUFFIX", "FetchResult", "fetch", "staging_folder", "lock_file"]

#: Suffix of the hidden sibling folder where a fetch downloads and extracts.
STAGING_SUFFIX = ".warblr-fetch"
#: Suffix (after the staging folder's name) of the lock file that lets one fetch into a DEST run at a time.
LOCK_SUFFIX = ".lock"


@dataclass
class FetchResult:
    """What :func:`fetch` did: the dataset folder, whether anything was downloaded, the manifest."""

    dest: Path
    name: str
    downloaded: bool
    manifest: dict


def staging_folder(dest):
    """The hidden sibling folder a fetch into ``dest`` works in.

    Examples
    --------
    >>> staging_folder(Path("/data/ff1010bird")).name
    '.ff1010bird.warblr-fetch'
    """
    return dest.parent / f".{dest.name}{STAGING_SUFFIX}"


def lock_file(dest):
    """The lock file of fetches into ``dest``: beside the staging folder, never inside it, never deleted.

    Examples
    --------
    >>> lock_file(Path("/data/ff1010bird")).name
    '.ff1010bird.warblr-fetch.lock'
    """
    return dest.parent / f".{dest.name}{STAGING_SUFFIX}{LOCK_SUFFIX}"


def fetch(name, dest, *, mirror=None, quick=False, progress=True, timeout=TIMEOUT_S, retries=RETRIES,
          retry_wait=RETRY_WAIT_S):
    """Download, verify and install one DCASE 2018 bird set into ``dest``.

    Parameters
    ----------
    name : {"warblrb10k", "ff1010bird", "birdvox-dcase-20k"}
    dest : str or os.PathLike
        The dataset folder to create: absent, empty, or a complete earlier
        fetch of the same set (then it is verified and nothing is downloaded).
    mirror : str, optional, keyword-only
        Base URL serving the same file names, and the host's metadata
        document from which the hashes are read (see :mod:`warblr.lab.fetch`).
    quick : bool, keyword-only
        On a complete ``dest``, check the files' sizes only, not their SHA-256.
    progress : bool, keyword-only
        tqdm bars on stderr, and a line when waiting for another fetch into ``dest``.
    timeout : float, keyword-only
        Seconds without data before a connection counts as dropped (at least
        :data:`warblr.lab.download.MIN_TIMEOUT_S`: the one rule of the API and the command line).
    retries : int, keyword-only
        Reconnections after a dropped connection, each resuming with HTTP Range.
    retry_wait : float, keyword-only
        Seconds before the first reconnection (``retry_wait * attempt`` before each).

    Returns
    -------
    FetchResult

    Raises
    ------
    InvalidArgumentError
        Unknown ``name``, a ``mirror`` that is not an http(s) URL, ``dest``
        is a file, or a bad ``timeout``, ``retries`` or ``retry_wait``
        (``parameter`` names which).
    OutputError
        ``dest`` is not empty and not this set, or there is not enough disk
        space, or a file cannot be written.
    FetchError, ChecksumError
        No network, a host error, a dropped connection (the partial download
        is kept for the next run), a host listing the archive as empty, or a
        wrong size or MD5 (the download is deleted).
    DatasetError
        An unsafe or unreadable archive (refused, nothing extracted), labels
        that do not match the audio, or a complete ``dest`` whose files changed.

    Examples
    --------
    >>> result = fetch("warblrb10k", "data/warblrb10k")  # doctest: +SKIP
    >>> result.manifest["counts"]  # doctest: +SKIP
    {'rows': 8000, 'items': 8000, 'problems': 0}
    """
    bird_set = _bird_set(name)
    dest = Path(os.path.abspath(os.fspath(dest)))  # "." and "data/" need a real name for the staging sibling
    base = _mirror_base(mirror)
    options = {"progress": progress,
               **check_transfer_options(timeout=timeout, retries=retries, retry_wait=retry_wait)}
    if dest_is_complete(bird_set, dest):
        return FetchResult(dest, bird_set.name, False, verify_fetched(dest, quick=quick, progress=progress))
    _make_folder(dest.parent)
    with _one_fetch_at_a_time(dest, progress=progress):
        if dest_is_complete(bird_set, dest):  # another fetch finished it while this one waited
            return FetchResult(dest, bird_set.name, False, verify_fetched(dest, quick=quick, progress=progress))
        staging = staging_folder(dest)
        _make_folder(staging)
        manifest = _install(bird_set, staging, dest, base, options)
        shutil.rmtree(staging, ignore_errors=True)  # the lock is not in it
    return FetchResult(dest, bird_set.name, True, manifest)


def _install(bird_set, staging, dest, base, options):
    """Download, extract and check in ``staging``, then move the finished folder to ``dest``; the manifest."""
    archive, archive_record = _fetch_archive(bird_set, staging, base, options)
    tree = staging / "tree"
    shutil.rmtree(tree, ignore_errors=True)  # an extraction a killed run left half-done
    tree.mkdir()
    labels_url = f"{base}/{bird_set.labels}" if base else bird_set.labels_url
    pinned = ("sha256", bird_set.labels_sha256) if bird_set.labels_sha256 else None
    download(labels_url, tree / bird_set.labels, digest=pinned, source=pinned and "pinned in warblr",
             **{**options, "progress": False})
    try:
        files, skipped = extract_wavs(archive, tree / AUDIO_DIR, progress=options["progress"])
        counts = _check_labels_match_audio(bird_set, tree)
    except DatasetError as exc:
        # An unusable archive goes (a rerun downloads it again); after bad labels only the verified archive stays.
        shutil.rmtree(staging if exc.path == archive else tree, ignore_errors=True)
        raise
    files[bird_set.labels] = [(tree / bird_set.labels).stat().st_size, file_digest(tree / bird_set.labels)]
    labels_verified = ("SHA-256 pinned in warblr" if pinned else
                       f"by content: {counts['items']} of {counts['rows']} rows have their WAV in the verified "
                       "archive (no published checksum)")
    manifest = build_manifest(bird_set, archive_record=archive_record, labels_url=labels_url,
                              labels_verified=labels_verified, counts=counts, skipped=skipped, files=files)
    atomic_write_json(tree / MANIFEST_NAME, manifest, indent=1)
    _move_into_place(tree, dest)
    return manifest


def _one_fetch_at_a_time(dest, *, progress):
    """Hold :func:`lock_file` of ``dest``, waiting for a fetch that holds it; the file is never deleted."""
    path = lock_file(dest)
    return locked_file(path, waiting=(f"waiting for another warblr fetch into {dest} to finish (it holds {path})"
                                      if progress else None))


def _make_folder(folder):
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create ({exc.strerror or exc})", path=folder) from exc


def _argument_error(parameter, reason):
    return InvalidArgumentError(f"{parameter}: {reason}", parameter=parameter, reason=reason)


def _bird_set(name):
    if name not in SETS:
        raise _argument_error("name", f"expected one of {', '.join(SETS)}, got {name!r}")
    return SETS[name]


def _mirror_base(mirror):
    if mirror is None:
        return None
    text = str(mirror)
    if not re.match(r"https?://[^/]", text):
        raise _argument_error("mirror", f"expected an http:// or https:// base URL, got {text!r}")
    return text.rstrip("/")


def _fetch_archive(bird_set, staging, base, options):
    """The verified audio archive in ``staging`` (downloaded or resumed) and its manifest record."""
    host = bird_set.host
    if host.metadata_url is None:  # an archive nobody publishes a checksum for is never installed
        raise FetchError(f"{bird_set.name}: {host.publisher} publishes no size and MD5 for {bird_set.archive}; "
                         "it cannot be verified, so it is not fetched", url=host.download_url(bird_set.archive))
    metadata_url = f"{base}/{host.metadata_name}" if base else host.metadata_url
    metadata = staging / host.metadata_name
    metadata.unlink(missing_ok=True)  # read the published hashes afresh on every run
    download(metadata_url, metadata, **{**options, "progress": False})
    try:
        document = json.loads(metadata.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FetchError(f"{metadata_url}: not a JSON metadata document ({exc})", url=metadata_url,
                         path=metadata) from exc
    published = host.published(document, bird_set.archive) if isinstance(document, dict) else None
    if published is None:
        raise FetchError(f"{metadata_url}: lists no size and MD5 for {bird_set.archive}; cannot verify it, so it "
                         "was not downloaded", url=metadata_url, path=metadata)
    size, digest = published
    if size == 0:
        raise FetchError(f"{metadata_url}: lists {bird_set.archive} as 0 bytes, which cannot hold the "
                         f"{bird_set.clips:,} clips of {bird_set.name}; nothing was downloaded. The host may still "
                         "be processing the file: try again later, or fetch from a mirror", url=metadata_url,
                         path=metadata)
    source = f"published by {host.publisher} ({'a mirror copy: ' if base else ''}{metadata_url})"
    archive = staging / bird_set.archive
    archive_url = f"{base}/{bird_set.archive}" if base else host.download_url(bird_set.archive)
    if not (archive.is_file() and archive.stat().st_size == size):  # else: a killed extraction left it, verified
        part = partial_path(archive)
        kept = part.stat().st_size if part.is_file() else 0
        # WAV barely compresses: the extracted files need about as much room as the archive.
        check_space(staging, max(size - kept, 0) + size, f"downloading and extracting {bird_set.archive}")
        download(archive_url, archive, size=size, digest=digest, source=source, **options)
    record = {"name": bird_set.archive, "url": archive_url, "bytes": size, digest[0]: digest[1],
              "verified_against": source}
    return archive, record


def _check_labels_match_audio(bird_set, tree):
    """Read ``tree`` as ``--data`` would; refuse labels that clearly belong to other audio."""
    dataset = read_dataset(tree)
    counts = {"rows": dataset.rows, "items": len(dataset.items), "problems": len(dataset.problems)}
    if not dataset.items or 2 * len(dataset.items) < dataset.rows:
        raise DatasetError(f"{bird_set.labels}: only {len(dataset.items)} of its {dataset.rows} rows have a WAV in "
                           f"{bird_set.archive}; these labels do not belong to this audio, nothing was installed",
                           path=dataset.metadata)
    return counts


def _move_into_place(tree, dest):
    """Rename the finished folder to ``dest`` in one step (``dest`` absent or empty)."""
    try:
        os.replace(tree, dest)
    except OSError:
        try:
            dest.rmdir()  # where rename cannot replace an empty folder
            os.replace(tree, dest)
        except OSError as exc:
            raise OutputError(f"{dest}: cannot move the finished dataset into place ({exc.strerror or exc}); it is "
                              f"complete in {tree}", path=dest) from exc
