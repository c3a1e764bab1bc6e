"""`python -m webapp.client`: submit checkpoints, follow their evaluation, read their results;
start compressor trainings and sweeps from a JSON spec and follow them.

Exit status: 0 done, 1 rejected / failed / refused by the server, 2 usage or configuration error
(no token, a token the server does not accept, a server that cannot be reached, bad arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import requests
from tqdm import tqdm

from webapp.client.api import DEFAULT_URL, OUT_OF_SPACE, Api, ApiError, ServerUnreachable
from webapp.client.output import describe_checkpoint, describe_run, format_results
from webapp.client.upload import ARCHIVE_SUFFIXES, DEFAULT_CHUNK_BYTES, UploadFailed, file_sha256, pack_folder, upload_archive

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
RUN_FINISHED = {"succeeded", "failed", "partial", "cancelled", "empty"}


class UsageError(Exception):
    """Bad arguments or configuration: exit status 2."""


def say(message: str) -> None:
    """Progress and notes go to stderr, so stdout holds only results (pipe-friendly)."""
    tqdm.write(message, file=sys.stderr)


# --- reads ----------------------------------------------------------------------------------


def checkpoint_runs(api: Api, checkpoint_id: int) -> list[dict]:
    return sorted(api.paginate("/api/v1/evaluations/", {"checkpoint": checkpoint_id}), key=lambda run: run["id"])


def latest_run_per_suite(runs: list[dict], suites: list[str] | None) -> list[dict]:
    latest = {run["suite"]: run for run in runs if suites is None or run["suite"] in suites}
    return sorted(latest.values(), key=lambda run: run["id"])


def checkpoint_results(api: Api, checkpoint_id: int, run_ids: set[int] | None = None) -> list[dict]:
    rows = api.paginate("/api/v1/results/", {"checkpoint": checkpoint_id})
    return [row for row in rows if run_ids is None or row["run"] in run_ids]


# --- waiting --------------------------------------------------------------------------------


def wait_for_validation(api: Api, checkpoint_id: int, poll: float) -> dict:
    shown = None
    while True:
        checkpoint = api.get(f"/api/v1/checkpoints/{checkpoint_id}/")
        if checkpoint["status"] != shown:
            shown = checkpoint["status"]
            say(f"checkpoint {checkpoint_id}: {shown}")
        if checkpoint["status"] in ("ready", "rejected"):
            return checkpoint
        time.sleep(poll)


def expected_items(run: dict) -> int:
    """Items the run will evaluate. A benchmark reports its total once it starts; until all have,
    a run with a limit is expected to do `limit` items per benchmark."""
    status = run["status"]
    if run.get("limit") and status["state"] not in RUN_FINISHED:
        return max(status["progress_total"], run["limit"] * sum(status["jobs"].values()))
    return status["progress_total"]


def watch_runs(api: Api, checkpoint_id: int, suites: list[str] | None, poll: float) -> list[dict]:
    """One progress bar per run (items done / total) until every run has finished."""
    bars: dict[int, tqdm] = {}
    try:
        while True:
            runs = latest_run_per_suite(checkpoint_runs(api, checkpoint_id), suites)
            for run in runs:
                if run["id"] not in bars:
                    bars[run["id"]] = tqdm(desc=f"run {run['id']} {run['suite']}", unit="item", position=len(bars))
                bar, status = bars[run["id"]], run["status"]
                bar.total = expected_items(run) or None
                bar.n = status["progress_done"]
                bar.set_postfix_str(status["state"], refresh=False)
                bar.refresh()
            if all(run["status"]["state"] in RUN_FINISHED for run in runs):
                return runs
            time.sleep(poll)
    finally:
        for bar in bars.values():
            bar.close()


def report_failures(api: Api, run: dict) -> None:
    detail = api.get(f"/api/v1/evaluations/{run['id']}/")
    for benchmark in detail["benchmarks"]:
        if benchmark["state"] != "succeeded":
            reason = f": {benchmark['error']}" if benchmark.get("error") else ""
            say(f"run {run['id']} {run['suite']} / {benchmark['benchmark']}: {benchmark['state']}{reason}")


# --- commands -------------------------------------------------------------------------------


def _check_source(source: Path) -> None:
    if not source.exists():
        raise UsageError(f"{source} does not exist: give a checkpoint folder or a .tar, .tar.gz or .zip of one.")
    if source.is_file() and not source.name.lower().endswith(ARCHIVE_SUFFIXES):
        raise UsageError(f"{source} is not a checkpoint archive: give a folder, or a .tar, .tar.gz or .zip of one.")


def _check_suites(api: Api, suites: list[str]) -> None:
    known = {suite["name"] for suite in api.paginate("/api/v1/suites/")}
    unknown = [suite for suite in suites if suite not in known]
    if unknown:
        raise UsageError(f"Unknown suite(s) {', '.join(unknown)}; known suites: {', '.join(sorted(known))}.")


def submit(api: Api, args) -> int:
    source = Path(args.path)
    _check_source(source)
    if args.limit is not None and not args.suite:
        raise UsageError("--limit needs at least one --suite: the suites to evaluate with that limit.")
    if args.poll <= 0:
        raise UsageError("--poll must be a positive number of seconds.")
    who = api.get("/api/v1/whoami/")  # a wrong token or URL fails here, before packing gigabytes
    if args.suite:
        _check_suites(api, args.suite)
    # With --limit the client starts the runs itself once the checkpoint is ready.
    suites = [] if args.limit is not None else (args.suite or None)
    with tempfile.TemporaryDirectory(prefix="frontier-client-") as work:
        if source.is_dir():
            say(f"packing {source} …")
            archive = pack_folder(source, Path(work))
        else:
            archive = source
        sha256 = file_sha256(archive, progress=not args.quiet)
        say(f"uploading {archive.name} ({archive.stat().st_size:,} bytes) to {api.url} as {who.get('username', '?')}")
        checkpoint, created = upload_archive(
            api, archive, sha256=sha256, name=args.name, visibility=args.visibility, suites=suites,
            chunk_size=args.chunk_size, progress=not args.quiet,
        )
    if created:
        print(f"uploaded as checkpoint {checkpoint['id']} ({checkpoint['url']}): {checkpoint['status']}")
    else:
        print(f"already registered as checkpoint {checkpoint['id']} ({checkpoint['url']})")
    if not args.wait and args.limit is None:
        return EXIT_OK

    checkpoint = wait_for_validation(api, checkpoint["id"], args.poll)
    print(describe_checkpoint(checkpoint))
    if checkpoint["status"] == "rejected":
        return EXIT_FAILED
    if args.limit is not None:
        evaluated = {run["suite"] for run in checkpoint_runs(api, checkpoint["id"])}
        for suite in args.suite:
            if suite in evaluated:
                say(f"{suite}: already evaluated; showing that run")
                continue
            run, _ = api.post("/api/v1/evaluations/", {"checkpoint": checkpoint["id"], "suite": suite, "limit": args.limit})
            print(f"started run {run['id']} on {suite} (limit {args.limit} per benchmark)")
    if not args.wait:
        return EXIT_OK

    runs = watch_runs(api, checkpoint["id"], args.suite or None, args.poll)
    if not runs:
        print("no evaluation runs were requested")
        return EXIT_OK
    for run in runs:
        print(describe_run(run))
        if run["status"]["state"] != "succeeded":
            report_failures(api, run)
    print(format_results(checkpoint_results(api, checkpoint["id"], {run["id"] for run in runs}), "table"))
    return EXIT_OK if all(run["status"]["state"] == "succeeded" for run in runs) else EXIT_FAILED


def status(api: Api, args) -> int:
    checkpoint = api.get(f"/api/v1/checkpoints/{args.checkpoint}/")
    print(describe_checkpoint(checkpoint))
    runs = checkpoint_runs(api, checkpoint["id"])
    for run in runs:
        print(describe_run(run))
    if not runs:
        print("no evaluation runs")
    return EXIT_OK


def results(api: Api, args) -> int:
    api.get(f"/api/v1/checkpoints/{args.checkpoint}/")  # a clear 404 for a checkpoint you cannot see
    print(format_results(checkpoint_results(api, args.checkpoint), args.format))
    return EXIT_OK


# --- trainings and sweeps -------------------------------------------------------------------

TRAINING_FINISHED = {"succeeded", "failed", "cancelled"}


def read_spec(source: str) -> dict:
    """A JSON spec from a file, or from stdin for '-'."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as error:
        raise UsageError(f"cannot read the spec {source}: {error.strerror}") from None
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"the spec {source} is not JSON: {error}") from None
    if not isinstance(spec, dict):
        raise UsageError(f"the spec {source} must be a JSON object")
    return spec


def describe_training(run: dict) -> str:
    checkpoint = run.get("checkpoint") or {}
    registered = f", checkpoint {checkpoint['id']} ({checkpoint['status']})" if checkpoint else ""
    loss = f", loss {run['last_loss']:.4f}" if run.get("last_loss") is not None else ""
    error = f": {run['error']}" if run.get("error") else ""
    return (f"training {run['id']} {run['name']}: {run['state']}, step {run.get('steps_done') or 0}/"
            f"{run.get('steps_total') or '?'}{loss}{registered}{error}")


def watch_training(api: Api, run: dict, poll: float) -> dict:
    with tqdm(total=run.get("steps_total") or 0, desc=f"training {run['id']}", unit="step", file=sys.stderr) as bar:
        while run["state"] not in TRAINING_FINISHED:
            time.sleep(poll)
            run = api.get(f"/api/v1/trainings/{run['id']}/")
            bar.total = run.get("steps_total") or bar.total
            bar.update((run.get("steps_done") or 0) - bar.n)
    return run


def train(api: Api, args) -> int:
    run, _ = api.post("/api/v1/trainings/", read_spec(args.spec))
    say(f"training {run['id']} queued: {run['url']}")
    if args.wait:
        run = watch_training(api, run, args.poll)
    print(describe_training(run))
    return EXIT_FAILED if run["state"] in {"failed", "cancelled"} else EXIT_OK


def sweep(api: Api, args) -> int:
    created, _ = api.post("/api/v1/sweeps/", read_spec(args.spec))
    say(f"sweep {created['id']} queued with {created['runs']} trainings: {created['url']}")
    detail = api.get(f"/api/v1/sweeps/{created['id']}/")
    if args.wait:
        with tqdm(total=len(detail["points"]), desc=f"sweep {created['id']}", unit="run", file=sys.stderr) as bar:
            while True:
                finished = sum(point["state"] in TRAINING_FINISHED for point in detail["points"])
                bar.update(finished - bar.n)
                if finished == len(detail["points"]):
                    break
                time.sleep(args.poll)
                detail = api.get(f"/api/v1/sweeps/{created['id']}/")
    for point in detail["points"]:
        errors = ", ".join(f"{suite} error {value:.4f}" for suite, value in (point.get("suite_errors") or {}).items())
        print(describe_training(point) + (f"; {errors}" if errors else ""))
    failed = any(point["state"] in {"failed", "cancelled"} for point in detail["points"])
    return EXIT_FAILED if args.wait and failed else EXIT_OK


# --- arguments ------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not positive")
    return value


def build_parser() -> argparse.ArgumentParser:
    connection = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: an option given before the command is not overwritten by the subcommand's default.
    connection.add_argument("--url", default=argparse.SUPPRESS, help=f"server (env FRONTIER_URL, default {DEFAULT_URL})")
    connection.add_argument("--token", default=argparse.SUPPRESS, help="API token (env FRONTIER_TOKEN)")
    parser = argparse.ArgumentParser(
        prog="python -m webapp.client", parents=[connection],
        description="Submit VLM checkpoints to a Frontier server, follow their evaluation, read results.",
        epilog="Exit status: 0 done, 1 rejected/failed/refused, 2 usage or configuration error.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    submit_parser = commands.add_parser("submit", parents=[connection], help="upload a checkpoint folder or archive")
    submit_parser.add_argument("path", help="checkpoint folder (packed as .tar.gz) or a .tar/.tar.gz/.zip of one")
    submit_parser.add_argument("--name", required=True, help="a name for the checkpoint")
    submit_parser.add_argument("--suite", action="append", help="suite to evaluate on (repeat; default: the server's)")
    submit_parser.add_argument("--visibility", choices=["private", "public"], default="private")
    submit_parser.add_argument("--limit", type=positive_int, help="items per benchmark (a quick look); needs --suite")
    submit_parser.add_argument("--wait", action="store_true", help="follow validation and evaluation, print results")
    submit_parser.add_argument("--chunk-size", type=positive_int, default=DEFAULT_CHUNK_BYTES,
                               help=f"upload chunk in bytes (default {DEFAULT_CHUNK_BYTES})")
    submit_parser.add_argument("--poll", type=float, default=2.0, help="seconds between status checks")
    submit_parser.add_argument("--quiet", action="store_true", help="no progress bars for hashing and upload")
    submit_parser.set_defaults(handler=submit)

    status_parser = commands.add_parser("status", parents=[connection], help="a checkpoint's state and its runs")
    status_parser.add_argument("checkpoint", type=positive_int, help="checkpoint id")
    status_parser.set_defaults(handler=status)

    results_parser = commands.add_parser("results", parents=[connection], help="all results of a checkpoint")
    results_parser.add_argument("checkpoint", type=positive_int, help="checkpoint id")
    results_parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    results_parser.set_defaults(handler=results)

    for name, handler, what in (("train", train, "one compressor training"),
                                ("sweep", sweep, "a grid of trainings (LLM sizes x compressors x V)")):
        command = commands.add_parser(name, parents=[connection], help=f"start {what} from a JSON spec")
        command.add_argument("spec", help="JSON file with the spec (see the README), or - for stdin")
        command.add_argument("--wait", action="store_true", help="follow it until it ends")
        command.add_argument("--poll", type=float, default=2.0, help="seconds between status checks")
        command.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    token = getattr(args, "token", None) or os.environ.get("FRONTIER_TOKEN")
    if not token:
        print("error: no API token: set FRONTIER_TOKEN or pass --token "
              "(create one with manage.py createapitoken USERNAME)", file=sys.stderr)
        return EXIT_USAGE
    url = getattr(args, "url", None) or os.environ.get("FRONTIER_URL") or DEFAULT_URL
    try:
        return args.handler(Api(url, token), args)
    except (UsageError, ServerUnreachable) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ApiError as error:
        if error.status_code == OUT_OF_SPACE:
            print(f"error: the server is out of disk space (507): {error} Run the same command again once its "
                  f"operators have freed space; an upload resumes from the bytes the server kept.", file=sys.stderr)
            return EXIT_FAILED
        print(f"error: the server answered {error.status_code}: {error}", file=sys.stderr)
        return EXIT_USAGE if error.status_code == 401 else EXIT_FAILED
    except UploadFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except requests.RequestException as error:
        print(f"error: lost the server at {url}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
