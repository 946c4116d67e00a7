"""``python -m warblr``: runs the ``warblr`` command line (:func:`warblr.cli.main`) and exits with its status."""

import sys

from .cli import main

sys.exit(main())
