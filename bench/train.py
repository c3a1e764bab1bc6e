"""Training throughput of tiny models: 2 LLM sizes x 2 compressors, data loading vs compute.

    .venv/bin/python bench/train.py [--steps 20] [--batch-size 8] [--tokens 16]

Each configuration trains stage 2 (compressor + LLM) on the synthetic ``shapes`` train split with
``Trainer``, the worker's code path. Steps/s and samples/s count the training loop only (building
batches + forward/backward/optimizer step), not model construction or checkpoint writing. "data"
is the share of loop time spent building batches (image preprocessing, tokenization), "compute"
the rest; the frozen vision encoder runs inside compute.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.training import TinyModelSpec, Trainer, TrainingConfig

LLM_SIZES = {"small": TinyModelSpec(llm_hidden=64, llm_layers=2), "large": TinyModelSpec(llm_hidden=256, llm_layers=4)}
COMPRESSORS = ("avgpool", "quecc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=16, help="visual tokens V")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for size, spec in LLM_SIZES.items():
            for compressor in COMPRESSORS:
                config = TrainingConfig(
                    compressor=compressor,
                    tokens=args.tokens,
                    stage=2,
                    tiny_model=spec,
                    batch_size=args.batch_size,
                    max_steps=args.steps,
                    synthetic_count=args.steps * args.batch_size,
                )
                trainer = Trainer(config, Path(work) / f"{size}-{compressor}")
                result = trainer.run()
                loop_seconds = result.data_seconds + result.compute_seconds
                rows.append((size, spec, compressor, result, loop_seconds, trainer.device))
    print(f"device {rows[0][5]}, batch size {args.batch_size}, V={args.tokens}, {args.steps} steps each")
    print(f"{'LLM':<24} {'compressor':<10} {'steps/s':>8} {'samples/s':>10} {'data':>6} {'compute':>8}")
    for size, spec, compressor, result, loop_seconds, _ in rows:
        label = f"{size} (d={spec.llm_hidden}, {spec.llm_layers} layers)"
        print(
            f"{label:<24} {compressor:<10} {result.steps / loop_seconds:>8.2f} {result.samples_per_second:>10.1f} "
            f"{result.data_seconds / loop_seconds:>6.1%} {result.compute_seconds / loop_seconds:>8.1%}"
        )


if __name__ == "__main__":
    main()
