"""pytest plugin for the warblr lab (minimal: --impl and the ``impl`` fixture; being extended)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

EXERCISE_MODULES = ("resampling", "logmel", "embedding", "classify")


def pytest_addoption(parser):
    group = parser.getgroup("warblr grading")
    group.addoption("--impl", default="exercises",
                    help="implementation to grade: 'exercises', 'solutions' or a path to a package folder "
                         "holding resampling.py, logmel.py, embedding.py, classify.py")


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n): points this graded check is worth")
    config.addinivalue_line("markers", "hint(text): the likely mistake when this check fails")
    config.addinivalue_line("markers", "visibility(kind): Gradescope visibility (visible, hidden, after_due_date, after_published)")


def _load_package(folder: Path, alias: str):
    spec = importlib.util.spec_from_file_location(alias, folder / "__init__.py", submodule_search_locations=[str(folder)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[alias] = package
    spec.loader.exec_module(package)
    return package


@pytest.fixture(scope="session")
def impl(request):
    """The graded implementation: a namespace of its four modules."""
    choice = request.config.getoption("--impl")
    root = Path(str(request.config.rootpath))
    folder = root / choice if choice in ("exercises", "solutions") else Path(choice).resolve()
    alias = f"warblr_graded_{abs(hash(str(folder)))}"
    _load_package(folder, alias)
    return SimpleNamespace(**{name: importlib.import_module(f"{alias}.{name}") for name in EXERCISE_MODULES})
