"""The fetch manifest ``DEST/warblr-fetch.json``: what was installed, verified against what, and checking it again.

A fetch writes the manifest last, inside the finished folder, with each
file's size and SHA-256, the archive's published size and MD5 and where
they were read, how the labels were checked, the counts, licence and
citation. :func:`verify_fetched` checks a folder against it without any
network; :func:`dest_is_complete` says whether a ``dest`` is a complete
earlier fetch of a set, is free to fill, or must be left alone.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

from ... import __version__
from ...errors import DatasetError, InvalidArgumentError, OutputError
from ...fileio import file_digest

__all__ = ["MANIFEST_NAME", "build_manifest", "read_manifest", "dest_is_complete", "verify_fetched"]

#: The manifest of a complete fetch, written last, inside the dataset folder.
MANIFEST_NAME = "warblr-fetch.json"
_FORMAT = 1


def build_manifest(bird_set, *, archive_record, labels_url, labels_verified, counts, skipped, files):
    """The manifest of a fetch of ``bird_set`` (a JSON-ready dict)."""
    return {
        "format": _FORMAT, "dataset": bird_set.name, "title": bird_set.title, "warblr": __version__,
        "fetched_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "archive": archive_record,
        "labels": {"name": bird_set.labels, "url": labels_url, "verified": labels_verified},
        "counts": counts, "skipped_members": skipped, "licence": bird_set.licence,
        "citation": bird_set.citation, "files": files,
    }


def read_manifest(dest):
    """The manifest of the fetched folder ``dest``.

    Raises
    ------
    DatasetError
        Missing, not JSON, or without a ``files`` table of ``[bytes, sha256]``.
    """
    path = Path(dest) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable fetch manifest ({exc})", path=path) from exc
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(
            isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int) and isinstance(entry[1], str)
            for entry in files.values()):
        raise DatasetError(f"{path}: not a warblr fetch manifest (no 'files' table of [bytes, sha256])", path=path)
    return manifest


def dest_is_complete(bird_set, dest):
    """True for a complete earlier fetch of ``bird_set``; False for an absent or empty folder; else raise.

    Raises
    ------
    InvalidArgumentError
        ``dest`` is a file (``parameter="dest"``).
    OutputError
        ``dest`` holds another set, a copy made by another tool, or anything else.
    """
    if not dest.exists():
        return False
    if not dest.is_dir():
        raise InvalidArgumentError(f"dest: {dest} is a file, not a folder", parameter="dest",
                                   reason=f"{dest} is a file, not a folder")
    if (dest / MANIFEST_NAME).is_file():
        fetched = read_manifest(dest).get("dataset")
        if fetched != bird_set.name:
            raise OutputError(f"{dest} holds {fetched}, fetched by warblr, not {bird_set.name}; choose another "
                              "folder", path=dest)
        return True
    try:
        entries = sorted(os.listdir(dest))
    except OSError as exc:
        raise OutputError(f"{dest}: cannot list ({exc.strerror or exc})", path=dest) from exc
    if not entries:
        return False
    known = {bird_set.labels, *bird_set.other_label_names} & set(entries)
    if known:
        raise OutputError(f"{dest} already holds {', '.join(sorted(known))} but no {MANIFEST_NAME}: it looks like a "
                          f"copy of {bird_set.name} made by hand or by another tool (such as soundata), which "
                          "warblr reads as it is; fetch into an empty folder to get a verified copy", path=dest)
    shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
    raise OutputError(f"{dest} is not empty ({shown}) and is not a warblr fetch of {bird_set.name}; choose an "
                      "empty or new folder", path=dest)


def verify_fetched(dest, *, quick=False, progress=True):
    """Check a fetched folder against its ``warblr-fetch.json``: every file present, same size and SHA-256.

    Parameters
    ----------
    dest : str or os.PathLike
    quick : bool, keyword-only
        Sizes only.
    progress : bool, keyword-only

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    DatasetError
        No readable manifest, or files missing or changed (named, up to ten).

    Examples
    --------
    >>> verify_fetched("data/warblrb10k")["dataset"]  # doctest: +SKIP
    'warblrb10k'
    """
    from tqdm.auto import tqdm

    dest = Path(os.fspath(dest))
    manifest = read_manifest(dest)
    files = manifest["files"]
    bad = []
    with tqdm(total=sum(entry[0] for entry in files.values()), unit="B", unit_scale=True, unit_divisor=1024,
              desc=f"verify {dest.name}", disable=not progress or quick, leave=False) as bar:
        for relative, (size, sha256) in sorted(files.items()):
            path = dest / relative
            if not path.is_file():
                bad.append(f"{relative} (missing)")
            elif path.stat().st_size != size:
                bad.append(f"{relative} ({path.stat().st_size} bytes, fetched {size})")
            elif not quick and file_digest(path) != sha256:
                bad.append(f"{relative} (SHA-256 changed)")
            bar.update(size)
    if bad:
        shown = "; ".join(bad[:10]) + (f"; and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise DatasetError(f"{dest}: {len(bad)} file(s) differ from {MANIFEST_NAME}: {shown}. Fetch again into an "
                           "empty folder", path=dest)
    return manifest
