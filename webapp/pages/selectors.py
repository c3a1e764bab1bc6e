"""Reads the pages need that no single app answers alone: the queue, a checkpoint's whole story, an
evaluation run in detail, the overview's headline. They combine the registry's, jobs', training's
and leaderboard's selectors (and so their permission rules), each in a fixed number of queries
whatever the number of rows."""

import shlex

from django.conf import settings
from django.db.models import Prefetch
from django.urls import reverse

from evaluation.datasets import SOURCE_BY_TASK, format_bytes, mirror_status
from evaluation.suites import benchmark_normalisation
from webapp.core.versioning import versioned_cache
from webapp.fits.selectors import cannot_fit_reasons, latest_fit_rows, split_fits
from webapp.jobs.models import Job, JobState
from webapp.jobs.selectors import job_eta_seconds, job_queue
from webapp.leaderboard.selectors import LeaderboardQuery, RowFilter, leaderboard_page, viewer_key
from webapp.registry.hub import checkpoint_hub_url, llm_hub_url
from webapp.registry.models import (
    BenchmarkJob,
    BenchmarkResult,
    BenchmarkSuite,
    Checkpoint,
    CheckpointStatus,
    EvaluationRun,
    HarnessOutput,
    SuiteScore,
    Visibility,
)
from webapp.registry.selectors import can_manage, checkpoint_files, checkpoints_visible_to, run_status, runs_visible_to
from webapp.registry.selectors.stale import stale_results
from webapp.registry.services import VALIDATE_TASK
from webapp.training.models import TrainingRun
from webapp.training.selectors import eta_seconds, training_runs_readable_by, training_runs_visible_to

ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)
QUEUE_RECENT = 50  # finished runs shown on the queue besides every active one
QUEUE_ACTIVE_MAX = 500
QUEUE_JOBS_MAX = 500  # queued and running jobs listed (positions and ETAs count all of them)
HEADLINE_ROWS = 3

RUN_DETAIL_PREFETCH = (
    Prefetch(
        "benchmark_jobs", queryset=BenchmarkJob.objects.select_related("job", "benchmark").order_by("benchmark__key")
    ),
    "benchmark_jobs__job__attempts",
    Prefetch("results", queryset=BenchmarkResult.objects.order_by("metric")),
    Prefetch("harness_outputs", queryset=HarnessOutput.objects.defer("raw").order_by("-id")),
)


# --- Every job: the queue -----------------------------------------------------------------------------


def _job_subjects(user, entries) -> dict[int, dict]:
    """Per job id, what it works on (for a link) and whether `user` may see it: their own jobs, the jobs of the
    evaluation runs and trainings they may see (a sweep's evaluations are nobody's submission), everything for
    staff. Five queries whatever the number of jobs."""
    subjects = {entry.job.pk: {"kind": "", "pk": None, "label": "", "visible": user.is_staff
                               or entry.job.created_by_id == user.pk} for entry in entries}
    active = {"job__state__in": ACTIVE_STATES}  # the entries' jobs, without a list of their ids
    seen_runs = set(runs_visible_to(user).filter(**{f"benchmark_jobs__{key}": value for key, value in active.items()})
                    .values_list("pk", flat=True))
    for link in BenchmarkJob.objects.filter(**active).select_related("run__checkpoint", "benchmark"):
        if link.job_id in subjects:
            subjects[link.job_id].update(kind="evaluation", pk=link.run_id,
                                         label=f"#{link.run_id} {link.run.checkpoint.name} · {link.benchmark.key}")
            subjects[link.job_id]["visible"] |= link.run_id in seen_runs
    seen_trainings = set(training_runs_visible_to(user).filter(**active).values_list("pk", flat=True))
    for run in TrainingRun.objects.filter(**active).only("pk", "name", "job_id"):
        if run.job_id in subjects:
            subjects[run.job_id].update(kind="training", pk=run.pk, label=f"#{run.pk} {run.name}")
            subjects[run.job_id]["visible"] |= run.pk in seen_trainings
    checking = {entry.job.params.get("checkpoint_id"): entry.job.pk for entry in entries
                if entry.job.task_name == VALIDATE_TASK}
    for checkpoint in Checkpoint.objects.filter(pk__in=[pk for pk in checking if pk]).only("pk", "name"):
        subjects[checking[checkpoint.pk]].update(kind="checkpoint", pk=checkpoint.pk,
                                                 label=f"#{checkpoint.pk} {checkpoint.name}")
    return subjects


def queue_jobs(user, now=None) -> dict:
    """Every queued and running job `user` may see (at most QUEUE_JOBS_MAX), of every kind, with its queue,
    position and estimated start and finish (webapp.jobs.selectors.job_queue, counted over everyone's jobs)
    and what it works on; and per queue everyone's counts. The queue page and GET /api/v1/queue/ show this."""
    entries, summaries = job_queue(now)
    subjects = _job_subjects(user, entries)
    rows = [
        {"entry": entry, "subject": subjects[entry.job.pk]} for entry in entries if subjects[entry.job.pk]["visible"]
    ]
    return {"jobs": rows[:QUEUE_JOBS_MAX], "queues": list(summaries.values())}


# --- Evaluation runs --------------------------------------------------------------------------------


def _queue_ids(runs, active_filter: dict, recent: int) -> set[int]:
    active = runs.filter(**active_filter).order_by("-id").values_list("pk", flat=True).distinct()[:QUEUE_ACTIVE_MAX]
    return set(active) | set(runs.order_by("-id").values_list("pk", flat=True)[:recent])


def evaluation_summary(run: EvaluationRun) -> dict:
    """A run's overall state and progress (run_status), whether it is still going, and its ETA: that of
    its slowest running benchmark, unknown while benchmarks wait in the queue."""
    jobs = [link.job for link in run.benchmark_jobs.all()]
    etas = [job_eta_seconds(job) for job in jobs if job.state == JobState.RUNNING]
    waiting = any(job.state == JobState.QUEUED for job in jobs)
    return {
        "run": run,
        "status": run_status(run),
        "active": any(job.state in ACTIVE_STATES for job in jobs),
        "eta_seconds": None if waiting or not etas or None in etas else max(etas),
    }


def queue_evaluations(user, recent: int = QUEUE_RECENT) -> list[dict]:
    """Every active evaluation run the user may see (as the evaluations API) and the newest others."""
    runs = runs_visible_to(user)
    ids = _queue_ids(runs, {"benchmark_jobs__job__state__in": ACTIVE_STATES}, recent)
    shown = runs.filter(pk__in=ids).order_by("-id").prefetch_related(
        Prefetch("benchmark_jobs", queryset=BenchmarkJob.objects.select_related("job"))
    )
    return [evaluation_summary(run) for run in shown]


def queue_trainings(user, recent: int = QUEUE_RECENT) -> list[dict]:
    """Every active training run the user may see (as the trainings API) and the newest others."""
    runs = training_runs_visible_to(user)
    ids = _queue_ids(runs, {"job__state__in": ACTIVE_STATES}, recent)
    return [training_summary(run) for run in runs.filter(pk__in=ids).order_by("-id")]


def training_summary(run: TrainingRun) -> dict:
    return {"run": run, "active": run.job.state in ACTIVE_STATES, "eta_seconds": eta_seconds(run)}


def reproduce_command(run: EvaluationRun, links: list[BenchmarkJob], stamp: dict | None,
                      archive_url: str | None = None) -> str:
    """A shell line that recomputes the run's numbers on the user's machine, in a Frontier checkout:
    download the checkpoint's files (`archive_url`, the API's .tar of them, which unpacks into
    checkpoint-<id>/; a private checkpoint's needs the owner's token in FRONTIER_TOKEN), then
    `python -m evaluation run` with the tasks, item limit and batch size the run used. The device is
    left to the evaluator (cuda when there is one), so the line works where the stamp's device is
    missing; the stamp on the page says which device measured the numbers."""
    evaluate = ["python", "-m", "evaluation", "run"]
    tasks = ["--tasks", ",".join(link.benchmark.lmms_eval_task for link in links)]
    options = ["--limit", str(run.limit)] if run.limit else []
    if stamp and stamp.get("batch_size"):
        options += ["--batch-size", str(stamp["batch_size"])]
    if archive_url is None:  # no files to download (none kept): the folder as the worker saw it
        folder = ((stamp or {}).get("model_args") or {}).get("checkpoint") or f"path/to/checkpoint-{run.checkpoint_id}"
        return shlex.join([*evaluate, folder, *tasks, *options, "--json"])
    anyone = run.checkpoint.visibility == Visibility.PUBLIC and not run.checkpoint.hidden
    token = "" if anyone else ' -H "Authorization: Token $FRONTIER_TOKEN"'
    download = f"curl -fL{token} {shlex.quote(archive_url)} | tar -x"
    return f"{download} && {shlex.join([*evaluate, f'checkpoint-{run.checkpoint_id}', *tasks, *options, '--json'])}"


def evaluation_detail(run: EvaluationRun, archive_url: str | None = None, internals: bool = False) -> dict:
    """A run (fetched with RUN_DETAIL_PREFETCH) per benchmark: job state, progress, ETA, attempts,
    the newest log tail, results and reproducibility stamp; and the reproduce command (which downloads
    the checkpoint from `archive_url` when its files are kept). Workers, error texts and log tails only
    with `internals` (the checkpoint's owner and staff)."""
    links = list(run.benchmark_jobs.all())
    results: dict[int, list[BenchmarkResult]] = {}
    for result in run.results.all():
        results.setdefault(result.benchmark_id, []).append(result)
    outputs = list(run.harness_outputs.all())
    stamps = {output.benchmark_id: output.stamp for output in reversed(outputs)}
    benchmarks = []
    for link in links:
        attempts = list(link.job.attempts.all())
        benchmarks.append({
            "benchmark": link.benchmark, "job": link.job, "attempts": attempts,
            "log_tail": attempts[-1].log_tail if attempts and internals else "",
            "eta_seconds": job_eta_seconds(link.job),
            "results": results.get(link.benchmark_id, []), "stamp": stamps.get(link.benchmark_id),
        })
    stamp = outputs[0].stamp if outputs else None
    return {**evaluation_summary(run), "benchmarks": benchmarks, "stamp": stamp, "internals": internals,
            "reproduce": reproduce_command(run, links, stamp, archive_url)}


def _archive_url(checkpoint: Checkpoint, absolute_url) -> str | None:
    """Where the checkpoint's files download from (absolute_url(path) makes it absolute), if it has any."""
    if checkpoint.status != CheckpointStatus.READY or not checkpoint.files_prefix:
        return None
    return absolute_url(reverse("api-checkpoint-archive", args=[checkpoint.pk]))


def evaluation_page(user, run_id: int, absolute_url=str) -> dict | None:
    run = runs_visible_to(user).filter(pk=run_id).prefetch_related(*RUN_DETAIL_PREFETCH).first()
    if run is None:
        return None
    manage = can_manage(user, run.checkpoint)
    return {
        **evaluation_detail(run, _archive_url(run.checkpoint, absolute_url), internals=manage), "can_manage": manage
    }


# --- A checkpoint's story -----------------------------------------------------------------------------


def _timeline(checkpoint: Checkpoint, validations: list[Job], runs: list[dict]) -> list[dict]:
    events = [{"at": checkpoint.created_at, "event": "published entry loaded" if checkpoint.published else "submitted",
               "detail": checkpoint.source_url if checkpoint.published else ""}]
    for job in validations:
        for transition in job.transitions.all():
            events.append(
                {"at": transition.at, "event": f"validation {transition.to_state}", "detail": transition.reason}
            )
    for summary in runs:
        run = summary["run"]
        events.append({"at": run.created_at, "event": f"evaluation #{run.pk} on {run.suite.name} queued", "detail": ""})
        finished = [link.job.finished_at for link in run.benchmark_jobs.all() if link.job.finished_at]
        if not summary["active"] and finished:
            events.append({"at": max(finished), "event": f"evaluation #{run.pk} on {run.suite.name} "
                           f"{summary['status']['state']}", "detail": ""})
    return sorted(events, key=lambda event: event["at"])


def _stale_rows(checkpoint: Checkpoint) -> list[dict]:
    """The checkpoint's stale newest results, per suite and benchmark, with their suite's name."""
    rows = stale_results(checkpoint_ids=[checkpoint.pk])
    names = dict(BenchmarkSuite.objects.filter(pk__in={row["suite_id"] for row in rows}).values_list("pk", "name"))
    named = [{**row, "suite": names[row["suite_id"]]} for row in rows]
    return sorted(named, key=lambda row: (row["suite"], row["benchmark"]))


def checkpoint_page(user, checkpoint_id: int, absolute_url=str) -> dict | None:
    """Everything the checkpoint page shows, or None when the user may not see the checkpoint.
    `absolute_url(path)` makes the download link of the reproduce commands absolute."""
    checkpoint = checkpoints_visible_to(user).filter(pk=checkpoint_id).first()
    if checkpoint is None:
        return None
    scores = list(SuiteScore.objects.filter(checkpoint=checkpoint).select_related("suite").order_by("suite__name"))
    archive_url = _archive_url(checkpoint, absolute_url)
    runs = [
        evaluation_detail(run, archive_url, internals=can_manage(user, checkpoint))
        for run in runs_visible_to(user).filter(checkpoint=checkpoint).order_by("-id").prefetch_related(
            *RUN_DETAIL_PREFETCH
        )
    ]
    validations = list(
        Job.objects.filter(task_name=VALIDATE_TASK, params__checkpoint_id=checkpoint.pk)
        .prefetch_related("transitions").order_by("id")
    )
    training = None
    if checkpoint.training_run_id:
        training = training_runs_readable_by(user).filter(pk=checkpoint.training_run_id).first()
    try:
        files, files_error = checkpoint_files(checkpoint), None
    except OSError as error:  # storage unreachable: the rest of the page still shows
        files, files_error = [], f"The file list could not be read from storage: {error}"
    return {
        "checkpoint": checkpoint, "scores": scores, "runs": runs, "training": training,
        "timeline": _timeline(checkpoint, validations, runs),
        "active": any(summary["active"] for summary in runs) or any(job.state in ACTIVE_STATES for job in validations),
        "can_manage": can_manage(user, checkpoint),
        "files": files, "files_error": files_error,
        "archive_href": reverse("api-checkpoint-archive", args=[checkpoint.pk]) if files else None,
        "files_bytes": sum(f["size"] for f in files),
        "hub_url": checkpoint_hub_url(checkpoint.reference),
        "stale": _stale_rows(checkpoint),
        "llm_hub_url": checkpoint.llm
        and llm_hub_url(checkpoint.llm.name, checkpoint.llm.source, checkpoint.llm.revision),
    }


# --- Overview -----------------------------------------------------------------------------------------


def overview_headline(user) -> list[dict]:
    """Per suite: its best entries (the leaderboard's first rows), how many there are, and the current
    fit's exponents and V*(Q); cached per data version and viewer."""

    def compute():
        law = settings.FRONTIER_FIT_LAWS[0]
        suites = []
        for suite in BenchmarkSuite.objects.order_by("name"):
            page = leaderboard_page(user, LeaderboardQuery(rows=RowFilter(suite=suite.name), page_size=HEADLINE_ROWS))
            fits, cannot = split_fits(latest_fit_rows(suite, scope="all", laws=[law]))
            decisions = {label: value for fit in fits for label, value in fit.decisions.items()}
            fit = fits[0] if fits else None
            suites.append({
                "name": suite.name, "description": suite.description, "count": page["count"],
                "best": page["results"], "law": law,
                "fit": None if fit is None else {
                    "alpha": fit.params.get("alpha"), "beta": fit.params.get("beta"),
                    "alpha_interval": fit.intervals.get("alpha"), "beta_interval": fit.intervals.get("beta"),
                    "n_points": fit.n_points, "decisions": dict(sorted(decisions.items())),
                },
                "fit_note": cannot_fit_reasons(cannot) if fit is None else "",
            })
        return suites

    return versioned_cache(("overview", viewer_key(user)), compute)


def suite_benchmarks_readiness(suite_name: str) -> list[dict]:
    """A suite's benchmarks and whether each can run: generated locally, or its hub data present in the dataset
    mirror (FRONTIER_DATASETS_DIR: revision, size) or missing (with the command that fetches them)."""
    benchmarks = list(BenchmarkSuite.objects.get(name=suite_name).benchmarks.order_by("key"))
    tasks = {benchmark.lmms_eval_task for benchmark in benchmarks}
    keys = [SOURCE_BY_TASK[task].key for task in tasks if task in SOURCE_BY_TASK]
    records = {record.task: record for record in mirror_status(settings.FRONTIER_DATASETS_DIR, keys=keys)}
    rows = []
    for benchmark in benchmarks:
        record = records.get(benchmark.lmms_eval_task)
        rows.append({
            "key": benchmark.key, "task": benchmark.lmms_eval_task,
            "can_run": record is None or record.present, "generated": record is None,
            "repo_id": record.repo_id if record else "", "revision": record.revision if record else "",
            "size": format_bytes(record.bytes) if record else "", "problem": record.problem if record else "",
            "prefetch": record.prefetch if record else "",
            "normalisation": benchmark_normalisation(benchmark.key, benchmark.metrics, benchmark.full_scale),
        })
    return rows
