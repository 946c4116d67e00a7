"""Where a set's files live: the :class:`Host` protocol and its archive.org, Zenodo and figshare implementations.

A host turns a file name into its download URL and, when it publishes one,
names the JSON metadata document that lists each file's size and MD5
(archive.org's ``/metadata/<item>``, Zenodo's ``/api/records/<id>``), reads
that document (:meth:`Host.published`) and names the copy a mirror serves of
it. archive.org and Zenodo differ only in their URL templates and in how
their documents spell a file's entry, so both are one :class:`_ListingHost`
with those differences as class attributes. figshare's plain download ids
come with no document warblr can look up by file id: its ``metadata_url`` is
None and nothing is published, so what it serves is checked by content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

__all__ = ["Host", "ArchiveOrgItem", "ZenodoRecord", "FigshareFile"]


@runtime_checkable
class Host(Protocol):
    """What :func:`warblr.lab.fetch.fetch` needs from a place that serves a set's files."""

    #: Who publishes the files, for messages ("archive.org").
    publisher: str

    @property
    def metadata_url(self) -> str | None:
        """The JSON document listing each file's size and checksum, or None when the host publishes none."""

    @property
    def metadata_name(self) -> str | None:
        """The file name a mirror serves its copy of that document under (None when there is none)."""

    def download_url(self, filename: str) -> str:
        """Where ``filename`` is downloaded from."""

    def published(self, document: dict, filename: str) -> tuple | None:
        """``(size, ("md5", hex))`` of ``filename`` in the metadata document, or None if it is not listed."""


def _size_and_md5(size, md5):
    try:
        size = int(size)
    except (TypeError, ValueError):
        size = None
    md5 = md5.lower() if isinstance(md5, str) and re.fullmatch(r"[0-9a-fA-F]{32}", md5) else None
    return (size, ("md5", md5)) if size is not None and size >= 0 and md5 else None


class _ListingHost:
    """A host whose metadata document lists its files with their sizes and MD5s.

    Subclasses are frozen dataclasses with one field, the host's key (item,
    record), and fill in the templates and the three ``entry_*``/``entries`` readers.
    """

    publisher: ClassVar[str]
    metadata_template: ClassVar[str]
    metadata_name_template: ClassVar[str]
    download_template: ClassVar[str]

    @property
    def key(self):
        raise NotImplementedError

    @property
    def metadata_url(self):
        return self.metadata_template.format(key=self.key)

    @property
    def metadata_name(self):
        return self.metadata_name_template.format(key=self.key)

    def download_url(self, filename):
        return self.download_template.format(key=self.key, filename=filename)

    @staticmethod
    def entries(document):
        return document.get("files") or []

    def published(self, document, filename):
        for entry in self.entries(document):
            if isinstance(entry, dict) and filename in self.entry_names(entry):
                return _size_and_md5(entry.get("size"), self.entry_md5(entry))
        return None


@dataclass(frozen=True)
class ArchiveOrgItem(_ListingHost):
    """An archive.org item: files at ``/download/<item>/``, size and MD5 per file at ``/metadata/<item>``.

    Examples
    --------
    >>> ArchiveOrgItem("x").published({"files": [{"name": "a.zip", "size": "3", "md5": "0" * 32}]}, "a.zip")
    (3, ('md5', '00000000000000000000000000000000'))
    """

    item: str

    publisher = "archive.org"
    metadata_template = "https://archive.org/metadata/{key}"
    metadata_name_template = "archive.org-{key}.json"
    download_template = "https://archive.org/download/{key}/{filename}"

    @property
    def key(self):
        return self.item

    @staticmethod
    def entry_names(entry):
        return (entry.get("name"),)

    @staticmethod
    def entry_md5(entry):
        return entry.get("md5")


@dataclass(frozen=True)
class ZenodoRecord(_ListingHost):
    """A Zenodo record: files at ``/records/<id>/files/``, size and ``md5:`` checksum at ``/api/records/<id>``.

    Examples
    --------
    >>> ZenodoRecord("1").published({"files": [{"key": "a.zip", "size": 3, "checksum": "md5:" + "f" * 32}]},
    ...                             "a.zip")[0]
    3
    """

    record: str

    publisher = "Zenodo"
    metadata_template = "https://zenodo.org/api/records/{key}"
    metadata_name_template = "zenodo-{key}.json"
    download_template = "https://zenodo.org/records/{key}/files/{filename}?download=1"

    @property
    def key(self):
        return self.record

    @staticmethod
    def entries(document):
        return document.get("files") or document.get("entries") or []  # the new API and the legacy one

    @staticmethod
    def entry_names(entry):
        return (entry.get("key"), entry.get("filename"))

    @staticmethod
    def entry_md5(entry):
        algorithm, _, value = str(entry.get("checksum", "")).partition(":")
        return value if algorithm == "md5" else None


@dataclass(frozen=True)
class FigshareFile:
    """A figshare download id (``ndownloader.figshare.com/files/<id>``); figshare publishes no checksum for it.

    Examples
    --------
    >>> FigshareFile("10853306").download_url("labels.csv")
    'https://ndownloader.figshare.com/files/10853306'
    """

    file_id: str

    publisher = "figshare"
    metadata_url = None
    metadata_name = None

    def download_url(self, filename):
        return f"https://ndownloader.figshare.com/files/{self.file_id}"

    def published(self, document, filename):
        return None
