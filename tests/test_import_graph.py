"""warblr's modules import each other without cycles, counting imports inside functions too."""

import ast
from pathlib import Path

import warblr

PACKAGE = Path(warblr.__file__).resolve().parent


def module_names():
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def import_graph():
    """``module -> modules it imports``, from every ``import`` statement anywhere in its source."""
    modules = module_names()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                submodules = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules]
                imported = submodules or ([target] if target in modules else [])
            elif isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names if alias.name in modules]
            else:
                continue
            graph[name].update(module for module in imported if module != name)
    return graph


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


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "warblr.lab.distributed" in graph["warblr.lab.analyse"]  # a module-level import
    assert "warblr.lab.extract" in graph["warblr.lab.distributed"]  # imported inside functions only
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle_among_warblr_modules():
    assert find_cycle(import_graph()) is None
