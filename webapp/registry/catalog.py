"""The benchmark suites Frontier knows out of the box, with the normalisation the fitting
service uses (see fitting.aggregate) and the lmms-eval task each benchmark runs."""

from fitting.aggregate import BENCHMARKS, SUITES

LMMS_EVAL_TASKS = {
    "mme": "mme", "gqa": "gqa", "ai2d": "ai2d", "mmbench": "mmbench_en_dev", "mmmu": "mmmu_val",
    "scienceqa_img": "scienceqa_img", "mathvista": "mathvista_testmini_format", "pope": "pope",
    "chartqa": "chartqa", "textvqa": "textvqa_val", "docvqa": "docvqa_val",
    "shapes": "shapes", "glyphs": "glyphs",
}

# lmms-eval 0.7.3 reports these two in percent.
OVERRIDES = {
    "mmbench": {"full_scale": 100.0},
    "mathvista": {"full_scale": 100.0},
}

SUITE_DESCRIPTIONS = {
    "reasoning": "The paper's visual-reasoning suite: average normalised error over nine benchmarks.",
    "ocr": "Text-heavy images (TextVQA, DocVQA), where visual tokens matter more than LLM size.",
    "synthetic": "Offline suite generated locally from a seed: shapes (visual reasoning) and glyphs (OCR-like).",
}


def default_catalog() -> dict[str, list[dict]]:
    """suite name → benchmark rows (key, task, metrics, full scale, direction)."""
    suites = dict(SUITES)
    suites["synthetic"] = ("shapes", "glyphs")
    catalog = {}
    for suite, keys in suites.items():
        rows = []
        for key in keys:
            spec = BENCHMARKS.get(key)
            rows.append(
                {
                    "key": key,
                    "lmms_eval_task": LMMS_EVAL_TASKS[key],
                    "metrics": list(spec.metrics) if spec else ["exact_match"],
                    "full_scale": spec.full_scale if spec else 1.0,
                    "higher_is_better": spec.higher_is_better if spec else True,
                    **OVERRIDES.get(key, {}),
                }
            )
        catalog[suite] = rows
    return catalog
