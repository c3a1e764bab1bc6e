"""lmms-eval 0.7.3 as Frontier runs it: ``configure_lmms_eval()`` imports it (6-11 s) and adjusts it once, when
an evaluator is built (never as a side effect of an import):

- loguru goes to stderr at WARNING (lmms-eval sends warnings to stdout, which would corrupt ``--json``);
- dataset loading and ``process_results`` lose their tenacity retries (an offline dataset would otherwise
  fail only after a minute, and a scoring bug would surface as an opaque RetryError);
- ``unwrap_generation_output`` passes loglikelihood's ``(loss, is_greedy)`` pairs through instead of
  turning them into strings (a 0.7.3 bug that breaks every multiple_choice task).

Calling it again changes nothing. ``tests/evaluation/test_lmms_setup.py`` checks each adjustment.
"""

import sys


def configure_lmms_eval():
    """Import lmms-eval and apply the adjustments of the module docstring (once); returns its evaluator module."""
    from lmms_eval import evaluator
    from lmms_eval.api.instance import unwrap_generation_output
    from lmms_eval.api.task import ConfigurableTask
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    for method in ("download", "process_results"):
        retried = getattr(ConfigurableTask, method)
        setattr(ConfigurableTask, method, getattr(retried, "__wrapped__", retried))

    def unwrap_keeping_loglikelihoods(output):
        if isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], bool):
            return output, None
        return unwrap_generation_output(output)

    if evaluator.unwrap_generation_output is unwrap_generation_output:
        evaluator.unwrap_generation_output = unwrap_keeping_loglikelihoods
    return evaluator


