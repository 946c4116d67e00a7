"""What every sub-command's parser shares: the parser class that shows defaults and records its option flags.

The command modules (``warblr.lab.commands``, ``warblr.lab.fetch.command``,
``warblr.bench``, ...) register their sub-commands on parsers of class
:class:`CommandParser`, which :mod:`warblr.cli` creates; they never import
:mod:`warblr.cli` itself, so the dispatcher depends on them and not the
other way round. Only argparse's public API is used: ``add_argument``
returns the :class:`argparse.Action` whose documented attributes (``help``,
``default``, ``required``, ``option_strings``) are read here.
"""

from __future__ import annotations

import argparse

__all__ = ["HelpFormatter", "CommandParser"]


class HelpFormatter(argparse.HelpFormatter):
    """The formatter of parsers that show each option's default (added by :class:`CommandParser`).

    Combine it with argparse's formatters as usual, e.g.
    ``class Formatter(argparse.RawDescriptionHelpFormatter, HelpFormatter)``.
    """


class CommandParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` for ``warblr`` and its sub-commands.

    * With a :class:`HelpFormatter` (the default ``formatter_class``) each
      option's help ends with ``(default: ...)``, except where there is none to
      show: no default, a required option, or a help text that already says it.
    * Each parser sets the default ``option_flags``: the flags of the options
      it defines, so :func:`warblr.cli.error_message` can name ``--batch-size``
      when the library complains about ``batch_size`` (the innermost
      sub-command's flags win).
    * :attr:`subcommands` is the action :meth:`add_subparsers` returned, so
      sub-command parsers can be reached by name: ``parser.subcommands.choices["fetch"]``.

    Examples
    --------
    >>> parser = CommandParser(prog="demo")
    >>> _ = parser.add_argument("--size", type=int, default=3, help="clips")
    >>> parser.parse_args([]).option_flags == {"-h", "--help", "--size"}
    True
    >>> "(default: 3)" in parser.format_help()
    True
    """

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        self.option_flags = set()
        self.subcommands = None
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def add_argument(self, *args, **kwargs):
        return self._added(super().add_argument(*args, **kwargs))

    def add_argument_group(self, *args, **kwargs):
        return self._noting(super().add_argument_group(*args, **kwargs))

    def add_mutually_exclusive_group(self, **kwargs):
        return self._noting(super().add_mutually_exclusive_group(**kwargs))

    def _noting(self, group):
        """``group`` with its ``add_argument`` (and its own groups) reporting to this parser."""
        add_argument, add_group = group.add_argument, group.add_mutually_exclusive_group
        group.add_argument = lambda *args, **kwargs: self._added(add_argument(*args, **kwargs))
        group.add_mutually_exclusive_group = lambda **kwargs: self._noting(add_group(**kwargs))
        return group

    def _added(self, action):
        if self._shows_default(action):
            action.help += " (default: %(default)s)"
        self.option_flags.update(action.option_strings)
        self.set_defaults(option_flags=frozenset(self.option_flags))
        return action

    def add_subparsers(self, **kwargs):
        self.subcommands = super().add_subparsers(**kwargs)
        return self.subcommands

    def _shows_default(self, action):
        return (issubclass(self.formatter_class, HelpFormatter) and bool(action.help)
                and action.help is not argparse.SUPPRESS and "%(default)" not in action.help
                and "(default" not in action.help and action.default not in (None, argparse.SUPPRESS)
                and not action.required and bool(action.option_strings))
