"""Taking in a submission: regular files only, read without following anything, copied by content.

Every path by which a student's files reach the grader (``warblr grade run``,
``pytest exercises --isolate``, Gradescope's ``run_autograder``) goes
through :func:`take_in`. It first walks the whole folder with ``lstat``
(``os.scandir`` on directory file descriptors opened ``O_NOFOLLOW``) and
refuses the submission -- before reading a byte of any file -- if it holds a
symbolic link, a device, a FIFO, a socket, a hard-linked file, compiled code
(an extension module, bytecode or a shared library: Python imports
``resampling.cpython-311-x86_64-linux-gnu.so`` before ``resampling.py``, so
the source everyone reads would not be the code that runs), more files or
deeper folders than allowed, more folders than allowed, or a file or total
over the size limits; the :class:`~warblr.errors.SubmissionError` names the
file (any error of the file system, a name too long say, is such a refusal
too). The walk holds only the descriptors of the folders on the current
path open, never one per folder of the submission. Only then are the
files opened (``O_NOFOLLOW | O_NONBLOCK``), checked again on the open
descriptor (the same regular file that was walked) and read with a size cap.
A Python file that Python would read as other code than an editor showing
it as UTF-8 displays (a ``# coding: utf-7`` line, :func:`misread_source`)
and a ``name.py`` beside a package folder ``name/`` are refused too.
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
import importlib.util
import io
import os
import re
import stat
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SubmissionError
from .failures import clean_text
from .impl import EXERCISE_MODULES, NOT_SUBMITTED

#: Modules student code may not use by default: warblr's engine answers every exercise, the others
#: are the libraries the reference is built from.
FORBIDDEN_MODULES = ("warblr", "torchvggish", "resampy", "librosa")

#: Default limits of a submission.
MAX_FILES = 200
MAX_FOLDERS = 200  # no more folders than files: far above any real layout, far below a descriptor table
MAX_DEPTH = 4
MAX_FILE_BYTES = 2 << 20
MAX_TOTAL_BYTES = 20 << 20

#: Names of files that load as code nobody can read: extension modules (which Python imports before a ``.py``
#: of the same name; every platform's importlib.machinery.EXTENSION_SUFFIXES ends in .so or .pyd), bytecode
#: (``helpers.pyc`` imports without a ``helpers.py``) and shared libraries (ctypes).
_COMPILED = re.compile(r"\.(so|pyc|pyo|pyd|dll|dylib)$|\.so(\.[0-9]+)+$", re.IGNORECASE)

#: Coding-line names a submission may use: those CPython decodes without its codec registry (PyUnicode_Decode's
#: own UTF-8, Latin-1 and ASCII decoders). Any other name goes through codecs that student code can replace at
#: run time (codecs.unregister + codecs.register: a red-team submission redirected koi8-u), or decodes bytes
#: an editor shows as a comment into code (utf-7, unicode_escape).
SOURCE_ENCODINGS = ("utf-8", "utf8", "ascii", "us-ascii", "latin-1", "latin1", "iso-8859-1", "iso8859-1")

#: A coding line (PEP 263), as Python's tokenizer finds it on line 1 or 2.
_CODING_LINE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_BLANK_OR_COMMENT = re.compile(rb"^[ \t\f]*(?:[#\r\n]|$)")

#: Mach-O magic numbers (32 and 64 bit, both byte orders, and universal binaries).
_MACH_O = {bytes.fromhex(magic) for magic in ("feedface", "feedfacf", "cefaedfe", "cffaedfe", "cafebabe", "bebafeca")}

_KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket"}


@dataclass(frozen=True)
class IntakeLimits:
    """How much a submission may hold.

    Parameters
    ----------
    max_files : int
        Most regular files (skipped names not counted).
    max_folders : int
        Most folders below the submission folder (skipped names not counted).
    max_depth : int
        Most folder levels below the submission folder.
    max_file_bytes : int
        Largest single file.
    max_total_bytes : int
        Largest total of all files.
    """

    max_files: int = MAX_FILES
    max_folders: int = MAX_FOLDERS
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


def native_or_bytecode(data):
    """What kind of compiled code the file bytes ``data`` are (a name), or None: ELF, Mach-O, PE, Python bytecode.

    Named otherwise (``tables.dat``), a shared library still loads through
    ctypes: a red-team submission ran native code that no reader, fingerprint
    or import scan saw.

    Examples
    --------
    >>> native_or_bytecode(b"\\x7fELF\\x02\\x01\\x01" + bytes(57)), native_or_bytecode(b"import numpy\\n")
    ('an ELF executable or shared library', None)
    """
    head = bytes(data[:4])
    if head == b"\x7fELF":
        return "an ELF executable or shared library"
    if head in _MACH_O:
        return "a Mach-O executable or library"
    if head[:2] == b"MZ" and len(data) >= 0x40:
        offset = int.from_bytes(data[0x3C:0x40], "little")
        if data[offset:offset + 4] == b"PE\0\0":
            return "a Windows executable or DLL"
    if head == importlib.util.MAGIC_NUMBER:
        return "Python bytecode"
    return None


def compiled_code(name):
    """Whether a file called ``name`` is compiled code (an extension module, bytecode, a shared library).

    Examples
    --------
    >>> [compiled_code(name) for name in ("resampling.cpython-311-x86_64-linux-gnu.so", "util.pyc",
    ...                                   "libfast.so.1", "resampling.py", "notes.txt")]
    [True, True, True, False, False]
    """
    return bool(_COMPILED.search(str(name)))


def printable(name):
    """``name`` (a file or member name the student chose) safe to print: no escape, control or bidi character.

    Every character that is not printable is shown escaped (``\\x1b``, ``\\n``,
    ``\\u202e``), so a name can neither rewrite a terminal or a report nor
    hide what it is.

    Examples
    --------
    >>> printable("a\\x1b[2Jb\\n.py")
    'a\\\\x1b[2Jb\\\\n.py'
    """
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in str(name))


def _refuse(relative, reason):
    return SubmissionError(f"submission refused: {printable(relative)}: {reason}", path=str(relative),
                           reason=reason)


def _os_reason(exc):
    """The file system's words for ``exc`` (``File name too long``), without the path it names."""
    return f"cannot be read ({clean_text(exc.strerror or exc.__class__.__name__)})"


def _open_dir(name, dir_fd=None):
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


class _Tally:
    """What the walk has found so far, checked against the limits as it grows."""

    def __init__(self, limits):
        self.limits, self.found, self.total, self.folders = limits, [], 0, 0

    def folder(self, path, depth):
        if depth > self.limits.max_depth:
            raise _refuse(path, f"folders nested deeper than {self.limits.max_depth} levels")
        self.folders += 1
        if self.folders > self.limits.max_folders:
            raise _refuse(path, f"more than {self.limits.max_folders} folders")

    def file(self, path, info):
        limits = self.limits
        if info.st_nlink > 1:
            raise _refuse(path, f"is a hard link ({info.st_nlink} names for one file); submit a copy")
        if info.st_size > limits.max_file_bytes:
            raise _refuse(path, f"{info.st_size} bytes, more than the {limits.max_file_bytes} allowed per file")
        self.total += info.st_size
        if self.total > limits.max_total_bytes:
            raise _refuse(path, f"the submission's files pass {limits.max_total_bytes} bytes in all")
        self.found.append((path, (info.st_dev, info.st_ino), info.st_size))
        if len(self.found) > limits.max_files:
            raise _refuse(path, f"more than {limits.max_files} files")


def _scan(fd, relative, depth, tally):
    """Check the entries of the open folder ``fd``; return the names of its subfolders, sorted."""
    folders = []
    try:
        with os.scandir(fd) as entries:
            listed = sorted(entries, key=lambda e: e.name)
        for entry in listed:
            if skipped(entry.name):
                continue
            path = relative / entry.name
            info = entry.stat(follow_symlinks=False)
            kind = stat.S_IFMT(info.st_mode)
            if kind == stat.S_IFDIR:
                tally.folder(path, depth + 1)
                folders.append(entry.name)
            elif kind != stat.S_IFREG:
                raise _refuse(path, f"is {_KINDS.get(kind, 'not a regular file')}; a submission may hold "
                                    "regular files only (copy the file itself, not a link to it)")
            elif compiled_code(entry.name):
                raise _refuse(path, "is compiled code (an extension module, bytecode or a shared library): it can "
                                    "run in place of the source everyone reads (Python imports an extension module "
                                    "before the .py of the same name); submit Python source only")
            else:
                tally.file(path, info)
    except OSError as exc:
        raise _refuse(relative, _os_reason(exc)) from None
    return folders


def _walk(folder, limits):
    """Every regular file below ``folder``: ``[(relative path, (st_dev, st_ino), size)]``; refuses anything else.

    Depth first, each folder opened ``O_NOFOLLOW`` from its parent's
    descriptor and closed once its subfolders are done: at most
    ``limits.max_depth + 1`` descriptors are open at once, however many
    folders the submission holds.
    """
    tally = _Tally(limits)
    stack = [(Path("."), _open_dir(str(folder)), 0, None)]  # (folder, descriptor, depth, subfolders left)
    try:
        while stack:
            relative, fd, depth, left = stack[-1]
            if left is None:  # first visit: scan it (the descriptor is on the stack, closed if this raises)
                left = iter(_scan(fd, relative, depth, tally))
                stack[-1] = (relative, fd, depth, left)
            name = next(left, None)
            if name is None:
                os.close(stack.pop()[1])
                continue
            try:
                stack.append((relative / name, _open_dir(name, dir_fd=fd), depth + 1, None))
            except OSError as exc:
                raise _refuse(relative / name, _os_reason(exc)) from None
    finally:
        for _, fd, _, _ in stack:
            os.close(fd)
    return tally.found


def _read(folder, relative, identity, limits):
    """The bytes of one walked file, opened without following links and checked to be the file walked."""
    try:
        fd = os.open(folder / relative, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _refuse(relative, _os_reason(exc)) from None
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
    except OSError as exc:
        raise _refuse(relative, _os_reason(exc)) from None
    finally:
        os.close(fd)


def python_source_text(data):
    """The text Python reads from the source file bytes ``data``: its coding line and newlines honoured.

    Where Python cannot decode them (it fails the import), the bytes read as
    UTF-8 with the bad bytes replaced.

    Examples
    --------
    >>> python_source_text(b"x = 1\\r\\n")
    'x = 1\\n'
    >>> python_source_text(b"# coding: utf-7\\n# +AAo-import os\\n")
    '# coding: utf-7\\n# \\nimport os\\n'
    """
    try:
        return importlib.util.decode_source(data)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return data.decode("utf-8", errors="replace")


def _coding_line(data):
    """``(line number, encoding name)`` of the coding line of source ``data`` where Python looks for one, else (1, None).

    Line 1, or line 2 when line 1 is blank or only a comment (PEP 263, as ``tokenize.detect_encoding`` reads).
    """
    for number, text in enumerate(data.splitlines()[:2], 1):
        if match := _CODING_LINE.match(text):
            return number, match.group(1).decode("ascii", errors="replace")
        if not _BLANK_OR_COMMENT.match(text):
            break
    return 1, None


def _compiles(data):
    """Whether Python's compiler takes the source bytes ``data`` (as an import would); nothing is run."""
    try:
        ast.parse(data)
        return True
    except (SyntaxError, ValueError, UnicodeError, MemoryError, RecursionError):
        return False


def misread_source(data):
    """Why an editor showing the source bytes ``data`` as UTF-8 would show other code than Python runs, or None.

    A coding line can make them differ: under ``# coding: utf-7`` the bytes
    ``+AAo-`` are a line end, so code hides in what every editor, the
    similarity report and a reader see as a comment.

    Examples
    --------
    >>> misread_source(b"# coding: latin-1\\nx = 1\\n") is None  # same text either way
    True
    >>> misread_source(b"# coding: utf-7\\n# +AAo-import os\\n")[:45]
    "declares the source encoding 'utf-7' (line 1)"
    >>> misread_source(b"# R\\xe9sum\\xe9\\n# coding: latin-1\\nx = 1\\n")[:30]  # C and Python tokenizers differ
    'cannot be read as text the way'

    """
    line, name = _coding_line(data)
    if name is not None and name.lower().replace("_", "-") not in SOURCE_ENCODINGS:
        return (f"declares the source encoding {printable(name)!r} (line {line}); only UTF-8, ASCII and Latin-1 are "
                "accepted (other codecs can turn what an editor shows as a comment into code, and student code can "
                "replace them at run time): save it as UTF-8 and remove the coding line")
    try:
        as_python = importlib.util.decode_source(data)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        # tokenize (pure Python) gave up where the import's own tokenizer (C) may not: a Latin-1 byte on line 1
        # before a coding line on line 2. If the import would compile it, Python and a reader disagree.
        return None if not _compiles(data) else (
            "cannot be read as text the way Python's import reads it (tokenize and the compiler disagree on its "
            "encoding); save it as UTF-8 without a coding line")
    try:
        as_utf8 = io.IncrementalNewlineDecoder(None, True).decode(data.decode("utf-8-sig"), final=True)
    except UnicodeDecodeError:
        as_utf8 = None
    if as_python == as_utf8:
        return None
    encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
    return (f"declares the source encoding {encoding!r} (line {line}), under which Python runs other code than "
            "an editor showing the file as UTF-8 displays; save it as UTF-8 and remove the coding line")


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


def _refuse_shadowed_modules(paths):
    """Refuse a ``name.py`` beside a package folder ``name/``: Python imports the folder and never the file."""
    present = {path.as_posix() for path in paths}
    for path in sorted(paths):
        if path.suffix == ".py" and (path.with_suffix("") / "__init__.py").as_posix() in present:
            raise _refuse(path.with_suffix(""), f"a package folder beside {path.name}: Python imports the folder "
                                                f"and never runs {path.name}; keep one of the two")


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
        Something in the folder is not a plain file within the limits, or
        cannot be read (any :class:`OSError`); the message names it.

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
    except OSError as exc:  # the folder itself: a link (ELOOP), no permission, a name too long...
        raise _refuse(folder, _os_reason(exc)) from None
    _refuse_shadowed_modules([relative for relative, _, _ in walked])
    submission = Submission(folder)
    for relative, identity, _ in walked:
        data = submission.files[relative.as_posix()] = _read(folder, relative, identity, limits)
        if kind := native_or_bytecode(data):
            raise _refuse(relative, f"is {kind}: compiled code runs (through ctypes, say) where no reader, "
                                    "similarity report or import scan sees it; submit Python source only")
        if relative.suffix == ".py" and (problem := misread_source(data)):
            raise _refuse(relative, problem)
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
