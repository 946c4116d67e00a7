"""Executing the lab notebook in a real Jupyter kernel, once per implementation per test session.

Both notebook test modules (``test_notebook.py`` and ``test_notebook_figures.py``)
ask :func:`shared` for the session's :class:`NotebookRuns`, so the solutions'
run that one module checks line by line is the very run the other renders
in a browser. The kernel runs this interpreter from a kernelspec in a
temporary folder (no user-level kernelspec is involved) on a small generated
warblrb10k-layout tree; the torch hub folder points into a temporary folder,
so nothing downloads and the random-weights path runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "exercises" / "lab.ipynb"
KERNEL_NAME = "warblr-lab-test"
TREE_CLIPS, TREE_LIMIT = 20, 16
#: A cell that runs this long is hung, not slow (a guard against hangs, not a speed check).
CELL_TIMEOUT_S = 600

_SESSIONS = {}


def load_module(name, path):
    """Import ``path`` as module ``name`` once (a helper file beside the tests, not a package)."""
    if name not in sys.modules:  # registered first: dataclasses look their module up while it executes
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def shared(tmp_path_factory):
    """The :class:`NotebookRuns` of this test session (one per ``tmp_path_factory``)."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _SESSIONS:
        _SESSIONS[key] = NotebookRuns(tmp_path_factory.mktemp("lab-notebook"))
    return _SESSIONS[key]


class NotebookRuns:
    """The data tree, the kernelspec and every executed notebook of one test session, each made once.

    Parameters
    ----------
    scratch : pathlib.Path
        An empty folder of the session's.
    """

    def __init__(self, scratch):
        self.scratch = Path(scratch)
        self._tree = None
        self._kernels = None
        self._executed = {}

    @property
    def tree(self):
        """A small demo corpus (44.1 kHz, 2 s clips, both labels): the resampling step has work to do."""
        if self._tree is None:
            from warblr.lab.corpus import make_corpus

            self._tree, _ = make_corpus(self.scratch / "corpus", n_clips=TREE_CLIPS, duration=2.0)
        return self._tree

    @property
    def kernels(self):
        """A Jupyter data folder holding one kernelspec that runs this interpreter with ipykernel."""
        if self._kernels is None:
            spec_dir = self.scratch / "jupyter" / "kernels" / KERNEL_NAME
            spec_dir.mkdir(parents=True)
            spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "warblr lab tests", "language": "python"}
            (spec_dir / "kernel.json").write_text(json.dumps(spec))
            self._kernels = self.scratch / "jupyter"
        return self._kernels

    def mutant(self, name):
        """A copy of ``solutions/`` with the gallery's mistake ``name`` (``tests/grading/mutants.py``) applied."""
        folder = self.scratch / f"impl_{name}"
        if not folder.exists():
            gallery = load_module("warblr_lab_test_mutants", ROOT / "tests" / "grading" / "mutants.py")
            mutant = next(entry for entry in gallery.MUTANTS if entry.name == name)
            shutil.copytree(ROOT / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__"))
            path = folder / f"{mutant.module}.py"
            text = path.read_text()
            if text.count(mutant.old) != 1:
                raise AssertionError(f"mutant {name} no longer applies to solutions/{mutant.module}.py")
            path.write_text(text.replace(mutant.old, mutant.new))
        return folder

    def executed(self, impl=None):
        """The committed notebook executed with ``$WARBLR_IMPL=impl`` (unset: the stubs); made once per impl.

        ``impl`` is ``"solutions"``, ``None`` (``exercises/``) or ``"mutant:NAME"``.
        Returns the notebook node; a test must not change it (copy it first).
        """
        if impl not in self._executed:
            folder = self.mutant(impl.split(":", 1)[1]) if impl and impl.startswith("mutant:") else impl
            self._executed[impl] = self._execute(folder)
        return self._executed[impl]

    def _execute(self, impl):
        import nbclient
        import nbformat
        from jupyter_client.kernelspec import KernelSpecManager

        env = {key: value for key, value in os.environ.items() if not key.startswith("WARBLR_") and key != "MPLBACKEND"}
        env.update(WARBLR_DATA=str(self.tree), WARBLR_LIMIT=str(TREE_LIMIT),
                   TORCH_HOME=str(self.scratch / "torch"),   # no released weights here: nothing found, nothing fetched
                   PYTHONDONTWRITEBYTECODE="1")              # no __pycache__ left in exercises/ or solutions/
        if impl is not None:
            env["WARBLR_IMPL"] = str(impl)
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        client = nbclient.NotebookClient(notebook, kernel_name=KERNEL_NAME, timeout=CELL_TIMEOUT_S,
                                         startup_timeout=120, resources={"metadata": {"path": str(NOTEBOOK.parent)}})
        saved = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = str(self.kernels)
        try:
            if KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv[0] != sys.executable:
                raise AssertionError("the test kernelspec does not run this interpreter")
            client.execute(env=env)
        finally:
            if saved is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = saved
        return notebook
