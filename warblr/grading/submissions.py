"""Finding a course's submissions: a folder of folders, a zip of them, or a Gradescope export.

:func:`find_submissions` turns what ``warblr grade batch SUBMISSIONS`` is given
into a sorted list of :class:`Entry` (one folder per submission, the
students who made it, a late flag when known). A zip is unpacked by
:func:`extract_zip`, which refuses -- naming the member -- any member that
is a link, an absolute path, climbs out with ``..``, or would pass the caps
on member count, one member's size or the total (sizes are counted on the
bytes actually inflated, so a zip bomb's lying headers do not help it). A
Gradescope "export submissions" archive holds ``submission_metadata.yml``
(read with PyYAML's ``safe_load``) beside one ``submission_<n>/`` folder per
submission; its submitters' names and student ids fill the gradebook, and
with a deadline (``--due``) its submission times give the late flags. A zip file inside a submissions folder is one submission, unpacked
the same way.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import InvalidArgumentError, SubmissionError

#: Caps of one archive (the course's zip or one student's zip).
MAX_MEMBERS = 50_000
MAX_MEMBER_BYTES = 64 << 20
MAX_TOTAL_BYTES = 4 << 30

#: Gradescope's metadata file at the top of an export.
GRADESCOPE_METADATA = "submission_metadata.yml"

_SAFE_ID = re.compile(r"[^A-Za-z0-9._@-]+")


@dataclass
class Student:
    """One student of a submission: ``id`` (student id, or the folder's name), ``name``, ``email``."""

    id: str
    name: str
    email: str = ""


@dataclass
class Entry:
    """One submission: its ``key`` (a file-name-safe id), its ``folder``, its ``students`` and ``late`` flag.

    ``late`` is True/False when the source says, else None. ``problem`` is
    set (and ``folder`` None) when the submission could not be unpacked.
    """

    key: str
    folder: Path | None
    students: list = field(default_factory=list)
    late: bool | None = None
    problem: str = ""


def safe_key(text):
    """A file-name-safe id from ``text`` (letters, digits, ``._@-``).

    Examples
    --------
    >>> safe_key("Jane Doe/../x")
    'Jane_Doe_.._x'
    """
    key = _SAFE_ID.sub("_", str(text)).strip("_") or "submission"
    return "_" + key if key.startswith(".") else key


def _member_problem(info):
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if ".." in path.parts:
        return "a path that climbs out of the archive (..)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        return "not a regular file"
    return None


def extract_zip(archive, target, *, max_members=MAX_MEMBERS, max_member_bytes=MAX_MEMBER_BYTES,
                max_total_bytes=MAX_TOTAL_BYTES):
    """Unpack ``archive`` into the new folder ``target``, refusing anything unsafe.

    Parameters
    ----------
    archive : str or os.PathLike
        A zip file.
    target : str or os.PathLike
        Folder to create.
    max_members, max_member_bytes, max_total_bytes : int, keyword-only
        Caps on the count of members, the inflated bytes of one member and of all.

    Returns
    -------
    pathlib.Path
        ``target``.

    Raises
    ------
    SubmissionError
        A member is a link, absolute, climbs out (``..``), or passes a cap
        (``path``: the member, ``reason``); nothing of the archive is kept then.
    """
    archive, target = Path(archive), Path(target)
    try:
        handle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionError(f"{archive}: not a readable zip file ({exc})", path=str(archive),
                              reason="not a readable zip file") from exc

    def refuse(member, reason):
        shutil.rmtree(target, ignore_errors=True)
        return SubmissionError(f"{archive}: member {member!r} refused: {reason}", path=member, reason=reason)

    target.mkdir(parents=True)
    total = 0
    with handle:
        members = handle.infolist()
        if len(members) > max_members:
            raise refuse(members[max_members].filename, f"more than {max_members} members")
        for info in members:
            problem = _member_problem(info)
            if problem:
                raise refuse(info.filename, problem)
            relative = PurePosixPath(info.filename.replace("\\", "/"))
            if not relative.parts or any(part.startswith("__MACOSX") for part in relative.parts):
                continue
            path = target.joinpath(*relative.parts)
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            try:
                with handle.open(info) as source, open(path, "xb") as out:
                    while chunk := source.read(1 << 20):
                        written += len(chunk)
                        total += len(chunk)
                        if written > max_member_bytes:
                            raise refuse(info.filename, f"inflates past {max_member_bytes} bytes")
                        if total > max_total_bytes:
                            raise refuse(info.filename, f"the archive inflates past {max_total_bytes} bytes")
                        out.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise refuse(info.filename, f"cannot be unpacked ({exc})") from exc
    return target


def _moment(value, what):
    """A timezone-aware datetime from a YAML timestamp or ISO text (naive ones are taken as local time)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace(" -", "-").replace(" +", "+"))
        except ValueError:
            raise InvalidArgumentError(f"{what}: not a date and time: {value!r} (use ISO 8601, e.g. "
                                       "2026-12-01T23:59-08:00)", parameter="due") from None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.astimezone()


def read_gradescope_metadata(path, *, due=None):
    """``{submission folder name: (students, late)}`` from Gradescope's ``submission_metadata.yml``.

    The file maps each ``submission_<n>`` folder to ``:submitters:`` (each
    with ``:name:``, ``:sid:``, ``:email:``) and ``:created_at:``; a
    submitter without a student id is known by the folder name. ``late`` is
    ``:created_at:`` after ``due`` when ``due`` is given, else the export's
    ``:late:`` where it has one, else None.

    Raises
    ------
    InvalidArgumentError
        The file is not YAML or not such a mapping (``parameter="submissions"``).
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidArgumentError(f"{path}: cannot read Gradescope's metadata ({exc})",
                                   parameter="submissions") from exc
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{path}: expected a mapping of submission folders", parameter="submissions")
    out = {}
    for folder, record in data.items():
        record = record if isinstance(record, dict) else {}
        students = []
        for submitter in record.get(":submitters") or []:
            submitter = submitter if isinstance(submitter, dict) else {}
            sid = str(submitter.get(":sid") or "").strip() or str(folder)
            students.append(Student(id=sid, name=str(submitter.get(":name") or sid),
                                    email=str(submitter.get(":email") or "")))
        late = record.get(":late")
        created = _moment(record.get(":created_at"), f"{path}: {folder}: :created_at") \
            if record.get(":created_at") else None
        if due is not None and created is not None:
            late = created > due
        out[str(folder)] = (students or [Student(id=str(folder), name=str(folder))],
                            None if late is None else bool(late))
    return out


def _unwrap(folder):
    """Descend through single wrapping folders (``export/`` inside a zip) to the one holding the submissions."""
    while True:
        children = [child for child in folder.iterdir() if not child.name.startswith((".", "__MACOSX"))]
        if (folder / GRADESCOPE_METADATA).is_file() or len(children) != 1 or not children[0].is_dir() \
                or children[0].is_symlink():
            return folder
        if any((children[0] / f"{name}.py").is_file() for name in ("resampling", "logmel", "embedding", "classify")):
            return folder  # the only child is itself a submission
        folder = children[0]


def submission_root(folder):
    """The folder of a student's unpacked zip that holds their code: through one wrapping folder if there is one."""
    folder = Path(folder)
    while not any(folder.glob("*.py")) and not (folder / "exercises").is_dir():
        children = [child for child in folder.iterdir() if not child.name.startswith((".", "__MACOSX"))]
        if len(children) != 1 or not children[0].is_dir() or children[0].is_symlink():
            break
        folder = children[0]
    return folder


def find_submissions(source, *, scratch, due=None):
    """The submissions in ``source``, sorted by key.

    Parameters
    ----------
    source : str or os.PathLike
        A folder of submission folders (or of zip files, one per submission),
        a zip of such a folder, or a Gradescope export (folder or zip).
    scratch : str or os.PathLike
        An empty folder where zips are unpacked.
    due : str or datetime.datetime, optional
        The deadline (ISO 8601): a Gradescope submission created after it is late.

    Returns
    -------
    list of Entry
        One per submission; one whose zip was refused has ``problem`` set.

    Raises
    ------
    InvalidArgumentError
        ``source`` is missing or neither a folder nor a zip (``parameter="submissions"``).
    """
    source, scratch = Path(source), Path(scratch)
    if source.is_file() and zipfile.is_zipfile(source):
        source = _unwrap(extract_zip(source, scratch / "archive"))
    elif not source.is_dir():
        raise InvalidArgumentError(f"SUBMISSIONS {source}: not a folder or a zip file", parameter="submissions")
    due = _moment(due, "--due") if due is not None else None
    metadata = read_gradescope_metadata(source / GRADESCOPE_METADATA, due=due) \
        if (source / GRADESCOPE_METADATA).is_file() else {}
    entries = {}
    for child in sorted(source.iterdir()):
        if child.name.startswith((".", "__MACOSX")) or child.name == GRADESCOPE_METADATA or child.is_symlink():
            continue
        stem = child.name[:-4] if child.suffix.lower() == ".zip" else child.name
        if not (child.is_dir() or (child.is_file() and zipfile.is_zipfile(child))):
            continue
        students, late = metadata.get(stem, ([Student(id=stem, name=stem)], None))
        key = safe_key(students[0].id if metadata else stem)
        while key in entries:  # two folders that differ only in unsafe characters
            key += "_"
        entry = entries[key] = Entry(key=key, folder=child, students=students, late=late)
        if child.is_file():
            try:
                entry.folder = submission_root(extract_zip(child, scratch / "students" / key))
            except SubmissionError as exc:
                entry.folder, entry.problem = None, str(exc)
    return [entries[key] for key in sorted(entries)]
