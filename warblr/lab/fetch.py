"""``warblr fetch``: download a DCASE 2018 bird set, verified, into a folder ``--data`` reads as it is.

The three development sets of the DCASE 2018 bird audio detection task
(https://dcase.community/challenge2018/task-bird-audio-detection):

=====================  ========  ===========  ==================================================  ==========
name                   clips     archive      audio host (who publishes size + MD5)                labels
=====================  ========  ===========  ==================================================  ==========
``warblrb10k``         8,000     ~4.3 GB      archive.org item ``warblrb10k_public``              figshare
``ff1010bird``         7,690     ~5.8 GB      archive.org item ``ff1010bird``                     figshare
``birdvox-dcase-20k``  20,000    ~15.4 GB     Zenodo record 1208080                               figshare
=====================  ========  ===========  ==================================================  ==========

What is verified, and against what:

* **Audio archives: the hash the host publishes, read at fetch time.**
  archive.org lists every file's size and MD5 at
  ``https://archive.org/metadata/<item>``; Zenodo lists them at
  ``https://zenodo.org/api/records/<id>``. warblr reads that document, then
  checks the downloaded archive's size and MD5 against it. No archive hash is
  pinned in warblr: none could be confirmed offline (soundata's remotes carry
  one checksum copied onto several files, so they cannot be used).
* **Label CSVs: by content.** figshare's download ids (10853306, 10853303,
  10853300) come with no checksum warblr can look up by file id, so the CSV
  is accepted when its header has ``itemid`` and ``hasbird`` and most rows
  name a WAV of the verified archive. :attr:`BirdSet.labels_sha256` pins a
  SHA-256 when one is known (none is yet).
* **Every extracted file**: zip's CRC-32 while extracting, then its size and
  SHA-256 go into ``DEST/warblr-fetch.json``; a rerun on a complete folder
  checks them (no network) and downloads nothing.

Nothing half-done: the download and the extraction happen in a hidden
sibling folder ``.<DEST name>.warblr-fetch``; the finished dataset folder is
renamed into place in one step, manifest included, so ``DEST`` is either
absent or empty, or complete. An interrupted download keeps its ``.part``
there and the next run resumes it with an HTTP ``Range`` request.

``mirror``: every file comes from ``<mirror>/<file name>``: the audio
archive, the labels under the names in the table of :data:`SETS`, and a
copy of the host's metadata document (``archive.org-<item>.json`` or
``zenodo-<id>.json``, saved from the URLs above), from which the archive's
size and MD5 are read. The mirror is trusted as the host would be.

These URLs, file names and document formats come from the DCASE 2018 task
page, soundata's loaders and the hosts' API documentation; this machine had
no internet, so the tests run against a local server that speaks the same
formats, and the real hosts were not contacted.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .. import __version__
from ..errors import ChecksumError, DatasetError, FetchError, InvalidArgumentError, OutputError
from ..fileio import atomic_write_json, exclusive, file_digest
from ..validation import argparse_type, check_scalar
from .dataset import read_dataset
from .download import download, partial_path

__all__ = [
    "ArchiveOrgItem", "ZenodoRecord", "BirdSet", "SETS", "MANIFEST_NAME", "STAGING_SUFFIX", "FetchResult",
    "fetch", "verify_fetched", "describe_sets", "register",
]

#: The manifest of a complete fetch, written last, inside the dataset folder.
MANIFEST_NAME = "warblr-fetch.json"
#: Suffix of the hidden sibling folder where a fetch downloads and extracts.
STAGING_SUFFIX = ".warblr-fetch"
_FORMAT = 1
_CHUNK = 1 << 20
_AUDIO_DIR = "wav"


@dataclass(frozen=True)
class ArchiveOrgItem:
    """An archive.org item: files at ``/download/<item>/``, size and MD5 per file at ``/metadata/<item>``."""

    item: str

    @property
    def metadata_url(self):
        return f"https://archive.org/metadata/{self.item}"

    @property
    def metadata_name(self):
        """The name a mirror serves its copy of the metadata document under."""
        return f"archive.org-{self.item}.json"

    @property
    def publisher(self):
        return "archive.org"

    def download_url(self, filename):
        return f"https://archive.org/download/{self.item}/{filename}"

    def published(self, document, filename):
        """``(size, ("md5", hex))`` of ``filename`` in the metadata document, or None if it is not listed.

        Examples
        --------
        >>> ArchiveOrgItem("x").published({"files": [{"name": "a.zip", "size": "3", "md5": "0" * 32}]}, "a.zip")
        (3, ('md5', '00000000000000000000000000000000'))
        """
        for entry in document.get("files") or []:
            if isinstance(entry, dict) and entry.get("name") == filename:
                return _size_and_md5(entry.get("size"), entry.get("md5"))
        return None


@dataclass(frozen=True)
class ZenodoRecord:
    """A Zenodo record: files at ``/records/<id>/files/``, size and ``md5:`` checksum at ``/api/records/<id>``."""

    record: str

    @property
    def metadata_url(self):
        return f"https://zenodo.org/api/records/{self.record}"

    @property
    def metadata_name(self):
        return f"zenodo-{self.record}.json"

    @property
    def publisher(self):
        return "Zenodo"

    def download_url(self, filename):
        return f"https://zenodo.org/records/{self.record}/files/{filename}?download=1"

    def published(self, document, filename):
        """``(size, ("md5", hex))`` of ``filename`` in the record document, or None if it is not listed.

        Examples
        --------
        >>> ZenodoRecord("1").published({"files": [{"key": "a.zip", "size": 3, "checksum": "md5:" + "f" * 32}]},
        ...                             "a.zip")[0]
        3
        """
        entries = document.get("files") or document.get("entries") or []
        for entry in entries:
            if isinstance(entry, dict) and filename in (entry.get("key"), entry.get("filename")):
                algorithm, _, value = str(entry.get("checksum", "")).partition(":")
                return _size_and_md5(entry.get("size"), value if algorithm == "md5" else None)
        return None


def _size_and_md5(size, md5):
    try:
        size = int(size)
    except (TypeError, ValueError):
        size = None
    md5 = md5.lower() if isinstance(md5, str) and re.fullmatch(r"[0-9a-fA-F]{32}", md5) else None
    return (size, ("md5", md5)) if size is not None and size >= 0 and md5 else None


@dataclass(frozen=True)
class BirdSet:
    """One fetchable set: where its audio and labels are, what it is, how to cite it."""

    name: str
    title: str
    clips: int
    approx_bytes: int
    host: object
    archive: str
    labels: str
    labels_url: str
    licence: str
    citation: str
    #: SHA-256 of the labels CSV, when confirmed; None: checked by content only.
    labels_sha256: str | None = None
    #: Label-file names other tools use for the same set (soundata, the 2016 release).
    other_label_names: tuple = field(default=())


SETS = {
    "warblrb10k": BirdSet(
        name="warblrb10k", title="warblrb10k: crowdsourced smartphone recordings, UK (Warblr app, 2015-2016)",
        clips=8000, approx_bytes=4_300_000_000, host=ArchiveOrgItem("warblrb10k_public"),
        archive="warblrb10k_public_wav.zip", labels="warblrb10k_public_metadata_2018.csv",
        labels_url="https://ndownloader.figshare.com/files/10853306",
        licence="CC BY 4.0 (per the DCASE 2018 task page)",
        citation="D. Stowell, M. Wood, H. Pamuła, Y. Stylianou, H. Glotin. Automatic acoustic detection of birds "
                 "through deep learning: the first Bird Audio Detection challenge. Methods in Ecology and "
                 "Evolution 10(3), 2019. doi:10.1111/2041-210X.13103",
        other_label_names=("warblrb10k_public_metadata.csv",)),
    "ff1010bird": BirdSet(
        name="ff1010bird", title="freefield1010 (ff1010bird): field recordings from Freesound, worldwide",
        clips=7690, approx_bytes=5_800_000_000, host=ArchiveOrgItem("ff1010bird"),
        archive="ff1010bird_wav.zip", labels="ff1010bird_metadata_2018.csv",
        labels_url="https://ndownloader.figshare.com/files/10853303",
        licence="CC BY 4.0 (per the DCASE 2018 task page)",
        citation="D. Stowell, M. D. Plumbley. An open dataset for research on audio field recording archives: "
                 "freefield1010. Proc. AES 53rd Conference on Semantic Audio, 2014",
        other_label_names=("ff1010bird_metadata.csv",)),
    "birdvox-dcase-20k": BirdSet(
        name="birdvox-dcase-20k", title="BirdVox-DCASE-20k: night flight calls, remote monitoring, Ithaca NY",
        clips=20000, approx_bytes=15_400_000_000, host=ZenodoRecord("1208080"),
        archive="BirdVox-DCASE-20k.zip", labels="BirdVoxDCASE20k_csvpublic.csv",
        labels_url="https://ndownloader.figshare.com/files/10853300",
        licence="CC BY 4.0 (per the Zenodo record)",
        citation="V. Lostanlen, J. Salamon, A. Farnsworth, S. Kelling, J. P. Bello. BirdVox-full-night: a dataset "
                 "and benchmark for avian flight call detection. Proc. IEEE ICASSP, 2018. "
                 "doi:10.5281/zenodo.1208080"),
}


@dataclass
class FetchResult:
    """What :func:`fetch` did: the dataset folder, whether anything was downloaded, the manifest."""

    dest: Path
    name: str
    downloaded: bool
    manifest: dict


def fetch(name, dest, *, mirror=None, quick=False, progress=True, timeout=60.0, retries=3, retry_wait=2.0):
    """Download, verify and install one DCASE 2018 bird set into ``dest``.

    Parameters
    ----------
    name : {"warblrb10k", "ff1010bird", "birdvox-dcase-20k"}
    dest : str or os.PathLike
        The dataset folder to create: absent, empty, or a complete earlier
        fetch of the same set (then it is verified and nothing is downloaded).
    mirror : str, optional, keyword-only
        Base URL serving the same file names, and the host's metadata
        document from which the hashes are read (see the module docstring).
    quick : bool, keyword-only
        On a complete ``dest``, check the files' sizes only, not their SHA-256.
    progress : bool, keyword-only
        tqdm bars on stderr.
    timeout, retries, retry_wait : keyword-only
        Passed to :func:`warblr.lab.download.download`.

    Returns
    -------
    FetchResult

    Raises
    ------
    InvalidArgumentError
        Unknown ``name``, a ``mirror`` that is not an http(s) URL, or ``dest``
        is a file (``parameter`` names which).
    OutputError
        ``dest`` is not empty and not this set, or there is not enough disk
        space, or a file cannot be written.
    FetchError, ChecksumError
        No network, a host error, a dropped connection (the partial download
        is kept for the next run), or a wrong size or MD5 (the download is deleted).
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
    retries = check_scalar(retries, "retries", int, min_val=0)
    timeout = check_scalar(timeout, "timeout", float, min_val=0.001)
    if _dest_is_complete(bird_set, dest):
        return FetchResult(dest, bird_set.name, False, verify_fetched(dest, quick=quick, progress=progress))
    staging = dest.parent / f".{dest.name}{STAGING_SUFFIX}"
    try:
        staging.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{staging}: cannot create ({exc.strerror or exc})", path=staging) from exc
    options = {"progress": progress, "timeout": timeout, "retries": retries, "retry_wait": retry_wait}
    with exclusive(staging, what="warblr fetch"):
        archive, archive_record = _fetch_archive(bird_set, staging, base, options)
        tree = staging / "tree"
        shutil.rmtree(tree, ignore_errors=True)  # an extraction a killed run left half-done
        tree.mkdir()
        labels_url = f"{base}/{bird_set.labels}" if base else bird_set.labels_url
        pinned = ("sha256", bird_set.labels_sha256) if bird_set.labels_sha256 else None
        download(labels_url, tree / bird_set.labels, digest=pinned, source=pinned and "pinned in warblr",
                 **{**options, "progress": False})
        try:
            files, skipped = _extract_wavs(archive, tree / _AUDIO_DIR, progress=progress)
            counts = _check_labels_match_audio(bird_set, tree)
        except DatasetError as exc:
            # An unusable archive goes (a rerun downloads it again); after bad labels only the verified archive stays.
            shutil.rmtree(staging if exc.path == archive else tree, ignore_errors=True)
            raise
        files[bird_set.labels] = [(tree / bird_set.labels).stat().st_size, file_digest(tree / bird_set.labels)]
        manifest = {
            "format": _FORMAT, "dataset": bird_set.name, "title": bird_set.title, "warblr": __version__,
            "fetched_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "archive": archive_record,
            "labels": {"name": bird_set.labels, "url": labels_url,
                       "verified": ("SHA-256 pinned in warblr" if pinned else
                                    f"by content: {counts['items']} of {counts['rows']} rows have their WAV in "
                                    "the verified archive (no published checksum)")},
            "counts": counts, "skipped_members": skipped, "licence": bird_set.licence,
            "citation": bird_set.citation, "files": files,
        }
        atomic_write_json(tree / MANIFEST_NAME, manifest, indent=1)
        _move_into_place(tree, dest)
        shutil.rmtree(staging, ignore_errors=True)
    return FetchResult(dest, bird_set.name, True, manifest)


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


def _dest_is_complete(bird_set, dest):
    """True for a complete earlier fetch of ``bird_set``; False for an absent or empty folder; else raise."""
    if not dest.exists():
        return False
    if not dest.is_dir():
        raise _argument_error("dest", f"{dest} is a file, not a folder")
    manifest = dest / MANIFEST_NAME
    if manifest.is_file():
        fetched = _read_manifest(dest).get("dataset")
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


def _read_manifest(dest):
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


def _fetch_archive(bird_set, staging, base, options):
    """The verified audio archive in ``staging`` (downloaded or resumed) and its manifest record."""
    host = bird_set.host
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
    source = f"published by {host.publisher} ({'a mirror copy: ' if base else ''}{metadata_url})"
    archive = staging / bird_set.archive
    archive_url = f"{base}/{bird_set.archive}" if base else host.download_url(bird_set.archive)
    if archive.is_file() and archive.stat().st_size == size:
        pass  # renamed into place only after its MD5 matched: a killed extraction left it
    else:
        part = partial_path(archive)
        kept = part.stat().st_size if part.is_file() else 0
        # WAV barely compresses: the extracted files need about as much room as the archive.
        _check_space(staging, max(size - kept, 0) + size, f"downloading and extracting {bird_set.archive}")
        download(archive_url, archive, size=size, digest=digest, source=source, **options)
    record = {"name": bird_set.archive, "url": archive_url, "bytes": size, digest[0]: digest[1],
              "verified_against": source}
    return archive, record


def _check_space(folder, needed, what):
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OutputError(f"{folder}: {_human(free)} free, {what} needs about {_human(needed)}; free space or choose "
                          "a dest on another disk", path=Path(folder))


def _unsafe(info):
    """Why a zip member may not be extracted, or None."""
    name = info.filename
    parts = PurePosixPath(name).parts
    if "\\" in name or "\x00" in name:
        return "backslash or NUL in its name"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "absolute path"
    if ".." in parts:
        return "'..' in its path"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


def _is_audio_member(info):
    path = PurePosixPath(info.filename)
    # macOS zips add __MACOSX/._name.wav resource forks: not audio.
    return (not info.is_dir() and path.suffix.lower() == ".wav" and "__MACOSX" not in path.parts
            and not path.name.startswith("._"))


def _extract_wavs(archive, target, *, progress=True):
    """Extract the archive's WAV members, flat, into ``target``; ``({"wav/x.wav": [bytes, sha256]}, skipped)``.

    Every member name is checked before anything is written: one unsafe name
    (absolute, ``..``, a symlink) refuses the whole archive.
    """
    from tqdm.auto import tqdm

    try:
        zip_file = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{archive}: not a readable zip archive ({exc})", path=archive) from exc
    with zip_file:
        infos = zip_file.infolist()
        for info in infos:
            why = _unsafe(info)
            if why:
                raise DatasetError(f"{archive}: unsafe member {info.filename!r} ({why}); the archive was refused "
                                   "and nothing was extracted", path=archive)
        audio = [info for info in infos if _is_audio_member(info)]
        skipped = [info.filename for info in infos if not info.is_dir() and info not in audio]
        if not audio:
            raise DatasetError(f"{archive}: holds no WAV files", path=archive)
        seen = {}
        for info in audio:
            name = PurePosixPath(info.filename).name
            if name in seen:
                raise DatasetError(f"{archive}: two members are named {name} ({seen[name]}, {info.filename}); "
                                   "refused", path=archive)
            seen[name] = info.filename
        _check_space(target.parent, sum(info.file_size for info in audio), f"extracting {Path(archive).name}")
        target.mkdir()
        files = {}
        with tqdm(total=sum(info.file_size for info in audio), unit="B", unit_scale=True, unit_divisor=1024,
                  desc=f"extract {Path(archive).name}", disable=not progress, leave=False) as bar:
            for info in audio:
                name = PurePosixPath(info.filename).name
                files[f"{_AUDIO_DIR}/{name}"] = _extract_one(zip_file, info, target / name, archive, bar)
    return files, skipped


def _extract_one(zip_file, info, out, archive, bar):
    digest, size = hashlib.sha256(), 0
    try:
        with zip_file.open(info) as source, open(out, "wb") as sink:
            for block in iter(lambda: source.read(_CHUNK), b""):
                sink.write(block)
                digest.update(block)
                size += len(block)
                bar.update(len(block))
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, NotImplementedError) as exc:
        raise DatasetError(f"{archive}: member {info.filename} is damaged or unsupported ({exc})",
                           path=archive) from exc
    except OSError as exc:
        what = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
        raise OutputError(f"{out}: cannot write ({what}); the fetch stopped, nothing was installed", path=out) from exc
    return [size, digest.hexdigest()]


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
    manifest = _read_manifest(dest)
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


def _human(nbytes):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(nbytes) < 1000 or unit == "TB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000


def describe_sets():
    """The text of ``warblr fetch --list``: each set's size, licence, citation and where its hashes come from.

    Examples
    --------
    >>> print(describe_sets().splitlines()[0])
    warblrb10k: 8,000 clips, about 4.3 GB
    """
    blocks = []
    for bird_set in SETS.values():
        host = bird_set.host
        labels_check = ("SHA-256 pinned in warblr" if bird_set.labels_sha256 else
                        "by content (header; its rows' WAVs in the verified archive); no published checksum")
        blocks.append("\n".join([
            f"{bird_set.name}: {bird_set.clips:,} clips, about {_human(bird_set.approx_bytes)}",
            f"  {bird_set.title}",
            f"  audio    {host.download_url(bird_set.archive)}",
            f"           verified: size + MD5 published by {host.publisher} ({host.metadata_url}), read at fetch "
            "time",
            f"  labels   {bird_set.labels_url} -> {bird_set.labels}",
            f"           verified: {labels_check}",
            f"  mirror   serves {bird_set.archive}, {bird_set.labels}, {host.metadata_name}",
            f"  licence  {bird_set.licence}",
            f"  cite     {bird_set.citation}",
        ]))
    return "\n\n".join(blocks)


# ----------------------------------------------------------------------------- command line


def register(subparsers):
    """Add ``warblr fetch``."""
    from warblr.cli import HelpFormatter

    sizes = ", ".join(f"{s.name} ~{_human(s.approx_bytes)}" for s in SETS.values())
    parser = subparsers.add_parser(
        "fetch", formatter_class=HelpFormatter,
        help="download a DCASE 2018 bird set (warblrb10k, ff1010bird, BirdVox-DCASE-20k), verified",
        description=(
            "Download one DCASE 2018 bird audio detection set into DIR, verify it and lay it out as "
            f"`warblr extract/analyse --data DIR` reads it (wav/<itemid>.wav + the label CSV). Sizes: {sizes} "
            "(the archive and the extracted WAVs need about twice that while fetching). "
            "Hashes: each audio archive's size and MD5 are read from its host's metadata at fetch time "
            "(archive.org's /metadata/<item>, Zenodo's /api/records/<id>); no archive hash is pinned in warblr. "
            "The label CSVs (figshare) have no published checksum: they are checked by content against the "
            "verified audio. Each extracted file's SHA-256 goes into DIR/warblr-fetch.json. "
            "Resume: an interrupted download is kept in the hidden folder .<DIR name>.warblr-fetch next to DIR "
            "and resumed (HTTP Range) by the next run; DIR appears only when complete. A rerun on a complete "
            "DIR verifies it and downloads nothing. --list shows every set with its licence and citation."),
        epilog=("Mirror: --mirror URL fetches URL/<archive>, URL/<labels CSV> and URL/<host metadata copy> "
                "(archive.org-<item>.json or zenodo-<id>.json, saved from the host URLs above); the hashes then "
                "come from the mirror's copy, so use a mirror you trust as you would the host."))
    parser.add_argument("name", nargs="?", choices=list(SETS), metavar="NAME",
                        help=f"the set to fetch: {', '.join(SETS)}")
    parser.add_argument("--dest", metavar="DIR", help="dataset folder to create (absent or empty), or a complete "
                                                      "earlier fetch to verify")
    parser.add_argument("--list", action="store_true", help="list the sets (size, licence, citation, hashes) and exit")
    parser.add_argument("--mirror", metavar="URL", default=None,
                        help="base URL serving the same file names and the host's metadata document")
    parser.add_argument("--quick", action="store_true", help="on a complete DIR, check file sizes only, not SHA-256")
    parser.add_argument("--retries", type=argparse_type(int, min_val=0), default=3, metavar="N",
                        help="reconnections (resuming with HTTP Range) after a dropped connection")
    parser.add_argument("--timeout", type=argparse_type(float, min_val=1), default=60.0, metavar="S",
                        help="seconds without data before a connection counts as dropped")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)


def _run(args):
    if args.list:
        print(describe_sets())
        return 0
    if not args.name:
        raise InvalidArgumentError(f"fetch needs NAME: one of {', '.join(SETS)} (--list describes them)")
    if not args.dest:
        raise _argument_error("dest", "required: the dataset folder to create")
    if not args.quiet:
        bird_set = SETS[args.name]
        source = f"{args.mirror}/{bird_set.host.metadata_name}" if args.mirror else bird_set.host.metadata_url
        print(f"fetch {bird_set.name} into {args.dest}: about {_human(bird_set.approx_bytes)} to download (nothing "
              f"if it is already complete); archive size and MD5 from {source}")
    result = fetch(args.name, args.dest, mirror=args.mirror, quick=args.quick, progress=not args.quiet,
                   timeout=args.timeout, retries=args.retries)
    counts = result.manifest["counts"]
    if result.downloaded:
        archive = result.manifest["archive"]
        print(f"fetched {result.name} into {result.dest}: {counts['items']} clips with labels "
              f"({counts['problems']} problems); {archive['name']} verified against the size and MD5 "
              f"{archive['verified_against']}; labels checked {result.manifest['labels']['verified']}")
    else:
        check = "sizes" if args.quick else "sizes and SHA-256"
        print(f"{result.dest}: complete {result.name} ({len(result.manifest['files'])} files, {check} match "
              f"{MANIFEST_NAME}); nothing to download")
    print(f"next: warblr analyse --data {result.dest} --out OUT")
    return 0
