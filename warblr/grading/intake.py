"""Taking in a submission: regular files only, read without following anything, copied by content.

Every path by which a student's files reach the grader (``warblr grade run``,
``pytest exercises --isolate``, Gradescope's ``run_autograder``) goes
through :func:`take_in`. It first walks the whole folder with ``lstat``
(``os.scandir`` on directory file descriptors opened ``O_NOFOLLOW``) and
refuses the submission -- before reading a byte of any file -- if it holds a
symbolic link, a device, a FIFO, a socket, a hard-linked file, more files or
deeper folders than allowed, or a file or total over the size limits; the
:class:`~warblr.errors.SubmissionError` names the file. Only then are the
files opened (``O_NOFOLLOW | O_NONBLOCK``), checked again on the open
descriptor (the same regular file that was walked) and read with a size cap.
:func:`copy_submission` writes those bytes into new files: nothing is ever
``copytree``'d, so a link to ``solutions/``, a check file, the reference
data, ``/etc/shadow`` or ``/dev/zero`` never becomes part of the copy.

It also scans the Python files (``ast``) for imports of modules the
assignment forbids (:data:`FORBIDDEN_MODULES`): ``import x``, ``from x
import y``, ``importlib.import_module("x")`` and ``__import__("x")`` with a
literal name.
"""

from __future__ import annotations

import ast
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SubmissionError
from .impl import EXERCISE_MODULES, NOT_SUBMITTED

#: Modules student code may not use by default: warblr's engine answers every exercise, the others
#: are the libraries the reference is built from.
FORBIDDEN_MODULES = ("warblr", "torchvggish", "resampy", "librosa")

#: Default limits of a submission.
MAX_FILES = 200
MAX_DEPTH = 4
MAX_FILE_BYTES = 2 << 20
MAX_TOTAL_BYTES = 20 << 20

_KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket"}


@dataclass(frozen=True)
class IntakeLimits:
    """How much a submission may hold.

    Parameters
    ----------
    max_files : int
        Most regular files (skipped names not counted).
    max_depth : int
        Most folder levels below the submission folder.
    max_file_bytes : int
        Largest single file.
    max_total_bytes : int
        Largest total of all files.
    """

    max_files: int = MAX_FILES
    max_depth: int = MAX_DEPTH
    max_file_bytes: int = MAX_FILE_BYTES
    max_total_bytes: int = MAX_TOTAL_BYTES


@dataclass
class Submission:
    """What intake read: ``files`` ``{relative path: bytes}`` and ``forbidden`` ``{relative path: [(module, line)]}``."""

    folder: Path
    files: dict = field(default_factory=dict)
    forbidden: dict = field(default_factory=dict)

    def forbidden_by_module(self):
        """``{graded module: message}`` for the graded modules that use a forbidden module.

        A forbidden import in a graded module's own file fails that module; one
        in any other file (a helper any module may import) fails all four.
        """
        out = {}
        for path, uses in sorted(self.forbidden.items()):
            names = ", ".join(f"{module} (line {line})" for module, line in uses)
            stem = Path(path).stem
            targets = [stem] if Path(path).parent == Path(".") and stem in EXERCISE_MODULES else EXERCISE_MODULES
            for module in targets:
                out.setdefault(module, f"your {path} imports {names}, which this assignment forbids in your code: "
                                       "write it yourself")
        return out


def skipped(name):
    """Whether a name in a submission is never part of the student's code (checks, answers, caches, dotfiles)."""
    return name in NOT_SUBMITTED or name.startswith(".") or (name.startswith("test_") and name.endswith(".py"))


def _refuse(relative, reason):
    return SubmissionError(f"submission refused: {relative}: {reason}", path=str(relative), reason=reason)


def _open_dir(name, dir_fd=None):
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


def _walk(folder, limits):
    """Every regular file below ``folder``: ``[(relative path, (st_dev, st_ino), size)]``; refuses anything else."""
    found, total = [], 0
    stack = [(Path("."), None, 0)]
    root_fd = _open_dir(str(folder))
    fds = []
    try:
        while stack:
            relative, name, depth = stack.pop()
            fd = root_fd if name is None else _open_dir(name[1], dir_fd=name[0])
            if name is not None:
                fds.append(fd)
            with os.scandir(fd) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    if skipped(entry.name):
                        continue
                    path = relative / entry.name
                    info = entry.stat(follow_symlinks=False)
                    kind = stat.S_IFMT(info.st_mode)
                    if kind == stat.S_IFDIR:
                        if depth + 1 > limits.max_depth:
                            raise _refuse(path, f"folders nested deeper than {limits.max_depth} levels")
                        stack.append((path, (fd, entry.name), depth + 1))
                        continue
                    if kind != stat.S_IFREG:
                        raise _refuse(path, f"is {_KINDS.get(kind, 'not a regular file')}; a submission may hold "
                                            "regular files only (copy the file itself, not a link to it)")
                    if info.st_nlink > 1:
                        raise _refuse(path, f"is a hard link ({info.st_nlink} names for one file); submit a copy")
                    if info.st_size > limits.max_file_bytes:
                        raise _refuse(path, f"{info.st_size} bytes, more than the {limits.max_file_bytes} allowed "
                                            "per file")
                    total += info.st_size
                    if total > limits.max_total_bytes:
                        raise _refuse(path, f"the submission's files pass {limits.max_total_bytes} bytes in all")
                    found.append((path, (info.st_dev, info.st_ino), info.st_size))
                    if len(found) > limits.max_files:
                        raise _refuse(path, f"more than {limits.max_files} files")
    finally:
        for fd in fds + [root_fd]:
            os.close(fd)
    return found


def _read(folder, relative, identity, limits):
    """The bytes of one walked file, opened without following links and checked to be the file walked."""
    fd = os.open(folder / relative, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != identity or info.st_nlink > 1:
            raise _refuse(relative, "changed while it was being read")
        chunks, got = [], 0
        while chunk := os.read(fd, min(1 << 20, limits.max_file_bytes + 1 - got)):
            chunks.append(chunk)
            got += len(chunk)
            if got > limits.max_file_bytes:
                raise _refuse(relative, f"more than the {limits.max_file_bytes} bytes allowed per file")
        return b"".join(chunks)
    finally:
        os.close(fd)


def forbidden_imports(source, modules=FORBIDDEN_MODULES):
    """``[(module, line)]``: imports of ``modules`` (or their submodules) in Python ``source``.

    Examples
    --------
    >>> forbidden_imports("import numpy\\nfrom librosa.core import resample\\n")
    [('librosa', 2)]
    >>> forbidden_imports("import importlib\\nx = importlib.import_module('warblr.features')\\n")
    [('warblr', 2)]
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []  # the worker reports the syntax error at import
    roots = set(modules)
    found = []

    def note(name, node):
        root = str(name).partition(".")[0]
        if root in roots:
            found.append((root, node.lineno))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                note(alias.name, node)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            note(node.module, node)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
            if name in ("import_module", "__import__"):
                note(node.args[0].value, node)
    return sorted(set(found), key=lambda item: (item[1], item[0]))


def take_in(folder, *, limits=None, forbidden=FORBIDDEN_MODULES):
    """Check and read a submission folder.

    Parameters
    ----------
    folder : str or os.PathLike
        The submission (its own path may be a link; nothing inside it may be).
    limits : IntakeLimits, optional
        Sizes and counts allowed (default :class:`IntakeLimits`).
    forbidden : sequence of str
        Modules the student's code may not import.

    Returns
    -------
    Submission

    Raises
    ------
    SubmissionError
        Something in the folder is not a plain file within the limits; the
        message names it. Nothing was read then.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "resampling.py").write_text("import resampy\\n")
    >>> sorted(take_in(folder).files), take_in(folder).forbidden
    (['resampling.py'], {'resampling.py': [('resampy', 1)]})
    """
    folder = Path(folder)
    limits = limits or IntakeLimits()
    try:
        walked = _walk(folder, limits)
    except NotADirectoryError:
        raise _refuse(folder, "is not a folder") from None
    except FileNotFoundError:
        raise _refuse(folder, "no such folder") from None
    submission = Submission(folder)
    for relative, identity, _ in walked:
        data = submission.files[relative.as_posix()] = _read(folder, relative, identity, limits)
        if relative.suffix == ".py" and forbidden:
            uses = forbidden_imports(data, forbidden)
            if uses:
                submission.forbidden[relative.as_posix()] = uses
    return submission


def copy_submission(submission, target):
    """Write ``submission``'s files (a :class:`Submission`) into the new folder ``target``.

    Files are created fresh (mode 0644, folders 0755), from the bytes read at
    intake; ``target`` must not exist.

    Returns
    -------
    pathlib.Path
        ``target``.
    """
    target = Path(target)
    target.mkdir(mode=0o755)
    os.chmod(target, 0o755)
    for relative, data in submission.files.items():
        path = target / relative
        for parent in reversed(path.relative_to(target).parents[:-1]):
            folder = target / parent
            if not folder.is_dir():
                folder.mkdir(mode=0o755)
                os.chmod(folder, 0o755)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
    return target
