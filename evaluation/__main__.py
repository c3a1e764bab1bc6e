"""Command line.

``python -m evaluation make-tiny --out DIR --compressor quecc --tokens 16``
``python -m evaluation run CHECKPOINT --tasks shapes,glyphs [--limit N] [--include-path DIR]
[--batch-size B] [--device cuda] [--feature-cache DIR] [--json]``: the same ``evaluate_checkpoint`` a worker calls.
``python -m evaluation train --out DIR --compressor avgpool --tokens 4 [--dataset synthetic:shapes |
PATH.json --images DIR] [--base CHECKPOINT] [--steps N] [--lr X] [--batch-size B] [--seed S] [--stage 1|2]
[--save-every K] [--feature-cache DIR] [--json]``: train a compressor (see ``evaluation.training``); rerun to resume.
``python -m evaluation convert-llava SRC --out DST [--vision-tower DIR] [--llm DIR] [--conversation NAME]``: a
checkpoint of the LLaVA code base (QueCC, TokenPacker, LLaVA-1.5) as a FrontierVLM (``evaluation.convert_llava``).
``python -m evaluation datasets status [--json] [--verify]`` and ``python -m evaluation datasets prefetch
(--suite S | --task T ...) [--revision R]``: the dataset mirror (``evaluation.datasets_cli``).
"""

import argparse
import contextlib
import json
import sys

from . import datasets_cli
from .errors import EvaluationError
# no torch: --help and argument errors answer at once
from .vlm_spec import COMPRESSOR_METHODS, CONVERSATIONS, LLM_FAMILIES


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m evaluation")
    commands = parser.add_subparsers(dest="command", required=True)
    tiny = commands.add_parser("make-tiny", help="write a tiny random-init FrontierVLM checkpoint")
    tiny.add_argument("--out", required=True, help="checkpoint folder to write")
    tiny.add_argument("--compressor", default="quecc", choices=sorted(COMPRESSOR_METHODS))
    tiny.add_argument("--tokens", type=int, default=16, help="visual tokens V")
    tiny.add_argument("--llm-hidden", type=int, default=64)
    tiny.add_argument("--llm-layers", type=int, default=2)
    tiny.add_argument("--llm-family", default="qwen2", choices=LLM_FAMILIES)
    tiny.add_argument("--seed", type=int, default=0)
    run = commands.add_parser("run", help="evaluate a checkpoint with lmms-eval and print results + stamp")
    run.add_argument("checkpoint", help="checkpoint folder (frontier_vlm or llava-hf)")
    run.add_argument(
        "--tasks", required=True, help="comma-separated lmms-eval tasks, benchmark keys or suites, e.g. shapes,glyphs"
    )
    run.add_argument("--limit", type=_limit, help="items per task (a fraction when < 1)")
    run.add_argument("--include-path", help="extra folder of lmms-eval task YAML files")
    run.add_argument("--batch-size", type=int, help="default: chosen from the device (see evaluation.harness)")
    run.add_argument("--device", help="default: cuda when available, else cpu")
    run.add_argument("--synthetic-dir", help="where the synthetic suite is generated (default ~/.cache/frontier)")
    run.add_argument("--json", action="store_true", help="print the whole outcome as JSON")
    train = commands.add_parser("train", help="train a compressor; rerunning with the same --out resumes")
    train.add_argument("--out", required=True, help="output folder: state/ while training, checkpoint/ at the end")
    train.add_argument("--compressor", default="avgpool", choices=sorted(COMPRESSOR_METHODS))
    train.add_argument("--tokens", type=int, default=16, help="visual tokens V")
    train.add_argument("--base", help="FrontierVLM checkpoint to start from (default: a tiny random model)")
    train.add_argument("--llm-hidden", type=int, default=64, help="tiny model only")
    train.add_argument("--llm-layers", type=int, default=2, help="tiny model only")
    train.add_argument("--llm-family", default="qwen2", choices=LLM_FAMILIES, help="tiny model only")
    train.add_argument(
        "--dataset", default="synthetic:shapes", help="synthetic:shapes, synthetic:glyphs, synthetic:spots or a .json"
    )
    train.add_argument("--images", help="image folder of a LLaVA-format .json dataset")
    train.add_argument("--steps", type=int, help="optimizer steps (default: --epochs 1)")
    train.add_argument("--epochs", type=float)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    train.add_argument("--warmup", type=int, default=0, help="linear warm-up steps")
    train.add_argument("--schedule", default="cosine", choices=("cosine", "linear"))
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--stage", type=int, default=1, choices=(1, 2), help="1: compressor only, 2: + LLM")
    train.add_argument("--save-every", type=int, default=0, help="save a resumable state every K steps")
    train.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    for command in (run, train):
        command.add_argument(
            "--feature-cache", help="folder of frozen-encoder features shared by runs (evaluation.feature_cache)"
        )
        command.add_argument("--feature-cache-gb", type=float, default=8.0, help="size of --feature-cache (GB)")
    train.add_argument("--json", action="store_true", help="print the result as JSON")
    convert = commands.add_parser("convert-llava", help="turn a LLaVA-code-base checkpoint into a FrontierVLM")
    convert.add_argument("src", help="folder saved by LLaVA's train.py (config.json with mm_* keys, weights)")
    convert.add_argument("--out", required=True, help="new checkpoint folder to write")
    convert.add_argument("--vision-tower", help="local folder of the CLIP tower the config's mm_vision_tower names")
    convert.add_argument("--llm", help="base LLM folder, when SRC holds only mm_projector.bin (pretraining stage)")
    convert.add_argument("--conversation", help=f"the conversation it was trained with ({', '.join(CONVERSATIONS)}; "
                         "LLaVA's --version), when config.json does not say")
    datasets_cli.add_arguments(commands.add_parser("datasets", help="the dataset mirror: status, prefetch"))
    return parser.parse_args(argv)


def _limit(text: str) -> int | float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"limit must be > 0, got {text}")
    return value if value < 1 else int(value)


def _print_progress(done: int, total: int) -> None:
    print(f"evaluated {done}/{total} requests", file=sys.stderr, flush=True)


def _feature_cache(args: argparse.Namespace):
    if not args.feature_cache:
        return None
    from .feature_cache import FeatureCache

    return FeatureCache(args.feature_cache, int(args.feature_cache_gb * 1e9))


def run_command(args: argparse.Namespace) -> None:
    from .harness import evaluate_checkpoint  # imports lmms-eval: seconds

    tasks = [task.strip() for task in args.tasks.split(",") if task.strip()]
    try:
        with contextlib.redirect_stdout(sys.stderr):  # only the results go to stdout
            outcome = evaluate_checkpoint(
                args.checkpoint,
                tasks,
                limit=args.limit,
                include_path=args.include_path,
                batch_size=args.batch_size,
                device=args.device,
                progress=_print_progress,
                synthetic_dir=args.synthetic_dir,
                feature_cache=_feature_cache(args),
            )
    except EvaluationError as error:
        raise SystemExit(f"error ({error.failure_class}): {error}") from None
    if args.json:
        print(json.dumps(outcome.as_dict(), indent=2))
        return
    print(json.dumps(outcome.raw_results["results"], indent=2))
    for row in outcome.rows:
        stderr = "" if row.stderr is None else f" ± {row.stderr:.4f}"
        print(f"{row.task:<20} {row.metric:<24} {row.value:.4f}{stderr}  (n={row.n})")
    print("reproducibility stamp:")
    print(json.dumps(outcome.stamp, indent=2))
    print("latency:", json.dumps(outcome.latency))


def train_command(args: argparse.Namespace) -> None:
    from .training import TinyModelSpec, Trainer, TrainingCancelled, TrainingConfig, TrainingConfigError

    config = TrainingConfig(
        compressor=args.compressor,
        tokens=args.tokens,
        stage=args.stage,
        base_checkpoint=args.base,
        tiny_model=None if args.base else TinyModelSpec(args.llm_hidden, args.llm_layers, args.llm_family, args.seed),
        dataset=args.dataset,
        image_folder=args.images,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        gradient_accumulation=args.grad_accum,
        max_steps=args.steps,
        epochs=1.0 if args.steps is None and args.epochs is None else args.epochs,
        warmup_steps=args.warmup,
        lr_schedule=args.schedule,
        seed=args.seed,
        precision=args.precision,
        save_every=args.save_every,
    )

    def print_progress(step: int, total: int, loss: float) -> None:
        if step == total or step % max(1, total // 20) == 0:
            print(f"step {step}/{total} loss {loss:.4f}", file=sys.stderr, flush=True)

    try:
        result = Trainer(config, args.out, progress=print_progress, feature_cache=_feature_cache(args)).run()
    except (TrainingConfigError, TrainingCancelled) as error:
        raise SystemExit(f"error: {error}") from None
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return
    print(
        f"trained {result.steps} steps in {result.seconds:.1f} s ({result.samples_per_second:.1f} samples/s), "
        f"final loss {result.final_loss:.4f}"
    )
    print(result.checkpoint)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "datasets":
        status = datasets_cli.run(args)
        if status:
            raise SystemExit(status)
        return
    if args.command == "run":
        run_command(args)
        return
    if args.command == "train":
        train_command(args)
        return
    if args.command == "convert-llava":
        from .convert_llava import ConversionError, convert_llava

        try:
            print(convert_llava(args.src, args.out, args.vision_tower, args.llm, args.conversation))
        except ConversionError as error:
            raise SystemExit(f"error: {error}") from None
        return
    from .tiny import make_tiny_checkpoint  # torch and transformers: seconds

    try:
        out = make_tiny_checkpoint(
            args.out,
            compressor=args.compressor,
            tokens=args.tokens,
            llm_hidden=args.llm_hidden,
            llm_layers=args.llm_layers,
            llm_family=args.llm_family,
            seed=args.seed,
        )
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    print(out)


if __name__ == "__main__":
    main()
