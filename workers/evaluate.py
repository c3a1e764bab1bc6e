"""Evaluation glue for the gpu-eval queue: fetch a checkpoint's files from storage, keep loaded
models in a small per-process cache, run one benchmark, hand the outcome to the registry."""

import collections
import hashlib
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from webapp.core.storage import storage_files
from webapp.registry.models import BenchmarkJob, Checkpoint
from webapp.registry.services import benchmark_results_record

_evaluators: "collections.OrderedDict[str, object]" = collections.OrderedDict()


def checkpoint_local_dir(checkpoint: Checkpoint) -> Path:
    """A local folder with the checkpoint's files: the storage folder itself on local disk,
    else a copy cached under FRONTIER_VAR_DIR/cache (a GPU worker on another machine)."""
    prefix = checkpoint.files_prefix.rstrip("/")
    if not prefix:
        raise FileNotFoundError(f"checkpoint {checkpoint.pk} ({checkpoint.name}) has no files to evaluate")
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


def cached_evaluator(path: Path):
    """A loaded model per checkpoint folder, least recently used evicted first."""
    from evaluation.harness import CheckpointEvaluator

    key = str(path)
    if key in _evaluators:
        _evaluators.move_to_end(key)
        return _evaluators[key]
    while len(_evaluators) >= settings.FRONTIER_MODEL_CACHE_SIZE:
        _evaluators.popitem(last=False)
    _evaluators[key] = CheckpointEvaluator(path, synthetic_dir=settings.VAR_DIR / "synthetic")
    return _evaluators[key]


def evaluate_benchmark_job(ctx) -> dict:
    from evaluation.errors import EvaluationCancelled

    link = BenchmarkJob.objects.select_related("run__checkpoint", "run__suite", "benchmark").get(job_id=ctx.job.pk)
    run, benchmark = link.run, link.benchmark
    evaluator = cached_evaluator(checkpoint_local_dir(run.checkpoint))
    limit = ctx.params.get("limit")
    ctx.log.info("Evaluating %s on %s (limit %s)", run.checkpoint, benchmark, limit)
    try:
        outcome = evaluator.evaluate(
            [benchmark.lmms_eval_task],
            limit=limit,
            progress=lambda done, total: ctx.progress(done, total),
            should_stop=lambda: ctx.cancel_requested.is_set() or ctx.lease_lost.is_set(),
        )
    except EvaluationCancelled:
        ctx.check()  # raises the runner's JobCancelled or LeaseLost
        raise
    metrics = [
        {"metric": row.metric, "value": row.value, "stderr": row.stderr, "n": row.n,
         "higher_is_better": row.higher_is_better}
        for row in outcome.rows
    ]
    stamp = {**outcome.stamp, "latency": outcome.latency}
    benchmark_results_record(run=run, benchmark=benchmark, metrics=metrics, raw=outcome.raw_results, stamp=stamp)
    return {"benchmark": benchmark.key, "metrics": {m["metric"]: m["value"] for m in metrics}}
