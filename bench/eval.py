"""Evaluation throughput of one tiny model at V = 1, 16, 144, 576 visual tokens, end to end.

    .venv/bin/python bench/eval.py [--items 48] [--llm-hidden 256] [--llm-layers 4]

Each V gets a tiny average-pooling checkpoint with the same seed (same CLIP and LLM weights) and
runs ``CheckpointEvaluator.evaluate`` on the synthetic ``shapes`` task: the worker's code path,
lmms-eval included, after an untimed warm-up run of the first V (first-use loading is not measured).
Samples/s is items / wall time of that call, best of two runs. The FLOPs
ratio is ``inference_flops`` (2·N·(Q + V + G), LLM only) relative to V = 1, with Q the mean prompt
length and G the generated tokens; "time ratio" is the wall time per sample relative to V = 1, and
"time/FLOPs" divides the two (1.0: time grows as the formula says; below 1: the constant vision
encoder and per-step overheads, which the formula leaves out, dominate).
Batched (automatic batch size) is compared with one sample at a time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.flops import inference_flops
from evaluation.harness import CheckpointEvaluator
from evaluation.synthetic import synthetic_examples
from evaluation.tiny import make_tiny_checkpoint

VISUAL_TOKENS = (1, 16, 144, 576)
REPEATS = 2


def samples_per_second(evaluator: CheckpointEvaluator, items: int) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        evaluator.evaluate(["shapes"], limit=items, latency_samples=0)
        best = min(best, time.perf_counter() - start)
    return items / best


def mean_prompt_tokens(evaluator: CheckpointEvaluator, items: int) -> float:
    prompts = [example.prompt for example in synthetic_examples("shapes", "test", count=items)]
    return sum(len(evaluator.runner.tokenizer(prompt).input_ids) for prompt in prompts) / len(prompts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=48, help="shapes test items per run")
    parser.add_argument("--llm-hidden", type=int, default=256)
    parser.add_argument("--llm-layers", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=8, help="G: the shapes task's max_new_tokens")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        for index, tokens in enumerate(VISUAL_TOKENS):
            checkpoint = make_tiny_checkpoint(
                work / f"v{tokens}",
                compressor="avgpool",
                tokens=tokens,
                llm_hidden=args.llm_hidden,
                llm_layers=args.llm_layers,
                seed=0,
            )
            batched = CheckpointEvaluator(checkpoint, synthetic_dir=work / "synthetic")
            single = CheckpointEvaluator(checkpoint, batch_size=1, synthetic_dir=work / "synthetic")
            if index == 0:  # lmms-eval's task registry, the tokenizer and torch's kernels load on first use
                for evaluator in (batched, single):
                    evaluator.evaluate(["shapes"], limit=min(8, args.items), latency_samples=0)
            query_tokens = mean_prompt_tokens(batched, args.items)
            flops = inference_flops(batched.runner.llm_param_count, tokens, round(query_tokens), args.new_tokens)
            rows.append(
                (
                    tokens,
                    batched.lmm.batch_size,
                    samples_per_second(batched, args.items),
                    samples_per_second(single, args.items),
                    flops,
                )
            )
    device = batched.device
    print(
        f"tiny avgpool model, LLM N={batched.runner.llm_param_count:,} params, {args.items} shapes items, "
        f"G<={args.new_tokens}, device {device}"
    )
    print(
        f"{'V':>4} {'batch':>5} {'samples/s':>10} {'1-at-a-time':>12} {'batch speed-up':>15} "
        f"{'GFLOPs/sample':>14} {'FLOPs ratio':>12} {'time ratio':>11} {'time/FLOPs':>11}"
    )
    _, _, base_rate, _, base_flops = rows[0]
    for tokens, batch, rate, single_rate, flops in rows:
        flops_ratio, time_ratio = flops / base_flops, base_rate / rate
        print(
            f"{tokens:>4} {batch:>5} {rate:>10.1f} {single_rate:>12.1f} {rate / single_rate:>14.2f}x "
            f"{flops / 1e9:>14.4f} {flops_ratio:>12.2f} {time_ratio:>11.2f} {time_ratio / flops_ratio:>11.2f}"
        )


if __name__ == "__main__":
    main()
