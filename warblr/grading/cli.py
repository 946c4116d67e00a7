"""``warblr grade``: build the student handout and the Gradescope package, run the graded checks."""

from __future__ import annotations

import argparse
import sys

_DESCRIPTION = """\
The lab's grading tools.

  warblr grade handout --out DIR      student copy of the lab (no solutions/, no hidden checks)
  warblr grade run                    run the graded checks, write the score table and results.json
  warblr grade autograder --out DIR   Gradescope autograder folder (or --zip)

Modes. `warblr grade run` and the Gradescope autograder ISOLATE the graded
code: the checks, the reference answers and the results writer stay in the
trusted grader process, which never imports the student's code; each check
gets a fresh worker process that imports and runs it, exchanging only plain
data (arrays without pickle, JSON). The worker runs in an empty folder with a
scrubbed environment, under rlimits, without network where the kernel allows
a new network namespace, with the answers, the checks and the results folder
hidden; when the grader runs as root it also runs as an unprivileged user
(--sandbox-user, default nobody), so it cannot read the answers, write the
results or signal the grader. Without root only the process separation
applies, and the output says so. --no-isolation runs the code inside the
grading process: UNSAFE, for debugging only.

Students check themselves with `python -m pytest exercises` (in-process by
default, for speed; add --isolate to grade as the autograder does). In the
repository add --impl=solutions to grade the reference answers.
"""

_RUN_EPILOG = """\
examples:
  warblr grade run                                   grade exercises/ in the current folder
  warblr grade run --impl solutions                  the reference answers (must score 100 %)
  warblr grade run --impl /autograder/submission --grade-json /autograder/results/results.json
  warblr grade run -- -q -k logmel                   extra pytest arguments after --

For Gradescope build the package with `warblr grade autograder --zip --out DIR`.
Exit status: 0 for full marks, 1 otherwise.
"""


def register(subparsers):
    """Add ``warblr grade`` (with ``handout`` and ``run``) to the ``warblr`` parser."""
    from ..cli import HelpFormatter

    grade = subparsers.add_parser(
        "grade", help="build the student handout or run the graded checks",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = grade.add_subparsers(dest="grade_command", metavar="{handout,run,autograder}")
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
                    "write a Gradescope results.json. The graded code runs isolated: one fresh,\n"
                    "confined worker process per check, killed at the check's time limit (see\n"
                    "`warblr grade --help`). With --no-isolation, if the checked code kills the\n"
                    "interpreter the run resumes after the check that did it, which scores 0.",
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
                     help="address-space cap (RLIMIT_AS) of the graded code's process, 'none' for no cap; "
                          "raise it if the code uses CUDA (default: %(default)s)")
    run.add_argument("--sandbox-user", default="nobody", metavar="NAME",
                     help="unprivileged user the worker runs as when grading as root (default: %(default)s)")
    run.add_argument("--no-isolation", action="store_true",
                     help="UNSAFE, for debugging: run the graded code inside the grading process, which it "
                          "can then tamper with (answers, checks, results.json)")
    run.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS",
                     help="more pytest arguments, after --")
    run.set_defaults(func=_run)

    autograder = commands.add_parser(
        "autograder", help="build the Gradescope autograder package",
        description="Write a Gradescope autograder: setup.sh (installs warblr and its dependencies on "
                    "Gradescope's Ubuntu image), run_autograder (grades $AUTOGRADER_ROOT/submission into "
                    "$AUTOGRADER_ROOT/results/results.json, isolated; AUTOGRADER_ROOT defaults to "
                    "/autograder), the checks including the hidden ones, the reference data computed from "
                    "solutions/ (no solutions/ source is included), warblr's source and an instructor "
                    "README. Submissions may hold the four modules at their top level or in exercises/.",
        formatter_class=HelpFormatter)
    autograder.add_argument("--out", required=True, metavar="DIR",
                            help="folder to create (must not exist or be empty); with --zip, the zip file "
                                 "DIR.zip is written next to it as well")
    autograder.add_argument("--source", default=".", metavar="DIR",
                            help="the instructor's lab folder holding exercises/ and solutions/")
    autograder.add_argument("--zip", action="store_true", help="also write DIR.zip, ready to upload")
    autograder.add_argument("--force", action="store_true", help="replace an earlier package in --out")
    autograder.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                            help="time limit of each check on Gradescope (default: %(default)g)")
    autograder.set_defaults(func=_autograder)


def _handout(args):
    from .handout import build_handout

    built = build_handout(args.out, source=args.source, force=args.force)
    print(f"handout written to {built['out']}")
    if built["removed_modules"]:
        print("hidden modules left out: " + ", ".join(built["removed_modules"]))
    print(f"students: cd {built['out']} && python -m pip install -r requirements.txt && python -m pytest")
    return 0


def _autograder(args):
    from .autograder import build_autograder

    built = build_autograder(args.out, source=args.source, force=args.force, timeout=args.timeout,
                             make_zip=args.zip)
    print(f"autograder written to {built['out']}")
    if built["zip"]:
        print(f"upload {built['zip']} as the Gradescope autograder (Ubuntu base image)")
    return 0


def _run(args):
    from .runner import run_checks

    max_memory = None if str(args.max_memory).lower() in ("none", "0", "") else args.max_memory
    if args.no_isolation:
        print("warblr grade: --no-isolation: the graded code runs inside the grading process and can tamper "
              "with the answers, the checks and results.json. UNSAFE: use only for debugging.", file=sys.stderr)
    outcome = run_checks(root=args.root, impl=args.impl, grade_json=args.grade_json, timeout=args.timeout,
                         max_memory=max_memory, pytest_args=args.pytest_args, isolate=not args.no_isolation,
                         sandbox_user=args.sandbox_user)
    results = outcome["results"]
    if outcome["crashes"]:
        print(f"warblr grade: the checks' process stopped {outcome['crashes']} time(s); the run was "
              f"resumed ({outcome['runs']} pytest runs)", file=sys.stderr)
    print(f"score: {results['score']:g} / {results['max_score']:g}")
    if args.grade_json:
        print(f"results written to {args.grade_json}")
    return 0 if results["max_score"] and results["score"] == results["max_score"] else 1
