"""The ``warblr`` command line: builds the parser from the command modules, runs one, turns errors into messages.

Each job's module owns its options: it exposes ``register(subparsers)``,
which adds its sub-command(s) and sets ``func(args) -> int``; the parsers are
:class:`warblr.cli_support.CommandParser` objects, so the command modules
depend on :mod:`warblr.cli_support`, never on this module (no import cycle,
counting the command modules this one imports by name). Modules keep their
heavy imports (torch, sklearn) inside the functions so ``--help`` is quick.
argparse stays: click or typer would replace every command module's
``register`` and the tests that build parsers, and remove no code here.
"""

from __future__ import annotations

import importlib
import os
import sys

from . import __version__
from .cli_support import CommandParser
from .errors import WarblrError

__all__ = ["COMMAND_MODULES", "build_parser", "error_message", "main"]

#: Modules that contribute sub-commands, in --help order.
COMMAND_MODULES = (
    "warblr.lab.commands",        # demo, extract, analyse, embed
    "warblr.lab.fetch.command",   # fetch
    "warblr.lab.export",          # export
    "warblr.bench",               # bench
    "warblr.grading.cli",         # grade
)


def build_parser():
    """The ``warblr`` parser with every sub-command; ``parser.subcommands.choices[name]`` is one's parser.

    Examples
    --------
    >>> build_parser().subcommands.choices["fetch"].get_default("retries")
    3
    """
    parser = CommandParser(
        prog="warblr",
        description=(
            "VGGish features and embeddings for bird-audio detection (warblrb10k), "
            "and the lab that teaches them. Start with `warblr demo`."
        ),
    )
    parser.add_argument("--version", action="version", version=f"warblr {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a job not built yet
        module.register(subparsers)
    return parser


def error_message(exc, args):
    """A warblr error as the command line says it: a library parameter becomes its flag.

    Library code names parameters (``batch_size``); when the failing one is
    an option of the running command (``--batch-size``), the message names
    the flag instead. A command maps parameters whose flag is spelt
    differently with ``set_defaults(parameter_flags={"folder": "--data"})``.
    """
    from .validation import flag_name

    parameter = getattr(exc, "parameter", None)
    if parameter:
        flag = getattr(args, "parameter_flags", {}).get(parameter) or flag_name(parameter)
        if flag in getattr(args, "option_flags", ()):
            reason = getattr(exc, "reason", None)
            return f"{flag}: {reason}" if reason else f"{flag} {exc}"
    return str(exc)


def main(argv=None):
    """Run ``warblr`` with ``argv`` (default: the process's arguments); the exit status."""
    # Library code never picks a matplotlib backend; the command line draws to files only.
    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except WarblrError as exc:
        print(f"warblr: error: {error_message(exc, args)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("warblr: interrupted; finished items are kept, rerun to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `warblr fetch --list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush cannot fail again
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by it


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
