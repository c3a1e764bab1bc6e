"""Evaluation glue for the gpu-eval queue: fetch a checkpoint's files from storage, keep loaded
models in a small per-process cache, run one benchmark, hand the outcome to the registry.

Failures keep the class ``evaluation.errors`` gives them (load_error, harness_error,
dataset_unavailable, environment_error: permanent, the job fails with the message; an
environment_error, a module the harness cannot import, is the worker's environment differing
from the lock and says to run `make install` there). Two are worth another attempt
(``TransientJobError``, retried with backoff by the runner): running out of memory, retried with
half the batch size (the ``batch_size`` job param), storage or network errors while fetching
the checkpoint's files (``storage_error``) and a database that is busy or unreachable
(``database_unavailable``); see ``workers.transient``.

A benchmark several suites share is evaluated once per checkpoint, lmms-eval task and task hash: a job first looks
for an earlier current result of the same checkpoint and task with the same limit and judge
(``webapp.registry.selectors.reusable_output``) and records it for its run without loading the model.
"""

import collections
import hashlib
from pathlib import Path

from botocore.exceptions import BotoCoreError
from django.conf import settings
from django.core.files.storage import default_storage

from evaluation.errors import CheckpointLoadError, EnvironmentMismatch, OutOfMemory
from evaluation.judges import JudgeConfig, JudgeUnavailable, current_judge_label, judged_benchmark
from webapp.core.storage import storage_files
from webapp.leaderboard.selectors import checkpoint_latency
from webapp.leaderboard.services import benchmark_result_reuse, benchmark_results_record
from webapp.registry.models import BenchmarkJob, Checkpoint
from webapp.registry.selectors import reusable_output
from workers.runner import TransientJobError
from workers.transient import STORAGE_ERROR, retry_transient_failures

_evaluators: "collections.OrderedDict[tuple[str, int | None], object]" = collections.OrderedDict()


def checkpoint_local_dir(checkpoint: Checkpoint) -> Path:
    """A local folder with the checkpoint's files: the storage folder itself on local disk,
    else a copy cached under FRONTIER_VAR_DIR/cache (a GPU worker on another machine)."""
    prefix = checkpoint.files_prefix.rstrip("/")
    if not prefix:
        raise CheckpointLoadError(f"checkpoint {checkpoint.pk} ({checkpoint.name}) has no files to evaluate")
    try:
        return Path(default_storage.path(prefix))
    except NotImplementedError:
        pass
    key = checkpoint.sha256 or hashlib.sha256(prefix.encode()).hexdigest()
    target = settings.VAR_DIR / "cache" / "checkpoints" / key
    complete = target / ".complete"
    if not complete.exists():
        for name in storage_files(prefix):
            destination = target / Path(name).relative_to(prefix)
            destination.parent.mkdir(parents=True, exist_ok=True)
            with default_storage.open(name, "rb") as source, open(destination, "wb") as out:
                for chunk in iter(lambda: source.read(1 << 20), b""):
                    out.write(chunk)
        complete.touch()
    return target


def _harness():
    """evaluation.harness, imported on first use (it imports torch and lmms-eval); an import failure
    there is the worker's environment, not the checkpoint or the task."""
    try:
        from evaluation import harness
    except ImportError as error:
        raise EnvironmentMismatch(error.name or str(error), error, where="the evaluation harness") from error
    return harness


def shared_feature_cache():
    """This host's frozen-encoder feature cache, shared by its trainings and evaluations."""
    from evaluation.feature_cache import FeatureCache  # torch: imported when a GPU job runs, not before

    return FeatureCache(settings.FRONTIER_FEATURE_CACHE_DIR, settings.FRONTIER_FEATURE_CACHE_MAX_BYTES)


def cached_evaluator(path: Path, batch_size: int | None = None):
    """A loaded model per checkpoint folder and batch size (None: automatic), least recently used evicted first."""
    CheckpointEvaluator = _harness().CheckpointEvaluator  # noqa: N806

    key = (str(path), batch_size)
    if key in _evaluators:
        _evaluators.move_to_end(key)
        return _evaluators[key]
    while len(_evaluators) >= settings.FRONTIER_MODEL_CACHE_SIZE:
        _evaluators.popitem(last=False)
    _evaluators[key] = CheckpointEvaluator(
        path, batch_size=batch_size, synthetic_dir=settings.VAR_DIR / "synthetic",
        feature_cache=shared_feature_cache(), datasets_dir=settings.FRONTIER_DATASETS_DIR,
    )
    return _evaluators[key]


def fetch_checkpoint(checkpoint: Checkpoint) -> Path:
    """checkpoint_local_dir, with storage and network errors transient (``storage_error``)."""
    try:
        return checkpoint_local_dir(checkpoint)
    except (OSError, BotoCoreError) as error:
        raise TransientJobError(
            f"could not fetch the files of checkpoint {checkpoint.pk} from storage: {type(error).__name__}: {error}",
            failure_class=STORAGE_ERROR,
        ) from error


def _retry_with_smaller_batch(error: OutOfMemory, path: Path, batch_size: int | None,
                              first: int | None = None) -> TransientJobError:
    """Drop the cached model (freeing its memory) and ask for a retry with half the batch size that failed;
    ``batch_size_first`` keeps the size the job started with (``first``, else the one that failed now)."""
    failed = _evaluators.pop((str(path), batch_size), None)
    tried = failed.lmm.batch_size if failed is not None else batch_size
    params = {"batch_size": max(1, tried // 2), "batch_size_first": first or tried} if tried else {}
    plan = f"retrying with batch size {params['batch_size']}" if params else "retrying"
    return TransientJobError(f"{error} ({plan})", failure_class=error.failure_class, params=params)


def reuse_earlier_result(ctx, run, benchmark, limit) -> dict | None:
    """Record for the run an earlier current result of its checkpoint on the benchmark's task (another run, any
    suite, the same limit, the judge this worker would use) instead of evaluating; the job's outcome, or None when
    there is none. For an LLM-judged benchmark, a judge configured by halves (or judge code that cannot be imported)
    is no match: the evaluation fails on it as it would anyway."""
    task = benchmark.lmms_eval_task
    try:
        config = JudgeConfig.from_env(settings.FRONTIER_JUDGE) if judged_benchmark(task) else None
        judge = current_judge_label(task, config)
    except (JudgeUnavailable, ImportError):
        return None
    source = reusable_output(checkpoint_id=run.checkpoint_id, task=task, limit=limit, judge=judge, exclude_run=run.pk)
    if source is None:
        return None
    with ctx.fenced():  # an attempt that was taken over records nothing
        stored, origin = benchmark_result_reuse(run=run, benchmark=benchmark, source=source)
    items = max((result.n or 0 for result in stored), default=0)
    ctx.progress(items, items)
    ctx.log.info("Reused the result of %s on %s from evaluation #%s (%s, harness output %s): not evaluated again",
                 run.checkpoint, benchmark, origin["run"], origin["suite"], origin["harness_output"])
    return {"benchmark": benchmark.key, "metrics": {result.metric: result.value for result in stored},
            "reused_from": origin}


@retry_transient_failures
def evaluate_benchmark_job(ctx) -> dict:
    from evaluation.errors import EvaluationCancelled

    link = BenchmarkJob.objects.select_related("run__checkpoint", "run__suite", "benchmark").get(job_id=ctx.job.pk)
    run, benchmark = link.run, link.benchmark
    limit, batch_size = ctx.params.get("limit"), ctx.params.get("batch_size")
    reused = reuse_earlier_result(ctx, run, benchmark, limit)
    if reused is not None:
        return reused
    path = fetch_checkpoint(run.checkpoint)
    ctx.log.info(
        "Evaluating %s on %s (limit %s, batch size %s)", run.checkpoint, benchmark, limit, batch_size or "auto"
    )
    evaluator = cached_evaluator(path, batch_size)
    # Latency belongs to the model on a device, not to a benchmark: measured once, then reused (issue #16).
    measured = checkpoint_latency(run.checkpoint_id, **evaluator.latency_key)
    try:
        outcome = evaluator.evaluate(
            [benchmark.lmms_eval_task],
            limit=limit,
            progress=lambda done, total: ctx.progress(done, total),
            should_stop=lambda: ctx.cancel_requested.is_set() or ctx.lease_lost.is_set(),
            latency_samples=0 if measured else 3,
            judge_environ=settings.FRONTIER_JUDGE,  # FRONTIER_JUDGE_* (evaluation.judges)
        )
    except EvaluationCancelled:
        ctx.check()  # raises the runner's JobCancelled or LeaseLost
        raise
    except OutOfMemory as error:
        raise _retry_with_smaller_batch(error, path, batch_size, ctx.params.get("batch_size_first")) from error
    metrics = [
        {"metric": row.metric, "value": row.value, "stderr": row.stderr, "n": row.n,
         "higher_is_better": row.higher_is_better}
        for row in outcome.rows
    ]
    stamp = {**outcome.stamp, "latency": measured or outcome.latency}
    # Scores can move with the batch size (padding): a result computed after out-of-memory halving says so.
    first = ctx.params.get("batch_size_first")
    stamp["batch_size_changed"] = ({"from": first, "to": evaluator.lmm.batch_size, "reason": "out_of_memory"}
                                   if first and first != evaluator.lmm.batch_size else None)
    with ctx.fenced():  # an attempt that was taken over while it evaluated records nothing
        benchmark_results_record(run=run, benchmark=benchmark, metrics=metrics, raw=outcome.raw_results, stamp=stamp,
                                 samples=[record for records in outcome.samples.values() for record in records])
    return {"benchmark": benchmark.key, "metrics": {m["metric"]: m["value"] for m in metrics}, "reused_from": None}
