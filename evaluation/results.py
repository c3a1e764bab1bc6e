"""An evaluation's output: long result rows (what ``fitting.aggregate`` reads), the outcome with lmms-eval's raw
dict, the stamp and latency, and the git revision that goes into the stamp."""

import math
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .suites import BENCHMARK_BY_TASK


@dataclass(frozen=True)
class ResultRow:
    """One long-table row; ``benchmark`` and ``unit`` are what ``fitting.aggregate`` reads."""

    task: str
    benchmark: str
    metric: str
    filter: str
    value: float
    stderr: float | None
    n: int | None
    higher_is_better: bool
    unit: str


@dataclass
class EvaluationOutcome:
    checkpoint: str
    tasks: list[str]
    raw_results: dict  # lmms-eval's result dict, as its own JSON output would hold it
    rows: list[ResultRow]
    stamp: dict
    latency: dict = field(default_factory=dict)
    samples: dict[str, list[dict]] = field(default_factory=dict)  # task -> per-item records (evaluation.samples)

    def task_results(self, task: str) -> dict:
        """lmms-eval's raw metrics of one task (``"<metric>,<filter>"`` keys, stderr included)."""
        return self.raw_results["results"][task]

    def as_dict(self) -> dict:
        return {
            "checkpoint": self.checkpoint,
            "tasks": self.tasks,
            "raw_results": self.raw_results,
            "rows": [asdict(row) for row in self.rows],
            "stamp": self.stamp,
            "latency": self.latency,
        }


# Aggregations that return None instead of 0: lmms-eval 0.7.3's MathVista (``mathvista_aggregate_results``
# returns None when the accuracy is 0). Recorded as 0 when the task scored items.
NONE_MEANS_ZERO = frozenset({"llm_as_judge_eval"})


def result_rows(raw_results: dict) -> list[ResultRow]:
    """Every numeric metric of every task in a raw lmms-eval result dict, with its stderr and n."""
    rows = []
    for task, metrics in raw_results.get("results", {}).items():
        benchmark = BENCHMARK_BY_TASK.get(task)
        samples = raw_results.get("n-samples", {}).get(task, {})
        directions = raw_results.get("higher_is_better", {}).get(task, {})
        for key, value in metrics.items():
            metric, _, filter_name = key.partition(",")
            if value is None and metric in NONE_MEANS_ZERO and samples.get("effective"):
                value = 0  # scored items, none right: a zero, not a missing score
            if not filter_name or "_stderr" in metric or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            stderr = metrics.get(f"{metric}_stderr,{filter_name}")
            rows.append(
                ResultRow(
                    task=task,
                    benchmark=benchmark.key if benchmark else task,
                    metric=metric,
                    filter=filter_name,
                    value=float(value),
                    stderr=float(stderr) if isinstance(stderr, (int, float)) and math.isfinite(stderr) else None,
                    n=samples.get("effective"),
                    higher_is_better=bool(directions.get(metric, True)),
                    unit=benchmark.unit if benchmark and metric in benchmark.metrics else "fraction",
                )
            )
    return rows


def git_revision() -> str:
    """Frontier's git commit, or "unknown" outside a git checkout."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return completed.stdout.strip() if completed.returncode == 0 and completed.stdout.strip() else "unknown"


