"""The grading defaults that the plugin, ``warblr grade`` and ``grade batch`` share (one source, no heavy imports).

Kept apart from :mod:`warblr.grading.plugin` so that building the command
line (``warblr --help``) reads them without importing pytest or the sandbox.
"""

#: Address-space cap of an isolated worker when none is given.
DEFAULT_WORKER_MEMORY = "6G"

#: The unprivileged user the worker runs as when the grader is root.
DEFAULT_SANDBOX_USER = "nobody"

#: Seconds each graded check may take.
DEFAULT_CHECK_TIMEOUT = 30.0

#: The lab's folder of graded checks (and, in a handout, the stubs students fill in).
CHECKS_FOLDER = "exercises"

#: Secret input seeds a Gradescope package stores (besides the public one); a graded run uses one of them.
SECRET_INPUT_SEEDS = 16
