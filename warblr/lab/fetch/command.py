"""``warblr fetch`` on the command line: its options, read from the library's constants, and its messages.

Wiring only: :func:`register` adds the sub-command, :func:`_run` hands the
options to :func:`warblr.lab.fetch.fetch` and says what was done and what to run next.
"""

from __future__ import annotations

from ...errors import InvalidArgumentError
from ...validation import argparse_type
from ..download import MIN_TIMEOUT_S, RETRIES, RETRY_WAIT_S, TIMEOUT_S
from .manifest import MANIFEST_NAME
from .orchestrate import fetch
from .sets import SETS, describe_sets, human_bytes

__all__ = ["register"]

_DESCRIPTION = (
    "Download one DCASE 2018 bird audio detection set into DIR, verify it and lay it out as "
    "`warblr extract/analyse --data DIR` reads it (wav/<itemid>.wav + the label CSV). Sizes: {sizes} "
    "(the archive and the extracted WAVs need about twice that while fetching). "
    "Hashes: each audio archive's size and MD5 are read from its host's metadata at fetch time "
    "(archive.org's /metadata/<item>, Zenodo's /api/records/<id>); no archive hash is pinned in warblr. "
    "The label CSVs (figshare) have no published checksum: they are checked by content against the "
    "verified audio. Each extracted file's SHA-256 goes into DIR/warblr-fetch.json. "
    "Resume: an interrupted download is kept in the hidden folder .<DIR name>.warblr-fetch next to DIR "
    "and resumed (HTTP Range) by the next run; DIR appears only when complete. A rerun on a complete "
    "DIR verifies it and downloads nothing. A second fetch into the same DIR waits for the first (the lock "
    "file .<DIR name>.warblr-fetch.lock stays beside DIR). --list shows every set with its licence and citation.")
_EPILOG = ("Mirror: --mirror URL fetches URL/<archive>, URL/<labels CSV> and URL/<host metadata copy> "
           "(archive.org-<item>.json or zenodo-<id>.json, saved from the host URLs above); the hashes then "
           "come from the mirror's copy, so use a mirror you trust as you would the host.")


def register(subparsers):
    """Add ``warblr fetch``."""
    sizes = ", ".join(f"{s.name} ~{human_bytes(s.approx_bytes)}" for s in SETS.values())
    parser = subparsers.add_parser(
        "fetch", help="download a DCASE 2018 bird set (warblrb10k, ff1010bird, BirdVox-DCASE-20k), verified",
        description=_DESCRIPTION.format(sizes=sizes), epilog=_EPILOG)
    parser.add_argument("name", nargs="?", choices=list(SETS), metavar="NAME",
                        help=f"the set to fetch: {', '.join(SETS)}")
    parser.add_argument("--dest", metavar="DIR", help="dataset folder to create (absent or empty), or a complete "
                                                      "earlier fetch to verify")
    parser.add_argument("--list", action="store_true", help="list the sets (size, licence, citation, hashes) and exit")
    parser.add_argument("--mirror", metavar="URL", default=None,
                        help="base URL serving the same file names and the host's metadata document")
    parser.add_argument("--quick", action="store_true", help="on a complete DIR, check file sizes only, not SHA-256")
    parser.add_argument("--retries", type=argparse_type(int, min_val=0), default=RETRIES, metavar="N",
                        help="reconnections (resuming with HTTP Range) after a dropped connection")
    parser.add_argument("--retry-wait", type=argparse_type(float, min_val=0), default=RETRY_WAIT_S, metavar="S",
                        help="seconds before the first reconnection (twice that before the second, and so on)")
    parser.add_argument("--timeout", type=argparse_type(float, min_val=MIN_TIMEOUT_S), default=TIMEOUT_S,
                        metavar="S", help="seconds without data before a connection counts as dropped")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)


def _run(args):
    if args.list:
        print(describe_sets())
        return 0
    if not args.name:
        raise InvalidArgumentError(f"fetch needs NAME: one of {', '.join(SETS)} (--list describes them)")
    if not args.dest:
        raise InvalidArgumentError("dest: required: the dataset folder to create", parameter="dest",
                                   reason="required: the dataset folder to create")
    if not args.quiet:
        bird_set = SETS[args.name]
        source = f"{args.mirror}/{bird_set.host.metadata_name}" if args.mirror else bird_set.host.metadata_url
        print(f"fetch {bird_set.name} into {args.dest}: about {human_bytes(bird_set.approx_bytes)} to download "
              f"(nothing if it is already complete); archive size and MD5 from {source}")
    result = fetch(args.name, args.dest, mirror=args.mirror, quick=args.quick, progress=not args.quiet,
                   timeout=args.timeout, retries=args.retries, retry_wait=args.retry_wait)
    counts = result.manifest["counts"]
    if result.downloaded:
        archive = result.manifest["archive"]
        print(f"fetched {result.name} into {result.dest}: {counts['items']} clips with labels "
              f"({counts['problems']} problems); {archive['name']} verified against the size and MD5 "
              f"{archive['verified_against']}; labels checked {result.manifest['labels']['verified']}")
    else:
        check = "sizes" if args.quick else "sizes and SHA-256"
        print(f"{result.dest}: complete {result.name} ({len(result.manifest['files'])} files, {check} match "
              f"{MANIFEST_NAME}); nothing to download")
    print(f"next: warblr analyse --data {result.dest} --out OUT")
    return 0
