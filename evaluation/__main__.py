"""Command line: ``python -m evaluation make-tiny --out DIR --compressor quecc --tokens 16``."""

import argparse

from .compressors import COMPRESSORS
from .tiny import LLM_FAMILIES, make_tiny_checkpoint


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m evaluation")
    commands = parser.add_subparsers(dest="command", required=True)
    tiny = commands.add_parser("make-tiny", help="write a tiny random-init FrontierVLM checkpoint")
    tiny.add_argument("--out", required=True, help="checkpoint folder to write")
    tiny.add_argument("--compressor", default="quecc", choices=sorted(COMPRESSORS))
    tiny.add_argument("--tokens", type=int, default=16, help="visual tokens V")
    tiny.add_argument("--llm-hidden", type=int, default=64)
    tiny.add_argument("--llm-layers", type=int, default=2)
    tiny.add_argument("--llm-family", default="qwen2", choices=LLM_FAMILIES)
    tiny.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
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
