"""Guarding the grader's libraries against monkey-patching by student code.

Student code runs in the grader's process, so it could replace
``numpy.allclose`` or ``builtins.print`` -- by accident or to pass a check --
and corrupt every later check. :class:`LibraryGuard` snapshots the public
names of a few modules before a check runs and, afterwards, puts back any
name that was replaced or deleted and reports it, so the check that did it
fails and the rest of the run is unaffected. It also restores the working
directory and torch's autograd switch.
"""

from __future__ import annotations

import importlib
import os
import sys

#: Modules whose public names are guarded (each only when already imported).
GUARDED_MODULES = (
    "builtins", "math", "os", "numpy", "numpy.fft", "numpy.linalg", "numpy.random", "numpy.testing",
    "scipy.signal", "torch", "torch.nn", "torch.nn.functional", "sklearn.metrics",
    "sklearn.model_selection", "pytest",
)

#: Private names still worth guarding.
_GUARDED_PRIVATE = frozenset({"__import__", "__build_class__"})


def _guarded(name):
    return not name.startswith("_") or name in _GUARDED_PRIVATE


class LibraryGuard:
    """Snapshot of guarded module attributes, cwd and torch grad mode.

    Examples
    --------
    >>> import math
    >>> guard = LibraryGuard()
    >>> math.sqrt = abs
    >>> guard.restore()
    ['math.sqrt']
    >>> math.sqrt(4.0)
    2.0
    """

    def __init__(self, modules=GUARDED_MODULES):
        self._saved = {}
        for name in modules:
            if name.partition(".")[0] in sys.modules and name not in sys.modules:
                try:  # numpy.testing etc. load lazily: load them now so they have a snapshot
                    importlib.import_module(name)
                except Exception:  # noqa: BLE001 -- an unusable submodule needs no guard
                    pass
            module = sys.modules.get(name)
            if module is not None:
                self._saved[name] = (module, {k: v for k, v in vars(module).items() if _guarded(k)})
        try:
            self._cwd = os.getcwd()
        except OSError:  # pragma: no cover -- cwd deleted before we started
            self._cwd = None
        torch = sys.modules.get("torch")
        self._grad = torch.is_grad_enabled() if torch is not None else None

    def restore(self):
        """Undo changes since the snapshot.

        Returns
        -------
        list of str
            Dotted names that had been replaced or deleted (now restored).
        """
        changed = []
        for name, (module, saved) in self._saved.items():
            current = vars(module)
            for key, value in saved.items():
                if current.get(key, _MISSING) is not value:
                    changed.append(f"{name}.{key}")
                    try:
                        setattr(module, key, value)
                    except (AttributeError, TypeError):  # pragma: no cover -- read-only module attribute
                        pass
        if self._cwd is not None:
            try:
                if os.getcwd() != self._cwd:
                    os.chdir(self._cwd)
            except OSError:
                os.chdir(self._cwd)
        torch = sys.modules.get("torch")
        if self._grad is not None and torch is not None and torch.is_grad_enabled() != self._grad:
            torch.set_grad_enabled(self._grad)
        return changed


_MISSING = object()
