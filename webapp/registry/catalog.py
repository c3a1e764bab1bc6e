"""The benchmark suites Frontier creates out of the box. Tasks, metrics and scales come from
evaluation.suites, the registry the evaluation workers run; only what the database needs
beyond it is here."""

from evaluation.suites import suite_members

DEFAULT_SUITES = ("reasoning", "ocr", "compressor_table", "synthetic", "synthetic-detail")

SUITE_DESCRIPTIONS = {
    "reasoning": "The paper's visual-reasoning suite: average normalised error over nine benchmarks.",
    "ocr": "Text-heavy images (TextVQA, DocVQA), where visual tokens matter more than LLM size.",
    "compressor_table": ("The paper's compressor comparison: GQA, MMBench, MME, POPE and ScienceQA-img (shared with "
                         "reasoning, each result computed once) plus VizWiz and VQAv2."),
    "synthetic": "Offline suite generated locally from a seed: shapes (visual reasoning) and glyphs (OCR-like).",
    "synthetic-detail": (
        "Offline, generated: spots, the colour of one square of 2-24 px. Fine detail, so both visual tokens "
        "and LLM size lower its error; the make run demo trains and fits on it."
    ),
}

# Stored results keep the harness's raw values, so a percent-reported metric is scaled here.
UNIT_FULL_SCALE = {"fraction": 1.0, "percent": 100.0}


def default_catalog() -> dict[str, list[dict]]:
    """suite name → benchmark rows (key, task, metrics, full scale, direction) of its members, home or shared: a
    shared benchmark has a row in each of its suites."""
    return {
        suite: [
            {
                "key": benchmark.key,
                "lmms_eval_task": benchmark.task,
                "metrics": list(benchmark.metrics),
                "full_scale": benchmark.full_scale * UNIT_FULL_SCALE[benchmark.unit],
                "higher_is_better": benchmark.higher_is_better,
            }
            for benchmark in suite_members(suite)
        ]
        for suite in DEFAULT_SUITES
    }
