"""``python -m evaluation.minis --out DIR [--benchmark KEY ...]``: write the miniatures in the mirror's layout."""

import argparse
import sys

from . import MINIS, write_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.minis", description=__doc__)
    parser.add_argument("--out", required=True, help="mirror root: each mini goes to OUT/<hub repo id>/")
    parser.add_argument("--benchmark", action="extend", nargs="+", choices=sorted(MINIS),
                        help="only these, e.g. --benchmark pope mme (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for key, folder in write_all(args.out, args.benchmark, seed=args.seed).items():
        print(f"{key}\t{MINIS[key].REPO_ID}\t{folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
