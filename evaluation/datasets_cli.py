"""``datasets status`` and ``datasets prefetch``: the dataset mirror's commands, shared by ``python -m evaluation``
and ``manage.py datasets`` (staff, on the web host). Torch-free.

``status [--json] [--verify] [--root DIR]``: per benchmark, whether its data are present, revision, size,
fingerprint, or why not. ``prefetch (--suite S | --task T [T ...]) [--revision R] [--root DIR]``: download into
the mirror (``evaluation.prefetch``); exits non-zero at the first dataset it cannot fetch.
"""

import argparse
import json
import sys

from .datasets import format_bytes, mirror_root, mirror_status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``status`` and ``prefetch`` subcommands, on ``parser`` (a ``datasets`` command)."""
    actions = parser.add_subparsers(dest="datasets_action", required=True)
    status = actions.add_parser("status", help="which benchmarks' data are in the mirror")
    status.add_argument("--json", action="store_true", help="print the records as JSON")
    status.add_argument("--verify", action="store_true", help="re-hash every file (slow for large datasets)")
    prefetch = actions.add_parser("prefetch", help="download benchmarks' hub datasets into the mirror")
    which = prefetch.add_mutually_exclusive_group(required=True)
    which.add_argument("--suite", help="every real benchmark of a suite, e.g. reasoning")
    which.add_argument("--task", nargs="+", help="lmms-eval task names or benchmark keys, e.g. pope")
    prefetch.add_argument("--revision", help="hub revision (branch, tag or commit; one dataset at a time)")
    for action in (status, prefetch):
        action.add_argument("--root", help="the mirror folder (default: FRONTIER_DATASETS_DIR)")


def run(args: argparse.Namespace, out=None, err=None) -> int:
    """Run a parsed ``datasets`` command; returns the exit status (progress and failures go to ``err``)."""
    out, err = out or sys.stdout, err or sys.stderr
    root = args.root or mirror_root()
    if args.datasets_action == "status":
        records = mirror_status(root, verify=args.verify)
        if args.json:
            print(json.dumps({"root": str(root), "benchmarks": [r.as_dict() for r in records]}, indent=2), file=out)
            return 0
        print(f"dataset mirror: {root}", file=out)
        for record in records:
            if record.present:
                state = f"present  {record.revision}  {format_bytes(record.bytes)}  {record.fingerprint[:16]}"
            else:
                state = f"MISSING  {record.problem}; run: {record.prefetch}"
            print(f"{record.key:<14} {record.repo_id:<34} {state}", file=out)
        return 0
    from .prefetch import PrefetchError, prefetch, sources_for

    try:
        sources = sources_for(args.suite, args.task)
        if args.revision and len(sources) != 1:
            raise PrefetchError("--revision names one dataset's revision: give one --task with it")
        for source in sources:
            print(f"fetching {source.repo_id} for {source.task} ...", file=err, flush=True)
            record = prefetch(source, root, revision=args.revision)
            print(f"{record.key:<14} {record.folder}  {record.revision}  {format_bytes(record.bytes)}", file=out)
    except PrefetchError as error:
        print(f"error: {error}", file=err)
        return 1
    return 0
