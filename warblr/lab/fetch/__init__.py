"""``warblr fetch``: download a DCASE 2018 bird set, verified, into a folder ``--data`` reads as it is.

The package's job is getting a published set onto disk safely; each module has one part of it:
:mod:`~warblr.lab.fetch.hosts` (the :class:`Host` protocol: archive.org, Zenodo, figshare),
:mod:`~warblr.lab.fetch.sets` (the registry of sets), :mod:`~warblr.lab.fetch.archive` (archive
safety and extraction), :mod:`~warblr.lab.fetch.manifest` (the manifest and re-verification),
:mod:`~warblr.lab.fetch.orchestrate` (the steps of one fetch, the staging folder and the lock) and
:mod:`~warblr.lab.fetch.command` (the command line). This module re-exports the library API.

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
there and the next run resumes it with an HTTP ``Range`` request. One fetch
into a ``DEST`` at a time: a second one waits on the lock file
``.<DEST name>.warblr-fetch.lock`` beside it (never deleted, so never lost
while held), then finds ``DEST`` complete and downloads nothing. WAV members
in any case (``X.WAV``) are installed as ``wav/X.wav``, the name the reader
looks up.

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

from .archive import AUDIO_DIR, extract_wavs, unsafe_member
from .hosts import ArchiveOrgItem, FigshareFile, Host, ZenodoRecord
from .manifest import MANIFEST_NAME, dest_is_complete, read_manifest, verify_fetched
from .orchestrate import LOCK_SUFFIX, STAGING_SUFFIX, FetchResult, fetch, lock_file, staging_folder
from .sets import SETS, BirdSet, describe_sets

__all__ = [
    "Host", "ArchiveOrgItem", "ZenodoRecord", "FigshareFile", "BirdSet", "SETS", "describe_sets", "AUDIO_DIR",
    "extract_wavs", "unsafe_member", "MANIFEST_NAME", "read_manifest", "dest_is_complete", "verify_fetched",
    "STAGING_SUFFIX", "LOCK_SUFFIX", "FetchResult", "fetch", "staging_folder", "lock_file",
]
