"""Benchmarks Frontier evaluates: benchmark key -> lmms-eval 0.7.3 task and the metrics that score it.

This is the one table of benchmarks: the database's suites are seeded from it
(``webapp.registry.catalog``) and ``normalisations`` hands it to the fitting aggregation, so the long
result rows (``benchmark``, ``metric``, ``value``, ``unit``) flow into it unchanged. ``unit`` uses fitting's
vocabulary: ``percent`` rows are divided by 100, ``fraction`` rows are taken as reported; the score is then the
sum of the benchmark's metrics over its full scale (MME reports points, perception out of 2000 + cognition out of
800: unit fraction, full scale 2800); ``normalisation_text`` says it in words for the pages and README.

A benchmark has a home ``suite`` and may be shared with more (``shared_with``): the paper's compressor comparison
reuses five reasoning benchmarks. Its members are ``suite_members(suite)``; a checkpoint's result on a shared
benchmark is computed once and reused by every suite that holds it (``workers.evaluate``).
"""

from dataclasses import dataclass

from fitting.aggregate import BenchmarkNormalisation

from .synthetic import METRIC as SYNTHETIC_METRIC
from .synthetic import SYNTHETIC_TASKS

# The generated tasks in two groups, as the paper fits reasoning and OCR apart: shapes and glyphs (a
# reasoning task and an OCR-like one, as uploads are scored by default), and spots, where fine detail
# needs both visual tokens and LLM capacity (the demo's sweep trains and fits on it).
SYNTHETIC_SUITES = {"shapes": "synthetic", "glyphs": "synthetic", "spots": "synthetic-detail"}


@dataclass(frozen=True)
class Benchmark:
    key: str  # the benchmark name fitting uses
    task: str  # lmms-eval task (or group) name
    metrics: tuple[str, ...]  # result keys whose sum is the score
    suite: str
    unit: str = "fraction"
    full_scale: float = 1.0
    higher_is_better: bool = True
    offline: bool = False  # generated locally, no download needed
    # lmms-eval task scoring the same metrics by rules, run when no LLM judge is configured (evaluation.judges)
    rule_based_task: str | None = None
    shared_with: tuple[str, ...] = ()  # further suites that hold this benchmark besides its home suite

    @property
    def suites(self) -> tuple[str, ...]:
        """Every suite this benchmark belongs to, its home suite first."""
        return (self.suite, *self.shared_with)

    def in_suite(self, suite: str) -> bool:
        return suite in self.suites


# The paper's compressor comparison: VizWiz and VQAv2 of its own, and five reasoning benchmarks it shares.
COMPRESSOR_TABLE = ("compressor_table",)


BENCHMARKS: dict[str, Benchmark] = {
    benchmark.key: benchmark
    for benchmark in (
        Benchmark("mme", "mme", ("mme_perception_score", "mme_cognition_score"), "reasoning", full_scale=2800.0,
                  shared_with=COMPRESSOR_TABLE),
        Benchmark("gqa", "gqa", ("exact_match",), "reasoning", shared_with=COMPRESSOR_TABLE),
        Benchmark("ai2d", "ai2d", ("exact_match",), "reasoning"),
        Benchmark("mmbench", "mmbench_en_dev", ("gpt_eval_score",), "reasoning", "percent",
                  rule_based_task="mmbench_en_dev_static", shared_with=COMPRESSOR_TABLE),
        Benchmark("mmmu", "mmmu_val", ("mmmu_acc",), "reasoning"),
        Benchmark("scienceqa_img", "scienceqa_img", ("exact_match",), "reasoning", shared_with=COMPRESSOR_TABLE),
        # 0.7.3 has no gpt_eval_score for MathVista: testmini is a group of LLM-judged variants.
        Benchmark("mathvista", "mathvista_testmini_format", ("llm_as_judge_eval",), "reasoning", "percent"),
        Benchmark("pope", "pope", ("pope_f1_score",), "reasoning", shared_with=COMPRESSOR_TABLE),
        Benchmark("chartqa", "chartqa", ("relaxed_overall",), "reasoning"),
        Benchmark("textvqa", "textvqa_val", ("exact_match",), "ocr"),
        Benchmark("docvqa", "docvqa_val", ("anls",), "ocr"),
        Benchmark("vizwiz", "vizwiz_vqa_val", ("exact_match",), "compressor_table"),
        Benchmark("vqav2", "vqav2_val", ("exact_match",), "compressor_table"),
        *(Benchmark(task, task, (SYNTHETIC_METRIC,), SYNTHETIC_SUITES[task], offline=True) for task in SYNTHETIC_TASKS),
    )
}
BENCHMARK_BY_TASK: dict[str, Benchmark] = {
    task: benchmark for benchmark in BENCHMARKS.values() for task in (benchmark.task, benchmark.rule_based_task) if task
}

# How each metric reads, for the normalisation each benchmark states (leaderboard, suite page, README).
METRIC_LABELS = {
    "mme_perception_score": "perception", "mme_cognition_score": "cognition", "exact_match": "exact match",
    "gpt_eval_score": "GPT-judged accuracy", "llm_as_judge_eval": "LLM-judged accuracy", "mmmu_acc": "accuracy",
    "pope_f1_score": "F1", "relaxed_overall": "relaxed accuracy", "anls": "ANLS",
}


def normalisation_text(benchmark: Benchmark) -> str:
    """How a benchmark's result becomes its normalised score (error = 1 − score), e.g. MME's
    "score = (perception + cognition) / 2800; lmms-eval metrics mme_perception_score + mme_cognition_score"."""
    terms = [METRIC_LABELS.get(metric, metric) + (" %" if benchmark.unit == "percent" else "")
             for metric in benchmark.metrics]
    summed = f"({' + '.join(terms)})" if len(terms) > 1 else terms[0]
    divisor = benchmark.full_scale * (100.0 if benchmark.unit == "percent" else 1.0)
    expression = f"{summed} / {divisor:g}" if divisor != 1.0 else summed
    plural = "s" if len(benchmark.metrics) > 1 else ""
    direction = "" if benchmark.higher_is_better else " (lower is better: error = score)"
    return f"score = {expression}; lmms-eval metric{plural} {' + '.join(benchmark.metrics)}{direction}"


def suite_names() -> list[str]:
    """Every suite a catalog benchmark belongs to, sorted."""
    return sorted({suite for benchmark in BENCHMARKS.values() for suite in benchmark.suites})


def suite_members(suite: str) -> list[Benchmark]:
    """The members of a suite, home or shared, in table order (empty for an unknown suite)."""
    return [benchmark for benchmark in BENCHMARKS.values() if benchmark.in_suite(suite)]


def suite_tasks(suite: str) -> list[str]:
    """lmms-eval task names of a suite ("reasoning", "ocr", "compressor_table", "synthetic", ...)."""
    tasks = [benchmark.task for benchmark in suite_members(suite)]
    if not tasks:
        raise ValueError(f"unknown suite {suite!r}; choose one of {', '.join(suite_names())}")
    return tasks


def resolve_task_names(names: list[str]) -> list[str]:
    """Task names with benchmark keys ("mmbench") and suite names ("ocr") expanded to lmms-eval tasks."""
    suites = set(suite_names())
    resolved: list[str] = []
    for name in names:
        if name in suites:
            resolved.extend(suite_tasks(name))
        elif name in BENCHMARKS:
            resolved.append(BENCHMARKS[name].task)
        else:
            resolved.append(name)
    return list(dict.fromkeys(resolved))


def normalisations(suites: tuple[str, ...]) -> tuple[dict[str, BenchmarkNormalisation], dict[str, tuple[str, ...]]]:
    """(benchmarks, suites) of the named suites, in the form ``fitting.aggregate`` takes them."""
    chosen = [benchmark for benchmark in BENCHMARKS.values() if set(benchmark.suites) & set(suites)]
    specs = {b.key: BenchmarkNormalisation(b.key, b.metrics, b.full_scale, b.higher_is_better) for b in chosen}
    return specs, {suite: tuple(b.key for b in suite_members(suite)) for suite in suites}


def benchmark_normalisation(key: str, metrics=(), full_scale: float = 1.0) -> str:
    """``normalisation_text`` of a catalog benchmark; for another (a database row of its own), its metrics' sum over
    its full scale."""
    if key in BENCHMARKS:
        return normalisation_text(BENCHMARKS[key])
    summed = " + ".join(metrics) or "its metrics"
    return f"score = ({summed}) / {full_scale:g}"
