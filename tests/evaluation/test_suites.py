"""Suite membership (evaluation.suites): a benchmark has a home suite and may be shared with more; every reader of
a suite's benchmarks (tasks, names, normalisations, the database catalog, the mirror's prefetch) sees its members."""

from evaluation.prefetch import sources_for
from evaluation.suites import (
    BENCHMARKS,
    normalisations,
    resolve_task_names,
    suite_members,
    suite_names,
    suite_tasks,
)
from webapp.registry.catalog import DEFAULT_SUITES, default_catalog

REASONING = ["mme", "gqa", "ai2d", "mmbench", "mmmu", "scienceqa_img", "mathvista", "pope", "chartqa"]
COMPRESSOR_TABLE = ["mme", "gqa", "mmbench", "scienceqa_img", "pope", "vizwiz", "vqav2"]


def keys(suite: str) -> list[str]:
    return [benchmark.key for benchmark in suite_members(suite)]


def test_the_compressor_table_holds_seven_benchmarks_five_shared_with_reasoning_which_keeps_its_nine():
    assert keys("compressor_table") == COMPRESSOR_TABLE
    assert keys("reasoning") == REASONING
    assert keys("ocr") == ["textvqa", "docvqa"]
    shared = {key for key, benchmark in BENCHMARKS.items() if benchmark.shared_with}
    assert shared == {"gqa", "mmbench", "mme", "pope", "scienceqa_img"}
    assert all(BENCHMARKS[key].suites == ("reasoning", "compressor_table") for key in shared)
    assert BENCHMARKS["pope"].in_suite("compressor_table") and not BENCHMARKS["ai2d"].in_suite("compressor_table")
    assert suite_names() == sorted(DEFAULT_SUITES)


def test_every_reader_of_a_suite_sees_its_members():
    assert suite_tasks("compressor_table") == [BENCHMARKS[key].task for key in COMPRESSOR_TABLE]
    assert resolve_task_names(["compressor_table", "reasoning"])[:7] == suite_tasks("compressor_table")
    assert len(resolve_task_names(["compressor_table", "reasoning"])) == 11  # the shared five once
    specs, suites = normalisations(("compressor_table",))
    assert list(suites["compressor_table"]) == COMPRESSOR_TABLE and sorted(specs) == sorted(COMPRESSOR_TABLE)
    catalog = default_catalog()
    assert [row["key"] for row in catalog["compressor_table"]] == COMPRESSOR_TABLE
    assert [row["key"] for row in catalog["reasoning"]] == REASONING
    pope = {row["key"]: row for row in catalog["compressor_table"]}["pope"]
    assert pope == {row["key"]: row for row in catalog["reasoning"]}["pope"]  # one benchmark, two suites' rows
    assert sorted(source.key for source in sources_for("compressor_table")) == sorted(COMPRESSOR_TABLE)
