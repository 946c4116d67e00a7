"""``warblr grade``: build the student handout and the Gradescope package, run the graded checks."""

from __future__ import annotations

import argparse
import sys

from .defaults import DEFAULT_CHECK_TIMEOUT, DEFAULT_SANDBOX_USER, DEFAULT_WORKER_MEMORY, SECRET_INPUT_SEEDS

_DESCRIPTION = """\
The lab's grading tools.

  warblr grade handout --out DIR      student copy of the lab (no solutions/, no hidden checks)
  warblr grade run                    run the graded checks, write the score table and results.json
  warblr grade autograder --out DIR   Gradescope autograder folder (or --zip)
  warblr grade batch SUBMISSIONS --out DIR
                                      grade a whole course: gradebook CSVs, summary, plots, feedback
  warblr grade check SUBMISSION       (students) is the submission's layout right before uploading?

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


def add_grading_options(parser):
    """The options of how each check runs, shared by ``grade run`` and ``grade batch``."""
    parser.add_argument("--timeout", type=float, default=DEFAULT_CHECK_TIMEOUT, metavar="SECONDS",
                        help="time limit of each check (default: %(default)g)")
    parser.add_argument("--max-memory", default=DEFAULT_WORKER_MEMORY, metavar="SIZE",
                        help="memory cap of the graded code: the address space (RLIMIT_AS) of each of its "
                             "processes, and, where the worker has a control group, the resident memory of all "
                             "of them together; 'none' for no cap; raise it if the code uses CUDA "
                             "(default: %(default)s)")
    parser.add_argument("--sandbox-user", default=DEFAULT_SANDBOX_USER, metavar="NAME",
                        help="unprivileged user the worker runs as when grading as root (default: %(default)s)")
    parser.add_argument("--leaderboard", action="store_true",
                        help="add the speed and AUC figures the checks record to results.json's Gradescope "
                             "leaderboard")


def _max_memory(args):
    """``--max-memory`` as the runner takes it: None for 'none'."""
    return None if str(args.max_memory).lower() in ("none", "0", "") else args.max_memory


def register(subparsers):
    """Add ``warblr grade`` (with ``handout`` and ``run``) to the ``warblr`` parser."""
    from ..cli_support import HelpFormatter

    grade = subparsers.add_parser(
        "grade", help="build the student handout or run the graded checks",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = grade.add_subparsers(dest="grade_command", metavar="{handout,run,autograder,batch,check}")
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
    add_grading_options(run)
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
    autograder.add_argument("--timeout", type=float, default=DEFAULT_CHECK_TIMEOUT, metavar="SECONDS",
                            help="time limit of each check on Gradescope (default: %(default)g)")
    autograder.add_argument("--secret-seeds", type=int, default=SECRET_INPUT_SEEDS, metavar="N",
                            help="secret input seeds to store, each with the solutions' answers to its inputs "
                                 "(~0.3 MB and ~0.2 s each); a graded run uses one at random. The checks with "
                                 "stored answers repeat among N input sets; the others get fresh inputs every "
                                 "run (default: %(default)d)")
    autograder.set_defaults(func=_autograder)
    _register_batch(commands)
    _register_check(commands)


_BATCH_EPILOG = """\
examples:
  warblr grade batch submissions/ --out grades/            a folder of submission folders (or zips)
  warblr grade batch export.zip --out grades/ --similarity  a Gradescope "export submissions" zip
  warblr grade batch submissions/ --out grades/ --regrade   after a check changed: grade everything again
  warblr grade batch submissions/ --out grades/ --ray auto  spread the submissions over a Ray cluster

A rerun grades only new or changed submissions (fingerprint: the files, the
checks, warblr's version, the options); a killed run loses only the
submissions in flight. Outputs in --out: grades.csv, canvas.csv (Canvas
gradebook import), summary.md, scores.png, pass_rates.png, similarity.html,
similarity.csv and similarity_sources.csv (--similarity),
students/<id>/{results.json,feedback.md}. --out is made
readable by its owner only (it holds every student's grades).
Exit status: 0 when every submission was graded, 1 when some need a look.
"""


def _register_batch(commands):
    batch = commands.add_parser(
        "batch", help="grade every submission of a course into a gradebook",
        description="Grade each submission as `warblr grade run` does (same intake, same sandbox, same "
                    "time limits), several at once, and write the gradebook.",
        epilog=_BATCH_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    batch.add_argument("submissions", metavar="SUBMISSIONS",
                       help="folder of submission folders or zips, a zip of them, or a Gradescope export "
                            "(folder or zip holding submission_metadata.yml)")
    batch.add_argument("--out", required=True, metavar="DIR", help="output folder (created; resumable)")
    batch.add_argument("--lab", default=".", metavar="DIR",
                       help="the lab holding exercises/ with the checks (default: current folder)")
    batch.add_argument("--jobs", type=int, default=None, metavar="N",
                       help="graders at once (default: one per core, as memory allows; said in the output)")
    batch.add_argument("--ray", default=None, metavar="ADDRESS",
                       help="grade on Ray: 'local' (a private Ray on this machine), 'auto' or HOST:PORT; "
                            "the lab and --out must be at the same paths on every node")
    batch.add_argument("--regrade", action="store_true", help="grade every submission again")
    batch.add_argument("--similarity", action="store_true",
                       help="also write similarity.html: pairs of submissions ranked by shared code "
                            "(winnowing, stubs excluded), and each submission's share of code found in known "
                            "sources (the lab's solutions/, warblr's engine, torchvggish, resampy, librosa); it "
                            "flags, it never changes a score")
    add_grading_options(batch)
    batch.add_argument("--assignment", default="warblr lab", metavar="NAME",
                       help="the assignment column of canvas.csv, e.g. 'Lab 1 (12345)' (default: %(default)s)")
    batch.add_argument("--due", default=None, metavar="DATETIME",
                       help="deadline, ISO 8601 (2026-12-01T23:59-08:00): a Gradescope submission created after "
                            "it is late in grades.csv")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    batch.add_argument("--trust-submissions", action="store_true",
                       help="grade although this is not root: every student's code then runs as you and could "
                            "read or change the other submissions' results (refused without this flag)")
    batch.set_defaults(func=_batch)


def _register_check(commands):
    from ..cli_support import HelpFormatter

    check = commands.add_parser(
        "check", help="check a submission's layout before uploading it",
        description="Say whether SUBMISSION (a folder or zip) has what the autograder needs: the four "
                    "modules by their names, every graded function, Python that parses, imports that "
                    "resolve, nothing the intake refuses (links, huge or too many files, forbidden "
                    "imports). It does not run your code or grade it.",
        formatter_class=HelpFormatter)
    check.add_argument("submission", metavar="SUBMISSION", help="your submission folder (or its zip)")
    check.add_argument("--lab", default=None, metavar="DIR",
                       help="the lab or handout whose checks (exercises/test_*.py) name the functions "
                            "(default: the current folder)")
    check.set_defaults(func=_check)


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
                             make_zip=args.zip, secret_seeds=args.secret_seeds)
    print(f"autograder written to {built['out']}")
    if built["zip"]:
        print(f"upload {built['zip']} as the Gradescope autograder (Ubuntu base image)")
    return 0


def _run(args):
    from .runner import run_checks

    max_memory = _max_memory(args)
    if args.no_isolation:
        print("warblr grade: --no-isolation: the graded code runs inside the grading process and can tamper "
              "with the answers, the checks and results.json. UNSAFE: use only for debugging.", file=sys.stderr)
    pytest_args = list(args.pytest_args) + (["--grade-leaderboard"] if args.leaderboard else [])
    outcome = run_checks(root=args.root, impl=args.impl, grade_json=args.grade_json, timeout=args.timeout,
                         max_memory=max_memory, pytest_args=pytest_args, isolate=not args.no_isolation,
                         sandbox_user=args.sandbox_user)
    results = outcome["results"]
    if outcome["crashes"]:
        print(f"warblr grade: the checks' process stopped {outcome['crashes']} time(s); the run was "
              f"resumed ({outcome['runs']} pytest runs)", file=sys.stderr)
    print(f"score: {results['score']:g} / {results['max_score']:g}")
    if args.grade_json:
        print(f"results written to {args.grade_json}")
    return 0 if results["max_score"] and results["score"] == results["max_score"] else 1


def _batch(args):
    from .batch import grade_batch

    max_memory = _max_memory(args)
    summary = grade_batch(args.submissions, out=args.out, lab=args.lab, jobs=args.jobs, ray=args.ray,
                          regrade=args.regrade, similarity=args.similarity, timeout=args.timeout,
                          max_memory=max_memory, sandbox_user=args.sandbox_user, assignment=args.assignment,
                          leaderboard=args.leaderboard, due=args.due, progress=not args.no_progress,
                          trust_submissions=args.trust_submissions)
    return 1 if summary.problems else 0


def _check(args):
    from .layout import check_layout

    report = check_layout(args.submission, lab=args.lab)
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1
