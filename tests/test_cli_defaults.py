"""Every command-line default that mirrors a library value equals that value (issue 20: no hand-made copies).

Each sub-command's parser is built by :func:`warblr.cli.build_parser`; its
default, as the command receives it (parsed, so ``--pca-sizes "2,4"``
becomes a tuple and bench's text defaults become numbers the way its
command converts them), is compared with the library's signature default
(:func:`inspect.signature`) or module constant it stands for. A second test
makes sure no default escapes: every option with a default (other than
None or a flag's False) is either compared here or listed as the command's
own choice, with the reason. Reading defaults from the library must not
make ``warblr --help`` slow: building the parser imports no heavy library.
The last keeps argparse's private attributes out of ``warblr/``.
"""

import argparse
import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import warblr
from warblr.cli import build_parser


class Signature:
    """The default of ``parameter`` in ``module.function``'s signature."""

    def __init__(self, module, function, parameter):
        self.module, self.function, self.parameter = module, function, parameter

    def value(self):
        target = importlib.import_module(self.module)
        for attribute in self.function.split("."):
            target = getattr(target, attribute)
        parameters = inspect.signature(target).parameters
        assert self.parameter in parameters, f"{self} does not exist (yet)"
        return parameters[self.parameter].default

    def __repr__(self):
        return f"{self.module}.{self.function}({self.parameter}=...)"


class Constant:
    """The module constant ``module.name``."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def value(self):
        module = importlib.import_module(self.module)
        assert hasattr(module, self.name), f"{self} does not exist (yet)"
        return getattr(module, self.name)

    def __repr__(self):
        return f"{self.module}.{self.name}"


ENGINE = "warblr.embed"
GRADING = "warblr.grading.defaults"
LAB = ("demo", "extract", "analyse", "embed")
#: (command, option dest, library values it mirrors: all must equal the command's default)
CASES = [
    *[(command, "batch_size", [Signature(ENGINE, "make_engine", "batch_size"),
                               Signature(ENGINE, "embed_examples", "batch_size"),
                               Signature(ENGINE, "batch_embeddings", "batch_size")]) for command in LAB],
    *[(command, option, [Signature(ENGINE, "make_engine", option)]) for command in LAB
      for option in ("workers", "device", "dtype")],
    *[(command, "group_size", [Signature("warblr.lab.extract", "extract", "group_size"),
                               Signature("warblr.lab.analyse", "analyse", "group_size"),
                               Signature("warblr.lab.embed_audio", "embed_audio", "group_size")]) for command in LAB],
    ("embed", "format", [Signature("warblr.lab.embed_audio", "embed_audio", "table_format")]),
    *[(command, "hop", [Signature("warblr.lab.extract", "extract", "hop"),
                        Signature("warblr.lab.embed_audio", "embed_audio", "hop")]) for command in LAB],
    *[(command, "weights", [Signature("warblr.weights", "load_with_provenance", "weights")]) for command in LAB],
    *[(command, "weights_seed", [Signature("warblr.weights", "load_with_provenance", "seed")]) for command in LAB],
    ("extract", "seed", [Signature("warblr.lab.dataset", "read_dataset", "seed")]),
    *[(command, "seed", [Signature("warblr.lab.analyse", "analyse", "seed"),
                         Signature("warblr.lab.dataset", "read_dataset", "seed")]) for command in ("demo", "analyse")],
    *[(command, "folds", [Signature("warblr.lab.analyse", "analyse", "folds"),
                          Signature("warblr.lab.analyse", "cross_validated_auc", "folds"),
                          Signature("warblr.lab.analyse", "pca_sweep", "folds")]) for command in ("demo", "analyse")],
    *[(command, "pca_sizes", [Constant("warblr.lab.analyse", "PCA_SIZES"),
                              Signature("warblr.lab.analyse", "pca_sweep", "sizes")])
      for command in ("demo", "analyse")],
    ("demo", "size", [Signature("warblr.lab.corpus", "make_corpus", "n_clips")]),
    *[(command, "ray_batch", [Signature("warblr.lab.distributed", "RaySettings", "batch")])
      for command in ("extract", "analyse", "embed")],
    *[("fetch", option, [Signature("warblr.lab.fetch", "fetch", option),
                         Signature("warblr.lab.download", "download", option)])
      for option in ("retries", "timeout", "retry_wait")],
    ("export", "rows_per_file", [Signature("warblr.lab.export", "export_parquet", "rows_per_file")]),
    ("export", "row_group_size", [Signature("warblr.lab.export", "export_parquet", "row_group_rows")]),
    ("bench", "batch_size", [Signature("warblr.bench", "run_bench", "batch_size"),
                             Signature(ENGINE, "make_engine", "batch_size")]),
    *[("bench", option, [Signature("warblr.bench", "run_bench", option)])
      for option in ("repeats", "seed", "dtype", "device")],
    ("bench", "seconds", [Signature("warblr.bench", "synthetic_clips", "seconds")]),
    ("bench", "rate", [Signature("warblr.bench", "synthetic_clips", "sample_rate")]),
    ("grade run", "timeout", [Constant(GRADING, "DEFAULT_CHECK_TIMEOUT"),
                              Signature("warblr.grading.runner", "run_checks", "timeout")]),
    *[("grade run", option, [Signature("warblr.grading.runner", "run_checks", option)]) for option in ("impl", "root")],
    ("grade run", "max_memory", [Constant(GRADING, "DEFAULT_WORKER_MEMORY")]),
    ("grade run", "sandbox_user", [Constant(GRADING, "DEFAULT_SANDBOX_USER")]),
    ("grade batch", "max_memory", [Constant(GRADING, "DEFAULT_WORKER_MEMORY"),
                                   Signature("warblr.grading.batch", "grade_batch", "max_memory")]),
    ("grade batch", "sandbox_user", [Constant(GRADING, "DEFAULT_SANDBOX_USER"),
                                     Signature("warblr.grading.batch", "grade_batch", "sandbox_user")]),
    *[("grade batch", option, [Signature("warblr.grading.batch", "grade_batch", option)])
      for option in ("lab", "timeout", "assignment", "jobs")],
    ("grade autograder", "timeout", [Constant(GRADING, "DEFAULT_CHECK_TIMEOUT"),
                                     Signature("warblr.grading.autograder", "build_autograder", "timeout")]),
    ("grade autograder", "source", [Signature("warblr.grading.autograder", "build_autograder", "source")]),
    ("grade autograder", "secret_seeds", [Constant(GRADING, "SECRET_INPUT_SEEDS"),
                                          Signature("warblr.grading.autograder", "build_autograder", "secret_seeds")]),
    ("grade handout", "source", [Signature("warblr.grading.handout", "build_handout", "source")]),
]

#: Defaults that are the command's own choice, not a copy of a library value.
OWN_CHOICES = {
    ("bench", "clips"): "how many clips to time; the library takes the clips themselves",
}

#: Arguments a command needs before it parses (values are never opened).
REQUIRED = {
    "demo": ["--out", "o"], "extract": ["--data", "d", "--out", "o"], "analyse": ["--data", "d", "--out", "o"],
    "embed": ["a.wav", "--out", "o"], "export": ["o", "--parquet", "p"], "grade handout": ["--out", "o"],
    "grade autograder": ["--out", "o"], "grade batch": ["s", "--out", "o"],
}


@pytest.fixture(scope="module")
def parser():
    return build_parser()


def subcommand(parser, command):
    for name in command.split():
        choices = parser.subcommands.choices if parser.subcommands is not None else {}
        assert name in choices, f"`warblr {command}` is not registered"
        parser = choices[name]
    return parser


def commands(parser, prefix=""):
    """Every sub-command's name (``"grade run"``) and parser, aliases once."""
    found, seen = [], set()
    for name, sub in (parser.subcommands.choices.items() if parser.subcommands is not None else ()):
        if id(sub) not in seen:
            seen.add(id(sub))
            found += [(f"{prefix}{name}", sub)] + commands(sub, f"{prefix}{name} ")
    return found


def as_received(sub, command, dest):
    """The default the command's function receives: parsed (argparse converts text defaults with ``type``)."""
    try:
        return getattr(sub.parse_args(REQUIRED.get(command, [])), dest)
    except SystemExit:  # other required arguments than REQUIRED knows: the default as declared
        return sub.get_default(dest)


def same(received, library):
    if isinstance(received, str) and isinstance(library, (int, float)) and not isinstance(library, bool):
        received = type(library)(received)  # bench parses its text options with validation.parse_scalar
    if isinstance(library, list):
        library = tuple(library)
    return received == library


@pytest.mark.parametrize("command, dest, mirrored", CASES, ids=[f"{c}--{d}" for c, d, _ in CASES])
def test_a_default_is_the_library_value_it_mirrors(parser, command, dest, mirrored):
    sub = subcommand(parser, command)
    flag = "--" + dest.replace("_", "-")
    assert flag in sub.get_default("option_flags"), f"`warblr {command}` has no {flag}"
    received = as_received(sub, command, dest)
    for library in mirrored:
        value = library.value()
        assert same(received, value), f"`warblr {command} {flag}` defaults to {received!r}, {library!r} is {value!r}"


def test_every_default_is_checked_or_the_commands_own(parser):
    checked = {(command, dest) for command, dest, _ in CASES} | set(OWN_CHOICES)
    unchecked = []
    for command, sub in commands(parser):
        for flag in sorted(sub.get_default("option_flags") or ()):
            dest = flag.lstrip("-").replace("-", "_")
            value = sub.get_default(dest)
            if flag.startswith("--") and value is not None and value is not False and value != argparse.SUPPRESS \
                    and (command, dest) not in checked:
                unchecked.append(f"warblr {command} {flag}={value!r}")
    assert not unchecked, "defaults that mirror nothing checked here (add them to CASES or OWN_CHOICES): " + \
        ", ".join(unchecked)


HEAVY = ("torch", "sklearn", "matplotlib", "pandas", "pyarrow", "ray", "scipy", "numba")


def test_building_the_parser_imports_no_heavy_library():
    """Defaults read from the library come from light modules (warblr.spec and the like), never through torch."""
    code = ("import sys\nfrom warblr.cli import build_parser\nbuild_parser()\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [], f"`warblr --help` imports {run.stdout.strip()}"


#: Private names of argparse's module and classes (and of a parser's instance state).
PRIVATE_ARGPARSE = {name for owner in (argparse, argparse.ArgumentParser, argparse.Action, argparse.HelpFormatter,
                                        argparse.Namespace, vars(argparse.ArgumentParser()))
                    for name in (owner if isinstance(owner, dict) else dir(owner))
                    if name.startswith("_") and not name.endswith("__")}


def private_argparse_uses(source):
    """``(line, name)`` of every attribute or import of a private argparse name in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE_ARGPARSE:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom) and node.module == "argparse":
            found += [(node.lineno, alias.name) for alias in node.names if alias.name in PRIVATE_ARGPARSE]
    return found


def test_the_private_name_check_can_fail():
    assert "_actions" in PRIVATE_ARGPARSE and "_get_help_string" in PRIVATE_ARGPARSE
    assert private_argparse_uses("for a in parser._actions:\n    pass") == [(1, "_actions")]
    assert private_argparse_uses("from argparse import _SubParsersAction") == [(1, "_SubParsersAction")]
    assert private_argparse_uses("parser.add_argument('--x')") == []


def test_no_private_argparse_names_in_warblr():
    package = Path(warblr.__file__).resolve().parent
    uses = [f"{path.relative_to(package.parent)}:{line}: {name}" for path in sorted(package.rglob("*.py"))
            for line, name in private_argparse_uses(path.read_text(encoding="utf-8"))]
    assert not uses, uses
