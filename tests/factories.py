"""Factories for the rows most tests need: an LLM, a compressor, a ready checkpoint, and a checkpoint with
results on a suite, recorded through the normal result service (so its suite score, the data version and
the refit request follow as in production). Pass only what a test is about; the rest has a default."""

from webapp.leaderboard.services import benchmark_results_record
from webapp.registry.models import (
    Benchmark,
    Checkpoint,
    CheckpointStatus,
    Compressor,
    EvaluationRun,
    LanguageModel,
    Visibility,
)


def llm(n_params: int, *, family: str = "tiny", name: str | None = None) -> LanguageModel:
    row, _ = LanguageModel.objects.get_or_create(
        name=name or f"{family}-{n_params}", n_params=n_params, revision="", defaults={"family": family}
    )
    return row


def compressor(method: str = "avgpool", version: str = "1") -> Compressor:
    row, _ = Compressor.objects.get_or_create(method=method, version=version)
    return row


def ready_checkpoint(
    *, n_params: int = 1_000_000, tokens: int = 16, method: Compressor | None = None, owner=None,
    visibility: str = Visibility.PUBLIC, family: str = "tiny", name: str | None = None, **fields,
) -> Checkpoint:
    method = method or compressor()
    return Checkpoint.objects.create(
        owner=owner, name=name or f"{family}-{n_params / 1e6:g}m-{method.method}-v{tokens}", llm=llm(n_params, family=family),
        compressor=method, visual_tokens=tokens, status=CheckpointStatus.READY, visibility=visibility, **fields,
    )


def record_result(run: EvaluationRun, key: str, value: float, *, metric: str = "exact_match", stderr: float = 0.02,
                  n: int = 500, stamp: dict | None = None, raw: dict | None = None):
    """One benchmark's result on the run, through the service workers use."""
    return benchmark_results_record(
        run=run, benchmark=Benchmark.objects.get(suite=run.suite, key=key),
        metrics=[{"metric": metric, "value": value, "stderr": stderr, "n": n}],
        raw={"results": {key: {f"{metric},none": value}}} if raw is None else raw, stamp=stamp or {"seed": 0},
    )


def measured_checkpoint(suite, scores: dict[str, float], *, stamp: dict | None = None, stderr: float = 0.02,
                        n: int = 500, **checkpoint_fields) -> Checkpoint:
    """A ready checkpoint (``ready_checkpoint``'s fields) with ``scores`` ({benchmark key: value}) on the suite."""
    checkpoint = ready_checkpoint(**checkpoint_fields)
    run = EvaluationRun.objects.create(checkpoint=checkpoint, suite=suite)
    for key, value in scores.items():
        record_result(run, key, value, stamp=stamp, stderr=stderr, n=n)
    return checkpoint
