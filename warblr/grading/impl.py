"""Loading the graded implementation: the package a student hands in.

The graded package is any folder holding ``resampling.py``, ``logmel.py``,
``embedding.py`` and ``classify.py`` (an ``__init__.py`` is optional). Its
modules are imported lazily, one at a time, under a private alias so they may
import each other relatively (``from . import logmel``). A module that cannot
be imported -- a syntax error, a missing file, an exception, ``sys.exit()`` or
a hang at import time -- never aborts the grading run: every check that uses
it fails with one clear :class:`ImplImportError` naming the file and the cause,
and the other modules are still graded.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

#: The four graded modules, in teaching order.
EXERCISE_MODULES = ("resampling", "logmel", "embedding", "classify")

#: Graded functions whose result is a live object (a model, an estimator) that stays in the worker behind a
#: handle. Every other graded function must return data: a live object there (whose methods could do the work
#: after a timed call returned) is refused.
LIVE_RESULTS = ("embedding.build_vggish", "classify.make_classifier")

#: ``--impl`` values that name a folder of the project itself.
NAMED_IMPLS = ("exercises", "solutions")


class ImplImportError(Exception):
    """A graded module that could not be imported; the message says why."""


def resolve_impl(choice, *, rootpath):
    """Turn an ``--impl`` value into an absolute folder.

    Parameters
    ----------
    choice : str or os.PathLike
        ``"exercises"``, ``"solutions"`` (folders of the project under
        ``rootpath``) or a path to any package folder.
    rootpath : str or os.PathLike
        The pytest root directory.

    Returns
    -------
    pathlib.Path
        The folder, resolved; it may not exist (every check then fails with
        a message naming it).

    Examples
    --------
    >>> resolve_impl("solutions", rootpath="/lab").as_posix()
    '/lab/solutions'
    """
    text = str(choice)
    if text in NAMED_IMPLS:
        return (Path(rootpath) / text).resolve()
    return Path(text).expanduser().resolve()


#: Names in a submission folder that are never part of the student's code.
NOT_SUBMITTED = ("conftest.py", "reference.py", "reference_data", "__pycache__", "lab.ipynb")


def find_submission(folder):
    """The package folder inside a submission: ``folder`` itself, or its ``exercises/`` subfolder.

    A submission holds the four modules at its top level or inside an
    ``exercises/`` folder (how Gradescope unpacks a zip of the lab).

    Examples
    --------
    >>> find_submission("/nowhere").as_posix()
    '/nowhere'
    """
    folder = Path(folder)
    nested = folder / "exercises"
    if not any((folder / f"{name}.py").is_file() for name in EXERCISE_MODULES) and nested.is_dir():
        return nested
    return folder


def _leaves(exc):
    group = getattr(builtins, "BaseExceptionGroup", ())
    if group and isinstance(exc, group):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _last_frame(exc):
    tb, last = exc.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last


def inside(filename, folder):
    """Whether the file ``filename`` lies in ``folder``."""
    try:
        return Path(filename).resolve().is_relative_to(folder)
    except (OSError, ValueError, TypeError):
        return False


def student_file(filename, folder):
    """Whether ``filename`` is the student's code: in ``folder`` and not a check or conftest."""
    name = Path(str(filename)).name
    return inside(filename, folder) and not (name.startswith("test_") or name == "conftest.py")


def not_attempted(exc, folder):
    """Where ``exc`` came from if it is NotImplementedError raised by code in ``folder``.

    Parameters
    ----------
    exc : BaseException
        The failure (an exception group counts if all its leaves qualify). An
        error relayed from an isolated worker carries the answer in its
        ``warblr_not_attempted`` attribute (the worker checked its frames).
    folder : pathlib.Path
        The graded package folder.

    Returns
    -------
    str or None
        E.g. ``"logmel.periodic_hann()"``; None if the failure is anything else.
    """
    where = []
    for leaf in _leaves(exc):
        relayed = getattr(leaf, "warblr_not_attempted", None)
        if relayed:
            where.append(relayed)
            continue
        frame = _last_frame(leaf)
        if not isinstance(leaf, NotImplementedError) or frame is None \
                or not student_file(frame.tb_frame.f_code.co_filename, folder):
            return None
        code = frame.tb_frame.f_code
        where.append(f"{Path(code.co_filename).stem}.{code.co_name}()")
    return ", ".join(dict.fromkeys(where)) or None


def is_timeout(exc):
    """Whether ``exc`` is pytest-timeout's failure (``Failed: Timeout ...``)."""
    return type(exc).__name__ == "Failed" and "Timeout" in str(exc)


def describe_exception(exc):
    """One line ``Type: message`` for ``exc`` (a SyntaxError names its line)."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    if isinstance(exc, SyntaxError):
        where = f"line {exc.lineno}" if exc.lineno else "unknown line"
        return f"SyntaxError: {exc.msg} ({Path(exc.filename or '?').name}, {where})"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class ExerciseNamespace:
    """``impl.logmel``, ``impl.classify``, ...: the exercise modules as attributes.

    Subclasses say how a module is reached with :meth:`exercise_module`.
    """

    def exercise_module(self, name):
        raise NotImplementedError

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(EXERCISE_MODULES))

    def __getattr__(self, name):
        if name not in EXERCISE_MODULES:
            raise AttributeError(name)
        return self.exercise_module(name)


class GradedImpl(ExerciseNamespace):
    """The graded package: attribute access returns one of its four modules.

    ``impl.logmel`` imports ``FOLDER/logmel.py`` on first use. If that fails
    the cause is remembered and every later access raises the same
    :class:`ImplImportError`, without importing again.

    Parameters
    ----------
    folder : str or os.PathLike
        The package folder.

    Examples
    --------
    >>> impl = GradedImpl("/nowhere")
    >>> impl.logmel
    Traceback (most recent call last):
    ...
    warblr.grading.impl.ImplImportError: could not import your logmel.py: no folder /nowhere (check --impl)
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        digest = hashlib.sha1(str(self.folder).encode()).hexdigest()[:12]
        self._alias = f"warblr_graded_{digest}"
        self._modules = {}
        self._errors = {}
        self._package_error = None

    def __repr__(self):
        return f"GradedImpl({str(self.folder)!r})"

    def exercise_module(self, name):
        return self.module(name)

    def probe(self, name, *args, **kwargs):
        """Run the grader's probe ``name`` (:mod:`warblr.grading.probes`) here, next to the graded code."""
        from . import probes

        return probes.run(name, *args, **kwargs)

    def module(self, name):
        """Import (once) and return the graded module ``name``."""
        if name in self._modules:
            return self._modules[name]
        if name not in self._errors:
            try:
                self._ensure_package()
                self._modules[name] = importlib.import_module(f"{self._alias}.{name}")
                return self._modules[name]
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 -- student code may raise anything
                sys.modules.pop(f"{self._alias}.{name}", None)
                self._errors[name] = self._explain(name, exc)
        raise ImplImportError(self._errors[name])

    def _ensure_package(self):
        if self._package_error is not None:
            raise self._package_error
        if self._alias in sys.modules:
            return
        if not self.folder.is_dir():
            self._package_error = FileNotFoundError(f"no folder {self.folder} (check --impl)")
            raise self._package_error
        init = self.folder / "__init__.py"
        if init.is_file():
            spec = importlib.util.spec_from_file_location(
                self._alias, init, submodule_search_locations=[str(self.folder)])
        else:  # a plain folder of modules works too
            spec = importlib.machinery.ModuleSpec(self._alias, None, is_package=True)
            spec.submodule_search_locations = [str(self.folder)]
        package = importlib.util.module_from_spec(spec)
        sys.modules[self._alias] = package
        try:
            if spec.loader is not None:
                spec.loader.exec_module(package)
        except BaseException as exc:
            sys.modules.pop(self._alias, None)
            if isinstance(exc, KeyboardInterrupt):
                raise
            self._package_error = ImportError(f"your __init__.py failed: {describe_exception(exc)}")
            raise self._package_error from exc

    def _explain(self, name, exc):
        prefix = f"could not import your {name}.py"
        if isinstance(exc, FileNotFoundError) and self._package_error is exc:
            return f"{prefix}: {exc}"
        if isinstance(exc, ModuleNotFoundError):
            missing = exc.name or ""
            if missing == f"{self._alias}.{name}":
                return f"{prefix}: there is no {name}.py in {self.folder}"
            if missing in EXERCISE_MODULES:
                return (f"{prefix}: ModuleNotFoundError: no module named {missing!r} "
                        f"(import the other exercise modules relatively: `from . import {missing}`)")
        if is_timeout(exc):
            return f"{prefix}: importing it did not finish within the time limit (a loop at import time?)"
        return f"{prefix}: {describe_exception(exc)}"
