"""The cell guard: a notebook cell never stops the notebook with a traceback.

``with lab.step("model"):`` swallows what the cell raises and prints one line
instead: "not attempted yet" for a stub that still raises
``NotImplementedError``, the student's file and line for any other error in
their code, "skipped" (naming the unfinished function) when a later cell
needs a result an earlier one did not make. :class:`Unfinished` is that
diagnosis, :class:`Skipped` the error a missing result raises, and
:func:`diagnose` turns an exception into the diagnosis.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from ...errors import WarblrError
from .live import ImplImportError, describe_exception

__all__ = ["WrongResultError", "Unfinished", "Skipped", "Step", "diagnose",
           "NOT_ATTEMPTED", "RAISED", "WRONG", "NOT_IMPORTED", "FAILED"]

_TRACEBACK_TIP = " (`raise lab.last_error` in a new cell shows the traceback)"
# Kinds of Unfinished.
NOT_ATTEMPTED, RAISED, WRONG, NOT_IMPORTED, FAILED = "not attempted", "raised", "wrong", "not imported", "failed"


class WrongResultError(WarblrError):
    """A student's function returned something a later step cannot use (wrong type or shape)."""

    fields = ("function", "module")


@dataclass(frozen=True)
class Unfinished:
    """Why a step did not finish: what its cell prints, and what later cells say.

    Attributes
    ----------
    kind : str
        ``"not attempted"``, ``"raised"``, ``"wrong"``, ``"not imported"`` or ``"failed"``.
    function : str or None
        The student's function at fault.
    where : str or None
        Its file (and line), as the student sees it: ``exercises/logmel.py, line 88``.
    detail : str or None
        ``Type: message`` or what is wrong with the result.
    """

    kind: str
    function: str | None = None
    where: str | None = None
    detail: str | None = None

    @property
    def message(self):
        """The line the failing cell prints."""
        if self.kind == NOT_ATTEMPTED:
            return f"not attempted yet: implement `{self.function}` in `{self.where}`, then re-run this cell"
        if self.kind == RAISED:
            return (f"✗ `{self.function}` raised {self.detail} ({self.where}): fix it, then re-run this cell"
                    + _TRACEBACK_TIP)
        if self.kind == WRONG:
            return f"✗ `{self.function}`: {self.detail}; fix it in `{self.where}`, then re-run this cell"
        if self.kind == NOT_IMPORTED:
            return f"✗ {self.detail}; fix it, then re-run this cell"
        return f"✗ this cell failed: {self.detail}" + _TRACEBACK_TIP

    @property
    def cause(self):
        """Why a later cell cannot run, in a few words."""
        if self.kind == NOT_ATTEMPTED:
            return f"`{self.function}` is not attempted yet (implement it in `{self.where}`)"
        if self.kind == RAISED:
            return f"`{self.function}` raised {self.detail.split(':')[0]} ({self.where})"
        if self.kind == WRONG:
            return f"`{self.function}` returned something unusable (`{self.where}`)"
        if self.kind == NOT_IMPORTED:
            return self.detail
        return f"a cell above failed ({self.detail})"


class Skipped(AttributeError):
    """A cell needs a result (``lab.<name>``) that an earlier cell did not make.

    An ``AttributeError``, so ``hasattr(lab, name)`` stays False.
    """

    def __init__(self, name, unfinished=None):
        self.name, self.unfinished = name, unfinished
        super().__init__(self.message)

    @property
    def reason(self):
        """Why the result is missing, in a few words."""
        return "no cell has made it yet" if self.unfinished is None else self.unfinished.cause

    @property
    def message(self):
        if self.unfinished is None:
            return f"skipped: needs `{self.name}`, which no cell has made yet: run the cells above first"
        return f"skipped: needs `{self.name}`, but {self.unfinished.cause}; re-run from there once it is done"


def diagnose(exc, impl):
    """Turn an exception raised in a cell into an :class:`Unfinished`.

    Parameters
    ----------
    exc : Exception
    impl : warblr.lab.notebook.live.LiveImpl
        The student's package: frames in its files name the function at fault.

    Returns
    -------
    Unfinished
    """
    if isinstance(exc, ImplImportError):
        return Unfinished(NOT_IMPORTED, detail=str(exc))
    if isinstance(exc, WrongResultError):
        return Unfinished(WRONG, exc.function, impl.where(impl.folder / f"{exc.module}.py"), str(exc))
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if impl.owns(frame.filename)]
    if not frames:
        return Unfinished(FAILED, detail=describe_exception(exc))
    frame = frames[-1]  # the innermost: a stub called by a finished function is the one to implement
    where = impl.where(frame.filename)
    if isinstance(exc, NotImplementedError):
        return Unfinished(NOT_ATTEMPTED, frame.name, where)
    return Unfinished(RAISED, frame.name, f"{where}, line {frame.lineno}", describe_exception(exc))


class Step:
    """The context manager behind :meth:`warblr.lab.notebook.Lab.step`.

    Parameters
    ----------
    results : warblr.lab.notebook.session.Results
        Where the lab keeps its results and the reasons for missing ones.
    impl : warblr.lab.notebook.live.LiveImpl
    makes : tuple of str
        The results the cell makes: marked missing, with the reason, if it does not finish.
    """

    def __init__(self, results, impl, makes):
        self._results, self._impl, self._makes = results, impl, makes

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or not isinstance(exc, Exception):
            return False  # success, or KeyboardInterrupt / SystemExit: not ours to swallow
        self._results.last_error = exc
        if isinstance(exc, Skipped):
            print(exc.message)
            unfinished = exc.unfinished
        else:
            unfinished = diagnose(exc, self._impl)
            print(unfinished.message)
        for name in self._makes:  # a stale result from an earlier run must not live on
            self._results.values.pop(name, None)
            self._results.unfinished[name] = unfinished
        return True
