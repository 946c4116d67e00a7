"""The student's modules as the notebook sees them: imported again whenever one of their files changes.

Loading a graded package is the grader's job (:class:`warblr.grading.impl.GradedImpl`:
relative imports between the four modules, a clear error for a module that
does not import); this module only adds what a notebook needs on top, so that
"edit the file, re-run the cell" works without restarting the kernel. This is
the one place the lab uses the grading package, and the dependency goes one
way: ``warblr.grading`` never imports ``warblr.lab``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from ...grading.impl import (EXERCISE_MODULES, ExerciseNamespace, GradedImpl, ImplImportError, describe_exception,
                             resolve_impl, student_file)

#: What the rest of the notebook needs from the grader's loader, passed on from here (the one door).
__all__ = ["LiveImpl", "EXERCISE_MODULES", "ImplImportError", "describe_exception", "resolve_impl"]


class LiveImpl(ExerciseNamespace):
    """The student's package, imported again whenever one of its ``.py`` files changes.

    ``impl.logmel`` is the module ``FOLDER/logmel.py``, imported with
    :class:`warblr.grading.impl.GradedImpl` (so relative imports between
    the four modules work, and a module that cannot be imported raises
    :class:`~warblr.grading.impl.ImplImportError` with the reason).

    Parameters
    ----------
    folder : str or os.PathLike
        The package folder.
    root : str or os.PathLike, keyword-only
        The lab folder: file names are shown relative to it (``exercises/logmel.py``).

    Examples
    --------
    >>> LiveImpl("solutions", root=".").where("solutions/logmel.py")
    'solutions/logmel.py'
    """

    def __init__(self, folder, *, root):
        self.folder = Path(folder).resolve()
        self.root = Path(root).resolve()
        self._graded = None
        self._stamp = None

    def __repr__(self):
        return f"LiveImpl({str(self.folder)!r})"

    def exercise_module(self, name):
        return self._current().module(name)

    def _current(self):
        stamp = self._files_stamp()
        if self._graded is None or stamp != self._stamp:
            self._forget_modules()
            self._graded, self._stamp = GradedImpl(self.folder), stamp
        return self._graded

    def _files_stamp(self):
        files = sorted(self.folder.glob("*.py")) if self.folder.is_dir() else []
        return tuple((path.name, path.stat().st_mtime_ns, path.stat().st_size) for path in files)

    def _forget_modules(self):
        """Drop every imported module that lives in the folder, so the next access reads the files again."""
        folder = str(self.folder)
        for name, module in list(sys.modules.items()):
            paths = [getattr(module, "__file__", None)]
            try:
                paths += list(getattr(module, "__path__", None) or ())
            except TypeError:  # some extension modules have a __path__ that is not a list of folders
                pass
            if any(isinstance(path, str) and (path == folder or Path(path).parent == self.folder) for path in paths):
                del sys.modules[name]
        importlib.invalidate_caches()

    def owns(self, filename):
        """Whether ``filename`` is one of the student's files (a frame there names the function at fault)."""
        return student_file(filename, self.folder)

    def where(self, filename):
        """``filename`` as the student sees it: relative to the lab root when inside it."""
        path = Path(filename).resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)
