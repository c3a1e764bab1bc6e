"""The training-config checks import without torch (the web process runs them), and their table of
compressor methods is the compressors' own."""

import subprocess
import sys
from pathlib import Path

from evaluation.compressors import COMPRESSORS
from evaluation.vlm_spec import COMPRESSOR_METHODS

REPO = Path(__file__).resolve().parents[2]


def test_the_config_checks_import_without_torch():
    code = (
        "import sys, evaluation.training_config\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('torch', 'transformers')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_torch_free_method_table_lists_every_compressor_in_order():
    assert COMPRESSOR_METHODS == tuple(COMPRESSORS)


def test_every_number_has_a_bound_checked_before_any_work():
    """The values a hostile or mistaken spec once queued (issue #15): each is refused with its bound."""
    from evaluation.training_config import TinyModelSpec, TrainingConfig, config_problems

    config = TrainingConfig(
        compressor="avgpool", tokens=4, dataset="synthetic:shapes", batch_size=10**9, max_steps=10**30,
        learning_rate=1e308, seed=2**70, tiny_model=TinyModelSpec(llm_hidden=4096, llm_layers=64, seed=-1),
    )
    problems = config_problems(config)
    assert "batch_size must be at most 4096, got 1000000000" in problems
    assert f"max_steps must be at most 1e+07, got {10**30}" in problems
    assert "learning_rate must be at most 1, got 1e+308" in problems
    assert f"seed must be between 0 and 4294967295, got {2**70}" in problems
    assert "tiny_model.seed must be between 0 and 4294967295, got -1" in problems
    assert any(problem.startswith("a tiny model of 64 layers x 4096 wide has about 12.9 B parameters")
               for problem in problems)
    nan = TrainingConfig(compressor="avgpool", tokens=4, dataset="synthetic:shapes", max_steps=None,
                         epochs=float("nan"), tiny_model=TinyModelSpec())
    assert "epochs must be at most 10000, got nan" in config_problems(nan)
    fine = TrainingConfig(compressor="avgpool", tokens=4, dataset="synthetic:shapes", max_steps=100,
                          tiny_model=TinyModelSpec())
    assert config_problems(fine) == []
