"""Check training configs with ``evaluation.training.validate_config`` in a child process.

The web side never imports torch, yet it must refuse a bad training config before anything is
queued; it runs ``python -m workers.training_check`` instead, which reads a JSON list of
``TrainingConfig`` dicts on stdin and writes a JSON list of problem lists (empty: fine) on stdout.
No Django here: only the library.
"""

import contextlib
import json
import sys

from evaluation.training import TrainingConfig, TrainingConfigError, validate_config


def config_problems(values: dict) -> list[str]:
    try:
        validate_config(TrainingConfig.from_dict(values))
    except TrainingConfigError as error:
        return error.problems
    except (TypeError, ValueError) as error:  # wrong field names or types
        return [str(error)]
    return []


def main() -> None:
    configs = json.load(sys.stdin)
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the answer
        problems = [config_problems(values) for values in configs]
    json.dump(problems, sys.stdout)


if __name__ == "__main__":
    main()
