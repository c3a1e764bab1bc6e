"""The `make run` demo's science, proven on its own configuration: the avgpool half of the demo sweep
(3 LLM widths x V in {1, 4, 16, 64}, the sweep's steps, learning rates and dataset) is trained with the
worker's Trainer, scored by lmms-eval on the spots test split (CheckpointEvaluator, the worker's path),
and fitted by the refit's own law and bootstrap. Error must fall with both N and V: alpha and beta above
0 with 95 % intervals that exclude 0. QueCC at V = 1 is trained at each width too: one query-conditioned
token must beat one average-pooled token (the paper's point: a compressor that reads the question makes
V = 1 enough). About 4 minutes on 2 cores (15 trainings of 500 steps, one feature encoding shared through
a FeatureCache)."""

from pathlib import Path

import pandas as pd
import pytest

import fitting
from evaluation.feature_cache import FeatureCache
from evaluation.synthetic import METRIC
from evaluation.training import TinyModelSpec, Trainer, TrainingConfig
from webapp.leaderboard.services import BOOTSTRAP_SEED
from webapp.stack.demo import DEMO_SUITE, DEMO_SWEEP
from webapp.training.configs import SYNTHETIC_DATASETS

pytestmark = pytest.mark.slow  # trains models for minutes: not in `make test-fast`

COMPRESSOR = "avgpool"
QUERY_COMPRESSOR = "quecc"


def demo_configs():
    """TrainingConfig of each avgpool point of the demo sweep and of its QueCC V = 1 points, as the sweep
    service fills them in."""
    dataset = SYNTHETIC_DATASETS[DEMO_SWEEP["dataset"]["kind"]]  # the web side's kind -> dataset mapping
    points = [(COMPRESSOR, tokens) for tokens in DEMO_SWEEP["tokens"]] + [(QUERY_COMPRESSOR, 1)]
    for base in DEMO_SWEEP["bases"]:
        hyper = {**DEMO_SWEEP["hyperparameters"], **base["hyperparameters"]}
        hyper.pop("save_every")
        for compressor, tokens in points:
            yield TrainingConfig(
                compressor=compressor, tokens=tokens, stage=DEMO_SWEEP["stage"], dataset=dataset,
                tiny_model=TinyModelSpec(**base["tiny"]), **hyper,
            )


@pytest.fixture(scope="module")
def demo_points(tmp_path_factory) -> pd.DataFrame:
    from evaluation.harness import CheckpointEvaluator
    from evaluation.suites import suite_tasks

    [task] = suite_tasks(DEMO_SUITE)
    work = tmp_path_factory.mktemp("demo-law")
    cache = FeatureCache(work / "features", 2 * 1024**3)
    rows = []
    for index, config in enumerate(demo_configs()):
        result = Trainer(config, work / f"run-{index}", device="cpu", feature_cache=cache).run()
        evaluator = CheckpointEvaluator(Path(result.checkpoint), batch_size=50, device="cpu",
                                        synthetic_dir=work / "synthetic", feature_cache=cache)
        outcome = evaluator.evaluate([task], latency_samples=0)
        [score] = [row.value for row in outcome.rows if row.metric == METRIC]
        rows.append({"llm_params_b": evaluator.runner.llm_param_count / 1e9, "visual_tokens": config.tokens,
                     "error": 1 - score, "hidden": config.tiny_model.llm_hidden,
                     "compressor": config.compressor})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def pooled(demo_points) -> pd.DataFrame:
    return demo_points[demo_points.compressor == COMPRESSOR]


def test_the_demo_sweep_is_what_this_test_trains():
    assert DEMO_SWEEP["dataset"]["kind"] == "synthetic-spots" and DEMO_SWEEP["suites"] == [DEMO_SUITE]
    assert {COMPRESSOR, QUERY_COMPRESSOR} <= set(DEMO_SWEEP["compressors"]) and len(DEMO_SWEEP["bases"]) == 3
    assert 1 in DEMO_SWEEP["tokens"]


def test_error_falls_with_llm_size_and_visual_tokens(pooled):
    table = pooled.pivot(index="hidden", columns="visual_tokens", values="error")
    widest, narrowest = table.index.max(), table.index.min()
    assert (table.loc[widest] < table.loc[narrowest]).all(), table  # a wider LLM at every V
    assert (table[64] < table[1]).all(), table  # more visual tokens at every LLM width
    assert table.loc[widest, 64] < 0.3 < table.loc[narrowest, 1], table  # chance is an error of 0.9


def test_the_fit_has_alpha_and_beta_above_zero_with_intervals_excluding_zero(pooled):
    points = pooled[["llm_params_b", "visual_tokens", "error"]]
    result = fitting.fit(points, "multiplicative")
    draws = fitting.bootstrap(points, "multiplicative", n_resamples=1000, seed=BOOTSTRAP_SEED, full_fit=result)
    print(pooled.pivot(index="hidden", columns="visual_tokens", values="error"), result.params, draws.intervals)
    assert result.params["alpha"] > 0 and result.params["beta"] > 0, result.params
    assert draws.intervals["alpha"][0] > 0 and draws.intervals["beta"][0] > 0, (draws.intervals, pooled)


def test_one_query_conditioned_token_beats_one_pooled_token_at_every_width(demo_points):
    one_token = demo_points[demo_points.visual_tokens == 1].pivot(index="hidden", columns="compressor", values="error")
    print(one_token)
    assert (one_token[QUERY_COMPRESSOR] < one_token[COMPRESSOR]).all(), one_token
