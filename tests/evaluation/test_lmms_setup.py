"""Frontier's adjustments to lmms-eval 0.7.3 are applied by one explicit call, not by importing a module,
and applying them twice changes nothing."""

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent("""
    import json, sys
    from lmms_eval import evaluator
    from lmms_eval.api.instance import unwrap_generation_output
    from lmms_eval.api.task import ConfigurableTask

    def state():
        return {
            "download_retried": hasattr(ConfigurableTask.download, "__wrapped__"),
            "process_results_retried": hasattr(ConfigurableTask.process_results, "__wrapped__"),
            "unwrap_is_lmms_evals": evaluator.unwrap_generation_output is unwrap_generation_output,
        }

    import evaluation.harness  # noqa: F401  (importing the harness adjusts nothing)
    before = state()
    from evaluation.lmms_setup import configure_lmms_eval
    first = configure_lmms_eval()
    unwrap = first.unwrap_generation_output
    second = configure_lmms_eval()
    after = state()
    pair = unwrap((1.5, True))
    json.dump({"before": before, "after": after, "same_module": first is second,
               "idempotent": second.unwrap_generation_output is unwrap,
               "loglikelihood_pair": list(pair[0]), "text": unwrap("an answer")[0]}, sys.stdout)
""")


def test_configure_lmms_eval_applies_each_adjustment_once_and_only_when_called():
    import json

    completed = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, check=True)
    report = json.loads(completed.stdout)
    assert report["before"] == {"download_retried": True, "process_results_retried": True, "unwrap_is_lmms_evals": True}
    assert report["after"] == {"download_retried": False, "process_results_retried": False, "unwrap_is_lmms_evals": False}
    assert report["same_module"] and report["idempotent"]
    assert report["loglikelihood_pair"] == [1.5, True]  # 0.7.3 would turn it into a string
    assert report["text"] == "an answer"
