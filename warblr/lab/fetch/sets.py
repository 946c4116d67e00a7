"""The registry of fetchable sets: the three DCASE 2018 bird development sets, where each lives, how to cite it.

Each :class:`BirdSet` names its audio archive on a :class:`~warblr.lab.fetch.hosts.Host`
that publishes the archive's size and MD5, its label CSV on figshare, its
size, licence and citation. :func:`describe_sets` is the text of
``warblr fetch --list``: what is fetched from where and how each file is verified.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .hosts import ArchiveOrgItem, FigshareFile, Host, ZenodoRecord

__all__ = ["BirdSet", "SETS", "describe_sets", "human_bytes"]


@dataclass(frozen=True)
class BirdSet:
    """One fetchable set: where its audio and labels are, what it is, how to cite it."""

    name: str
    title: str
    clips: int
    approx_bytes: int
    #: Serves :attr:`archive` and publishes its size and MD5.
    host: Host
    archive: str
    labels: str
    #: Serves the label CSV (figshare: no published checksum).
    labels_host: Host
    licence: str
    citation: str
    #: SHA-256 of the labels CSV, when confirmed; None: checked by content only.
    labels_sha256: str | None = None
    #: Label-file names other tools use for the same set (soundata, the 2016 release).
    other_label_names: tuple = field(default=())

    @property
    def labels_url(self):
        """Where the label CSV is downloaded from."""
        return self.labels_host.download_url(self.labels)


SETS = {
    "warblrb10k": BirdSet(
        name="warblrb10k", title="warblrb10k: crowdsourced smartphone recordings, UK (Warblr app, 2015-2016)",
        clips=8000, approx_bytes=4_300_000_000, host=ArchiveOrgItem("warblrb10k_public"),
        archive="warblrb10k_public_wav.zip", labels="warblrb10k_public_metadata_2018.csv",
        labels_host=FigshareFile("10853306"),
        licence="CC BY 4.0 (per the DCASE 2018 task page)",
        citation="D. Stowell, M. Wood, H. Pamuła, Y. Stylianou, H. Glotin. Automatic acoustic detection of birds "
                 "through deep learning: the first Bird Audio Detection challenge. Methods in Ecology and "
                 "Evolution 10(3), 2019. doi:10.1111/2041-210X.13103",
        other_label_names=("warblrb10k_public_metadata.csv",)),
    "ff1010bird": BirdSet(
        name="ff1010bird", title="freefield1010 (ff1010bird): field recordings from Freesound, worldwide",
        clips=7690, approx_bytes=5_800_000_000, host=ArchiveOrgItem("ff1010bird"),
        archive="ff1010bird_wav.zip", labels="ff1010bird_metadata_2018.csv",
        labels_host=FigshareFile("10853303"),
        licence="CC BY 4.0 (per the DCASE 2018 task page)",
        citation="D. Stowell, M. D. Plumbley. An open dataset for research on audio field recording archives: "
                 "freefield1010. Proc. AES 53rd Conference on Semantic Audio, 2014",
        other_label_names=("ff1010bird_metadata.csv",)),
    "birdvox-dcase-20k": BirdSet(
        name="birdvox-dcase-20k", title="BirdVox-DCASE-20k: night flight calls, remote monitoring, Ithaca NY",
        clips=20000, approx_bytes=15_400_000_000, host=ZenodoRecord("1208080"),
        archive="BirdVox-DCASE-20k.zip", labels="BirdVoxDCASE20k_csvpublic.csv",
        labels_host=FigshareFile("10853300"),
        licence="CC BY 4.0 (per the Zenodo record)",
        citation="V. Lostanlen, J. Salamon, A. Farnsworth, S. Kelling, J. P. Bello. BirdVox-full-night: a dataset "
                 "and benchmark for avian flight call detection. Proc. IEEE ICASSP, 2018. "
                 "doi:10.5281/zenodo.1208080"),
}


def human_bytes(nbytes):
    """A byte count in decimal units, as the hosts state sizes.

    Examples
    --------
    >>> human_bytes(4_300_000_000), human_bytes(999)
    ('4.3 GB', '999 B')
    """
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
            f"{bird_set.name}: {bird_set.clips:,} clips, about {human_bytes(bird_set.approx_bytes)}",
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
