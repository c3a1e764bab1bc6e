"""What SuiteScore denormalises: the newest latency of each checkpoint on a suite, what its newest results were
computed with (task hash, dataset revision), and one checkpoint's newest results (the score is recomputed from
them)."""

from collections import Counter

import pandas as pd

from evaluation.suites import BENCHMARKS
from evaluation.task_identity import LLM_JUDGED_METRICS

from webapp.core.versioning import versioned_cache
from webapp.registry.models import (
    BenchmarkResult,
    BenchmarkSuite,
    CheckpointStatus,
    HarnessOutput,
    ScoreSource,
    SuiteScore,
)
from webapp.registry.selectors.stale import newest_outputs, result_identity

NO_LATENCY = {"latency_first_token_s": None, "latency_decode_per_token_s": None, "latency_device": ""}


def latest_latencies(suite: BenchmarkSuite, checkpoint_ids: list[int] | None = None) -> dict[int, dict]:
    """Per checkpoint, the latency fields of its newest harness output on the suite that measured
    latency (median time to first token and decode time per token)."""
    outputs = HarnessOutput.objects.filter(
        run__suite=suite, stamp__latency__median_time_to_first_token_s__isnull=False
    )
    if checkpoint_ids is not None:
        outputs = outputs.filter(run__checkpoint_id__in=checkpoint_ids)
    rows = outputs.order_by("-id").values_list(
        "run__checkpoint_id",
        "stamp__latency__median_time_to_first_token_s",
        "stamp__latency__median_decode_per_token_s",
        "stamp__device_name",
        "stamp__device",
    )
    latencies: dict[int, dict] = {}
    for checkpoint_id, first_token, decode, device_name, device in rows:
        if checkpoint_id not in latencies and first_token is not None:
            latencies[checkpoint_id] = {
                "latency_first_token_s": float(first_token),
                "latency_decode_per_token_s": None if decode is None else float(decode),
                "latency_device": str(device_name or device or "")[:200],
            }
    return latencies


def checkpoint_latency(checkpoint_id: int, *, device: str, device_name: str, dtype: str) -> dict | None:
    """The newest latency measured for this checkpoint on this device model in this dtype, on any suite, with
    the harness output it came from (``reused_from``); None when there is none. Latency is a property of the
    model and the device, not of the benchmark, so an evaluation reuses it instead of measuring it again."""
    output = (
        HarnessOutput.objects.filter(
            run__checkpoint_id=checkpoint_id, stamp__device=device, stamp__device_name=device_name,
            stamp__dtype=dtype, stamp__latency__median_time_to_first_token_s__isnull=False,
        )
        .order_by("-id")
        .values_list("pk", "stamp__latency")
        .first()
    )
    if output is None:
        return None
    pk, latency = output
    return {**{key: value for key, value in latency.items() if key != "reused_from"},
            "reused_from": latency.get("reused_from", pk)}


def checkpoint_latest_results(suite: BenchmarkSuite, checkpoint_id: int) -> pd.DataFrame:
    """One ready checkpoint's long results table on a suite: the newest value per (benchmark, metric)."""
    rows = (
        BenchmarkResult.objects.filter(
            run__suite=suite, run__checkpoint_id=checkpoint_id, run__checkpoint__status=CheckpointStatus.READY
        )
        .order_by("-id")
        .values_list("benchmark__key", "metric", "value", "stderr", "higher_is_better")
    )
    newest = {}
    for key, metric, value, stderr, higher_is_better in rows:
        newest.setdefault((key, metric), (checkpoint_id, key, metric, value, stderr, higher_is_better))
    return pd.DataFrame(
        list(newest.values()), columns=["checkpoint", "benchmark", "metric", "value", "stderr", "higher_is_better"]
    )


def latest_identities(suite: BenchmarkSuite, checkpoint_ids: list[int] | None = None) -> dict[int, dict]:
    """Per checkpoint, {benchmark key: ``result_identity``} of its newest result of each benchmark on the suite."""
    identities: dict[int, dict] = {}
    for row in newest_outputs(checkpoint_ids=checkpoint_ids, suite=suite):
        identities.setdefault(row["run__checkpoint_id"], {})[row["benchmark__key"]] = result_identity(
            row["benchmark__lmms_eval_task"], row["stamp__tasks"], row["stamp__datasets"],
            row["stamp__batch_size_changed"])
    return identities


def judge_mix(suite: BenchmarkSuite, benchmark_keys, version: str) -> dict[str, dict[str, int]]:
    """{benchmark key: {judge label: measured checkpoints}} for the suite's LLM-judged benchmarks whose results come
    from more than one judge (an LLM judge and lmms-eval's rule-based extraction, or two judge models or prompts):
    the leaderboard says so instead of ranking them together silently. Cached per data version; no query for a suite
    without a judged benchmark."""
    if not any(key in BENCHMARKS and set(BENCHMARKS[key].metrics) & LLM_JUDGED_METRICS for key in benchmark_keys):
        return {}

    def compute():
        counts: dict[str, Counter] = {}
        rows = SuiteScore.objects.filter(suite=suite, source=ScoreSource.MEASURED).values_list(
            "benchmark_identities", flat=True)
        for identities in rows:
            for key, identity in (identities or {}).items():
                if (identity or {}).get("judge"):
                    counts.setdefault(key, Counter())[identity["judge"]] += 1
        return {key: dict(sorted(found.items())) for key, found in sorted(counts.items()) if len(found) > 1}

    return versioned_cache(("judge_mix", suite.pk), compute, version)
