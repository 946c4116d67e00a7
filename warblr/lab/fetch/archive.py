"""Archive safety: which zip members may be extracted, and extracting a set's WAVs flat, hashed, into one folder.

Every member name is checked before anything is written: one unsafe member
(an absolute path, ``..``, a backslash or NUL, a symbolic link) refuses the
whole archive. The WAVs (by :func:`warblr.formats.is_wav_file`: any case of
``.wav``, never macOS resource forks) are written flat as ``<stem>.wav`` with
the lower-case suffix the dataset reader looks up, so ``X.WAV`` members are
found; two members that would land on one name are refused. Each file's
size and SHA-256 are computed while it is written (zip checks CRC-32), for
the fetch manifest.
"""

from __future__ import annotations

import errno
import hashlib
import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from ...errors import DatasetError, OutputError
from ...formats import WAV_SUFFIX, is_wav_file
from .sets import human_bytes

__all__ = ["AUDIO_DIR", "check_space", "unsafe_member", "installed_name", "extract_wavs"]

#: The folder of the installed set that holds the WAVs (the layout ``--data`` reads).
AUDIO_DIR = "wav"
_CHUNK = 1 << 20


def check_space(folder, needed, what):
    """Refuse, before writing, when ``folder``'s disk has less than ``needed`` bytes free.

    Raises
    ------
    OutputError
        Naming the folder, what is free and what ``what`` needs.
    """
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OutputError(f"{folder}: {human_bytes(free)} free, {what} needs about {human_bytes(needed)}; free "
                          "space or choose a dest on another disk", path=Path(folder))


def unsafe_member(info):
    """Why a zip member may not be extracted, or None.

    Examples
    --------
    >>> unsafe_member(zipfile.ZipInfo("wav/../../etc/passwd"))
    "'..' in its path"
    >>> unsafe_member(zipfile.ZipInfo("wav/1.wav")) is None
    True
    """
    name = info.filename
    if "\\" in name or "\x00" in name:
        return "backslash or NUL in its name"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "absolute path"
    if ".." in PurePosixPath(name).parts:
        return "'..' in its path"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


def installed_name(member):
    """The file name a WAV member gets in the set's audio folder: its stem and a lower-case ``.wav``.

    Examples
    --------
    >>> installed_name("wav/64486.WAV")
    '64486.wav'
    """
    return PurePosixPath(member).stem + WAV_SUFFIX


def extract_wavs(archive, target, *, progress=True):
    """Extract the archive's WAV members, flat, into the new folder ``target``.

    Parameters
    ----------
    archive : pathlib.Path
    target : pathlib.Path
        Created here; its parent must exist.
    progress : bool, keyword-only

    Returns
    -------
    files : dict
        ``{"wav/<stem>.wav": [bytes, sha256]}``.
    skipped : list of str
        The members that are not WAVs (README files, resource forks).

    Raises
    ------
    DatasetError
        Not a zip, an unsafe member, no WAVs, two WAVs with one name, a damaged member.
    OutputError
        Not enough space, or a file cannot be written.
    """
    from tqdm.auto import tqdm

    try:
        zip_file = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{archive}: not a readable zip archive ({exc})", path=archive) from exc
    with zip_file:
        infos = zip_file.infolist()
        for info in infos:
            why = unsafe_member(info)
            if why:
                raise DatasetError(f"{archive}: unsafe member {info.filename!r} ({why}); the archive was refused "
                                   "and nothing was extracted", path=archive)
        audio = [info for info in infos if not info.is_dir() and is_wav_file(info.filename)]
        skipped = [info.filename for info in infos if not info.is_dir() and info not in audio]
        if not audio:
            raise DatasetError(f"{archive}: holds no WAV files", path=archive)
        seen = {}
        for info in audio:
            name = installed_name(info.filename)
            if name in seen:
                raise DatasetError(f"{archive}: two members are named {name} ({seen[name]}, {info.filename}); "
                                   "refused", path=archive)
            seen[name] = info.filename
        total = sum(info.file_size for info in audio)
        check_space(target.parent, total, f"extracting {Path(archive).name}")
        target.mkdir()
        files = {}
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"extract {Path(archive).name}",
                  disable=not progress, leave=False) as bar:
            for info in audio:
                name = installed_name(info.filename)
                files[f"{AUDIO_DIR}/{name}"] = _extract_one(zip_file, info, target / name, archive, bar)
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
