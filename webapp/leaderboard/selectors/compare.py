"""Two checkpoints compared item by item (issue #19): on the items both were scored on, per benchmark, the score
difference (b − a) with a paired-bootstrap 95 % interval, a paired test (McNemar for binary scores, else a paired
t-test), the items where they disagree and the loyalty (share of items scored the same); and over the benchmarks
both have, the mean difference with a bootstrap stratified by benchmark (``fitting.paired``).

Each checkpoint's newest result per benchmark with per-item records is used (any suite: a shared benchmark is one
result); an item's score is the benchmark's metric field in its record (a dict's ``score``), else its first
numeric score field. Benchmarks scored only at aggregation (no per-item number) are listed as skipped, with why.
"""

import fitting
from evaluation.samples import score_number

from webapp.registry.models import Checkpoint, CheckpointStatus, HarnessOutput
from webapp.registry.selectors import checkpoints_visible_to, runs_visible_to
from webapp.registry.selectors.samples import harness_output_samples

DISAGREEMENTS_SHOWN = 50
PARENT_VISUAL_TOKENS = 576  # LLaVA-1.5's uncompressed 24×24 patch grid: the parent of a compressed checkpoint


class CompareError(Exception):
    """A comparison that cannot be made as asked; ``status`` 400 or 404, the message says what to do."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _checkpoint(user, pk: int) -> Checkpoint:
    checkpoint = checkpoints_visible_to(user).select_related("llm").filter(pk=pk).first()
    if checkpoint is None:
        raise CompareError(f"No checkpoint {pk} that you can see; list them at /api/v1/checkpoints/.", status=404)
    return checkpoint


def _newest_outputs(user, checkpoint: Checkpoint) -> dict[str, HarnessOutput]:
    outputs = (HarnessOutput.objects.select_related("benchmark", "run")
               .filter(run__in=runs_visible_to(user), run__checkpoint=checkpoint).exclude(samples_key="")
               .order_by("-id"))
    newest: dict[str, HarnessOutput] = {}
    for output in outputs:
        newest.setdefault(output.benchmark.key, output)
    return newest


def item_scores(output: HarnessOutput) -> dict[str, float]:
    """{item id: score} of a result's records (see the module docstring)."""
    primary = tuple(output.benchmark.metrics or ())
    scores = {}
    for record in harness_output_samples(output):
        fields = record.get("scores") or {}
        ordered = [fields[name] for name in primary if name in fields] + list(fields.values())
        value = next((score_number(found) for found in ordered if score_number(found) is not None), None)
        if value is not None:
            scores[str(record["item_id"])] = value
    return scores


def parent_of(user, checkpoint: Checkpoint) -> Checkpoint | None:
    """The uncompressed parent of a compressed checkpoint: the newest visible ready one with the same LLM and
    V = 576 (None when it is itself uncompressed or none is registered)."""
    if checkpoint.visual_tokens == PARENT_VISUAL_TOKENS or checkpoint.llm_id is None:
        return None
    return (checkpoints_visible_to(user).filter(llm_id=checkpoint.llm_id, visual_tokens=PARENT_VISUAL_TOKENS,
                                                status=CheckpointStatus.READY).exclude(pk=checkpoint.pk).order_by("-id").first())


def _benchmark_row(key: str, result: "fitting.ItemComparison") -> dict:
    difference, test = result.difference, result.test
    return {
        "benchmark": key, "n_a": result.n_a, "n_b": result.n_b, "n_shared": result.n_shared,
        "difference": difference.difference, "low": difference.low, "high": difference.high,
        "test": test.test, "statistic": test.statistic, "p_value": test.p_value, "loyalty": result.loyalty,
        "disagreements": len(result.disagreements),
        "disagreeing_items": [str(item) for item in result.disagreements[:DISAGREEMENTS_SHOWN]],
        "separated": difference.low > 0 or difference.high < 0,
    }


def checkpoint_comparison(user, a_id: int, b_id: int, benchmark: str | None = None, seed: int = 0) -> dict:
    """The comparison of checkpoint ``b_id`` against ``a_id`` (differences are b − a, in score: higher is better)."""
    if a_id == b_id:
        raise CompareError("Compare two different checkpoints: a and b are the same.")
    a, b = _checkpoint(user, a_id), _checkpoint(user, b_id)
    outputs_a, outputs_b = _newest_outputs(user, a), _newest_outputs(user, b)
    shared = sorted(set(outputs_a) & set(outputs_b))
    if benchmark is not None:
        if benchmark not in shared:
            have = ", ".join(shared) or "none"
            raise CompareError(f"{a.name} and {b.name} do not both have per-item records on {benchmark!r}; "
                               f"benchmarks both have: {have}.", status=404)
        shared = [benchmark]
    rows, skipped, pairs = [], {}, {}
    for key in shared:
        scores_a, scores_b = item_scores(outputs_a[key]), item_scores(outputs_b[key])
        if not set(scores_a) & set(scores_b):
            skipped[key] = "no item has a per-item score in both (the benchmark is scored at aggregation only)"
            continue
        pairs[key] = (scores_a, scores_b)
        rows.append(_benchmark_row(key, fitting.compare_items(scores_a, scores_b, seed=seed)))
    overall = None
    if len(pairs) > 1:
        suite = fitting.compare_suite(pairs, seed=seed)
        overall = {"difference": suite.difference, "low": suite.low, "high": suite.high,
                   "separated": suite.low > 0 or suite.high < 0, "benchmarks": sorted(pairs)}
    only = {"a": sorted(set(outputs_a) - set(outputs_b)), "b": sorted(set(outputs_b) - set(outputs_a))}
    parents = {side: parent_of(user, checkpoint) for side, checkpoint in (("a", a), ("b", b))}
    return {
        "a": {"id": a.pk, "name": a.name, "visual_tokens": a.visual_tokens},
        "b": {"id": b.pk, "name": b.name, "visual_tokens": b.visual_tokens},
        "benchmarks": rows, "overall": overall, "skipped": skipped, "only_in": only,
        "parents": {side: ({"id": parent.pk, "name": parent.name} if parent else None)
                    for side, parent in parents.items()},
        "method": ("difference = mean score of b − mean score of a on the items both were scored on; 95 % "
                   "paired-bootstrap interval (10,000 resamples of items, seed 0); McNemar's exact test for "
                   "binary scores, else a paired t-test; loyalty = share of shared items scored the same; overall = "
                   "mean of the benchmark differences, bootstrap stratified by benchmark"),
    }
