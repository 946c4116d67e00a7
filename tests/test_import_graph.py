"""warblr's modules import each other without cycles, counting every way one module can import another.

The graph has an edge for each ``import``/``from ... import`` statement, at
module level or inside a function, and for imports by name: a call of
``importlib.import_module``/``__import__`` with a literal name, and, in a
module that imports by a computed name (``import_module(name)`` over a
dispatch table such as ``warblr.cli.COMMAND_MODULES``, or
``import_module(f".{table[name]}", __name__)``), every string literal in it
that names a warblr module, absolute or relative to its package. That
over-approximates (a name listed but never imported still counts), which is
the safe side for a cycle check.
"""

import ast
import textwrap
from pathlib import Path

import pytest

import warblr

PACKAGE = Path(warblr.__file__).resolve().parent
IMPORTERS = {"import_module", "__import__"}


def module_names(root=PACKAGE):
    names = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _importer_call(node):
    """The first argument of ``importlib.import_module(...)``/``import_module(...)``/``__import__(...)``, or None."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    return node.args[0] if name in IMPORTERS else None


def imports_of(name, tree, modules, *, is_package):
    """The warblr modules the module ``name`` (parsed as ``tree``) imports, in every form the docstring lists."""
    package = name if is_package else name.rsplit(".", 1)[0]
    found = set()
    dynamic_bases = set()  # packages a computed name is resolved against ("" for absolute names)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            submodules = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules]
            found.update(submodules or ([target] if target in modules else []))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif (argument := _importer_call(node)) is not None:
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                text = argument.value
                found.add(f"{package}{text}" if text.startswith(".") else text)
            else:
                relative = (isinstance(argument, ast.JoinedStr) and argument.values
                            and isinstance(argument.values[0], ast.Constant)
                            and str(argument.values[0].value).startswith("."))
                dynamic_bases.add(package if relative else "")
    if dynamic_bases:
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for base in dynamic_bases:
                    candidate = f"{base}.{node.value}" if base else node.value
                    if candidate in modules:
                        found.add(candidate)
    return {module for module in found if module in modules and module != name}


def import_graph(root=PACKAGE):
    """``module -> modules it imports``, from every import anywhere in its source (see the module docstring)."""
    modules = module_names(root)
    return {name: imports_of(name, ast.parse(path.read_text(encoding="utf-8")), modules,
                             is_package=path.name == "__init__.py")
            for name, path in modules.items()}


def find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def graph_of(source, *, name="pkg.mod", modules=("pkg", "pkg.mod", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c")):
    """The imports :func:`imports_of` finds in a made-up module ``name`` of a made-up package ``pkg``."""
    return imports_of(name, ast.parse(textwrap.dedent(source)), set(modules), is_package=name == "pkg")


@pytest.mark.parametrize("source, expected", [
    ("from . import a", {"pkg.a"}),
    ("from .sub import c", {"pkg.sub.c"}),
    ("def f():\n    from .a import thing", {"pkg.a"}),
    ("import importlib\nimportlib.import_module('pkg.b')", {"pkg.b"}),
    ("from importlib import import_module\nimport_module('.b', __package__)", {"pkg.b"}),
    ("__import__('pkg.a')", {"pkg.a"}),
    # a dispatch table of absolute names, imported by a computed name
    ("import importlib\nTABLE = ('pkg.a', 'pkg.sub.c', 'not.a.module')\n"
     "def load():\n    return [importlib.import_module(n) for n in TABLE]", {"pkg.a", "pkg.sub.c"}),
    # a lazy table of relative names, as in warblr/__init__.py
    ("import importlib\n_LAZY = {'thing': 'b'}\n"
     "def __getattr__(x):\n    return importlib.import_module(f'.{_LAZY[x]}', __name__)", {"pkg.b"}),
    # names in a module that never imports by name are just text
    ("HELP = 'see pkg.a'\nNAME = 'pkg.b'", set()),
])
def test_every_form_of_import_is_an_edge(source, expected):
    assert graph_of(source) == expected


def test_the_graph_sees_warblrs_own_imports_by_name():
    graph = import_graph()
    assert "warblr.lab.distributed" in graph["warblr.lab.analyse"]  # a module-level import
    assert "warblr.lab.extract" in graph["warblr.lab.distributed"]  # imported inside functions only
    assert "warblr.lab.fetch.command" in graph["warblr.cli"]  # cli's dispatch table of command modules
    assert "warblr.model" in graph["warblr"]  # warblr's lazy attribute table
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_a_command_module_importing_cli_back_is_a_cycle(tmp_path):
    """The shape issue 20 found: cli imports commands by name, a command imports cli's formatter."""
    root = tmp_path / "app"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "cli.py").write_text("import importlib\nMODULES = ('app.cmd',)\n"
                                 "def build():\n    for m in MODULES:\n        importlib.import_module(m)\n")
    (root / "cmd.py").write_text("def register():\n    from .cli import build\n")
    assert find_cycle(import_graph(root)) == ["app.cli", "app.cmd", "app.cli"]


def test_no_import_cycle_among_warblr_modules():
    assert find_cycle(import_graph()) is None
