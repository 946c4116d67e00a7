"""The ``warblr`` command line: one sub-command per job.

Each job's module owns its options: it exposes ``register(subparsers)``,
which adds its sub-command(s) and sets ``func(args) -> int``. Modules keep
their heavy imports (torch, sklearn) inside the functions so ``--help`` is quick.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__
from .errors import WarblrError


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show (required or unset options)."""

    def _get_help_string(self, action):
        if action.default is None or action.required:
            return action.help
        return super()._get_help_string(action)


#: Modules that contribute sub-commands, in --help order.
COMMAND_MODULES = (
    "warblr.lab.commands",   # demo, extract, analyse
    "warblr.lab.fetch",      # fetch
    "warblr.lab.export",     # export
    "warblr.bench",          # bench
    "warblr.grading.cli",    # grade
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="warblr",
        description=(
            "VGGish features and embeddings for bird-audio detection (warblrb10k), "
            "and the lab that teaches them. Start with `warblr demo`."
        ),
        formatter_class=HelpFormatter,
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
    _record_flags(subparsers)
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


def _record_flags(subparsers):
    """Give every sub-command's namespace the set of its option flags (for :func:`error_message`)."""
    for sub in set(subparsers.choices.values()):
        sub.set_defaults(option_flags=frozenset(flag for action in sub._actions for flag in action.option_strings))


def main(argv=None):
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
