"""Finding a course's submissions: a folder of folders, a zip of them, or a Gradescope export.

:func:`find_submissions` turns what ``warblr grade batch SUBMISSIONS`` is given
into a sorted list of :class:`Entry` (one folder per submission, the
students who made it, a late flag when known). A zip is unpacked by
:func:`extract_zip`, which refuses -- naming the member -- any member that
is a link, an absolute path, climbs out with ``..``, has a name longer than
a file system allows, clashes with another member (a file ``a`` and a member
``a/b.py``), or would pass the caps of :class:`ArchiveLimits` on members,
files, folders, depth, one member's size or the total (sizes are counted on
the bytes actually inflated, so a zip bomb's lying headers do not help it).
A student's zip gets intake's own limits (:class:`~warblr.grading.intake.IntakeLimits`),
so nothing is written that intake would refuse anyway; a course's archive
holds a whole class and gets larger ones, but a bad member in it costs only
the submission it belongs to, and so do that submission's own caps (members
and bytes): what one submission holds is charged to it, never to the class.
Names intake skips (dotfiles, caches, the student's own tests) are never unpacked.

A Gradescope "export submissions" archive holds ``submission_metadata.yml``
(read by :func:`read_gradescope_metadata`: size-capped, no anchors, aliases or
duplicate keys, plain text fields) beside one ``submission_<n>/`` folder per
submission; its submitters' names and student ids fill the gradebook, and
with a deadline (``--due``) its submission times give the late flags. A zip
file inside a submissions folder is one submission, unpacked the same way
(with ``lazy=True``, only when :meth:`Entry.unpacked` is entered, one at a time).
"""

from __future__ import annotations

import functools
import hashlib
import lzma
import os
import re
import shutil
import stat
import struct
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path, PurePosixPath

from ..errors import InvalidArgumentError, SubmissionError
from .failures import clean_text
from .intake import MAX_DEPTH, IntakeLimits, printable, skipped

#: Default caps of an archive: members in its directory, one member's and all members' inflated bytes.
MAX_MEMBERS = 50_000
MAX_MEMBER_BYTES = 64 << 20
MAX_TOTAL_BYTES = 4 << 30

#: Caps of one submission in a course's archive (the members below its ``submission_<n>/``, or its zip): all that
#: one student controls. Past either, that submission alone is refused. Intake keeps at most 200 files and 200
#: folders and 20 MiB (a submission past those is refused there, with intake's message); the caps are well above.
MAX_SUBMISSION_MEMBERS = 2_000
MAX_SUBMISSION_BYTES = MAX_MEMBER_BYTES

#: Caps of a course's archive as a whole (a Gradescope export or a zip of the submissions): the disk and the time
#: a hostile export may cost. They count only what the submissions' own caps let through, so one submission adds at
#: most MAX_SUBMISSION_MEMBERS members and MAX_SUBMISSION_BYTES + 1 MiB inflated bytes (1/50 and 1/63 of them): it
#: takes some 50 submissions at their caps to reach them, while 1,000 honest ones (Python modules of some kilobytes,
#: 5 to 20 members each) use at most a fifth of the members and well under 1 % of the bytes.
MAX_COURSE_MEMBERS = 100_000
MAX_COURSE_BYTES = MAX_TOTAL_BYTES

#: Folders a student's zip may wrap their code in (``my-lab/``, ``my-lab/submission/``) above intake's depth.
WRAPPING_FOLDERS = 2

#: Longest name of one file or folder in an archive, in bytes of UTF-8: NAME_MAX of Linux file systems.
MAX_NAME_BYTES = 255

#: Longest :func:`safe_key`: a readable prefix of the id and a hash of all of it (a file name everywhere).
MAX_KEY = 64

#: Largest ``submission_metadata.yml``: about 250 bytes a submitter, so room for 30,000 of them.
MAX_METADATA_BYTES = 8 << 20

#: Deepest nesting of ``submission_metadata.yml`` (Gradescope's own is 4 levels).
MAX_METADATA_DEPTH = 16

#: Gradescope's metadata file at the top of an export.
GRADESCOPE_METADATA = "submission_metadata.yml"

#: Bytes inflated at a time: a member past a cap is read at most this far beyond it.
CHUNK_BYTES = 1 << 20

#: Most characters of a bad value a message quotes (a hostile file's value can be megabytes).
MAX_SHOWN = 60

_SAFE_ID = re.compile(r"[^A-Za-z0-9._@-]+")

#: What a hostile zip can make zipfile raise while it is read or inflated.
_UNPACK_ERRORS = (OSError, EOFError, RuntimeError, ValueError, struct.error, zipfile.BadZipFile, zlib.error,
                  lzma.LZMAError)


@dataclass(frozen=True)
class ArchiveLimits:
    """How much one zip may unpack to.

    Parameters
    ----------
    max_members : int
        Most members in the archive's directory (skipped ones too). With
        group caps (a course's archive): most members unpacked, so neither
        skipped names nor the members of a refused group count.
    max_member_bytes : int
        Most inflated bytes of one member.
    max_total_bytes : int
        Most inflated bytes of all members (a refused member's too: each
        byte inflated is work done).
    max_files, max_folders : int or None
        Most files and folders written (None: only ``max_members`` bounds them).
    max_depth : int
        Most folder levels of a member's path.
    max_group_members, max_group_bytes : int or None
        Most members unpacked (skipped names not counted) and most inflated
        bytes below one top-level entry (one submission of a course's
        archive, below any folders common to all members). Past either, only
        that group is refused (given ``problems``, see :func:`extract_zip`).
    """

    max_members: int = MAX_MEMBERS
    max_member_bytes: int = MAX_MEMBER_BYTES
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_files: int | None = None
    max_folders: int | None = None
    max_depth: int = MAX_DEPTH + WRAPPING_FOLDERS + 2
    max_group_members: int | None = None
    max_group_bytes: int | None = None

    @property
    def grouped(self):
        """Whether the caps are charged per group (a course's archive) before the archive's."""
        return self.max_group_members is not None or self.max_group_bytes is not None

    @classmethod
    def for_submission(cls, intake=None):
        """A student's zip: intake's limits (``intake``, default :class:`IntakeLimits`) plus wrapping folders."""
        intake = intake or IntakeLimits()
        return cls(max_member_bytes=intake.max_file_bytes, max_total_bytes=intake.max_total_bytes,
                   max_files=intake.max_files, max_folders=intake.max_folders + WRAPPING_FOLDERS,
                   max_depth=intake.max_depth + WRAPPING_FOLDERS)


#: A course's archive: the class's submissions (``export/submission_<n>/`` and a student's wrapping folders).
COURSE_ARCHIVE = ArchiveLimits(max_members=MAX_COURSE_MEMBERS, max_total_bytes=MAX_COURSE_BYTES,
                               max_group_members=MAX_SUBMISSION_MEMBERS, max_group_bytes=MAX_SUBMISSION_BYTES)


@dataclass
class Entry:
    """One submission: its ``key`` (a file-name-safe id), its ``folder``, its ``students`` and ``late`` flag.

    ``late`` is True/False when the source says, else None. ``problem`` is
    set (and ``folder`` None) when the submission could not be unpacked.
    ``note`` says what of its metadata could not be read without stopping
    its grading (a bad ``:created_at:``: ``late`` is None then); the
    instructor should see it.
    ``archive`` is a student's zip not unpacked yet (``lazy``), to be
    unpacked into ``target`` by :meth:`unpacked`.
    """

    key: str
    folder: Path | None
    students: list = field(default_factory=list)
    late: bool | None = None
    problem: str = ""
    note: str = ""
    archive: Path | None = None
    target: Path | None = None

    @contextmanager
    def unpacked(self):
        """The submission's folder for the time of a ``with``: a zip is unpacked on entry and removed on exit.

        Raises
        ------
        SubmissionError
            The submission has a ``problem``, or its zip is refused.
        """
        if self.problem:
            raise SubmissionError(self.problem, path=str(self.archive or self.folder or self.key),
                                  reason=self.problem)
        if self.archive is None:
            yield self.folder
            return
        try:
            yield _unpack_student_zip(self.archive, self.target)
        finally:
            shutil.rmtree(self.target, ignore_errors=True)


@dataclass
class Student:
    """One student of a submission: ``id`` (student id, or the folder's name), ``name``, ``email``."""

    id: str
    name: str
    email: str = ""


def _hashed(key, text):
    """``key`` cut to :data:`MAX_KEY` characters, ending in a short hash of ``text`` (so still unique)."""
    digest = hashlib.sha256(str(text).encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{key[:MAX_KEY - len(digest) - 1]}-{digest}"


def safe_key(text):
    """A file-name-safe id from ``text`` (letters, digits, ``._@-``), at most :data:`MAX_KEY` characters.

    A longer id keeps a readable prefix and ends in a hash of the whole of ``text``.

    Examples
    --------
    >>> safe_key("Jane Doe/../x")
    'Jane_Doe_.._x'
    >>> len(safe_key("9" * 300)), safe_key("9" * 300) == safe_key("9" * 301)
    (64, False)
    """
    key = _SAFE_ID.sub("_", str(text)).strip("_") or "submission"
    key = "_" + key if key.startswith(".") else key
    return _hashed(key, text) if len(key) > MAX_KEY else key


def _unique_key(key, taken):
    """``key``, with ``_`` added while ``taken`` has it (ids that differ only in unsafe characters); still capped."""
    while key in taken:
        key = key + "_" if len(key) < MAX_KEY else _hashed(key, key + "_")
    return key


def _path_problem(info):
    """Why a member's path is unsafe wherever it would go (None if it is not)."""
    return _path_problem_text(info.filename)


def _path_problem_text(name):
    """Why the member name ``name`` is unsafe wherever it would go (None if it is not)."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "a path that climbs out of the archive (..)"
    return None


def _kind_problem(info):
    """Why a member is not a plain file or folder (None if it is)."""
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        return "not a regular file"
    return None


def _ignored(parts):
    """Whether a member is never unpacked: macOS's ``__MACOSX`` copies and every name intake skips."""
    return any(part.startswith("__MACOSX") or skipped(part) for part in parts)


def _why(exc):
    """A one-line reason from an exception of the file system or of zipfile (no paths of ours)."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or exc.__class__.__name__
    return " ".join(clean_text(text).split())[:200]


class _Refused(Exception):
    """A member refused (``member``, ``reason``); ``whole``: the archive's cap, not the member's fault alone."""

    def __init__(self, member, reason, whole=False):
        super().__init__(reason)
        self.member, self.reason, self.whole = member, reason, whole


def _common_folders(infos):
    """The folders every unpacked member lies in (a course archive's ``export/``), as a tuple of names."""
    common = None
    for info in infos:
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if not parts or _ignored(parts):
            continue
        folders = parts if info.is_dir() else parts[:-1]
        common = folders if common is None else common[:_shared(common, folders)]
    return common or ()


def _shared(a, b):
    """How many leading names ``a`` and ``b`` share."""
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


class _Unpacker:
    """Unpacks members one by one into ``target``, keeping the counts the limits need.

    A group is the first name below ``prefix`` (the folders common to all
    members): one submission of a course's archive. Its members and bytes are
    charged to it first; the archive's counts take only what its caps let
    through. A group in ``refused`` is passed over: its members are not read.
    """

    def __init__(self, handle, target, limits, prefix):
        self.handle, self.target, self.limits, self.prefix = handle, target, limits, prefix
        self.kinds = {(): "folder"}  # member path (tuple of names) -> "file" or "folder"
        self.files = self.folders = self.total = self.members = 0
        self.group_members, self.group_bytes, self.refused = {}, {}, set()

    def _group(self, parts):
        """The group of a member's path ``parts`` ("" for the folders above every group)."""
        return parts[len(self.prefix)] if len(parts) > len(self.prefix) else ""

    def refuse(self, info):
        """Pass over the rest of ``info``'s group: a member of it was refused, which costs the whole group."""
        self.refused.add(self._group(PurePosixPath(info.filename.replace("\\", "/")).parts))

    def member(self, info):
        """Unpack one member, or raise :class:`_Refused`."""
        name = info.filename
        problem = _path_problem(info)
        if problem:
            raise _Refused(name, problem)
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if not parts or _ignored(parts):
            return  # never written, so its kind does not matter
        group = self._group(parts)
        if group in self.refused:
            return  # its group is refused already: not read, not counted
        problem = _kind_problem(info) or self._shape_problem(parts, info.is_dir())
        if problem:
            raise _Refused(name, problem)
        self._count(name, group)
        self._note(name, parts, info.is_dir())
        path = self.target.joinpath(*parts)
        try:
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._inflate(info, path, group)
        except _UNPACK_ERRORS as exc:
            raise _Refused(name, f"cannot be unpacked ({_why(exc)})") from None

    def _shape_problem(self, parts, is_dir):
        """Why a member's path cannot be made here: too long a name, too deep, or a clash with another member."""
        limits = self.limits
        if any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for part in parts):
            return f"a name longer than {MAX_NAME_BYTES} bytes"
        if len(parts) - (0 if is_dir else 1) > limits.max_depth:
            return f"folders nested deeper than {limits.max_depth} levels"
        for end in range(1, len(parts)):
            if self.kinds.get(parts[:end]) == "file":
                return f"lies inside {'/'.join(parts[:end])!r}, which the archive also holds as a file"
        kind = self.kinds.get(parts)
        if kind == "file":
            return "appears twice in the archive" if not is_dir else "is also a file in the archive"
        if kind == "folder" and not is_dir:
            return "is also a folder in the archive"
        return None

    def _count(self, name, group):
        """Charge one member to its group, then (with group caps) to the archive; refuse past a cap."""
        limits = self.limits
        if not limits.grouped:
            return  # the archive's directory was counted as a whole before any member
        if limits.max_group_members is not None:
            count = self.group_members[group] = self.group_members.get(group, 0) + 1
            if count > limits.max_group_members:
                raise _Refused(name, f"{group!r} holds more than {limits.max_group_members} members")
        self.members += 1
        if self.members > limits.max_members:
            raise _Refused(name, f"the archive unpacks more than {limits.max_members} members", whole=True)

    def _note(self, name, parts, is_dir):
        """Record the member and the folders it makes; refuse the archive past the file or folder cap."""
        limits = self.limits
        for end in range(1, len(parts) + (1 if is_dir else 0)):
            if parts[:end] not in self.kinds:
                self.kinds[parts[:end]] = "folder"
                self.folders += 1
                if limits.max_folders is not None and self.folders > limits.max_folders:
                    raise _Refused(name, f"more than {limits.max_folders} folders", whole=True)
        if not is_dir:
            self.kinds[parts] = "file"
            self.files += 1
            if limits.max_files is not None and self.files > limits.max_files:
                raise _Refused(name, f"more than {limits.max_files} files", whole=True)

    def _inflate(self, info, path, group):
        """Write one member, counting the bytes actually inflated; a refused one leaves no file behind."""
        name = info.filename
        with self.handle.open(info) as source:
            out = open(path, "xb")  # noqa: SIM115 -- removed below if refused; never an earlier member's file
            try:
                with out:
                    self._copy(source, out, name, group)
            except BaseException:
                path.unlink(missing_ok=True)
                raise

    def _copy(self, source, out, name, group):
        """Inflate ``source`` into ``out`` chunk by chunk, refusing as soon as a cap is passed.

        The member's and its group's caps come before the archive's: a chunk
        that takes a group past its cap refuses that group, and inflates no
        further (nor does any later member of the group). So a group inflates
        at most its cap and one chunk, all of which the archive's total counts.
        """
        limits, written = self.limits, 0
        while chunk := source.read(CHUNK_BYTES):
            written += len(chunk)
            self.total += len(chunk)
            in_group = self.group_bytes[group] = self.group_bytes.get(group, 0) + len(chunk)
            if written > limits.max_member_bytes:
                raise _Refused(name, f"inflates past {limits.max_member_bytes} bytes")
            if limits.max_group_bytes is not None and in_group > limits.max_group_bytes:
                raise _Refused(name, f"{group!r} inflates past {limits.max_group_bytes} bytes")
            if self.total > limits.max_total_bytes:
                raise _Refused(name, f"the archive inflates past {limits.max_total_bytes} bytes", whole=True)
            out.write(chunk)


#: A course archive's directory may hold this many times ``max_members`` entries before zipfile reads it (names
#: skipped unread, .git's objects say, are not counted as unpacked; past this the directory alone costs memory).
DIRECTORY_SLACK = 4

#: Bytes of a central directory entry before its name, extra field and comment.
_ENTRY_HEADER_SIZE = 46


def directory_entries(file, *, stop_after):
    """Entries in a zip's central directory, counted without reading them into objects (up to ``stop_after`` + 1).

    ``zipfile.ZipFile`` builds an object for every entry of the directory
    before anyone can look at the count: a directory of millions of 46-byte
    entries costs the grader gigabytes of memory. This walks the same
    entries zipfile would (the directory's bytes, from its end record) and
    stops once past ``stop_after``.

    Parameters
    ----------
    file : binary file
        The archive, open for reading (seekable).
    stop_after : int
        Count no further than ``stop_after + 1``.

    Returns
    -------
    int or None
        The count (at most ``stop_after + 1``), or None where this Python's
        zipfile has no end-record reader (zipfile's own checks apply then).

    Raises
    ------
    zipfile.BadZipFile
        No end of central directory record.
    """
    find_end = getattr(zipfile, "_EndRecData", None)
    if find_end is None:  # pragma: no cover -- zipfile's internals moved
        return None
    end = find_end(file)
    if end is None:
        raise zipfile.BadZipFile("no end of central directory record")
    size, location = end[zipfile._ECD_SIZE], end[zipfile._ECD_LOCATION]
    start = location - size  # as zipfile finds it, with data prepended to the archive
    if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
        start -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
    if start < 0:
        raise zipfile.BadZipFile("bad offset for central directory")
    file.seek(start)
    count = walked = 0
    while walked < size and count <= stop_after:
        header = file.read(_ENTRY_HEADER_SIZE)
        if len(header) < _ENTRY_HEADER_SIZE or header[:4] != zipfile.stringCentralDir:
            break  # zipfile refuses it when it gets there
        names, extra, comment = struct.unpack_from("<HHH", header, 28)
        file.seek(names + extra + comment, os.SEEK_CUR)
        walked += _ENTRY_HEADER_SIZE + names + extra + comment
        count += 1
    return count


def _limits_with(limits, **caps):
    """``limits`` with the caps given (not None) put in."""
    return replace(limits, **{name: value for name, value in caps.items() if value is not None})


def _refusal(archive, member, reason):
    shown = repr(member) if len(member) <= 200 else repr(member[:200]) + "..."  # repr: no control characters
    return f"{printable(archive)}: member {shown} refused: {reason}"


def extract_zip(archive, target, *, limits=None, problems=None, max_members=None, max_member_bytes=None,
                max_total_bytes=None):
    """Unpack ``archive`` into the new folder ``target``, refusing anything unsafe.

    Parameters
    ----------
    archive : str or os.PathLike
        A zip file.
    target : str or os.PathLike
        Folder to create.
    limits : ArchiveLimits, optional
        Default ``ArchiveLimits.for_submission()``: a student's zip, intake's limits.
    problems : list, optional
        Given, a member refused on its own (unsafe, too long, too deep, too
        large, a clash, unreadable, past its group's caps) is left out and
        ``(member, reason)`` is appended to it; the rest of its group (the
        first name below the folders common to all members: one submission)
        is then passed over unread. The archive's own caps still refuse it all.
    max_members, max_member_bytes, max_total_bytes : int, keyword-only
        Caps that replace those of ``limits``.

    Returns
    -------
    pathlib.Path
        ``target``.

    Raises
    ------
    SubmissionError
        The archive is not a readable zip, or a member is refused (``path``:
        the member, ``reason``); nothing of the archive is kept then.
    """
    archive, target = Path(archive), Path(target)
    limits = _limits_with(limits or ArchiveLimits.for_submission(), max_members=max_members,
                          max_member_bytes=max_member_bytes, max_total_bytes=max_total_bytes)
    most = limits.max_members * (DIRECTORY_SLACK if limits.grouped else 1)
    try:
        with open(archive, "rb") as file:
            entries = directory_entries(file, stop_after=most)
        if entries is not None and entries > most:
            raise SubmissionError(f"{printable(archive)}: more than {most} members in its directory (refused before "
                                  "reading them)", path=str(archive), reason=f"more than {most} members")
        handle = zipfile.ZipFile(archive)
        members = handle.infolist()
    except _UNPACK_ERRORS as exc:
        raise SubmissionError(f"{printable(archive)}: not a readable zip file ({_why(exc)})", path=str(archive),
                              reason="not a readable zip file") from None
    target.mkdir(parents=True)
    try:
        with handle:
            if not limits.grouped and len(members) > limits.max_members:  # grouped: counted as unpacked
                raise _Refused(members[limits.max_members].filename, f"more than {limits.max_members} members")
            unpacker = _Unpacker(handle, target, limits, _common_folders(members))
            for info in members:
                try:
                    unpacker.member(info)
                except _Refused as refused:
                    if problems is None or refused.whole:
                        raise
                    problems.append((refused.member, refused.reason))
                    unpacker.refuse(info)
    except _Refused as refused:
        shutil.rmtree(target, ignore_errors=True)
        raise SubmissionError(_refusal(archive, refused.member, refused.reason), path=refused.member,
                              reason=refused.reason) from None
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def _shortened(value):
    """``value`` as printable text of at most :data:`MAX_SHOWN` characters (``...`` where cut)."""
    text = str(value)
    return printable(text[:MAX_SHOWN]) + ("..." if len(text) > MAX_SHOWN else "")


def _moment(value):
    """A datetime (naive where it names no time zone) from a datetime or ISO 8601 text; ValueError saying why not."""
    if isinstance(value, str):
        try:  # Gradescope writes "2026-12-01 10:00:00.000000000 -08:00": no space before the offset for ISO
            return datetime.fromisoformat(value.strip().replace(" -", "-").replace(" +", "+"))
        except ValueError:
            raise ValueError(f"not a date and time: '{_shortened(value)}'") from None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):  # a day without a time cannot say whether a deadline that day was met
        raise ValueError(f"a date without a time: {value}")
    raise ValueError(f"expected a date and time, got {type(value).__name__}")


def parse_due(value):
    """The deadline ``--due`` as a timezone-aware datetime (naive: the user's own local time).

    Raises
    ------
    InvalidArgumentError
        ``value`` is not a date and time; the message names ``--due`` (the
        user's argument, so the batch stops before grading anything).

    Examples
    --------
    >>> parse_due("2026-12-01 23:59 -08:00").isoformat()
    '2026-12-01T23:59:00-08:00'
    """
    hint = "(use ISO 8601, e.g. 2026-12-01T23:59-08:00)"
    try:
        moment = _moment(value)
    except ValueError as exc:
        raise InvalidArgumentError(f"--due: {exc} {hint}", parameter="due") from None
    try:
        return moment if moment.tzinfo is not None else moment.astimezone()
    except (ValueError, OverflowError, OSError):  # a year the platform's clock cannot place (0001-01-01)
        raise InvalidArgumentError(f"--due: out of range: '{_shortened(value)}' {hint}", parameter="due") from None


def _created_at(value):
    """``(time, '')`` from a record's ``:created_at:``, or ``(None, why)`` when it cannot say when.

    A time without a zone is refused rather than guessed: it came from
    Gradescope's server, not the grader's clock, and a guess hours off
    would mark a student late.
    """
    try:
        moment = _moment(value)
    except ValueError as exc:
        return None, str(exc)
    if moment.tzinfo is None:
        return None, f"no time zone: '{_shortened(value)}'"
    return moment, ""


def _read_capped(path, cap):
    """The bytes of the regular file ``path`` (not a link, a FIFO, a device), refused past ``cap`` bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise ValueError(f"larger than {cap} bytes")
    return data


@functools.lru_cache(maxsize=None)
def _strict_loader():
    """PyYAML's SafeLoader without what a hostile file could abuse (built on first use: yaml loads lazily).

    Anchors and aliases are refused (a few hundred bytes of nested aliases
    expand to gigabytes: "billion laughs"), and so are merge keys (``<<``),
    duplicate keys (a second ``submission_1`` would silently replace the
    first) and nesting deeper than :data:`MAX_METADATA_DEPTH` (recursion).
    A timestamp that is no real time (``2026-02-30``) stays text: it costs
    its own record's late flag, not the whole file.
    """
    import yaml
    from yaml.composer import ComposerError
    from yaml.constructor import ConstructorError

    class StrictLoader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise ComposerError(None, None, "anchors and aliases (& and *) are not allowed", event.start_mark)
            if self.depth >= MAX_METADATA_DEPTH:
                raise ComposerError(None, None, f"nested deeper than {MAX_METADATA_DEPTH} levels",
                                    event.start_mark)
            self.depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        raise ConstructorError(None, None, "merge keys (<<) are not allowed", key_node.start_mark)
                    key = self.construct_object(key_node, deep=True)
                    try:
                        duplicate = key in seen
                        seen.add(key)
                    except TypeError:
                        continue  # an unhashable key: the base class refuses it
                    if duplicate:
                        raise ConstructorError(None, None, f"duplicate key {repr(key)[:80]}", key_node.start_mark)
            return super().construct_mapping(node, deep=deep)

        def construct_yaml_timestamp(self, node):
            try:
                return super().construct_yaml_timestamp(node)
            except (ValueError, OverflowError):  # 2026-02-30: kept as text, for the reader to name in its record
                return self.construct_scalar(node)

    StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", StrictLoader.construct_yaml_timestamp)
    return StrictLoader


def _load_metadata(path):
    """The parsed metadata file, or InvalidArgumentError naming it."""
    import yaml

    try:
        text = _read_capped(path, MAX_METADATA_BYTES).decode("utf-8")
        return yaml.load(text, Loader=_strict_loader())  # noqa: S506 -- a SafeLoader, stricter
    except (OSError, ValueError, yaml.YAMLError, RecursionError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidArgumentError(f"{printable(path)}: cannot read Gradescope's metadata ({clean_text(reason)})",
                                   parameter="submissions") from None


def _text_field(value, where, *, numbers=False):
    """A name, email or (``numbers``: also an integer) student id as one line of text; '' when absent."""
    if value is None:
        return ""
    if isinstance(value, str) or numbers and isinstance(value, int) and not isinstance(value, bool):
        return " ".join(clean_text(value).split())  # one printable line: no escapes, no injected lines
    raise InvalidArgumentError(f"{where}: expected text, got {type(value).__name__}", parameter="submissions")


def _students(record, folder, where):
    """The :class:`Student` list of one submission's record (its folder name stands in for a missing id)."""
    submitters = record.get(":submitters")
    if submitters is None:
        submitters = []
    if not isinstance(submitters, list):
        raise InvalidArgumentError(f"{where}: :submitters: expected a list", parameter="submissions")
    students = []
    for number, submitter in enumerate(submitters, 1):
        at = f"{where}: submitter {number}"
        if not isinstance(submitter, dict):
            raise InvalidArgumentError(f"{at}: expected a mapping", parameter="submissions")
        sid = _text_field(submitter.get(":sid"), f"{at}: :sid", numbers=True) or folder
        students.append(Student(id=sid, name=_text_field(submitter.get(":name"), f"{at}: :name") or sid,
                                email=_text_field(submitter.get(":email"), f"{at}: :email")))
    return students or [Student(id=folder, name=folder)]


def read_gradescope_metadata(path, *, due=None, problems=None):
    """``{submission folder name: (students, late)}`` from Gradescope's ``submission_metadata.yml``.

    The file maps each ``submission_<n>`` folder to ``:submitters:`` (each
    with ``:name:``, ``:sid:``, ``:email:``) and ``:created_at:``; a
    submitter without a student id is known by the folder name. ``late`` is
    ``:created_at:`` after ``due`` when ``due`` is given, else the export's
    ``:late:`` where it has one, else None. The file is read as hostile: at
    most :data:`MAX_METADATA_BYTES`, no anchors, aliases, merge or duplicate
    keys, names, emails and ids plain text (an id may be an integer).

    Parameters
    ----------
    path : str or os.PathLike
        The metadata file.
    due : str or datetime.datetime, optional
        The deadline (ISO 8601 text: naive is local time).
    problems : list, optional
        Given, a record whose ``:created_at:`` cannot say when (when ``due``
        is given: not a date and time, no time zone) gets ``late`` None and
        ``(folder, message)`` is appended to it; the message names the file,
        the folder and the value.

    Raises
    ------
    InvalidArgumentError
        The file is too large, not YAML, uses what is refused above, or is
        not such a mapping, or (without ``problems``) a ``:created_at:`` is
        bad; the message names the file (``parameter="submissions"``). A bad
        ``due`` is named as ``--due`` (``parameter="due"``).
    """
    due = parse_due(due) if due is not None else None
    data = _load_metadata(path)
    shown = printable(path)
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{shown}: expected a mapping of submission folders", parameter="submissions")
    out = {}
    for folder, record in data.items():
        folder, where = str(folder), f"{shown}: {printable(folder)}"
        if folder in out:  # 1 and '1': two keys, one folder
            raise InvalidArgumentError(f"{where}: listed twice", parameter="submissions")
        record = record if isinstance(record, dict) else {}
        late = record.get(":late")
        if late is not None and not isinstance(late, bool):
            raise InvalidArgumentError(f"{where}: :late: expected true or false", parameter="submissions")
        if due is not None:
            late = _late(record, due, where, folder, problems, otherwise=late)
        out[folder] = (_students(record, folder, where), late)
    return out


def _late(record, due, where, folder, problems, *, otherwise):
    """Whether ``record`` was created after ``due``: ``otherwise`` without a time, None for a bad one.

    A bad ``:created_at:`` is one student's lateness unknown, not a reason to
    stop grading the class: it goes to ``problems`` for the instructor.
    """
    value = record.get(":created_at")
    if value is None or isinstance(value, str) and not value.strip():
        return otherwise
    created, why = _created_at(value)
    if created is not None:
        return created > due
    problem = f":created_at: {why} (late flag left unknown)"
    if problems is None:
        raise InvalidArgumentError(f"{where}: {problem}", parameter="submissions")
    # Named by the file's own name: the note reaches the student's page, the grader's paths need not.
    problems.append((folder, f"{GRADESCOPE_METADATA}: {printable(folder)}: {problem}"))
    return None


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


def _unpack_student_zip(archive, target):
    """The code folder of a student's zip unpacked into ``target`` (intake's limits); SubmissionError if refused."""
    folder = extract_zip(archive, target)
    try:
        return submission_root(folder)
    except OSError as exc:
        raise SubmissionError(f"{printable(archive)}: cannot be read after unpacking ({_why(exc)})",
                              path=str(archive), reason="unreadable") from None


def _unpack_course(source, scratch):
    """Unpack a course's archive: ``(folder holding the submissions, {child name: problem})``.

    A member refused on its own is charged to the submission it lies in (the
    first name below the submissions' folder), as is passing that submission's
    own caps (members, bytes); the rest of it is not read, the others are
    unpacked. A file beside the submissions is charged to itself (listed as
    refused); a refused ``submission_metadata.yml``, or a member above the
    submissions' folder or unsafe wherever it goes, refuses the archive.
    """
    problems, root = [], scratch / "archive"
    folder = _unwrap(extract_zip(source, root, limits=COURSE_ARCHIVE, problems=problems))
    charged = {}
    below = folder.relative_to(root).parts
    for member, reason in problems:
        parts = PurePosixPath(member.replace("\\", "/")).parts
        inside = parts[len(below):] if parts[:len(below)] == below and _path_problem_text(member) is None else ()
        if not inside or inside == (GRADESCOPE_METADATA,):  # not one submission's: the export itself is bad
            raise SubmissionError(_refusal(source, member, reason), path=member, reason=reason)
        charged.setdefault(inside[0], _refusal(source, member, reason))  # the first problem says enough
    return folder, charged


def _children(source, charged):
    """``[(stem, child path or None, problem)]``: the submissions in ``source`` and those charged a problem."""
    found = {}
    for child in sorted(source.iterdir()):
        if child.name.startswith((".", "__MACOSX")) or child.name == GRADESCOPE_METADATA or child.is_symlink():
            continue
        if child.is_dir() or (child.is_file() and zipfile.is_zipfile(child)):
            found[child.name] = child
    for name in charged:
        found.setdefault(name, None)
    return [(name[:-4] if name.lower().endswith(".zip") else name, found[name], charged.get(name, ""))
            for name in sorted(found)]


def find_submissions(source, *, scratch, due=None, lazy=False):
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
    lazy : bool
        Leave students' zips packed: each is unpacked when its
        :meth:`Entry.unpacked` is entered (and removed after), so a batch
        holds one unpacked zip at a time and learns of a refused one then.

    Returns
    -------
    list of Entry
        One per submission; one whose zip (or whose members in the course's
        archive) was refused has ``problem`` set; one whose ``:created_at:``
        is bad (with ``due``) has ``note`` set and ``late`` None.

    Raises
    ------
    InvalidArgumentError
        ``source`` is missing or neither a folder nor a zip, or its
        Gradescope metadata is refused (``parameter="submissions"``), or
        ``due`` is not a date and time (``parameter="due"``).
    SubmissionError
        The course's archive itself is refused (unreadable, past its caps).
    """
    source, scratch = Path(source), Path(scratch)
    charged = {}
    if source.is_file() and zipfile.is_zipfile(source):
        source, charged = _unpack_course(source, scratch)
    elif not source.is_dir():
        raise InvalidArgumentError(f"SUBMISSIONS {printable(source)}: not a folder or a zip file",
                                   parameter="submissions")
    due = parse_due(due) if due is not None else None
    notes = []  # a bad :created_at: costs its submission's late flag, not the batch
    metadata = read_gradescope_metadata(source / GRADESCOPE_METADATA, due=due, problems=notes) \
        if (source / GRADESCOPE_METADATA).is_file() else {}
    notes = dict(notes)
    entries = {}
    for stem, child, problem in _children(source, charged):
        students, late = metadata.get(stem, ([Student(id=stem, name=stem)], None))
        key = _unique_key(safe_key(students[0].id if metadata else stem), entries)
        entry = entries[key] = Entry(key=key, folder=None if problem else child, students=students, late=late,
                                     problem=problem, note=notes.get(stem, ""))
        if problem or not child.is_file():
            continue
        entry.folder, entry.archive, entry.target = None, child, scratch / "students" / key
        if not lazy:
            try:
                entry.folder = _unpack_student_zip(child, entry.target)
            except SubmissionError as exc:
                entry.problem = str(exc)
            entry.archive = entry.target = None
    return [entries[key] for key in sorted(entries)]
