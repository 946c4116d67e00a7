"""How the student's code failed in an isolated worker, and feedback text made safe to show.

The exception types a check sees when a remote call fails
(:class:`StudentError` and its built-in look-alikes, :class:`RefusedValue`,
:class:`WorkerDied`, :class:`WorkerTimeout`, :class:`ForbiddenModule`), the
sentence explaining a failure that came from how the code behaved
(``warblr_explanation``), and :func:`clean_text`: every text the student
controls (printed output, exception messages, tracebacks, names) passes
through it before it reaches ``results.json`` or a terminal, so ANSI escapes
and control characters cannot rewrite the grader's report.
"""

from __future__ import annotations

import builtins
import re


class WorkerFailure(Exception):
    """The student's code failed in the worker. ``warblr_explanation`` says why in a sentence (or is None)."""

    warblr_explanation = None
    warblr_not_attempted = None


class StudentError(WorkerFailure):
    """An exception raised by the student's code in the worker (its type name, message and traceback)."""


class RefusedValue(WorkerFailure):
    """The student's code returned something that is not plain data."""


class WorkerDied(WorkerFailure):
    """The worker ended while the student's code ran (os._exit, a crash, a limit, a kill), or broke the protocol."""


class WorkerTimeout(WorkerFailure):
    """The check's time limit passed; the worker was killed."""


class ForbiddenModule(WorkerFailure):
    """The student's code imported a module the assignment forbids."""


class SandboxError(RuntimeError):
    """The sandbox could not be started (the grader's problem, not the student's)."""


_ERROR_TYPES = {}


def student_error_type(name):
    """A :class:`StudentError` subclass that is also the built-in exception ``name`` when there is one.

    So ``pytest.raises(ValueError)`` and ``isinstance(exc, NotImplementedError)``
    work on errors relayed from the worker.

    Examples
    --------
    >>> issubclass(student_error_type("ValueError"), ValueError)
    True
    """
    if name not in _ERROR_TYPES:
        builtin = getattr(builtins, name, None)
        bases = (StudentError,)
        if isinstance(builtin, type) and issubclass(builtin, Exception) and builtin.__module__ == "builtins":
            bases = (StudentError, builtin)
        _ERROR_TYPES[name] = type(name, bases, {"__module__": "student"})
    return _ERROR_TYPES[name]


def signal_explanation(status):
    """A sentence for a worker that ended by signal ``status`` (``"killed by SIGXFSZ"``), or None."""
    if "out of memory" in status:
        return ("your code's processes together used more memory than the check's limit (--max-memory); the "
                "kernel killed them")
    if "SIGXFSZ" in status:
        return "your code wrote a file larger than the worker's file size limit"
    if "SIGXCPU" in status:
        return "your code used more CPU time than the worker's limit"
    if "SIGSEGV" in status or "SIGBUS" in status or "SIGABRT" in status:
        return "your code crashed the worker (a segfault or abort)"
    return None


#: ANSI/VT escape sequences: CSI (``ESC [ ... final``), OSC (``ESC ] ... BEL/ST``), and two-byte escapes.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
#: Control characters other than newline and tab (C0, DEL, C1), and Unicode's bidirectional overrides.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean_text(text):
    """``text`` with ANSI escape sequences removed and other control characters shown as ``\\xNN``.

    Newlines and tabs stay; a carriage return becomes ``\\r`` (it could
    otherwise overwrite a line of the report on a terminal).

    Parameters
    ----------
    text : str
        Anything the student's code controls.

    Returns
    -------
    str

    Examples
    --------
    >>> clean_text("\\x1b[2J\\x1b[32mPASSED\\x1b[0m all\\rok\\x00")
    'PASSED all\\\\rok\\\\x00'
    """
    text = _ESCAPES.sub("", str(text))
    return _CONTROLS.sub(lambda match: repr(match.group())[1:-1], text)
