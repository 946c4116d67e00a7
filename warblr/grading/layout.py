"""``warblr grade check``: tell a student before upload whether their submission's layout is right.

Nothing of the student's code runs. The submission (a folder or a zip) goes
through the grader's own intake (:func:`warblr.grading.intake.take_in`:
links, devices, too many, too deep or too large files, forbidden imports),
then each of the four exercise modules must be there by its name, parse,
define every function the lab's checks call on it (``impl.<module>.<name>``),
and import only modules that exist: a sibling file for a relative import,
an installed package otherwise.
"""

from __future__ import annotations

import ast
import importlib.util
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SubmissionError
from .impl import EXERCISE_MODULES, find_submission
from .intake import take_in
from .submissions import extract_zip, submission_root


@dataclass
class LayoutReport:
    """What :func:`check_layout` found: ``problems`` (must fix) and ``found`` (what is fine), as sentences."""

    submission: Path
    problems: list = field(default_factory=list)
    found: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.problems

    def lines(self):
        """The report as lines of text for the terminal."""
        head = [f"checking {self.submission}"]
        body = [f"  ok   {line}" for line in self.found] + [f"  FIX  {line}" for line in self.problems]
        verdict = ("layout OK: the autograder will find and import everything (this says nothing about "
                   "correctness: run the checks)" if self.ok else
                   f"{len(self.problems)} problem(s): fix them before uploading")
        return head + body + [verdict]


def names_called_by_checks(folder):
    """``{module: {names}}`` the checks in ``folder`` (``test_*.py``) call as ``impl.<module>.<name>``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "test_a.py").write_text("def test(impl):\\n    impl.logmel.frame(1)\\n")
    >>> names_called_by_checks(folder)
    {'logmel': {'frame'}}
    """
    called = {}
    for path in sorted(Path(folder).glob("test_*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                    and isinstance(node.value.value, ast.Name) and node.value.value.id == "impl" \
                    and node.value.attr in EXERCISE_MODULES:
                called.setdefault(node.value.attr, set()).add(node.attr)
    return called


def _imports(tree):
    """``[(level, module name or '', imported names, line)]`` of every import in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(0, alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or "", [alias.name for alias in node.names], node.lineno))
    return found


def _check_imports(report, name, tree, files):
    siblings = {Path(path).stem for path in files if Path(path).suffix == ".py" and "/" not in path}
    packages = {path.split("/")[0] for path in files if "/" in path}
    for level, module, names, line in _imports(tree):
        where = f"{name}.py line {line}"
        if level:
            targets = [module.split(".")[0]] if module else names
            for target in targets:
                if target not in siblings and target not in packages:
                    report.problems.append(f"{where}: imports .{target}, which is not in your submission")
            continue
        root = module.split(".")[0]
        if root in EXERCISE_MODULES or root in siblings:
            report.problems.append(f"{where}: `import {module}` works only from your own folder; import your "
                                   f"modules relatively (from . import {root})")
        elif importlib.util.find_spec(root) is None:
            report.problems.append(f"{where}: imports {root}, which is not installed here (nor, likely, where "
                                   "the autograder runs)")


def check_layout(submission, *, lab=None):
    """Check a submission's layout (see the module docstring).

    Parameters
    ----------
    submission : str or os.PathLike
        The submission folder (modules at its top or in ``exercises/``) or a zip of it.
    lab : str or os.PathLike, optional
        The lab or handout whose checks (``exercises/test_*.py``) name the
        functions they call (``impl.<module>.<name>``); default the current
        folder; without checks only the module names are checked.

    Returns
    -------
    LayoutReport
    """
    submission = Path(submission)
    report = LayoutReport(submission)
    with tempfile.TemporaryDirectory(prefix="warblr-check-") as scratch:
        folder = submission
        if submission.is_file() and zipfile.is_zipfile(submission):
            try:
                folder = submission_root(extract_zip(submission, Path(scratch) / "unpacked"))
            except SubmissionError as exc:
                report.problems.append(str(exc))
                return report
        elif not submission.is_dir():
            report.problems.append(f"{submission}: not a folder or a zip file")
            return report
        folder = find_submission(folder)
        try:
            taken = take_in(folder)
        except SubmissionError as exc:
            report.problems.append(f"{exc} (the autograder refuses the whole submission)")
            return report
        report.found.append(f"intake accepts {len(taken.files)} file(s) in {folder}")
        for module, message in sorted(taken.forbidden_by_module().items()):
            report.problems.append(f"{module}.py: {message}")
        checks = Path(lab) / "exercises" if lab is not None else Path("exercises")
        called = names_called_by_checks(checks) if checks.is_dir() else {}
        if not called:
            report.found.append(f"no checks found in {checks}: only the module names are checked (use --lab)")
        for name in EXERCISE_MODULES:
            data = taken.files.get(f"{name}.py")
            if data is None:
                report.problems.append(f"{name}.py is missing (names are case-sensitive; put it next to the others)")
                continue
            try:
                tree = ast.parse(data, filename=f"{name}.py")  # bytes: its coding line honoured, as Python does
            except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
                line = getattr(exc, "lineno", None)
                report.problems.append(f"{name}.py does not parse: {exc.__class__.__name__}: "
                                       f"{getattr(exc, 'msg', exc)}" + (f" (line {line})" if line else ""))
                continue
            wanted = called.get(name, set())
            defined = {node.name for node in tree.body
                       if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
            defined |= {target.id for node in tree.body if isinstance(node, ast.Assign)
                        for target in node.targets if isinstance(target, ast.Name)}
            missing = sorted(wanted - defined)
            if missing:
                report.problems.append(f"{name}.py does not define {', '.join(missing)} (the checks call "
                                       f"{'it' if len(missing) == 1 else 'them'})")
            else:
                report.found.append(f"{name}.py parses and defines "
                                    f"{len(wanted) if wanted else len(defined)} function(s)/class(es)")
            _check_imports(report, name, tree, taken.files)
    return report
