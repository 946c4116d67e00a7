"""``warblr grade``: build the student handout and run the graded checks."""

from __future__ import annotations

import argparse
import sys

_DESCRIPTION = """\
The lab's grading tools.

  warblr grade handout --out DIR   student copy of the lab (no solutions/, no hidden checks)
  warblr grade run                 run the graded checks, write the score table and results.json

Students can also run the checks directly with `python -m pytest exercises`
(in the repository add --impl=solutions to grade the reference answers).
"""

_RUN_EPILOG = """\
examples:
  warblr grade run                                   grade exercises/ in the current folder
  warblr grade run --impl solutions                  the reference answers (must score 100 %)
  warblr grade run --impl /autograder/submission --grade-json /autograder/results/results.json
  warblr grade run -- -q -k logmel                   extra pytest arguments after --

A Gradescope run_autograder script can be the third line, run from a copy of
the instructor repository (it holds the hidden checks). Exit status: 0 for
full marks, 1 otherwise.
"""


def register(subparsers):
    """Add ``warblr grade`` (with ``handout`` and ``run``) to the ``warblr`` parser."""
    from ..cli import HelpFormatter

    grade = subparsers.add_parser(
        "grade", help="build the student handout or run the graded checks",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = grade.add_subparsers(dest="grade_command", metavar="{handout,run}")
    grade.set_defaults(func=lambda args: (grade.print_help(), 2)[1])

    handout = commands.add_parser(
        "handout", help="build the student copy of the lab",
        description="Copy the lab for students: exercises/ (stubs, visible checks, conftest.py, "
                    "reference.py) with reference data computed from solutions/ so the checks run "
                    "offline without solutions/; a conftest.py registering the grading plugin, a "
                    "pytest.ini, requirements.txt and a README. Checks marked "
                    "@pytest.mark.visibility('hidden') are left out.",
        formatter_class=HelpFormatter)
    handout.add_argument("--out", required=True, metavar="DIR",
                         help="handout folder to create (must not exist or be empty)")
    handout.add_argument("--source", default=".", metavar="DIR",
                         help="the instructor's lab folder holding exercises/ and solutions/")
    handout.add_argument("--force", action="store_true",
                         help="replace an earlier handout in --out")
    handout.set_defaults(func=_handout)

    run = commands.add_parser(
        "run", help="run the graded checks (pytest) and write results.json",
        description="Run the graded checks in a child pytest, print the score table and optionally\n"
                    "write a Gradescope results.json. If the checked code kills the interpreter\n"
                    "(os._exit, a crash, the OOM killer, a hang that ignores the timeout), the run\n"
                    "resumes after the check that did it, which scores 0.",
        epilog=_RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--impl", default="exercises", metavar="PATH",
                     help="implementation to grade: 'exercises', 'solutions' or a path to a package "
                          "folder with resampling.py, logmel.py, embedding.py, classify.py "
                          "(default: %(default)s)")
    run.add_argument("--grade-json", default=None, metavar="PATH",
                     help="write Gradescope's results.json here (default: not written)")
    run.add_argument("--root", default=".", metavar="DIR",
                     help="folder holding exercises/ and conftest.py (default: current folder)")
    run.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                     help="time limit of each check (default: %(default)g)")
    run.add_argument("--max-memory", default="6G", metavar="SIZE",
                     help="address-space cap of the checks' process (RLIMIT_AS), 'none' for no cap; "
                          "raise it if the checks use CUDA (default: %(default)s)")
    run.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS",
                     help="more pytest arguments, after --")
    run.set_defaults(func=_run)


def _handout(args):
    from .handout import build_handout

    built = build_handout(args.out, source=args.source, force=args.force)
    print(f"handout written to {built['out']}")
    if built["removed_modules"]:
        print("hidden modules left out: " + ", ".join(built["removed_modules"]))
    print(f"students: cd {built['out']} && python -m pip install -r requirements.txt && python -m pytest")
    return 0


def _run(args):
    from .runner import run_checks

    max_memory = None if str(args.max_memory).lower() in ("none", "0", "") else args.max_memory
    outcome = run_checks(root=args.root, impl=args.impl, grade_json=args.grade_json, timeout=args.timeout,
                         max_memory=max_memory, pytest_args=args.pytest_args)
    results = outcome["results"]
    if outcome["crashes"]:
        print(f"warblr grade: the checks' process stopped {outcome['crashes']} time(s); the run was "
              f"resumed ({outcome['runs']} pytest runs)", file=sys.stderr)
    print(f"score: {results['score']:g} / {results['max_score']:g}")
    if args.grade_json:
        print(f"results written to {args.grade_json}")
    return 0 if results["max_score"] and results["score"] == results["max_score"] else 1
